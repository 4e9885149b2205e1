/* Per-device primitives. The CPU backend is always there (it holds the references); the CUDA
 * backend exists in builds configured with CUDA. Every function raises a Lua error on failure. */
#ifndef SF_BACKEND_H
#define SF_BACKEND_H
#include "sfbench.h"

typedef struct sf_compare {
    double rel_l2, max_abs, ref_norm;
    int64_t nan, inf, ref_nonfinite, numel;
} sf_compare;

typedef enum { SF_RAND_UNIFORM = 0, SF_RAND_NORMAL = 1 } sf_rand_kind;

typedef struct sf_backend {
    const char *name;
    void *(*raw_alloc)(size_t bytes);                 /* NULL when out of memory */
    void (*raw_free)(void *p);
    void (*mem_info)(size_t *free_bytes, size_t *total_bytes);
    void (*fill)(lua_State *L, sf_tensor *t, double value, void *stream);
    void (*random)(lua_State *L, sf_tensor *t, sf_rand_kind kind, uint64_t seed, double a, double b,
                   void *stream);
    /* dst[i] = src[i] element by element with dtype conversion; same shape, any strides */
    void (*convert)(lua_State *L, sf_tensor *dst, const sf_tensor *src, void *stream);
    void (*compare)(lua_State *L, const sf_tensor *out, const sf_tensor *ref, sf_compare *r,
                    void *stream);
    void (*to_host)(lua_State *L, void *host, const void *src, size_t bytes);
    void (*from_host)(lua_State *L, void *dst, const void *host, size_t bytes);
    void (*sync)(lua_State *L);
} sf_backend;

extern const sf_backend sf_cpu_backend;
#ifdef SF_HAVE_CUDA
extern const sf_backend sf_cuda_backend;
#endif
static inline const sf_backend *sf_backend_of(sf_device_kind dev)
{
#ifdef SF_HAVE_CUDA
    if (dev == SF_DEV_CUDA) return &sf_cuda_backend;
#endif
    (void)dev;
    return &sf_cpu_backend;
}

/* a strided walk shared by the CPU loops: offset of the i-th element (row-major order) */
static inline int64_t sf_offset_of(const sf_tensor *t, int64_t i)
{
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += (i % t->shape[d]) * t->stride[d];
        i /= t->shape[d];
    }
    return off;
}
#endif
