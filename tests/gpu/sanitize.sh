#!/bin/sh
# compute-sanitizer over the GPU work: memcheck (with leak checking) and racecheck over the
# validate scenarios (their small shapes: quick=true) and the GPU tests, initcheck over the
# validate scenarios (those whose kernels read no cuBLAS output where initcheck cannot see
# cuBLAS's writes: below), memcheck over a run of the Lua API fuzz test on the GPU (its seed is in
# the log). Each run must report no error, racecheck's reports inside cuBLASLt's own kernels
# aside (below); a racecheck run whose other reports name no kernel at all runs once more
# (below). Skips (77) without a CUDA device or without
# compute-sanitizer (COMPUTE_SANITIZER names it, else PATH, else /usr/local/cuda/bin).
# Not part of make check (it takes minutes): make check TESTS=tests/gpu/sanitize.sh
# SF_SANITIZE_TOOLS (default "memcheck racecheck initcheck") runs the runs of those tools alone,
# and an entry TOOL:WHAT that one run alone (e.g. racecheck:test_gpu_gemm; racecheck over a file it
# runs one test at a time takes racecheck:test_gpu_quantize for all of them, or
# racecheck:test_gpu_quantize:test_fp8_ffn for one): the whole takes more
# than 10 minutes on an H100 (racecheck's runs over cuBLASLt's kernels are the longest), so a
# run limited to 10 minutes splits it, e.g. "memcheck initcheck" and "racecheck".
cs=${COMPUTE_SANITIZER:-$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)}
out="$SF_TEST_OUT/gpu-sanitize"
# Each run saves its results in a folder of its own and its verdict in a summary file, printed
# in order at the end. The runs are listed first (one a line: number, tool, what, arguments),
# then run by xargs calling this script back with --one, in two lanes side by side: memcheck and
# initcheck SF_SANITIZE_JOBS at a time (default 6: each is mostly the tool's own host work), and
# racecheck SF_SANITIZE_RACE_JOBS at a time (default 1), because a racecheck run can take tens of
# GB of host memory (on an H100 with 128 GB, 2026-12-05: six runs at once ran it out of memory,
# test_gpu_model's racecheck holding 51 GB when killed; then racecheck over test_gpu_norm_rope and
# test_gpu_quantize, two at once, did again). The racecheck runs of race_alone (below) run last,
# one at a time, with nothing beside them.
if [ "${1:-}" = --one ]; then
    n=$2 tool=$3 what=$4
    shift 4
    # a WHAT of FILE:TEST is one test of a test file (below): luaunit runs that test alone
    case $what in
    *:*)
        SF_TEST_PATTERN="^$(echo "${what#*:}" | sed 's/\./%./g')\$"
        export SF_TEST_PATTERN
        ;;
    esac
    log="$out/$tool-$what.log"
    extra=
    [ "$tool" = memcheck ] && extra="--leak-check full"
    # every hazard printed, so that each one is sorted below (the tool prints 100 by default)
    [ "$tool" = racecheck ] && extra="--print-limit 1000000"
    # run_tool: the tool over the run, its output in $log; rc set, its seconds added to secs
    secs=0
    run_tool() {
        start=$(date +%s)
        # shellcheck disable=SC2086  # $extra is a few words or none
        "$cs" --tool "$tool" $extra --report-api-errors no --error-exitcode 86 "$SFBENCH" --device cuda --quiet \
            --output "$out/$n" "$@" >"$log" 2>&1
        rc=$?
        secs=$((secs + $(date +%s) - start))
    }
    # judge: the verdict of the run in $log
    # racecheck's reports inside cuBLASLt's own kernels (nvjet_*) are not ours to fix (with CUDA
    # 13.0 on an H100, 2026-12-05: 24 and 352 of them over the GEMV and layer validations, none
    # in any kernel of ours). Excluding those kernels from the tool (--kernel-name-exclude)
    # made them fail to launch, so their reports are sorted out here instead: every other
    # report line (others), and any failure of the run itself, fails. unnamed counts those of
    # the others that name no kernel at all (below).
    judge() {
        verdict=ok
        others=0 unnamed=0
        if [ $rc = 86 ] && [ "$tool" = racecheck ] && ! grep -q 'Target application returned an error' "$log"; then
            foreign=$(grep -cE 'access at nvjet' "$log")
            grep -E 'Error:|Warning:|access at' "$log" | grep -vE '(Race reported between|and) (Read|Write) access at nvjet' \
                >"$log.others"
            others=$(grep -c . "$log.others")
            unnamed=$(grep -cE '(Race reported between|and) (Read|Write) access at( +\[[0-9]+ hazards?\])? *$' "$log.others")
            rm -f "$log.others"
            if [ "$others" = 0 ] && [ "$foreign" -gt 0 ]; then
                verdict="ok, $foreign reports inside cuBLASLt's nvjet kernels, none in ours"
            else
                verdict=fail
            fi
        elif [ $rc != 0 ]; then
            verdict=fail
        fi
    }
    why=
    run_tool "$@"
    judge
    # Once in a while racecheck reports a hazard at no kernel at all: "Read access at " with no
    # name and no offset (H100, 2026-12-06: 1 report of 531 over validate_gemv, among the
    # reports of cuBLASLt's f32 kernels; two more runs of the same seed gave none). A run whose
    # other report lines are all of that kind runs once more, its first log kept, and the second
    # run's verdict stands, on its own rules; the summary says so, and its time is both runs'.
    # What this lets through is a hazard that the tool both failed to name and did not see again.
    if [ "$verdict" = fail ] && [ "$unnamed" -gt 0 ] && [ "$others" = "$unnamed" ]; then
        first="$unnamed report lines naming no kernel ($out/$tool-$what.first.log)"
        mv "$log" "$out/$tool-$what.first.log"
        run_tool "$@"
        judge
        if [ "$verdict" = fail ]; then
            why="    (a second run; the first had $first)"
        else
            verdict="$verdict, on a second run: the first had $first"
        fi
    fi
    took="$secs s"
    # one test of a file: luaunit must have run exactly that one (a file that ignored the pattern
    # would run them all)
    if [ -n "${SF_TEST_PATTERN:-}" ] && [ "$verdict" != fail ] && ! grep -q '^Ran 1 tests' "$log"; then
        verdict=fail
        why="    (not the one test ${what#*:} alone: $(grep -m1 '^Ran ' "$log" || echo 'no test ran'))"
    fi
    if [ "$verdict" = fail ]; then
        echo "FAIL: $tool $what after $took (log: $log)"
        grep -E 'ERROR SUMMARY|Invalid|Race|Uninitialized|error' "$log" | head -20 | sed 's/^/    /'
        grep -q "process didn't terminate successfully" "$log" &&
            echo "    (the process was ended from outside: out of memory, or a signal; see dmesg)"
        [ -n "$why" ] && echo "$why"
    else
        echo "ok: $tool $what: $(grep -m1 -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$log" || echo 'no summary')${verdict#ok}; $took"
    fi >"$out/$(printf '%03d' "$n").summary"
    exit 0
fi
. "$SF_SRCDIR/tests/gpu/require-gpu.sh"
if [ ! -x "$cs" ]; then
    echo "SKIP: no compute-sanitizer ($cs)"
    exit 77
fi
mkdir -p "$out"
rm -f "$out"/*.summary "$out"/*.first.log
LUA_PATH="$SF_SRCDIR/tests/lua/?.lua;${LUA_PATH:-;}"
export LUA_PATH
jobs=${SF_SANITIZE_JOBS:-6}
race_jobs=${SF_SANITIZE_RACE_JOBS:-1}
tools=${SF_SANITIZE_TOOLS:-memcheck racecheck initcheck}
for t in $tools; do
    case ${t%%:*} in
    memcheck | racecheck | initcheck) ;;
    *) echo "FAIL: SF_SANITIZE_TOOLS names '$t' (memcheck, racecheck or initcheck, or TOOL:WHAT)"; exit 1 ;;
    esac
done
# wants TOOL [WHAT]: whether SF_SANITIZE_TOOLS asks for the tool's run of WHAT (a WHAT of FILE:TEST
# also when it names FILE; without WHAT: for any run of the tool)
wants() {
    case " $tools " in *" $1 "*) return 0 ;; esac
    if [ -z "${2:-}" ]; then
        case " $tools " in *" $1:"*) return 0 ;; esac
        return 1
    fi
    case " $tools " in *" $1:$2 "* | *" $1:${2%%:*} "*) return 0 ;; esac
    return 1
}
list="$out/runs"
alone="$out/runs-alone"
: >"$list"
: >"$alone"
n=0
# sanitize TOOL WHAT ARGS...: lists a run of sfbench ARGS under the tool; an error report or a
# failed run fails the test. The tests provoke CUDA API errors on purpose (an allocation too
# large, a kernel name a module lacks, a sync inside a capture) and check that each becomes a Lua
# error, so the tools do not report API errors: theirs are the kernels' memory accesses, races
# and reads of uninitialized memory, and leaks.
sanitize() {
    wants "$1" "$2" || return 0
    n=$((n + 1))
    echo "$n $*" >>"$list"
    # shellcheck disable=SC2086  # race_alone is a list of words
    if [ "$1" = racecheck ] && printf '%s\n' $race_alone | grep -qxF "$2"; then echo "$n $*" >>"$alone"; fi
}
# initcheck does not see every library's writes: with CUDA 13.0 on an H100 it reported every
# read of a cuBLASLt GEMM's output as uninitialized (2026-12-05), so each kernel that reads one
# (the unfused FFN's activation, the naive attention's scaling) fails it, wrongly. A probe (a
# GEMM through cuBLASLt, then an add that reads its output) tells whether this toolkit's
# initcheck sees cuBLASLt's writes; where it does not, initcheck covers the paths that read no
# cuBLAS output: the flash kernels and the decode kernels.
probe='local sf = require "sfbench"
local a, b, c = sf.randn({256, 256}, "f16"), sf.randn({256, 256}, "f16"), sf.tensor({256, 256}, "f16")
sf.ops.gemm{a = a, b = b, c = c, transb = true}
sf.ops.add{a = c, b = c, out = sf.tensor({256, 256}, "f16")}
sf.sync()'
initcheck_sees_cublas=no
wants initcheck && "$cs" --tool initcheck --error-exitcode 86 "$SFBENCH" --device cuda -e "$probe" \
    >"$out/initcheck-probe.log" 2>&1 && initcheck_sees_cublas=yes

# the longest runs go first in each lane: the fuzz test (it asks for impossible allocations on
# purpose), then the tests and validations that run the most cuBLASLt GEMMs (racecheck takes
# minutes over those: test_gpu_gemm, test_gpu_model, validate_gemv and validate_layer)
sanitize memcheck test_fuzz "$SF_SRCDIR/tests/lua/test_fuzz.lua" device=cuda \
    "calls=${SF_FUZZ_CALLS:-3000}"
tests=$(cd "$SF_SRCDIR/tests/gpu" && ls test_gpu_*.lua | sed 's/\.lua$//' | grep -vx -e test_gpu_gemm -e test_gpu_model)
# racecheck's host memory over the whole of test_gpu_norm_rope or test_gpu_quantize passed 40 GB
# within 90 s and ran an H100 machine's 128 GB out (2026-12-05). Over these, racecheck runs one
# test at a time (FILE:TEST).
race_one_by_one="test_gpu_norm_rope test_gpu_quantize test_gpu_model"
# Even one test can take most of the machine, those that run our Hopper GEMM most: on an H100
# machine of 128 GB (2026-12-06), racecheck over TestLinearRope.test_impls_against_cpu peaked at
# 88 GB of host memory (165 s), over test_fp8_gemm_hopper at 103 GB (94 s), and over the whole of
# test_gpu_model it had passed 58 GB when stopped. These run alone (race_alone).
race_alone="test_gpu_norm_rope:TestLinearRope.test_impls_against_cpu test_gpu_quantize:test_fp8_gemm_hopper
test_gpu_model:TestGpuModel.test_against_cpu_reference"
# test_names FILE: the tests luaunit finds in FILE (TestClass.test_name, or test_name)
test_names() { grep -oE '^function [A-Za-z0-9_.]+' "$1" | sed 's/^function //' | grep -E '^(Test[A-Za-z0-9_]*\.)?test'; }
for t in test_gpu_gemm test_gpu_model $tests; do
    sanitize memcheck "$t" "$SF_SRCDIR/tests/gpu/$t.lua"
    case " $race_one_by_one " in
    *" $t "*)
        for name in $(test_names "$SF_SRCDIR/tests/gpu/$t.lua"); do
            sanitize racecheck "$t:$name" "$SF_SRCDIR/tests/gpu/$t.lua"
        done
        ;;
    *) sanitize racecheck "$t" "$SF_SRCDIR/tests/gpu/$t.lua" ;;
    esac
done
for s in validate_gemv validate_layer validate_attention validate_ffn validate_decode; do
    args=quick=true
    [ $s = validate_layer ] && args=seq=17
    sanitize memcheck "$s" "$SF_SRCDIR/scenarios/$s.lua" $args
    sanitize racecheck "$s" "$SF_SRCDIR/scenarios/$s.lua" $args
    [ "$initcheck_sees_cublas" = yes ] && sanitize initcheck "$s" "$SF_SRCDIR/scenarios/$s.lua" $args
done
if [ "$initcheck_sees_cublas" = no ] && wants initcheck; then
    echo "note: initcheck takes cuBLASLt's output for uninitialized memory here ($out/initcheck-probe.log):" \
        "it checks the flash and decode kernels alone"
    sanitize initcheck validate_attention_flash "$SF_SRCDIR/scenarios/validate_attention.lua" quick=true \
        impl=flash,flash2
    sanitize initcheck validate_decode "$SF_SRCDIR/scenarios/validate_decode.lua" quick=true
fi
grep -vxF -f "$alone" "$list" | awk '$2 == "racecheck"' |
    xargs -r -P "$race_jobs" -L 1 sh "$SF_SRCDIR/tests/gpu/sanitize.sh" --one &
awk '$2 != "racecheck"' "$list" | xargs -r -P "$jobs" -L 1 sh "$SF_SRCDIR/tests/gpu/sanitize.sh" --one
wait
xargs -r -L 1 sh "$SF_SRCDIR/tests/gpu/sanitize.sh" --one <"$alone"
cat "$out"/*.summary
[ "$(ls "$out"/*.summary | wc -l)" -eq "$n" ] || { echo "FAIL: $n runs listed, $(ls "$out"/*.summary | wc -l) verdicts"; exit 1; }
! grep -q '^FAIL' "$out"/*.summary
