/* FP8 quantization and dequantization (kernels/quantize.h). Memory-bound utility kernels:
 *  - per row: a CTA a row reduces the row's amax (warp shuffles, then shared memory), sets the
 *    row's scale and writes the row;
 *  - per tensor: a grid-stride kernel takes every CTA's amax into one word with atomicMax (the
 *    bits of a non-negative float order as the float does), then a second kernel scales and
 *    writes every element; the first CTA of the second writes the scale.
 *  - a fixed scale (read, not computed): one grid-stride kernel, as dequantize's.
 * Conversions: x / scale in f32, then cvt.rn.satfinite (the fp8 types' constructors). */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "common.cuh"
#include "quantize.h"

namespace sf_quantize {

constexpr int kThreads = 256;

template <typename T> __device__ __forceinline__ float to_f(T v) { return sf::dtype_traits<T>::to_f(v); }
template <> __device__ __forceinline__ float to_f(__nv_fp8_e4m3 v) { return (float)v; }
template <> __device__ __forceinline__ float to_f(__nv_fp8_e5m2 v) { return (float)v; }
template <typename T> __device__ __forceinline__ T from_f(float v) { return sf::dtype_traits<T>::from_f(v); }
template <> __device__ __forceinline__ __nv_fp8_e4m3 from_f(float v) { return __nv_fp8_e4m3(v); }
template <> __device__ __forceinline__ __nv_fp8_e5m2 from_f(float v) { return __nv_fp8_e5m2(v); }

template <typename T, typename F>
__global__ void __launch_bounds__(kThreads) quantize_rows(const T *x, int64_t ld_x, F *out, int64_t ld_out, float *scale,
                                                          int64_t cols, float fp8_max)
{
    sf::grid_dep_wait();
    sf::grid_dep_launch();
    const T *xr = x + blockIdx.x * ld_x;
    float amax = 0.f;
    for (int64_t c = threadIdx.x; c < cols; c += kThreads) amax = fmaxf(amax, fabsf(to_f(xr[c])));
    const float s = sf::fp8_scale_of(sf::block_max(amax), fp8_max);
    if (threadIdx.x == 0) scale[blockIdx.x] = s;
    F *o = out + blockIdx.x * ld_out;
    for (int64_t c = threadIdx.x; c < cols; c += kThreads) o[c] = from_f<F>(to_f(xr[c]) / s);
}

template <typename T>
__global__ void __launch_bounds__(kThreads) tensor_amax(const T *x, int64_t ld_x, int64_t rows, int64_t cols, unsigned *amax)
{
    sf::grid_dep_wait();
    sf::grid_dep_launch();
    float m = 0.f;
    for (int64_t i = blockIdx.x * (int64_t)kThreads + threadIdx.x; i < rows * cols; i += (int64_t)gridDim.x * kThreads)
        m = fmaxf(m, fabsf(to_f(x[i / cols * ld_x + i % cols])));
    m = sf::block_max(m);
    if (threadIdx.x == 0) atomicMax(amax, __float_as_uint(m));
}

template <typename T, typename F>
__global__ void __launch_bounds__(kThreads) quantize_tensor(const T *x, int64_t ld_x, F *out, int64_t ld_out,
                                                            int64_t rows, int64_t cols, const unsigned *amax, float *scale,
                                                            float fp8_max)
{
    sf::grid_dep_wait();
    sf::grid_dep_launch();
    const float s = sf::fp8_scale_of(__uint_as_float(*amax), fp8_max);
    if (blockIdx.x == 0 && threadIdx.x == 0) *scale = s;
    for (int64_t i = blockIdx.x * (int64_t)kThreads + threadIdx.x; i < rows * cols; i += (int64_t)gridDim.x * kThreads)
        out[i / cols * ld_out + i % cols] = from_f<F>(to_f(x[i / cols * ld_x + i % cols]) / s);
}

/* out = x / scale[row or 0] (quantizing with a scale given: kDivide) or x · scale[row or 0]
 * (dequantizing) */
template <typename TI, typename TO, bool kDivide>
__global__ void __launch_bounds__(kThreads) rescale(const TI *x, int64_t ld_x, TO *out, int64_t ld_out, int64_t rows,
                                                    int64_t cols, const float *scale, int per_row)
{
    sf::grid_dep_wait();
    sf::grid_dep_launch();
    for (int64_t i = blockIdx.x * (int64_t)kThreads + threadIdx.x; i < rows * cols; i += (int64_t)gridDim.x * kThreads) {
        const int64_t r = i / cols, c = i % cols;
        const float v = to_f(x[r * ld_x + c]), s = scale[per_row ? r : 0];
        out[r * ld_out + c] = from_f<TO>(kDivide ? v / s : v * s);
    }
}

unsigned grid_for(int64_t n)
{
    const int64_t blocks = (n + kThreads - 1) / kThreads;
    return (unsigned)(blocks < 4096 ? (blocks > 0 ? blocks : 1) : 4096);
}

template <typename T, typename F> int quantize_as(const sf_quantize_args *a, unsigned *amax, cudaStream_t s)
{
    const T *x = static_cast<const T *>(a->x);
    F *out = static_cast<F *>(a->out);
    const float fmax = (float)sf_fp8_max(a->out_dtype);
    if (a->fixed_scale)
        return (int)sf::launch(rescale<T, F, true>, grid_for(a->rows * a->cols), kThreads, 0, s, 1, x, a->ld_x, out,
                               a->ld_out, a->rows, a->cols, (const float *)a->scale, a->per_row);
    if (a->per_row) {
        if (a->rows > 0x7fffffff) return (int)cudaErrorInvalidValue;
        return (int)sf::launch(quantize_rows<T, F>, (unsigned)a->rows, kThreads, 0, s, 1, x, a->ld_x, out, a->ld_out,
                               a->scale, a->cols, fmax);
    }
    cudaError_t e = cudaMemsetAsync(amax, 0, sizeof *amax, s);
    const unsigned grid = grid_for(a->rows * a->cols);
    if (e == cudaSuccess) e = sf::launch(tensor_amax<T>, grid, kThreads, 0, s, 1, x, a->ld_x, a->rows, a->cols, amax);
    if (e == cudaSuccess)
        e = sf::launch(quantize_tensor<T, F>, grid, kThreads, 0, s, 1, x, a->ld_x, out, a->ld_out, a->rows, a->cols,
                       (const unsigned *)amax, a->scale, fmax);
    return (int)e;
}

template <typename T> int quantize_from(const sf_quantize_args *a, unsigned *amax, cudaStream_t s)
{
    return a->out_dtype == SF_E4M3 ? quantize_as<T, __nv_fp8_e4m3>(a, amax, s) : quantize_as<T, __nv_fp8_e5m2>(a, amax, s);
}

template <typename F> int dequantize_from(const sf_quantize_args *a, cudaStream_t s)
{
    const F *x = static_cast<const F *>(a->x);
    const unsigned grid = grid_for(a->rows * a->cols);
#define SF_DEQ(T)                                                                                                      \
    (int)sf::launch(rescale<F, T, false>, grid, kThreads, 0, s, 1, x, a->ld_x, static_cast<T *>(a->out), a->ld_out, a->rows, \
                    a->cols, (const float *)a->scale, a->per_row)
    switch (a->out_dtype) {
    case SF_F16: return SF_DEQ(__half);
    case SF_BF16: return SF_DEQ(__nv_bfloat16);
    case SF_F32: return SF_DEQ(float);
    default: return (int)cudaErrorInvalidValue;
    }
#undef SF_DEQ
}

} // namespace sf_quantize

