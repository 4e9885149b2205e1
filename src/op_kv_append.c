/* The kv_append op: a decode step's K and V written into a KV cache at each sequence's
 * position, K turned by RoPE on the way and, optionally, q turned in place at the same
 * positions: what rope over q, rope over k and two copies do, in one launch on the GPU
 * (kernels/kv_append.h). Shapes, dtypes and the cache's layout are checked before anything
 * runs; the contents of positions and block_table only on the CPU backend (reading them on the
 * GPU would take a sync), where a row outside the cache is an error that writes nothing. */
#include "config.h"
#include <string.h>
#include "ops.h"
#include "kv_append.h"
#ifdef SF_HAVE_CUDA
#include "cuda_check.h"
#endif

static const sf_arg_spec kv_append_args[] = {
    {"k", SF_ARG_TENSOR, 1, NULL, "[B, T, Hkv, D]: the step's keys, before RoPE (not modified)"},
    {"v", SF_ARG_TENSOR, 1, NULL, "[B, T, Hkv, D]: the step's values (not modified)"},
    {"k_cache", SF_ARG_TENSOR, 1, NULL, "key cache, contiguous: [B, capacity, Hkv, D], or with block_table the page "
     "pool [pages, page_size, Hkv, D]"},
    {"v_cache", SF_ARG_TENSOR, 1, NULL, "value cache, contiguous, k_cache's shape"},
    {"positions", SF_ARG_TENSOR, 1, NULL, "i32 [B]: token t of sequence b goes to row positions[b] + t"},
    {"block_table", SF_ARG_TENSOR, 0, NULL, "i32 [B, pages per sequence]: the pool page of rows [j·page_size, (j+1)·page_size)"},
    {"q", SF_ARG_TENSOR, 0, NULL, "[B, T, H, D]: turned by RoPE in place at the same positions"},
    {"theta", SF_ARG_NUMBER, 0, "10000", "RoPE's frequency base, as the rope op's"},
    {"stream", SF_ARG_STREAM, 0, NULL, "stream to run on"},
    {NULL, 0, 0, NULL, NULL}};

