#!/bin/sh
# compute-sanitizer over the GPU work: memcheck (with leak checking) and racecheck over the
# validate scenarios (their small shapes: quick=true) and the GPU tests, initcheck over the
# validate scenarios (those whose kernels read no cuBLAS output where initcheck cannot see
# cuBLAS's writes: below), memcheck over a run of the Lua API fuzz test on the GPU (its seed is in
# the log). Each run must report no error. Skips (77) without a CUDA device or without
# compute-sanitizer (COMPUTE_SANITIZER names it, else PATH, else /usr/local/cuda/bin).
# Not part of make check (it takes minutes): make check TESTS=tests/gpu/sanitize.sh
. "$SF_SRCDIR/tests/gpu/require-gpu.sh"
cs=${COMPUTE_SANITIZER:-$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)}
if [ ! -x "$cs" ]; then
    echo "SKIP: no compute-sanitizer ($cs)"
    exit 77
fi
out="$SF_TEST_OUT/gpu-sanitize"
mkdir -p "$out"
LUA_PATH="$SF_SRCDIR/tests/lua/?.lua;${LUA_PATH:-;}"
export LUA_PATH
cs_options=
rm -f "$out"/*.summary
# runs go SF_SANITIZE_JOBS at a time (default 4: each is mostly the tool's own host work), in
# waves; each saves its results in a folder of its own and its verdict to a summary file,
# printed in order at the end
jobs=${SF_SANITIZE_JOBS:-4}
running=0
n=0

# sanitize TOOL WHAT ARGS...: runs sfbench ARGS under the tool; an error report or a failed run fails
sanitize() {
    tool=$1 what=$2
    shift 2
    n=$((n + 1))
    log="$out/$tool-$(echo "$what" | tr -c 'a-z0-9_\n' '_').log"
    summary="$out/$(printf '%03d' "$n").summary"
    extra=$cs_options
    [ "$tool" = memcheck ] && extra="$extra --leak-check full"
    (
        # shellcheck disable=SC2086  # $extra is a few words or none
        if "$cs" --tool "$tool" $extra --error-exitcode 86 "$SFBENCH" --device cuda --quiet --output "$out/$n" "$@" \
            >"$log" 2>&1; then
            echo "ok: $tool $what: $(grep -m1 'ERROR SUMMARY' "$log" || echo 'no summary')"
        else
            echo "FAIL: $tool $what (log: $log)"
            grep -E 'ERROR SUMMARY|Invalid|Race|Uninitialized|error' "$log" | head -20 | sed 's/^/    /'
        fi >"$summary"
    ) &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait
        running=0
    fi
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
"$cs" --tool initcheck --error-exitcode 86 "$SFBENCH" --device cuda -e "$probe" >"$out/initcheck-probe.log" 2>&1 &&
    initcheck_sees_cublas=yes

for s in validate_attention validate_ffn validate_decode validate_gemv; do
    for tool in memcheck racecheck; do sanitize "$tool" "$s" "$SF_SRCDIR/scenarios/$s.lua" quick=true; done
done
for tool in memcheck racecheck; do
    sanitize "$tool" validate_layer "$SF_SRCDIR/scenarios/validate_layer.lua" seq=17
done
if [ "$initcheck_sees_cublas" = yes ]; then
    for s in validate_attention validate_ffn validate_decode validate_gemv; do
        sanitize initcheck "$s" "$SF_SRCDIR/scenarios/$s.lua" quick=true
    done
    sanitize initcheck validate_layer "$SF_SRCDIR/scenarios/validate_layer.lua" seq=17
else
    echo "note: initcheck takes cuBLASLt's output for uninitialized memory here ($out/initcheck-probe.log):" \
        "it checks the flash and decode kernels alone"
    sanitize initcheck validate_attention_flash "$SF_SRCDIR/scenarios/validate_attention.lua" quick=true impl=flash,flash2
    sanitize initcheck validate_decode "$SF_SRCDIR/scenarios/validate_decode.lua" quick=true
fi
for t in "$SF_SRCDIR"/tests/gpu/test_gpu_*.lua; do
    for tool in memcheck racecheck; do sanitize "$tool" "$(basename "$t" .lua)" "$t"; done
done
# the fuzz test asks for impossible allocations on purpose, and each is a Lua error: the CUDA
# API's error returns are its to check (a device left broken fails it), memcheck's are the
# kernels' memory accesses and the leaks
cs_options="--report-api-errors no"
sanitize memcheck test_fuzz "$SF_SRCDIR/tests/lua/test_fuzz.lua" device=cuda "calls=${SF_FUZZ_CALLS:-3000}"
cs_options=
wait
cat "$out"/*.summary
! grep -q '^FAIL' "$out"/*.summary
