/* The gemm op: row-major C = act(alpha·op(A)·op(B) + beta·C + bias), 2-D or batched 3-D,
 * through cuBLASLt or, for the Linear-layer subset, our Hopper GEMM or (m <= 64, a decode step's
 * projections) our GEMV. Returns the implementation that ran and its k splits (1 but for gemv). */
#include "config.h"
#include <stdint.h>
#include "ops.h"
#include "gemm.h"
#include "gemv.h"
#ifdef SF_HAVE_CUDA
#include "autotune.h"
#endif
#ifdef SF_HAVE_HOPPER
#include "cuda_check.h"
#include "gemm_hopper.h"
#endif

static const sf_arg_spec gemm_args[] = {
    {"a", SF_ARG_TENSOR, 1, NULL, "[m, k] or [batch, m, k] ([k, m] when transa)"},
    {"b", SF_ARG_TENSOR, 1, NULL, "[k, n] or [batch, k, n] ([n, k] when transb)"},
    {"c", SF_ARG_TENSOR, 1, NULL, "[m, n] or [batch, m, n]: written unless 'out' is given, read when beta is not 0"},
    {"out", SF_ARG_TENSOR, 0, NULL, "output like c, when the result must not overwrite c (out = ... + beta·c)"},
    {"transa", SF_ARG_BOOL, 0, "false", "a holds op(A) transposed"},
    {"transb", SF_ARG_BOOL, 0, "false", "b holds op(B) transposed (a Linear weight [n, k])"},
    {"alpha", SF_ARG_NUMBER, 0, "1", "scale of the product"},
    {"beta", SF_ARG_NUMBER, 0, "0", "scale of c added to the product"},
    {"bias", SF_ARG_TENSOR, 0, NULL, "[n], dtype of c, added to every row"},
    {"a_scale", SF_ARG_TENSOR, 0, NULL, "f32 [1] or [m]: the dequantization scale of an e4m3/e5m2 'a' (of op(a)'s rows; "
                                        "cuBLASLt takes [m] with b_scale [n] in a 2-D product, hopper with either)"},
    {"b_scale", SF_ARG_TENSOR, 0, NULL, "f32 [1] or [n]: the dequantization scale of an e4m3/e5m2 'b' (of op(b)'s columns; "
                                        "cuBLASLt takes [n] with a_scale [m] in a 2-D product, hopper with either)"},
    {"fast_accum", SF_ARG_BOOL, 0, "false",
     "e4m3/e5m2 inputs on the GPU: cuBLASLt's fast FP8 accumulation (partial sums not promoted to full f32 "
     "as they grow), faster and less exact; impl hopper accumulates so and needs it; the CPU's reference is "
     "exact either way"},
    {"epilogue", SF_ARG_STRING, 0, "none", "none, relu or gelu (tanh form), applied last"},
    {"tf32", SF_ARG_BOOL, 0, "false", "f32 inputs may use TF32 tensor cores"},
    {"autotune", SF_ARG_BOOL, 0, "true", "time cuBLASLt's top candidates once per shape (beta 0) and keep the fastest"},
    {"impl", SF_ARG_STRING, 0, "cublaslt",
     "cublaslt; hopper (our wgmma GEMM, cc 9.0: 2-D f16/bf16, or e4m3 into f16/bf16 with fast_accum, transb, "
     "alpha 1, beta 0 or 1, no epilogue, n and k multiples of 64); gemv (our split-K GEMV for decode: 2-D f16/bf16, transb, m <= 64); "
     "fastest (whichever of those that apply ran faster on the first call of the shape: gemv against "
     "the better of hopper and cublaslt where m <= 64)"},
    {"splits", SF_ARG_INTEGER, 0, "0", "impl gemv: k splits over CTAs (0 chooses them to fill the GPU)"},
    {"stream", SF_ARG_STREAM, 0, NULL, "stream to run on (default stream)"},
    {NULL, 0, 0, NULL, NULL}};

