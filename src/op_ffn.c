/* The ffn op (GELU MLP and Llama's SwiGLU, unfused like PyTorch eager or fused; SwiGLU also in
 * FP8: e4m3 x and weights with a scale per token and per channel), pack_gate_up, which
 * interleaves W1 and W3 for the fused SwiGLU GEMM, and swiglu, the unfused FFN's activation
 * alone. */
#include "config.h"
#include <math.h>
#include <string.h>
#include "ops.h"
#include "ffn.h"
#include "quantize.h"
#ifdef SF_HAVE_CUDA
#include "cuda_check.h"
#include "gemm.h"
#include "autotune.h"
#include "gemv.h"
#endif

static const sf_arg_spec ffn_args[] = {
    {"x", SF_ARG_TENSOR, 1, NULL, "input [T, H]; e4m3 (swiglu) with x_scale and e4m3 weights"},
    {"w1", SF_ARG_TENSOR, 0, NULL, "fc1 / gate weight [I, H] (swiglu: w1 and w3, or w13 alone)"},
    {"w2", SF_ARG_TENSOR, 1, NULL, "fc2 / down weight [H, I]"},
    {"w3", SF_ARG_TENSOR, 0, NULL, "up weight [I, H] (swiglu)"},
    {"w13", SF_ARG_TENSOR, 0, NULL, "gate and up interleaved [2I, H] from pack_gate_up (swiglu: what impl fused and gemv "
     "read on the GPU; alone, without w1 and w3, it serves every impl but the GPU's unfused)"},
    {"x_scale", SF_ARG_TENSOR, 0, NULL, "e4m3 x: its f32 dequantization scale per token, [T]"},
    {"w1_scale", SF_ARG_TENSOR, 0, NULL, "e4m3 w1: f32 [I], one an output channel (impl unfused, and the CPU given w1)"},
    {"w2_scale", SF_ARG_TENSOR, 0, NULL, "e4m3 w2: f32 [H]"},
    {"w3_scale", SF_ARG_TENSOR, 0, NULL, "e4m3 w3: f32 [I] (impl unfused, and the CPU given w3)"},
    {"w13_scale", SF_ARG_TENSOR, 0, NULL, "e4m3 w13: f32 [2I], w1_scale and w3_scale interleaved as w13 (pack_gate_up of "
     "their [I, 1] views; the GPU's impl fused, and wherever w13 comes without w1 and w3)"},
    {"h_scale", SF_ARG_TENSOR, 0, NULL, "e4m3 inputs, impl fused: f32 [1], h's dequantization scale fixed ahead: the "
     "gate/up GEMM's epilogue writes h in e4m3 as h / h_scale, saturated, and the down projection takes it per tensor "
     "(without it, h is quantized per token after that GEMM: one more pass over h)"},
    {"calibrate", SF_ARG_BOOL, 0, "false", "with h_scale: write h_scale from this call's h (its amax / 448, h quantized "
     "per tensor with it), as a calibration run does once"},
    {"b1", SF_ARG_TENSOR, 0, NULL, "fc1 bias [I] (gelu)"},
    {"b2", SF_ARG_TENSOR, 0, NULL, "fc2 bias [H] (gelu)"},
    {"out", SF_ARG_TENSOR, 1, NULL, "output [T, H], written; x's dtype, or f16/bf16 for e4m3 x (f32, f64 too on the CPU)"},
    {"residual", SF_ARG_TENSOR, 0, NULL, "[T, H] added to the output in the down projection's epilogue"},
    {"act", SF_ARG_STRING, 1, NULL, "gelu (fc1 → GELU → fc2) or swiglu ((silu(x·W1ᵀ) ⊙ x·W3ᵀ)·W2ᵀ)"},
    {"gelu", SF_ARG_STRING, 0, "tanh", "GELU form: tanh or erf"},
    {"impl", SF_ARG_STRING, 0, "fused", "unfused (separate GEMMs and activation kernels) or fused (SwiGLU at T <= 64: "
     "each projection by our GEMV or the GEMMs, whichever ran faster on the first call of the shape) or gemv "
     "(SwiGLU, T <= 64: our GEMV alone)"},
    {"stream", SF_ARG_STREAM, 0, NULL, "stream to run on"},
    {NULL, 0, 0, NULL, NULL}};

enum { ACT_GELU, ACT_SWIGLU };
enum { IMPL_UNFUSED, IMPL_FUSED, IMPL_GEMV };

typedef struct ffn_call {
    sf_op_args *a;
    sf_tensor *x, *w1, *w2, *w3, *w13, *b1, *b2, *out, *residual;
    int act, gelu_erf, impl;
    int64_t T, H, I;
    void *stream;
    /* e4m3 x and weights: their per-row f32 scales (x_scale [T], w*_scale [out channels]) */
    const float *x_scale, *w1_scale, *w2_scale, *w3_scale, *w13_scale;
    /* e4m3: h's scale per tensor, read (fixed ahead) or, with calibrate, written; NULL: per token */
    float *h_scale;
    int calibrate;
} ffn_call;

