/* Small device helpers shared by the kernels: dtype traits for float/__half/__nv_bfloat16,
 * 16-byte vector access, the activation functions (one definition, used by the
 * elementwise kernels and by the GEMM epilogues, so both round the same fp32 value), a block's
 * max and an FP8 scale from it, the device's SM count, the grid order of the attention kernels,
 * programmatic dependent launch, and the shared-memory address form that PTX takes. */
#ifndef SF_COMMON_CUH
#define SF_COMMON_CUH

#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "tensor_ops.h" /* sf_pdl_enabled */

namespace sf {

/* to_f/from_f convert one element; pack2/unpack2 move two elements through one 32-bit word,
 * which is how a wgmma accumulator pair (two adjacent columns) is stored. */
template <typename T> struct dtype_traits;

template <> struct dtype_traits<float> {
    static __device__ __forceinline__ float to_f(float x) { return x; }
    static __device__ __forceinline__ float from_f(float x) { return x; }
};

template <> struct dtype_traits<__half> {
    static __device__ __forceinline__ float to_f(__half x) { return __half2float(x); }
    static __device__ __forceinline__ __half from_f(float x) { return __float2half_rn(x); }
    static __device__ __forceinline__ uint32_t pack2(float lo, float hi)
    {
        __half2 h = __floats2half2_rn(lo, hi);
        return *reinterpret_cast<uint32_t *>(&h);
    }
    static __device__ __forceinline__ float2 unpack2(uint32_t v)
    {
        return __half22float2(*reinterpret_cast<__half2 *>(&v));
    }
};

template <> struct dtype_traits<__nv_bfloat16> {
    static __device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
    static __device__ __forceinline__ __nv_bfloat16 from_f(float x) { return __float2bfloat16_rn(x); }
    static __device__ __forceinline__ uint32_t pack2(float lo, float hi)
    {
        __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
        return *reinterpret_cast<uint32_t *>(&h);
    }
    static __device__ __forceinline__ float2 unpack2(uint32_t v)
    {
        return __bfloat1622float2(*reinterpret_cast<__nv_bfloat162 *>(&v));
    }
};

/* The 32-bit shared-memory address of a generic pointer into shared memory, as the PTX
 * instructions (cp.async, ldmatrix, mbarrier, TMA) take it. */
__device__ __forceinline__ uint32_t smem_u32(const void *p)
{
    return (uint32_t)__cvta_generic_to_shared(p);
}

/* A 16-byte vector seen as elements of T. */
template <typename T> union vec16 {
    uint4 raw;
    T e[16 / sizeof(T)];
};

/* VEC elements of T moved as one: a 16-byte vector (VEC = 16 / sizeof(T)) or, VEC = 1, one
 * element; the kernels that take 16-byte vectors where the layout allows and single elements
 * elsewhere are written once over it */
template <typename T, int VEC> union items {
    using raw_t = typename std::conditional<VEC == 1, T, uint4>::type;
    raw_t raw;
    T e[VEC];
};

/* RoPE's cos and sin at `position` for one frequency: one fp32 product, never fused into
 * sincosf's range reduction, so the CPU reference forms the same angle bit for bit (the rope and
 * kv_append kernels both take it from here) */
__device__ __forceinline__ float2 rope_cos_sin(float position, float inv_freq)
{
    const float angle = __fmul_rn(position, inv_freq);
    float s, c;
    sincosf(angle, &s, &c);
    return make_float2(c, s);
}

/* the pair (x1, x2), frequency partners half a head apart, turned by the angle of cs = (cos, sin);
 * each rounding spelled out, so that every kernel that turns pairs forms the same bits (left to
 * the compiler, which product an fma takes varies with the code around it) */
__device__ __forceinline__ float2 rope_rotate(float x1, float x2, float2 cs)
{
    return make_float2(__fsub_rn(__fmul_rn(x1, cs.x), __fmul_rn(x2, cs.y)), __fmaf_rn(x1, cs.y, __fmul_rn(x2, cs.x)));
}

/* whether p is 16-byte aligned: one vector load or store */
inline bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

/* The current device's number, SM count, compute capability and peak DRAM bandwidth, asked once a
 * device. */
struct device_info {
    int dev, sms, cc_major, cc_minor;
    double dram_bytes_per_s; /* peak DRAM bandwidth from the memory clock and bus width; 0 where unknown */
};
/* into *info: 0, or the CUDA error that stopped it */
inline int current_device(device_info *info)
{
    static device_info known[64];
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess) return (int)e;
    if (dev < 0 || dev >= 64) return (int)cudaErrorInvalidDevice;
    device_info &d = known[dev];
    if (d.sms == 0) {
        device_info n = {dev, 0, 0, 0, 0.0};
        if ((e = cudaDeviceGetAttribute(&n.sms, cudaDevAttrMultiProcessorCount, dev)) != cudaSuccess ||
            (e = cudaDeviceGetAttribute(&n.cc_major, cudaDevAttrComputeCapabilityMajor, dev)) != cudaSuccess ||
            (e = cudaDeviceGetAttribute(&n.cc_minor, cudaDevAttrComputeCapabilityMinor, dev)) != cudaSuccess)
            return (int)e;
        /* kHz and bits, two transfers a clock; a device that reports neither leaves it unknown */
        int khz = 0, bits = 0;
        if (cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, dev) == cudaSuccess &&
            cudaDeviceGetAttribute(&bits, cudaDevAttrGlobalMemoryBusWidth, dev) == cudaSuccess)
            n.dram_bytes_per_s = 2.0 * khz * 1e3 * bits / 8;
        else
            (void)cudaGetLastError();
        d = n;
    }
    *info = d;
    return 0;
}

