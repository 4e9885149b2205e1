/* Elementwise kernels of the unfused FFN (the PyTorch-eager path) and the gate/up interleave that
 * prepares B for the SWIGLU GEMM epilogue. All are memory-bound: one 16-byte load per operand
 * and one 16-byte store per 8 (f16/bf16) or 4 (f32) elements, several vectors in flight per
 * thread, a grid-stride loop over a grid sized to fill the device. */
#include <cuda_runtime.h>

#include "common.cuh"
#include "ffn.h"

namespace {

constexpr int kThreads = 256;
constexpr int kUnroll = 4; /* 16-byte vectors per thread per iteration: 64 B in flight per operand */

template <int ACT> __device__ __forceinline__ float apply_act(float x)
{
    if (ACT == SF_EPI_GELU_TANH) return sf::gelu_tanh(x);
    if (ACT == SF_EPI_GELU_ERF) return sf::gelu_erf(x);
    return sf::silu(x);
}

/* Functors over fp32 values, so one kernel body serves act (1 input) and mul (2 inputs). */
template <int ACT> struct act_op {
    __device__ __forceinline__ float operator()(float a, float) const { return apply_act<ACT>(a); }
};
struct mul_op {
    __device__ __forceinline__ float operator()(float a, float b) const { return a * b; }
};

/* n_vec 16-byte vectors through the vector path, elements [n_vec·VEC, n) through the scalar
 * one (the host sets n_vec = 0 when a pointer is not 16-byte aligned). b is ignored (may be
 * NULL) for one-input ops. No __restrict__: out may alias an input (each element is read
 * and then written by the same thread). */
template <typename T, int NIN, typename Op>
__global__ void __launch_bounds__(kThreads) elementwise_kernel(const T *a, const T *b, T *out,
                                                               int64_t n, int64_t n_vec, Op op)
{
    using tr = sf::dtype_traits<T>;
    sf::grid_dep_wait();
    sf::grid_dep_launch();
    constexpr int VEC = 16 / sizeof(T);
    const uint4 *va = reinterpret_cast<const uint4 *>(a);
    const uint4 *vb = reinterpret_cast<const uint4 *>(b);
    uint4 *vo = reinterpret_cast<uint4 *>(out);
    const int64_t stride = (int64_t)gridDim.x * kThreads * kUnroll;

    for (int64_t base = (int64_t)blockIdx.x * kThreads * kUnroll + threadIdx.x; base < n_vec;
         base += stride) {
        sf::vec16<T> xa[kUnroll], xb[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            int64_t i = base + (int64_t)u * kThreads;
            if (i < n_vec) {
                xa[u].raw = va[i];
                if (NIN == 2) xb[u].raw = vb[i];
            }
        }
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            int64_t i = base + (int64_t)u * kThreads;
            if (i < n_vec) {
                sf::vec16<T> r;
#pragma unroll
                for (int e = 0; e < VEC; e++)
                    r.e[e] = tr::from_f(op(tr::to_f(xa[u].e[e]), NIN == 2 ? tr::to_f(xb[u].e[e]) : 0.0f));
                vo[i] = r.raw;
            }
        }
    }
    for (int64_t i = n_vec * VEC + (int64_t)blockIdx.x * kThreads + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * kThreads)
        out[i] = tr::from_f(op(tr::to_f(a[i]), NIN == 2 ? tr::to_f(b[i]) : 0.0f));
}

template <typename T, int NIN, typename Op>
int launch_elementwise(const void *a, const void *b, void *out, int64_t n, void *stream, Op op)
{
    if (n < 0 || !a || !out || (NIN == 2 && !b)) return (int)cudaErrorInvalidValue;
    if (n == 0) return (int)cudaSuccess;
    constexpr int VEC = 16 / sizeof(T);
    bool vec_ok = sf::aligned16(a) && sf::aligned16(out) && (NIN == 1 || sf::aligned16(b));
    int64_t n_vec = vec_ok ? n / VEC : 0;
    int64_t work = n_vec > 0 ? (n_vec + kThreads * kUnroll - 1) / (kThreads * kUnroll)
                             : (n + kThreads - 1) / kThreads;
    int sms = 0;
    if (int e = sf::sm_count(&sms)) return e;
    int64_t blocks = work < (int64_t)sms * 8 ? work : (int64_t)sms * 8;
    if (blocks < 1) blocks = 1;
    return (int)sf::launch(elementwise_kernel<T, NIN, Op>, (unsigned)blocks, kThreads, 0, (cudaStream_t)stream, 1,
                           (const T *)a, (const T *)b, (T *)out, n, n_vec, op);
}