/* rows, cols of the stored matrix, its row stride and batch stride; checks the last dim is dense */
static void matrix_dims(sf_op_args *a, const char *name, const sf_tensor *t, int64_t *rows, int64_t *cols,
                        int64_t *ld, int64_t *bstride, int64_t *batch)
{
    if (t->ndim != 2 && t->ndim != 3) sf_op_error(a, "'%s' must be 2-D or 3-D, got %d dimensions", name, t->ndim);
    int r = t->ndim - 2;
    *rows = t->shape[r];
    *cols = t->shape[r + 1];
    sf_op_check_last_dense(a, name, t);
    *ld = *rows > 1 ? t->stride[r] : *cols;
    if (*ld < *cols) sf_op_error(a, "'%s' has a row stride %lld smaller than its %lld columns", name, (long long)*ld, (long long)*cols);
    *batch = t->ndim == 3 ? t->shape[0] : 1;
    *bstride = t->ndim == 3 ? t->stride[0] : 0;
}

#ifdef SF_HAVE_HOPPER
/* Why our Hopper GEMM cannot take this call, or NULL. */
static const char *hopper_unfit(const sf_gemm_desc *d, const sf_tensor *A, const sf_tensor *B, const sf_tensor *C)
{
    if (!sf_hopper_kernels()) return "needs a Hopper GPU (cc 9.0)";
    const int fp8 = d->a_dtype == SF_E4M3;
    if (fp8 ? d->b_dtype != SF_E4M3 || (d->c_dtype != SF_F16 && d->c_dtype != SF_BF16)
            : (d->a_dtype != SF_F16 && d->a_dtype != SF_BF16) || d->c_dtype != d->a_dtype)
        return "takes f16 or bf16 a, b and c of one dtype, or e4m3 a and b with an f16 or bf16 c";
    if (A->ndim != 2 || B->ndim != 2 || C->ndim != 2) return "takes 2-D a, b and c";
    if (d->trans_a || !d->trans_b) return "takes a [m, k] and b [n, k] (transb = true)";
    if (d->alpha != 1.0 || (d->beta != 0.0 && d->beta != 1.0)) return "takes alpha 1 and beta 0 or 1";
    if (d->epilogue != SF_EPI_NONE) return "has no relu or gelu epilogue";
    if (d->n % 64 || d->k % 64) return "needs n and k that are multiples of 64";
    if (d->lda % (fp8 ? 16 : 8) || d->ldb % (fp8 ? 16 : 8) || (uintptr_t)d->a % 16 || (uintptr_t)d->b % 16)
        return "needs 16-byte aligned rows of a and b";
    if (d->ldc % 2 || (d->d && d->ldd % 2) || (d->bias && (uintptr_t)d->bias % 4)) return "needs 4-byte aligned rows of c";
    if (fp8) {
        const void *o = d->d ? d->d : d->c;
        if ((uintptr_t)o % 16 || (d->d ? d->ldd : d->ldc) % 8)
            return "with e4m3 inputs needs 16-byte aligned rows of its output, c or out (its TMA-stored epilogue)";
        if ((uintptr_t)d->a_scale % 4 || (uintptr_t)d->b_scale % 4) return "needs 4-byte aligned scales";
        /* wgmma's accumulators hold the partial sums over all of k, never promoted */
        if (!d->fast_accum) return "with e4m3 inputs accumulates as cuBLASLt's fast accumulation does: pass fast_accum = true";
    }
    return NULL;
}

#endif

#ifdef SF_HAVE_CUDA
/* Why cuBLASLt's FP8 GEMM cannot take this call, or NULL: on Ada and Hopper its kernels take one
 * pair of transposes (cuBLASLt's "TN", here a [m, k] and b [n, k]), per-row scales (its
 * outer-vector scaling) for both operands or for neither and then only unbatched, a bias only
 * beside an f16 or bf16 output, 16-byte aligned operands whose k and n are multiples of 16, and no
 * e5m2·e5m2 product. */
