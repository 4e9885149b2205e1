#!/bin/sh
# tests/run-lua.sh, the runner of the Lua test files: a file that returns or raises passes
# through it with its status, a file under gpu/ skips (77) where there is no CUDA device, and one
# that never ends is stopped after SF_TEST_TIMEOUT seconds and fails, with a line that says so
# (count-cases.sh counts it a failed case).
. "$SF_SRCDIR/tests/cli/lib.sh"
runner="$SF_SRCDIR/tests/run-lua.sh"
mkdir -p "$SCRATCH/gpu"
echo 'return 0' >"$SCRATCH/quick.lua"
echo 'return 0' >"$SCRATCH/gpu/quick.lua"
echo 'error("raised")' >"$SCRATCH/raises.lua"
echo 'while true do end' >"$SCRATCH/spins.lua"

run env SF_TEST_TIMEOUT=60 sh "$runner" "$SCRATCH/quick.lua"
expect_rc 0 "a file that returns"
run env SF_TEST_TIMEOUT=60 sh "$runner" "$SCRATCH/raises.lua"
expect_rc 1 "a file that raises"
expect_stderr_has "raised" "a file that raises"
run env SF_TEST_TIMEOUT=60 sh "$runner" "$SCRATCH/gpu/quick.lua"
if "$SFBENCH" --device cuda -e '' >/dev/null 2>&1; then
    expect_rc 0 "a GPU file on a GPU"
else
    expect_rc 77 "a GPU file without a CUDA device"
fi

run env SF_TEST_TIMEOUT=2 sh "$runner" "$SCRATCH/spins.lua"
expect_rc 124 "a file that never ends, stopped after 2 s"
expect_stdout_has "FAIL: $SCRATCH/spins.lua still running after 2 s, stopped" "a file that never ends"
finish
