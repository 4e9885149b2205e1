#!/bin/sh
# The Hopper kernels as ptxas built them (its reports, kernels/NAME.ptxas, which the build writes):
# no wgmma serialized and no spills. ptxas serializes every wgmma of a kernel where another
# instruction touches a register that an in-flight wgmma uses ("Potential Performance Loss:
# wgmma.mma_async instructions are serialized", C7510-C7520); a build of the FP8 attention kernel
# with that advisory ran 1.26-1.35x longer on an H200 (kernels/NOTES-attention.md, 2026-12-07).
# make check names the reports of the Hopper kernels this build compiles (SF_PTXAS_REPORTS,
# relative to the build tree); skipped (77) where it compiles none (no CUDA, or no sm_90a).
. "$SF_SRCDIR/tests/cli/lib.sh"

if [ -z "${SF_PTXAS_REPORTS:-}" ]; then
    echo "SKIP: this build compiles no Hopper kernel"
    cleanup_scratch
    exit 77
fi
build=$(dirname "$(dirname "$SFBENCH")")

for rel in $SF_PTXAS_REPORTS; do
    r=$build/$rel
    n=$(basename "$rel" .ptxas)
    if ! grep -q "Compiling entry function" "$r" 2>/dev/null; then
        fail "$n: no ptxas report in $r (an object built before the build kept them: make clean)"
        continue
    fi
    pass "$n: ptxas's report is there"
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
