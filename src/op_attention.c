/* The attention op: softmax(scale·Q·Kᵀ [+ causal mask])·V over [B, N, H, D] tensors, with
 * grouped-query K/V, in f16/bf16 or in e4m3 with per-tensor scales (V then as pack_vt lays it out,
 * kernels/attention.h); and pack_vt. impl picks the implementation on the GPU; the CPU backend
 * always runs the double-accumulation reference. Every argument is checked before anything is
 * launched. */
#include "config.h"
#include <math.h>
#include "ops.h"
#include "attention.h"
#ifdef SF_HAVE_CUDA
#include "cuda_check.h"
#include "gemm.h"
#endif

static const sf_arg_spec attention_args[] = {
    {"q", SF_ARG_TENSOR, 1, NULL, "queries [B, Nq, H, D]"},
    {"k", SF_ARG_TENSOR, 1, NULL, "keys [B, Nk, Hkv, D]; Hkv divides H (GQA, MQA)"},
    {"v", SF_ARG_TENSOR, 0, NULL, "values [B, Nk, Hkv, D] (16-bit and wider inputs)"},
    {"vt", SF_ARG_TENSOR, 0, NULL, "e4m3 inputs: the values as pack_vt writes them, [B, Hkv, D, Nk rounded up to 16]"},
    {"q_scale", SF_ARG_TENSOR, 0, NULL, "e4m3 'q': its f32 [1] dequantization scale (as quantize writes it)"},
    {"k_scale", SF_ARG_TENSOR, 0, NULL, "e4m3 'k': its f32 [1] dequantization scale"},
    {"v_scale", SF_ARG_TENSOR, 0, NULL, "e4m3 'vt': its f32 [1] dequantization scale (v's, which pack_vt keeps)"},
    {"out", SF_ARG_TENSOR, 1, NULL, "output [B, Nq, H, D], written: q's dtype, or f16 or bf16 for e4m3 inputs "
                                    "(f32, f64 too on the CPU)"},
    {"causal", SF_ARG_BOOL, 0, "false", "mask keys after the query (bottom-right aligned when Nq != Nk)"},
    {"scale", SF_ARG_NUMBER, 0, "1/sqrt(D)", "softmax scale"},
    {"lse", SF_ARG_TENSOR, 0, NULL, "optional f32 [B, H, Nq]: logsumexp of the scaled scores, written"},
    {"round_p", SF_ARG_BOOL, 0, "false",
     "e4m3 inputs on the CPU: P (each row over its max) rounded to e4m3 before P·V, its row sum taken before the "
     "rounding: the straightforward FP8 computation of FlashAttention-3, which validation bounds the kernel by"},
    {"impl", SF_ARG_STRING, 0, "flash",
     "flash (ours: hopper where it applies, else flash2), flash2 (mma.sync, sm_80+, D 64/128), "
     "hopper (wgmma/TMA, sm_90, D 128; the one that takes e4m3) or naive (cuBLAS + softmax, N×N scratch)"},
    {"stream", SF_ARG_STREAM, 0, NULL, "stream to run on"},
    {NULL, 0, 0, NULL, NULL}};

enum { IMPL_FLASH, IMPL_FLASH2, IMPL_HOPPER, IMPL_NAIVE };

/* An FP8 operand's scale: required (f32 [1], as quantize writes it) with e4m3 inputs, refused with
 * others */
static const float *operand_scale(sf_op_args *a, const char *name, const char *of, const sf_tensor *t, int fp8)
{
    return sf_op_fp8_scale(a, name, of, t->dtype, fp8, (sf_fp8_scale_form){0, NULL, 1, 0}, NULL);
}

/* The values: v [B, Nk, Hkv, D] with 16-bit (and wider) inputs, vt [B, Hkv, D, Np] with e4m3 ones
 * (kernels/attention.h); the same dtype as q. Returns the tensor. */
