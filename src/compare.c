/* sf.compare(out, ref): the validation metrics, computed where the tensors live. */
#include "config.h"
#include <lauxlib.h>
#include "sfbench.h"
#include "backend.h"
#include "stream.h"
#include "host.h"

static void set_num(lua_State *L, const char *k, double v) { lua_pushnumber(L, v); lua_setfield(L, -2, k); }
static void set_int(lua_State *L, const char *k, int64_t v) { lua_pushinteger(L, (lua_Integer)v); lua_setfield(L, -2, k); }

/* -> {rel_l2=, max_abs=, ref_norm=, nan=, inf=, ref_nonfinite=, numel=}; NaN/Inf in out are
 * counted and left out of the norms, so a caller must check nan == 0 and inf == 0 */
static int l_compare(lua_State *L)
{
    sf_tensor *out = sf_check_tensor(L, 1), *ref = sf_check_tensor(L, 2);
    void *stream = sf_opt_stream(L, 3);
    int same = out->ndim == ref->ndim;
    for (int d = 0; same && d < out->ndim; d++) same = out->shape[d] == ref->shape[d];
    if (!same) {
        luaL_tolstring(L, 1, NULL);
        luaL_tolstring(L, 2, NULL);
        return luaL_error(L, "compare: shapes differ (%s vs %s)", lua_tostring(L, -2), lua_tostring(L, -1));
    }
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

void sf_register_compare(lua_State *L)
{
    lua_pushcfunction(L, l_compare);
    lua_setfield(L, -2, "compare");
}
