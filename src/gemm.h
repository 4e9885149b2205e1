/* One description of a GEMM for both backends, in row-major terms:
 *   D[b] = act(alpha · op(A[b]) · op(B[b]) + beta · C[b] + bias),  D = C unless d is set
 * with op(A) m×k, op(B) k×n, C m×n; ld* are row strides (elements), stride_* batch strides
 * (0 broadcasts one matrix over the batch), bias has n elements (one per column of C). */
#ifndef SF_GEMM_H
#define SF_GEMM_H
#include <string.h>
#include "sfbench.h"

typedef struct sf_gemm_desc {
    int64_t m, n, k, batch;
    const void *a, *b, *bias;
    void *c;
    void *d;                      /* output when not C (then C is only read); same shape and dtype */
    sf_dtype a_dtype, b_dtype, c_dtype;
    int trans_a, trans_b;
    int64_t lda, ldb, ldc, ldd, stride_a, stride_b, stride_c, stride_d;
    double alpha, beta;
    sf_epilogue epilogue;         /* NONE, RELU or GELU_TANH (sf_types.h) */
    /* e4m3/e5m2 operands' f32 dequantization scales: op(A)'s row i times a_scale[i] (per row,
     * a_scale_rows) or a_scale[0], op(B)'s column j times b_scale[j] or b_scale[0]; NULL for
     * 16- and 32-bit operands */
    const float *a_scale, *b_scale;
    int a_scale_rows, b_scale_rows;
    int fast_accum;               /* FP8 on cuBLASLt: accumulate without promoting partial sums (faster, less exact) */
    int tf32;                     /* allow TF32 tensor cores for f32 inputs */
    int autotune;                 /* time cuBLASLt's candidates once per shape, keep the fastest */
} sf_gemm_desc;

/* A Linear layer's product, every matrix dense: out[T, N] = epi(x[T, K]·w[N, K]ᵀ (+ bias))
 * (+ residual when given: beta 1), alpha 1, cuBLASLt autotuned. */
static inline void sf_linear_desc(sf_gemm_desc *d, const void *x, const void *w, const void *bias, const void *residual,
                                   void *out, int64_t T, int64_t N, int64_t K, sf_dtype dt, sf_epilogue epi)
{
    memset(d, 0, sizeof *d);
    d->epilogue = epi;
    d->m = T; d->n = N; d->k = K; d->batch = 1;
    d->a = x; d->b = w; d->bias = bias;
    d->c = residual ? (void *)residual : out;
    d->d = out;
    d->ldd = N;
    d->beta = residual ? 1.0 : 0.0;
    d->a_dtype = d->b_dtype = d->c_dtype = dt;
    d->trans_b = 1;
    d->lda = K; d->ldb = K; d->ldc = N;
    d->alpha = 1.0;
    d->autotune = 1;
}

int sf_gemm_ref_cpu(const sf_gemm_desc *d);      /* ref_gemm.c: double accumulation; -1 when out of memory */
#ifdef SF_HAVE_CUDA
void sf_gemm_cuda(lua_State *L, const sf_gemm_desc *d, void *stream);   /* blas.c: cuBLASLt */
void sf_linear_cuda(lua_State *L, const void *x, const void *w, const void *bias, const void *residual, void *out,
                    int64_t T, int64_t N, int64_t K, sf_dtype dt, sf_epilogue epi, void *stream); /* blas.c */
void *sf_cublas_handle(lua_State *L);                                   /* a cublasHandle_t */
/* The GEMV of kernels/gemv.h (gemv.c): prepare sets g->splits (0: chosen) to the count the
 * launch runs with and returns the workspace bytes that launch then needs. */
struct sf_gemv_args;
size_t sf_gemv_prepare(lua_State *L, struct sf_gemv_args *g);
void sf_gemv_launch(lua_State *L, const struct sf_gemv_args *g, void *workspace, void *stream);
const char *sf_cublas_version(void);
/* at exit: the plans, the workspace and the handles (compute-sanitizer's leak check counts them) */
void sf_blas_release(void);
#endif
#endif
