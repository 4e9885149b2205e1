/* The decode projections' GEMV (kernels/gemv.cu): out[m, n] = x[m, k]·w[n, k]ᵀ for a few rows m
 * (m <= SF_GEMV_MAX_M), the shape of a Linear layer in a decode step, where the time is the time
 * to stream w once. Plain C; no CUDA headers.
 *
 * Linear epilogue: out = act(alpha·x·wᵀ + beta·c + bias), fp32 until the one rounding; c [m, n]
 * is read only when beta != 0 and may be out itself (a residual added in place); bias [n].
 * SwiGLU epilogue: w is gate and up interleaved as pack_gate_up lays them out (blocks of 8 gate
 * rows then 8 up rows, kernels/ffn.h), n = 2I, and out [m, I] = silu(x·w1ᵀ) ⊙ x·w3ᵀ.
 *
 * The k dimension is split over CTAs when the rows alone would not fill the GPU; the splits'
 * fp32 partial sums go to a workspace and the last CTA of each tile to finish (counted in
 * `counters`) adds them in split order, so the result does not depend on the CTAs' timing. */
#ifndef SF_GEMV_H
#define SF_GEMV_H

#include <stddef.h>
#include <stdint.h>
#include "sf_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SF_GEMV_MAX_M 64
#define SF_GEMV_MAX_SPLITS 64
#define SF_GEMV_TILE_ROWS 64 /* rows of w per CTA: one tile counter each */

typedef struct sf_gemv_args {
    sf_dtype dtype;             /* SF_F16 or SF_BF16: x, w, c, bias and out alike */
    int64_t m, n, k;
    const void *x, *w, *c, *bias;
    void *out;
    int64_t ldx, ldw, ldc, ldo; /* row strides in elements */
    float alpha, beta;
    sf_epilogue epilogue;       /* the linear epilogue's NONE, RELU or GELU_TANH, or SWIGLU (alpha 1,
                                 * beta 0, no bias; n % 16 == 0) */
    int splits;                 /* k splits; 0: chosen to fill the GPU (sf_gemv_splits) */
} sf_gemv_args;

/* Why the kernel cannot take these arguments, or NULL. Any k, n and m <= SF_GEMV_MAX_M; rows
 * whose pointers and strides allow it are read in 16-byte vectors, others element by element. */
const char *sf_gemv_unfit(const sf_gemv_args *a);
/* *splits: what sf_gemv_cuda runs with (a->splits when non-zero, clamped to what k allows).
 * Returns a cudaError_t (it asks the device its SM count once). */
int sf_gemv_splits(const sf_gemv_args *a, int *splits);
/* fp32 workspace bytes for `splits` (0 for one split) and the tile counters needed */
size_t sf_gemv_workspace_bytes(const sf_gemv_args *a, int splits);
int64_t sf_gemv_tiles(const sf_gemv_args *a);
/* Asynchronous on `stream`; `counters`: sf_gemv_tiles(a) zeroed unsigned ints (left zeroed),
 * needed when splits > 1; no two calls sharing counters or workspace may run concurrently.
 * Returns a cudaError_t (cudaErrorInvalidValue for arguments sf_gemv_unfit refuses). */
int sf_gemv_cuda(const sf_gemv_args *a, int splits, void *workspace, unsigned *counters, void *stream);

#ifdef __cplusplus
}
#endif
#endif
