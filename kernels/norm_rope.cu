/* RMSNorm (plain and fused with the residual add), RoPE and the residual add: the memory-bound
 * ops of a Llama decoder layer. Each reads its inputs once and writes its outputs once:
 *  - rmsnorm: one block per row; the row stays in registers (16-byte vectors, up to 4 per
 *    thread) between the sum of squares and the scaling, so x is read once. Rows too long for
 *    that, or not 16-byte aligned, take a scalar kernel that reads the row twice (the second
 *    read hits L2).
 *  - rope: a block takes whole tokens; cos/sin of each (position, frequency) are computed once
 *    per block into shared memory (sincosf costs more than the bytes it would save to share
 *    them across blocks), while the 16-byte loads of both halves of every head are in flight.
 *  - add: a flat grid-stride loop over 16-byte vectors; strided views go through a row kernel.
 * All math is fp32, each output rounded once. See norm_rope.h for the exact definitions. */
#include <cuda_fp8.h>
#include <cuda_runtime.h>
#include <type_traits>

#include "common.cuh"
#include "norm_rope.h"

namespace {

__device__ __forceinline__ float warp_sum(float v)
{
#pragma unroll
    for (int s = 16; s > 0; s >>= 1) v += __shfl_xor_sync(0xffffffffu, v, s);
    return v;
}

/* The sum of v over the block, returned to every thread; one barrier. blockDim.x is a multiple
 * of 32 (at most 1024). */
__device__ __forceinline__ float block_sum(float v)
{
    __shared__ float warp_sums[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum(v);
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? warp_sums[lane] : 0.0f;
    return warp_sum(v);
}

/* ---- RMSNorm ------------------------------------------------------------------------------ */

constexpr int kNormMaxVecPerThread = 4;
constexpr int kNormScalarThreads = 256;

/* One row per block, its VPT·blockDim.x 16-byte vectors held in registers. No __restrict__:
 * out may be x, residual may be x (each thread loads its vectors before it stores them). FP8: out
 * is e4m3, each input vector's VEC values an 8-byte store, the row's scale in out_scale. */
template <typename T, int VPT, bool RESIDUAL, bool FP8>
__global__ void __launch_bounds__(1024) rmsnorm_vec_kernel(const T *x, T *residual, const T *weight, void *out_v,
                                                            int n_vec, int64_t x_stride, int64_t r_stride,
                                                            int64_t o_stride, float inv_hidden, float eps,
                                                            float *out_scale)
{
    sf::grid_dep_wait();
    sf::grid_dep_launch();
    using tr = sf::dtype_traits<T>;
    constexpr int VEC = 16 / sizeof(T);
    const int64_t row = blockIdx.x;
    const uint4 *xr = reinterpret_cast<const uint4 *>(x + row * x_stride);
    uint4 *rr = RESIDUAL ? reinterpret_cast<uint4 *>(residual + row * r_stride) : nullptr;
    const uint4 *wv = reinterpret_cast<const uint4 *>(weight);

    sf::vec16<T> v[VPT], r[VPT];
#pragma unroll
    for (int k = 0; k < VPT; k++) {
        const int i = threadIdx.x + k * blockDim.x;
        if (i < n_vec) {
            v[k].raw = xr[i];
            if (RESIDUAL) r[k].raw = rr[i];
        }
    }
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < VPT; k++) {
        const int i = threadIdx.x + k * blockDim.x;
        if (i < n_vec) {
#pragma unroll
            for (int e = 0; e < VEC; e++) {
                float s = tr::to_f(v[k].e[e]);
                if (RESIDUAL) {
                    /* the sum is rounded to T first: the stored residual is what is normalised */
                    v[k].e[e] = tr::from_f(s + tr::to_f(r[k].e[e]));
                    s = tr::to_f(v[k].e[e]);
                }
                ss = fmaf(s, s, ss);
            }
            if (RESIDUAL) rr[i] = v[k].raw;
        }
    }
    sf::vec16<T> w[VPT];
#pragma unroll
    for (int k = 0; k < VPT; k++) {
        const int i = threadIdx.x + k * blockDim.x;
        if (i < n_vec) w[k].raw = __ldg(wv + i);
    }
    const float inv_rms = rsqrtf(fmaf(block_sum(ss), inv_hidden, eps));
    if constexpr (FP8) {
        static_assert(VEC == 8, "an e4m3 row of 8-byte stores: 16-bit inputs");
        float amax = 0.f;
#pragma unroll
        for (int k = 0; k < VPT; k++) {
            if (threadIdx.x + k * blockDim.x < n_vec) {
#pragma unroll
                for (int e = 0; e < VEC; e++) amax = fmaxf(amax, fabsf(tr::to_f(v[k].e[e]) * inv_rms * tr::to_f(w[k].e[e])));
            }
        }
        const float scale = sf::fp8_scale_of(sf::block_max(amax), sf::kE4m3Max);
        if (threadIdx.x == 0) out_scale[row] = scale;
        uint2 *orow = reinterpret_cast<uint2 *>(static_cast<uint8_t *>(out_v) + row * o_stride);
#pragma unroll
        for (int k = 0; k < VPT; k++) {
            const int i = threadIdx.x + k * blockDim.x;
            if (i < n_vec) {
                uint32_t q[4];
#pragma unroll
                for (int e = 0; e < VEC; e += 2) {
                    const float a = tr::to_f(v[k].e[e]) * inv_rms * tr::to_f(w[k].e[e]) / scale;
                    const float b = tr::to_f(v[k].e[e + 1]) * inv_rms * tr::to_f(w[k].e[e + 1]) / scale;
                    q[e / 2] = __nv_cvt_float2_to_fp8x2(make_float2(a, b), __NV_SATFINITE, __NV_E4M3);
                }
                orow[i] = make_uint2(q[0] | q[1] << 16, q[2] | q[3] << 16);
            }
        }
    } else {
        uint4 *orow = reinterpret_cast<uint4 *>(static_cast<T *>(out_v) + row * o_stride);
#pragma unroll
        for (int k = 0; k < VPT; k++) {
            const int i = threadIdx.x + k * blockDim.x;
            if (i < n_vec) {
                sf::vec16<T> o;
#pragma unroll
                for (int e = 0; e < VEC; e++) o.e[e] = tr::from_f(tr::to_f(v[k].e[e]) * inv_rms * tr::to_f(w[k].e[e]));
                orow[i] = o.raw;
            }
        }
    }
}

/* Any alignment and row length: pass 1 sums the squares (and writes the rounded residual sum),
 * pass 2 reads the row again and scales it. Element j is read and written by the same thread in
 * both passes, so the aliasing rules of the vector kernel hold here too. */
template <typename T, bool RESIDUAL, bool FP8>
__global__ void __launch_bounds__(kNormScalarThreads) rmsnorm_scalar_kernel(const T *x, T *residual, const T *weight,
                                                                            void *out_v, int64_t hidden, int64_t x_stride,
                                                                            int64_t r_stride, int64_t o_stride,
                                                                            float inv_hidden, float eps, float *out_scale)
{
    sf::grid_dep_wait();
    sf::grid_dep_launch();
    using tr = sf::dtype_traits<T>;
    const int64_t row = blockIdx.x;
    const T *xr = x + row * x_stride;
    T *rr = RESIDUAL ? residual + row * r_stride : nullptr;
    float ss = 0.0f;
    for (int64_t j = threadIdx.x; j < hidden; j += blockDim.x) {
        float s = tr::to_f(xr[j]);
        if (RESIDUAL) {
            T sum = tr::from_f(s + tr::to_f(rr[j]));
            rr[j] = sum;
            s = tr::to_f(sum);
        }
        ss = fmaf(s, s, ss);
    }
    const float inv_rms = rsqrtf(fmaf(block_sum(ss), inv_hidden, eps));
    /* FP8: a pass for the row's amax (a third read of the row, from L2), then the e4m3 values */
    float scale = 1.f;
    if constexpr (FP8) {
        float amax = 0.f;
        for (int64_t j = threadIdx.x; j < hidden; j += blockDim.x)
            amax = fmaxf(amax, fabsf(tr::to_f(RESIDUAL ? rr[j] : xr[j]) * inv_rms * tr::to_f(weight[j])));
        scale = sf::fp8_scale_of(sf::block_max(amax), sf::kE4m3Max);
        if (threadIdx.x == 0) out_scale[row] = scale;
    }
    for (int64_t j = threadIdx.x; j < hidden; j += blockDim.x) {
        const float s = tr::to_f(RESIDUAL ? rr[j] : xr[j]);
        if constexpr (FP8)
            static_cast<__nv_fp8_e4m3 *>(out_v)[row * o_stride + j] = __nv_fp8_e4m3(s * inv_rms * tr::to_f(weight[j]) / scale);
        else
            static_cast<T *>(out_v)[row * o_stride + j] = tr::from_f(s * inv_rms * tr::to_f(weight[j]));
    }
}

template <typename T, bool RESIDUAL, bool FP8> int launch_rmsnorm(const sf_rmsnorm_args *a, cudaStream_t stream)
{
    constexpr int VEC = 16 / sizeof(T);
    const T *x = static_cast<const T *>(a->x), *w = static_cast<const T *>(a->weight);
    T *res = static_cast<T *>(a->residual);
    void *out = a->out;
    const float inv_hidden = 1.0f / (float)a->hidden;
    const unsigned grid = (unsigned)a->rows;
    const bool one_row = a->rows == 1; /* its row stride is never used */
    /* an e4m3 out takes VEC bytes a vector: 8-byte aligned rows */
    const bool out_ok = FP8 ? ((uintptr_t)out & 7) == 0 && (one_row || a->out_stride % 8 == 0)
                            : sf::aligned16(out) && (one_row || a->out_stride % VEC == 0);
    /* e4m3 out: at most 2 vectors a thread (at 4, ptxas spilled the second pass's registers under
     * the 64 a thread of 1024 threads), so rows up to 2048 vectors (16384 elements) */
    constexpr int kMaxVpt = FP8 ? 2 : kNormMaxVecPerThread;
    bool vec_ok = a->hidden % VEC == 0 && a->hidden / VEC <= 1024 * kMaxVpt && sf::aligned16(x) &&
                  sf::aligned16(w) && out_ok && (one_row || a->x_stride % VEC == 0);
    if (RESIDUAL) vec_ok = vec_ok && sf::aligned16(res) && (one_row || a->residual_stride % VEC == 0);
    if (!vec_ok) {
        return (int)sf::launch(rmsnorm_scalar_kernel<T, RESIDUAL, FP8>, grid, kNormScalarThreads, 0, stream, 1, x, res,
                               w, out, a->hidden, a->x_stride, a->residual_stride, a->out_stride, inv_hidden,
                               (float)a->eps, a->out_scale);
    }
    /* the fewest vectors per thread that keep the block at 256 threads or fewer; past that,
     * 4 per thread (2 for an e4m3 output, whose 4 spilled) and up to 1024 threads */
    const int n_vec = (int)(a->hidden / VEC);
    int vpt = n_vec <= 256 ? 1 : n_vec <= 512 || FP8 ? 2 : 4;
    int threads = (n_vec + vpt - 1) / vpt;
    threads = (threads + 31) / 32 * 32;
    auto kernel = vpt == 1 ? rmsnorm_vec_kernel<T, 1, RESIDUAL, FP8> : rmsnorm_vec_kernel<T, 2, RESIDUAL, FP8>;
    if constexpr (!FP8)
        if (vpt == 4) kernel = rmsnorm_vec_kernel<T, 4, RESIDUAL, FP8>;
    return (int)sf::launch(kernel, grid, threads, 0, stream, 1, x, res, w, out, n_vec, a->x_stride,
                           a->residual_stride, a->out_stride, inv_hidden, (float)a->eps, a->out_scale);
}

template <typename T> int rmsnorm_for_type(const sf_rmsnorm_args *a, cudaStream_t stream)
{
    if (a->out_scale)
        return a->residual ? launch_rmsnorm<T, true, true>(a, stream) : launch_rmsnorm<T, false, true>(a, stream);
    return a->residual ? launch_rmsnorm<T, true, false>(a, stream) : launch_rmsnorm<T, false, false>(a, stream);
}

/* ---- RoPE --------------------------------------------------------------------------------- */

constexpr int kRopeThreads = 256;
constexpr int kRopeUnroll = 4;              /* (lo, hi) vector pairs per thread in flight */
constexpr int kRopeItemsPerBlock = kRopeThreads * kRopeUnroll;
constexpr int kRopeMaxTableEntries = 4096;  /* (cos, sin) pairs: 32 KB of shared memory */

/* An item is VEC consecutive frequencies of one head of one token: the VEC elements at
 * d = c·VEC.. (lo) and their partners at d + D/2 (hi). A block takes tokens_per_block
 * consecutive tokens of the flattened [batch·seq]; items run head-major inside a token so
 * that a warp's loads cover whole 256-byte halves of consecutive heads. */
template <typename T, int VEC>
__global__ void __launch_bounds__(kRopeThreads, 4) rope_kernel(const __grid_constant__ sf_rope_args a,
                                                            int tokens_per_block, int chunks, int items_per_token)
{
    sf::grid_dep_wait();
    sf::grid_dep_launch();
    using tr = sf::dtype_traits<T>;
    using item_t = sf::items<T, VEC>;
    using vec_t = typename item_t::raw_t;
    extern __shared__ float2 cos_sin[]; /* [tokens_per_block][D/2] */

    const int half = (int)(a.head_dim / 2);
    const int seq = (int)a.seq; /* below 2^24 (positions are exact fp32) */
    const int64_t n_tokens = a.batch * a.seq;
    const int64_t tok0 = (int64_t)blockIdx.x * tokens_per_block;
    const int tokens_here = (int)min((int64_t)tokens_per_block, n_tokens - tok0);
    const int total = tokens_here * items_per_token;
    /* the block's first token as (b0, n0); a slot's token is n0 + slot positions on, which
     * 32-bit arithmetic splits into (b, n) */
    const int64_t b0 = tok0 / a.seq;
    const int n0 = (int)(tok0 - b0 * a.seq);
    T *x = static_cast<T *>(a.x);

    for (int base = 0; base < total; base += kRopeItemsPerBlock) {
        item_t lo[kRopeUnroll], hi[kRopeUnroll];
        T *p[kRopeUnroll];
        int tab[kRopeUnroll]; /* index of the item's first frequency in cos_sin */
#pragma unroll
        for (int u = 0; u < kRopeUnroll; u++) {
            const int j = base + u * kRopeThreads + threadIdx.x;
            p[u] = nullptr;
            if (j < total) {
                const int slot = j / items_per_token, rem = j - slot * items_per_token;
                const int h = rem / chunks, c = rem - h * chunks;
                const int nn = n0 + slot, db = nn / seq, n = nn - db * seq;
                p[u] = x + (b0 + db) * a.stride[0] + n * a.stride[1] + h * a.stride[2] + c * VEC;
                tab[u] = slot * half + c * VEC;
                lo[u].raw = *reinterpret_cast<const vec_t *>(p[u]);
                hi[u].raw = *reinterpret_cast<const vec_t *>(p[u] + half);
            }
        }
        if (base == 0) { /* block-uniform: the table is built while the first loads are in flight */
            for (int k = threadIdx.x; k < tokens_here * half; k += kRopeThreads) {
                const int slot = k / half, i = k - slot * half;
                const int nn = n0 + slot, db = nn / seq, n = nn - db * seq;
                const int64_t first = a.positions ? (int64_t)a.positions[b0 + db] : a.pos_offset;
                cos_sin[k] = sf::rope_cos_sin((float)(first + n), a.inv_freq[i]);
            }
            __syncthreads();
        }
#pragma unroll
        for (int u = 0; u < kRopeUnroll; u++) {
            if (p[u]) {
#pragma unroll
                for (int e = 0; e < VEC; e++) {
                    const float2 r = sf::rope_rotate(tr::to_f(lo[u].e[e]), tr::to_f(hi[u].e[e]), cos_sin[tab[u] + e]);
                    lo[u].e[e] = tr::from_f(r.x);
                    hi[u].e[e] = tr::from_f(r.y);
                }
                *reinterpret_cast<vec_t *>(p[u]) = lo[u].raw;
                *reinterpret_cast<vec_t *>(p[u] + half) = hi[u].raw;
            }
        }
    }
}

template <typename T, int VEC> int launch_rope(const sf_rope_args *a, cudaStream_t stream)
{
    const int half = (int)(a->head_dim / 2);
    const int chunks = half / VEC;
    const int64_t items_per_token = a->heads * chunks;
    if (items_per_token > (int64_t)1 << 30) return (int)cudaErrorInvalidValue;
    int64_t tpb = kRopeItemsPerBlock / items_per_token;
    if (tpb > kRopeMaxTableEntries / half) tpb = kRopeMaxTableEntries / half;
    if (tpb < 1) tpb = 1;
    const int64_t n_tokens = a->batch * a->seq;
    const int64_t blocks = (n_tokens + tpb - 1) / tpb;
    if (blocks > 0x7fffffff) return (int)cudaErrorInvalidValue;
    const size_t smem = (size_t)tpb * half * sizeof(float2);
    return (int)sf::launch(rope_kernel<T, VEC>, (unsigned)blocks, kRopeThreads, smem, stream, 1, *a, (int)tpb, chunks,
                           (int)items_per_token);
}

template <typename T> int rope_for_type(const sf_rope_args *a, cudaStream_t stream)
{
    constexpr int VEC = 16 / sizeof(T);
    const int64_t shape[3] = {a->batch, a->seq, a->heads};
    const bool vec_ok = (a->head_dim / 2) % VEC == 0 && sf::vec_fits(a->x, a->stride, shape, 3, VEC);
    return vec_ok ? launch_rope<T, VEC>(a, stream) : launch_rope<T, 1>(a, stream);
}

/* ---- add ---------------------------------------------------------------------------------- */

constexpr int kAddThreads = 256;
constexpr int kAddUnroll = 4;

/* Contiguous operands: n_vec 16-byte vectors, then the scalar tail [n_vec·VEC, n). */
template <typename T>
__global__ void __launch_bounds__(kAddThreads) add_flat_kernel(const T *a, const T *b, T *out, int64_t n,
                                                               int64_t n_vec)
{
    sf::grid_dep_wait();
    sf::grid_dep_launch();
    using tr = sf::dtype_traits<T>;
    constexpr int VEC = 16 / sizeof(T);
    const uint4 *va = reinterpret_cast<const uint4 *>(a), *vb = reinterpret_cast<const uint4 *>(b);
    uint4 *vo = reinterpret_cast<uint4 *>(out);
    const int64_t stride = (int64_t)gridDim.x * kAddThreads * kAddUnroll;
    for (int64_t base = (int64_t)blockIdx.x * kAddThreads * kAddUnroll + threadIdx.x; base < n_vec; base += stride) {
        sf::vec16<T> xa[kAddUnroll], xb[kAddUnroll];
#pragma unroll
        for (int u = 0; u < kAddUnroll; u++) {
            const int64_t i = base + (int64_t)u * kAddThreads;
            if (i < n_vec) {
                xa[u].raw = va[i];
                xb[u].raw = vb[i];
            }
        }
#pragma unroll
        for (int u = 0; u < kAddUnroll; u++) {
            const int64_t i = base + (int64_t)u * kAddThreads;
            if (i < n_vec) {
#pragma unroll
                for (int e = 0; e < VEC; e++) xa[u].e[e] = tr::from_f(tr::to_f(xa[u].e[e]) + tr::to_f(xb[u].e[e]));
                vo[i] = xa[u].raw;
            }
        }
    }
    for (int64_t i = n_vec * VEC + (int64_t)blockIdx.x * kAddThreads + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * kAddThreads)
        out[i] = tr::from_f(tr::to_f(a[i]) + tr::to_f(b[i]));
}

struct add_layout {
    int ndim;
    int64_t shape[SF_MAX_DIMS];
    int64_t sa[SF_MAX_DIMS], sb[SF_MAX_DIMS], so[SF_MAX_DIMS];
};

/* Strided operands: rows are the leading dimensions, the last one is contiguous; a block takes
 * a row at a time and its threads walk the columns, VEC elements each. */
template <typename T, int VEC>
__global__ void __launch_bounds__(kAddThreads) add_rows_kernel(const T *a, const T *b, T *out,
                                                               const __grid_constant__ add_layout l, int64_t rows)
{
    sf::grid_dep_wait();
    sf::grid_dep_launch();
    using tr = sf::dtype_traits<T>;
    using item_t = sf::items<T, VEC>;
    using vec_t = typename item_t::raw_t;
    const int last = l.ndim - 1;
    const int64_t cols = l.shape[last] / VEC;
    for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
        int64_t oa = 0, ob = 0, oo = 0, rem = row;
        for (int d = last - 1; d >= 0; d--) {
            const int64_t q = rem / l.shape[d], i = rem - q * l.shape[d];
            oa += i * l.sa[d];
            ob += i * l.sb[d];
            oo += i * l.so[d];
            rem = q;
        }
        for (int64_t c = threadIdx.x; c < cols; c += kAddThreads) {
            item_t xa, xb;
            xa.raw = reinterpret_cast<const vec_t *>(a + oa)[c];
            xb.raw = reinterpret_cast<const vec_t *>(b + ob)[c];
#pragma unroll
            for (int e = 0; e < VEC; e++) xa.e[e] = tr::from_f(tr::to_f(xa.e[e]) + tr::to_f(xb.e[e]));
            reinterpret_cast<vec_t *>(out + oo)[c] = xa.raw;
        }
    }
}

