# Sourced by the GPU shell tests (". "$SF_SRCDIR/tests/gpu/require-gpu.sh"): run through make
# check, and skip (77) where there is no CUDA device.
: "${SFBENCH:?run through make check}"
if ! "$SFBENCH" --device cuda -e '' >/dev/null 2>&1; then
    echo "SKIP: no CUDA device"
    exit 77
fi