static sf_tensor *values(sf_op_args *a, sf_attention_args *at, const sf_tensor *q, int fp8)
{
    sf_tensor *v = sf_arg_tensor(a, "v"), *vt = sf_arg_tensor(a, "vt");
    if (!fp8) {
        if (vt) sf_op_error(a, "'vt' holds e4m3 values for e4m3 'q' and 'k'; 'q' is %s: pass 'v'", sf_dtype_name(q->dtype));
        if (!v) sf_op_error(a, "missing argument 'v'");
        sf_op_check_dtype(a, "v", v, SF_DT(q->dtype));
        sf_op_check_bnhd(a, "v", v, at->v_stride);
        int64_t shape[4] = {at->batch, at->seq_k, at->n_kv_heads, at->head_dim};
        sf_op_check_shape(a, "v", v, 4, shape);
        return v;
    }
    if (v) sf_op_error(a, "e4m3 'q' and 'k' take their values as 'vt' (pack_vt of the e4m3 v), not 'v'");
    if (!vt) sf_op_error(a, "e4m3 'q' and 'k' need 'vt', the e4m3 values as pack_vt writes them");
    if (vt->dtype != SF_E4M3)
        sf_op_error(a, "'vt' is %s but 'q' is e4m3: FP8 attention takes e4m3 'q', 'k' and 'vt'", sf_dtype_name(vt->dtype));
    int64_t shape[4] = {at->batch, at->n_kv_heads, at->head_dim, sf_vt_columns(at->seq_k)};
    sf_op_check_shape(a, "vt", vt, 4, shape);
    sf_op_check_last_dense(a, "vt", vt);
    for (int d = 0; d < 3; d++) at->v_stride[d] = vt->stride[d];
    return vt;
}

#ifdef SF_HAVE_CUDA
/* e4m3 inputs on the GPU: our Hopper kernel alone takes them (t: q, k, vt, out) */
static void run_fp8(sf_op_args *a, const sf_attention_args *at, int impl, const sf_tensor *const *t, void *stream)
{
    static const char *const names[4] = {"q", "k", "vt", "out"};
    static const char *const impls[] = {"flash", "flash2", "hopper", "naive"};
    sf_op_check_fp8_gpu(a, "e4m3 inputs");
    if (impl != IMPL_FLASH && impl != IMPL_HOPPER)
        sf_op_error(a, "impl '%s' takes f16 or bf16 inputs; e4m3 ones run on impl 'hopper' (or 'flash', which picks it)",
                    impls[impl]);
    if (!sf_hopper_kernels())
        sf_op_error(a, "e4m3 inputs run on our Hopper kernel alone: it needs a Hopper GPU (cc 9.0) and a build for sm_90a");
    if (at->head_dim != 128)
        sf_op_error(a, "e4m3 inputs run on our Hopper kernel, which supports head dim 128, got %d", at->head_dim);
    for (int i = 0; i < 4; i++) {
        const int64_t multiple = i < 3 ? 16 : 8; /* 16 bytes: the tensor maps' strides, the output's stores */
        for (int d = 0; d < 3; d++)
            if (t[i]->stride[d] % multiple)
                sf_op_error(a, "e4m3 inputs need strides of '%s' that are multiples of %lld elements (dimension %d is %lld)",
                            names[i], (long long)multiple, d + 1, (long long)t[i]->stride[d]);
        if ((uintptr_t)t[i]->data % 16) sf_op_error(a, "e4m3 inputs need a 16-byte aligned '%s'", names[i]);
    }
#ifdef SF_HAVE_HOPPER
    SF_CUDA(a->L, sf_attention_hopper_cuda(at, stream));
#else
    (void)stream;
#endif
}
#endif

