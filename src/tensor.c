/* The Tensor userdata: shape, strides and dtype over memory owned by one device.
 * Modelled on liolib's file handles: the userdata is created closed, then the memory is
 * acquired, so an allocation failure leaks nothing; :free(), __close and __gc share one path. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "sfbench.h"
#include "backend.h"
#include "graph.h"
#include "host.h"

static uint64_t seed_base, seed_counter;

uint64_t sf_next_seed(void) { return seed_base * 0x9e3779b97f4a7c15ULL + ++seed_counter; }

static sf_tensor *to_tensor(lua_State *L, int idx) { return (sf_tensor *)luaL_checkudata(L, idx, SF_TENSOR_MT); }

sf_tensor *sf_check_tensor(lua_State *L, int idx)
{
    sf_tensor *t = to_tensor(L, idx);
    if (!t->data) luaL_argerror(L, idx, "tensor has been freed");
    return t;
}

sf_tensor *sf_opt_tensor(lua_State *L, int idx) { return lua_isnoneornil(L, idx) ? NULL : sf_check_tensor(L, idx); }

size_t sf_tensor_nbytes(const sf_tensor *t) { return (size_t)t->numel * sf_dtype_size(t->dtype); }

static void set_contiguous_strides(sf_tensor *t)
{
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        t->stride[d] = s;
        s *= t->shape[d];
    }
}

static sf_tensor *new_closed(lua_State *L)
{
    sf_tensor *t = (sf_tensor *)lua_newuserdatauv(L, sizeof *t, 0);
    memset(t, 0, sizeof *t);
    t->base_ref = LUA_NOREF;
    luaL_setmetatable(L, SF_TENSOR_MT);
    return t;
}

sf_tensor *sf_push_tensor(lua_State *L, sf_device_kind dev, sf_dtype dt, int ndim, const int64_t *shape)
{
    sf_tensor *t = new_closed(L);
    t->dtype = dt;
    t->device = dev;
    t->ndim = ndim;
    t->numel = 1;
    for (int d = 0; d < ndim; d++) {
        t->shape[d] = shape[d];
        if (t->numel > INT64_MAX / shape[d] / (int64_t)sf_dtype_size(dt))
            luaL_error(L, "tensor: shape too large: its size in bytes overflows 64 bits");
        t->numel *= shape[d];
    }
    set_contiguous_strides(t);
    t->alloc_bytes = sf_tensor_nbytes(t);
    t->alloc = t->data = sf_alloc(L, dev, t->alloc_bytes, "a tensor");
    return t;
}

sf_tensor *sf_push_like(lua_State *L, const sf_tensor *t, sf_device_kind dev, sf_dtype dt)
{
    return sf_push_tensor(L, dev, dt, t->ndim, t->shape);
}

void sf_release_tensor(lua_State *L, sf_tensor *t)
{
    if (!t->data) return;
    if (t->alloc) sf_free(t->device, t->alloc, t->alloc_bytes);
    if (t->base) t->base->views--;
    luaL_unref(L, LUA_REGISTRYINDEX, t->base_ref);
    t->base_ref = LUA_NOREF;
    t->base = NULL;
    t->alloc = t->data = NULL;
}

/* Why t cannot be freed now, pushed as the message, or 0 */
static int free_refused(lua_State *L, const sf_tensor *t)
{
    if (t->views > 0 && t->data) {
        lua_pushfstring(L, "tensor:free: %d view(s) of this tensor are still alive", t->views);
        return 1;
    }
    /* the captured work may read it at every replay (the collector's frees wait for the end) */
    if (t->alloc && t->device == SF_DEV_CUDA && sf_capturing()) {
        lua_pushliteral(L, "tensor:free: cannot free a tensor during a CUDA graph capture");
        return 1;
    }
    return 0;
}

static int t_free(lua_State *L)
{
    sf_tensor *t = to_tensor(L, 1);
    if (free_refused(L, t)) return lua_error(L);
    sf_release_tensor(L, t);
    return 0;
}

/* __close: as free, but a tensor that cannot be freed while an error is on its way out (the second
 * argument) is left to the collector, so that the error raised is the first one */
