/* Host side of the decode projections' GEMV (kernels/gemv.h) for the ops that run it (gemm,
 * ffn): the split count, the tile counters (allocated once, zeroed; every call leaves them
 * zeroed) and the launch. */
#include "config.h"
#include "gemm.h"
#include "cuda_check.h"
#include "gemv.h"

#define GEMV_COUNTERS 65535 /* the most tiles a call has (sf_gemv_unfit) */

static unsigned *counters;

size_t sf_gemv_prepare(lua_State *L, sf_gemv_args *g)
{
    int splits = 1;
    SF_CUDA(L, sf_gemv_splits(g, &splits));
    g->splits = splits;
    return sf_gemv_workspace_bytes(g, splits);
}

void sf_gemv_launch(lua_State *L, const sf_gemv_args *g, void *workspace, void *stream)
{
    if (g->splits > 1 && !counters) {
        unsigned *c = sf_alloc(L, SF_DEV_CUDA, GEMV_COUNTERS * sizeof(unsigned), "the GEMV's tile counters");
        SF_CUDA(L, cudaMemset(c, 0, GEMV_COUNTERS * sizeof(unsigned)));
        counters = c;
    }
    SF_CUDA(L, sf_gemv_cuda(g, g->splits, workspace, counters, stream));
}
