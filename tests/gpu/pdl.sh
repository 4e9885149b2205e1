#!/bin/sh
# Programmatic dependent launch changes when kernels start, never what they compute: a chain of
# dependent ops gives the same bits with it (the default) and without (SFBENCH_PDL=0).
# Skips (77) where there is no Hopper GPU (PDL needs cc 9.0; the chain runs our Hopper kernels).
: "${SFBENCH:?run through make check}"
if ! "$SFBENCH" --device cuda -e 'assert(require("sfbench").device().hopper_kernels)' >/dev/null 2>&1; then
    echo "SKIP: no Hopper GPU with our sm_90a kernels"
    exit 77
fi
chain="$SF_SRCDIR/tests/gpu/pdl_chain.lua"
on=$(SFBENCH_PDL=1 "$SFBENCH" --device cuda "$chain") || { echo "FAIL: chain with PDL"; exit 1; }
off=$(SFBENCH_PDL=0 "$SFBENCH" --device cuda "$chain") || { echo "FAIL: chain without PDL"; exit 1; }
echo "with PDL: $on; without: $off"
case "$on" in *nan*|*inf*) echo "FAIL: the chain did not stay finite"; exit 1 ;; esac
[ "$on" = "$off" ] || { echo "FAIL: PDL changed the result"; exit 1; }
echo "PASS"
