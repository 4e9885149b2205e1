#!/bin/sh
# The Lua API fuzz test (tests/lua/test_fuzz.lua) on the GPU, longer than make check's CPU run:
# tensors on the device, every op's kernels on random fitting shapes, and random invalid calls.
# A crash, an abort, an op that never succeeds, or a device left broken (a kernel fault's sticky
# error, checked after each CUDA error and at the end) fails it; the seed is printed
# (SF_FUZZ_SEED=N replays a run, SF_FUZZ_CALLS=N sets its length, 20000 by default). The same
# test runs under compute-sanitizer memcheck in tests/gpu/sanitize.sh. Skips (77) where there is
# no CUDA device.
. "$SF_SRCDIR/tests/gpu/require-gpu.sh"
out="$SF_TEST_OUT/gpu-fuzz"
mkdir -p "$out"
LUA_PATH="$SF_SRCDIR/tests/lua/?.lua;${LUA_PATH:-;}"
export LUA_PATH
if "$SFBENCH" --device cuda --output "$out" "$SF_SRCDIR/tests/lua/test_fuzz.lua" device=cuda \
    "calls=${SF_FUZZ_CALLS:-20000}" "seed=${SF_FUZZ_SEED:-0}"; then
    echo "PASS: fuzz on the GPU"
else
    echo "FAIL: fuzz on the GPU (the seed is above; log=true prints each call)"
    exit 1
fi