/* Drops size-1 dimensions and merges each dimension into the next where all three operands
 * are contiguous across the pair, so a contiguous add becomes one dimension. */
add_layout collapse(const sf_add_args *a)
{
    add_layout l;
    l.ndim = 0;
    for (int d = 0; d < a->ndim; d++) {
        if (a->shape[d] == 1) continue;
        l.shape[l.ndim] = a->shape[d];
        l.sa[l.ndim] = a->a_stride[d];
        l.sb[l.ndim] = a->b_stride[d];
        l.so[l.ndim] = a->out_stride[d];
        l.ndim++;
    }
    if (l.ndim == 0) {
        l.ndim = 1;
        l.shape[0] = 1;
        l.sa[0] = l.sb[0] = l.so[0] = 1;
        return l;
    }
    int n = 0;
    for (int d = 1; d < l.ndim; d++) {
        const int64_t s = l.shape[d];
        if (l.sa[n] == l.sa[d] * s && l.sb[n] == l.sb[d] * s && l.so[n] == l.so[d] * s) {
            l.shape[n] *= s;
            l.sa[n] = l.sa[d];
            l.sb[n] = l.sb[d];
            l.so[n] = l.so[d];
        } else {
            n++;
            l.shape[n] = l.shape[d];
            l.sa[n] = l.sa[d];
            l.sb[n] = l.sb[d];
            l.so[n] = l.so[d];
        }
    }
    l.ndim = n + 1;
    const int last = l.ndim - 1;
    if ((l.sa[last] != 1 || l.sb[last] != 1 || l.so[last] != 1) && l.ndim < SF_MAX_DIMS) {
        /* the dense dimension had size 1 and was dropped: put a unit one back */
        l.shape[l.ndim] = 1;
        l.sa[l.ndim] = l.sb[l.ndim] = l.so[l.ndim] = 1;
        l.ndim++;
    }
    return l;
}