static void check_matrix(sf_op_args *a, const char *name, const sf_tensor *t, int64_t rows, int64_t cols,
                         const sf_tensor *like)
{
    int64_t shape[2] = {rows, cols};
    sf_op_check_shape(a, name, t, 2, shape);
    sf_op_check_dtype(a, name, t, SF_DT(like->dtype));
    if (!sf_tensor_is_contiguous(t)) sf_op_error(a, "'%s' must be contiguous", name);
}

static void check_vector(sf_op_args *a, const char *name, const sf_tensor *t, int64_t n, const sf_tensor *like)
{
    if (!t) return;
    sf_op_check_shape(a, name, t, 1, &n);
    sf_op_check_dtype(a, name, t, SF_DT(like->dtype));
    if (!sf_tensor_is_contiguous(t)) sf_op_error(a, "'%s' must be contiguous", name);
}

#ifdef SF_HAVE_CUDA
static const void *residual_of(const ffn_call *c) { return c->residual ? c->residual->data : NULL; }

static void unfused(ffn_call *c)
{
    lua_State *L = c->a->L;
    sf_dtype dt = c->x->dtype;
    size_t ti = (size_t)(c->T * c->I) * sf_dtype_size(dt);
    /* as PyTorch eager: every intermediate is a tensor of its own in device memory */
    int n_tmp = c->act == ACT_SWIGLU ? 4 : 2;
    char *tmp = sf_scratch(L, SF_DEV_CUDA, ti * (size_t)n_tmp, "the FFN intermediates");
    if (c->act == ACT_GELU) {
        sf_linear_cuda(L, c->x->data, c->w1->data, c->b1 ? c->b1->data : NULL, NULL, tmp, c->T, c->I, c->H, dt,
               SF_EPI_NONE, c->stream);
        SF_CUDA(L, sf_act_cuda(c->gelu_erf ? SF_EPI_GELU_ERF : SF_EPI_GELU_TANH, dt, tmp, tmp + ti, c->T * c->I, c->stream));
        sf_linear_cuda(L, tmp + ti, c->w2->data, c->b2 ? c->b2->data : NULL, residual_of(c), c->out->data, c->T, c->H, c->I, dt,
               SF_EPI_NONE, c->stream);
        return;
    }
    char *gate = tmp, *up = tmp + ti, *act = tmp + 2 * ti, *prod = tmp + 3 * ti;
    sf_linear_cuda(L, c->x->data, c->w1->data, NULL, NULL, gate, c->T, c->I, c->H, dt, SF_EPI_NONE, c->stream);
    sf_linear_cuda(L, c->x->data, c->w3->data, NULL, NULL, up, c->T, c->I, c->H, dt, SF_EPI_NONE, c->stream);
    SF_CUDA(L, sf_act_cuda(SF_EPI_SILU, dt, gate, act, c->T * c->I, c->stream));
    SF_CUDA(L, sf_mul_cuda(dt, act, up, prod, c->T * c->I, c->stream));
    sf_linear_cuda(L, prod, c->w2->data, NULL, residual_of(c), c->out->data, c->T, c->H, c->I, dt, SF_EPI_NONE, c->stream);
}

/* n bytes rounded up to 256, so that a buffer after it in one scratch allocation stays aligned */
static size_t pad256(size_t n) { return (n + 255) / 256 * 256; }

/* e4m3 inputs on impl `impl`: each of the n tensors ts (NULL: not given), named in `names`,
 * 16-byte aligned, as the FP8 GEMMs need */
static void check_fp8_aligned(ffn_call *c, const char *impl, const char *names, const sf_tensor *const *ts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ts[i] && (uintptr_t)ts[i]->data % 16)
            sf_op_error(c->a, "impl '%s' with e4m3 inputs needs %s 16-byte aligned", impl, names);
}

/* The FP8 FFN's intermediates, in one scratch allocation: n_h buffers [T, I] in out's dtype (h;
 * the unfused form's gate, which becomes h, and up), then h's e4m3 copy, its scale per token and
 * the amax word of a calibration */
typedef struct fp8_hidden { char *h[2]; void *h8; float *h_scale; unsigned *amax; } fp8_hidden;

static fp8_hidden fp8_hidden_scratch(ffn_call *c, int n_h)
{
    const size_t ti = (size_t)(c->T * c->I), hb = pad256(ti * sf_dtype_size(c->out->dtype)), h8b = pad256(ti);
    const size_t sb = pad256((size_t)c->T * sizeof(float));
    char *s = sf_scratch(c->a->L, SF_DEV_CUDA, (size_t)n_h * hb + h8b + sb + sizeof(unsigned),
                         n_h > 1 ? "the FFN intermediates" : "the FFN hidden activations");
    char *h8 = s + n_h * hb;
    return (fp8_hidden){{n_h ? s : NULL, n_h > 1 ? s + hb : NULL}, h8, (float *)(h8 + h8b), (unsigned *)(h8 + h8b + sb)};
}

/* h (out's dtype) to e4m3: the down projection's input, with a scale per token, or with
 * calibrate per tensor, its scale written to h_scale */
static void quantize_hidden(ffn_call *c, const fp8_hidden *f)
{
    const sf_quantize_args q = {c->out->dtype, SF_E4M3, f->h[0], f->h8, c->h_scale ? c->h_scale : f->h_scale, c->T,
                                c->I, c->I, c->I, !c->h_scale, 0};
    SF_CUDA(c->a->L, sf_quantize_cuda(&q, f->amax, c->stream));
}

