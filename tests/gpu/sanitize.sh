#!/bin/sh
# compute-sanitizer over the GPU work: memcheck (with leak checking) and racecheck over the
# validate scenarios (their small shapes: quick=true) and the GPU tests, initcheck over the
# validate scenarios, memcheck over a run of the Lua API fuzz test on the GPU (its seed is in
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
status=0
cs_options=

# sanitize TOOL WHAT ARGS...: runs sfbench ARGS under the tool; an error report or a failed run fails
sanitize() {
    tool=$1 what=$2
    shift 2
    log="$out/$tool-$(echo "$what" | tr -c 'a-z0-9_\n' '_').log"
    extra=$cs_options
    [ "$tool" = memcheck ] && extra="$extra --leak-check full"
    # shellcheck disable=SC2086  # $extra is a few words or none
    if "$cs" --tool "$tool" $extra --error-exitcode 86 "$SFBENCH" --device cuda --quiet --output "$out" "$@" \
        >"$log" 2>&1; then
        echo "ok: $tool $what: $(grep -m1 'ERROR SUMMARY' "$log" || echo 'no summary')"
    else
        echo "FAIL: $tool $what (log: $log)"
        grep -E 'ERROR SUMMARY|Invalid|Race|Uninitialized|error' "$log" | head -20 | sed 's/^/    /'
        status=1
    fi
}

for s in validate_attention validate_ffn validate_decode validate_gemv; do
    for tool in memcheck racecheck initcheck; do sanitize "$tool" "$s" "$SF_SRCDIR/scenarios/$s.lua" quick=true; done
done
for tool in memcheck racecheck initcheck; do
    sanitize "$tool" validate_layer "$SF_SRCDIR/scenarios/validate_layer.lua" seq=17
done
for t in "$SF_SRCDIR"/tests/gpu/test_gpu_*.lua; do
    for tool in memcheck racecheck; do sanitize "$tool" "$(basename "$t" .lua)" "$t"; done
done
# the fuzz test asks for impossible allocations on purpose, and each is a Lua error: the CUDA
# API's error returns are its to check (a device left broken fails it), memcheck's are the
# kernels' memory accesses and the leaks
cs_options="--report-api-errors no"
sanitize memcheck test_fuzz "$SF_SRCDIR/tests/lua/test_fuzz.lua" device=cuda "calls=${SF_FUZZ_CALLS:-3000}"
cs_options=
exit $status
