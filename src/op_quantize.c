/* The quantize and dequantize ops: a tensor to e4m3 or e5m2 with a per-tensor or per-row f32
 * scale, and back (kernels/quantize.h has the conventions). The scale's shape says which: [1]
 * for one scale, x's shape without its last dimension for one a row. */
#include "config.h"
#include "ops.h"
#include "quantize.h"
#ifdef SF_HAVE_CUDA
#include "cuda_check.h"
#endif

static const sf_arg_spec quantize_args[] = {
    {"x", SF_ARG_TENSOR, 1, NULL, "f32, f16 or bf16 (f64 on the CPU), rows of the last dimension dense"},
    {"out", SF_ARG_TENSOR, 1, NULL, "e4m3 or e5m2, x's shape, written: x / scale, rounded and saturated"},
    {"scale", SF_ARG_TENSOR, 1, NULL, "f32, written (read with fixed_scale): [1] (per tensor) or x's shape without its "
                                      "last dimension (per row): amax / the format's largest value"},
    {"fixed_scale", SF_ARG_BOOL, 0, "false", "scale is read, not written: a scale fixed ahead (static quantization)"},
    {"stream", SF_ARG_STREAM, 0, NULL, "stream to run on"},
    {NULL, 0, 0, NULL, NULL}};

static const sf_arg_spec dequantize_args[] = {
    {"x", SF_ARG_TENSOR, 1, NULL, "e4m3 or e5m2, rows of the last dimension dense"},
    {"scale", SF_ARG_TENSOR, 1, NULL, "f32: [1] (per tensor) or x's shape without its last dimension (per row)"},
    {"out", SF_ARG_TENSOR, 1, NULL, "f32, f16 or bf16 (f64 on the CPU), x's shape, written: x · scale"},
    {"stream", SF_ARG_STREAM, 0, NULL, "stream to run on"},
    {NULL, 0, 0, NULL, NULL}};

/* rows of the last dimension: their count and stride, the rows dense and evenly spaced */
static void rows_of(sf_op_args *a, const char *name, const sf_tensor *t, int64_t *rows, int64_t *cols, int64_t *ld)
{
    if (t->ndim < 1) sf_op_error(a, "'%s' must have at least one dimension", name);
    *cols = t->shape[t->ndim - 1];
    *rows = *cols ? t->numel / *cols : 0;
    sf_op_check_last_dense(a, name, t);
    *ld = t->ndim > 1 ? t->stride[t->ndim - 2] : *cols;
    int64_t span = *ld;
    for (int d = t->ndim - 2; d > 0; d--) {
        span *= t->shape[d];
        if (t->shape[d - 1] > 1 && t->stride[d - 1] != span)
            sf_op_error(a, "'%s' must have evenly spaced rows (dimensions 1..%d must merge into one)", name, t->ndim - 1);
    }
    if (*ld < *cols && *rows > 1) sf_op_error(a, "'%s' has rows that overlap", name);
}

/* the scale's shape: [1] per tensor, x's without its last dimension per row; sets *per_row */
static void check_scale(sf_op_args *a, const sf_tensor *scale, const sf_tensor *x, int *per_row)
{
    sf_op_check_dtype(a, "scale", scale, SF_DT(SF_F32));
    if (!sf_tensor_is_contiguous(scale)) sf_op_error(a, "'scale' must be contiguous");
    *per_row = !(scale->ndim == 1 && scale->shape[0] == 1);
    if (*per_row) {
        if (x->ndim < 2)
            sf_op_error(a, "'scale' must be [1]: a per-row scale needs 'x' of 2 or more dimensions, 'x' has %d", x->ndim);
        sf_op_check_shape(a, "scale", scale, x->ndim - 1, x->shape);
    }
}

/* The arguments of either op, checked: quantizing takes a float x to an fp8 out, dequantizing
 * the other way; returns the device */
static sf_device_kind describe(sf_op_args *a, sf_quantize_args *q, int quantizing)
{
    static const char *const tensors[] = {"x", "out", "scale", NULL};
    sf_tensor *x = sf_arg_tensor(a, "x"), *out = sf_arg_tensor(a, "out"), *scale = sf_arg_tensor(a, "scale");
    sf_device_kind dev = sf_op_device(a, tensors);
    const unsigned floats = SF_DT(SF_F32) | SF_DT(SF_F16) | SF_DT(SF_BF16) | (dev == SF_DEV_CPU ? SF_DT(SF_F64) : 0);
    const unsigned fp8 = SF_DT(SF_E4M3) | SF_DT(SF_E5M2);
    sf_op_check_dtype(a, "x", x, quantizing ? floats : fp8);
    sf_op_check_dtype(a, "out", out, quantizing ? fp8 : floats);
    int64_t out_rows, out_cols;
    sf_op_check_shape(a, "out", out, x->ndim, x->shape);
    rows_of(a, "x", x, &q->rows, &q->cols, &q->ld_x);
    rows_of(a, "out", out, &out_rows, &out_cols, &q->ld_out);
    check_scale(a, scale, x, &q->per_row);
    q->x_dtype = x->dtype;
    q->out_dtype = out->dtype;
    q->x = x->data;
    q->out = out->data;
    q->scale = (float *)scale->data;
    return dev;
}

static void run_quantize(sf_op_args *a)
{
    sf_quantize_args q = {0};
    const sf_device_kind dev = describe(a, &q, 1);
    q.fixed_scale = sf_arg_bool(a, "fixed_scale", 0);
    if (dev == SF_DEV_CPU) {
        sf_quantize_ref_cpu(&q);
        return;
    }
#ifdef SF_HAVE_CUDA
    void *ws = q.per_row || q.fixed_scale ? NULL : sf_scratch(a->L, SF_DEV_CUDA, sizeof(unsigned), "the quantization's amax");
    SF_CUDA(a->L, sf_quantize_cuda(&q, ws, sf_arg_stream(a)));
#endif
}

static void run_dequantize(sf_op_args *a)
{
    sf_quantize_args q = {0};
    if (describe(a, &q, 0) == SF_DEV_CPU) {
        sf_dequantize_ref_cpu(&q);
        return;
    }
#ifdef SF_HAVE_CUDA
    SF_CUDA(a->L, sf_dequantize_cuda(&q, sf_arg_stream(a)));
#endif
}

const sf_op sf_op_quantize = {"quantize",
                              "to e4m3 or e5m2 with a per-tensor or per-row scale from the amax, or a fixed one (x ≈ out·scale)",
                              quantize_args, run_quantize};
const sf_op sf_op_dequantize = {"dequantize", "e4m3 or e5m2 back to a float dtype: out = x·scale", dequantize_args,
                                run_dequantize};