static const char *fp8_unfit(const sf_gemm_desc *d)
{
    const int64_t cs = (int64_t)sf_dtype_size(d->c_dtype);
    if (d->a_dtype == SF_E5M2 && d->b_dtype == SF_E5M2)
        return "takes e4m3·e4m3, e4m3·e5m2 or e5m2·e4m3 'a' and 'b', not e5m2·e5m2";
    if (d->trans_a || !d->trans_b) return "takes a [m, k] and b [n, k] alone (transb = true, transa = false: the TN layout)";
    if (d->a_scale_rows != d->b_scale_rows)
        return "takes per-row scales for both 'a' and 'b' (a_scale [m], b_scale [n]: its outer-vector scaling) or for neither";
    if (d->a_scale_rows && d->batch > 1) return "takes per-row scales only for a 2-D product: its outer-vector scaling has no batches";
    if (d->bias && d->c_dtype == SF_F32)
        return "takes a bias only with an f16 or bf16 'c' (beside an f32 output its bias is bf16, and 'bias' has c's dtype)";
    if (d->k % 16 || d->n % 16) return "needs k and n that are multiples of 16";
    if (d->lda % 16 || d->ldb % 16 || d->stride_a % 16 || d->stride_b % 16 || (uintptr_t)d->a % 16 || (uintptr_t)d->b % 16)
        return "needs 16-byte aligned rows and batches of 'a' and 'b'";
    if (d->ldc * cs % 16 || d->stride_c * cs % 16 || (uintptr_t)d->c % 16 ||
        (d->d && (d->ldd * cs % 16 || d->stride_d * cs % 16 || (uintptr_t)d->d % 16)))
        return "needs 16-byte aligned rows and batches of 'c' and 'out'";
    return NULL;
}

/* one call's candidates; `ran` names the last one run (the chosen one, after any trials) */
typedef struct gemm_call {
    lua_State *L;
    const sf_gemm_desc *d;
    void *stream;
    const char *ran;
    const sf_gemv_args *gv;
    void *gemv_ws;
    int in_place;             /* beta != 0 and the result written over c: a trial would add c twice */
    int hopper_fits;
    int lt_fits;              /* cuBLASLt takes the call (all but some FP8 ones) */
} gemm_call;

static void gemm_cublaslt(void *ctx)
{
    gemm_call *g = (gemm_call *)ctx;
    sf_gemm_cuda(g->L, g->d, g->stream);
    g->ran = "cublaslt";
}

static void gemm_gemv(void *ctx)
{
    gemm_call *g = (gemm_call *)ctx;
    sf_gemv_launch(g->L, g->gv, g->gemv_ws, g->stream);
    g->ran = "gemv";
}

/* Why our GEMV cannot take this call, or NULL; fills *gv when it can. */
static const char *gemv_unfit(const sf_gemm_desc *d, const sf_tensor *A, const sf_tensor *B, const sf_tensor *C,
                              sf_gemv_args *gv)
{
    if (A->ndim != 2 || B->ndim != 2 || C->ndim != 2) return "takes 2-D a, b and c";
    if (d->trans_a || !d->trans_b) return "takes a [m, k] and b [n, k] (transb = true)";
    if (d->c_dtype != d->a_dtype) return "takes a, b and c of one dtype";
    *gv = (sf_gemv_args){.dtype = d->a_dtype, .m = d->m, .n = d->n, .k = d->k, .x = d->a, .w = d->b, .c = d->c,
                         .bias = d->bias, .out = d->d ? d->d : d->c, .ldx = d->lda, .ldw = d->ldb, .ldc = d->ldc,
                         .ldo = d->d ? d->ldd : d->ldc, .alpha = (float)d->alpha, .beta = (float)d->beta,
                         .epilogue = d->epilogue};
    return sf_gemv_unfit(gv);
}
#endif

#ifdef SF_HAVE_HOPPER
/* out = a·bᵀ (+ bias) (+ c when beta is 1: the ADD epilogue, c read as the residual) */
static void gemm_hopper(void *ctx)
{
    gemm_call *g = (gemm_call *)ctx;
    const sf_gemm_desc *d = g->d;
    sf_gemm_epi_args e = sf_gemm_epi_linear(d->c_dtype, d->beta == 1.0 ? SF_EPI_ADD : SF_EPI_NONE, d->a, d->b, d->bias,
                                            d->d ? d->d : d->c, d->m, d->n, d->k);
    e.in_dtype = d->a_dtype;
    e.a_scale = d->a_scale;
    e.b_scale = d->b_scale;
    e.a_scale_rows = d->a_scale_rows;
    e.b_scale_rows = d->b_scale_rows;
    e.R = d->beta == 1.0 ? d->c : NULL;
    e.lda = d->lda;
    e.ldb = d->ldb;
    e.ldr = d->ldc;
    e.ldc = d->d ? d->ldd : d->ldc;
    SF_CUDA(g->L, sf_gemm_epilogue_cuda(&e, g->stream));
    g->ran = "hopper";
}