static void run_attention(sf_op_args *a)
{
    static const char *const tensors[] = {"q", "k", "v", "vt", "out", "lse", "q_scale", "k_scale", "v_scale", NULL};
    static const char *const impls[] = {"flash", "flash2", "hopper", "naive", NULL};
    sf_tensor *q = sf_arg_tensor(a, "q"), *k = sf_arg_tensor(a, "k");
    sf_tensor *out = sf_arg_tensor(a, "out"), *lse = sf_arg_tensor(a, "lse");
    sf_device_kind dev = sf_op_device(a, tensors);
    int impl = sf_arg_choice(a, "impl", impls, IMPL_FLASH);
    sf_op_check_dtype(a, "q", q, sf_op_model_dtypes(dev) | SF_DT(SF_E4M3));
    const int fp8 = q->dtype == SF_E4M3;
    if (fp8 && k->dtype != SF_E4M3)
        sf_op_error(a, "'k' is %s but 'q' is e4m3: FP8 attention takes e4m3 'q', 'k' and 'vt'", sf_dtype_name(k->dtype));
    sf_op_check_dtype(a, "k", k, SF_DT(q->dtype));
    sf_op_check_dtype(a, "out", out, fp8 ? sf_op_model_dtypes(dev) : SF_DT(q->dtype));

    sf_attention_args at = {0};
    sf_op_check_bnhd(a, "q", q, at.q_stride);
    sf_op_check_bnhd(a, "k", k, at.k_stride);
    sf_op_check_bnhd(a, "out", out, at.o_stride);
    at.batch = (int)q->shape[0];
    at.seq_q = (int)q->shape[1];
    at.n_heads = (int)q->shape[2];
    at.head_dim = (int)q->shape[3];
    at.seq_k = (int)k->shape[1];
    at.n_kv_heads = (int)k->shape[2];
    int64_t kv_shape[4] = {at.batch, at.seq_k, at.n_kv_heads, at.head_dim};
    sf_op_check_shape(a, "k", k, 4, kv_shape);
    sf_tensor *v = values(a, &at, q, fp8);
    sf_op_check_shape(a, "out", out, 4, q->shape);
    if (at.n_heads % at.n_kv_heads != 0)
        sf_op_error(a, "kv heads (%d, dimension 3 of 'k') must divide q heads (%d)", at.n_kv_heads, at.n_heads);
    at.q_scale = operand_scale(a, "q_scale", "q", q, fp8);
    at.k_scale = operand_scale(a, "k_scale", "k", k, fp8);
    at.v_scale = operand_scale(a, "v_scale", "vt", v, fp8);
    if (lse) {
        int64_t lse_shape[3] = {at.batch, at.n_heads, at.seq_q};
        sf_op_check_dtype(a, "lse", lse, SF_DT(SF_F32));
        sf_op_check_shape(a, "lse", lse, 3, lse_shape);
        if (!sf_tensor_is_contiguous(lse)) sf_op_error(a, "'lse' must be contiguous");
        at.lse = (float *)lse->data;
    }
    at.dtype = q->dtype;
    at.out_dtype = out->dtype;
    at.q = q->data;
    at.k = k->data;
    at.v = v->data;
    at.out = out->data;
    at.causal = sf_arg_bool(a, "causal", 0);
    at.round_p = sf_arg_bool(a, "round_p", 0);
    if (at.round_p && (!fp8 || dev != SF_DEV_CPU))
        sf_op_error(a, "'round_p' is the CPU reference's, with e4m3 inputs (here %s on the %s)", sf_dtype_name(q->dtype),
                    dev == SF_DEV_CPU ? "CPU" : "GPU");
    at.scale = (float)sf_arg_number(a, "scale", 1.0 / sqrt((double)at.head_dim));
    void *stream = sf_arg_stream(a);
    if (dev == SF_DEV_CPU) {
        sf_attention_ref_cpu(&at);
        return;
    }
#ifdef SF_HAVE_CUDA
    if (fp8) {
        const sf_tensor *const t[4] = {q, k, v, out};
        run_fp8(a, &at, impl, t, stream);
        return;
    }
    if (impl != IMPL_NAIVE) {
        const char *name = impls[impl];
        if (at.head_dim != 64 && at.head_dim != 128)
            sf_op_error(a, "impl '%s' supports head dims 64 and 128, got %d", name, at.head_dim);
        const sf_tensor *all[4] = {q, k, v, out};
        const char *names[4] = {"q", "k", "v", "out"};
        for (int i = 0; i < 4; i++) {
            for (int d = 0; d < 3; d++)
                if (all[i]->stride[d] % 8)
                    sf_op_error(a, "impl '%s' needs strides that are multiples of 8 elements ('%s' dimension %d is %lld)",
                                name, names[i], d + 1, (long long)all[i]->stride[d]);
            if ((uintptr_t)all[i]->data % 16) sf_op_error(a, "impl '%s' needs 16-byte aligned '%s'", name, names[i]);
        }
        int hopper = sf_hopper_kernels() && at.head_dim == 128;
        if (impl == IMPL_HOPPER && !sf_hopper_kernels())
            sf_op_error(a, "impl 'hopper' needs a Hopper GPU (cc 9.0) and a build for sm_90a");
        if (impl == IMPL_HOPPER && at.head_dim != 128)
            sf_op_error(a, "impl 'hopper' supports head dim 128, got %d", at.head_dim);
        if (impl == IMPL_HOPPER || (impl == IMPL_FLASH && hopper)) {
#ifdef SF_HAVE_HOPPER
            SF_CUDA(a->L, sf_attention_hopper_cuda(&at, stream));
#endif
        } else {
            SF_CUDA(a->L, sf_attention_flash_cuda(&at, stream));
        }
    } else {
        void *scratch = sf_scratch(a->L, SF_DEV_CUDA, sf_attention_naive_scratch_bytes(&at), "the N×N attention scores");
        int rc = sf_attention_naive_cuda(&at, sf_cublas_handle(a->L), scratch, stream);
        if (rc >= 10000) sf_op_error(a, "cuBLAS failed with status %d", rc - 10000);
        SF_CUDA(a->L, rc);
    }
#else
    (void)impl;
    (void)stream;
#endif
}

