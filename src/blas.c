/* cuBLASLt for the gemm op (and cuBLAS for ops that batch many small products). Plans
 * (descriptors + the heuristic's algorithm) are cached per shape, so a timed loop pays only
 * for cublasLtMatmul itself, as PyTorch does. */
#include "config.h"
#include <stdio.h>
#include <string.h>
#include <lauxlib.h>
#include <cublasLt.h>
#include <cublas_v2.h>
#include "gemm.h"
#include "cuda_check.h"
#include "autotune.h"

#define WORKSPACE_BYTES ((size_t)32 << 20)   /* what PyTorch gives cuBLASLt on Hopper */
#define PLAN_CACHE 64
#define CANDIDATES 8            /* heuristic results timed when a plan is autotuned */

typedef struct plan_key {
    int64_t m, n, k, batch, lda, ldb, ldc, ldd, stride_a, stride_b, stride_c, stride_d;
    int a_dtype, b_dtype, c_dtype, trans_a, trans_b, epilogue, bias, tf32, align, autotune;
    int a_scale_rows, b_scale_rows, fast_accum;   /* FP8: per-row scales (else per tensor), fast accumulation */
} plan_key;

typedef struct plan {
    int used;
    plan_key key;
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc, ld;
    cublasLtMatmulAlgo_t algo;
} plan;

static cublasLtHandle_t lt;
static cublasHandle_t blas;
static void *workspace;
static plan plans[PLAN_CACHE];
static int next_slot;

static void lt_check(lua_State *L, cublasStatus_t s, const char *call)
{
    if (s != CUBLAS_STATUS_SUCCESS)
        luaL_error(L, "%s: cuBLAS error in %s: %s", sf_current_op, call, cublasGetStatusString(s));
}
#define LT(L, call) lt_check((L), (call), #call)

/* the workspace first: refused (during a CUDA graph capture), it leaves no handle without one */
static void ensure_handles(lua_State *L)
{
    if (!workspace) workspace = sf_alloc(L, SF_DEV_CUDA, WORKSPACE_BYTES, "the cuBLASLt workspace");
    if (!lt) LT(L, cublasLtCreate(&lt));
}

void *sf_cublas_handle(lua_State *L)
{
    if (!blas) {
        LT(L, cublasCreate(&blas));
        LT(L, cublasSetMathMode(blas, CUBLAS_DEFAULT_MATH));
    }
    return blas;
}

const char *sf_cublas_version(void)
{
    static char buf[32];
    size_t v = cublasLtGetVersion();
    snprintf(buf, sizeof buf, "%zu.%zu.%zu", v / 10000, (v / 100) % 100, v % 100);
    return buf;
}

static cudaDataType_t cuda_type(sf_dtype t)
{
    switch (t) {
    case SF_F16: return CUDA_R_16F;
    case SF_BF16: return CUDA_R_16BF;
    case SF_F64: return CUDA_R_64F;
    case SF_E4M3: return CUDA_R_8F_E4M3;
    case SF_E5M2: return CUDA_R_8F_E5M2;
    default: return CUDA_R_32F;
    }
}

static int alignment_of(const void *p)
{
    uintptr_t u = (uintptr_t)p;
    int a = 256;
    while (a > 1 && (u % (uintptr_t)a)) a >>= 1;
    return a;
}

static void set_layout(lua_State *L, cublasLtMatrixLayout_t *l, sf_dtype t, int64_t rows, int64_t cols, int64_t ld,
                       int64_t batch, int64_t stride)
{
    LT(L, cublasLtMatrixLayoutCreate(l, cuda_type(t), (uint64_t)rows, (uint64_t)cols, ld));
    if (batch > 1) {
        int32_t bc = (int32_t)batch;
        LT(L, cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc));
        LT(L, cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride));
    }
}

static void destroy_plan(plan *p)
{
    if (!p->used) return;
    cublasLtMatrixLayoutDestroy(p->la);
    cublasLtMatrixLayoutDestroy(p->lb);
    cublasLtMatrixLayoutDestroy(p->lc);
    cublasLtMatrixLayoutDestroy(p->ld);
    cublasLtMatmulDescDestroy(p->op);
    p->used = 0;
}

/* The call's device pointers that the descriptor holds: the bias, and FP8 operands' scales
 * (swapped, as the operands are: cuBLASLt's A is our b). The heuristic needs the scales set
 * (it refuses outer-vector scaling without them), so make_plan sets them too. */
