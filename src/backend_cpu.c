/* The CPU backend: host memory and plain loops. It is the reference every GPU op is checked
 * against, so it favours clarity and double accumulation over speed. */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>
#include "backend.h"
#include "rng.h"

static void cpu_mem_info(size_t *free_bytes, size_t *total_bytes);

static void *cpu_alloc(size_t bytes)
{
    void *p = NULL;
    size_t free_b, total_b;
    /* refuse what cannot fit rather than trust the kernel: with overcommit, posix_memalign
     * succeeds for any size and the process dies later, at first touch */
    cpu_mem_info(&free_b, &total_b);
    if (total_b && bytes > total_b) return NULL;
    /* 64-byte alignment: the same vector-friendly guarantee cudaMalloc gives (and more) */
    if (posix_memalign(&p, 64, (bytes + 63) & ~(size_t)63) != 0) return NULL;
    return p;
}

static void cpu_mem_info(size_t *free_bytes, size_t *total_bytes)
{
    long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    *total_bytes = pages > 0 ? (size_t)pages * (size_t)page : 0;
    *free_bytes = avail > 0 ? (size_t)avail * (size_t)page : 0;
}

static void cpu_fill(lua_State *L, sf_tensor *t, double value, void *stream)
{
    (void)L; (void)stream;
#pragma omp parallel for
    for (int64_t i = 0; i < t->numel; i++) sf_store_from_double(t->data, t->dtype, sf_offset_of(t, i), value);
}

static void cpu_random(lua_State *L, sf_tensor *t, sf_rand_kind kind, uint64_t seed, double a, double b,
                       void *stream)
{
    (void)L; (void)stream;
#pragma omp parallel for
    for (int64_t i = 0; i < t->numel; i++) {
        double v = kind == SF_RAND_NORMAL ? a + b * sf_rng_gauss(seed, (uint64_t)i)
                                          : a + (b - a) * sf_rng_unit(seed, (uint64_t)i, 0);
        sf_store_from_double(t->data, t->dtype, sf_offset_of(t, i), v);
    }
}

static void cpu_convert(lua_State *L, sf_tensor *dst, const sf_tensor *src, void *stream)
{
    (void)L; (void)stream;
    if (dst->dtype == src->dtype && sf_tensor_is_contiguous(dst) && sf_tensor_is_contiguous(src)) {
        memmove(dst->data, src->data, (size_t)dst->numel * sf_dtype_size(dst->dtype));
        return;
    }
    if (dst->dtype == src->dtype) { /* the same bytes, as the contiguous copy and the GPU's copy keep */
        const size_t es = sf_dtype_size(dst->dtype);
#pragma omp parallel for
        for (int64_t i = 0; i < dst->numel; i++)
            memcpy((char *)dst->data + sf_offset_of(dst, i) * (int64_t)es,
                   (const char *)src->data + sf_offset_of(src, i) * (int64_t)es, es);
        return;
    }
#pragma omp parallel for
    for (int64_t i = 0; i < dst->numel; i++)
        sf_store_from_double(dst->data, dst->dtype, sf_offset_of(dst, i),
                             sf_load_as_double(src->data, src->dtype, sf_offset_of(src, i)));
}

static void cpu_compare(lua_State *L, const sf_tensor *out, const sf_tensor *ref, sf_compare *r, void *stream)
{
    (void)L; (void)stream;
    double d2 = 0, r2 = 0, max_abs = 0;
    int64_t nan = 0, inf = 0, ref_bad = 0;
#pragma omp parallel for reduction(+ : d2, r2, nan, inf, ref_bad) reduction(max : max_abs)
    for (int64_t i = 0; i < out->numel; i++) {
        double o = sf_load_as_double(out->data, out->dtype, sf_offset_of(out, i));
        double e = sf_load_as_double(ref->data, ref->dtype, sf_offset_of(ref, i));
        if (isnan(o)) { nan++; continue; }
        if (isinf(o)) { inf++; continue; }
        if (!isfinite(e)) { ref_bad++; continue; }
        double d = fabs(o - e);
        d2 += d * d;
        r2 += e * e;
        if (d > max_abs) max_abs = d;
    }
    r->numel = out->numel;
    r->nan = nan;
    r->inf = inf;
    r->ref_nonfinite = ref_bad;
    r->max_abs = max_abs;
    r->ref_norm = sqrt(r2);
    r->rel_l2 = r2 > 0 ? sqrt(d2 / r2) : sqrt(d2);
}

static void cpu_copy(lua_State *L, void *dst, const void *src, size_t bytes)
{
    (void)L;
    memcpy(dst, src, bytes);
}

static void cpu_sync(lua_State *L) { (void)L; }

const sf_backend sf_cpu_backend = {
    .name = "cpu", .raw_alloc = cpu_alloc, .raw_free = free, .mem_info = cpu_mem_info,
    .fill = cpu_fill, .random = cpu_random, .convert = cpu_convert, .compare = cpu_compare,
    .to_host = cpu_copy, .from_host = cpu_copy, .sync = cpu_sync,
};
