// Tensor primitives on the GPU: fill, random fill (the same generator as the CPU backend),
// conversion between dtypes and strides, and the validation reduction. Utility kernels: they
// favour generality (any dtype, any strides) over speed, except on the contiguous fast path.
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "common.cuh"
#include "tensor_ops.h"
#include "rng.h"

namespace {

__device__ __forceinline__ double load(const void *p, int dt, int64_t i)
{
    switch (dt) {
    case SF_F32: return ((const float *)p)[i];
    case SF_F16: return __half2float(((const __half *)p)[i]);
    case SF_BF16: return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    case SF_I32: return ((const int32_t *)p)[i];
    case SF_E4M3: return (float)((const __nv_fp8_e4m3 *)p)[i];
    case SF_E5M2: return (float)((const __nv_fp8_e5m2 *)p)[i];
    default: return ((const double *)p)[i];
    }
}

__device__ __forceinline__ void store(void *p, int dt, int64_t i, double v)
{
    switch (dt) {
    case SF_F32: ((float *)p)[i] = (float)v; break;
    case SF_F16: ((__half *)p)[i] = __float2half_rn((float)v); break;
    case SF_BF16: ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn((float)v); break;
    case SF_I32: ((int32_t *)p)[i] = isnan(v) ? 0 : (int32_t)llrint(v); break;
    /* from the double itself, rounded to nearest even and saturated, as the CPU backend stores */
    case SF_E4M3: ((__nv_fp8_e4m3 *)p)[i] = __nv_fp8_e4m3(v); break;
    case SF_E5M2: ((__nv_fp8_e5m2 *)p)[i] = __nv_fp8_e5m2(v); break;
    default: ((double *)p)[i] = v; break;
    }
}

__device__ __forceinline__ int64_t offset_of(const sf_layout &l, int64_t i)
{
    if (l.contiguous) return i;
    int64_t off = 0;
    for (int d = l.ndim - 1; d >= 0; d--) {
        off += (i % l.shape[d]) * l.stride[d];
        i /= l.shape[d];
    }
    return off;
}

__global__ void fill_kernel(void *data, int dt, sf_layout l, double value)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < l.numel; i += (int64_t)gridDim.x * blockDim.x)
        store(data, dt, offset_of(l, i), value);
}

__global__ void random_kernel(void *data, int dt, sf_layout l, int normal, uint64_t seed, double a, double b)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < l.numel; i += (int64_t)gridDim.x * blockDim.x) {
        double v = normal ? a + b * sf_rng_gauss(seed, (uint64_t)i) : a + (b - a) * sf_rng_unit(seed, (uint64_t)i, 0);
        store(data, dt, offset_of(l, i), v);
    }
}

__global__ void convert_kernel(void *dst, int ddt, sf_layout dl, const void *src, int sdt, sf_layout sl)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < dl.numel; i += (int64_t)gridDim.x * blockDim.x)
        store(dst, ddt, offset_of(dl, i), load(src, sdt, offset_of(sl, i)));
}

/* the outer dimensions of a row copy: shape and byte strides of both sides */
struct Rows {
    int n;
    int64_t shape[SF_MAX_DIMS], dst[SF_MAX_DIMS], src[SF_MAX_DIMS];
};

/* U: the unit; I: the index type, 32 bits where every count fits (64-bit divisions are slow on
 * the GPU) */
template <typename U, typename I>
__global__ void copy_rows_kernel(char *dst, const char *src, Rows r, I units_per_row, I n_units)
{
    for (I i = blockIdx.x * (I)blockDim.x + threadIdx.x; i < n_units; i += (I)gridDim.x * blockDim.x) {
        I row = i / units_per_row;
        const I u = i - row * units_per_row;
        int64_t d_off = 0, s_off = 0;
        for (int d = r.n - 1; d >= 0; d--) {
            const I shape = (I)r.shape[d], idx = row % shape;
            row /= shape;
            d_off += (int64_t)idx * r.dst[d];
            s_off += (int64_t)idx * r.src[d];
        }
        reinterpret_cast<U *>(dst + d_off)[u] = reinterpret_cast<const U *>(src + s_off)[u];
    }
}