/* out [T, N] = (x·xs)(w·ws)ᵀ (+ residual: beta 1) through cuBLASLt's FP8 GEMM: e4m3 x and w with
 * their scales per row, fast accumulation (as our Hopper GEMM's), out in `ot` */
static void fp8_linear(ffn_call *c, const void *x, const float *xs, const void *w, const float *ws, void *out,
                       const void *residual, int64_t N, int64_t K)
{
    sf_gemm_desc d;
    sf_linear_desc(&d, x, w, NULL, residual, out, c->T, N, K, SF_E4M3, SF_EPI_NONE);
    d.c_dtype = c->out->dtype;
    d.a_scale = xs;
    d.b_scale = ws;
    d.a_scale_rows = d.b_scale_rows = 1;
    d.fast_accum = 1;
    sf_gemm_cuda(c->a->L, &d, c->stream);
}

/* The FP8 SwiGLU FFN on cuBLASLt (any GPU with FP8 tensor cores), as the unfused 16-bit FFN: gate
 * and up by FP8 GEMMs into out's dtype, silu then the product (each rounded, as the swiglu op),
 * h quantized to e4m3 with a scale per token, then the FP8 down projection with the residual
 * added (beta 1). */
static void unfused_fp8(ffn_call *c)
{
    lua_State *L = c->a->L;
    const sf_dtype ot = c->out->dtype;
    const int64_t ti = c->T * c->I;
    const fp8_hidden f = fp8_hidden_scratch(c, 2);
    char *gate = f.h[0], *up = f.h[1];
    fp8_linear(c, c->x->data, c->x_scale, c->w1->data, c->w1_scale, gate, NULL, c->I, c->H);
    fp8_linear(c, c->x->data, c->x_scale, c->w3->data, c->w3_scale, up, NULL, c->I, c->H);
    SF_CUDA(L, sf_act_cuda(SF_EPI_SILU, ot, gate, gate, ti, c->stream));
    SF_CUDA(L, sf_mul_cuda(ot, gate, up, gate, ti, c->stream));
    quantize_hidden(c, &f);
    fp8_linear(c, f.h8, f.h_scale, c->w2->data, c->w2_scale, c->out->data, residual_of(c), c->H, c->I);
}

#ifdef SF_HAVE_HOPPER
/* out = h·W2ᵀ (+ b2) (+ residual) through our Hopper GEMM (residual in its ADD epilogue) */
static void down_hopper(ffn_call *c, void *h)
{
    sf_gemm_epi_args g = sf_gemm_epi_linear(c->x->dtype, c->residual ? SF_EPI_ADD : SF_EPI_NONE, h, c->w2->data,
                                            c->b2 ? c->b2->data : NULL, c->out->data, c->T, c->H, c->I);
    g.R = residual_of(c);
    SF_CUDA(c->a->L, sf_gemm_epilogue_cuda(&g, c->stream));
}

static void down_cublaslt(ffn_call *c, void *h)
{
    sf_linear_cuda(c->a->L, h, c->w2->data, c->b2 ? c->b2->data : NULL, residual_of(c), c->out->data, c->T, c->H, c->I,
           c->x->dtype, SF_EPI_NONE, c->stream);
}

/* h = GELU(x·W1ᵀ (+ b1)), tanh form, through our Hopper GEMM or cuBLASLt's GELU epilogue */
static void gelu_up_hopper(ffn_call *c, void *h)
{
    sf_gemm_epi_args g = sf_gemm_epi_linear(c->x->dtype, SF_EPI_GELU_TANH, c->x->data, c->w1->data,
                                            c->b1 ? c->b1->data : NULL, h, c->T, c->I, c->H);
    SF_CUDA(c->a->L, sf_gemm_epilogue_cuda(&g, c->stream));
}

static void gelu_up_cublaslt(ffn_call *c, void *h)
{
    sf_linear_cuda(c->a->L, c->x->data, c->w1->data, c->b1 ? c->b1->data : NULL, NULL, h, c->T, c->I, c->H, c->x->dtype,
           SF_EPI_GELU_TANH, c->stream);
}

/* Where cuBLASLt and our kernel trade wins by shape (the down projection; the tanh-GELU up
 * projection, which cuBLASLt can fuse too), the first call of a shape times both and keeps the
 * faster (sf_run_faster). */
typedef void (*ffn_gemm)(ffn_call *c, void *h);
typedef struct gemm_pair { ffn_call *c; void *h; ffn_gemm lt, hopper; } gemm_pair;
static void pair_lt(void *ctx) { gemm_pair *g = (gemm_pair *)ctx; g->lt(g->c, g->h); }
static void pair_hopper(void *ctx) { gemm_pair *g = (gemm_pair *)ctx; g->hopper(g->c, g->h); }

/* flags: what else changes the work (a residual, a bias); trials: 0 when running the step twice
 * would change its result (then cuBLASLt runs) */
