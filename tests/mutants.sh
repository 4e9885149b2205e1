#!/bin/sh
# The mutation check: applies each patch of tests/mutants/ (one deliberate bug each) to a scratch
# copy of the tree, builds it (CPU backend), runs the tests the patch names and prints whether
# they caught it: "killed" (a named test failed) or "SURVIVED" (all passed: a weakness of the
# tests). A patch names its tests in a line "# tests: FILE ..." and may narrow
# tests/cli/scenarios.sh with "# scenarios: NAME ...". Before any mutant, the named tests must
# pass on the unchanged copy. Exit status 0 when every mutant was killed.
# Usage: tests/mutants.sh [NAME ...]   (names of tests/mutants/NAME.patch; default: all)
#        JOBS=N for the build's parallelism (default: the number of CPUs)
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}
start=$(date +%s)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/sfbench-mutants.XXXXXX") || exit 99
trap 'rm -rf "$scratch"' EXIT

if [ $# -gt 0 ]; then
    patches=$(for n in "$@"; do echo "$src/tests/mutants/$n.patch"; done)
else
    patches=$(ls "$src"/tests/mutants/*.patch)
fi
for p in $patches; do
    [ -f "$p" ] || { echo "tests/mutants.sh: no mutant $p"; exit 2; }
done

# the tree as git sees it (tracked files, and new ones not ignored), built from scratch
if ! (cd "$src" && git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf -) |
    tar -C "$scratch" -xf -; then
    echo "tests/mutants.sh: cannot copy the tree (it needs a git checkout)"
    exit 99
fi
cd "$scratch" || exit 99
echo "building a scratch copy in $scratch"
if ! { autoreconf -fi && ./configure --without-cuda && make -j"$jobs"; } >build.log 2>&1; then
    tail -20 build.log
    echo "tests/mutants.sh: the unchanged copy does not build"
    exit 99
fi

field() {   # field NAME PATCH: the words of its "# NAME:" line
    sed -n "s/^# $1: *//p" "$2" | head -n 1
}

# the named tests this build cannot run: unit tests (tests/unit/) are built only with cmocka
unbuilt() {   # unbuilt TESTS
    for t in $1; do
        case $t in tests/unit/*) sed -n '/^UNIT_TESTS =/,/[^\\]$/p' Makefile | grep -q "$t" || echo "$t" ;; esac
    done
}

# runs the named tests; 0 when they all pass
run_tests() {   # run_tests TESTS SCENARIOS LOG
    SF_SCENARIOS=$2 timeout 900 make check TESTS="$1" >"$3" 2>&1
}

# a mutant whose tests this build lacks is skipped, and says so
runnable=
for p in $patches; do
    missing=$(unbuilt "$(field tests "$p")")
    if [ -n "$missing" ]; then
        echo "SKIPPED  $(basename "$p" .patch): $(echo $missing) not built here (no cmocka)"
    else
        runnable="$runnable $p"
    fi
done
patches=$runnable
all_tests=$(for p in $patches; do field tests "$p"; done | tr ' ' '\n' | sort -u | tr '\n' ' ')
if ! run_tests "$all_tests" "" baseline.log; then
    grep -E '^(FAIL|ERROR)' baseline.log
    echo "tests/mutants.sh: the tests fail on the unchanged copy: $all_tests"
    exit 99
fi

killed=0 survived=0 broken=0
for p in $patches; do
    name=$(basename "$p" .patch)
    tests=$(field tests "$p")
    what=$(sed -n '1s/^# *//p' "$p")
    t0=$(date +%s)
    if [ -z "$tests" ] || ! patch -p1 -s --dry-run <"$p" >/dev/null 2>&1; then
        echo "BROKEN   $name: the patch names no tests or does not apply"
        broken=$((broken + 1))
        continue
    fi
    patch -p1 -s <"$p"
    if ! make -j"$jobs" >"$name.build.log" 2>&1; then
        echo "BROKEN   $name: does not build (see the build log)"
        broken=$((broken + 1))
    elif run_tests "$tests" "$(field scenarios "$p")" "$name.log"; then
        echo "SURVIVED $name ($what): $tests passed"
        survived=$((survived + 1))
    else
        echo "killed   $name ($what) by $(grep -E '^(FAIL|ERROR):' "$name.log" | sed 's/^[A-Z]*: //' | tr '\n' ' ')in $(($(date +%s) - t0)) s"
        killed=$((killed + 1))
    fi
    patch -p1 -R -s <"$p"
done
make -j"$jobs" >/dev/null 2>&1
total=$((killed + survived + broken))
echo "$killed killed, $survived survived, $broken broken of $total mutants in $(($(date +%s) - start)) s"
[ "$survived" -eq 0 ] && [ "$broken" -eq 0 ]
