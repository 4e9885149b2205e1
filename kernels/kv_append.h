/* The decode step's KV append with RoPE, fused (src/op_kv_append.c):
 *   sf_kv_append_cuda    kernels/kv_append.cu     f16/bf16, fp32 math
 *   sf_kv_append_ref_cpu src/ref_kv_append.c      any float dtype, double math
 *
 * For each new token t of sequence b, at position p = positions[b] + t:
 *   - K's row [b, t] turned by RoPE at p (norm_rope.h's definition, bit for bit its angle) is
 *     written into the key cache at row p of sequence b;
 *   - V's row [b, t] is written into the value cache there unchanged;
 *   - q [b, t] (optional) is turned by RoPE at p in place.
 * k and v are not modified. Row p of sequence b is, in a contiguous cache [B, capacity, Hkv, D],
 * [b, p]; in a paged one (the pool [pages, page_size, Hkv, D]), [block_table[b][p / page_size],
 * p % page_size]. The caller has checked every shape; the contents of positions and
 * block_table are checked on the CPU (sf_kv_append_ref_cpu returns the first bad row, and
 * nothing is written). On the GPU, a row whose position is outside the cache, or whose page is
 * outside the pool, is not written: nothing outside the cache is written, that sequence's
 * attention reads whatever the row held, and its q is still turned. Two sequences whose block
 * tables share a page write its rows in no set order. */
#ifndef SF_KV_APPEND_H
#define SF_KV_APPEND_H

#include <stdint.h>
#include "norm_rope.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sf_kv_append_args {
    sf_dtype dtype;
    int64_t batch, tokens, heads, kv_heads, head_dim; /* heads: q's, 0 without q */
    void *q;                                           /* [B, T, heads, D] or NULL */
    const void *k, *v;                                 /* [B, T, Hkv, D] */
    int64_t q_stride[3], k_stride[3], v_stride[3];     /* elements between consecutive b, t, h */
    void *k_cache, *v_cache;                           /* contiguous, the same shape */
    int64_t cache_stride[2];                           /* elements between sequences (pages), rows */
    const int32_t *positions;                          /* [B]: the step's first position a sequence */
    const int32_t *block_table;                        /* [B, *] rows bt_stride apart, or NULL */
    int64_t bt_stride, page_size, n_pages, capacity;   /* contiguous: page_size = capacity, n_pages = B */
    float inv_freq[SF_ROPE_MAX_HEAD_DIM / 2];          /* sf_rope_inv_freq */
} sf_kv_append_args;

int sf_kv_append_cuda(const sf_kv_append_args *a, void *stream);

/* 0, or 1 + the index b·T + t of the first row whose position is outside the cache or whose
 * page is outside the pool (nothing written then) */
int64_t sf_kv_append_ref_cpu(const sf_kv_append_args *a);

#ifdef __cplusplus
}
#endif

#endif