__global__ void compare_kernel(const void *out, int odt, sf_layout ol, const void *ref, int rdt, sf_layout rl,
                               double *partials)
{
    double acc[SF_CMP_FIELDS] = {0, 0, 0, 0, 0, 0};
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < ol.numel; i += (int64_t)gridDim.x * blockDim.x) {
        double o = load(out, odt, offset_of(ol, i)), e = load(ref, rdt, offset_of(rl, i));
        if (isnan(o)) { acc[SF_CMP_NAN] += 1; continue; }
        if (isinf(o)) { acc[SF_CMP_INF] += 1; continue; }
        if (!isfinite(e)) { acc[SF_CMP_REFBAD] += 1; continue; }
        double d = fabs(o - e);
        acc[SF_CMP_D2] += d * d;
        acc[SF_CMP_R2] += e * e;
        acc[SF_CMP_MAXABS] = fmax(acc[SF_CMP_MAXABS], d);
    }
    __shared__ double red[SF_CMP_FIELDS][32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int f = 0; f < SF_CMP_FIELDS; f++) {
        double v = acc[f];
        for (int s = 16; s > 0; s >>= 1) {
            double o = __shfl_down_sync(0xffffffffu, v, s);
            v = f == SF_CMP_MAXABS ? fmax(v, o) : v + o;
        }
        if (lane == 0) red[f][warp] = v;
    }
    __syncthreads();
    if (threadIdx.x < SF_CMP_FIELDS) {
        int f = threadIdx.x;
        double v = 0;
        for (int w = 0; w < (int)(blockDim.x >> 5); w++) v = f == SF_CMP_MAXABS ? fmax(v, red[f][w]) : v + red[f][w];
        partials[blockIdx.x * SF_CMP_FIELDS + f] = v;
    }
}

// Holds a stream until the host writes *release (host-mapped memory) or `timeout` clock cycles
// pass; records in *timed_out which ended it.
__global__ void spin_kernel(volatile int *release, int *timed_out, long long timeout)
{
    long long start = clock64();
    while (!*release) {
        if (clock64() - start > timeout) {
            *timed_out = 1;
            return;
        }
    }
}

unsigned grid_for(int64_t n)
{
    int64_t blocks = (n + 255) / 256;
    return (unsigned)(blocks < 1 ? 1 : blocks > 65536 ? 65536 : blocks);
}

template <typename U>
void launch_copy_rows(char *dst, const char *src, const Rows &r, int64_t units_per_row, int64_t n_units, cudaStream_t s)
{
    /* grid_for's grid has at most 2^24 threads, so below 2^31 - 2^24 units, i plus the grid's
     * stride stays under 2^31 */
    if (n_units < ((int64_t)1 << 31) - ((int64_t)1 << 24))
        copy_rows_kernel<U, uint32_t><<<grid_for(n_units), 256, 0, s>>>(dst, src, r, (uint32_t)units_per_row,
                                                                       (uint32_t)n_units);
    else
        copy_rows_kernel<U, int64_t><<<grid_for(n_units), 256, 0, s>>>(dst, src, r, units_per_row, n_units);
}

} // namespace

extern "C" int sf_fill_cuda(void *data, sf_dtype dtype, const sf_layout *lay, double value, void *stream)
{
    fill_kernel<<<grid_for(lay->numel), 256, 0, (cudaStream_t)stream>>>(data, dtype, *lay, value);
    return cudaGetLastError();
}

extern "C" int sf_random_cuda(void *data, sf_dtype dtype, const sf_layout *lay, int normal, uint64_t seed, double a,
                              double b, void *stream)
{
    random_kernel<<<grid_for(lay->numel), 256, 0, (cudaStream_t)stream>>>(data, dtype, *lay, normal, seed, a, b);
    return cudaGetLastError();
}