using namespace sf_quantize;

extern "C" int sf_quantize_cuda(const sf_quantize_args *a, void *workspace, void *stream)
{
    if (a->rows < 1 || a->cols < 1) return (int)cudaErrorInvalidValue;
    unsigned *amax = static_cast<unsigned *>(workspace);
    cudaStream_t s = (cudaStream_t)stream;
    if (a->out_dtype != SF_E4M3 && a->out_dtype != SF_E5M2) return (int)cudaErrorInvalidValue;
    switch (a->x_dtype) {
    case SF_F16: return quantize_from<__half>(a, amax, s);
    case SF_BF16: return quantize_from<__nv_bfloat16>(a, amax, s);
    case SF_F32: return quantize_from<float>(a, amax, s);
    default: return (int)cudaErrorInvalidValue;
    }
}

extern "C" int sf_dequantize_cuda(const sf_quantize_args *a, void *stream)
{
    if (a->rows < 1 || a->cols < 1) return (int)cudaErrorInvalidValue;
    cudaStream_t s = (cudaStream_t)stream;
    switch (a->x_dtype) {
    case SF_E4M3: return dequantize_from<__nv_fp8_e4m3>(a, s);
    case SF_E5M2: return dequantize_from<__nv_fp8_e5m2>(a, s);
    default: return (int)cudaErrorInvalidValue;
    }
}
