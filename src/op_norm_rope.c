/* The memory-bound ops of a Llama decoder layer: rmsnorm, add_rmsnorm (the residual add fused
 * into the norm), rope (in place, on a strided view such as the q and k heads of a packed QKV
 * buffer) and add. The CPU backend runs the double-math references; kernels/norm_rope.h
 * defines each op exactly. Every argument is checked before anything is launched. */
#include "config.h"
#include <math.h>
#include <string.h>
#include "ops.h"
#include "norm_rope.h"
#ifdef SF_HAVE_CUDA
#include "cuda_check.h"
#endif

#define NORM_EPS_DOC "added to mean(x²) before the square root (Llama-2: 1e-5)"
#define OUT_SCALE_DOC "f32 [T], written: out in e4m3, each row quantized as quantize does per row (scale = amax / 448) " \
                      "from its values before any rounding: the norm and an FP8 GEMM's input in one pass"

static const sf_arg_spec rmsnorm_args[] = {
    {"x", SF_ARG_TENSOR, 1, NULL, "input [T, H] (rows may be strided)"},
    {"weight", SF_ARG_TENSOR, 1, NULL, "scale [H], contiguous"},
    {"out", SF_ARG_TENSOR, 1, NULL, "output [T, H], written; may be x itself; e4m3 with out_scale"},
    {"eps", SF_ARG_NUMBER, 0, "1e-5", NORM_EPS_DOC},
    {"out_scale", SF_ARG_TENSOR, 0, NULL, OUT_SCALE_DOC},
    {"stream", SF_ARG_STREAM, 0, NULL, "stream to run on"},
    {NULL, 0, 0, NULL, NULL}};

static const sf_arg_spec add_rmsnorm_args[] = {
    {"x", SF_ARG_TENSOR, 1, NULL, "the branch output [T, H] (attention or FFN), read"},
    {"residual", SF_ARG_TENSOR, 1, NULL, "the residual stream [T, H]: replaced by x + residual (rounded to its dtype)"},
    {"weight", SF_ARG_TENSOR, 1, NULL, "scale [H], contiguous"},
    {"out", SF_ARG_TENSOR, 1, NULL, "rmsnorm(x + residual)·weight [T, H], written; may be x, must not overlap residual; "
     "e4m3 with out_scale"},
    {"eps", SF_ARG_NUMBER, 0, "1e-5", NORM_EPS_DOC},
    {"out_scale", SF_ARG_TENSOR, 0, NULL, OUT_SCALE_DOC},
    {"stream", SF_ARG_STREAM, 0, NULL, "stream to run on"},
    {NULL, 0, 0, NULL, NULL}};

static const sf_arg_spec rope_args[] = {
    {"x", SF_ARG_TENSOR, 1, NULL, "[B, N, heads, D], rotated in place; may be a strided view (q and k heads of a packed QKV)"},
    {"pos_offset", SF_ARG_INTEGER, 0, "0", "position of token n is pos_offset + n (a KV cache's length when decoding)"},
    {"theta", SF_ARG_NUMBER, 0, "10000", "frequency base: pair i turns at theta^(-2i/D) radians per position"},
    {"positions", SF_ARG_TENSOR, 0, NULL, "i32 [B] instead of pos_offset: token n of row b is at positions[b] + n "
     "(each sequence's own length when decoding a batch)"},
    {"stream", SF_ARG_STREAM, 0, NULL, "stream to run on"},
    {NULL, 0, 0, NULL, NULL}};

static const sf_arg_spec add_args[] = {
    {"a", SF_ARG_TENSOR, 1, NULL, "first operand, any shape"},
    {"b", SF_ARG_TENSOR, 1, NULL, "second operand, a's shape"},
    {"out", SF_ARG_TENSOR, 1, NULL, "a + b, a's shape, written; may be a or b itself"},
    {"stream", SF_ARG_STREAM, 0, NULL, "stream to run on"},
    {NULL, 0, 0, NULL, NULL}};

static void check_eps(sf_op_args *a, double eps)
{
    if (!(eps >= 0) || isinf(eps)) sf_op_error(a, "'eps' must be a finite number >= 0, got %g", eps);
}

/* ---- rmsnorm and add_rmsnorm -------------------------------------------------------------- */

static void check_rows(sf_op_args *a, const char *name, const sf_tensor *t, const sf_tensor *like)
{
    if (t != like) {
        sf_op_check_dtype(a, name, t, SF_DT(like->dtype));
        sf_op_check_shape(a, name, t, 2, like->shape);
    } else if (t->ndim != 2) {
        sf_op_error(a, "'%s' must be [T, H], got %d dimensions", name, t->ndim);
    }
    sf_op_check_last_dense(a, name, t);
}

