/* Host side of the decode projections' GEMV (kernels/gemv.h) for the ops that run it (gemm,
 * ffn): the split count and the launch, with the tile counters of sf_counters. */
#include "config.h"
#include <stdlib.h>
#include "gemm.h"
#include "cuda_check.h"
#include "gemv.h"

size_t sf_gemv_prepare(lua_State *L, sf_gemv_args *g)
{
    if (!sf_gemv_variant())
        sf_error(L, "%s: SFBENCH_GEMV_VARIANT=%s names no variant of the GEMV: direct or ring", sf_current_op,
                 getenv("SFBENCH_GEMV_VARIANT"));
    int splits = 1;
    SF_CUDA(L, sf_gemv_splits(g, &splits));
    g->splits = splits;
    return sf_gemv_workspace_bytes(g, splits);
}

void sf_gemv_launch(lua_State *L, const sf_gemv_args *g, void *workspace, void *stream)
{
    unsigned *counters = g->splits > 1 ? sf_counters(L, SF_COUNTERS_GEMV) : NULL;
    SF_CUDA(L, sf_gemv_cuda(g, g->splits, workspace, counters, stream));
}
