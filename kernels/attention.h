/* Attention kernels: shared argument block and entry points (plain C; no CUDA headers).
 *
 * Implementations:
 *   sf_attention_flash_cuda   kernels/attention_flash.cu   FlashAttention-2 style, mma.sync (sm_80+)
 *   sf_attention_hopper_cuda  kernels/attention_hopper.cu  wgmma/TMA, warp-specialised (sm_90a, D = 128)
 *   sf_attention_naive_cuda   kernels/attention_naive.cu   cuBLAS QK^T, fp32 softmax, cuBLAS PV
 *   sf_pack_vt_cuda           kernels/attention_pack_vt.cu the FP8 kernel's V layout (vt, below)
 *   sf_attention_ref_cpu      src/ref_attention.c          double-precision CPU reference
 *
 * Conventions shared by all implementations:
 *   - q/k/v/out layout [B, N, H, D]: element (b,n,h,d) at b*s[0] + n*s[1] + h*s[2] + d.
 *   - KV head of q head h is h / (n_heads / n_kv_heads) (GQA; MQA when n_kv_heads == 1).
 *   - causal masks key j for query i when j > i + (seq_k - seq_q) (bottom-right aligned).
 *   - a query row with no visible key (causal with seq_q > seq_k) gets out = 0, lse = -inf.
 *   - lse (optional) is [B, H, seq_q] fp32, natural log of sum_j exp(scale * q.k_j).
 *
 * FP8 (dtype SF_E4M3, the Hopper kernel and the CPU reference): q and k in e4m3, and v as vt, the
 * layout pack_vt writes: [B, Hkv, D, Np], Np = seq_k rounded up to a multiple of 16, so that each
 * (b, h, d) row holds one value per key, contiguous (FP8 wgmma takes its B operand K-major only).
 * Within every 16 columns the keys are in the order in which the kernel's P fragments hold them
 * (sf_vt_key); columns whose key is past seq_k hold zeros (any finite value does: their P is 0).
 * Each operand comes with a per-tensor f32 dequantization scale (quantize's: real = value · scale);
 * q_scale · k_scale must be positive (the kernel writes NaN otherwise). out is f16 or bf16 (f32 and
 * f64 too for the CPU reference).
 */
#ifndef SF_ATTENTION_H
#define SF_ATTENTION_H

#include <stddef.h>
#include <stdint.h>
#include "sf_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sf_attention_args {
    sf_dtype dtype;              /* of q, k, v: SF_F16 or SF_BF16 (SF_F32 and SF_F64 too for the CPU ref), or SF_E4M3 */
    sf_dtype out_dtype;          /* dtype, or with e4m3 inputs SF_F16 or SF_BF16 (SF_F32, SF_F64 for the CPU ref) */
    const void *q, *k, *v;       /* layout [B, N, H, D]: element (b,n,h,d) at b*s[0] + n*s[1] + h*s[2] + d;
                                  * e4m3: v is vt [B, Hkv, D, Np], element (b,h,d,p) at b*s[0] + h*s[1] + d*s[2] + p */
    const float *q_scale, *k_scale, *v_scale; /* e4m3 only: the f32 [1] dequantization scales (device memory on the GPU) */
    void *out;                   /* [B, Nq, H, D] */
    float *lse;                  /* optional (NULL): [B, H, Nq] fp32 natural-log logsumexp of the scaled scores */
    int batch, seq_q, seq_k, n_heads, n_kv_heads, head_dim;
    int64_t q_stride[3], k_stride[3], v_stride[3], o_stride[3]; /* elements, for dims b, n, h (vt: b, h, d);
                                                                 * the last dimension is contiguous */
    float scale;                 /* softmax scale, usually 1/sqrt(D) */
    int causal;                  /* mask j > i + (seq_k - seq_q) (bottom-right aligned) */
    int round_p;                 /* CPU reference, e4m3 inputs: P = exp(s - row max) rounded to e4m3 before
                                  * P·V, its row sum taken before the rounding (FlashAttention-3's
                                  * straightforward FP8 computation, which the kernel's error is bounded by) */
} sf_attention_args;

/* vt's key order (see above). The Hopper kernel converts P = exp(S - m) from the fp32 accumulator
 * fragment of S = Q·Kᵀ to the e4m3 A fragment of wgmma k32 in registers, each thread keeping its
 * own values: in 32 keys, the accumulator gives a thread keys 8i + 2t + {0, 1} (t = lane % 4,
 * i = 0..3) of its row, and the A fragment wants keys 4t + {0..3} and 16 + 4t + {0..3}. The thread
 * puts keys 2t, 2t+1, 8+2t, 9+2t where the fragment expects 4t..4t+3, and the same 16 keys on, so
 * column p of a group of 16 must hold key sf_vt_key(p): p = 4t + e holds 8·(e / 2) + 2t + e % 2. */
#define SF_VT_GROUP 16
#ifdef __CUDACC__
#define SF_VT_HD __host__ __device__ __forceinline__
#else
#define SF_VT_HD static inline
#endif
SF_VT_HD int sf_vt_key(int p)
{
    return (p & ~(SF_VT_GROUP - 1)) | (p & 1) | ((p >> 2) & 3) << 1 | ((p >> 1) & 1) << 3;
}
/* vt's columns for seq_k keys */
SF_VT_HD int64_t sf_vt_columns(int64_t seq_k) { return (seq_k + SF_VT_GROUP - 1) / SF_VT_GROUP * SF_VT_GROUP; }

/* Flash kernel (mma.sync, cp.async). head_dim 64 or 128; dtype f16/bf16; strides multiples of
 * 8 elements and 16-byte aligned pointers. Returns a cudaError_t (0 = ok; cudaErrorInvalidValue
 * for unsupported arguments). Asynchronous on `stream` (a cudaStream_t, NULL = default). */
int sf_attention_flash_cuda(const sf_attention_args *a, void *stream);

/* Hopper kernel (built only when the targets include sm_90a; runs only on sm_90). head_dim 128;
 * f16/bf16 with the same stride and alignment rules as the flash kernel, or e4m3 q, k and vt
 * (strides multiples of 16 elements, 16-byte aligned pointers) into an f16/bf16 out (strides
 * multiples of 8). Returns a cudaError_t. */
int sf_attention_hopper_cuda(const sf_attention_args *a, void *stream);

/* vt [B, Hkv, D, sf_vt_columns(N)] from e4m3 v [B, N, Hkv, D] (strides in elements for b, n, h and
 * b, h, d; the last dimension of each contiguous), zeros past key N. Returns a cudaError_t. */
int sf_pack_vt_cuda(const void *v, const int64_t *v_stride, void *vt, const int64_t *vt_stride, int batch, int n,
                    int heads, int head_dim, void *stream);

/* Naive path (what PyTorch eager does): bytes of caller-provided scratch it needs (S, S·scale
 * and P in the input dtype and the fp32 probabilities of one batch entry, reused across the
 * batch). */
size_t sf_attention_naive_scratch_bytes(const sf_attention_args *a);
/* Returns 0, a cudaError_t, or a cublasStatus_t + 10000. Sets the handle's stream to `stream`. */
int sf_attention_naive_cuda(const sf_attention_args *a, void *cublas_handle, void *scratch, void *stream);

/* CPU reference: host pointers, any of f32/f16/bf16/f64 or e4m3 (dequantized: value · scale, in
 * double), double accumulation. Writes lse if non-NULL. */
void sf_attention_ref_cpu(const sf_attention_args *a);

#ifdef __cplusplus
}
#endif

#endif