static void run_faster(ffn_call *c, int what, int flags, void *h, ffn_gemm hopper, ffn_gemm lt, int trials)
{
    sf_choice_key key = {what, c->x->dtype, flags, {c->T, c->H, c->I, 0}};
    gemm_pair g = {c, h, lt, hopper};
    sf_run_faster(c->a->L, &key, pair_lt, pair_hopper, &g, c->stream, trials);
}

static void down_projection(ffn_call *c, void *h)
{
    /* with the residual read from `out` itself, trial runs would add it again */
    int res = c->residual != NULL;
    run_faster(c, SF_CHOICE_FFN_DOWN, res | (c->b2 != NULL) << 1, h, down_hopper, down_cublaslt,
               !res || c->residual->data != c->out->data);
}
#endif

/* SwiGLU over a decode step's few tokens through our GEMV: SwiGLU in the up projection's
 * epilogue, the residual in the down projection's. impl fused times each projection against the
 * GEMMs on the first call of the shape and keeps the faster; impl gemv runs it alone. */
typedef struct ffn_gemv { ffn_call *c; void *h, *ws; sf_gemv_args up, down; } ffn_gemv;

static void up_gemv(void *ctx)
{
    ffn_gemv *g = (ffn_gemv *)ctx;
    sf_gemv_launch(g->c->a->L, &g->up, g->ws, g->c->stream);
}

static void down_gemv(void *ctx)
{
    ffn_gemv *g = (ffn_gemv *)ctx;
    sf_gemv_launch(g->c->a->L, &g->down, g->ws, g->c->stream);
}

/* Both projections' arguments, h and the workspace; why the GEMV cannot take them, or NULL. */
static const char *gemv_setup(ffn_call *c, ffn_gemv *g)
{
    lua_State *L = c->a->L;
    *g = (ffn_gemv){c, NULL, NULL,
                    {.dtype = c->x->dtype, .m = c->T, .n = 2 * c->I, .k = c->H, .x = c->x->data, .w = c->w13->data,
                     .ldx = c->H, .ldw = c->H, .ldo = c->I, .alpha = 1, .epilogue = SF_EPI_SWIGLU},
                    {.dtype = c->x->dtype, .m = c->T, .n = c->H, .k = c->I, .w = c->w2->data, .out = c->out->data,
                     .c = residual_of(c), .ldx = c->I, .ldw = c->I, .ldc = c->H, .ldo = c->H, .alpha = 1,
                     .beta = c->residual ? 1 : 0}};
    /* h [T, I] first, then the splits' partials: the split counts need h's address (its
     * alignment), the scratch size needs them; growing the scratch keeps the alignment */
    size_t h_bytes = pad256((size_t)(c->T * c->I) * sf_dtype_size(c->x->dtype));
    char *scratch = sf_scratch(L, SF_DEV_CUDA, h_bytes, "the FFN hidden activations");
    g->up.out = scratch;
    g->down.x = scratch;
    const char *why = sf_gemv_unfit(&g->up);
    if (!why) why = sf_gemv_unfit(&g->down);
    if (why) return why;
    size_t ws_up = sf_gemv_prepare(L, &g->up), ws_down = sf_gemv_prepare(L, &g->down);
    scratch = sf_scratch(L, SF_DEV_CUDA, h_bytes + (ws_up > ws_down ? ws_up : ws_down), "the FFN hidden activations");
    g->h = g->up.out = scratch;
    g->down.x = scratch;
    g->ws = scratch + h_bytes;
    return NULL;
}

static void gemv_only(ffn_call *c)
{
    ffn_gemv g;
    if (c->act != ACT_SWIGLU) sf_op_error(c->a, "impl 'gemv' takes act 'swiglu'");
    const char *why = gemv_setup(c, &g);
    if (why) sf_op_error(c->a, "impl 'gemv' %s", why);
    up_gemv(&g);
    down_gemv(&g);
}

#ifdef SF_HAVE_HOPPER
static void up_hopper(void *ctx)
{
    ffn_gemv *g = (ffn_gemv *)ctx;
    ffn_call *c = g->c;
    sf_gemm_epi_args e = sf_gemm_epi_linear(c->x->dtype, SF_EPI_SWIGLU, c->x->data, c->w13->data, NULL, g->h, c->T,
                                            2 * c->I, c->H);
    SF_CUDA(c->a->L, sf_gemm_epilogue_cuda(&e, c->stream));
}

static void down_gemm(void *ctx)
{
    ffn_gemv *g = (ffn_gemv *)ctx;
    down_projection(g->c, g->h);
}

/* 0 when the GEMV cannot take the shape (the caller runs the GEMMs alone) */
static int swiglu_fastest(ffn_call *c)
{
    ffn_gemv g;
    if (gemv_setup(c, &g)) return 0;
    sf_choice_key up = {SF_CHOICE_FFN_UP_GEMV, c->x->dtype, 0, {c->T, c->H, c->I, 0}};
    sf_run_faster(c->a->L, &up, up_hopper, up_gemv, &g, c->stream, 1);
    int res = c->residual != NULL;
    sf_choice_key down = {SF_CHOICE_FFN_DOWN_GEMV, c->x->dtype, res, {c->T, c->H, c->I, 0}};
    sf_run_faster(c->a->L, &down, down_gemm, down_gemv, &g, c->stream, !res || c->residual->data != c->out->data);
    return 1;
}
#endif

