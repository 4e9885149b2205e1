/* CPU reference for attention: softmax(scale * Q K^T [+ causal mask]) V in double precision.
 * Any of f32/f16/bf16/f64 through sf_load_as_double / sf_store_from_double, or e4m3 q, k and vt
 * dequantized exactly (value · scale in double): the exact attention of the values the FP8
 * operands stand for, or with round_p P's values rounded to e4m3 before P·V. K and V are converted
 * to double once, then query rows are spread over OpenMP threads (when the build has OpenMP).
 * Conventions (GQA head mapping, bottom-right causal, empty rows, vt): kernels/attention.h. */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include "sfbench.h"
#include "attention.h"

/* Rows [0, n) of head h in batch b, as doubles times scale: dst[n*D + d]. */
static void load_rows(double *dst, const void *base, sf_dtype t, const int64_t *s, int b, int h, int n_rows,
                      int D, double scale)
{
    for (int n = 0; n < n_rows; n++) {
        int64_t off = (int64_t)b * s[0] + (int64_t)n * s[1] + (int64_t)h * s[2];
        for (int d = 0; d < D; d++) dst[(size_t)n * D + d] = sf_load_as_double(base, t, off + d) * scale;
    }
}

/* The values of keys [0, n) of kv head h in batch b from vt (kernels/attention.h), times scale:
 * dst[key*D + d] as load_rows writes them. */
static void load_vt(double *dst, const void *base, sf_dtype t, const int64_t *s, int b, int h, int n_keys, int D,
                    double scale)
{
    for (int64_t p = 0; p < sf_vt_columns(n_keys); p++) {
        const int key = sf_vt_key((int)p);
        if (key >= n_keys) continue;
        for (int d = 0; d < D; d++)
            dst[(size_t)key * D + d] =
                sf_load_as_double(base, t, (int64_t)b * s[0] + (int64_t)h * s[1] + (int64_t)d * s[2] + p) * scale;
    }
}

static double dot(const double *x, const double *y, int n)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0; /* four chains: the loop is latency-bound otherwise */
    int d = 0;
    for (; d + 4 <= n; d += 4) {
        s0 += x[d] * y[d];
        s1 += x[d + 1] * y[d + 1];
        s2 += x[d + 2] * y[d + 2];
        s3 += x[d + 3] * y[d + 3];
    }
    for (; d < n; d++) s0 += x[d] * y[d];
    return (s0 + s1) + (s2 + s3);
}

void sf_attention_ref_cpu(const sf_attention_args *a)
{
    const int B = a->batch, Nq = a->seq_q, Nk = a->seq_k, H = a->n_heads, D = a->head_dim;
    const int Hkv = a->n_kv_heads > 0 ? a->n_kv_heads : H;
    const int group = H / Hkv > 0 ? H / Hkv : 1;
    const sf_dtype t = a->dtype;
    const int fp8 = t == SF_E4M3, round_p = fp8 && a->round_p;
    const double scale = a->scale;
    const double qs = fp8 ? a->q_scale[0] : 1.0, ks = fp8 ? a->k_scale[0] : 1.0, vs = fp8 ? a->v_scale[0] : 1.0;
    const int scales_ok = qs * ks > 0; /* else NaN out and lse, as the kernel (kernels/attention.h) */
    const int64_t diag = (int64_t)Nk - Nq; /* key j visible to query i iff j <= i + diag */
    if (B <= 0 || Nq <= 0 || H <= 0 || D <= 0) return;

    const size_t kv_elems = (size_t)B * Hkv * (Nk > 0 ? Nk : 1) * D;
    double *kd = malloc(kv_elems * sizeof *kd), *vd = malloc(kv_elems * sizeof *vd);
    if (kd && vd) {
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
        for (int bk = 0; bk < B * Hkv; bk++) {
            size_t off = (size_t)bk * Nk * D;
            load_rows(kd + off, a->k, t, a->k_stride, bk / Hkv, bk % Hkv, Nk, D, ks);
            if (fp8)
                load_vt(vd + off, a->v, t, a->v_stride, bk / Hkv, bk % Hkv, Nk, D, vs);
            else
                load_rows(vd + off, a->v, t, a->v_stride, bk / Hkv, bk % Hkv, Nk, D, vs);
        }
    }

    const int64_t rows = (int64_t)B * H * Nq;
#ifdef _OPENMP
#pragma omp parallel
#endif
    {
        double *q = malloc((size_t)D * sizeof *q), *o = malloc((size_t)D * sizeof *o);
        double *p = malloc((size_t)(Nk > 0 ? Nk : 1) * sizeof *p);
        const int mine_ok = q && o && p && kd && vd;
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 16)
#endif
        for (int64_t r = 0; r < rows; r++) {
            const int b = (int)(r / ((int64_t)H * Nq)), h = (int)(r / Nq % H), i = (int)(r % Nq);
            const int64_t ooff = (int64_t)b * a->o_stride[0] + (int64_t)i * a->o_stride[1] + (int64_t)h * a->o_stride[2];
            if (!mine_ok || !scales_ok) { /* out of memory, or a scale <= 0: a visible mark, not stale data */
                for (int d = 0; d < D; d++) sf_store_from_double(a->out, a->out_dtype, ooff + d, NAN);
                if (!scales_ok && a->lse) a->lse[((int64_t)b * H + h) * Nq + i] = NAN;
                continue;
            }
            const double *k = kd + ((size_t)b * Hkv + h / group) * Nk * D;
            const double *v = vd + ((size_t)b * Hkv + h / group) * Nk * D;
            const int64_t qoff = (int64_t)b * a->q_stride[0] + (int64_t)i * a->q_stride[1] + (int64_t)h * a->q_stride[2];
            for (int d = 0; d < D; d++) q[d] = sf_load_as_double(a->q, t, qoff + d) * qs;
            int64_t last = (int64_t)Nk - 1; /* last visible key */
            if (a->causal && i + diag < last) last = i + diag;
            double mx = -INFINITY, sum = 0.0;
            for (int64_t j = 0; j <= last; j++) {
                p[j] = dot(q, k + (size_t)j * D, D) * scale;
                if (p[j] > mx) mx = p[j];
            }
            for (int d = 0; d < D; d++) o[d] = 0.0;
            for (int64_t j = 0; j <= last; j++) {
                const double e = exp(p[j] - mx), *vr = v + (size_t)j * D;
                const double pe = round_p ? sf_fp8_to_double(sf_double_to_fp8(e, SF_E4M3), SF_E4M3) : e;
                sum += e;
                for (int d = 0; d < D; d++) o[d] += pe * vr[d];
            }
            const double inv = sum > 0.0 ? 1.0 / sum : 0.0; /* no visible key: out = 0 */
            for (int d = 0; d < D; d++) sf_store_from_double(a->out, a->out_dtype, ooff + d, o[d] * inv);
            if (a->lse) a->lse[((int64_t)b * H + h) * Nq + i] = sum > 0.0 ? (float)(mx + log(sum)) : -INFINITY;
        }
        free(q);
        free(o);
        free(p);
    }
    free(kd);
    free(vd);
}