static int t_close(lua_State *L)
{
    sf_tensor *t = to_tensor(L, 1);
    if (free_refused(L, t)) return lua_isnil(L, 2) ? lua_error(L) : 0;
    sf_release_tensor(L, t);
    return 0;
}

static int t_gc(lua_State *L)
{
    /* a base is only collected after its views (they hold a reference), so views == 0 here */
    sf_release_tensor(L, to_tensor(L, 1));
    return 0;
}

/* ---- argument helpers ---- */

sf_dtype sf_check_dtype(lua_State *L, int idx, sf_dtype dflt)
{
    if (lua_isnoneornil(L, idx)) return dflt;
    const char *name = luaL_checkstring(L, idx);
    sf_dtype dt;
    if (sf_dtype_from_name(name, &dt) != 0)
        luaL_argerror(L, idx, lua_pushfstring(L, "unknown dtype '%s' (expected f32, f16, bf16, i32, f64, e4m3 or e5m2)", name));
    return dt;
}

/* the number of elements of a shape, or -1 when it overflows 64 bits */
static int64_t shape_numel(int n, const int64_t *shape)
{
    int64_t numel = 1;
    for (int d = 0; d < n; d++) {
        if (numel > INT64_MAX / shape[d]) return -1;
        numel *= shape[d];
    }
    return numel;
}

