/* sf.compare(out, ref): the validation metrics, computed where the tensors live; and
 * sf.compare_rows(out, ref): the worst row's error, on the host. */
#include "config.h"
#include <math.h>
#include <lauxlib.h>
#include "sfbench.h"
#include "backend.h"
#include "stream.h"
#include "host.h"

static void set_num(lua_State *L, const char *k, double v) { lua_pushnumber(L, v); lua_setfield(L, -2, k); }
static void set_int(lua_State *L, const char *k, int64_t v) { lua_pushinteger(L, (lua_Integer)v); lua_setfield(L, -2, k); }

/* out and ref (arguments 1 and 2) have one shape, else a Lua error naming both */
static void check_same_shape(lua_State *L, const char *who, const sf_tensor *out, const sf_tensor *ref)
{
    int same = out->ndim == ref->ndim;
    for (int d = 0; same && d < out->ndim; d++) same = out->shape[d] == ref->shape[d];
    if (same) return;
    luaL_tolstring(L, 1, NULL);
    luaL_tolstring(L, 2, NULL);
    luaL_error(L, "%s: shapes differ (%s vs %s)", who, lua_tostring(L, -2), lua_tostring(L, -1));
}

/* -> {rel_l2=, max_abs=, ref_norm=, nan=, inf=, ref_nonfinite=, numel=}; NaN/Inf in out are
 * counted and left out of the norms, so a caller must check nan == 0 and inf == 0 */
static int l_compare(lua_State *L)
{
    sf_tensor *out = sf_check_tensor(L, 1), *ref = sf_check_tensor(L, 2);
    void *stream = sf_opt_stream(L, 3);
    check_same_shape(L, "compare", out, ref);
    sf_tensor *staged = NULL;
    if (ref->device != out->device) {                     /* bring the reference to the output */
        staged = sf_push_like(L, ref, out->device, ref->dtype);
        sf_copy_tensor(L, staged, ref, NULL);
        ref = staged;
    }
    sf_compare r;
    sf_backend_of(out->device)->compare(L, out, ref, &r, stream);
    if (staged) sf_release_tensor(L, staged);
    lua_createtable(L, 0, 7);
    set_num(L, "rel_l2", r.rel_l2);
    set_num(L, "max_abs", r.max_abs);
    set_num(L, "ref_norm", r.ref_norm);
    set_int(L, "nan", r.nan);
    set_int(L, "inf", r.inf);
    set_int(L, "ref_nonfinite", r.ref_nonfinite);
    set_int(L, "numel", r.numel);
    return 1;
}

/* t's elements as contiguous doubles on the host: t's own memory when it is already that, else
 * a copy left on the Lua stack */
static const double *host_doubles(lua_State *L, sf_tensor *t)
{
    if (t->device == SF_DEV_CPU && t->dtype == SF_F64 && sf_tensor_is_contiguous(t)) return t->data;
    sf_tensor *h = sf_push_like(L, t, SF_DEV_CPU, SF_F64);
    sf_copy_tensor(L, h, t, NULL);
    return h->data;
}

/* -> {worst=, row=, rows=, ref_max_abs=}: the relative L2 error of each row (along the last
 * dimension, the leading ones flattened; the absolute error where the reference row is all
 * zeros), the worst of them and its 1-based index; and the largest |ref| of the finite reference
 * elements (the scale of validate's max-abs bound). A row holding NaN or Inf in either tensor is
 * left out: sf.compare counts those. */
static int l_compare_rows(lua_State *L)
{
    sf_tensor *out = sf_check_tensor(L, 1), *ref = sf_check_tensor(L, 2);
    check_same_shape(L, "compare_rows", out, ref);
    const double *o = host_doubles(L, out), *r = host_doubles(L, ref);
    const int64_t n = out->shape[out->ndim - 1], rows = out->numel / n;
    double worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < rows; i++) {
        double d2 = 0, r2 = 0;
        int finite = 1;
        for (int64_t j = i * n; j < (i + 1) * n && finite; j++) {
            finite = isfinite(o[j]) && isfinite(r[j]);
            d2 += (o[j] - r[j]) * (o[j] - r[j]);
            r2 += r[j] * r[j];
        }
        if (!finite) continue;
        double e = r2 > 0 ? sqrt(d2 / r2) : sqrt(d2);
        if (at == 0 || e > worst) {
            worst = e;
            at = i + 1;
        }
    }
    double ref_max = 0;
    for (int64_t j = 0; j < out->numel; j++)
        if (isfinite(r[j]) && fabs(r[j]) > ref_max) ref_max = fabs(r[j]);
    lua_createtable(L, 0, 4);
    set_num(L, "worst", worst);
    set_int(L, "row", at);
    set_int(L, "rows", rows);
    set_num(L, "ref_max_abs", ref_max);
    return 1;
}

void sf_register_compare(lua_State *L)
{
    lua_pushcfunction(L, l_compare);
    lua_setfield(L, -2, "compare");
    lua_pushcfunction(L, l_compare_rows);
    lua_setfield(L, -2, "compare_rows");
}
