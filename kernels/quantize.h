/* FP8 quantization (plain C; no CUDA headers): a matrix of `rows` rows of `cols` elements, every
 * row dense and `ld` elements after the one before, to e4m3 or e5m2 with a per-tensor or
 * per-row scale, and back.
 *
 *   sf_quantize_cuda / sf_dequantize_cuda   kernels/quantize.cu
 *   sf_quantize_ref_cpu / sf_dequantize_ref_cpu   src/ref_quantize.c
 *
 * Conventions (torch._scaled_mm's): a scale is the dequantization factor, x ≈ q · scale, in f32;
 * quantize sets it from the largest magnitude, scale = amax / the format's largest finite value
 * (448 for e4m3, 57344 for e5m2), 1 where amax is 0, so that q = x / scale fills the format's
 * range; q is x / scale rounded to nearest even and saturated (sf_types.h); NaN elements give
 * NaN and are left out of amax. Per tensor: one scale; per row: one a row. With fixed_scale the
 * scale is read instead (a scale fixed ahead: static quantization), and no amax is taken.
 */
#ifndef SF_QUANTIZE_H
#define SF_QUANTIZE_H
#include <stdint.h>
#include "sf_types.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct sf_quantize_args {
    sf_dtype x_dtype;       /* quantize: the input's (f32, f16, bf16; f64 on the CPU); dequantize: e4m3 or e5m2 */
    sf_dtype out_dtype;     /* quantize: e4m3 or e5m2; dequantize: f32, f16, bf16 (f64 on the CPU) */
    const void *x;
    void *out;
    float *scale;           /* quantize: written (read with fixed_scale); dequantize: read. [1] or [rows] */
    int64_t rows, cols, ld_x, ld_out;
    int per_row;
    int fixed_scale;        /* quantize: scale is read, not written */
} sf_quantize_args;

/* rows and cols at least 1 (tensors have no empty dimension); `workspace`: 4 bytes of device
 * memory (per tensor, scale not fixed: the amax the second kernel reads). Asynchronous; a
 * cudaError_t. */
int sf_quantize_cuda(const sf_quantize_args *a, void *workspace, void *stream);
int sf_dequantize_cuda(const sf_quantize_args *a, void *stream);

void sf_quantize_ref_cpu(const sf_quantize_args *a);
void sf_dequantize_ref_cpu(const sf_quantize_args *a);

#ifdef __cplusplus
}
#endif
#endif