template <typename T> int act_for_type(sf_epilogue act, const void *in, void *out, int64_t n, void *stream)
{
    switch (act) {
    case SF_EPI_GELU_TANH: return launch_elementwise<T, 1>(in, nullptr, out, n, stream, act_op<SF_EPI_GELU_TANH>());
    case SF_EPI_GELU_ERF: return launch_elementwise<T, 1>(in, nullptr, out, n, stream, act_op<SF_EPI_GELU_ERF>());
    case SF_EPI_SILU: return launch_elementwise<T, 1>(in, nullptr, out, n, stream, act_op<SF_EPI_SILU>());
    default: return (int)cudaErrorInvalidValue;
    }
}

/* One thread per 16-byte chunk of an output row (or per element when H·size is not a multiple
 * of 16 or a pointer is unaligned, e.g. biases with H = 1). */
template <typename V>
__global__ void interleave_kernel(const V *w1, const V *w3, V *out, int64_t I, int64_t row_len)
{
    const int64_t total = 2 * I * row_len;
    for (int64_t v = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; v < total;
         v += (int64_t)gridDim.x * blockDim.x) {
        int64_t q = v / row_len, c = v - q * row_len;
        int64_t p = q / (2 * SF_SWIGLU_INTERLEAVE), r = q % (2 * SF_SWIGLU_INTERLEAVE);
        const V *src = r < SF_SWIGLU_INTERLEAVE ? w1 : w3;
        int64_t src_row = p * SF_SWIGLU_INTERLEAVE + (r % SF_SWIGLU_INTERLEAVE);
        out[v] = src[src_row * row_len + c];
    }
}

template <typename V>
int launch_interleave(const void *w1, const void *w3, void *out, int64_t I, int64_t row_len,
                      void *stream)
{
    int64_t total = 2 * I * row_len;
    int64_t blocks = (total + 255) / 256;
    int sms = 0;
    if (int e = sf::sm_count(&sms)) return e;
    if (blocks > (int64_t)sms * 16) blocks = (int64_t)sms * 16;
    interleave_kernel<V><<<(unsigned)blocks, 256, 0, (cudaStream_t)stream>>>(
        (const V *)w1, (const V *)w3, (V *)out, I, row_len);
    return (int)cudaGetLastError();
}

} // namespace

extern "C" int sf_act_cuda(sf_epilogue act, sf_dtype dtype, const void *in, void *out, int64_t n, void *stream)
{
    switch (dtype) {
    case SF_F32: return act_for_type<float>(act, in, out, n, stream);
    case SF_F16: return act_for_type<__half>(act, in, out, n, stream);
    case SF_BF16: return act_for_type<__nv_bfloat16>(act, in, out, n, stream);
    default: return (int)cudaErrorInvalidValue;
    }
}

extern "C" int sf_mul_cuda(sf_dtype dtype, const void *a, const void *b, void *out, int64_t n, void *stream)
{
    switch (dtype) {
    case SF_F32: return launch_elementwise<float, 2>(a, b, out, n, stream, mul_op());
    case SF_F16: return launch_elementwise<__half, 2>(a, b, out, n, stream, mul_op());
    case SF_BF16: return launch_elementwise<__nv_bfloat16, 2>(a, b, out, n, stream, mul_op());
    default: return (int)cudaErrorInvalidValue;
    }
}

extern "C" int sf_interleave_gate_up_cuda(size_t elem, const void *w1, const void *w3, void *out, int64_t I,
                                          int64_t H, void *stream)
{
    if ((elem != 1 && elem != 2 && elem != 4 && elem != 8) || !w1 || !w3 || !out || I <= 0 || H <= 0 ||
        I % SF_SWIGLU_INTERLEAVE != 0)
        return (int)cudaErrorInvalidValue;
    const int64_t row_bytes = H * (int64_t)elem;
    if (row_bytes % 16 == 0 && sf::aligned16(w1) && sf::aligned16(w3) && sf::aligned16(out))
        return launch_interleave<uint4>(w1, w3, out, I, row_bytes / 16, stream);
    switch (elem) {
    case 8: return launch_interleave<uint64_t>(w1, w3, out, I, H, stream);
    case 4: return launch_interleave<uint32_t>(w1, w3, out, I, H, stream);
    case 1: return launch_interleave<uint8_t>(w1, w3, out, I, H, stream);
    default: return launch_interleave<uint16_t>(w1, w3, out, I, H, stream);
    }
}
