#!/bin/sh
# tests/count-cases.sh (the count of test cases on CI's last line) on made-up logs of each kind:
# luaunit's status line in the plural and in the singular ("1 success", "1 failure", "1 error"),
# cmocka's summary, the CLI checks' ok:/FAIL: lines, a crash, a skip, and a log that is no test's.
. "$SF_SRCDIR/tests/cli/lib.sh"
count="$SF_SRCDIR/tests/count-cases.sh"

# log NAME RESULT: a log in $SCRATCH/NAME/tests/ from stdin, ending in automake's trailer line
log() {
    mkdir -p "$SCRATCH/$1/tests/lua"
    { cat; echo "$2 tests/lua/$1.lua (exit status: $3)"; } >"$SCRATCH/$1/tests/lua/$1.log"
}

# expect_count NAME "P F S" WHAT: count-cases.sh over $SCRATCH/NAME
expect_count() {
    got=$(sh "$count" "$SCRATCH/$1")
    if [ "$got" = "$2" ]; then pass "$3: $2"; else fail "$3: counted '$got', expected '$2'"; fi
}

log one_success PASS 0 <<'LOG'
..
Ran 1 tests in 0.000 seconds, 1 success, 0 failures
OK
LOG
expect_count one_success "1 0 0" "luaunit, one test passed"

log singular_failures FAIL 1 <<'LOG'
Ran 3 tests in 0.002 seconds, 1 success, 1 failure, 1 error
LOG
expect_count singular_failures "1 2 0" "luaunit, one failure and one error"

log plural FAIL 1 <<'LOG'
Ran 16 tests in 0.010 seconds, 10 successes, 2 failures, 3 errors, 1 skipped
LOG
expect_count plural "10 5 0" "luaunit, plural counts and a skipped test"

log no_success FAIL 1 <<'LOG'
Ran 2 tests in 0.001 seconds, 0 successes, 2 errors
LOG
expect_count no_success "0 2 0" "luaunit, errors alone"

log many PASS 0 <<'LOG'
Ran 121 tests in 0.300 seconds, 121 successes, 0 failures
OK
LOG
expect_count many "121 0 0" "luaunit, a count of several digits"

log cmocka FAIL 1 <<'LOG'
[==========] 4 test(s) run.
[  PASSED  ] 3 test(s).
[  FAILED  ] 1 test(s), listed below:
[  FAILED  ] test_x
LOG
expect_count cmocka "3 1 0" "cmocka"

log cmocka_one PASS 0 <<'LOG'
[==========] 1 test(s) run.
[  PASSED  ] 1 test(s).
LOG
expect_count cmocka_one "1 0 0" "cmocka, one test"

log cli FAIL 1 <<'LOG'
ok: first
ok: second
FAIL: third
  stdout:
    ok: not at the start of the line
PASS: fourth
3 checks, 1 failed
LOG
expect_count cli "3 1 0" "ok:, PASS: and FAIL: lines"

log crash FAIL 139 <<'LOG'
ok: before the crash
Segmentation fault
LOG
expect_count crash "1 1 0" "a crash after a passed check"

log crash_alone ERROR 99 <<'LOG'
AddressSanitizer: heap-use-after-free
LOG
expect_count crash_alone "0 1 0" "a hard error with no case counts one failure"

log skipped SKIP 77 <<'LOG'
SKIP: no CUDA device
LOG
expect_count skipped "0 0 1" "a skipped file"

mkdir -p "$SCRATCH/other/tests"
echo "ok: a line in a log that is no test's" >"$SCRATCH/other/tests/notes.log"
expect_count other "0 0 0" "a log without automake's trailer"

# all of them at once, summed (count-cases.sh searches the tests/ folders below DIR)
mkdir -p "$SCRATCH/all/tests"
for d in one_success singular_failures plural no_success many cmocka cmocka_one cli crash crash_alone skipped other; do
    cp -R "$SCRATCH/$d/tests" "$SCRATCH/all/tests/$d"
done
expect_count all "141 13 1" "every log together"
finish
