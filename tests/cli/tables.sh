#!/bin/sh
# README.md's result tables are what doc/tables.lua makes of the committed results/ folders
# (no hand edits, no stale figures): regenerate into a copy and compare.
: "${SFBENCH:?run through make check}"
tmp="$SF_TEST_OUT/tables.$$"
mkdir -p "$tmp"
cp "$SF_SRCDIR/README.md" "$tmp/README.md"
if ! "$SFBENCH" --device cpu "$SF_SRCDIR/doc/tables.lua" readme="$tmp/README.md" root="$SF_SRCDIR" >/dev/null; then
    echo "FAIL: doc/tables.lua did not run"
    exit 1
fi
if ! cmp -s "$tmp/README.md" "$SF_SRCDIR/README.md"; then
    echo "FAIL: README.md tables differ from the committed results (run: sfbench doc/tables.lua)"
    diff "$SF_SRCDIR/README.md" "$tmp/README.md" | head -20
    exit 1
fi
rm -rf "$tmp"
echo "PASS: README tables match the committed results"
