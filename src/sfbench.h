/* sfbench core types: dtypes, tensors, devices, and the checks every binding shares. */
#ifndef SFBENCH_H
#define SFBENCH_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>
#include "sf_types.h"

typedef enum { SF_DEV_CPU = 0, SF_DEV_CUDA = 1 } sf_device_kind;

typedef struct sf_tensor {
    void *data;                   /* first element: host pointer (cpu) or device pointer (cuda) */
    void *alloc;                  /* what was allocated; NULL for a view or a freed tensor */
    size_t alloc_bytes;
    sf_dtype dtype;
    sf_device_kind device;
    int ndim;
    int64_t shape[SF_MAX_DIMS];
    int64_t stride[SF_MAX_DIMS]; /* in elements */
    int64_t numel;
    int base_ref;                 /* registry ref keeping a view's base alive, or LUA_NOREF */
    int views;                    /* live views of this tensor (a base cannot be freed under them) */
    struct sf_tensor *base;       /* the tensor a view looks into, or NULL */
} sf_tensor;

static inline int sf_tensor_is_contiguous(const sf_tensor *t)
{
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != expect) return 0;
        expect *= t->shape[d];
    }
    return 1;
}

/* error.c: the op being run, named in error messages ("sfbench" outside every op) */
extern const char *sf_current_op;
/* error.c: names `name` as the op running until the C function that calls this returns or
 * raises, when sf_current_op is "sfbench" again; pushes one value (marked to be closed), which
 * the caller leaves on its stack */
void sf_begin_op(lua_State *L, const char *name);
/* error.c: ends the naming that sf_begin_op began with its value at stack index idx (the most
 * recent value marked to be closed), before the caller returns, and sets the stack top to idx - 1 */
void sf_end_op(lua_State *L, int idx);

/* error.c: luaL_error with the whole printf format (lua_pushfstring lacks %zu, %u, %.*s) */
_Noreturn void sf_error(lua_State *L, const char *fmt, ...);

/* dtype.c */
size_t sf_dtype_size(sf_dtype t);
const char *sf_dtype_name(sf_dtype t);
int sf_dtype_from_name(const char *name, sf_dtype *out); /* 0 on success */
float sf_half_to_float(uint16_t h);
uint16_t sf_float_to_half(float f);
float sf_bf16_to_float(uint16_t h);
uint16_t sf_float_to_bf16(float f);
double sf_fp8_to_double(uint8_t b, sf_dtype t);   /* t: SF_E4M3 or SF_E5M2 */
uint8_t sf_double_to_fp8(double v, sf_dtype t);   /* nearest even, saturating; NaN stays NaN */
double sf_load_as_double(const void *base, sf_dtype t, int64_t index);
void sf_store_from_double(void *base, sf_dtype t, int64_t index, double v);


/* tensor.c */
#define SF_TENSOR_MT "sfbench.tensor"
sf_tensor *sf_check_tensor(lua_State *L, int idx);          /* raises if not a live tensor */
sf_tensor *sf_opt_tensor(lua_State *L, int idx);            /* NULL when nil */
sf_tensor *sf_push_tensor(lua_State *L, sf_device_kind dev, sf_dtype dt, int ndim,
                          const int64_t *shape);             /* allocates; raises on OOM */
sf_tensor *sf_push_like(lua_State *L, const sf_tensor *t, sf_device_kind dev, sf_dtype dt); /* contiguous */
sf_dtype sf_check_dtype(lua_State *L, int idx, sf_dtype dflt);
void sf_copy_tensor(lua_State *L, sf_tensor *dst, const sf_tensor *src, void *stream);
void sf_release_tensor(lua_State *L, sf_tensor *t);   /* frees now; the userdata stays, closed */
uint64_t sf_next_seed(void);
size_t sf_tensor_nbytes(const sf_tensor *t);

/* device.c: the default device and device selection */
typedef struct sf_device_state {
    sf_device_kind kind;
    int cuda_index;
    int cuda_available;
} sf_device_state;
extern sf_device_state sf_dev;
int sf_device_select(const char *spec, char *err, size_t errlen); /* "cpu", "cuda", "cuda:N", "auto" */
sf_device_kind sf_check_device_name(lua_State *L, int idx, sf_device_kind dflt);
int sf_cuda_device_count(void); /* CUDA devices present; 0 without CUDA */
int sf_cuda_cc(void);        /* compute capability of the selected CUDA device, major·10 + minor; 0 without one */
int sf_hopper_kernels(void); /* the sm_90a kernels were built and the selected device runs them (cc 9.0) */

/* memory.c: allocation through one accounting point per device */
typedef struct sf_mem_stats {
    size_t in_use, peak, scratch_capacity, scratch_peak;
} sf_mem_stats;
extern sf_mem_stats sf_mem[2];
void *sf_alloc(lua_State *L, sf_device_kind dev, size_t bytes, const char *what);
void sf_free(sf_device_kind dev, void *p, size_t bytes);
void *sf_scratch(lua_State *L, sf_device_kind dev, size_t bytes, const char *what);
void sf_scratch_release_all(void);
/* Zeroed GPU counters for the kernels whose last CTA of a group merges the group's partial
 * results (the split-K GEMV, split-KV decode attention): SF_COUNTERS of them a set, allocated on
 * first use; every such kernel leaves them zeroed. One set a kernel family, so that two of them
 * on different streams never share a counter. */
typedef enum { SF_COUNTERS_GEMV, SF_COUNTERS_DECODE, SF_COUNTER_SETS } sf_counter_set;
#define SF_COUNTERS 65536
unsigned *sf_counters(lua_State *L, sf_counter_set set);

#endif