#ifdef SF_HAVE_HOPPER
/* The FP8 SwiGLU FFN on our Hopper GEMM: h = silu(g)·u in the first GEMM's epilogue (e4m3 x and
 * w13, their scales on the fp32 accumulators), written in out's dtype, then quantized to e4m3
 * with a scale per token (or, calibrating, per tensor); or, with a fixed h_scale, written in e4m3
 * by that epilogue. Then the down projection of e4m3 h and w2, the residual in its epilogue. */
static void fused_fp8(ffn_call *c)
{
    lua_State *L = c->a->L;
    const sf_dtype ot = c->out->dtype;
    const int fixed = c->h_scale && !c->calibrate;
    const fp8_hidden f = fp8_hidden_scratch(c, fixed ? 0 : 1);
    sf_gemm_epi_args up = sf_gemm_epi_linear(ot, SF_EPI_SWIGLU, c->x->data, c->w13->data, NULL, fixed ? f.h8 : f.h[0],
                                             c->T, 2 * c->I, c->H);
    up.in_dtype = SF_E4M3;
    up.a_scale = c->x_scale;
    up.b_scale = c->w13_scale;
    up.a_scale_rows = up.b_scale_rows = 1;
    if (fixed) up.out_scale = c->h_scale;
    SF_CUDA(L, sf_gemm_epilogue_cuda(&up, c->stream));
    if (!fixed) quantize_hidden(c, &f);
    sf_gemm_epi_args down = sf_gemm_epi_linear(ot, c->residual ? SF_EPI_ADD : SF_EPI_NONE, f.h8, c->w2->data, NULL,
                                               c->out->data, c->T, c->H, c->I);
    down.in_dtype = SF_E4M3;
    down.a_scale = c->h_scale ? c->h_scale : f.h_scale;
    down.b_scale = c->w2_scale;
    down.a_scale_rows = !c->h_scale;
    down.b_scale_rows = 1;
    down.R = residual_of(c);
    SF_CUDA(L, sf_gemm_epilogue_cuda(&down, c->stream));
}
#endif

static void fused(ffn_call *c)
{
#ifdef SF_HAVE_HOPPER
    lua_State *L = c->a->L;
    sf_dtype dt = c->x->dtype;
    if (!sf_hopper_kernels())
        sf_op_error(c->a, "impl 'fused' needs a Hopper GPU (cc 9.0), this one is %d.%d", sf_cuda_cc() / 10, sf_cuda_cc() % 10);
    if (c->H % 64 || c->I % 64)
        sf_op_error(c->a, "impl 'fused' needs hidden (%lld) and intermediate (%lld) sizes that are multiples of 64",
                    (long long)c->H, (long long)c->I);
    if (dt == SF_E4M3) {
        const sf_tensor *const aligned[] = {c->x, c->w13, c->w2, c->out, c->residual};
        check_fp8_aligned(c, "fused", "x, w13, w2, out and residual", aligned, sizeof aligned / sizeof *aligned);
        fused_fp8(c);
        return;
    }
    if (c->act == ACT_SWIGLU && c->T <= SF_GEMV_MAX_M && swiglu_fastest(c)) return;
    /* the only intermediate: h [T, I], written once by the first GEMM's epilogue */
    void *h = sf_scratch(L, SF_DEV_CUDA, (size_t)(c->T * c->I) * sf_dtype_size(dt), "the FFN hidden activations");
    if (c->act == ACT_GELU && !c->gelu_erf) {
        run_faster(c, SF_CHOICE_FFN_GELU_UP, c->b1 != NULL, h, gelu_up_hopper, gelu_up_cublaslt, 1);
    } else {
        /* SwiGLU and erf-GELU: only our epilogues have them */
        int swiglu = c->act == ACT_SWIGLU;
        sf_gemm_epi_args g =
            swiglu ? sf_gemm_epi_linear(dt, SF_EPI_SWIGLU, c->x->data, c->w13->data, NULL, h, c->T, 2 * c->I, c->H)
                   : sf_gemm_epi_linear(dt, SF_EPI_GELU_ERF, c->x->data, c->w1->data, c->b1 ? c->b1->data : NULL, h, c->T,
                                        c->I, c->H);
        SF_CUDA(L, sf_gemm_epilogue_cuda(&g, c->stream));
    }
    down_projection(c, h);
#else
    sf_op_error(c->a, "impl 'fused' needs sfbench built for sm_90a (configure --with-cuda-arch=sm_90a,...)");
#endif
}
#endif

/* e4m3 inputs (fp8): act swiglu, impl unfused or fused, and the f32 scales, one a row: x_scale
 * [T] and w2_scale [H] always, w1_scale and w3_scale [I] for the unfused FFN and the CPU's
 * reference given w1 and w3, w13_scale [2I] for the GPU's fused FFN and wherever w13 comes
 * alone; refused with 16-bit inputs */
