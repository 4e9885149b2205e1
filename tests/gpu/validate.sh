#!/bin/sh
# The validation scenarios on the GPU: every impl against the reference, fresh seeds, and the
# decode kernel's variants.
# Skips (77) where there is no CUDA device.
. "$SF_SRCDIR/tests/gpu/require-gpu.sh"
out="$SF_TEST_OUT/gpu-validate"
mkdir -p "$out"
status=0
# each with the default kernels, then the decode kernel's other variants (tuning knobs: a variant
# must be right before it is timed)
for run in test_setup validate_attention validate_decode validate_gemv validate_ffn validate_layer \
    SFBENCH_DECODE_VARIANT=ring48:validate_decode SFBENCH_DECODE_VARIANT=base:validate_decode; do
    s=${run#*:}
    env=
    [ "$s" != "$run" ] && env=${run%%:*}
    # shellcheck disable=SC2086  # $env is empty or one VAR=value word
    if env $env "$SFBENCH" --device cuda --quiet --output "$out" "$SF_SRCDIR/scenarios/$s.lua"; then
        echo "PASS: ${env:+$env }$s"
    else
        echo "FAIL: ${env:+$env }$s"
        status=1
    fi
done
exit $status
