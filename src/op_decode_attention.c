/* The decode_attention op: Nq (1..8) new query tokens per sequence against a KV cache with
 * per-sequence lengths, contiguous [B, Nmax, Hkv, D] or paged (a pool [P, page_size, Hkv, D]
 * and a block table). The CPU backend runs the double reference; the GPU the split-KV kernel
 * and its combine. Shapes, dtypes, heads, head dims and the page size are checked before
 * anything is launched; the contents of seqlens and block_table only where they can be read
 * without a sync, i.e. on the CPU backend (kernels/decode_attention.h says what the GPU does).
 * Returns the number of KV splits it ran with (1 on the CPU). */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include "ops.h"
#include "decode_attention.h"
#ifdef SF_HAVE_CUDA
#include "cuda_check.h"
#endif

_Static_assert(SF_DECODE_COUNTERS == SF_COUNTERS, "the kernel's counter bound is the counter set's size");

static const sf_arg_spec decode_args[] = {
    {"q", SF_ARG_TENSOR, 1, NULL, "queries [B, Nq, H, D], Nq 1..8 (the sequences' newest tokens)"},
    {"k", SF_ARG_TENSOR, 1, NULL, "key cache: [B, Nmax, Hkv, D], or with block_table the page pool [P, page_size, Hkv, D]"},
    {"v", SF_ARG_TENSOR, 1, NULL, "value cache, k's shape"},
    {"seqlens", SF_ARG_TENSOR, 1, NULL, "i32 [B]: keys in each sequence's cache, the new tokens' included"},
    {"block_table", SF_ARG_TENSOR, 0, NULL, "i32 [B, pages per sequence]: the pool page of keys [j·page_size, (j+1)·page_size)"},
    {"out", SF_ARG_TENSOR, 1, NULL, "output [B, Nq, H, D], written"},
    {"lse", SF_ARG_TENSOR, 0, NULL, "optional f32 [B, H, Nq]: logsumexp of the scaled scores, written"},
    {"causal", SF_ARG_BOOL, 0, "true", "query i sees keys n < seqlen - (Nq - 1 - i); false: all seqlen keys"},
    {"scale", SF_ARG_NUMBER, 0, "1/sqrt(D)", "softmax scale"},
    {"splits", SF_ARG_INTEGER, 0, "0", "KV splits on the GPU (flash-decoding); 0 chooses from B·Hkv·max_seqlen to fill the GPU"},
    {"max_seqlen", SF_ARG_INTEGER, 0, "capacity", "an upper bound of seqlens, for choosing the splits"},
    {"stream", SF_ARG_STREAM, 0, NULL, "stream to run on"},
    {NULL, 0, 0, NULL, NULL}};

/* seqlens within the cache and, paged, every page a sequence reaches inside the pool */
static void check_contents(sf_op_args *a, const sf_decode_attention_args *d)
{
    for (int b = 0; b < d->batch; b++) {
        const int len = d->seqlens[b];
        if (len < 0) sf_op_error(a, "seqlens[%d] is %d: lengths are >= 0", b + 1, len);
        if (len > d->capacity)
            sf_op_error(a, "seqlens[%d] is %d, longer than the cache (%d keys a sequence)", b + 1, len, d->capacity);
        if (d->max_seqlen > 0 && len > d->max_seqlen)
            sf_op_error(a, "seqlens[%d] is %d, above max_seqlen %d", b + 1, len, d->max_seqlen);
        if (!d->block_table) continue;
        for (int j = 0; j < (len + d->page_size - 1) / d->page_size; j++) {
            const int32_t pg = d->block_table[(int64_t)b * d->bt_stride + j];
            if (pg < 0 || pg >= d->n_pages)
                sf_op_error(a, "block_table[%d][%d] is %d, outside the page pool (pages 0..%d)", b + 1, j + 1, pg,
                            d->n_pages - 1);
        }
    }
}

