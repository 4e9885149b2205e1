/* The embedding op: out[t, :] = table[tokens[t], :], a model's first step. The CPU backend
 * refuses a token outside the table before writing anything; the GPU writes that token's row as
 * NaN (kernels/embedding.h). */
#include "config.h"
#include <string.h>
#include "ops.h"
#include "embedding.h"
#ifdef SF_HAVE_CUDA
#include "cuda_check.h"
#endif

static const sf_arg_spec embedding_args[] = {
    {"table", SF_ARG_TENSOR, 1, NULL, "[vocab, dim], rows dense"},
    {"tokens", SF_ARG_TENSOR, 1, NULL, "i32 [T], contiguous: rows of the table"},
    {"out", SF_ARG_TENSOR, 1, NULL, "[T, dim] of the table's dtype, rows dense, written"},
    {"stream", SF_ARG_STREAM, 0, NULL, "stream to run on"},
    {NULL, 0, 0, NULL, NULL}};

static void check_rows(sf_op_args *a, const char *name, const sf_tensor *t)
{
    if (t->ndim != 2) sf_op_error(a, "'%s' must be 2-D, got %d dimensions", name, t->ndim);
    sf_op_check_last_dense(a, name, t);
}

static void run_embedding(sf_op_args *a)
{
    static const char *const tensors[] = {"table", "tokens", "out", NULL};
    sf_tensor *table = sf_arg_tensor(a, "table"), *tokens = sf_arg_tensor(a, "tokens"), *out = sf_arg_tensor(a, "out");
    sf_device_kind dev = sf_op_device(a, tensors);
    unsigned dtypes = SF_DT(SF_F16) | SF_DT(SF_BF16) | SF_DT(SF_F32) | (dev == SF_DEV_CPU ? SF_DT(SF_F64) : 0);
    sf_op_check_dtype(a, "table", table, dtypes);
    sf_op_check_dtype(a, "tokens", tokens, SF_DT(SF_I32));
    sf_op_check_dtype(a, "out", out, SF_DT(table->dtype));
    check_rows(a, "table", table);
    check_rows(a, "out", out);
    if (tokens->ndim != 1 || !sf_tensor_is_contiguous(tokens)) sf_op_error(a, "'tokens' must be a contiguous [T]");
    int64_t shape[2] = {tokens->shape[0], table->shape[1]};
    sf_op_check_shape(a, "out", out, 2, shape);
    const int64_t T = shape[0], dim = shape[1], vocab = table->shape[0];
    const int64_t ld_table = vocab > 1 ? table->stride[0] : dim, ld_out = T > 1 ? out->stride[0] : dim;
    if (T == 0 || dim == 0) return;
    const size_t es = sf_dtype_size(table->dtype);
    if (dev == SF_DEV_CPU) {
        const int32_t *tok = (const int32_t *)tokens->data;
        for (int64_t t = 0; t < T; t++)
            if (tok[t] < 0 || tok[t] >= vocab)
                sf_op_error(a, "tokens[%lld] is %d, outside the table's %lld rows", (long long)t + 1, tok[t], (long long)vocab);
        for (int64_t t = 0; t < T; t++)
            memcpy((char *)out->data + (size_t)(t * ld_out) * es, (const char *)table->data + (size_t)(tok[t] * ld_table) * es,
                   (size_t)dim * es);
        return;
    }
#ifdef SF_HAVE_CUDA
    SF_CUDA(a->L, sf_embedding_cuda(table->data, vocab, ld_table, (const int32_t *)tokens->data, T, out->data, ld_out, dim,
                                    table->dtype, sf_arg_stream(a)));
#endif
}

const sf_op sf_op_embedding = {"embedding", "token embedding lookup: out[t] = table[tokens[t]] (GPU: NaN rows for tokens "
                               "outside the table)", embedding_args, run_embedding};
