/* CPU references of rmsnorm/add_rmsnorm, rope and add (kernels/norm_rope.h has the exact
 * definitions): elements widened to double, double math, each output rounded once to its
 * dtype; an e4m3 output (out_scale) is rounded to f32, divided by its row's scale in f32, then
 * rounded to e4m3, as the quantize op does. They also serve as the CPU backend's
 * implementation of these ops. */
#include "config.h"
#include <math.h>

#include "sfbench.h"
#include "norm_rope.h"

/* v rounded to dtype t and read back: what a stored element of t holds */
static double round_to(sf_dtype t, double v)
{
    double tmp = 0; /* room for any element type */
    sf_store_from_double(&tmp, t, 0, v);
    return sf_load_as_double(&tmp, t, 0);
}

void sf_rmsnorm_ref_cpu(const sf_rmsnorm_args *a)
{
    const sf_dtype t = a->dtype;
    const int64_t H = a->hidden;
    for (int64_t r = 0; r < a->rows; r++) {
        const int64_t xo = r * a->x_stride, ro = r * a->residual_stride, oo = r * a->out_stride;
        double ss = 0;
        for (int64_t j = 0; j < H; j++) {
            double s = sf_load_as_double(a->x, t, xo + j);
            if (a->residual) {
                /* the sum as stored: the value the next residual add reads and the one normalised */
                s = round_to(t, s + sf_load_as_double(a->residual, t, ro + j));
                sf_store_from_double(a->residual, t, ro + j, s);
            }
            ss += s * s;
        }
        const double inv_rms = 1.0 / sqrt(ss / (double)H + (double)a->eps);
        double amax = 0;
        for (int64_t j = 0; j < H && a->out_scale; j++) {
            const double s = a->residual ? sf_load_as_double(a->residual, t, ro + j) : sf_load_as_double(a->x, t, xo + j);
            const double v = fabs(s * inv_rms * sf_load_as_double(a->weight, t, j));
            if (v > amax) amax = v; /* NaN compares false: left out, as quantize leaves it */
        }
        const float scale = amax > 0 ? (float)(amax / sf_fp8_max(SF_E4M3)) : 1.0f;
        if (a->out_scale) a->out_scale[r] = scale;
        for (int64_t j = 0; j < H; j++) {
            const double s = a->residual ? sf_load_as_double(a->residual, t, ro + j) : sf_load_as_double(a->x, t, xo + j);
            const double v = s * inv_rms * sf_load_as_double(a->weight, t, j);
            if (a->out_scale) sf_store_from_double(a->out, SF_E4M3, oo + j, (float)v / scale);
            else sf_store_from_double(a->out, t, oo + j, v);
        }
    }
}

void sf_rope_inv_freq(float *inv_freq, int64_t head_dim, double theta)
{
    const float base = (float)theta, dim = (float)head_dim;
    for (int64_t i = 0; i < head_dim / 2; i++) {
        const float exponent = (float)(2 * i) / dim;
        inv_freq[i] = 1.0f / powf(base, exponent);
    }
}

void sf_rope_ref_cpu(const sf_rope_args *a)
{
    const sf_dtype t = a->dtype;
    const int64_t half = a->head_dim / 2;
    for (int64_t b = 0; b < a->batch; b++) {
        const int64_t first = a->positions ? a->positions[b] : a->pos_offset;
        for (int64_t n = 0; n < a->seq; n++) {
            const float pos = (float)(first + n);
            for (int64_t i = 0; i < half; i++) {
                /* the fp32 angle the GPU forms (one rounded product), then cos/sin in double */
                const float angle = pos * a->inv_freq[i];
                const double c = cos((double)angle), s = sin((double)angle);
                for (int64_t h = 0; h < a->heads; h++) {
                    const int64_t o = b * a->stride[0] + n * a->stride[1] + h * a->stride[2] + i;
                    const double x1 = sf_load_as_double(a->x, t, o), x2 = sf_load_as_double(a->x, t, o + half);
                    sf_store_from_double(a->x, t, o, x1 * c - x2 * s);
                    sf_store_from_double(a->x, t, o + half, x2 * c + x1 * s);
                }
            }
        }
    }
}

void sf_add_ref_cpu(const sf_add_args *a)
{
    const sf_dtype t = a->dtype;
    int64_t numel = 1, idx[SF_MAX_DIMS] = {0};
    for (int d = 0; d < a->ndim; d++) numel *= a->shape[d];
    for (int64_t k = 0; k < numel; k++) {
        int64_t oa = 0, ob = 0, oo = 0;
        for (int d = 0; d < a->ndim; d++) {
            oa += idx[d] * a->a_stride[d];
            ob += idx[d] * a->b_stride[d];
            oo += idx[d] * a->out_stride[d];
        }
        sf_store_from_double(a->out, t, oo, sf_load_as_double(a->a, t, oa) + sf_load_as_double(a->b, t, ob));
        for (int d = a->ndim - 1; d >= 0 && ++idx[d] == a->shape[d]; d--) idx[d] = 0; /* odometer */
    }
}