static void set_pointers(lua_State *L, plan *p, const sf_gemm_desc *d)
{
    if (d->bias) LT(L, cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &d->bias, sizeof d->bias));
    if (d->a_scale) {
        LT(L, cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &d->b_scale, sizeof d->b_scale));
        LT(L, cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &d->a_scale, sizeof d->a_scale));
    }
}

/* Column-major view of the row-major problem: C^T (n×m) = op(B)^T · op(A)^T, so cuBLASLt's
 * first operand is our B and its second our A. */
static void run_plan(lua_State *L, plan *p, const cublasLtMatmulAlgo_t *algo, const sf_gemm_desc *d, void *stream);
static int pick_fastest(lua_State *L, plan *p, const cublasLtMatmulHeuristicResult_t *r, int n, const sf_gemm_desc *d,
                        void *stream);

static plan *make_plan(lua_State *L, const plan_key *k, const sf_gemm_desc *d, void *stream)
{
    plan *p = &plans[next_slot];
    next_slot = (next_slot + 1) % PLAN_CACHE;
    destroy_plan(p);
    /* no shape has m = 0: until the plan is complete the slot matches none. (Left with the evicted
     * plan's key, a failure below, such as a trial refused during a CUDA graph capture, would let
     * that shape find these descriptors.) */
    memset(&p->key, 0, sizeof p->key);
    int f32 = k->a_dtype == SF_F32 && k->b_dtype == SF_F32;
    cublasComputeType_t compute = f32 ? (k->tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F)
                                      : k->a_dtype == SF_F64 ? CUBLAS_COMPUTE_64F : CUBLAS_COMPUTE_32F;
    cudaDataType_t scale = k->a_dtype == SF_F64 ? CUDA_R_64F : CUDA_R_32F;
    LT(L, cublasLtMatmulDescCreate(&p->op, compute, scale));
    cublasOperation_t ta = k->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, tb = k->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    LT(L, cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    LT(L, cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
    if (k->epilogue == SF_EPI_RELU) epi = k->bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
    else if (k->epilogue == SF_EPI_GELU_TANH) epi = k->bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
    else if (k->bias) epi = CUBLASLT_EPILOGUE_BIAS;
    LT(L, cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    if (k->a_dtype == SF_E4M3 || k->a_dtype == SF_E5M2) {
        /* cuBLASLt's A is our b, its B our a: a per-row scale of op(a) is one a column of its B */
        int32_t mode_a = k->b_scale_rows ? CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F : CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F;
        int32_t mode_b = k->a_scale_rows ? CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F : CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F;
        int8_t fast = (int8_t)k->fast_accum;
        LT(L, cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode_a, sizeof mode_a));
        LT(L, cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode_b, sizeof mode_b));
        LT(L, cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof fast));
    }
    set_pointers(L, p, d);
    set_layout(L, &p->la, (sf_dtype)k->b_dtype, k->trans_b ? k->k : k->n, k->trans_b ? k->n : k->k, k->ldb, k->batch, k->stride_b);
    set_layout(L, &p->lb, (sf_dtype)k->a_dtype, k->trans_a ? k->m : k->k, k->trans_a ? k->k : k->m, k->lda, k->batch, k->stride_a);
    set_layout(L, &p->lc, (sf_dtype)k->c_dtype, k->n, k->m, k->ldc, k->batch, k->stride_c);
    set_layout(L, &p->ld, (sf_dtype)k->c_dtype, k->n, k->m, k->ldd, k->batch, k->stride_d);

    cublasLtMatmulPreference_t pref;
    LT(L, cublasLtMatmulPreferenceCreate(&pref));
    size_t ws = WORKSPACE_BYTES;
    uint32_t align = (uint32_t)k->align;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align, sizeof align);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align, sizeof align);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align, sizeof align);
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align, sizeof align);
    cublasLtMatmulHeuristicResult_t result[CANDIDATES];
    int found = 0;
    cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(lt, p->op, p->la, p->lb, p->lc, p->ld, pref,
                                                      k->autotune ? CANDIDATES : 1, result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    p->used = 1;
    if (s != CUBLAS_STATUS_SUCCESS || found == 0) {
        destroy_plan(p);
        luaL_error(L, "%s: cuBLASLt has no algorithm for this GEMM (m=%I n=%I k=%I, %s×%s→%s): %s", sf_current_op,
                   (LUAI_UACINT)k->m, (LUAI_UACINT)k->n, (LUAI_UACINT)k->k, sf_dtype_name((sf_dtype)k->a_dtype),
                   sf_dtype_name((sf_dtype)k->b_dtype), sf_dtype_name((sf_dtype)k->c_dtype), cublasGetStatusString(s));
    }
    const int best = found > 1 ? pick_fastest(L, p, result, found, d, stream) : 0;
    p->algo = result[best < 0 ? 0 : best].algo;
    /* published once complete; an untimed pick (a held stream: best < 0) serves this call only */
    if (best >= 0) p->key = *k;
    return p;
}

