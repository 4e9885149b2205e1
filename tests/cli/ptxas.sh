#!/bin/sh
# The Hopper kernels as ptxas built them (its reports, kernels/*.ptxas, written by the build):
# no wgmma serialized and no spills. ptxas serializes every wgmma of a kernel where another
# instruction touches a register that an in-flight wgmma uses ("Potential Performance Loss:
# wgmma.mma_async instructions are serialized", C7510-C7520); a build of the FP8 attention kernel
# with that advisory ran 1.26-1.35x longer on an H200 (kernels/NOTES-attention.md, 2026-12-07).
# Skipped (77) where no Hopper kernel was built (no CUDA, or no sm_90a).
. "$SF_SRCDIR/tests/cli/lib.sh"

build=$(dirname "$(dirname "$SFBENCH")")
reports=$(ls "$build"/kernels/*.ptxas 2>/dev/null)
if [ -z "$reports" ]; then
    echo "SKIP: no Hopper kernel was built here (no kernels/*.ptxas)"
    cleanup_scratch
    exit 77
fi

for r in $reports; do
    n=$(basename "$r" .ptxas)
    if grep -q "Compiling entry function" "$r"; then pass "$n: ptxas's report is there"
    else fail "$n: $r holds no ptxas report"; fi
    if grep -q "instructions are serialized" "$r"; then
        fail "$n: ptxas serialized the wgmma: $(grep -o 'serialized due to [^'\'']*' "$r" | sort -u | head -n 3 | tr '\n' ';')"
    else
        pass "$n: no wgmma serialized"
    fi
    if grep -Eq '[1-9][0-9]* bytes spill (stores|loads)' "$r"; then
        fail "$n: spills: $(grep -Eo '[1-9][0-9]* bytes spill (stores|loads)' "$r" | sort -u | tr '\n' ';')"
    else
        pass "$n: no spills"
    fi
done
finish
