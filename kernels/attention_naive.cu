/* Naive attention, the way PyTorch eager runs it (transformers' eager_attention_forward:
 * `softmax(q @ k.T * scale, dtype=float32).to(q.dtype) @ v`): every intermediate of that
 * expression is a full N×N tensor in device memory, 10 bytes per score in all.
 *   S   = Q K^T             cuBLAS strided-batched GEMM, f16/bf16 in and out
 *   S'  = S * scale         elementwise, in the input dtype
 *   P32 = softmax(S' [+mask]) one block per row, fp32 out
 *   P   = P32 in the dtype   elementwise cast
 *   O   = P V               cuBLAS strided-batched GEMM, fp32 accumulation, output in the dtype
 * Batched over the q heads that share a kv head (K/V stride 0 inside a group for GQA/MQA; all
 * heads in one call for MHA), looping over batch entries and kv groups. The scratch (S, S' and P
 * in the input dtype and P32, of one batch entry) comes from the caller and is reused across the
 * batch. */
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <cublas_v2.h>
#include <stdint.h>
#include <math.h>
#include "attention.h"
#include "common.cuh"

namespace sf_naive {

constexpr int SM_THREADS = 256;

__device__ __forceinline__ void combine(float &m, float &s, float m2, float s2)
{
    const float mx = fmaxf(m, m2);
    if (mx == -INFINITY) return; /* both empty */
    s = s * __expf(m - mx) + s2 * __expf(m2 - mx);
    m = mx;
}

/* out[i] = in[i] * scale (the `* scaling` of eager attention), rounded to the dtype */
template <typename T>
__global__ void scale_kernel(const T *__restrict__ in, T *__restrict__ out, float scale, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = sf::dtype_traits<T>::from_f(sf::dtype_traits<T>::to_f(in[i]) * scale);
}

/* out[i] = (T)in[i] (the `.to(q.dtype)` after the fp32 softmax) */
template <typename T>
__global__ void cast_kernel(const float *__restrict__ in, T *__restrict__ out, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = sf::dtype_traits<T>::from_f(in[i]);
}

/* One block per row of S (rows = heads x seq_q of one batch entry); S is scaled already. */
template <typename T>
__global__ void __launch_bounds__(SM_THREADS) softmax_rows(const T *__restrict__ S, float *__restrict__ P,
                                                           float *lse, int seq_q, int seq_k, int causal,
                                                           int diag)
{
    const int row = blockIdx.x;                 /* h * seq_q + i */
    const int i = row % seq_q;
    const T *s = S + (size_t)row * seq_k;
    float *pr = P + (size_t)row * seq_k;
    int lim = seq_k - 1;
    if (causal) lim = min(lim, i + diag);       /* last visible key */

    float m = -INFINITY, sum = 0.f;
    for (int j = threadIdx.x; j <= lim; j += SM_THREADS) {
        const float x = sf::dtype_traits<T>::to_f(s[j]);
        if (x > m) { sum = sum * __expf(m - x) + 1.f; m = x; }
        else sum += __expf(x - m);
    }
    for (int off = 16; off; off >>= 1) {
        const float m2 = __shfl_xor_sync(0xffffffffu, m, off), s2 = __shfl_xor_sync(0xffffffffu, sum, off);
        combine(m, sum, m2, s2);
    }
    __shared__ float wm[SM_THREADS / 32], ws[SM_THREADS / 32];
    const int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) { wm[w] = m; ws[w] = sum; }
    __syncthreads();
    m = wm[0];
    sum = ws[0];
    for (int k = 1; k < SM_THREADS / 32; k++) combine(m, sum, wm[k], ws[k]);
    const float inv = sum > 0.f ? 1.f / sum : 0.f;
    for (int j = threadIdx.x; j < seq_k; j += SM_THREADS)
        pr[j] = j <= lim ? __expf(sf::dtype_traits<T>::to_f(s[j]) - m) * inv : 0.f;
    if (lse && threadIdx.x == 0) lse[row] = sum > 0.f ? m + logf(sum) : -INFINITY;
}

static int cublas_err(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS ? 0 : 10000 + (int)s; }

static size_t aligned(size_t bytes) { return (bytes + 255) & ~(size_t)255; }

static unsigned elementwise_grid(size_t n)
{
    size_t blocks = (n + 255) / 256;
    return (unsigned)(blocks > 65535 * 8 ? 65535 * 8 : blocks);
}

template <typename T>
static int scale_softmax_cast(const T *S, T *Ss, float *P32, T *P, float *lse, const sf_attention_args *a,
                              size_t elems, cudaStream_t st)
{
    scale_kernel<T><<<elementwise_grid(elems), 256, 0, st>>>(S, Ss, a->scale, elems);
    softmax_rows<T><<<(unsigned)(a->n_heads * a->seq_q), SM_THREADS, 0, st>>>(Ss, P32, lse, a->seq_q, a->seq_k,
                                                                            a->causal, a->seq_k - a->seq_q);
    cast_kernel<T><<<elementwise_grid(elems), 256, 0, st>>>(P32, P, elems);
    return (int)cudaGetLastError();
}

} // namespace sf_naive