template <typename T> int add_for_type(const sf_add_args *a, cudaStream_t stream)
{
    constexpr int VEC = 16 / sizeof(T);
    const T *pa = static_cast<const T *>(a->a), *pb = static_cast<const T *>(a->b);
    T *po = static_cast<T *>(a->out);
    const add_layout l = collapse(a);
    const int last = l.ndim - 1;
    if (l.sa[last] != 1 || l.sb[last] != 1 || l.so[last] != 1) return (int)cudaErrorInvalidValue;
    bool vec_ok = sf::aligned16(pa) && sf::aligned16(pb) && sf::aligned16(po);
    int sms = 0;
    if (int e = sf::sm_count(&sms)) return e;
    if (l.ndim == 1) {
        const int64_t n = l.shape[0], n_vec = vec_ok ? n / VEC : 0;
        const int64_t work = n_vec > 0 ? (n_vec + kAddThreads * kAddUnroll - 1) / (kAddThreads * kAddUnroll)
                                       : (n + kAddThreads - 1) / kAddThreads;
        int64_t blocks = work < (int64_t)sms * 8 ? work : (int64_t)sms * 8;
        if (blocks < 1) blocks = 1;
        return (int)sf::launch(add_flat_kernel<T>, (unsigned)blocks, kAddThreads, 0, stream, 1, pa, pb, po, n, n_vec);
    }
    int64_t rows = 1;
    for (int d = 0; d < last; d++) {
        rows *= l.shape[d];
        vec_ok = vec_ok && l.sa[d] % VEC == 0 && l.sb[d] % VEC == 0 && l.so[d] % VEC == 0;
    }
    vec_ok = vec_ok && l.shape[last] % VEC == 0;
    const int64_t blocks = rows < (int64_t)sms * 16 ? rows : (int64_t)sms * 16;
    return (int)sf::launch(vec_ok ? add_rows_kernel<T, VEC> : add_rows_kernel<T, 1>, (unsigned)blocks, kAddThreads, 0,
                           stream, 1, pa, pb, po, l, rows);
}

} // namespace