static void run_kv_append(sf_op_args *a)
{
    static const char *const tensors[] = {"k", "v", "k_cache", "v_cache", "positions", "block_table", "q", NULL};
    sf_tensor *k = sf_arg_tensor(a, "k"), *v = sf_arg_tensor(a, "v"), *kc = sf_arg_tensor(a, "k_cache");
    sf_tensor *vc = sf_arg_tensor(a, "v_cache"), *pos = sf_arg_tensor(a, "positions");
    sf_tensor *bt = sf_arg_tensor(a, "block_table"), *q = sf_arg_tensor(a, "q");
    sf_device_kind dev = sf_op_device(a, tensors);
    const unsigned dtypes = sf_op_model_dtypes(dev);
    sf_op_check_dtype(a, "k", k, dtypes);
    sf_op_check_dtype(a, "v", v, SF_DT(k->dtype));
    sf_op_check_dtype(a, "k_cache", kc, SF_DT(k->dtype));
    sf_op_check_dtype(a, "v_cache", vc, SF_DT(k->dtype));
    if (q) sf_op_check_dtype(a, "q", q, SF_DT(k->dtype));

    sf_rope_args r;
    sf_op_rope_heads(a, "k", k, &r); /* k [B, T, Hkv, D], D even; theta */
    sf_op_check_shape(a, "v", v, 4, k->shape);
    sf_op_check_last_dense(a, "v", v);
    if (kc->ndim != 4 || !sf_tensor_is_contiguous(kc))
        sf_op_error(a, "'k_cache' must be a contiguous [B or pages, rows, Hkv, D]");
    if (kc->shape[2] != k->shape[2] || kc->shape[3] != k->shape[3])
        sf_op_error(a, "'k_cache' holds %lld heads of %lld (dimensions 3 and 4), 'k' has %lld of %lld",
                    (long long)kc->shape[2], (long long)kc->shape[3], (long long)k->shape[2], (long long)k->shape[3]);
    sf_op_check_shape(a, "v_cache", vc, 4, kc->shape);
    if (!sf_tensor_is_contiguous(vc)) sf_op_error(a, "'v_cache' must be contiguous");
    if (q) {
        if (q->ndim != 4 || q->shape[0] != k->shape[0] || q->shape[1] != k->shape[1] || q->shape[3] != k->shape[3])
            sf_op_error(a, "'q' must be [B = %lld, T = %lld, heads, D = %lld]", (long long)k->shape[0],
                        (long long)k->shape[1], (long long)k->shape[3]);
        sf_op_check_last_dense(a, "q", q);
        /* q, k and v are usually heads of one packed QKV buffer */
        sf_op_check_heads_apart(a, "q", q, "k", k);
        sf_op_check_heads_apart(a, "q", q, "v", v);
        sf_op_check_alias(a, "q", q, "k_cache", kc, 0);
        sf_op_check_alias(a, "q", q, "v_cache", vc, 0);
    }
    sf_op_check_alias(a, "k_cache", kc, "v_cache", vc, 0);
    sf_op_check_alias(a, "k_cache", kc, "k", k, 0);
    sf_op_check_alias(a, "k_cache", kc, "v", v, 0);
    sf_op_check_alias(a, "v_cache", vc, "k", k, 0);
    sf_op_check_alias(a, "v_cache", vc, "v", v, 0);

    const int64_t B = k->shape[0], T = k->shape[1];
    sf_op_check_dtype(a, "positions", pos, SF_DT(SF_I32));
    sf_op_check_shape(a, "positions", pos, 1, &B);
    if (!sf_tensor_is_contiguous(pos)) sf_op_error(a, "'positions' must be contiguous");
    sf_op_cache c;
    sf_op_check_cache(a, "k_cache", kc, bt, B, "k", &c);
    /* positions are fp32 in RoPE's angle: exact below 2^24 */
    if (c.capacity > ((int64_t)1 << 24))
        sf_op_error(a, "the cache holds %lld rows a sequence: at most 2^24 = 16777216, where fp32 positions stop "
                    "being exact", (long long)c.capacity);

    sf_kv_append_args x;
    memset(&x, 0, sizeof x);
    x.dtype = k->dtype;
    x.batch = B;
    x.tokens = T;
    x.kv_heads = k->shape[2];
    x.head_dim = k->shape[3];
    x.k = k->data;
    x.v = v->data;
    for (int d = 0; d < 3; d++) {
        x.k_stride[d] = k->stride[d];
        x.v_stride[d] = v->stride[d];
    }
    if (q) {
        x.q = q->data;
        x.heads = q->shape[2];
        for (int d = 0; d < 3; d++) x.q_stride[d] = q->stride[d];
    }
    x.k_cache = kc->data;
    x.v_cache = vc->data;
    x.cache_stride[0] = kc->stride[0];
    x.cache_stride[1] = kc->stride[1];
    x.positions = (const int32_t *)pos->data;
    x.block_table = c.block_table;
    x.bt_stride = c.bt_stride;
    x.page_size = c.page_size;
    x.n_pages = c.n_pages;
    x.capacity = c.capacity;
    memcpy(x.inv_freq, r.inv_freq, sizeof x.inv_freq);
    if (B == 0 || T == 0) return;
    void *stream = sf_arg_stream(a);
    if (dev == SF_DEV_CPU) {
        const int64_t bad = sf_kv_append_ref_cpu(&x);
        if (bad) {
            const int64_t b = (bad - 1) / T, t = (bad - 1) % T, p = (int64_t)x.positions[b] + t;
            if (p < 0 || p >= c.capacity)
                sf_op_error(a, "positions[%lld] is %d: token %lld goes to row %lld, outside the cache's %lld rows a "
                            "sequence", (long long)b + 1, x.positions[b], (long long)t + 1, (long long)p,
                            (long long)c.capacity);
            sf_op_error(a, "block_table[%lld][%lld] is %d, outside the page pool (pages 0..%lld)", (long long)b + 1,
                        (long long)(p / c.page_size) + 1, c.block_table[b * c.bt_stride + p / c.page_size],
                        (long long)c.n_pages - 1);
        }
        return;
    }
#ifdef SF_HAVE_CUDA
    SF_CUDA(a->L, sf_kv_append_cuda(&x, stream));
#else
    (void)stream;
#endif
}

const sf_op sf_op_kv_append = {"kv_append", "a decode step's K (turned by RoPE) and V into a KV cache at each sequence's "
                               "position, q optionally turned in place: rope, rope and two copies in one launch",
                               kv_append_args, run_kv_append};
