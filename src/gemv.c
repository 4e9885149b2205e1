/* Host side of the decode projections' GEMV (kernels/gemv.h) for the ops that run it (gemm,
 * ffn): the split count and the launch, with the tile counters of sf_counters. */
#include "config.h"
#include "gemm.h"
#include "cuda_check.h"
#include "gemv.h"

size_t sf_gemv_prepare(lua_State *L, sf_gemv_args *g)
{
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
