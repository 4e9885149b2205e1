/* The memory-bound ops of a Llama decoder layer: RMSNorm (plain, and fused with the residual
 * add), rotary position embedding, and the residual add. Plain C: the host includes this
 * without any CUDA header.
 *
 *   sf_rmsnorm_cuda, sf_rope_cuda, sf_add_cuda   kernels/norm_rope.cu   f16/bf16, fp32 math
 *   sf_rmsnorm_ref_cpu, sf_rope_ref_cpu, ...     src/ref_norm_rope.c    any float dtype, double math
 *
 * Every *_cuda function is asynchronous on `stream` (a cudaStream_t, NULL = legacy default) and
 * returns a cudaError_t value as int: 0 = success, 1 = cudaErrorInvalidValue (a bad shape,
 * dtype or stride: the op glue checks all of these first, with messages), or what the launch
 * returned. Strides are in elements; the last dimension of every tensor is contiguous.
 * Any alignment works: 16-byte vectors when pointers and strides allow them, scalars otherwise. */
#ifndef SF_NORM_ROPE_H
#define SF_NORM_ROPE_H

#include <stddef.h>
#include <stdint.h>
#include "sf_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- RMSNorm ------------------------------------------------------------------------------
 * Llama's RMSNorm of each row r of [rows, hidden]:
 *     out[r, j] = s[r, j] / sqrt(mean_j(s[r, j]²) + eps) * weight[j]
 * with s = x, or, when residual is given (the fused add_rmsnorm), s = round(x + residual):
 * the sum is rounded to dtype, stored back into residual (the stream the next residual add
 * reads), and that rounded sum is what is normalised, so the fused op gives what the add
 * followed by rmsnorm gives. The math is fp32 (double on the CPU) and out is rounded once;
 * HF's LlamaRMSNorm rounds the normalised value to dtype before the weight multiply, a second
 * rounding that this op leaves out.
 * Aliasing: out may be x (same memory, same row stride); residual may be x; out must not
 * overlap residual. Rows are independent: partial overlaps between rows are the caller's bug. */
typedef struct sf_rmsnorm_args {
    sf_dtype dtype;            /* of x, residual, weight and out */
    int64_t rows, hidden;      /* rows >= 0 (0: nothing to do), hidden >= 1 */
    const void *x;             /* [rows, hidden], row stride x_stride */
    void *residual;            /* NULL: plain RMSNorm; else [rows, hidden], read and written */
    const void *weight;        /* [hidden], contiguous */
    void *out;                 /* [rows, hidden], row stride out_stride; e4m3 with out_scale */
    int64_t x_stride, residual_stride, out_stride;
    double eps;                /* >= 0; the GPU adds it in fp32 */
    float *out_scale;          /* NULL, or [rows], written: each row quantized to e4m3 (an FP8
                                  GEMM's input) from its normalised values before any rounding,
                                  as quantize does per row (kernels/quantize.h): scale = amax /
                                  448 (1 where amax is 0), out = value / scale rounded and
                                  saturated; out must not overlap x or residual */
} sf_rmsnorm_args;

int sf_rmsnorm_cuda(const sf_rmsnorm_args *a, void *stream);
void sf_rmsnorm_ref_cpu(const sf_rmsnorm_args *a);

/* ---- Rotary position embedding (Llama-2 / HF convention) ----------------------------------
 * x [batch, seq, heads, head_dim], rotated in place. For the token at (b, n), the position is
 * p = pos_offset + n, or positions[b] + n when positions is given (decoding a batch whose
 * sequences have different lengths: each row turns at its own place); for i in [0, head_dim/2) the pair (x[i], x[i + head_dim/2]) (HF's
 * rotate_half) turns by the angle a_i = fp32(p) ·fp32 inv_freq[i]:
 *     x[i]          <- x[i]·cos a_i - x[i + D/2]·sin a_i
 *     x[i + D/2]    <- x[i + D/2]·cos a_i + x[i]·sin a_i
 * inv_freq[i] = 1 / theta^(2i/D), computed in fp32 as HF does (sf_rope_inv_freq, once on the
 * host, so both backends use the same bits); the angle is one fp32 product, exact to the
 * same bits on both backends; cos/sin are fp32 sincosf on the GPU, double on the CPU; the
 * rotation is fp32 (double) math rounded once (HF rounds cos/sin to dtype first).
 * x may be a strided view, e.g. the q and k heads of a packed QKV buffer [B, N, H + 2Hkv, D]
 * sliced to heads 1..H+Hkv, so one pass rotates q and k together. */
#define SF_ROPE_MAX_HEAD_DIM 512

typedef struct sf_rope_args {
    sf_dtype dtype;
    int64_t batch, seq, heads, head_dim;  /* head_dim even, 2..SF_ROPE_MAX_HEAD_DIM */
    void *x;
    int64_t stride[3];                    /* elements between consecutive b, n, h; d is contiguous */
    int64_t pos_offset;                   /* >= 0; pos_offset + seq <= 2^24 (exact in fp32) */
    const int32_t *positions;             /* NULL, or [batch] first positions (pos_offset 0), each
                                           * >= 0 and <= 2^24 - seq: the caller checks them */
    float inv_freq[SF_ROPE_MAX_HEAD_DIM / 2]; /* the first head_dim/2 entries, sf_rope_inv_freq */
} sf_rope_args;

/* inv_freq[i] = 1 / theta^(fp32(2i) / fp32(head_dim)) for i < head_dim/2, all in fp32 (as HF's
 * 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim)) in float32). */
void sf_rope_inv_freq(float *inv_freq, int64_t head_dim, double theta);

int sf_rope_cuda(const sf_rope_args *a, void *stream);
void sf_rope_ref_cpu(const sf_rope_args *a);

/* ---- Elementwise add ----------------------------------------------------------------------
 * out = a + b over same-shape tensors, fp32 (double) math rounded once. out may be a or b
 * (the same view); other overlaps are the caller's bug. Dimensions that are contiguous for all
 * three tensors are merged before the launch, so a contiguous add is one flat vector loop. */
typedef struct sf_add_args {
    sf_dtype dtype;
    int ndim;                             /* 1..SF_MAX_DIMS */
    int64_t shape[SF_MAX_DIMS];
    const void *a, *b;
    void *out;
    int64_t a_stride[SF_MAX_DIMS], b_stride[SF_MAX_DIMS], out_stride[SF_MAX_DIMS];
} sf_add_args;

int sf_add_cuda(const sf_add_args *a, void *stream);
void sf_add_ref_cpu(const sf_add_args *a);

#ifdef __cplusplus
}
#endif
#endif
