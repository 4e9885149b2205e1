/* CPU reference for decode attention (kernels/decode_attention.h has the conventions): each
 * query row against the visible keys of its sequence, read through the block table when the
 * cache is paged, softmax and weighted sum in double precision. A sequence whose length or
 * pages fall outside the cache gets NaN rows, as on the GPU (the op refuses them first). */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include "sfbench.h"
#include "decode_attention.h"

/* element offset of key n of kv head hk of sequence b, or -1 when its page is outside the pool */
static int64_t key_offset(const sf_decode_attention_args *a, const int64_t *s, int b, int n, int hk)
{
    int64_t page = b, off = n;
    if (a->block_table) {
        page = a->block_table[(int64_t)b * a->bt_stride + n / a->page_size];
        off = n % a->page_size;
        if (page < 0 || page >= a->n_pages) return -1;
    }
    return page * s[0] + off * s[1] + (int64_t)hk * s[2];
}

void sf_decode_attention_ref_cpu(const sf_decode_attention_args *a)
{
    const int B = a->batch, Nq = a->n_q, H = a->n_heads, D = a->head_dim;
    const int group = H / a->n_kv_heads;
    const sf_dtype t = a->dtype;
    const int64_t rows = (int64_t)B * H * Nq;
    int longest = 1; /* the scores of one row: the longest sequence within the cache */
    for (int b = 0; b < B; b++)
        if (a->seqlens[b] > longest && a->seqlens[b] <= a->capacity) longest = a->seqlens[b];
#ifdef _OPENMP
#pragma omp parallel
#endif
    {
        double *q = malloc((size_t)D * sizeof *q), *o = malloc((size_t)D * sizeof *o);
        double *p = malloc((size_t)longest * sizeof *p);
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 4)
#endif
        for (int64_t r = 0; r < rows; r++) {
            const int b = (int)(r / ((int64_t)H * Nq)), h = (int)(r / Nq % H), i = (int)(r % Nq), hk = h / group;
            const int64_t ooff = (int64_t)b * a->o_stride[0] + (int64_t)i * a->o_stride[1] + (int64_t)h * a->o_stride[2];
            float *lse = a->lse ? &a->lse[((int64_t)b * H + h) * Nq + i] : NULL;
            const int len = a->seqlens[b];
            int ok = q && o && p && len >= 0 && len <= a->capacity;
            const int visible = !ok ? 0 : a->causal ? len - (Nq - 1 - i) : len;
            for (int n = 0; ok && n < visible; n++) ok = key_offset(a, a->k_stride, b, n, hk) >= 0;
            if (!ok) { /* out of memory or outside the cache: a visible mark, not stale data */
                for (int d = 0; d < D; d++) sf_store_from_double(a->out, t, ooff + d, NAN);
                if (lse) *lse = NAN;
                continue;
            }
            const int64_t qoff = (int64_t)b * a->q_stride[0] + (int64_t)i * a->q_stride[1] + (int64_t)h * a->q_stride[2];
            for (int d = 0; d < D; d++) q[d] = sf_load_as_double(a->q, t, qoff + d);
            double mx = -INFINITY, sum = 0.0;
            for (int n = 0; n < visible; n++) {
                const int64_t koff = key_offset(a, a->k_stride, b, n, hk);
                double s = 0.0;
                for (int d = 0; d < D; d++) s += q[d] * sf_load_as_double(a->k, t, koff + d);
                p[n] = s * a->scale;
                if (p[n] > mx) mx = p[n];
            }
            for (int d = 0; d < D; d++) o[d] = 0.0;
            for (int n = 0; n < visible; n++) {
                const int64_t voff = key_offset(a, a->v_stride, b, n, hk);
                const double e = exp(p[n] - mx);
                sum += e;
                for (int d = 0; d < D; d++) o[d] += e * sf_load_as_double(a->v, t, voff + d);
            }
            const double inv = sum > 0.0 ? 1.0 / sum : 0.0; /* no visible key: out = 0 */
            for (int d = 0; d < D; d++) sf_store_from_double(a->out, t, ooff + d, o[d] * inv);
            if (lse) *lse = sum > 0.0 ? (float)(mx + log(sum)) : -INFINITY;
        }
        free(q);
        free(o);
        free(p);
    }
}