/* the current device's SM count into *sms: 0, or the CUDA error that stopped it */
inline int sm_count(int *sms)
{
    device_info d;
    const int e = current_device(&d);
    if (e == 0) *sms = d.sms;
    return e;
}

/* CTAs of `kernel` that fit an SM at `threads` threads and `smem` bytes of dynamic shared memory
 * into *ctas, asked once (a static per kernel, so per process rather than per device: one device
 * a process is how sfbench runs them): 0, or the CUDA error that stopped it */
template <auto kernel> inline int occupancy(int *ctas, int threads, size_t smem)
{
    static int known = 0;
    if (known == 0) {
        int n = 0;
        const cudaError_t e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, threads, smem);
        if (e != cudaSuccess) return (int)e;
        known = n;
    }
    *ctas = known;
    return 0;
}

/* whether p and the strides of the dimensions longer than 1 of an n-dimensional view allow
 * vectors of `vec` elements (16 bytes): p 16-byte aligned, each such stride a multiple of vec */
inline bool vec_fits(const void *p, const int64_t *stride, const int64_t *shape, int n, int vec)
{
    if (!aligned16(p)) return false;
    for (int i = 0; i < n; i++)
        if (shape[i] > 1 && stride[i] % vec) return false;
    return true;
}

/* 0.5·(1 + tanh(y)) = sigmoid(2y): one exp and one divide instead of tanhf, exact identity.
 * Large |x| saturates cleanly: exp → inf gives x/inf = -0, exp → 0 gives x. */
__device__ __forceinline__ float gelu_tanh(float x)
{
    const float k0 = 0.7978845608028654f, k1 = 0.044715f; /* sqrt(2/pi) */
    float y = k0 * fmaf(k1 * x * x, x, x);
    return __fdividef(x, 1.0f + __expf(-2.0f * y));
}

__device__ __forceinline__ float gelu_erf(float x)
{
    return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f));
}

__device__ __forceinline__ float silu(float x) { return __fdividef(x, 1.0f + __expf(-x)); }

