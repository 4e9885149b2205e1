#!/bin/sh
# Counts the test cases of a `make check` run from its logs (DIR/tests/**/*.log), not the files:
# luaunit's "Ran N tests ..., S successes, F failures[, E errors]" (in the singular where a
# count is 1: "1 success", "1 failure", "1 error"), cmocka's "[  PASSED  ] N test(s)" and
# "[  FAILED  ] N test(s)", and elsewhere (the CLI checks, the fuzz test, the GPU
# scripts) one case per "ok:" or "PASS:" line and per "FAIL:" line. A file that failed without a
# failed case (a crash, a sanitizer report) counts one failure; a skipped file counts no case.
# Prints "P F S": passed and failed cases, skipped files.
# Usage: tests/count-cases.sh [DIR]   (default: the current directory)
dir=${1:-.}
find "$dir/tests" -name '*.log' -type f 2>/dev/null | sort | while read -r log; do
    result=$(sed -n 's/^\(PASS\|FAIL\|ERROR\|SKIP\|XFAIL\|XPASS\) .*(exit status: [0-9]*)$/\1/p' "$log" | tail -n 1)
    [ -n "$result" ] || continue   # not a test's log
    if [ "$result" = SKIP ]; then echo "0 0 1"; continue; fi
    if grep -q '^Ran [0-9]* tests' "$log"; then
        line=$(grep '^Ran [0-9]* tests' "$log" | tail -n 1)
        p=$(echo "$line" | sed -n 's/.*, \([0-9][0-9]*\) success\(es\)\{0,1\}\(,.*\)\{0,1\}$/\1/p')
        f=$(echo "$line" | sed -n 's/.*, \([0-9][0-9]*\) failures\{0,1\}\(,.*\)\{0,1\}$/\1/p')
        e=$(echo "$line" | sed -n 's/.*, \([0-9][0-9]*\) errors\{0,1\}\(,.*\)\{0,1\}$/\1/p')
        f=$((${f:-0} + ${e:-0}))
    elif grep -q '^\[==========\] [0-9]* test(s) run' "$log"; then
        p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s).*/\1/p' "$log" | tail -n 1)
        f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s).*/\1/p' "$log" | tail -n 1)
    else
        p=$(grep -c -E '^(ok|PASS): ' "$log")
        f=$(grep -c -E '^FAIL: ' "$log")
    fi
    p=${p:-0} f=${f:-0}
    case $result in FAIL | ERROR | XPASS) [ "$f" -eq 0 ] && f=1 ;; esac
    echo "$p $f 0"
done | awk '{ p += $1; f += $2; s += $3 } END { printf "%d %d %d\n", p, f, s }'