const sf_op sf_op_attention = {"attention", "multi-head attention, [B, N, H, D] layout, GQA/MQA, causal, f16/bf16 or e4m3; "
                               "impl flash, flash2 or hopper (ours) or naive (PyTorch-eager equivalent)",
                               attention_args, run_attention};

static const sf_arg_spec pack_vt_args[] = {
    {"v", SF_ARG_TENSOR, 1, NULL, "e4m3 values [B, Nk, Hkv, D] (strided views accepted)"},
    {"out", SF_ARG_TENSOR, 1, NULL, "e4m3 [B, Hkv, D, Nk rounded up to 16], written: attention's 'vt' (each head's "
                                    "values transposed, keys in the FP8 kernel's order, zeros past Nk)"},
    {"stream", SF_ARG_STREAM, 0, NULL, "stream to run on"},
    {NULL, 0, 0, NULL, NULL}};

static void run_pack_vt(sf_op_args *a)
{
    static const char *const tensors[] = {"v", "out", NULL};
    sf_tensor *v = sf_arg_tensor(a, "v"), *out = sf_arg_tensor(a, "out");
    sf_device_kind dev = sf_op_device(a, tensors);
    sf_op_check_dtype(a, "v", v, SF_DT(SF_E4M3));
    sf_op_check_dtype(a, "out", out, SF_DT(SF_E4M3));
    int64_t vs[3], os[3];
    sf_op_check_bnhd(a, "v", v, vs);
    const int64_t B = v->shape[0], N = v->shape[1], H = v->shape[2], D = v->shape[3];
    int64_t shape[4] = {B, H, D, sf_vt_columns(N)};
    sf_op_check_shape(a, "out", out, 4, shape);
    sf_op_check_last_dense(a, "out", out);
    sf_op_check_alias(a, "out", out, "v", v, 0);
    for (int d = 0; d < 3; d++) os[d] = out->stride[d];
    if (dev == SF_DEV_CPU) {
        const uint8_t *src = (const uint8_t *)v->data;
        uint8_t *dst = (uint8_t *)out->data;
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t d = 0; d < D; d++)
                    for (int64_t p = 0; p < shape[3]; p++) {
                        const int64_t key = sf_vt_key((int)p);
                        dst[b * os[0] + h * os[1] + d * os[2] + p] =
                            key < N ? src[b * vs[0] + key * vs[1] + h * vs[2] + d] : 0;
                    }
        return;
    }
#ifdef SF_HAVE_CUDA
    SF_CUDA(a->L, sf_pack_vt_cuda(v->data, vs, out->data, os, (int)B, (int)N, (int)H, (int)D, sf_arg_stream(a)));
#endif
}

const sf_op sf_op_pack_vt = {"pack_vt", "e4m3 v [B, N, Hkv, D] into the layout FP8 attention takes as 'vt'", pack_vt_args,
                             run_pack_vt};
