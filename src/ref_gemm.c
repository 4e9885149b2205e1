/* The CPU reference GEMM: double accumulation, the same epilogue order as cuBLASLt (scale, add
 * beta·C, add bias, then the activation). Operands are widened to double once (FP8 ones times
 * their scales), op(B) stored transposed, so the inner loop is two contiguous streams. */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include "gemm.h"

static double gelu_tanh(double x) { return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }

/* rows × cols of op(X) as doubles, row-major, each row times its scale (an FP8 operand's:
 * scale[r] per row, else scale[0]; none for other dtypes); transposed selects X stored as
 * cols × rows */
static void widen(double *dst, const char *src, sf_dtype t, int64_t rows, int64_t cols, int64_t ld, int transposed,
                  const float *scale, int scale_rows)
{
    for (int64_t r = 0; r < rows; r++) {
        const double s = scale ? scale[scale_rows ? r : 0] : 1.0;
        for (int64_t c = 0; c < cols; c++)
            dst[r * cols + c] = sf_load_as_double(src, t, transposed ? c * ld + r : r * ld + c) * s;
    }
}

int sf_gemm_ref_cpu(const sf_gemm_desc *d)
{
    double *a = malloc(sizeof(double) * (size_t)(d->m * d->k)), *bt = malloc(sizeof(double) * (size_t)(d->n * d->k));
    if (!a || !bt) {
        free(a);
        free(bt);
        return -1;
    }
    for (int64_t batch = 0; batch < d->batch; batch++) {
        const char *pa = (const char *)d->a + batch * d->stride_a * (int64_t)sf_dtype_size(d->a_dtype);
        const char *pb = (const char *)d->b + batch * d->stride_b * (int64_t)sf_dtype_size(d->b_dtype);
        char *c = (char *)d->c + batch * d->stride_c * (int64_t)sf_dtype_size(d->c_dtype);
        char *out = d->d ? (char *)d->d + batch * d->stride_d * (int64_t)sf_dtype_size(d->c_dtype) : c;
        int64_t ldo = d->d ? d->ldd : d->ldc;
        widen(a, pa, d->a_dtype, d->m, d->k, d->lda, d->trans_a, d->a_scale, d->a_scale_rows);
        widen(bt, pb, d->b_dtype, d->n, d->k, d->ldb, !d->trans_b, d->b_scale, d->b_scale_rows); /* op(B)ᵀ: n × k */
#pragma omp parallel for schedule(static) if (d->m * d->n * d->k > (1 << 18))
        for (int64_t i = 0; i < d->m; i++)
            for (int64_t j = 0; j < d->n; j++) {
                const double *x = a + i * d->k, *y = bt + j * d->k;
                double acc = 0;
                for (int64_t p = 0; p < d->k; p++) acc += x[p] * y[p];
                double v = d->alpha * acc;
                if (d->beta != 0) v += d->beta * sf_load_as_double(c, d->c_dtype, i * d->ldc + j);
                if (d->bias) v += sf_load_as_double(d->bias, d->c_dtype, j);
                if (d->epilogue == SF_EPI_RELU) v = v > 0 ? v : 0;
                else if (d->epilogue == SF_EPI_GELU_TANH) v = gelu_tanh(v);
                sf_store_from_double(out, d->c_dtype, i * ldo + j, v);
            }
    }
    free(a);
    free(bt);
    return 0;
}