extern "C" {

size_t sf_attention_naive_scratch_bytes(const sf_attention_args *a)
{
    if (!a || a->seq_q <= 0 || a->seq_k <= 0 || a->n_heads <= 0) return 0;
    const size_t elems = (size_t)a->n_heads * a->seq_q * a->seq_k;
    return 3 * sf_naive::aligned(elems * 2) + sf_naive::aligned(elems * 4); /* S, S', P (dtype) and P32 */
}

int sf_attention_naive_cuda(const sf_attention_args *a, void *cublas_handle, void *scratch, void *stream)
{
    using namespace sf_naive;
    if (!a || !cublas_handle || (a->dtype != SF_F16 && a->dtype != SF_BF16)) return (int)cudaErrorInvalidValue;
    if (a->batch < 0 || a->seq_q < 0 || a->seq_k < 0 || a->n_heads <= 0 || a->head_dim <= 0)
        return (int)cudaErrorInvalidValue;
    if (a->n_kv_heads <= 0 || a->n_heads % a->n_kv_heads) return (int)cudaErrorInvalidValue;
    if (a->batch == 0 || a->seq_q == 0) return 0;
    if (a->seq_k == 0) return (int)cudaErrorInvalidValue; /* nothing to attend to */
    if (!scratch) return (int)cudaErrorInvalidValue;

    cublasHandle_t hdl = (cublasHandle_t)cublas_handle;
    cudaStream_t st = (cudaStream_t)stream;
    int e = cublas_err(cublasSetStream(hdl, st));
    if (e) return e;

    const int H = a->n_heads, Hkv = a->n_kv_heads, G = H / Hkv, D = a->head_dim;
    const int Nq = a->seq_q, Nk = a->seq_k;
    const size_t elems = (size_t)H * Nq * Nk;
    char *S = (char *)scratch, *Ss = S + aligned(elems * 2), *P = Ss + aligned(elems * 2);
    float *P32 = (float *)(P + aligned(elems * 2));
    const cudaDataType_t dt = a->dtype == SF_F16 ? CUDA_R_16F : CUDA_R_16BF;
    const float zero = 0.f, one = 1.f;
    const long long sq = (long long)Nq * Nk; /* elements per head of S / P */

    /* MHA: all heads in one call (K/V advance by their head stride); GQA/MQA: one call per kv
     * head over its G q heads, K/V stride 0. */
    const int calls = G == 1 ? 1 : Hkv, count = G == 1 ? H : G;
    for (int b = 0; b < a->batch; b++) {
        for (int c = 0; c < calls; c++) {
            const int h0 = c * count;            /* first q head of this call */
            const int hk = G == 1 ? 0 : c;       /* its kv head */
            const char *q = (const char *)a->q + 2 * (b * a->q_stride[0] + (int64_t)h0 * a->q_stride[2]);
            const char *k = (const char *)a->k + 2 * (b * a->k_stride[0] + (int64_t)hk * a->k_stride[2]);
            /* column-major view: S^T (Nk x Nq, ld Nk) = K (as D x Nk, ld ks1)^T . Q (as D x Nq, ld qs1) */
            e = cublas_err(cublasGemmStridedBatchedEx(
                hdl, CUBLAS_OP_T, CUBLAS_OP_N, Nk, Nq, D, &one, k, dt, (int)a->k_stride[1],
                G == 1 ? (long long)a->k_stride[2] : 0LL, q, dt, (int)a->q_stride[1], (long long)a->q_stride[2],
                &zero, S + 2 * (size_t)h0 * sq, dt, Nk, sq, count, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
            if (e) return e;
        }
        float *lse = a->lse ? a->lse + (size_t)b * H * Nq : NULL;
        e = a->dtype == SF_F16 ? scale_softmax_cast((const __half *)S, (__half *)Ss, P32, (__half *)P, lse, a, elems, st)
                          : scale_softmax_cast((const __nv_bfloat16 *)S, (__nv_bfloat16 *)Ss, P32, (__nv_bfloat16 *)P,
                                               lse, a, elems, st);
        if (e) return e;
        for (int c = 0; c < calls; c++) {
            const int h0 = c * count, hk = G == 1 ? 0 : c;
            const char *v = (const char *)a->v + 2 * (b * a->v_stride[0] + (int64_t)hk * a->v_stride[2]);
            char *o = (char *)a->out + 2 * (b * a->o_stride[0] + (int64_t)h0 * a->o_stride[2]);
            /* column-major view: O^T (D x Nq, ld os1) = V^T (D x Nk, ld vs1) . P^T (Nk x Nq, ld Nk) */
            e = cublas_err(cublasGemmStridedBatchedEx(
                hdl, CUBLAS_OP_N, CUBLAS_OP_N, D, Nq, Nk, &one, v, dt, (int)a->v_stride[1],
                G == 1 ? (long long)a->v_stride[2] : 0LL, P + 2 * (size_t)h0 * sq, dt, Nk, sq, &zero, o, dt,
                (int)a->o_stride[1], (long long)a->o_stride[2], count, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
            if (e) return e;
        }
    }
    return 0;
}

} // extern "C"
