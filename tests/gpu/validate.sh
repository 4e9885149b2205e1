#!/bin/sh
# The validation scenarios on the GPU: every impl against the reference, fresh seeds.
# Skips (77) where there is no CUDA device.
: "${SFBENCH:?run through make check}"
if ! "$SFBENCH" --device cuda -e '' >/dev/null 2>&1; then
    echo "SKIP: no CUDA device"
    exit 77
fi
out="$SF_TEST_OUT/gpu-validate"
mkdir -p "$out"
status=0
for s in test_setup validate_attention validate_decode validate_gemv validate_ffn validate_layer; do
    if "$SFBENCH" --device cuda --quiet --output "$out" "$SF_SRCDIR/scenarios/$s.lua"; then
        echo "PASS: $s"
    else
        echo "FAIL: $s"
        status=1
    fi
done
exit $status