typedef struct trial {
    lua_State *L;
    plan *p;
    const cublasLtMatmulHeuristicResult_t *r;
    const sf_gemm_desc *d;
    void *stream;
} trial;

static void run_trial(void *ctx, int i)
{
    trial *t = (trial *)ctx;
    run_plan(t->L, t->p, &t->r[i].algo, t->d, t->stream);
}

/* The index of the fastest candidate (sf_fastest: 5 rounds, interleaved), or -1 where nothing
 * could be timed (a held stream). Only asked for when beta == 0 or the output is not C, so the
 * trial runs only write the output. */
static int pick_fastest(lua_State *L, plan *p, const cublasLtMatmulHeuristicResult_t *r, int n, const sf_gemm_desc *d,
                        void *stream)
{
    trial t = {L, p, r, d, stream};
    return sf_fastest(L, n, run_trial, &t, stream, 5);
}

void sf_gemm_cuda(lua_State *L, const sf_gemm_desc *d, void *stream)
{
    ensure_handles(L);
    plan_key k;
    memset(&k, 0, sizeof k);
    k.m = d->m; k.n = d->n; k.k = d->k; k.batch = d->batch;
    k.lda = d->lda; k.ldb = d->ldb; k.ldc = d->ldc;
    k.stride_a = d->stride_a; k.stride_b = d->stride_b; k.stride_c = d->stride_c;
    k.ldd = d->d ? d->ldd : d->ldc;
    k.stride_d = d->d ? d->stride_d : d->stride_c;
    k.a_dtype = d->a_dtype; k.b_dtype = d->b_dtype; k.c_dtype = d->c_dtype;
    k.trans_a = d->trans_a; k.trans_b = d->trans_b; k.epilogue = d->epilogue;
    k.bias = d->bias != NULL; k.tf32 = d->tf32;
    k.a_scale_rows = d->a_scale_rows; k.b_scale_rows = d->b_scale_rows; k.fast_accum = d->fast_accum;
    k.autotune = d->autotune && (d->beta == 0 || (d->d && d->d != d->c));
    k.align = alignment_of(d->a);
    if (alignment_of(d->b) < k.align) k.align = alignment_of(d->b);
    if (alignment_of(d->c) < k.align) k.align = alignment_of(d->c);
    if (d->d && alignment_of(d->d) < k.align) k.align = alignment_of(d->d);
    plan *p = NULL;
    for (int i = 0; i < PLAN_CACHE && !p; i++)
        if (plans[i].used && memcmp(&plans[i].key, &k, sizeof k) == 0) p = &plans[i];
    if (!p) p = make_plan(L, &k, d, stream);
    run_plan(L, p, &p->algo, d, stream);
}

void sf_linear_cuda(lua_State *L, const void *x, const void *w, const void *bias, const void *residual, void *out,
                    int64_t T, int64_t N, int64_t K, sf_dtype dt, sf_epilogue epi, void *stream)
{
    sf_gemm_desc d;
    sf_linear_desc(&d, x, w, bias, residual, out, T, N, K, dt, epi);
    sf_gemm_cuda(L, &d, stream);
}

static void run_plan(lua_State *L, plan *p, const cublasLtMatmulAlgo_t *algo, const sf_gemm_desc *d, void *stream)
{
    set_pointers(L, p, d);
    double alpha64 = d->alpha, beta64 = d->beta;
    float alpha32 = (float)d->alpha, beta32 = (float)d->beta;
    int f64 = d->a_dtype == SF_F64;
    LT(L, cublasLtMatmul(lt, p->op, f64 ? (void *)&alpha64 : (void *)&alpha32, d->b, p->la, d->a, p->lb,
                         f64 ? (void *)&beta64 : (void *)&beta32, d->c, p->lc, d->d ? d->d : d->c, p->ld, algo, workspace,
                         WORKSPACE_BYTES, (cudaStream_t)stream));
}

void sf_blas_release(void)
{
    for (int i = 0; i < PLAN_CACHE; i++) destroy_plan(&plans[i]);
    if (workspace) sf_free(SF_DEV_CUDA, workspace, WORKSPACE_BYTES);
    workspace = NULL;
    if (lt) cublasLtDestroy(lt);
    lt = NULL;
    if (blas) cublasDestroy(blas);
    blas = NULL;
}