static void run_norm(sf_op_args *a, int fused)
{
    static const char *const tensors[] = {"x", "residual", "weight", "out", "out_scale", NULL};
    static const char *const plain_tensors[] = {"x", "weight", "out", "out_scale", NULL};
    sf_tensor *x = sf_arg_tensor(a, "x"), *w = sf_arg_tensor(a, "weight"), *out = sf_arg_tensor(a, "out");
    sf_tensor *res = fused ? sf_arg_tensor(a, "residual") : NULL, *os = sf_arg_tensor(a, "out_scale");
    sf_device_kind dev = sf_op_device(a, fused ? tensors : plain_tensors);
    sf_op_check_dtype(a, "x", x, sf_op_model_dtypes(dev));
    check_rows(a, "x", x, x);
    if (res) check_rows(a, "residual", res, x);
    if (os) {
        /* e4m3 out with its scale per row; 16-bit x only on the GPU (sf_op_model_dtypes) */
        sf_op_check_dtype(a, "out", out, SF_DT(SF_E4M3));
        sf_op_check_shape(a, "out", out, 2, x->shape);
        sf_op_check_last_dense(a, "out", out);
        sf_op_check_dtype(a, "out_scale", os, SF_DT(SF_F32));
        sf_op_check_shape(a, "out_scale", os, 1, x->shape);
        if (!sf_tensor_is_contiguous(os)) sf_op_error(a, "'out_scale' must be contiguous");
    } else {
        if (out->dtype == SF_E4M3) sf_op_error(a, "an e4m3 'out' needs 'out_scale', the f32 [T] its rows' scales go to");
        check_rows(a, "out", out, x);
    }
    int64_t H = x->shape[1];
    sf_op_check_dtype(a, "weight", w, SF_DT(x->dtype));
    sf_op_check_shape(a, "weight", w, 1, &H);
    if (!sf_tensor_is_contiguous(w)) sf_op_error(a, "'weight' must be contiguous");
    double eps = sf_arg_number(a, "eps", 1e-5);
    check_eps(a, eps);
    sf_op_check_alias(a, "out", out, "x", x, !os);
    sf_op_check_alias(a, "out", out, "weight", w, 0);
    if (os) {
        sf_op_check_alias(a, "out_scale", os, "x", x, 0);
        sf_op_check_alias(a, "out_scale", os, "out", out, 0);
        sf_op_check_alias(a, "out_scale", os, "weight", w, 0);
        if (res) sf_op_check_alias(a, "out_scale", os, "residual", res, 0);
    }
    if (res) {
        sf_op_check_alias(a, "out", out, "residual", res, 0);
        sf_op_check_alias(a, "residual", res, "x", x, 1);
        sf_op_check_alias(a, "residual", res, "weight", w, 0);
    }
    sf_rmsnorm_args r = {0};
    r.dtype = x->dtype;
    r.rows = x->shape[0];
    r.hidden = H;
    r.x = x->data;
    r.x_stride = x->stride[0];
    r.residual = res ? res->data : NULL;
    r.residual_stride = res ? res->stride[0] : 0;
    r.weight = w->data;
    r.out = out->data;
    r.out_stride = out->stride[0];
    r.eps = eps;
    r.out_scale = os ? (float *)os->data : NULL;
    void *stream = sf_arg_stream(a);
    if (dev == SF_DEV_CPU) {
        sf_rmsnorm_ref_cpu(&r);
        return;
    }
#ifdef SF_HAVE_CUDA
    SF_CUDA(a->L, sf_rmsnorm_cuda(&r, stream));
#else
    (void)stream;
#endif
}

static void run_rmsnorm(sf_op_args *a) { run_norm(a, 0); }
static void run_add_rmsnorm(sf_op_args *a) { run_norm(a, 1); }

const sf_op sf_op_rmsnorm = {"rmsnorm", "Llama's RMSNorm of each row: x / sqrt(mean(x²) + eps) · weight, fp32 math",
                             rmsnorm_args, run_rmsnorm};

const sf_op sf_op_add_rmsnorm = {"add_rmsnorm", "residual add fused with RMSNorm, one pass: residual = x + residual, "
                                 "out = rmsnorm(residual)·weight", add_rmsnorm_args, run_add_rmsnorm};

/* ---- rope ----------------------------------------------------------------------------------- */

void sf_op_rope_heads(sf_op_args *a, const char *name, const sf_tensor *x, sf_rope_args *r)
{
    if (x->ndim != 4) sf_op_error(a, "'%s' must be [B, N, heads, D], got %d dimensions", name, x->ndim);
    sf_op_check_last_dense(a, name, x);
    int64_t D = x->shape[3];
    if (D % 2 || D > SF_ROPE_MAX_HEAD_DIM)
        sf_op_error(a, "the head dim (%lld, dimension 4 of '%s') must be even and at most %d", (long long)D, name,
                    SF_ROPE_MAX_HEAD_DIM);
    double theta = sf_arg_number(a, "theta", 10000.0);
    if (!(theta > 0) || isinf(theta) || !isfinite((float)theta))
        sf_op_error(a, "'theta' must be a positive finite number (fp32), got %g", theta);
    memset(r, 0, sizeof *r);
    r->dtype = x->dtype;
    r->batch = x->shape[0];
    r->seq = x->shape[1];
    r->heads = x->shape[2];
    r->head_dim = D;
    r->x = x->data;
    for (int d = 0; d < 3; d++) r->stride[d] = x->stride[d];
    sf_rope_inv_freq(r->inv_freq, D, theta);
}

