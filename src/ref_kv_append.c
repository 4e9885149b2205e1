/* CPU reference of the fused KV append (kernels/kv_append.h has the definition), also the CPU
 * backend's implementation: every row is checked first, then K's and V's rows are copied into
 * their cache rows and K's turned there by the rope reference (sf_rope_ref_cpu, one run of rows
 * inside one page at a time), and q by the same reference at the sequences' positions. */
#include "config.h"
#include <string.h>

#include "sfbench.h"
#include "kv_append.h"

/* the pool page (contiguous: the sequence) holding row p of sequence b, or -1 outside */
static int64_t page_of(const sf_kv_append_args *a, int64_t b, int64_t p)
{
    if (p < 0 || p >= a->capacity) return -1;
    if (!a->block_table) return b;
    const int64_t page = a->block_table[b * a->bt_stride + p / a->page_size];
    return page >= 0 && page < a->n_pages ? page : -1;
}

int64_t sf_kv_append_ref_cpu(const sf_kv_append_args *a)
{
    const int64_t T = a->tokens, Hkv = a->kv_heads, D = a->head_dim;
    for (int64_t b = 0; b < a->batch; b++)
        for (int64_t t = 0; t < T; t++)
            if (page_of(a, b, (int64_t)a->positions[b] + t) < 0) return 1 + b * T + t;
    const size_t es = sf_dtype_size(a->dtype), row_bytes = (size_t)D * es;
    for (int64_t b = 0; b < a->batch; b++) {
        for (int64_t t = 0; t < T;) {
            const int64_t p = (int64_t)a->positions[b] + t, page = page_of(a, b, p), off = p % a->page_size;
            const int64_t run = T - t < a->page_size - off ? T - t : a->page_size - off; /* rows in this page */
            const int64_t row0 = page * a->cache_stride[0] + off * a->cache_stride[1];
            for (int64_t r = 0; r < run; r++)
                for (int64_t h = 0; h < Hkv; h++) {
                    const int64_t c = (row0 + r * a->cache_stride[1] + h * D) * (int64_t)es;
                    const int64_t src_k = b * a->k_stride[0] + (t + r) * a->k_stride[1] + h * a->k_stride[2];
                    const int64_t src_v = b * a->v_stride[0] + (t + r) * a->v_stride[1] + h * a->v_stride[2];
                    memcpy((char *)a->k_cache + c, (const char *)a->k + src_k * (int64_t)es, row_bytes);
                    memcpy((char *)a->v_cache + c, (const char *)a->v + src_v * (int64_t)es, row_bytes);
                }
            sf_rope_args k = {0};
            k.dtype = a->dtype;
            k.batch = 1;
            k.seq = run;
            k.heads = Hkv;
            k.head_dim = D;
            k.x = (char *)a->k_cache + row0 * (int64_t)es;
            k.stride[0] = 0;
            k.stride[1] = a->cache_stride[1];
            k.stride[2] = D;
            k.pos_offset = p;
            memcpy(k.inv_freq, a->inv_freq, sizeof k.inv_freq);
            sf_rope_ref_cpu(&k);
            t += run;
        }
    }
    if (a->q) {
        sf_rope_args q = {0};
        q.dtype = a->dtype;
        q.batch = a->batch;
        q.seq = T;
        q.heads = a->heads;
        q.head_dim = D;
        q.x = a->q;
        memcpy(q.stride, a->q_stride, sizeof q.stride);
        q.positions = a->positions;
        memcpy(q.inv_freq, a->inv_freq, sizeof q.inv_freq);
        sf_rope_ref_cpu(&q);
    }
    return 0;
}
