/* Decode attention: a few new query tokens per sequence against a KV cache, with per-sequence
 * lengths, contiguous or paged (plain C; no CUDA headers).
 *
 *   sf_decode_attention_cuda     kernels/decode_attention.cu   split-KV (flash-decoding) + combine
 *   sf_decode_attention_ref_cpu  src/ref_decode_attention.c    double-precision CPU reference
 *
 * Conventions:
 *   - q, out [B, Nq, H, D]; element (b,i,h,d) at b*s[0] + i*s[1] + h*s[2] + d.
 *   - the cache of sequence b holds seqlens[b] keys (the new tokens included). Key n of kv head
 *     hk lives at
 *       contiguous (block_table NULL): b*ks[0] + n*ks[1] + hk*ks[2]   of a [B, capacity, Hkv, D] cache
 *       paged:  block_table[b*bt_stride + n/page_size]*ks[0] + (n%page_size)*ks[1] + hk*ks[2]
 *               of a pool [n_pages, page_size, Hkv, D] (vLLM's block tables, FlashAttention's
 *               page layout), V likewise with vs.
 *   - KV head of q head h is h / (H / Hkv) (GQA; MQA when Hkv == 1).
 *   - causal: the Nq queries are the sequence's last Nq tokens, so query i sees keys
 *     n < seqlens[b] - (Nq - 1 - i); otherwise every query sees all seqlens[b] keys.
 *   - a query with no visible key gets out = 0, lse = -inf.
 *   - lse (optional) is [B, H, Nq] fp32, natural log of sum_n exp(scale * q.k_n).
 *   - the GPU cannot refuse bad contents of seqlens or block_table without reading them back (a
 *     sync), so the op checks them only on the CPU backend; the kernels never read outside the
 *     cache: a sequence whose length exceeds the capacity or whose pages fall outside the pool
 *     gets NaN outputs instead (the KV cache module checks both on the host before any launch).
 */
#ifndef SF_DECODE_ATTENTION_H
#define SF_DECODE_ATTENTION_H

#include <stddef.h>
#include <stdint.h>
#include "sf_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SF_DECODE_MAX_QUERIES 8   /* Nq: one token, or a few speculative ones */
#define SF_DECODE_MAX_SPLITS 1024
#define SF_DECODE_COUNTERS 65536 /* (sequence, kv head, row block) groups a call merges itself: src/sfbench.h's SF_COUNTERS */

typedef struct sf_decode_attention_args {
    sf_dtype dtype;               /* SF_F16 or SF_BF16 (any float dtype for the CPU ref) */
    const void *q, *k, *v;
    void *out;
    float *lse;                   /* optional (NULL): [B, H, Nq] */
    const int32_t *seqlens;       /* [B] */
    const int32_t *block_table;   /* NULL: contiguous cache; else [B, bt_stride] page indices */
    int64_t bt_stride;            /* elements between block-table rows */
    int batch, n_q, n_heads, n_kv_heads, head_dim;
    int capacity;                 /* keys one sequence can hold: Nmax, or pages per row * page_size */
    int page_size;                /* paged: a power of two; contiguous: capacity */
    int n_pages;                  /* paged: pages in the pool; contiguous: B */
    int64_t q_stride[3], k_stride[3], v_stride[3], o_stride[3]; /* elements, for dims 0..2; d is contiguous */
    float scale;
    int causal;
    int splits;                   /* 0: chosen from B·Hkv·max_seqlen (sf_decode_attention_splits) */
    int max_seqlen;               /* sizes the split grid: an upper bound of seqlens (capacity if unknown) */
} sf_decode_attention_args;

/* The split kernel in use, SFBENCH_DECODE_VARIANT (read once; "mma" when unset): "base",
 * "ring", "ring48" or "mma", kernels/decode_attention.cu says what each does. NULL when the
 * variable names none of them (the CUDA calls below then return cudaErrorInvalidValue). */
const char *sf_decode_attention_variant(void);
/* *splits = the number of KV splits the kernel runs with for these arguments (a->splits when
 * non-zero, at most SF_DECODE_MAX_SPLITS). Returns a cudaError_t (it asks the device its SM
 * count and the kernel's occupancy). */
int sf_decode_attention_splits(const sf_decode_attention_args *a, int *splits);
/* What that automatic count is made of (kernels/decode_attention.cu says the rule), in a form a
 * test can give without a GPU */
typedef struct sf_decode_split_inputs {
    int64_t ctas_a_split;    /* B·Hkv·(query row blocks) */
    int64_t keys;            /* of the longest sequence */
    int sms, occupancy;      /* the device's SMs; CTAs of the kernel an SM */
    size_t in_flight;        /* bytes of K and V a CTA keeps in flight; 0: its wave is its occupancy */
    double dram_bytes_per_s; /* the device's peak; 0 where unknown */
    int paged;
} sf_decode_split_inputs;
int sf_decode_split_rule(const sf_decode_split_inputs *in);
/* Bytes of fp32 workspace the split kernel writes for `splits` splits (0 when splits == 1: the
 * kernel then writes out and lse itself, no combine). */
size_t sf_decode_attention_workspace_bytes(const sf_decode_attention_args *a, int splits);
/* head_dim 64 or 128; f16/bf16; strides multiples of 8 elements and 16-byte aligned q, k, v,
 * out. `workspace`: sf_decode_attention_workspace_bytes(a, splits) bytes of device memory.
 * `counters`: NULL, or SF_DECODE_COUNTERS zeroed unsigned ints (left zeroed) with which a kernel that
 * can (mma) merges its splits itself instead of a second, combine kernel; no two calls sharing
 * counters or workspace may run concurrently.
 * Returns a cudaError_t (cudaErrorInvalidValue for unsupported arguments); asynchronous. */
int sf_decode_attention_cuda(const sf_decode_attention_args *a, int splits, void *workspace, unsigned *counters,
                             void *stream);

/* CPU reference: host pointers, any float dtype, double accumulation. */
void sf_decode_attention_ref_cpu(const sf_decode_attention_args *a);

#ifdef __cplusplus
}
#endif
#endif
