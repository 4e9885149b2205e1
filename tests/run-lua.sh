#!/bin/sh
# Runs one Lua test file inside sfbench (so it sees the real bindings): tests under tests/gpu/
# on the CUDA backend, skipped (77) where there is no GPU; the rest on the CPU backend.
# Called by `make check` with SFBENCH, SF_SRCDIR and SF_TEST_OUT set.
test="$1"
: "${SFBENCH:?run through make check}"
LUA_PATH="$SF_SRCDIR/tests/lua/?.lua;${LUA_PATH:-;}"
export LUA_PATH
mkdir -p "$SF_TEST_OUT"
case "$test" in
*/gpu/*)
    if ! "$SFBENCH" --device cuda -e '' >/dev/null 2>&1; then
        echo "SKIP: no CUDA device"
        exit 77
    fi
    exec "$SFBENCH" --device cuda --output "$SF_TEST_OUT" "$test" ;;
*)
    exec "$SFBENCH" --device cpu --output "$SF_TEST_OUT" "$test" ;;
esac
