#!/bin/sh
# NVTX ranges and --profile as the profilers see them, on a two-point sweep of one user kernel
# (nvtx_sweep.lua: points n=64 and n=128, each in the ranges nvtx_sweep / n=N / touch):
#  - ncu --profile-from-start off with sfbench --profile: one kernel a point, nothing else;
#  - ncu --nvtx --nvtx-include "nvtx_sweep/n=64/": that point's kernel alone, also when the path
#    goes down to the bench.run's range; none for a point the sweep does not have;
#  - nsys, where it is found: the sweep's, both points' and the bench.run's ranges are in its NVTX
#    summary.
# ncu is what checks the ranges: the test skips (77) only without a GPU or without ncu (NCU=,
# NSYS= name the tools). An ncu that may not read the GPU's counters is a failure, not a skip.
. "$SF_SRCDIR/tests/gpu/require-gpu.sh"
tool() {     # tool NAME: from PATH, else the toolkit's bin
    command -v "$1" 2>/dev/null || { [ -x "/usr/local/cuda/bin/$1" ] && echo "/usr/local/cuda/bin/$1"; }
}
NCU=${NCU:-$(tool ncu)}
NSYS=${NSYS:-$(tool nsys)}
if [ -z "$NCU" ]; then
    echo "SKIP: ncu not found (NCU= names it)"
    exit 77
fi
out=$SF_TEST_OUT/nvtx
rm -rf "$out"
mkdir -p "$out" || exit 99
sweep="$SF_SRCDIR/tests/gpu/nvtx_sweep.lua"
failures=0
fail() {
    echo "FAIL: $1"
    [ -n "$2" ] && tail -n 25 "$2" | sed 's/^/    /'
    failures=$((failures + 1))
}

# ncu_expect N WHAT NCU-OPTIONS...: ncu with these options profiles N kernels of the sweep under --profile
ncu_expect() {
    want=$1 what=$2
    shift 2
    log=$out/ncu-$(echo "$what" | tr -c 'a-z0-9' '_').log
    "$NCU" --metrics gpu__time_duration.sum "$@" "$SFBENCH" --device cuda --quiet --output "$out/results" \
        --profile "$sweep" >"$log" 2>&1
    rc=$?
    if grep -q ERR_NVGPUCTRPERM "$log"; then
        fail "ncu $what: no permission to read the GPU's performance counters (run as root, or load nvidia with NVreg_RestrictProfilingToAdminUsers=0)" "$log"
        return 1
    fi
    got=$(grep -c '^==PROF== Profiling' "$log")
    if [ "$rc" -eq 0 ] && [ "$got" -eq "$want" ]; then
        echo "ok: ncu $what: $got kernel(s) profiled"
    else
        fail "ncu $what: exit status $rc, $got kernel(s) profiled, expected $want" "$log"
    fi
    return 0
}

echo "ncu: $NCU"
if ncu_expect 2 "capture range only" --profile-from-start off; then
    ncu_expect 1 "point n=64" --profile-from-start off --nvtx --nvtx-include "nvtx_sweep/n=64/"
    ncu_expect 1 "point n=128, down to bench.run's range" --profile-from-start off --nvtx \
        --nvtx-include "nvtx_sweep/n=128/touch/"
    ncu_expect 0 "a point not in the sweep" --profile-from-start off --nvtx --nvtx-include "nvtx_sweep/n=256/"
fi

if [ -n "$NSYS" ]; then
    echo "nsys: $NSYS"
    log=$out/nsys.log
    if "$NSYS" profile --trace=cuda,nvtx --force-overwrite=true --output "$out/sweep" \
        "$SFBENCH" --device cuda --quiet --output "$out/results" "$sweep" >"$log" 2>&1; then
        stats=$out/nsys-stats.txt
        # the report is nvtx_sum since 2023; nvtxsum before
        "$NSYS" stats --report nvtx_sum --format csv "$out/sweep.nsys-rep" >"$stats" 2>&1 ||
            "$NSYS" stats --report nvtxsum --format csv "$out/sweep.nsys-rep" >"$stats" 2>&1
        for range in nvtx_sweep n=64 n=128 touch; do
            if grep -F -q "$range" "$stats"; then echo "ok: nsys lists the range $range"
            else fail "nsys: no range $range in the NVTX summary" "$stats"; fi
        done
    else
        fail "nsys profile: exit status $?" "$log"
    fi
fi

[ "$failures" -eq 0 ] || exit 1
echo "PASS"
