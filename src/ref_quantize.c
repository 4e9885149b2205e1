/* CPU references of the FP8 quantization (kernels/quantize.h): amax in double; then, as the GPU
 * does, each element divided by (or multiplied with) the f32 scale in f32 and rounded once to
 * the output dtype. */
#include "config.h"
#include <math.h>
#include "sfbench.h"
#include "quantize.h"

void sf_quantize_ref_cpu(const sf_quantize_args *a)
{
    const int64_t groups = a->per_row ? a->rows : 1, per = a->per_row ? 1 : a->rows;
    for (int64_t g = 0; g < groups; g++) {
        double amax = 0;
        for (int64_t r = g * per; r < (g + 1) * per && !a->fixed_scale; r++)
            for (int64_t c = 0; c < a->cols; c++) {
                const double v = fabs(sf_load_as_double(a->x, a->x_dtype, r * a->ld_x + c));
                if (v > amax) amax = v; /* NaN compares false: left out */
            }
        if (!a->fixed_scale) a->scale[g] = amax > 0 ? (float)(amax / sf_fp8_max(a->out_dtype)) : 1.0f;
        const float scale = a->scale[g];
        for (int64_t r = g * per; r < (g + 1) * per; r++)
            for (int64_t c = 0; c < a->cols; c++)
                sf_store_from_double(a->out, a->out_dtype, r * a->ld_out + c,
                                     (float)sf_load_as_double(a->x, a->x_dtype, r * a->ld_x + c) / scale);
    }
}

void sf_dequantize_ref_cpu(const sf_quantize_args *a)
{
    for (int64_t r = 0; r < a->rows; r++) {
        const float scale = a->scale[a->per_row ? r : 0];
        for (int64_t c = 0; c < a->cols; c++)
            sf_store_from_double(a->out, a->out_dtype, r * a->ld_out + c,
                                 (float)sf_load_as_double(a->x, a->x_dtype, r * a->ld_x + c) * scale);
    }
}
