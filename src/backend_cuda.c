/* The CUDA backend: cudaMalloc'd memory and the kernels of kernels/tensor_ops.cu. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <lauxlib.h>
#include "backend.h"
#include "cuda_check.h"
#include "tensor_ops.h"

void sf_raise_cuda(lua_State *L, int err, const char *call)
{
    cudaGetLastError();                 /* clear it: a bad launch must not poison the next op */
    luaL_error(L, "%s: CUDA error in %s: %s (%s)", sf_current_op, call,
               cudaGetErrorString((cudaError_t)err), cudaGetErrorName((cudaError_t)err));
    abort(); /* not reached */
}

static void *cuda_alloc(size_t bytes)
{
    void *p = NULL;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    return p;
}

static void cuda_free(void *p) { cudaFree(p); }

static void cuda_mem_info(size_t *free_bytes, size_t *total_bytes)
{
    if (cudaMemGetInfo(free_bytes, total_bytes) != cudaSuccess) *free_bytes = *total_bytes = 0;
}

static sf_layout layout_of(const sf_tensor *t)
{
    sf_layout l;
    memset(&l, 0, sizeof l);
    l.ndim = t->ndim;
    l.numel = t->numel;
    l.contiguous = sf_tensor_is_contiguous(t);
    for (int d = 0; d < t->ndim; d++) {
        l.shape[d] = t->shape[d];
        l.stride[d] = t->stride[d];
    }
    return l;
}

static void cuda_fill(lua_State *L, sf_tensor *t, double value, void *stream)
{
    sf_layout l = layout_of(t);
    if (t->numel) SF_CUDA(L, sf_fill_cuda(t->data, t->dtype, &l, value, stream));
}

static void cuda_random(lua_State *L, sf_tensor *t, sf_rand_kind kind, uint64_t seed, double a, double b,
                        void *stream)
{
    sf_layout l = layout_of(t);
    if (t->numel) SF_CUDA(L, sf_random_cuda(t->data, t->dtype, &l, kind == SF_RAND_NORMAL, seed, a, b, stream));
}

static void cuda_convert(lua_State *L, sf_tensor *dst, const sf_tensor *src, void *stream)
{
    if (!dst->numel) return;
    if (dst->dtype == src->dtype && sf_tensor_is_contiguous(dst) && sf_tensor_is_contiguous(src)) {
        SF_CUDA(L, cudaMemcpyAsync(dst->data, src->data, (size_t)dst->numel * sf_dtype_size(dst->dtype),
                                   cudaMemcpyDeviceToDevice, (cudaStream_t)stream));
        return;
    }
    sf_layout dl = layout_of(dst), sl = layout_of(src);
    if (dst->dtype == src->dtype) {
        const int e = sf_copy_rows_cuda(dst->data, &dl, src->data, &sl, (int)sf_dtype_size(dst->dtype), stream);
        if (e != -1) {
            SF_CUDA(L, e);
            return;
        }
    }
    SF_CUDA(L, sf_convert_cuda(dst->data, dst->dtype, &dl, src->data, src->dtype, &sl, stream));
}

static void cuda_compare(lua_State *L, const sf_tensor *out, const sf_tensor *ref, sf_compare *r, void *stream)
{
    double host[SF_CMP_BLOCKS * SF_CMP_FIELDS], sum[SF_CMP_FIELDS] = {0};
    size_t bytes = sizeof host;
    double *partials = sf_scratch(L, SF_DEV_CUDA, bytes, "compare partials");
    sf_layout ol = layout_of(out), rl = layout_of(ref);
    SF_CUDA(L, sf_compare_cuda(out->data, out->dtype, &ol, ref->data, ref->dtype, &rl, partials, stream));
    SF_CUDA(L, cudaMemcpyAsync(host, partials, bytes, cudaMemcpyDeviceToHost, (cudaStream_t)stream));
    SF_CUDA(L, cudaStreamSynchronize((cudaStream_t)stream));
    for (int b = 0; b < SF_CMP_BLOCKS; b++)
        for (int f = 0; f < SF_CMP_FIELDS; f++) {
            double v = host[b * SF_CMP_FIELDS + f];
            sum[f] = f == SF_CMP_MAXABS ? (v > sum[f] ? v : sum[f]) : sum[f] + v;
        }
    r->numel = out->numel;
    r->nan = (int64_t)sum[SF_CMP_NAN];
    r->inf = (int64_t)sum[SF_CMP_INF];
    r->ref_nonfinite = (int64_t)sum[SF_CMP_REFBAD];
    r->max_abs = sum[SF_CMP_MAXABS];
    r->ref_norm = sqrt(sum[SF_CMP_R2]);
    r->rel_l2 = sum[SF_CMP_R2] > 0 ? sqrt(sum[SF_CMP_D2] / sum[SF_CMP_R2]) : sqrt(sum[SF_CMP_D2]);
}

static void cuda_to_host(lua_State *L, void *host, const void *src, size_t bytes)
{
    SF_CUDA(L, cudaMemcpy(host, src, bytes, cudaMemcpyDeviceToHost));
}

static void cuda_from_host(lua_State *L, void *dst, const void *host, size_t bytes)
{
    SF_CUDA(L, cudaMemcpy(dst, host, bytes, cudaMemcpyHostToDevice));
}

static void cuda_sync(lua_State *L) { SF_CUDA(L, cudaDeviceSynchronize()); }

const sf_backend sf_cuda_backend = {
    .name = "cuda", .raw_alloc = cuda_alloc, .raw_free = cuda_free, .mem_info = cuda_mem_info,
    .fill = cuda_fill, .random = cuda_random, .convert = cuda_convert, .compare = cuda_compare,
    .to_host = cuda_to_host, .from_host = cuda_from_host, .sync = cuda_sync,
};