static void fp8_scales(sf_op_args *a, ffn_call *c, int fp8, sf_device_kind dev)
{
    const int fused_gpu = dev == SF_DEV_CUDA && c->impl == IMPL_FUSED, packed = fused_gpu || !c->w1;
    /* the weights share x's dtype (checked before) */
    const struct { const char *name, *of; const float **dst; int64_t n; int needed; } scales[] = {
        {"x_scale", "x", &c->x_scale, c->T, 1},
        {"w1_scale", "w1", &c->w1_scale, c->I, !packed},
        {"w3_scale", "w3", &c->w3_scale, c->I, !packed},
        {"w2_scale", "w2", &c->w2_scale, c->H, 1},
        {"w13_scale", "w13", &c->w13_scale, 2 * c->I, packed},
    };
    for (size_t i = 0; i < sizeof scales / sizeof *scales; i++)
        *scales[i].dst = sf_op_fp8_scale(a, scales[i].name, scales[i].of, c->x->dtype, fp8,
                                         (sf_fp8_scale_form){scales[i].n, i ? "weight row" : "token", 0, !scales[i].needed},
                                         NULL);
    /* h's scale per tensor: fused (our epilogue's e4m3 h; cuBLASLt's FP8 GEMM takes per-row scales
     * of both operands or of neither, so the unfused down projection needs h's per token) */
    const sf_tensor *hs = sf_arg_tensor(a, "h_scale");
    c->calibrate = sf_arg_bool(a, "calibrate", 0);
    if (c->calibrate && !hs) sf_op_error(a, "'calibrate' needs 'h_scale', the f32 [1] it writes");
    if (!hs) return;
    if (!fp8) sf_op_error(a, "'h_scale' is for e4m3 inputs; 'x' is %s", sf_dtype_name(c->x->dtype));
    if (c->impl != IMPL_FUSED)
        sf_op_error(a, "'h_scale' is for impl 'fused' (impl 'unfused' quantizes h per token, as its cuBLASLt down "
                       "projection needs)");
    sf_op_check_dtype(a, "h_scale", hs, SF_DT(SF_F32));
    if (hs->ndim != 1 || hs->shape[0] != 1) sf_op_error(a, "'h_scale' must be an f32 [1] (one scale for h)");
    c->h_scale = (float *)hs->data;
}