static void run_decode_attention(sf_op_args *a)
{
    static const char *const tensors[] = {"q", "k", "v", "seqlens", "block_table", "out", "lse", NULL};
    sf_tensor *q = sf_arg_tensor(a, "q"), *k = sf_arg_tensor(a, "k"), *v = sf_arg_tensor(a, "v");
    sf_tensor *seqlens = sf_arg_tensor(a, "seqlens"), *bt = sf_arg_tensor(a, "block_table");
    sf_tensor *out = sf_arg_tensor(a, "out"), *lse = sf_arg_tensor(a, "lse");
    sf_device_kind dev = sf_op_device(a, tensors);
    const unsigned dtypes = sf_op_model_dtypes(dev);
    sf_op_check_dtype(a, "q", q, dtypes);
    sf_op_check_dtype(a, "k", k, SF_DT(q->dtype));
    sf_op_check_dtype(a, "v", v, SF_DT(q->dtype));
    sf_op_check_dtype(a, "out", out, SF_DT(q->dtype));

    sf_decode_attention_args d = {0};
    sf_op_check_bnhd(a, "q", q, d.q_stride);
    sf_op_check_bnhd(a, "k", k, d.k_stride);
    sf_op_check_bnhd(a, "v", v, d.v_stride);
    sf_op_check_bnhd(a, "out", out, d.o_stride);
    sf_op_check_shape(a, "v", v, 4, k->shape);
    sf_op_check_shape(a, "out", out, 4, q->shape);
    if (q->shape[0] > 0x7fffffff || q->shape[2] > 0x7fffffff || k->shape[0] > 0x7fffffff || k->shape[2] > 0x7fffffff)
        sf_op_error(a, "batch, heads and pages must each be below 2^31");
    d.batch = (int)q->shape[0];
    d.n_q = (int)q->shape[1];
    d.n_heads = (int)q->shape[2];
    d.head_dim = (int)q->shape[3];
    d.n_kv_heads = (int)k->shape[2];
    if (d.n_q > SF_DECODE_MAX_QUERIES)
        sf_op_error(a, "'q' has %d tokens a sequence (dimension 2): decode takes 1 to %d", d.n_q, SF_DECODE_MAX_QUERIES);
    if (k->shape[3] != d.head_dim)
        sf_op_error(a, "the head dim of 'q' (%d) does not match the cache's (%lld, dimension 4 of 'k')", d.head_dim,
                    (long long)k->shape[3]);
    if (d.n_heads % d.n_kv_heads != 0)
        sf_op_error(a, "the cache's kv heads (%d, dimension 3 of 'k') must divide the query heads (%d)", d.n_kv_heads,
                    d.n_heads);

    int64_t B = d.batch;
    sf_op_check_dtype(a, "seqlens", seqlens, SF_DT(SF_I32));
    sf_op_check_shape(a, "seqlens", seqlens, 1, &B);
    if (!sf_tensor_is_contiguous(seqlens)) sf_op_error(a, "'seqlens' must be contiguous");
    d.seqlens = (const int32_t *)seqlens->data;
    sf_op_cache c;
    sf_op_check_cache(a, "k", k, bt, B, "q", &c);
    const int64_t capacity = c.capacity;
    d.block_table = c.block_table;
    d.bt_stride = c.bt_stride;
    d.page_size = (int)c.page_size;
    d.n_pages = (int)c.n_pages;
    d.capacity = (int)capacity;
    lua_Integer max_seqlen = sf_arg_integer(a, "max_seqlen", 0);
    if (max_seqlen < 0 || max_seqlen > capacity)
        sf_op_error(a, "'max_seqlen' is %lld: it must be within the cache's %lld keys", (long long)max_seqlen,
                    (long long)capacity);
    d.max_seqlen = (int)max_seqlen;
    lua_Integer splits = sf_arg_integer(a, "splits", 0);
    if (splits < 0 || splits > SF_DECODE_MAX_SPLITS)
        sf_op_error(a, "'splits' is %lld: 0 (automatic) to %d", (long long)splits, SF_DECODE_MAX_SPLITS);
    d.splits = (int)splits;
    if (lse) {
        int64_t lse_shape[3] = {B, d.n_heads, d.n_q};
        sf_op_check_dtype(a, "lse", lse, SF_DT(SF_F32));
        sf_op_check_shape(a, "lse", lse, 3, lse_shape);
        if (!sf_tensor_is_contiguous(lse)) sf_op_error(a, "'lse' must be contiguous");
        d.lse = (float *)lse->data;
    }
    double scale = sf_arg_number(a, "scale", 1.0 / sqrt((double)d.head_dim));
    if (!(scale >= 0) || isinf(scale)) sf_op_error(a, "'scale' must be a finite number >= 0, got %g", scale);
    d.scale = (float)scale;
    d.causal = sf_arg_bool(a, "causal", 1);
    d.dtype = q->dtype;
    d.q = q->data;
    d.k = k->data;
    d.v = v->data;
    d.out = out->data;
    void *stream = sf_arg_stream(a);
    if (dev == SF_DEV_CPU) {
        check_contents(a, &d);
        sf_decode_attention_ref_cpu(&d);
        lua_pushinteger(a->L, 1);
        lua_pushliteral(a->L, "reference");
        return;
    }
#ifdef SF_HAVE_CUDA
    if (d.head_dim != 64 && d.head_dim != 128) sf_op_error(a, "the GPU kernel supports head dims 64 and 128, got %d", d.head_dim);
    const sf_tensor *all[4] = {q, k, v, out};
    const char *names[4] = {"q", "k", "v", "out"};
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 3; j++)
            if (all[i]->stride[j] % 8)
                sf_op_error(a, "the GPU kernel needs strides that are multiples of 8 elements ('%s' dimension %d is %lld)",
                            names[i], j + 1, (long long)all[i]->stride[j]);
        if ((uintptr_t)all[i]->data % 16) sf_op_error(a, "the GPU kernel needs a 16-byte aligned '%s'", names[i]);
    }
    if (!sf_decode_attention_variant())
        sf_op_error(a, "SFBENCH_DECODE_VARIANT=%s names no variant of the kernel: base, ring, ring48 or mma",
                    getenv("SFBENCH_DECODE_VARIANT"));
    int n_splits = 1;
    SF_CUDA(a->L, sf_decode_attention_splits(&d, &n_splits));
    size_t ws_bytes = sf_decode_attention_workspace_bytes(&d, n_splits);
    void *ws = ws_bytes ? sf_scratch(a->L, SF_DEV_CUDA, ws_bytes, "the decode attention splits") : NULL;
    unsigned *counters = n_splits > 1 ? sf_counters(a->L, SF_COUNTERS_DECODE) : NULL;
    SF_CUDA(a->L, sf_decode_attention_cuda(&d, n_splits, ws, counters, stream));
    lua_pushinteger(a->L, n_splits);
    lua_pushstring(a->L, sf_decode_attention_variant());
#else
    (void)stream;
#endif
}

const sf_op sf_op_decode_attention = {"decode_attention", "attention of a few new tokens over a KV cache: per-sequence "
                                      "lengths, contiguous or paged, GQA/MQA; split-KV on the GPU", decode_args,
                                      run_decode_attention};