/* The largest v over the block (NaN left out: fmaxf takes the number), in every thread; any
 * blockDim that is a multiple of 32, up to 1024. A barrier before its shared array is written,
 * so that it may follow another call or another block reduction. */
__device__ __forceinline__ float block_max(float v)
{
    __shared__ float warp_max[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int s = 16; s > 0; s >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, s));
    __syncthreads();
    if (lane == 0) warp_max[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? warp_max[lane] : -INFINITY;
#pragma unroll
    for (int s = 16; s > 0; s >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, s));
    return v;
}

/* An FP8 tensor's or row's dequantization scale from its largest |value|: amax over the
 * format's largest (kernels/quantize.h), 1 where amax is 0 */
__device__ __forceinline__ float fp8_scale_of(float amax, float fp8_max) { return amax > 0.f ? amax / fp8_max : 1.f; }
constexpr float kE4m3Max = 448.f;

/* Attention grid order, block -> (q block, batch·head): causal takes the heaviest q blocks (the
 * bottom rows) of every head first; otherwise q blocks run fastest, so the blocks running
 * together share one head's K/V in L2. */
__device__ __forceinline__ void attention_block(int block, int batch_heads, int n_qblocks, bool causal, int &qb,
                                                int &bh)
{
    if (causal) {
        bh = block % batch_heads;
        qb = n_qblocks - 1 - block / batch_heads;
    } else {
        qb = block % n_qblocks;
        bh = block / n_qblocks;
    }
}

/* Programmatic dependent launch (sm_90+). A kernel started with sf::launch may begin while the
 * kernel before it in the stream is still running, so its prologue (barrier set-up, descriptor
 * prefetch) and the launch itself overlap that kernel's tail. Such a kernel must call
 * grid_dep_wait() in every thread before its first global memory access, read or write: the
 * wait returns once the previous kernel has finished and its writes are visible. Since every
 * kernel waits, one that finishes implies all before it have. grid_dep_launch() lets the next
 * kernel start launching; our kernels call it at once (its CTAs only take multiprocessors that
 * this kernel's CTAs have left). Both are no-ops before sm_90, and wait is one in a kernel launched
 * without it (launch_with(false, ...)). */
__device__ __forceinline__ void grid_dep_wait()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void grid_dep_launch()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/* kernel<<<grid, block, smem, stream>>>(args...), with programmatic stream serialisation when
 * `pdl` (and sf_pdl_enabled()), plus a cluster of cluster_x CTAs when cluster_x > 1 */
template <typename... KArgs, typename... Args>
cudaError_t launch_with(bool pdl, void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                        unsigned cluster_x, Args... args)
{
    cudaLaunchConfig_t lc = {};
    cudaLaunchAttribute attr[2];
    unsigned n = 0;
    if (pdl && sf_pdl_enabled()) {
        attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attr[n++].val.programmaticStreamSerializationAllowed = 1;
    }
    if (cluster_x > 1) {
        attr[n].id = cudaLaunchAttributeClusterDimension;
        attr[n].val.clusterDim.x = cluster_x;
        attr[n].val.clusterDim.y = 1;
        attr[n++].val.clusterDim.z = 1;
    }
    lc.gridDim = grid;
    lc.blockDim = block;
    lc.dynamicSmemBytes = smem;
    lc.stream = stream;
    lc.attrs = attr;
    lc.numAttrs = n;
    cudaError_t e = cudaLaunchKernelEx(&lc, kernel, static_cast<KArgs>(args)...);
    return e != cudaSuccess ? e : cudaGetLastError();
}

/* Launches kernel<<<grid, block, smem, stream>>>(args...) with programmatic stream
 * serialisation (see grid_dep_wait), plus a cluster of cluster_x CTAs when cluster_x > 1. */
template <typename... KArgs, typename... Args>
cudaError_t launch(void (*kernel)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                   unsigned cluster_x, Args... args)
{
    return launch_with(true, kernel, grid, block, smem, stream, cluster_x, args...);
}

} // namespace sf

#endif
