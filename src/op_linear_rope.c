/* The linear_rope op: a Linear projection whose output is heads, the first rope_heads of them
 * turned by the rotary position embedding: Llama's packed QKV projection with RoPE on q and k.
 * unfused is cuBLASLt's GEMM and then the rope kernel over the q and k heads; fused rotates the
 * fp32 accumulators in our Hopper GEMM's epilogue (SF_EPI_ROPE), which saves the rope pass's
 * read and write of q and k. x and w may be e4m3 with their scales (an FP8 layer's QKV
 * projection): the product is scaled on the fp32 accumulators before the rotation, with fast
 * accumulation on the GPU (cuBLASLt's fast_accum, which our GEMM's wgmma always does). The CPU
 * backend runs the two references in turn. */
#include "config.h"
#include <stdint.h>
#include <string.h>
#include "ops.h"
#include "gemm.h"
#include "norm_rope.h"
#ifdef SF_HAVE_CUDA
#include "cuda_check.h"
#include "autotune.h"
#endif
#ifdef SF_HAVE_HOPPER
#include "gemm_hopper.h"
#endif

static const sf_arg_spec linear_rope_args[] = {
    {"x", SF_ARG_TENSOR, 1, NULL, "input [B·N, K], contiguous (row b·N + n is token n of sequence b); out's dtype, "
     "or e4m3 with x_scale"},
    {"w", SF_ARG_TENSOR, 1, NULL, "weight [heads·D, K], contiguous (a Linear weight, e.g. [Wq; Wk; Wv]); x's dtype, "
     "with w_scale when e4m3"},
    {"x_scale", SF_ARG_TENSOR, 0, NULL, "f32 [B·N] (one a token) or [1]: the dequantization scale of an e4m3 'x'"},
    {"w_scale", SF_ARG_TENSOR, 0, NULL, "f32 [heads·D] (one an output channel) or [1]: the dequantization scale of an "
     "e4m3 'w'; per row or per tensor as x_scale is (with one token, x_scale [1] goes with either)"},
    {"out", SF_ARG_TENSOR, 1, NULL, "[B, N, heads, D], contiguous, written: x·wᵀ with its first rope_heads heads rotated"},
    {"rope_heads", SF_ARG_INTEGER, 1, NULL, "how many heads, from the first, get RoPE (q and k: H + Hkv; v is not rotated)"},
    {"pos_offset", SF_ARG_INTEGER, 0, "0", "position of token n is pos_offset + n"},
    {"theta", SF_ARG_NUMBER, 0, "10000", "frequency base, as rope's"},
    {"impl", SF_ARG_STRING, 0, "fastest",
     "unfused (cuBLASLt GEMM, then the rope kernel); fused (RoPE in our Hopper GEMM's epilogue: cc 9.0, "
     "f16/bf16 or e4m3 x and w, D = 128, K a multiple of 64, x, w and out 16-byte aligned); fastest (whichever ran faster on "
     "the first call of the shape; unfused where fused does not apply)"},
    {"stream", SF_ARG_STREAM, 0, NULL, "stream to run on"},
    {NULL, 0, 0, NULL, NULL}};

typedef struct linear_rope_call {
    sf_op_args *a;
    const sf_tensor *x, *w, *out;
    const float *x_scale, *w_scale; /* e4m3 x and w */
    int scale_rows;                 /* x_scale [T] and w_scale [N], else [1] each */
    sf_rope_args rope;          /* the first rope_heads heads of out */
    int64_t T, N, K;
    void *stream;
} linear_rope_call;

/* the product out = x·wᵀ as one GEMM description, scaled when x and w are e4m3 */
static void product_desc(const linear_rope_call *c, sf_gemm_desc *d)
{
    sf_linear_desc(d, c->x->data, c->w->data, NULL, NULL, c->out->data, c->T, c->N, c->K, c->x->dtype, SF_EPI_NONE);
    if (c->x->dtype == SF_E4M3) {
        d->c_dtype = c->out->dtype;
        d->a_scale = c->x_scale;
        d->b_scale = c->w_scale;
        d->a_scale_rows = d->b_scale_rows = c->scale_rows;
        d->fast_accum = 1;
    }
}

