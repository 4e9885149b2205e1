/* The attention op: softmax(scale·Q·Kᵀ [+ causal mask])·V over [B, N, H, D] tensors, with
 * grouped-query K/V. impl picks the implementation on the GPU; the CPU backend always runs the
 * double-accumulation reference. Every argument is checked before anything is launched. */
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
    {"v", SF_ARG_TENSOR, 1, NULL, "values [B, Nk, Hkv, D]"},
    {"out", SF_ARG_TENSOR, 1, NULL, "output [B, Nq, H, D], written"},
    {"causal", SF_ARG_BOOL, 0, "false", "mask keys after the query (bottom-right aligned when Nq != Nk)"},
    {"scale", SF_ARG_NUMBER, 0, "1/sqrt(D)", "softmax scale"},
    {"lse", SF_ARG_TENSOR, 0, NULL, "optional f32 [B, H, Nq]: logsumexp of the scaled scores, written"},
    {"impl", SF_ARG_STRING, 0, "flash",
     "flash (ours: hopper where it applies, else flash2), flash2 (mma.sync, sm_80+, D 64/128), "
     "hopper (wgmma/TMA, sm_90, D 128) or naive (cuBLAS + softmax, N×N scratch)"},
    {"stream", SF_ARG_STREAM, 0, NULL, "stream to run on"},
    {NULL, 0, 0, NULL, NULL}};

enum { IMPL_FLASH, IMPL_FLASH2, IMPL_HOPPER, IMPL_NAIVE };

static void run_attention(sf_op_args *a)
{
    static const char *const tensors[] = {"q", "k", "v", "out", "lse", NULL};
    static const char *const impls[] = {"flash", "flash2", "hopper", "naive", NULL};
    sf_tensor *q = sf_arg_tensor(a, "q"), *k = sf_arg_tensor(a, "k"), *v = sf_arg_tensor(a, "v");
    sf_tensor *out = sf_arg_tensor(a, "out"), *lse = sf_arg_tensor(a, "lse");
    sf_device_kind dev = sf_op_device(a, tensors);
    int impl = sf_arg_choice(a, "impl", impls, IMPL_FLASH);
    unsigned dtypes = SF_DT(SF_F16) | SF_DT(SF_BF16) | (dev == SF_DEV_CPU ? SF_DT(SF_F32) | SF_DT(SF_F64) : 0);
    sf_op_check_dtype(a, "q", q, dtypes);
    sf_op_check_dtype(a, "k", k, SF_DT(q->dtype));
    sf_op_check_dtype(a, "v", v, SF_DT(q->dtype));
    sf_op_check_dtype(a, "out", out, SF_DT(q->dtype));

    sf_attention_args at = {0};
    sf_op_check_bnhd(a, "q", q, at.q_stride);
    sf_op_check_bnhd(a, "k", k, at.k_stride);
    sf_op_check_bnhd(a, "v", v, at.v_stride);
    sf_op_check_bnhd(a, "out", out, at.o_stride);
    at.batch = (int)q->shape[0];
    at.seq_q = (int)q->shape[1];
    at.n_heads = (int)q->shape[2];
    at.head_dim = (int)q->shape[3];
    at.seq_k = (int)k->shape[1];
    at.n_kv_heads = (int)k->shape[2];
    int64_t kv_shape[4] = {at.batch, at.seq_k, at.n_kv_heads, at.head_dim};
    sf_op_check_shape(a, "k", k, 4, kv_shape);
    sf_op_check_shape(a, "v", v, 4, kv_shape);
    sf_op_check_shape(a, "out", out, 4, q->shape);
    if (at.n_heads % at.n_kv_heads != 0)
        sf_op_error(a, "kv heads (%d, dimension 3 of 'k') must divide q heads (%d)", at.n_kv_heads, at.n_heads);
    if (lse) {
        int64_t lse_shape[3] = {at.batch, at.n_heads, at.seq_q};
        sf_op_check_dtype(a, "lse", lse, SF_DT(SF_F32));
        sf_op_check_shape(a, "lse", lse, 3, lse_shape);
        if (!sf_tensor_is_contiguous(lse)) sf_op_error(a, "'lse' must be contiguous");
        at.lse = (float *)lse->data;
    }
    at.dtype = q->dtype;
    at.q = q->data;
    at.k = k->data;
    at.v = v->data;
    at.out = out->data;
    at.causal = sf_arg_bool(a, "causal", 0);
    at.scale = (float)sf_arg_number(a, "scale", 1.0 / sqrt((double)at.head_dim));
    void *stream = sf_arg_stream(a);
    if (dev == SF_DEV_CPU) {
        sf_attention_ref_cpu(&at);
        return;
    }
#ifdef SF_HAVE_CUDA
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

const sf_op sf_op_attention = {"attention", "multi-head attention, [B, N, H, D] layout, GQA/MQA, causal; "
                               "impl flash, flash2 or hopper (ours) or naive (PyTorch-eager equivalent)",
                               attention_args, run_attention};