/* hopper or cublaslt, whichever ran faster on the first call of the shape */
static void gemm_lt_or_hopper(void *ctx)
{
    gemm_call *g = (gemm_call *)ctx;
    const sf_gemm_desc *d = g->d;
    sf_choice_key key = {SF_CHOICE_GEMM, d->a_dtype,
                         (d->beta != 0.0) | (d->bias != NULL) << 1 | (d->a_scale_rows || d->b_scale_rows) << 2 |
                             (int)d->c_dtype << 3,
                         {d->m, d->n, d->k, 0}};
    sf_run_faster(g->L, &key, gemm_cublaslt, gemm_hopper, g, g->stream, !g->in_place);
}
#endif

#ifdef SF_HAVE_CUDA
/* impl fastest: gemv against the better of the rest where gemv applies */
static void gemm_fastest(gemm_call *g, int gemv_fits)
{
    void (*rest)(void *) = gemm_cublaslt;
#ifdef SF_HAVE_HOPPER
    if (g->hopper_fits) rest = g->lt_fits ? gemm_lt_or_hopper : gemm_hopper;
#endif
    if (!gemv_fits) {
        rest(g);
        return;
    }
    const sf_gemm_desc *d = g->d;
    const int aligned = ((uintptr_t)d->a | (uintptr_t)d->b) % 16 == 0 && d->lda % 8 == 0 && d->ldb % 8 == 0 && d->k % 8 == 0;
    sf_choice_key key = {SF_CHOICE_GEMV, d->a_dtype, (d->beta != 0.0) | (d->bias != NULL) << 1 | d->epilogue << 2,
                         {d->m, d->n, d->k, aligned}};
    sf_run_faster(g->L, &key, rest, gemm_gemv, g, g->stream, !g->in_place);
}
#endif

/* FP8 operands' scales (gemm.h): required with e4m3/e5m2 'a' and 'b', refused with others */
static void fp8_scales(sf_op_args *a, sf_gemm_desc *d, int fp8)
{
    d->a_scale = sf_op_fp8_scale(a, "a_scale", "a", d->a_dtype, fp8, (sf_fp8_scale_form){d->m, "row of op(a)", 1, 0},
                                 &d->a_scale_rows);
    d->b_scale = sf_op_fp8_scale(a, "b_scale", "b", d->b_dtype, fp8, (sf_fp8_scale_form){d->n, "column of op(b)", 1, 0},
                                 &d->b_scale_rows);
}