#ifdef SF_HAVE_CUDA
static void run_unfused(void *ctx)
{
    linear_rope_call *c = (linear_rope_call *)ctx;
    sf_gemm_desc d;
    product_desc(c, &d);
    sf_gemm_cuda(c->a->L, &d, c->stream);
    if (c->rope.heads > 0) SF_CUDA(c->a->L, sf_rope_cuda(&c->rope, c->stream));
}
#endif

#ifdef SF_HAVE_HOPPER
/* Why the fused form cannot take this call, or NULL. */
static const char *fused_unfit(const linear_rope_call *c)
{
    if (!sf_hopper_kernels()) return "needs a Hopper GPU (cc 9.0)";
    if (c->rope.head_dim != SF_GEMM_ROPE_HEAD_DIM) return "needs a head dim of 128";
    if (c->K % 64) return "needs K, the inner dimension, a multiple of 64";
    if ((uintptr_t)c->x->data % 16 || (uintptr_t)c->w->data % 16 || (uintptr_t)c->out->data % 16)
        return "needs x, w and out 16-byte aligned";
    return NULL;
}

static void run_fused(void *ctx)
{
    linear_rope_call *c = (linear_rope_call *)ctx;
    sf_gemm_epi_args g =
        sf_gemm_epi_linear(c->out->dtype, SF_EPI_ROPE, c->x->data, c->w->data, NULL, c->out->data, c->T, c->N, c->K);
    g.in_dtype = c->x->dtype;
    g.a_scale = c->x_scale;
    g.b_scale = c->w_scale;
    g.a_scale_rows = g.b_scale_rows = c->scale_rows;
    g.rope_cols = c->rope.heads * c->rope.head_dim;
    g.rope_seq = c->rope.seq;
    g.rope_pos_offset = c->rope.pos_offset;
    memcpy(g.rope_inv_freq, c->rope.inv_freq, sizeof g.rope_inv_freq);
    SF_CUDA(c->a->L, sf_gemm_epilogue_cuda(&g, c->stream));
}
#endif

/* e4m3 x and w: their scales, f32 [T] and [N] (per token, per output channel) or [1] each, both
 * per row or both per tensor */
static void fp8_scales(sf_op_args *a, linear_rope_call *c)
{
    const int fp8 = c->x->dtype == SF_E4M3;
    int x_rows, w_rows;
    c->x_scale = sf_op_fp8_scale(a, "x_scale", "x", c->x->dtype, fp8, (sf_fp8_scale_form){c->T, "token", 1, 0}, &x_rows);
    c->w_scale = sf_op_fp8_scale(a, "w_scale", "w", c->w->dtype, fp8, (sf_fp8_scale_form){c->N, "output channel", 1, 0},
                                 &w_rows);
    if (x_rows != w_rows && c->T != 1 && c->N != 1)
        sf_op_error(a, "'x_scale' and 'w_scale' must both be per row ([%lld] and [%lld]) or both per tensor ([1])",
                    (long long)c->T, (long long)c->N);
    c->scale_rows = x_rows || w_rows;
}

