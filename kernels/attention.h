/* Attention kernels: shared argument block and entry points (plain C; no CUDA headers).
 *
 * Implementations:
 *   sf_attention_flash_cuda   kernels/attention_flash.cu   FlashAttention-2 style, mma.sync (sm_80+)
 *   sf_attention_hopper_cuda  kernels/attention_hopper.cu  wgmma/TMA, warp-specialised (sm_90a, D = 128)
 *   sf_attention_naive_cuda   kernels/attention_naive.cu   cuBLAS QK^T, fp32 softmax, cuBLAS PV
 *   sf_attention_ref_cpu      src/ref_attention.c          double-precision CPU reference
 *
 * Conventions shared by all implementations:
 *   - q/k/v/out layout [B, N, H, D]: element (b,n,h,d) at b*s[0] + n*s[1] + h*s[2] + d.
 *   - KV head of q head h is h / (n_heads / n_kv_heads) (GQA; MQA when n_kv_heads == 1).
 *   - causal masks key j for query i when j > i + (seq_k - seq_q) (bottom-right aligned).
 *   - a query row with no visible key (causal with seq_q > seq_k) gets out = 0, lse = -inf.
 *   - lse (optional) is [B, H, seq_q] fp32, natural log of sum_j exp(scale * q.k_j).
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
    sf_dtype dtype;              /* SF_F16 or SF_BF16 (SF_F32 and SF_F64 too for the CPU ref) */
    const void *q, *k, *v;       /* layout [B, N, H, D]: element (b,n,h,d) at b*s[0] + n*s[1] + h*s[2] + d */
    void *out;                   /* [B, Nq, H, D] */
    float *lse;                  /* optional (NULL): [B, H, Nq] fp32 natural-log logsumexp of the scaled scores */
    int batch, seq_q, seq_k, n_heads, n_kv_heads, head_dim;
    int64_t q_stride[3], k_stride[3], v_stride[3], o_stride[3]; /* elements, for dims b, n, h; d is contiguous */
    float scale;                 /* softmax scale, usually 1/sqrt(D) */
    int causal;                  /* mask j > i + (seq_k - seq_q) (bottom-right aligned) */
} sf_attention_args;

/* Flash kernel (mma.sync, cp.async). head_dim 64 or 128; dtype f16/bf16; strides multiples of
 * 8 elements and 16-byte aligned pointers. Returns a cudaError_t (0 = ok; cudaErrorInvalidValue
 * for unsupported arguments). Asynchronous on `stream` (a cudaStream_t, NULL = default). */
int sf_attention_flash_cuda(const sf_attention_args *a, void *stream);

/* Hopper kernel (built only when the targets include sm_90a; runs only on sm_90). head_dim 128;
 * f16/bf16; the same stride and alignment rules as the flash kernel. Returns a cudaError_t. */
int sf_attention_hopper_cuda(const sf_attention_args *a, void *stream);

/* Naive path (what PyTorch eager does): bytes of caller-provided scratch it needs (the fp32
 * score matrix and the probability matrix of one batch entry, reused across the batch). */
size_t sf_attention_naive_scratch_bytes(const sf_attention_args *a);
/* Returns 0, a cudaError_t, or a cublasStatus_t + 10000. Sets the handle's stream to `stream`. */
int sf_attention_naive_cuda(const sf_attention_args *a, void *cublas_handle, void *scratch, void *stream);

/* CPU reference: host pointers, any of f32/f16/bf16, double accumulation. Writes lse if non-NULL. */
void sf_attention_ref_cpu(const sf_attention_args *a);

#ifdef __cplusplus
}
#endif

#endif