static int check_shape(lua_State *L, int idx, int64_t *shape)
{
    if (lua_type(L, idx) == LUA_TNUMBER) {
        if (!lua_isinteger(L, idx)) luaL_argerror(L, idx, "dimension 1 is not an integer");
        shape[0] = lua_tointeger(L, idx);
        if (shape[0] <= 0) luaL_argerror(L, idx, lua_pushfstring(L, "dimension 1 is %I; dimensions must be positive", (LUAI_UACINT)shape[0]));
        return 1;
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    int n = (int)luaL_len(L, idx);
    if (n < 1 || n > SF_MAX_DIMS)
        luaL_argerror(L, idx, lua_pushfstring(L, "a shape has 1 to %d dimensions, got %d", SF_MAX_DIMS, n));
    for (int d = 0; d < n; d++) {
        lua_geti(L, idx, d + 1);
        int ok;
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        if (!ok) luaL_argerror(L, idx, lua_pushfstring(L, "dimension %d is not an integer", d + 1));
        if (v <= 0) luaL_argerror(L, idx, lua_pushfstring(L, "dimension %d is %I; dimensions must be positive", d + 1, (LUAI_UACINT)v));
        shape[d] = v;
        lua_pop(L, 1);
    }
    return n;
}

static sf_device_kind opt_device_field(lua_State *L, int opts)
{
    sf_device_kind dev = sf_dev.kind;
    if (lua_istable(L, opts)) {
        lua_getfield(L, opts, "device");
        dev = sf_check_device_name(L, lua_gettop(L), sf_dev.kind);
        lua_pop(L, 1);
    }
    return dev;
}

static double opt_number_field(lua_State *L, int opts, const char *key, double dflt)
{
    if (!lua_istable(L, opts)) return dflt;
    lua_getfield(L, opts, key);
    double v = dflt;
    if (!lua_isnil(L, -1)) {
        if (!lua_isnumber(L, -1)) luaL_error(L, "option '%s' must be a number", key);
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

static uint64_t opt_seed(lua_State *L, int opts)
{
    if (lua_istable(L, opts)) {
        lua_getfield(L, opts, "seed");
        if (!lua_isnil(L, -1)) {
            int ok;
            lua_Integer s = lua_tointegerx(L, -1, &ok);
            if (!ok) luaL_error(L, "option 'seed' must be an integer");
            lua_pop(L, 1);
            return (uint64_t)s;
        }
        lua_pop(L, 1);
    }
    return sf_next_seed();
}

/* sf.tensor(shape [, dtype [, {device=}]]) */
static int l_tensor(lua_State *L)
{
    int64_t shape[SF_MAX_DIMS];
    int n = check_shape(L, 1, shape);
    sf_dtype dt = sf_check_dtype(L, 2, SF_F32);
    sf_device_kind dev = opt_device_field(L, 3);
    sf_push_tensor(L, dev, dt, n, shape);
    return 1;
}

static void random_fill(lua_State *L, sf_tensor *t, int opts, int normal)
{
    uint64_t seed = opt_seed(L, opts);
    double a = normal ? opt_number_field(L, opts, "mean", 0.0) : opt_number_field(L, opts, "low", 0.0);
    double b = normal ? opt_number_field(L, opts, "std", 1.0) : opt_number_field(L, opts, "high", 1.0);
    sf_backend_of(t->device)->random(L, t, normal ? SF_RAND_NORMAL : SF_RAND_UNIFORM, seed, a, b, sf_default_stream());
}

/* sf.randn(shape [, dtype [, {seed=, mean=, std=, device=}]]) and sf.rand (uniform: low, high) */
static int make_random(lua_State *L, int normal)
{
    l_tensor(L);
    random_fill(L, sf_check_tensor(L, -1), 3, normal);
    return 1;
}
static int l_randn(lua_State *L) { return make_random(L, 1); }
static int l_rand(lua_State *L) { return make_random(L, 0); }

static int l_zeros(lua_State *L)
{
    l_tensor(L);
    sf_tensor *t = sf_check_tensor(L, -1);
    sf_backend_of(t->device)->fill(L, t, 0.0, NULL);
    return 1;
}

/* ---- host transfers ---- */

/* t's elements, contiguous in t's dtype, in a host buffer owned by a userdata left on the stack */
static void *host_copy(lua_State *L, const sf_tensor *t)
{
    size_t bytes = sf_tensor_nbytes(t);
    void *buf = lua_newuserdatauv(L, bytes ? bytes : 1, 0);
    const sf_backend *be = sf_backend_of(t->device);
    if (sf_tensor_is_contiguous(t)) {
        be->to_host(L, buf, t->data, bytes);
        return buf;
    }
    sf_tensor *tmp = sf_push_like(L, t, t->device, t->dtype);
    be->convert(L, tmp, t, NULL);
    be->to_host(L, buf, tmp->data, bytes);
    sf_release_tensor(L, tmp);
    lua_pop(L, 1);
    return buf;
}

void sf_copy_tensor(lua_State *L, sf_tensor *dst, const sf_tensor *src, void *stream)
{
    if (dst->numel != src->numel) luaL_error(L, "copy: %I elements into %I", (LUAI_UACINT)src->numel, (LUAI_UACINT)dst->numel);
    if (dst->device == src->device) {
        sf_backend_of(dst->device)->convert(L, dst, src, stream);
        return;
    }
    int top = lua_gettop(L);
    void *host = host_copy(L, src);
    const sf_backend *be = sf_backend_of(dst->device);
    if (dst->dtype == src->dtype && sf_tensor_is_contiguous(dst)) {
        be->from_host(L, dst->data, host, sf_tensor_nbytes(dst));
    } else {
        sf_tensor *tmp = sf_push_tensor(L, dst->device, src->dtype, dst->ndim, dst->shape);
        be->from_host(L, tmp->data, host, sf_tensor_nbytes(tmp));
        be->convert(L, dst, tmp, stream);
        sf_release_tensor(L, tmp);
    }
    lua_settop(L, top);
}

static int t_totable(lua_State *L)
{
    sf_tensor *t = sf_check_tensor(L, 1);
    void *buf = host_copy(L, t);
    lua_createtable(L, (int)t->numel, 0);
    for (int64_t i = 0; i < t->numel; i++) {
        double v = sf_load_as_double(buf, t->dtype, i);
        if (t->dtype == SF_I32) lua_pushinteger(L, (lua_Integer)v); else lua_pushnumber(L, v);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* sf.from_table(values, shape [, dtype [, {device=}]]) */
static int l_from_table(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int64_t shape[SF_MAX_DIMS];
    int n = check_shape(L, 2, shape);
    sf_dtype dt = sf_check_dtype(L, 3, SF_F32);
    sf_device_kind dev = opt_device_field(L, 4);
    int64_t numel = shape_numel(n, shape);
    if (numel < 0) luaL_argerror(L, 2, "the shape's element count overflows 64 bits");
    if ((int64_t)luaL_len(L, 1) != numel)
        luaL_argerror(L, 1, lua_pushfstring(L, "%I values for a shape of %I elements", (LUAI_UACINT)luaL_len(L, 1), (LUAI_UACINT)numel));
    void *buf = lua_newuserdatauv(L, (size_t)numel * sf_dtype_size(dt), 0);
    for (int64_t i = 0; i < numel; i++) {
        lua_geti(L, 1, i + 1);
        if (!lua_isnumber(L, -1)) luaL_argerror(L, 1, lua_pushfstring(L, "value %I is not a number", (LUAI_UACINT)(i + 1)));
        sf_store_from_double(buf, dt, i, lua_tonumber(L, -1));
        lua_pop(L, 1);
    }
    sf_tensor *t = sf_push_tensor(L, dev, dt, n, shape);
    sf_backend_of(dev)->from_host(L, t->data, buf, sf_tensor_nbytes(t));
    return 1;
}

/* ---- methods ---- */

static int64_t element_offset(lua_State *L, const sf_tensor *t, int first, int count)
{
    if (count != t->ndim) luaL_error(L, "tensor: %d indices for a tensor of %d dimensions", count, t->ndim);
    int64_t off = 0;
    for (int d = 0; d < t->ndim; d++) {
        lua_Integer i = luaL_checkinteger(L, first + d);
        if (i < 1 || i > t->shape[d])
            luaL_argerror(L, first + d, lua_pushfstring(L, "index %I out of range 1..%I", (LUAI_UACINT)i, (LUAI_UACINT)t->shape[d]));
        off += (i - 1) * t->stride[d];
    }
    return off;
}

/* t:get(i, j, ...) with 1-based indices */
static int t_get(lua_State *L)
{
    sf_tensor *t = sf_check_tensor(L, 1);
    int64_t off = element_offset(L, t, 2, lua_gettop(L) - 1);
    size_t es = sf_dtype_size(t->dtype);
    unsigned char buf[8];
    sf_backend_of(t->device)->to_host(L, buf, (char *)t->data + off * (int64_t)es, es);
    double v = sf_load_as_double(buf, t->dtype, 0);
    if (t->dtype == SF_I32) lua_pushinteger(L, (lua_Integer)v); else lua_pushnumber(L, v);
    return 1;
}

/* t:set(value, i, j, ...) */
static int t_set(lua_State *L)
{
    sf_tensor *t = sf_check_tensor(L, 1);
    double v = luaL_checknumber(L, 2);
    int64_t off = element_offset(L, t, 3, lua_gettop(L) - 2);
    size_t es = sf_dtype_size(t->dtype);
    unsigned char buf[8];
    sf_store_from_double(buf, t->dtype, 0, v);
    sf_backend_of(t->device)->from_host(L, (char *)t->data + off * (int64_t)es, buf, es);
    return 0;
}

static int t_fill(lua_State *L)
{
    sf_tensor *t = sf_check_tensor(L, 1);
    sf_backend_of(t->device)->fill(L, t, luaL_checknumber(L, 2), sf_default_stream());
    lua_settop(L, 1);
    return 1;
}

static int t_zero(lua_State *L)
{
    sf_tensor *t = sf_check_tensor(L, 1);
    sf_backend_of(t->device)->fill(L, t, 0.0, sf_default_stream());
    lua_settop(L, 1);
    return 1;
}

static int t_randn(lua_State *L)
{
    random_fill(L, sf_check_tensor(L, 1), 2, 1);
    lua_settop(L, 1);
    return 1;
}

static int t_rand(lua_State *L)
{
    random_fill(L, sf_check_tensor(L, 1), 2, 0);
    lua_settop(L, 1);
    return 1;
}

static int t_copy(lua_State *L)
{
    sf_tensor *dst = sf_check_tensor(L, 1), *src = sf_check_tensor(L, 2);
    int same = dst->ndim == src->ndim;
    for (int d = 0; same && d < dst->ndim; d++) same = dst->shape[d] == src->shape[d];
    if (!same) {
        luaL_tolstring(L, 2, NULL);
        luaL_tolstring(L, 1, NULL);
        return luaL_error(L, "tensor:copy: shapes differ (%s into %s)", lua_tostring(L, -2), lua_tostring(L, -1));
    }
    sf_copy_tensor(L, dst, src, sf_default_stream());
    lua_settop(L, 1);
    return 1;
}

/* t:to(device_or_dtype [, dtype_or_device]) -> a new contiguous tensor */
static int t_to(lua_State *L)
{
    sf_tensor *t = sf_check_tensor(L, 1);
    sf_device_kind dev = t->device;
    sf_dtype dt = t->dtype;
    for (int i = 2; i <= 3 && !lua_isnoneornil(L, i); i++) {
        const char *s = luaL_checkstring(L, i);
        if (sf_dtype_from_name(s, &dt) != 0) dev = sf_check_device_name(L, i, dev);
    }
    sf_tensor *out = sf_push_like(L, t, dev, dt);
    sf_copy_tensor(L, out, t, NULL);
    return 1;
}

static void push_dims(lua_State *L, const sf_tensor *t, const int64_t *v)
{
    lua_createtable(L, t->ndim, 0);
    for (int d = 0; d < t->ndim; d++) {
        lua_pushinteger(L, (lua_Integer)v[d]);
        lua_rawseti(L, -2, d + 1);
    }
}

static int t_shape(lua_State *L) { sf_tensor *t = sf_check_tensor(L, 1); push_dims(L, t, t->shape); return 1; }
static int t_strides(lua_State *L) { sf_tensor *t = sf_check_tensor(L, 1); push_dims(L, t, t->stride); return 1; }
static int t_size(lua_State *L)
{
    sf_tensor *t = sf_check_tensor(L, 1);
    lua_Integer d = luaL_checkinteger(L, 2);
    if (d < 0) d += t->ndim + 1;
    luaL_argcheck(L, d >= 1 && d <= t->ndim, 2, "dimension out of range");
    lua_pushinteger(L, (lua_Integer)t->shape[d - 1]);
    return 1;
}
static int t_dtype(lua_State *L) { lua_pushstring(L, sf_dtype_name(sf_check_tensor(L, 1)->dtype)); return 1; }
static int t_device(lua_State *L) { lua_pushstring(L, sf_backend_of(sf_check_tensor(L, 1)->device)->name); return 1; }
static int t_numel(lua_State *L) { lua_pushinteger(L, (lua_Integer)sf_check_tensor(L, 1)->numel); return 1; }
static int t_nbytes(lua_State *L) { lua_pushinteger(L, (lua_Integer)sf_tensor_nbytes(sf_check_tensor(L, 1))); return 1; }
static int t_ndim(lua_State *L) { lua_pushinteger(L, sf_check_tensor(L, 1)->ndim); return 1; }
static int t_is_contiguous(lua_State *L) { lua_pushboolean(L, sf_tensor_is_contiguous(sf_check_tensor(L, 1))); return 1; }
static int t_is_freed(lua_State *L) { lua_pushboolean(L, to_tensor(L, 1)->data == NULL); return 1; }

static sf_tensor *push_view(lua_State *L, int base_idx)
{
    sf_tensor *base = sf_check_tensor(L, base_idx);
    sf_tensor *v = new_closed(L);
    *v = *base;
    v->alloc = NULL;
    v->alloc_bytes = 0;
    v->views = 0;
    sf_tensor *root = base->base ? base->base : base;
    if (base->base) lua_rawgeti(L, LUA_REGISTRYINDEX, base->base_ref);
    else lua_pushvalue(L, base_idx);
    v->base_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    v->base = root;
    root->views++;
    return v;
}

/* t:view(shape): the same memory with another shape (t must be contiguous) */
static int t_view(lua_State *L)
{
    sf_tensor *t = sf_check_tensor(L, 1);
    int64_t shape[SF_MAX_DIMS];
    int n = check_shape(L, 2, shape);
    int64_t numel = shape_numel(n, shape);
    if (numel < 0) return luaL_error(L, "tensor:view: the shape's element count overflows 64 bits");
    if (!sf_tensor_is_contiguous(t)) return luaL_error(L, "tensor:view: the tensor is not contiguous");
    if (numel != t->numel)
        return luaL_error(L, "tensor:view: %I elements cannot be viewed as %I", (LUAI_UACINT)t->numel, (LUAI_UACINT)numel);
    sf_tensor *v = push_view(L, 1);
    v->ndim = n;
    memcpy(v->shape, shape, sizeof(int64_t) * (size_t)n);
    set_contiguous_strides(v);
    return 1;
}

/* t:slice(dim, start, length): elements start..start+length-1 (1-based) along dim, as a view */
static int t_slice(lua_State *L)
{
    sf_tensor *t = sf_check_tensor(L, 1);
    lua_Integer dim = luaL_checkinteger(L, 2), start = luaL_checkinteger(L, 3);
    if (dim < 0) dim += t->ndim + 1;
    luaL_argcheck(L, dim >= 1 && dim <= t->ndim, 2, "dimension out of range");
    const int64_t size = t->shape[dim - 1];
    if (start < 1 || start > size)
        return luaL_error(L, "tensor:slice: start %I is outside 1..%I of dimension %I", (LUAI_UACINT)start,
                          (LUAI_UACINT)size, (LUAI_UACINT)dim);
    lua_Integer len = luaL_optinteger(L, 4, size - start + 1);   /* no overflow: 1 <= start <= size */
    if (len < 1 || len > size - start + 1)
        return luaL_error(L, "tensor:slice: %I element(s) from %I is outside 1..%I of dimension %I", (LUAI_UACINT)len,
                          (LUAI_UACINT)start, (LUAI_UACINT)size, (LUAI_UACINT)dim);
    sf_tensor *v = push_view(L, 1);
    v->data = (char *)t->data + (start - 1) * t->stride[dim - 1] * (int64_t)sf_dtype_size(t->dtype);
    v->shape[dim - 1] = len;
    v->numel = t->numel / t->shape[dim - 1] * len;
    return 1;
}

static int t_tostring(lua_State *L)
{
    sf_tensor *t = to_tensor(L, 1);
    if (!t->data) {
        lua_pushliteral(L, "tensor (freed)");
        return 1;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "tensor(");
    luaL_addstring(&b, sf_dtype_name(t->dtype));
    luaL_addstring(&b, ", [");
    for (int d = 0; d < t->ndim; d++) {
        lua_pushfstring(L, d ? ", %I" : "%I", (LUAI_UACINT)t->shape[d]);
        luaL_addvalue(&b);
    }
    luaL_addstring(&b, "], ");
    luaL_addstring(&b, sf_backend_of(t->device)->name);
    luaL_addstring(&b, ")");
    luaL_pushresult(&b);
    return 1;
}

static int t_len(lua_State *L) { lua_pushinteger(L, (lua_Integer)sf_check_tensor(L, 1)->numel); return 1; }

/* sf.seed([n]): set the base seed of fills that name none; returns the base in use */
static int l_seed(lua_State *L)
{
    if (!lua_isnoneornil(L, 1)) {
        seed_base = (uint64_t)luaL_checkinteger(L, 1);
        seed_counter = 0;
    }
    lua_pushinteger(L, (lua_Integer)seed_base);
    return 1;
}

void sf_register_tensor(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"get", t_get}, {"set", t_set}, {"fill", t_fill}, {"zero", t_zero}, {"randn", t_randn},
        {"rand", t_rand}, {"copy", t_copy}, {"to", t_to}, {"totable", t_totable}, {"shape", t_shape},
        {"strides", t_strides}, {"size", t_size}, {"dtype", t_dtype}, {"device", t_device},
        {"numel", t_numel}, {"nbytes", t_nbytes}, {"ndim", t_ndim}, {"is_contiguous", t_is_contiguous},
        {"is_freed", t_is_freed}, {"view", t_view}, {"slice", t_slice}, {"free", t_free}, {NULL, NULL}};
    static const luaL_Reg meta[] = {
        {"__gc", t_gc}, {"__close", t_close}, {"__tostring", t_tostring}, {"__len", t_len}, {NULL, NULL}};
    static const luaL_Reg funcs[] = {
        {"tensor", l_tensor}, {"randn", l_randn}, {"rand", l_rand}, {"zeros", l_zeros},
        {"from_table", l_from_table}, {"seed", l_seed}, {NULL, NULL}};
    sf_define_type(L, SF_TENSOR_MT, meta, methods);
    luaL_setfuncs(L, funcs, 0);
    seed_base = 0x5eed;
}
