#!/bin/sh
# kernels/wgmma.cuh is what kernels/gen_wgmma.lua writes (no hand edits): regenerate into a
# temporary file and compare.
: "${SFBENCH:?run through make check}"
tmp="$SF_TEST_OUT/wgmma.$$.cuh"
mkdir -p "$SF_TEST_OUT"
cp "$SF_SRCDIR/kernels/wgmma.cuh" "$tmp"
if ! "$SFBENCH" --device cpu "$SF_SRCDIR/kernels/gen_wgmma.lua" check=true out="$tmp" >/dev/null; then
    echo "FAIL: kernels/wgmma.cuh differs from what kernels/gen_wgmma.lua writes (run: sfbench kernels/gen_wgmma.lua)"
    rm -f "$tmp"
    exit 1
fi
# and the check itself notices a change
echo "/* edited */" >> "$tmp"
if "$SFBENCH" --device cpu "$SF_SRCDIR/kernels/gen_wgmma.lua" check=true out="$tmp" >/dev/null 2>&1; then
    echo "FAIL: gen_wgmma.lua check=true accepted an edited file"
    rm -f "$tmp"
    exit 1
fi
rm -f "$tmp"
echo "PASS: kernels/wgmma.cuh is generated"
