/* The fused KV append (kv_append.h): one launch for what rope over q, rope over k and two copies
 * did. An item is one chunk of VEC consecutive frequencies of one row (a head of one token):
 * elements c·VEC.. (lo) and their partners at D/2 + c·VEC (hi), loaded as 16-byte vectors where
 * the layout allows. Rows run q's heads, then k's, then v's: a q item turns in place, a k item
 * turns on its way to the key cache, a v item is copied to the value cache. The angle and the
 * rotation are the rope kernel's (one fp32 product of the position and inv_freq, sincosf, the same
 * fp32 expression), so the two give the same bits; tests/gpu/test_gpu_decode.lua holds them to it. */
#include <cuda_runtime.h>
#include <stdint.h>

#include "common.cuh"
#include "kv_append.h"

namespace {

constexpr int kThreads = 128;

template <typename T, int VEC>
__global__ void __launch_bounds__(kThreads) kv_append_kernel(const __grid_constant__ sf_kv_append_args a,
                                                             int64_t items, int chunks)
{
    sf::grid_dep_wait();
    sf::grid_dep_launch();
    using tr = sf::dtype_traits<T>;
    using item_t = sf::items<T, VEC>;
    using vec_t = typename item_t::raw_t;
    const int64_t i = (int64_t)blockIdx.x * kThreads + threadIdx.x;
    if (i >= items) return;
    const int64_t rows = a.heads + 2 * a.kv_heads;
    const int c = (int)(i % chunks);
    const int64_t rt = i / chunks, row = rt % rows, tok = rt / rows;
    const int64_t b = tok / a.tokens, t = tok - b * a.tokens;
    const int64_t p = (int64_t)a.positions[b] + t;
    const int64_t half = a.head_dim / 2, d = (int64_t)c * VEC;

    const T *src;
    T *dst;
    if (row < a.heads) {
        dst = static_cast<T *>(a.q) + b * a.q_stride[0] + t * a.q_stride[1] + row * a.q_stride[2] + d;
        src = dst;
    } else {
        const bool is_k = row < a.heads + a.kv_heads;
        const int64_t h = row - a.heads - (is_k ? 0 : a.kv_heads);
        const int64_t *st = is_k ? a.k_stride : a.v_stride;
        src = static_cast<const T *>(is_k ? a.k : a.v) + b * st[0] + t * st[1] + h * st[2] + d;
        /* the cache row: outside the cache, or on a page outside the pool, nothing is written */
        if (p < 0 || p >= a.capacity) return;
        const int64_t page = a.block_table ? (int64_t)a.block_table[b * a.bt_stride + p / a.page_size] : b;
        if (page < 0 || page >= a.n_pages) return;
        dst = static_cast<T *>(is_k ? a.k_cache : a.v_cache) + page * a.cache_stride[0] +
              (p % a.page_size) * a.cache_stride[1] + h * a.head_dim + d;
    }
    item_t lo, hi;
    lo.raw = *reinterpret_cast<const vec_t *>(src);
    hi.raw = *reinterpret_cast<const vec_t *>(src + half);
    if (row < a.heads + a.kv_heads) {
#pragma unroll
        for (int e = 0; e < VEC; e++) {
            const float2 r = sf::rope_rotate(tr::to_f(lo.e[e]), tr::to_f(hi.e[e]), sf::rope_cos_sin((float)p, a.inv_freq[d + e]));
            lo.e[e] = tr::from_f(r.x);
            hi.e[e] = tr::from_f(r.y);
        }
    }
    *reinterpret_cast<vec_t *>(dst) = lo.raw;
    *reinterpret_cast<vec_t *>(dst + half) = hi.raw;
}

template <typename T> int launch(const sf_kv_append_args *a, cudaStream_t stream)
{
    constexpr int VEC = 16 / sizeof(T);
    const int64_t half = a->head_dim / 2;
    const int64_t kv_shape[3] = {a->batch, a->tokens, a->kv_heads}, q_shape[3] = {a->batch, a->tokens, a->heads};
    /* the caches are contiguous: their strides are multiples of D, so of VEC where half is */
    const bool vec = half % VEC == 0 && sf::vec_fits(a->k, a->k_stride, kv_shape, 3, VEC) &&
                     sf::vec_fits(a->v, a->v_stride, kv_shape, 3, VEC) && (!a->q || sf::vec_fits(a->q, a->q_stride, q_shape, 3, VEC)) &&
                     sf::aligned16(a->k_cache) && sf::aligned16(a->v_cache);
    const int chunks = (int)(vec ? half / VEC : half);
    const int64_t items = a->batch * a->tokens * (a->heads + 2 * a->kv_heads) * chunks;
    const int64_t blocks = (items + kThreads - 1) / kThreads;
    if (blocks > 0x7fffffff) return (int)cudaErrorInvalidValue;
    if (vec)
        return (int)sf::launch(kv_append_kernel<T, VEC>, (unsigned)blocks, kThreads, 0, stream, 1, *a, items, chunks);
    return (int)sf::launch(kv_append_kernel<T, 1>, (unsigned)blocks, kThreads, 0, stream, 1, *a, items, chunks);
}

} // namespace

extern "C" int sf_kv_append_cuda(const sf_kv_append_args *a, void *stream)
{
    if (a->batch < 0 || a->tokens < 0 || a->head_dim % 2 || a->head_dim > SF_ROPE_MAX_HEAD_DIM || a->page_size < 1)
        return (int)cudaErrorInvalidValue;
    if (a->batch == 0 || a->tokens == 0) return 0;
    cudaStream_t s = (cudaStream_t)stream;
    switch (a->dtype) {
    case SF_F16: return launch<__half>(a, s);
    case SF_BF16: return launch<__nv_bfloat16>(a, s);
    default: return (int)cudaErrorInvalidValue;
    }
}