static void run_ffn(sf_op_args *a)
{
    static const char *const tensors[] = {"x", "w1", "w2", "w3", "w13", "b1", "b2", "out", "residual", "x_scale",
                                          "w1_scale", "w2_scale", "w3_scale", "w13_scale", "h_scale", NULL};
    static const char *const acts[] = {"gelu", "swiglu", NULL}, *const gelus[] = {"tanh", "erf", NULL};
    static const char *const impls[] = {"unfused", "fused", "gemv", NULL};
    ffn_call c = {a, sf_arg_tensor(a, "x"), sf_arg_tensor(a, "w1"), sf_arg_tensor(a, "w2"), sf_arg_tensor(a, "w3"),
                  sf_arg_tensor(a, "w13"), sf_arg_tensor(a, "b1"), sf_arg_tensor(a, "b2"), sf_arg_tensor(a, "out"),
                  sf_arg_tensor(a, "residual"),
                  sf_arg_choice(a, "act", acts, ACT_GELU), sf_arg_choice(a, "gelu", gelus, 0),
                  sf_arg_choice(a, "impl", impls, IMPL_FUSED), 0, 0, 0, sf_arg_stream(a), NULL, NULL, NULL, NULL, NULL,
                  NULL, 0};
    sf_device_kind dev = sf_op_device(a, tensors);
    const unsigned dtypes = sf_op_model_dtypes(dev);
    sf_op_check_dtype(a, "x", c.x, dtypes | SF_DT(SF_E4M3));
    const int fp8 = c.x->dtype == SF_E4M3;
    if (fp8) {
        if (c.act != ACT_SWIGLU) sf_op_error(a, "e4m3 inputs take act 'swiglu'");
        if (c.impl == IMPL_GEMV) sf_op_error(a, "e4m3 inputs run impl 'unfused' or 'fused', not 'gemv'");
        sf_op_check_dtype(a, "out", c.out, dtypes);
    }
    const sf_tensor *out_like = fp8 ? c.out : c.x; /* out's and the residual's dtype */
    if (c.x->ndim != 2) sf_op_error(a, "'x' must be [T, H], got %d dimensions", c.x->ndim);
    if (!sf_tensor_is_contiguous(c.x)) sf_op_error(a, "'x' must be contiguous");
    c.T = c.x->shape[0];
    c.H = c.x->shape[1];
    if (c.act != ACT_SWIGLU && (c.w3 || c.w13)) sf_op_error(a, "'%s' is for act 'swiglu'", c.w3 ? "w3" : "w13");
    /* I: w1's rows, or half of w13's where it comes alone */
    const sf_tensor *gate = c.w1 ? c.w1 : c.act == ACT_SWIGLU ? c.w13 : NULL;
    if (!gate)
        sf_op_error(a, c.act == ACT_SWIGLU ? "act 'swiglu' needs 'w1' and 'w3', or 'w13' (pack_gate_up's)"
                                           : "act 'gelu' needs 'w1'");
    if (gate->ndim != 2) sf_op_error(a, "'%s' must be [%sI, H], got %d dimensions", c.w1 ? "w1" : "w13", c.w1 ? "" : "2",
                                     gate->ndim);
    if (!c.w1 && gate->shape[0] % (2 * SF_SWIGLU_INTERLEAVE))
        sf_op_error(a, "'w13' must have 2I rows, I a multiple of %d (pack_gate_up's), got %lld", SF_SWIGLU_INTERLEAVE,
                    (long long)gate->shape[0]);
    c.I = c.w1 ? gate->shape[0] : gate->shape[0] / 2;
    if (c.w1) check_matrix(a, "w1", c.w1, c.I, c.H, c.x);
    check_matrix(a, "w2", c.w2, c.H, c.I, c.x);
    check_matrix(a, "out", c.out, c.T, c.H, out_like);
    if (c.act == ACT_SWIGLU) {
        if (!c.w1 != !c.w3) sf_op_error(a, "act 'swiglu' takes 'w1' and 'w3' together (the gate and up projections)");
        if (c.w3) check_matrix(a, "w3", c.w3, c.I, c.H, c.x);
        if (c.w13) check_matrix(a, "w13", c.w13, 2 * c.I, c.H, c.x);
        if (c.b1 || c.b2) sf_op_error(a, "act 'swiglu' (Llama's) has no biases: 'b1' and 'b2' are for act 'gelu'");
        if (dev == SF_DEV_CUDA && c.impl != IMPL_UNFUSED && !c.w13)
            sf_op_error(a, "impl '%s' needs 'w13', the gate and up weights packed by sf.ops.pack_gate_up", impls[c.impl]);
        if (dev == SF_DEV_CUDA && c.impl == IMPL_UNFUSED && !c.w1)
            sf_op_error(a, "impl 'unfused' needs 'w1' and 'w3' (it runs the gate and up GEMMs apart), not 'w13' alone");
    }
    check_vector(a, "b1", c.b1, c.I, c.x);
    check_vector(a, "b2", c.b2, c.H, c.x);
    if (c.residual) check_matrix(a, "residual", c.residual, c.T, c.H, out_like);
    fp8_scales(a, &c, fp8, dev);
    if (dev == SF_DEV_CPU) {
        const sf_dtype ot = c.out->dtype;
        sf_ffn_ref_args r = {c.act == ACT_SWIGLU ? SF_EPI_SWIGLU : c.gelu_erf ? SF_EPI_GELU_ERF : SF_EPI_GELU_TANH,
                             c.x->dtype, c.T, c.H, c.I, c.x->data, c.w1 ? c.w1->data : NULL, c.w3 ? c.w3->data : NULL,
                             c.w1 ? NULL : c.w13->data, c.w2->data,
                             c.b1 ? c.b1->data : NULL, c.b2 ? c.b2->data : NULL, NULL, c.out->data,
                             c.x_scale, c.w1_scale, c.w3_scale, c.w1 ? NULL : c.w13_scale, c.w2_scale, ot, c.h_scale,
                             c.calibrate};
        /* the reference has no residual: add it after, in double, from a copy when it is `out` */
        const void *res = c.residual ? c.residual->data : NULL;
        void *copy = NULL;
        if (res && res == c.out->data) {
            size_t bytes = sf_tensor_nbytes(c.residual);
            copy = sf_scratch(a->L, SF_DEV_CPU, bytes, "the residual");
            memcpy(copy, res, bytes);
            res = copy;
        }
        sf_ffn_ref_cpu(&r);
        if (res)
            for (int64_t i = 0; i < c.T * c.H; i++)
                sf_store_from_double(c.out->data, ot, i, sf_load_as_double(c.out->data, ot, i) + sf_load_as_double(res, ot, i));
        return;
    }
#ifdef SF_HAVE_CUDA
    if (fp8) {
        sf_op_check_fp8_gpu(a, "e4m3 inputs");
        if (c.impl == IMPL_UNFUSED) {
            /* cuBLASLt's FP8 GEMM: k and n multiples of 16, 16-byte aligned operands */
            if (c.H % 16 || c.I % 16)
                sf_op_error(a, "impl 'unfused' with e4m3 inputs needs hidden (%lld) and intermediate (%lld) sizes that "
                            "are multiples of 16", (long long)c.H, (long long)c.I);
            const sf_tensor *const aligned[] = {c.x, c.w1, c.w3, c.w2, c.out, c.residual};
            check_fp8_aligned(&c, "unfused", "x, w1, w3, w2, out and residual", aligned, sizeof aligned / sizeof *aligned);
            unfused_fp8(&c);
            return;
        }
    }
    if (c.impl == IMPL_UNFUSED) unfused(&c);
    else if (c.impl == IMPL_GEMV) gemv_only(&c);
    else fused(&c);
#endif
}

const sf_op sf_op_ffn = {"ffn", "feed-forward network: GELU MLP or SwiGLU; impl unfused (PyTorch-eager "
                         "equivalent) or fused (activation in the first GEMM's epilogue)", ffn_args, run_ffn};

static const sf_arg_spec pack_args[] = {
    {"w1", SF_ARG_TENSOR, 1, NULL, "gate weight [I, H]"},
    {"w3", SF_ARG_TENSOR, 1, NULL, "up weight [I, H]"},
    {"out", SF_ARG_TENSOR, 1, NULL, "[2I, H]: blocks of 8 gate rows then 8 up rows, written"},
    {"stream", SF_ARG_STREAM, 0, NULL, "stream to run on"},
    {NULL, 0, 0, NULL, NULL}};