extern "C" int sf_convert_cuda(void *dst, sf_dtype dst_dtype, const sf_layout *dl, const void *src, sf_dtype src_dtype,
                               const sf_layout *sl, void *stream)
{
    convert_kernel<<<grid_for(dl->numel), 256, 0, (cudaStream_t)stream>>>(dst, dst_dtype, *dl, src, src_dtype, *sl);
    return cudaGetLastError();
}

extern "C" int sf_copy_rows_cuda(void *dst, const sf_layout *dl, const void *src, const sf_layout *sl, int elem_bytes,
                                 void *stream)
{
    const int nd = dl->ndim;
    if (nd < 1 || sl->ndim != nd || dl->numel != sl->numel || dl->numel == 0) return -1;
    for (int d = 0; d < nd; d++)
        if (dl->shape[d] != sl->shape[d]) return -1;
    if (dl->shape[nd - 1] > 1 && (dl->stride[nd - 1] != 1 || sl->stride[nd - 1] != 1)) return -1;
    /* the row: the last dimension, and those before it that are dense in both */
    int64_t row = dl->shape[nd - 1];
    int d = nd - 2;
    for (; d >= 0; d--) {
        if (dl->shape[d] > 1 && (dl->stride[d] != row || sl->stride[d] != row)) break;
        row *= dl->shape[d];
    }
    Rows r = {};
    for (int k = 0; k <= d; k++) {
        if (dl->shape[k] == 1) continue;
        r.shape[r.n] = dl->shape[k];
        r.dst[r.n] = dl->stride[k] * elem_bytes;
        r.src[r.n] = sl->stride[k] * elem_bytes;
        r.n++;
    }
    const int64_t row_bytes = row * elem_bytes;
    uint64_t bits = (uint64_t)row_bytes | (uint64_t)(uintptr_t)dst | (uint64_t)(uintptr_t)src;
    for (int k = 0; k < r.n; k++) bits |= (uint64_t)r.dst[k] | (uint64_t)r.src[k];
    int unit = 16;
    while (unit > 1 && bits % unit) unit /= 2;
    const int64_t units_per_row = row_bytes / unit, n_units = dl->numel / row * units_per_row;
    cudaStream_t s = (cudaStream_t)stream;
    char *o = (char *)dst;
    const char *i = (const char *)src;
    switch (unit) {
    case 16: launch_copy_rows<uint4>(o, i, r, units_per_row, n_units, s); break;
    case 8: launch_copy_rows<uint2>(o, i, r, units_per_row, n_units, s); break;
    case 4: launch_copy_rows<uint32_t>(o, i, r, units_per_row, n_units, s); break;
    case 2: launch_copy_rows<uint16_t>(o, i, r, units_per_row, n_units, s); break;
    default: launch_copy_rows<uint8_t>(o, i, r, units_per_row, n_units, s); break;
    }
    return cudaGetLastError();
}

extern "C" int sf_compare_cuda(const void *out, sf_dtype out_dtype, const sf_layout *ol, const void *ref, sf_dtype ref_dtype,
                               const sf_layout *rl, double *partials, void *stream)
{
    compare_kernel<<<SF_CMP_BLOCKS, 256, 0, (cudaStream_t)stream>>>(out, out_dtype, *ol, ref, ref_dtype, *rl, partials);
    return cudaGetLastError();
}

extern "C" int sf_spin_cuda(volatile int *release, int *timed_out, long long timeout_cycles, void *stream)
{
    spin_kernel<<<1, 1, 0, (cudaStream_t)stream>>>(release, timed_out, timeout_cycles);
    return cudaGetLastError();
}

extern "C" int sf_pdl_enabled(void)
{
    static const bool allowed = [] {
        const char *e = getenv("SFBENCH_PDL");
        return !(e && strcmp(e, "0") == 0);
    }();
    sf::device_info d;
    return allowed && sf::current_device(&d) == 0 && d.cc_major >= 9;
}