static void run_gemm(sf_op_args *a)
{
    static const char *const tensors[] = {"a", "b", "c", "out", "bias", "a_scale", "b_scale", NULL};
    static const char *const epilogues[] = {"none", "relu", "gelu", NULL};
    static const sf_epilogue epilogue_kinds[] = {SF_EPI_NONE, SF_EPI_RELU, SF_EPI_GELU_TANH};
    enum { IMPL_CUBLASLT, IMPL_HOPPER, IMPL_FASTEST, IMPL_GEMV };
    static const char *const impls[] = {"cublaslt", "hopper", "fastest", "gemv", NULL};
    sf_tensor *A = sf_arg_tensor(a, "a"), *B = sf_arg_tensor(a, "b"), *C = sf_arg_tensor(a, "c");
    sf_tensor *bias = sf_arg_tensor(a, "bias"), *out = sf_arg_tensor(a, "out");
    sf_device_kind dev = sf_op_device(a, tensors);
    const unsigned floats = SF_DT(SF_F32) | SF_DT(SF_F16) | SF_DT(SF_BF16), fp8 = SF_DT(SF_E4M3) | SF_DT(SF_E5M2);
    sf_op_check_dtype(a, "a", A, floats | SF_DT(SF_F64) | fp8);
    sf_op_check_dtype(a, "b", B, floats | SF_DT(SF_F64) | fp8);
    sf_op_check_dtype(a, "c", C, floats | SF_DT(SF_F64));
    const int a_fp8 = (fp8 & SF_DT(A->dtype)) != 0, b_fp8 = (fp8 & SF_DT(B->dtype)) != 0;
    if (A->dtype != B->dtype && !(a_fp8 && b_fp8))
        sf_op_error(a, "'a' is %s but 'b' is %s", sf_dtype_name(A->dtype), sf_dtype_name(B->dtype));
    if (a_fp8 && C->dtype == SF_F64) sf_op_error(a, "e4m3/e5m2 inputs take an f32, f16 or bf16 'c', got f64");
    if ((A->dtype == SF_F64) != (C->dtype == SF_F64)) sf_op_error(a, "f64 GEMMs need f64 for a, b and c");
    if (A->dtype == SF_F32 && C->dtype != SF_F32) sf_op_error(a, "f32 inputs need an f32 'c', got %s", sf_dtype_name(C->dtype));

    sf_gemm_desc d = {0};
    int64_t ar, ac, br, bc, cr, cc, ab, bb, cb;
    matrix_dims(a, "a", A, &ar, &ac, &d.lda, &d.stride_a, &ab);
    matrix_dims(a, "b", B, &br, &bc, &d.ldb, &d.stride_b, &bb);
    matrix_dims(a, "c", C, &cr, &cc, &d.ldc, &d.stride_c, &cb);
    d.trans_a = sf_arg_bool(a, "transa", 0);
    d.trans_b = sf_arg_bool(a, "transb", 0);
    d.m = d.trans_a ? ac : ar;
    d.k = d.trans_a ? ar : ac;
    d.n = d.trans_b ? br : bc;
    int64_t kb = d.trans_b ? bc : br;
    if (kb != d.k)
        sf_op_error(a, "inner dimensions differ: op(a) is %lld×%lld, op(b) is %lld×%lld", (long long)d.m, (long long)d.k,
                    (long long)kb, (long long)d.n);
    if (cr != d.m || cc != d.n)
        sf_op_error(a, "'c' is %lld×%lld but op(a)·op(b) is %lld×%lld", (long long)cr, (long long)cc, (long long)d.m, (long long)d.n);
    d.batch = cb;
    if ((ab != 1 && ab != cb) || (bb != 1 && bb != cb) || (cb == 1 && (ab != 1 || bb != 1)))
        sf_op_error(a, "batch sizes differ: a %lld, b %lld, c %lld (a 2-D a or b is broadcast)", (long long)ab, (long long)bb, (long long)cb);
    if (C->ndim == 3 && cb > 1 && d.stride_c < d.m * d.ldc) sf_op_error(a, "'c' batches overlap");
    if (out) {
        int64_t orows, ocols, ob;
        sf_op_check_dtype(a, "out", out, SF_DT(C->dtype));
        sf_op_check_shape(a, "out", out, C->ndim, C->shape);
        matrix_dims(a, "out", out, &orows, &ocols, &d.ldd, &d.stride_d, &ob);
        d.d = out->data;
    }
    if (bias) {
        sf_op_check_dtype(a, "bias", bias, SF_DT(C->dtype));
        int64_t want[1] = {d.n};
        sf_op_check_shape(a, "bias", bias, 1, want);
        if (!sf_tensor_is_contiguous(bias)) sf_op_error(a, "'bias' must be contiguous");
    }
    d.a = A->data; d.b = B->data; d.c = C->data;
    d.a_dtype = A->dtype; d.b_dtype = B->dtype; d.c_dtype = C->dtype;
    d.bias = bias ? bias->data : NULL;
    fp8_scales(a, &d, a_fp8);
    d.fast_accum = sf_arg_bool(a, "fast_accum", 0);
    if (d.fast_accum && !a_fp8) sf_op_error(a, "'fast_accum' is for e4m3/e5m2 inputs; 'a' is %s", sf_dtype_name(d.a_dtype));
    d.alpha = sf_arg_number(a, "alpha", 1.0);
    d.beta = sf_arg_number(a, "beta", 0.0);
    d.epilogue = epilogue_kinds[sf_arg_choice(a, "epilogue", epilogues, 0)];
    d.tf32 = sf_arg_bool(a, "tf32", 0);
    d.autotune = sf_arg_bool(a, "autotune", 1);
    int impl = sf_arg_choice(a, "impl", impls, IMPL_CUBLASLT);
    lua_Integer splits = sf_arg_integer(a, "splits", 0);
    if (splits != 0 && impl != IMPL_GEMV) sf_op_error(a, "'splits' is for impl 'gemv'");
    if (splits < 0 || splits > SF_GEMV_MAX_SPLITS)
        sf_op_error(a, "'splits' is %lld: 0 (automatic) to %d", (long long)splits, SF_GEMV_MAX_SPLITS);
    void *stream = sf_arg_stream(a);
    if (dev == SF_DEV_CPU) {
        if (sf_gemm_ref_cpu(&d) != 0) sf_op_error(a, "out of host memory for the reference's operands");
        lua_pushstring(a->L, "reference");
        lua_pushinteger(a->L, 1);
        return;
    }
#ifdef SF_HAVE_CUDA
    const char *lt_why = NULL;
    if (a_fp8) {
        sf_op_check_fp8_gpu(a, "e4m3/e5m2 inputs");
        lt_why = fp8_unfit(&d);
        if (lt_why && impl == IMPL_CUBLASLT) sf_op_error(a, "e4m3/e5m2 inputs on the GPU: cuBLASLt's FP8 GEMM %s", lt_why);
    }
    gemm_call g = {a->L, &d, stream, NULL, NULL, NULL, d.beta != 0.0 && (!d.d || d.d == d.c), 0, !lt_why};
    sf_gemv_args gv;
    const char *gemv_why = impl == IMPL_GEMV || impl == IMPL_FASTEST ? gemv_unfit(&d, A, B, C, &gv) : "";
    if (impl == IMPL_GEMV && gemv_why) sf_op_error(a, "impl 'gemv' %s", gemv_why);
    if (!gemv_why) {
        gv.splits = (int)splits;
        g.gv = &gv;
        size_t ws = sf_gemv_prepare(a->L, &gv);
        g.gemv_ws = ws ? sf_scratch(a->L, SF_DEV_CUDA, ws, "the GEMV's split partials") : NULL;
    }
#ifdef SF_HAVE_HOPPER
    const char *hopper_why = impl == IMPL_HOPPER || impl == IMPL_FASTEST ? hopper_unfit(&d, A, B, C) : "";
    if (impl == IMPL_HOPPER && hopper_why) sf_op_error(a, "impl 'hopper' %s", hopper_why);
    g.hopper_fits = !hopper_why;
    if (impl == IMPL_FASTEST && lt_why && hopper_why)
        sf_op_error(a, "e4m3/e5m2 inputs on the GPU: cuBLASLt's FP8 GEMM %s, and our Hopper GEMM %s", lt_why, hopper_why);
#else
    if (impl == IMPL_FASTEST && lt_why) sf_op_error(a, "e4m3/e5m2 inputs on the GPU: cuBLASLt's FP8 GEMM %s", lt_why);
    if (impl == IMPL_HOPPER) sf_op_error(a, "impl 'hopper' needs sfbench built for sm_90a");
#endif
    switch (impl) {
    case IMPL_GEMV: gemm_gemv(&g); break;
#ifdef SF_HAVE_HOPPER
    case IMPL_HOPPER: gemm_hopper(&g); break;
#endif
    case IMPL_FASTEST: gemm_fastest(&g, !gemv_why); break;
    default: gemm_cublaslt(&g); break;
    }
    lua_pushstring(a->L, g.ran);
    lua_pushinteger(a->L, strcmp(g.ran, "gemv") == 0 ? gv.splits : 1);
#else
    (void)stream;
    (void)impl;
#endif
}

const sf_op sf_op_gemm = {"gemm", "matrix product through cuBLASLt or our Hopper GEMM (CPU: the double-accumulation reference)",
                          gemm_args, run_gemm};
