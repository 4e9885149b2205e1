/* CPU reference of the FFN op: y = act(x·W1ᵀ + b1 [, x·W3ᵀ + b3])·W2ᵀ + b2, double accumulation.
 * Inputs are widened once to double (FP8 ones times their row's scale), so the inner loops are
 * plain contiguous dot products. */
#include "config.h"
#include <math.h>
#include <stdlib.h>

#include "sfbench.h"
#include "ffn.h"
#include "quantize.h"

/* rows × cols of type t, each row times scale[row] when scale is given */
static double *widen(const void *src, sf_dtype t, int64_t rows, int64_t cols, const float *scale)
{
    double *dst = malloc((size_t)(rows * cols) * sizeof *dst);
    if (!dst) return NULL;
    for (int64_t i = 0; i < rows * cols; i++) dst[i] = sf_load_as_double(src, t, i) * (scale ? scale[i / cols] : 1.0);
    return dst;
}

/* Four partial sums: independent chains the compiler can pipeline. */
static double dot(const double *a, const double *b, int64_t n)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static double bias_at(const void *b, sf_dtype t, int64_t i) { return b ? sf_load_as_double(b, t, i) : 0.0; }

static double round_to(sf_dtype t, double v)
{
    double tmp = 0; /* room for any element type */
    sf_store_from_double(&tmp, t, 0, v);
    return sf_load_as_double(&tmp, t, 0);
}

static double activation(const sf_ffn_ref_args *a, double g, double u)
{
    if (a->act == SF_EPI_SWIGLU) return g / (1.0 + exp(-g)) * u;
    if (a->act == SF_EPI_GELU_ERF) return 0.5 * g * (1.0 + erf(g * 0.7071067811865476));
    return 0.5 * g * (1.0 + tanh(0.7978845608028654 * (g + 0.044715 * g * g * g)));
}

void sf_ffn_ref_cpu(const sf_ffn_ref_args *a)
{
    const sf_dtype t = a->dtype;
    const int fp8 = a->x_scale != NULL;
    const sf_dtype ot = fp8 ? a->out_dtype : t; /* of h and out */
    const int64_t T = a->T, H = a->H, I = a->I;
    const int swiglu = a->act == SF_EPI_SWIGLU;
    const int packed = swiglu && !a->w1; /* gate and up rows interleaved in w13 */
    double *x = widen(a->x, t, T, H, a->x_scale), *w2 = widen(a->w2, t, H, I, a->w2_scale);
    double *w1 = packed ? widen(a->w13, t, 2 * I, H, a->w13_scale) : widen(a->w1, t, I, H, a->w1_scale);
    double *w3 = swiglu && !packed ? widen(a->w3, t, I, H, a->w3_scale) : NULL;
    double *h = malloc((size_t)(T * I) * sizeof *h);
    /* FP8: h's e4m3 copy and its scale per token (a fixed or calibrated one: per tensor) */
    const int fixed = fp8 && a->h_scale && !a->calibrate;
    uint8_t *h8 = fp8 ? malloc((size_t)(T * I)) : NULL;
    float *h_scale = fp8 ? malloc((size_t)T * sizeof *h_scale) : NULL;
    if (!x || !w1 || !w2 || (swiglu && !packed && !w3) || !h || (fp8 && (!h8 || !h_scale))) {
        for (int64_t i = 0; i < T * H; i++) sf_store_from_double(a->out, ot, i, NAN);
        goto done;
    }

    /* h is rounded to the input dtype (FP8: the output's), as the GPU writes it (fused: once, from
     * the fp32 activation of the fp32 accumulators), so the second GEMM sees the same kind of
     * input; an FP8 h of a fixed scale goes to e4m3 unrounded, as the GPU's epilogue writes it. */
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < T; r++)
        for (int64_t i = 0; i < I; i++) {
            /* packed: gate row i is w13's row 16(i / 8) + i % 8, its up row the 8th after */
            const int64_t gi = packed ? i / SF_SWIGLU_INTERLEAVE * 2 * SF_SWIGLU_INTERLEAVE + i % SF_SWIGLU_INTERLEAVE : i;
            const double *up = packed ? w1 + (gi + SF_SWIGLU_INTERLEAVE) * H : w3 ? w3 + i * H : NULL;
            double g = dot(x + r * H, w1 + gi * H, H) + bias_at(a->b1, t, i);
            double u = swiglu ? dot(x + r * H, up, H) + bias_at(a->b3, t, i) : 0.0;
            const double v = activation(a, g, u);
            h[r * I + i] = fixed ? v : round_to(ot, v);
        }
    if (fp8) { /* h to e4m3 with a scale per token (per tensor with h_scale), and back */
        const sf_quantize_args q = {SF_F64, SF_E4M3, h, h8, a->h_scale ? a->h_scale : h_scale, T, I, I, I,
                                    !a->h_scale, fixed};
        sf_quantize_ref_cpu(&q);
        for (int64_t i = 0; i < T * I; i++)
            h[i] = sf_load_as_double(h8, SF_E4M3, i) * (a->h_scale ? a->h_scale[0] : h_scale[i / I]);
    }

#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < T; r++)
        for (int64_t j = 0; j < H; j++)
            sf_store_from_double(a->out, ot, r * H + j, dot(h + r * I, w2 + j * I, I) + bias_at(a->b2, t, j));

done:
    free(x);
    free(w1);
    free(w2);
    free(w3);
    free(h);
    free(h8);
    free(h_scale);
}