extern "C" int sf_rmsnorm_cuda(const sf_rmsnorm_args *a, void *stream)
{
    if (!a || a->rows < 0 || a->hidden < 1 || a->rows > 0x7fffffff || !a->x || !a->weight || !a->out)
        return (int)cudaErrorInvalidValue;
    if (a->rows == 0) return (int)cudaSuccess;
    cudaStream_t s = (cudaStream_t)stream;
    switch (a->dtype) {
    case SF_F16: return rmsnorm_for_type<__half>(a, s);
    case SF_BF16: return rmsnorm_for_type<__nv_bfloat16>(a, s);
    default: return (int)cudaErrorInvalidValue;
    }
}

extern "C" int sf_rope_cuda(const sf_rope_args *a, void *stream)
{
    if (!a || !a->x || a->batch < 0 || a->seq < 0 || a->heads < 0 || a->head_dim < 2 || a->head_dim % 2 ||
        a->head_dim > SF_ROPE_MAX_HEAD_DIM || a->pos_offset < 0 || a->pos_offset + a->seq > ((int64_t)1 << 24))
        return (int)cudaErrorInvalidValue;
    if (a->batch == 0 || a->seq == 0 || a->heads == 0) return (int)cudaSuccess;
    cudaStream_t s = (cudaStream_t)stream;
    switch (a->dtype) {
    case SF_F16: return rope_for_type<__half>(a, s);
    case SF_BF16: return rope_for_type<__nv_bfloat16>(a, s);
    default: return (int)cudaErrorInvalidValue;
    }
}

extern "C" int sf_add_cuda(const sf_add_args *a, void *stream)
{
    if (!a || !a->a || !a->b || !a->out || a->ndim < 1 || a->ndim > SF_MAX_DIMS) return (int)cudaErrorInvalidValue;
    for (int d = 0; d < a->ndim; d++) {
        if (a->shape[d] < 0) return (int)cudaErrorInvalidValue;
        if (a->shape[d] == 0) return (int)cudaSuccess;
    }
    cudaStream_t s = (cudaStream_t)stream;
    switch (a->dtype) {
    case SF_F16: return add_for_type<__half>(a, s);
    case SF_BF16: return add_for_type<__nv_bfloat16>(a, s);
    default: return (int)cudaErrorInvalidValue;
    }
}
