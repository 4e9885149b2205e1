/* FFN kernels: elementwise activations, the gate/up interleave of the fused SwiGLU GEMM
 * (kernels/gemm_hopper.h), and the CPU reference of the whole FFN. Plain C: the host includes
 * this without any CUDA header.
 *
 * Every *_cuda function is asynchronous on `stream` (a cudaStream_t, NULL = legacy default) and
 * returns a cudaError_t value as int: 0 = cudaSuccess, 1 = cudaErrorInvalidValue (bad shape,
 * dtype, pointer alignment), or whatever the launch returned. All tensors are row-major and
 * contiguous unless a leading dimension says otherwise. */
#ifndef SF_FFN_H
#define SF_FFN_H

#include <stddef.h>
#include <stdint.h>
#include "sf_types.h"
#include "gemm_hopper.h" /* SF_SWIGLU_INTERLEAVE */

#ifdef __cplusplus
extern "C" {
#endif

/* ---- elementwise (kernels/ffn_act.cu) --------------------------------------------------- */

/* out[i] = act(in[i]) for act SF_EPI_GELU_TANH, SF_EPI_GELU_ERF or SF_EPI_SILU, computed in
 * fp32, rounded once; in == out is allowed.
 * dtype f32, f16 or bf16. 16-byte vectors when in/out are 16-byte aligned, scalar otherwise. */
int sf_act_cuda(sf_epilogue act, sf_dtype dtype, const void *in, void *out, int64_t n, void *stream);

/* out[i] = a[i] * b[i] in fp32, rounded once (as PyTorch's eager mul); out may alias a or b. */
int sf_mul_cuda(sf_dtype dtype, const void *a, const void *b, void *out, int64_t n, void *stream);

/* ---- gate/up interleave for SF_EPI_SWIGLU ----------------------------------------------- */

/* out[2I, H] = interleave(w1[I, H], w3[I, H]), the layout of SF_SWIGLU_INTERLEAVE; I must be a
 * multiple of 8. Also interleaves biases: pass b1, b3 as [I, 1] (H = 1). Rows are moved, not
 * read: elements of any dtype of `elem` bytes (1, 2, 4 or 8), FP8 weights as 16-bit ones. */
int sf_interleave_gate_up_cuda(size_t elem, const void *w1, const void *w3, void *out, int64_t I, int64_t H,
                               void *stream);

/* ---- CPU reference of the whole FFN (src/ref_ffn.c) ------------------------------------- */

typedef struct sf_ffn_ref_args {
    sf_epilogue act;     /* SF_EPI_GELU_TANH, SF_EPI_GELU_ERF: y = gelu(x·W1ᵀ + b1)·W2ᵀ + b2
                            SF_EPI_SWIGLU: y = (silu(x·W1ᵀ + b1) ⊙ (x·W3ᵀ + b3))·W2ᵀ + b2 */
    sf_dtype dtype;      /* of every tensor below (FP8: of x and the weights; out is out_dtype) */
    int64_t T, H, I;
    const void *x;       /* [T, H] */
    const void *w1;      /* [I, H] */
    const void *w3;      /* [I, H], SF_EPI_SWIGLU only (NULL for gelu) */
    const void *w13;     /* SF_EPI_SWIGLU with w1 and w3 NULL: [2I, H], the two interleaved as
                            pack_gate_up writes them (SF_SWIGLU_INTERLEAVE) */
    const void *w2;      /* [H, I] */
    const void *b1;      /* [I] or NULL */
    const void *b2;      /* [H] or NULL */
    const void *b3;      /* [I] or NULL (SF_EPI_SWIGLU) */
    void *out;           /* [T, H] */
    /* FP8 (x_scale set; SF_EPI_SWIGLU, no biases): x and the weights are e4m3 (dtype), each row
     * times its f32 dequantization scale, x_scale [T], w1_scale and w3_scale [I], w2_scale [H];
     * h is rounded to out_dtype, then quantized to e4m3 with a scale per token (as the quantize
     * op does) before the down projection; out is out_dtype. With h_scale (f32 [1]), h is
     * quantized per tensor instead: with calibrate, rounded to out_dtype and h_scale written from
     * its amax; without, h_scale read (fixed ahead) and h quantized from double (the GPU's
     * epilogue quantizes its fp32 h, never rounded to 16 bits). */
    const float *x_scale, *w1_scale, *w3_scale, *w13_scale, *w2_scale; /* w13_scale [2I]: of w13 */
    sf_dtype out_dtype;
    float *h_scale;
    int calibrate;
} sf_ffn_ref_args;

/* Host pointers; double accumulation; the intermediate h is rounded to dtype (FP8: to out_dtype,
 * then to e4m3). On allocation failure out is filled with NaN so that no comparison passes. */
void sf_ffn_ref_cpu(const sf_ffn_ref_args *a);

#ifdef __cplusplus
}
#endif
#endif
