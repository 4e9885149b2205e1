#!/bin/sh
# README's "Writing a sweep" example is a complete scenario: run it as written, on the CPU
# backend at small shapes, and check that it saved a complete result.
: "${SFBENCH:?run through make check}"
tmp="$SF_TEST_OUT/readme.$$"
mkdir -p "$tmp"
# the first ```lua block after the "## Writing a sweep" heading
sed -n '/^## Writing a sweep/,/^## /p' "$SF_SRCDIR/README.md" | sed -n '/^```lua/,/^```$/p' | sed '1d' |
    sed '/^```$/,$d' >"$tmp/rmsnorm_sweep.lua"
if ! grep -q 'sweep.run' "$tmp/rmsnorm_sweep.lua"; then
    echo "FAIL: found no sweep in README.md's Writing a sweep section"
    exit 1
fi
if ! "$SFBENCH" --device cpu -q --output "$tmp/results" "$tmp/rmsnorm_sweep.lua" tokens=16,33 hidden=64 iters=3; then
    echo "FAIL: README.md's sweep example did not run"
    exit 1
fi
if ! grep -q '"complete":true' "$tmp"/results/rmsnorm_sweep-*.json; then
    echo "FAIL: README.md's sweep example saved no complete result"
    exit 1
fi
rm -rf "$tmp"
echo "PASS: README.md's sweep example runs as written"