static void run_pack(sf_op_args *a)
{
    static const char *const tensors[] = {"w1", "w3", "out", NULL};
    sf_tensor *w1 = sf_arg_tensor(a, "w1"), *w3 = sf_arg_tensor(a, "w3"), *out = sf_arg_tensor(a, "out");
    sf_device_kind dev = sf_op_device(a, tensors);
    if (w1->ndim != 2) sf_op_error(a, "'w1' must be [I, H], got %d dimensions", w1->ndim);
    int64_t I = w1->shape[0], H = w1->shape[1];
    if (I % SF_SWIGLU_INTERLEAVE) sf_op_error(a, "the intermediate size (%lld) must be a multiple of %d", (long long)I, SF_SWIGLU_INTERLEAVE);
    check_matrix(a, "w1", w1, I, H, w1);
    check_matrix(a, "w3", w3, I, H, w1);
    check_matrix(a, "out", out, 2 * I, H, w1);
    if (dev == SF_DEV_CPU) {
        size_t row = (size_t)H * sf_dtype_size(w1->dtype);
        for (int64_t r = 0; r < 2 * I; r++) {
            int64_t block = r / (2 * SF_SWIGLU_INTERLEAVE), k = r % (2 * SF_SWIGLU_INTERLEAVE);
            const sf_tensor *src = k < SF_SWIGLU_INTERLEAVE ? w1 : w3;
            int64_t src_row = block * SF_SWIGLU_INTERLEAVE + k % SF_SWIGLU_INTERLEAVE;
            memcpy((char *)out->data + (size_t)r * row, (const char *)src->data + (size_t)src_row * row, row);
        }
        return;
    }
#ifdef SF_HAVE_CUDA
    SF_CUDA(a->L, sf_interleave_gate_up_cuda(sf_dtype_size(w1->dtype), w1->data, w3->data, out->data, I, H,
                                             sf_arg_stream(a)));
#endif
}

const sf_op sf_op_pack_gate_up = {"pack_gate_up", "interleave SwiGLU's gate (W1) and up (W3) weights for ffn impl fused",
                                  pack_args, run_pack};

static const sf_arg_spec swiglu_args[] = {
    {"gate", SF_ARG_TENSOR, 1, NULL, "x·W1ᵀ [T, I], contiguous"},
    {"up", SF_ARG_TENSOR, 1, NULL, "x·W3ᵀ, gate's shape and dtype, contiguous"},
    {"out", SF_ARG_TENSOR, 1, NULL, "silu(gate) ⊙ up, gate's shape, written; may be gate itself, not up"},
    {"stream", SF_ARG_STREAM, 0, NULL, "stream to run on"},
    {NULL, 0, 0, NULL, NULL}};

/* the unfused FFN's two elementwise steps, each rounded to the dtype as PyTorch eager's
 * F.silu(gate) * up: silu into out, then out·up into out */
static void run_swiglu(sf_op_args *a)
{
    static const char *const tensors[] = {"gate", "up", "out", NULL};
    sf_tensor *gate = sf_arg_tensor(a, "gate"), *up = sf_arg_tensor(a, "up"), *out = sf_arg_tensor(a, "out");
    sf_device_kind dev = sf_op_device(a, tensors);
    const unsigned dtypes = sf_op_model_dtypes(dev);
    sf_op_check_dtype(a, "gate", gate, dtypes);
    if (gate->ndim != 2) sf_op_error(a, "'gate' must be [T, I], got %d dimensions", gate->ndim);
    check_matrix(a, "gate", gate, gate->shape[0], gate->shape[1], gate);
    check_matrix(a, "up", up, gate->shape[0], gate->shape[1], gate);
    check_matrix(a, "out", out, gate->shape[0], gate->shape[1], gate);
    sf_op_check_alias(a, "out", out, "gate", gate, 1);
    sf_op_check_alias(a, "out", out, "up", up, 0);
    sf_dtype dt = gate->dtype;
    int64_t n = gate->shape[0] * gate->shape[1];
    if (dev == SF_DEV_CPU) {
        for (int64_t i = 0; i < n; i++) {
            double g = sf_load_as_double(gate->data, dt, i);
            sf_store_from_double(out->data, dt, i, g / (1.0 + exp(-g)));
            sf_store_from_double(out->data, dt, i, sf_load_as_double(out->data, dt, i) * sf_load_as_double(up->data, dt, i));
        }
        return;
    }
#ifdef SF_HAVE_CUDA
    void *stream = sf_arg_stream(a);
    SF_CUDA(a->L, sf_act_cuda(SF_EPI_SILU, dt, gate->data, out->data, n, stream));
    SF_CUDA(a->L, sf_mul_cuda(dt, out->data, up->data, out->data, n, stream));
#endif
}

const sf_op sf_op_swiglu = {"swiglu", "SwiGLU's activation alone: silu(gate) ⊙ up, each step rounded to the dtype "
                            "(the unfused ffn's)", swiglu_args, run_swiglu};
