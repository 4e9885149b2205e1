#!/bin/sh
# Runs one Lua test file inside sfbench (so it sees the real bindings): tests under tests/gpu/
# on the CUDA backend, skipped (77) where there is no GPU; the rest on the CPU backend.
# Called by `make check` with SFBENCH, SF_SRCDIR and SF_TEST_OUT set. A test still running after
# SF_TEST_TIMEOUT seconds (default 1200) is stopped and fails, saying so, rather than holding
# `make check` up: a hang reads as a failure of its file.
test="$1"
: "${SFBENCH:?run through make check}"
LUA_PATH="$SF_SRCDIR/tests/lua/?.lua;${LUA_PATH:-;}"
export LUA_PATH
mkdir -p "$SF_TEST_OUT"
limit=${SF_TEST_TIMEOUT:-1200}

# within CMD...: CMD under the time limit (in the foreground: Ctrl-C on make check still reaches
# it; killed 30 s after the limit's TERM if that does not end it), its exit status passed on
within() {
    timeout --foreground -k 30 "$limit" "$@"
    rc=$?
    [ "$rc" -eq 124 ] && echo "FAIL: $test still running after $limit s, stopped"
    exit "$rc"
}

case "$test" in
*/gpu/*)
    if ! "$SFBENCH" --device cuda -e '' >/dev/null 2>&1; then
        echo "SKIP: no CUDA device"
        exit 77
    fi
    within "$SFBENCH" --device cuda --output "$SF_TEST_OUT" "$test" ;;
*)
    within "$SFBENCH" --device cpu --output "$SF_TEST_OUT" "$test" ;;
esac
