#!/bin/sh
# tests/run-lua.sh, the runner of the Lua test files: a file that returns passes through it with
# its status, and one that never ends is stopped after SF_TEST_TIMEOUT seconds and fails, with a
# line that says so (count-cases.sh counts it a failed case).
. "$SF_SRCDIR/tests/cli/lib.sh"
runner="$SF_SRCDIR/tests/run-lua.sh"
echo 'return 0' >"$SCRATCH/quick.lua"
echo 'while true do end' >"$SCRATCH/spins.lua"

run env SF_TEST_TIMEOUT=60 sh "$runner" "$SCRATCH/quick.lua"
expect_rc 0 "a file that returns"

run env SF_TEST_TIMEOUT=2 sh "$runner" "$SCRATCH/spins.lua"
expect_rc 124 "a file that never ends, stopped after 2 s"
expect_stdout_has "FAIL: $SCRATCH/spins.lua still running after 2 s, stopped" "a file that never ends"
finish