void sf_op_rope_setup(sf_op_args *a, const char *name, const sf_tensor *x, sf_rope_args *r)
{
    sf_op_rope_heads(a, name, x, r);
    lua_Integer pos_offset = sf_arg_integer(a, "pos_offset", 0);
    if (pos_offset < 0) sf_op_error(a, "'pos_offset' must be >= 0, got %lld", (long long)pos_offset);
    /* positions are fp32 in the angle, as in HF: exact only below 2^24 */
    if (pos_offset > ((lua_Integer)1 << 24) - x->shape[1])
        sf_op_error(a, "positions reach %lld (pos_offset %lld + N %lld): at most 2^24 = 16777216, where fp32 "
                    "positions stop being exact", (long long)(pos_offset + x->shape[1]), (long long)pos_offset,
                    (long long)x->shape[1]);
    r->pos_offset = pos_offset;
}

/* rope's per-row first positions: i32 [B], instead of pos_offset; their values are read only
 * on the CPU backend (the GPU would need a sync) */
static void rope_positions(sf_op_args *a, const sf_tensor *pos, sf_device_kind dev, sf_rope_args *r)
{
    if (sf_arg_integer(a, "pos_offset", 0) != 0) sf_op_error(a, "give 'pos_offset' or 'positions', not both");
    sf_op_check_dtype(a, "positions", pos, SF_DT(SF_I32));
    sf_op_check_shape(a, "positions", pos, 1, &r->batch);
    if (!sf_tensor_is_contiguous(pos)) sf_op_error(a, "'positions' must be contiguous");
    r->positions = (const int32_t *)pos->data;
    if (dev != SF_DEV_CPU) return;
    for (int64_t b = 0; b < r->batch; b++)
        if (r->positions[b] < 0 || r->positions[b] > ((int64_t)1 << 24) - r->seq)
            sf_op_error(a, "positions[%lld] is %d: positions are >= 0 and reach at most 2^24 = 16777216 (N %lld)",
                        (long long)b + 1, (int)r->positions[b], (long long)r->seq);
}

static void run_rope(sf_op_args *a)
{
    static const char *const tensors[] = {"x", "positions", NULL};
    sf_tensor *x = sf_arg_tensor(a, "x"), *pos = sf_arg_tensor(a, "positions");
    sf_device_kind dev = sf_op_device(a, tensors);
    sf_op_check_dtype(a, "x", x, sf_op_model_dtypes(dev));
    sf_rope_args r;
    sf_op_rope_setup(a, "x", x, &r);
    if (pos) rope_positions(a, pos, dev, &r);
    void *stream = sf_arg_stream(a);
    if (dev == SF_DEV_CPU) {
        sf_rope_ref_cpu(&r);
        return;
    }
#ifdef SF_HAVE_CUDA
    SF_CUDA(a->L, sf_rope_cuda(&r, stream));
#else
    (void)stream;
#endif
}

const sf_op sf_op_rope = {"rope", "rotary position embedding in place, Llama-2/HF rotate_half convention, "
                          "fp32 angles and math", rope_args, run_rope};

/* ---- add ------------------------------------------------------------------------------------ */

static void run_add(sf_op_args *a)
{
    static const char *const tensors[] = {"a", "b", "out", NULL};
    sf_tensor *x = sf_arg_tensor(a, "a"), *y = sf_arg_tensor(a, "b"), *out = sf_arg_tensor(a, "out");
    sf_device_kind dev = sf_op_device(a, tensors);
    sf_op_check_dtype(a, "a", x, sf_op_model_dtypes(dev));
    sf_op_check_dtype(a, "b", y, SF_DT(x->dtype));
    sf_op_check_dtype(a, "out", out, SF_DT(x->dtype));
    sf_op_check_shape(a, "b", y, x->ndim, x->shape);
    sf_op_check_shape(a, "out", out, x->ndim, x->shape);
    sf_op_check_last_dense(a, "a", x);
    sf_op_check_last_dense(a, "b", y);
    sf_op_check_last_dense(a, "out", out);
    sf_op_check_alias(a, "out", out, "a", x, 1);
    sf_op_check_alias(a, "out", out, "b", y, 1);
    sf_add_args r;
    memset(&r, 0, sizeof r);
    r.dtype = x->dtype;
    r.ndim = x->ndim;
    for (int d = 0; d < x->ndim; d++) {
        r.shape[d] = x->shape[d];
        r.a_stride[d] = x->stride[d];
        r.b_stride[d] = y->stride[d];
        r.out_stride[d] = out->stride[d];
    }
    r.a = x->data;
    r.b = y->data;
    r.out = out->data;
    void *stream = sf_arg_stream(a);
    if (dev == SF_DEV_CPU) {
        sf_add_ref_cpu(&r);
        return;
    }
#ifdef SF_HAVE_CUDA
    SF_CUDA(a->L, sf_add_cuda(&r, stream));
#else
    (void)stream;
#endif
}

const sf_op sf_op_add = {"add", "elementwise a + b (the residual add), fp32 math; out may be a or b", add_args, run_add};
