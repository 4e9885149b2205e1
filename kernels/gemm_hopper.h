/* Our Hopper GEMM with fused epilogues (kernels/gemm_hopper.cu, sm_90a). Plain C: the host
 * includes this without any CUDA header.
 *
 * sf_gemm_epilogue_cuda is asynchronous on `stream` (a cudaStream_t, NULL = legacy default) and
 * returns a cudaError_t value as int: 0 = cudaSuccess, 1 = cudaErrorInvalidValue (bad shape,
 * dtype, pointer alignment), 801 = cudaErrorNotSupported (a device that is not cc 9.0), or
 * whatever the launch returned. All tensors are row-major and contiguous unless a leading
 * dimension says otherwise. */
#ifndef SF_GEMM_HOPPER_H
#define SF_GEMM_HOPPER_H

#include <stdint.h>
#include <string.h>
#include "sf_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* SF_EPI_ROPE: the columns [0, rope_cols) of C are heads of SF_GEMM_ROPE_HEAD_DIM, rotated as
 * sf_rope_cuda does (kernels/norm_rope.h: HF's rotate_half pairs (i, i + 64), fp32 angle
 * fp32(p)·inv_freq[i]), but on the fp32 accumulators before the one rounding to C's dtype, and
 * with cos and sin from a range reduction and the hardware's approximations (absolute error
 * under 1e-6) instead of sincosf. Row m of C is the token at position rope_pos_offset + m %
 * rope_seq. */
#define SF_GEMM_ROPE_HEAD_DIM 128

typedef struct sf_gemm_epi_args {
    sf_dtype dtype;      /* SF_F16 or SF_BF16: bias, R and C of this type */
    sf_dtype in_dtype;   /* A and B: dtype, or SF_E4M3 with a_scale and b_scale */
    sf_epilogue epilogue; /* NONE, GELU_TANH, GELU_ERF, SWIGLU, ADD or ROPE (sf_types.h) */
    int64_t M, N, K;     /* A [M, K], B [N, K] (a Linear weight), fp32 accumulation */
    const void *A;
    const void *B;
    const void *bias;    /* [N] in B's row order (interleaved for SWIGLU), or NULL */
    const void *R;       /* residual [M, N], SF_EPI_ADD only */
    void *C;             /* [M, N], or [M, N/2] for SF_EPI_SWIGLU, of dtype (e4m3 with out_scale);
                            must not overlap A or B */
    int64_t lda, ldb, ldc, ldr; /* leading dimensions in elements; 0 = packed (K, K, N or N/2, N) */
    int tile_n;          /* 0 = chosen from the shape; 128, 176, 208, 224 or 256 to force a tile
                            width (176, 208, 224: staged epilogue only) */
    int cluster_m;       /* 0 = chosen from the shape; 1 = one CTA per tile; 2 = pairs of CTAs
                            along M share each B tile through TMA multicast */
    int epilogue_store;  /* 0 = default; 1 = stores from registers; 2 = through shared memory and
                            TMA stores (needs C 16-byte aligned, ldc a multiple of 8) */
    int group_m;         /* rasterisation: M-blocks (128 rows) per group of tiles walked together
                            across N; 0 = automatic (16 M-blocks) */
    int64_t rope_cols;   /* SF_EPI_ROPE: a multiple of 128, at most N */
    int64_t rope_seq;    /* SF_EPI_ROPE: tokens per sequence (rows of C), >= 1 */
    int64_t rope_pos_offset; /* SF_EPI_ROPE: >= 0, rope_pos_offset + rope_seq <= 2^24 */
    float rope_inv_freq[SF_GEMM_ROPE_HEAD_DIM / 2]; /* SF_EPI_ROPE: from sf_rope_inv_freq */
    const float *a_scale, *b_scale; /* SF_E4M3 inputs: A·Bᵀ is scaled by a_scale·b_scale on the
                                       fp32 accumulators, before bias and epilogue: f32 [1]
                                       each, or a_scale [M] with a_scale_rows and b_scale [N]
                                       (in B's row order) with b_scale_rows */
    int a_scale_rows, b_scale_rows;
    const float *out_scale; /* NULL, or SF_EPI_SWIGLU over SF_E4M3 inputs: C is e4m3, each value
                               divided by out_scale[0] (f32, a scale fixed ahead), rounded to
                               nearest even and saturated, as quantize writes it (quantize.h) */
} sf_gemm_epi_args;

/* Requirements (else cudaErrorInvalidValue): M >= 1 (M = 0 is a no-op), N and K multiples of
 * 64, A and B 16-byte aligned with lda, ldb multiples of 8 (e4m3: 16), C and R 4-byte aligned with even
 * ldc, ldr, bias 4-byte aligned. M, N, K below 2^31. SF_EPI_ROPE runs tile widths 128 or 256
 * only (a tile holds whole heads), and the staged epilogue only (C 16-byte aligned, ldc a
 * multiple of 8); so do e4m3 inputs, whose scales are 4-byte aligned, whose in_dtype is
 * the only one other than dtype, and whose epilogue is not a GELU. An e4m3 C (out_scale,
 * 4-byte aligned) takes SWIGLU over e4m3 inputs, the staged epilogue (C 16-byte aligned, ldc a
 * multiple of 16) and tile widths 128, 224 or 256. tile_n, cluster_m, epilogue_store in the ranges above (a width that needs the
 * staged epilogue is refused where it cannot be used), group_m >= 0. Needs no workspace. Only cc 9.0 runs it. */
int sf_gemm_epilogue_cuda(const sf_gemm_epi_args *a, void *stream);

/* The arguments of a Linear product out = epi(x·wᵀ (+ bias)), x [M, K] and w [N, K] packed, every
 * choice automatic; a caller sets whatever else its epilogue reads (R, the rope fields). */
static inline sf_gemm_epi_args sf_gemm_epi_linear(sf_dtype dtype, sf_epilogue epilogue, const void *x, const void *w,
                                                  const void *bias, void *out, int64_t M, int64_t N, int64_t K)
{
    sf_gemm_epi_args g;
    memset(&g, 0, sizeof g);
    g.dtype = dtype;
    g.in_dtype = dtype;
    g.epilogue = epilogue;
    g.M = M;
    g.N = N;
    g.K = K;
    g.A = x;
    g.B = w;
    g.bias = bias;
    g.C = out;
    return g;
}

/* B for SF_EPI_SWIGLU holds W1 (gate) and W3 (up) rows interleaved in blocks of
 * SF_SWIGLU_INTERLEAVE rows: B row 16p + r is W1 row 8p + r for r < 8, W3 row 8p + r - 8 for
 * r >= 8. Eight is the width of one column block of the wgmma accumulator, so each thread holds
 * the gate and up values of the same output element and the epilogue needs no data exchange;
 * it is independent of the GEMM's tile width. */
#define SF_SWIGLU_INTERLEAVE 8

#ifdef __cplusplus
}
#endif
#endif