static void run_linear_rope(sf_op_args *a)
{
    static const char *const tensors[] = {"x", "w", "x_scale", "w_scale", "out", NULL};
    static const char *const impls[] = {"unfused", "fused", "fastest", NULL};
    enum { UNFUSED, FUSED, FASTEST };
    linear_rope_call c;
    memset(&c, 0, sizeof c);
    c.a = a;
    c.x = sf_arg_tensor(a, "x");
    c.w = sf_arg_tensor(a, "w");
    c.out = sf_arg_tensor(a, "out");
    sf_device_kind dev = sf_op_device(a, tensors);
    const sf_tensor *x = c.x, *w = c.w, *out = c.out;
    const unsigned dtypes = sf_op_model_dtypes(dev);
    sf_op_check_dtype(a, "x", x, dtypes | SF_DT(SF_E4M3));
    sf_op_check_dtype(a, "w", w, SF_DT(x->dtype));
    sf_op_check_dtype(a, "out", out, x->dtype == SF_E4M3 ? dtypes : SF_DT(x->dtype));
    if (x->ndim != 2) sf_op_error(a, "'x' must be [B·N, K], got %d dimensions", x->ndim);
    if (w->ndim != 2) sf_op_error(a, "'w' must be [heads·D, K], got %d dimensions", w->ndim);
    sf_op_rope_setup(a, "out", out, &c.rope);
    if (!sf_tensor_is_contiguous(x)) sf_op_error(a, "'x' must be contiguous");
    if (!sf_tensor_is_contiguous(w)) sf_op_error(a, "'w' must be contiguous");
    if (!sf_tensor_is_contiguous(out)) sf_op_error(a, "'out' must be contiguous");
    c.T = out->shape[0] * out->shape[1];
    c.N = out->shape[2] * out->shape[3];
    c.K = x->shape[1];
    int64_t want_x[2] = {c.T, c.K}, want_w[2] = {c.N, c.K};
    sf_op_check_shape(a, "x", x, 2, want_x);
    sf_op_check_shape(a, "w", w, 2, want_w);
    fp8_scales(a, &c);
    lua_Integer rope_heads = sf_arg_integer(a, "rope_heads", 0);
    if (rope_heads < 0 || rope_heads > out->shape[2])
        sf_op_error(a, "'rope_heads' must be between 0 and the %lld heads of 'out', got %lld", (long long)out->shape[2],
                    (long long)rope_heads);
    c.rope.heads = rope_heads;
    int impl = sf_arg_choice(a, "impl", impls, FASTEST);
    c.stream = sf_arg_stream(a);

    if (dev == SF_DEV_CPU) {
        sf_gemm_desc d;
        product_desc(&c, &d);
        if (sf_gemm_ref_cpu(&d) != 0) sf_op_error(a, "out of host memory for the reference's operands");
        if (c.rope.heads > 0) sf_rope_ref_cpu(&c.rope);
        return;
    }
#ifdef SF_HAVE_CUDA
    if (x->dtype == SF_E4M3) {
        sf_op_check_fp8_gpu(a, "e4m3 'x' and 'w'");
        /* cuBLASLt's FP8 GEMM (unfused): k and n multiples of 16, 16-byte aligned operands */
        if (c.K % 16 || c.N % 16)
            sf_op_error(a, "e4m3 'x' and 'w' on the GPU need K (%lld) and heads·D (%lld) multiples of 16", (long long)c.K,
                        (long long)c.N);
        if ((uintptr_t)x->data % 16 || (uintptr_t)w->data % 16 || (uintptr_t)out->data % 16)
            sf_op_error(a, "e4m3 'x' and 'w' on the GPU need x, w and out 16-byte aligned");
    }
#endif
#ifdef SF_HAVE_HOPPER
    if (impl != UNFUSED) {
        const char *why = fused_unfit(&c);
        if (why && impl == FUSED) sf_op_error(a, "impl 'fused' %s", why);
        if (!why) {
            if (impl == FUSED) {
                run_fused(&c);
            } else {
                sf_choice_key key = {SF_CHOICE_LINEAR_ROPE, x->dtype, c.scale_rows | (int)out->dtype << 1,
                                     {c.T, c.N, c.K, c.rope.heads}};
                sf_run_faster(a->L, &key, run_unfused, run_fused, &c, c.stream, 1);
            }
            return;
        }
    }
#endif
#ifdef SF_HAVE_CUDA
    if (impl == FUSED) sf_op_error(a, "impl 'fused' needs sfbench built for sm_90a");
    run_unfused(&c);
#else
    (void)impl;
#endif
}

const sf_op sf_op_linear_rope = {"linear_rope", "projection to heads with RoPE on the first rope_heads of them (a QKV "
                                 "projection), unfused (GEMM, then rope) or with RoPE in the GEMM's epilogue",
                                 linear_rope_args, run_linear_rope};
