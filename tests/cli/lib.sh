# Shared helpers of the CLI tests (sourced, POSIX sh). `make check` sets SFBENCH (the binary),
# SF_SRCDIR (the source tree) and SF_TEST_OUT (a scratch directory).
#
#   . "$SF_SRCDIR/tests/cli/lib.sh"
#   run "$SFBENCH" --device cpu -e 'error("x")'    # fills $RC, $OUT_FILE, $ERR_FILE
#   expect_rc 1 "runtime error"
#   expect_stderr_has "(command line):1: x" "runtime error"
#   finish                                          # exit 0 if every check passed, else 1

: "${SFBENCH:?run through make check (SFBENCH is not set)}"
: "${SF_SRCDIR:?run through make check (SF_SRCDIR is not set)}"
: "${SF_TEST_OUT:?run through make check (SF_TEST_OUT is not set)}"

CHECKS=0
FAILURES=0
mkdir -p "$SF_TEST_OUT" || exit 99
SCRATCH=$(mktemp -d "$SF_TEST_OUT/cli.XXXXXX") || exit 99
OUT_FILE=$SCRATCH/stdout
ERR_FILE=$SCRATCH/stderr
RC=0

cleanup_scratch() {
    # keep the scratch directory of a failed run for a look
    [ "$FAILURES" -eq 0 ] && rm -rf "$SCRATCH"
}

pass() {
    CHECKS=$((CHECKS + 1))
    echo "ok: $1"
}

fail() {
    CHECKS=$((CHECKS + 1))
    FAILURES=$((FAILURES + 1))
    echo "FAIL: $1"
}

# Shows what the last command printed, indented, after a failure.
show_last() {
    echo "  exit status: $RC"
    if [ -s "$OUT_FILE" ]; then echo "  stdout:"; sed -n '1,15s/^/    /p' "$OUT_FILE"; fi
    if [ -s "$ERR_FILE" ]; then echo "  stderr:"; sed -n '1,15s/^/    /p' "$ERR_FILE"; fi
}

# run CMD ARGS...: runs it with stdin from /dev/null; stdout, stderr and status kept
run() {
    "$@" </dev/null >"$OUT_FILE" 2>"$ERR_FILE"
    RC=$?
}

expect_rc() {        # expect_rc STATUS WHAT
    if [ "$RC" -eq "$1" ]; then pass "$2: exit status $1"; else fail "$2: exit status $RC, expected $1"; show_last; fi
}

expect_rc_not() {    # expect_rc_not STATUS WHAT
    if [ "$RC" -ne "$1" ]; then pass "$2: exit status $RC (not $1)"; else fail "$2: exit status $1"; show_last; fi
}

line_count() {
    wc -l <"$1" | tr -d ' '
}

expect_stderr_lines() {    # expect_stderr_lines N WHAT
    n=$(line_count "$ERR_FILE")
    if [ "$n" -eq "$1" ]; then pass "$2: $1 line(s) on stderr"; else fail "$2: $n lines on stderr, expected $1"; show_last; fi
}

expect_one_line_error() {  # expect_one_line_error WHAT: one line on stderr, nothing on stdout
    expect_stderr_lines 1 "$1"
    if [ -s "$OUT_FILE" ]; then fail "$1: stdout is not empty"; show_last; else pass "$1: stdout empty"; fi
}

has() {              # has FILE TEXT (fixed string)
    grep -F -q -e "$2" "$1"
}

expect_stderr_has() {      # expect_stderr_has TEXT WHAT
    if has "$ERR_FILE" "$1"; then pass "$2: stderr mentions '$1'"; else fail "$2: stderr does not mention '$1'"; show_last; fi
}

expect_stdout_has() {      # expect_stdout_has TEXT WHAT
    if has "$OUT_FILE" "$1"; then pass "$2: stdout mentions '$1'"; else fail "$2: stdout does not mention '$1'"; show_last; fi
}

expect_empty() {           # expect_empty FILE WHAT
    if [ -s "$1" ]; then fail "$2: not empty"; show_last; else pass "$2: empty"; fi
}

# The files of DIR matching a glob, one a line (none when DIR is missing); hidden ones included.
files_in() {               # files_in DIR GLOB
    [ -d "$1" ] || return 0
    for f in "$1"/$2 "$1"/.$2; do
        [ -e "$f" ] && echo "$f"
    done
    return 0
}

count_files() {            # count_files DIR GLOB
    files_in "$1" "$2" | wc -l | tr -d ' '
}

expect_no_tmp() {          # expect_no_tmp DIR WHAT: no half-written result left
    n=$(count_files "$1" "*.tmp")
    if [ "$n" -eq 0 ]; then pass "$2: no .tmp file in the output directory"
    else fail "$2: $n .tmp file(s) left in $1"; files_in "$1" "*.tmp" | sed 's/^/    /'; fi
}

expect_files() {           # expect_files DIR GLOB N WHAT
    n=$(count_files "$1" "$2")
    if [ "$n" -eq "$3" ]; then pass "$4: $3 file(s) $2"; else fail "$4: $n file(s) $2 in $1, expected $3"; fi
}

# Runs Lua CODE inside sfbench on the CPU backend (cjson, lfs and sfbench preloaded), with the
# environment variable JSON naming a file to check; the code raises on a failed check.
check_json() {             # check_json FILE WHAT CODE
    JSON=$1 "$SFBENCH" --device cpu --output "$SCRATCH/check-json-out" -e "
local cjson = require 'cjson'
local f = assert(io.open(os.getenv('JSON')))
local text = f:read('a')
f:close()
local ok, doc = pcall(cjson.decode, text)
if not ok then error('the file is not JSON: ' .. tostring(doc), 0) end
local function check(cond, msg) if not cond then error(msg, 2) end end
$3
" </dev/null >"$OUT_FILE" 2>"$ERR_FILE"
    RC=$?
    if [ "$RC" -eq 0 ]; then pass "$2"; else fail "$2"; show_last; fi
}

finish() {
    cleanup_scratch
    echo "$CHECKS checks, $FAILURES failed"
    [ "$FAILURES" -eq 0 ] && exit 0
    exit 1
}
