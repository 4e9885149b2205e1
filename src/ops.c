/* The op registry and the named-argument checks every op call goes through. */
#include "config.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "ops.h"
#include "stream.h"
#include "host.h"
#include "graph.h"
#include "decode_attention.h"
#include "gemv.h"

static const sf_op *const registry[] = {&sf_op_gemm, &sf_op_attention, &sf_op_pack_vt, &sf_op_decode_attention, &sf_op_ffn,
                                        &sf_op_pack_gate_up, &sf_op_swiglu, &sf_op_rmsnorm, &sf_op_add_rmsnorm, &sf_op_rope, &sf_op_linear_rope,
                                        &sf_op_add, &sf_op_embedding, &sf_op_kv_append, &sf_op_quantize, &sf_op_dequantize,
                                        &sf_op_all_reduce, &sf_op_all_gather, &sf_op_reduce_scatter, &sf_op_broadcast, NULL};

const sf_op *const *sf_op_registry(void) { return registry; }

static const char *const type_names[] = {"tensor", "boolean", "number", "integer", "string", "stream"};

void sf_op_error(sf_op_args *a, const char *fmt, ...)
{
    va_list ap;
    char msg[512];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    luaL_error(a->L, "%s: %s", a->op->name, msg);
    abort(); /* not reached: luaL_error does not return */
}

static int arg_index(sf_op_args *a, const char *name)
{
    for (int i = 0; a->op->args[i].name; i++)
        if (strcmp(a->op->args[i].name, name) == 0) return i;
    sf_op_error(a, "internal: no argument '%s' declared", name);
    return -1;
}

sf_tensor *sf_arg_tensor(sf_op_args *a, const char *name)
{
    int i = arg_index(a, name);
    return a->present[i] ? a->v[i].t : NULL;
}

int sf_arg_bool(sf_op_args *a, const char *name, int dflt)
{
    int i = arg_index(a, name);
    return a->present[i] ? a->v[i].b : dflt;
}

double sf_arg_number(sf_op_args *a, const char *name, double dflt)
{
    int i = arg_index(a, name);
    return a->present[i] ? a->v[i].n : dflt;
}

lua_Integer sf_arg_integer(sf_op_args *a, const char *name, lua_Integer dflt)
{
    int i = arg_index(a, name);
    return a->present[i] ? a->v[i].i : dflt;
}

const char *sf_arg_string(sf_op_args *a, const char *name, const char *dflt)
{
    int i = arg_index(a, name);
    return a->present[i] ? a->v[i].s : dflt;
}

int sf_arg_choice(sf_op_args *a, const char *name, const char *const *choices, int dflt)
{
    const char *s = sf_arg_string(a, name, NULL);
    if (!s) return dflt;
    char list[256] = "";
    for (int i = 0; choices[i]; i++) {
        if (strcmp(s, choices[i]) == 0) return i;
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", choices[i]);
    }
    sf_op_error(a, "unknown %s '%s' (expected one of: %s)", name, s, list);
}

void *sf_arg_stream(sf_op_args *a)
{
    int i = arg_index(a, "stream");
    return a->present[i] ? a->v[i].stream : sf_default_stream();
}

void sf_op_check_last_dense(sf_op_args *a, const char *name, const sf_tensor *t)
{
    const int last = t->ndim - 1;
    if (last >= 0 && t->shape[last] > 1 && t->stride[last] != 1)
        sf_op_error(a, "'%s' must be contiguous in its last dimension (stride %lld)", name, (long long)t->stride[last]);
}

/* The bytes a tensor's elements span, first to last (strides of views are never negative). */
static void byte_span(const sf_tensor *t, uintptr_t *lo, uintptr_t *hi)
{
    int64_t last = 0;
    for (int d = 0; d < t->ndim; d++) last += (t->shape[d] - 1) * t->stride[d];
    *lo = (uintptr_t)t->data;
    *hi = *lo + (uintptr_t)((last + 1) * (int64_t)sf_dtype_size(t->dtype));
}

static int same_view(const sf_tensor *x, const sf_tensor *y)
{
    if (x->data != y->data || x->ndim != y->ndim || x->dtype != y->dtype) return 0;
    for (int d = 0; d < x->ndim; d++)
        if (x->shape[d] != y->shape[d] || (x->shape[d] > 1 && x->stride[d] != y->stride[d])) return 0;
    return 1;
}

static int overlap(const sf_tensor *x, const sf_tensor *y)
{
    uintptr_t xl, xh, yl, yh;
    byte_span(x, &xl, &xh);
    byte_span(y, &yl, &yh);
    return xl < yh && yl < xh;
}

/* A written tensor and another operand: the same view (in place) or separate memory. Kernels
 * read each element before they write it, but only at the same index. Interleaved views whose
 * spans cross are refused too: that is cheaper to state than to check exactly. */
void sf_op_check_alias(sf_op_args *a, const char *written, const sf_tensor *w, const char *other,
                        const sf_tensor *o, int same_allowed)
{
    if (!overlap(w, o)) return;
    if (same_allowed && same_view(w, o)) return;
    if (same_allowed)
        sf_op_error(a, "'%s' overlaps '%s' without being the same view: pass the same tensor to work in place, "
                    "or separate memory", written, other);
    sf_op_error(a, "'%s' overlaps '%s': they must be separate memory", written, other);
}

/* x and y, [B, T, heads, D] views of one buffer, as heads [0, Hx) and [j, j + Hy) of the same
 * rows (the same strides), sharing no head, and the rows laid out so that no element of one token
 * is another token's: then no element is in both */
static int heads_apart(const sf_tensor *x, const sf_tensor *y)
{
    if (x->ndim != 4 || y->ndim != 4 || x->dtype != y->dtype) return 0;
    for (int d = 0; d < 4; d++)
        if (d != 2 && x->shape[d] != y->shape[d]) return 0;
    for (int d = 0; d < 3; d++)
        if (x->stride[d] != y->stride[d]) return 0;
    const int64_t es = (int64_t)sf_dtype_size(x->dtype), s0 = x->stride[0], s1 = x->stride[1], s2 = x->stride[2];
    const int64_t bytes = (int64_t)((const char *)y->data - (const char *)x->data);
    if (s2 < x->shape[3] || bytes % es || (bytes / es) % s2) return 0;
    const int64_t j = bytes / es / s2, hx = x->shape[2], hy = y->shape[2];
    if (j < hx && j + hy > 0) return 0; /* a head in both */
    const int64_t span = (j > 0 ? j + hy : hx - j) * s2; /* the heads of one token, both views */
    if (x->shape[1] > 1 && s1 < span) return 0;
    if (x->shape[0] > 1 && s0 < x->shape[1] * (x->shape[1] > 1 ? s1 : span)) return 0;
    return 1;
}

void sf_op_check_heads_apart(sf_op_args *a, const char *written, const sf_tensor *w, const char *other,
                             const sf_tensor *o)
{
    if (!overlap(w, o) || heads_apart(w, o)) return;
    sf_op_error(a, "'%s' overlaps '%s': they must be separate memory, or separate heads of the same rows", written, other);
}

sf_device_kind sf_op_device(sf_op_args *a, const char *const *names)
{
    const sf_tensor *first = NULL;
    const char *first_name = NULL;
    for (int i = 0; names[i]; i++) {
        const sf_tensor *t = sf_arg_tensor(a, names[i]);
        if (!t) continue;
        if (!first) {
            first = t;
            first_name = names[i];
        } else if (t->device != first->device) {
            sf_op_error(a, "'%s' is on %s but '%s' is on %s: all tensors of an op live on one device", names[i],
                        t->device == SF_DEV_CUDA ? "cuda" : "cpu", first_name,
                        first->device == SF_DEV_CUDA ? "cuda" : "cpu");
        }
    }
    return first ? first->device : sf_dev.kind;
}

void sf_op_check_dtype(sf_op_args *a, const char *name, const sf_tensor *t, unsigned mask)
{
    if (mask & SF_DT(t->dtype)) return;
    char list[64] = "";
    for (int d = 0; d < SF_DTYPE_COUNT; d++)
        if (mask & SF_DT(d)) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ", " : "", sf_dtype_name((sf_dtype)d));
    sf_op_error(a, "'%s' has dtype %s (expected %s)", name, sf_dtype_name(t->dtype), list);
}

unsigned sf_op_model_dtypes(sf_device_kind dev)
{
    return SF_DT(SF_F16) | SF_DT(SF_BF16) | (dev == SF_DEV_CPU ? SF_DT(SF_F32) | SF_DT(SF_F64) : 0);
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && used < n; d++)
        used += (size_t)snprintf(buf + used, n - used, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (used < n) snprintf(buf + used, n - used, "]");
}

void sf_op_check_shape(sf_op_args *a, const char *name, const sf_tensor *t, int ndim, const int64_t *shape)
{
    int ok = t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
    if (ok) return;
    char want[128], got[128];
    shape_str(want, sizeof want, ndim, shape);
    shape_str(got, sizeof got, t->ndim, t->shape);
    sf_op_error(a, "'%s' has shape %s (expected %s)", name, got, want);
}

const float *sf_op_fp8_scale(sf_op_args *a, const char *name, const char *of, sf_dtype of_dtype, int fp8,
                             sf_fp8_scale_form form, int *per_row)
{
    const sf_tensor *s = sf_arg_tensor(a, name);
    if (per_row) *per_row = 0;
    if (!fp8) {
        if (s) sf_op_error(a, "'%s' scales an FP8 '%s'; '%s' is %s", name, of, of, sf_dtype_name(of_dtype));
        return NULL;
    }
    const int64_t rows = form.rows == 1 ? 0 : form.rows;
    const int per_tensor = form.per_tensor || form.rows == 1;
    char shapes[96];
    if (rows > 0)
        snprintf(shapes, sizeof shapes, "%s[%lld] (one per %s)", per_tensor ? "[1] or " : "", (long long)rows, form.unit);
    else
        snprintf(shapes, sizeof shapes, "[1]");
    if (!s) {
        if (form.optional) return NULL;
        sf_op_error(a, "'%s' is %s: it needs its '%s', an f32 %s", of, sf_dtype_name(of_dtype), name, shapes);
    }
    sf_op_check_dtype(a, name, s, SF_DT(SF_F32));
    const int is_rows = rows > 0 && s->ndim == 1 && s->shape[0] == rows;
    if (!(is_rows || (per_tensor && s->ndim == 1 && s->shape[0] == 1)) || !sf_tensor_is_contiguous(s))
        sf_op_error(a, "'%s' must be a contiguous f32 %s", name, shapes);
    if (per_row) *per_row = is_rows;
    return (const float *)s->data;
}

void sf_op_check_fp8_gpu(sf_op_args *a, const char *what)
{
    const int cc = sf_cuda_cc();
    if (cc < 89)
        sf_op_error(a, "%s need a GPU with FP8 tensor cores (compute capability 8.9 or later), this one is %d.%d", what,
                    cc / 10, cc % 10);
}

void sf_op_check_bnhd(sf_op_args *a, const char *name, const sf_tensor *t, int64_t *stride)
{
    if (t->ndim != 4) sf_op_error(a, "'%s' must be [B, N, H, D], got %d dimensions", name, t->ndim);
    if (t->stride[3] != 1 && t->shape[3] > 1) sf_op_error(a, "'%s' must have a contiguous last (head) dimension", name);
    for (int d = 0; d < 3; d++) stride[d] = t->stride[d];
}

void sf_op_check_cache(sf_op_args *a, const char *name, const sf_tensor *cache, const sf_tensor *bt, int64_t batch,
                       const char *of, sf_op_cache *c)
{
    memset(c, 0, sizeof *c);
    if (bt) {
        sf_op_check_dtype(a, "block_table", bt, SF_DT(SF_I32));
        if (bt->ndim != 2 || bt->shape[0] != batch)
            sf_op_error(a, "'block_table' must be [B = %lld, pages per sequence]", (long long)batch);
        if (bt->stride[1] != 1 && bt->shape[1] > 1) sf_op_error(a, "'block_table' must have contiguous rows");
        const int64_t page = cache->shape[1];
        if (page & (page - 1))
            sf_op_error(a, "page size %lld (dimension 2 of the paged '%s') is not supported: it must be a power of two",
                        (long long)page, name);
        c->block_table = (const int32_t *)bt->data;
        c->bt_stride = bt->stride[0];
        c->page_size = page;
        c->n_pages = cache->shape[0];
        c->capacity = bt->shape[1] * page;
    } else {
        if (cache->shape[0] != batch)
            sf_op_error(a, "the contiguous cache '%s' holds %lld sequences (dimension 1), '%s' %lld: pass a block_table "
                        "for a paged one", name, (long long)cache->shape[0], of, (long long)batch);
        c->capacity = c->page_size = cache->shape[1];
        c->n_pages = batch;
    }
    if (c->capacity > (1 << 30))
        sf_op_error(a, "the cache holds %lld keys a sequence: at most 2^30", (long long)c->capacity);
}

static void parse_value(sf_op_args *a, int i, int idx)
{
    lua_State *L = a->L;
    const sf_arg_spec *s = &a->op->args[i];
    const char *given = luaL_typename(L, idx);      /* before any conversion below */
    int ok = 1;
    switch (s->type) {
    case SF_ARG_TENSOR: ok = luaL_testudata(L, idx, SF_TENSOR_MT) != NULL; if (ok) a->v[i].t = sf_check_tensor(L, idx); break;
    case SF_ARG_BOOL: ok = lua_isboolean(L, idx); a->v[i].b = lua_toboolean(L, idx); break;
    case SF_ARG_NUMBER: ok = lua_type(L, idx) == LUA_TNUMBER; a->v[i].n = lua_tonumber(L, idx); break;
    case SF_ARG_INTEGER: a->v[i].i = lua_tointegerx(L, idx, &ok); break;
    case SF_ARG_STRING: ok = lua_type(L, idx) == LUA_TSTRING; a->v[i].s = ok ? lua_tostring(L, idx) : NULL; break;
    case SF_ARG_STREAM: a->v[i].stream = sf_opt_stream(L, idx); break;
    }
    if (!ok)
        sf_op_error(a, "argument '%s' must be a %s, got %s", s->name, type_names[s->type], given);
    a->present[i] = 1;
}

static void accepted_list(const sf_op *op, char *buf, size_t n)
{
    buf[0] = 0;
    for (int i = 0; op->args[i].name; i++)
        snprintf(buf + strlen(buf), n - strlen(buf), "%s%s", i ? ", " : "", op->args[i].name);
}

/* op{...}: upvalue 1 is the op */
static int call_op(lua_State *L)
{
    sf_op_args a;
    a.L = L;
    a.op = (const sf_op *)lua_touserdata(L, lua_upvalueindex(1));
    memset(a.present, 0, sizeof a.present);
    if (!lua_istable(L, 1)) sf_op_error(&a, "expects a table of named arguments, e.g. sf.ops.%s{...}", a.op->name);
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING) sf_op_error(&a, "arguments are named: got a %s key", luaL_typename(L, -2));
        const char *key = lua_tostring(L, -2);
        int i = 0;
        while (a.op->args[i].name && strcmp(a.op->args[i].name, key) != 0) i++;
        if (!a.op->args[i].name) {
            char list[512];
            accepted_list(a.op, list, sizeof list);
            sf_op_error(&a, "unknown argument '%s' (accepted: %s)", key, list);
        }
        parse_value(&a, i, lua_gettop(L));
        lua_pop(L, 1);
    }
    for (int i = 0; a.op->args[i].name; i++)
        if (a.op->args[i].required && !a.present[i]) sf_op_error(&a, "missing argument '%s'", a.op->args[i].name);
    sf_begin_op(L, a.op->name);
    int top = lua_gettop(L);
    a.op->run(&a);
    sf_capture_check(L, a.op->name);   /* raising here, too, the op is no longer named */
    return lua_gettop(L) - top;
}

static const sf_op *find_op(const char *name)
{
    for (int i = 0; registry[i]; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

/* sf.op(name, {args}) */
static int l_op(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const sf_op *op = find_op(name);
    if (!op) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (int i = 0; registry[i]; i++) {
            if (i) luaL_addstring(&b, ", ");
            luaL_addstring(&b, registry[i]->name);
        }
        luaL_pushresult(&b);
        return luaL_error(L, "unknown op '%s' (known: %s)", name, lua_tostring(L, -1));
    }
    lua_remove(L, 1);
    lua_pushlightuserdata(L, (void *)op);
    lua_pushcclosure(L, call_op, 1);
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* sf.op_list() -> { {name=, doc=, args={ {name=, type=, required=, default=, doc=}, ...}}, ...} */
static int l_op_list(lua_State *L)
{
    lua_newtable(L);
    for (int i = 0; registry[i]; i++) {
        const sf_op *op = registry[i];
        lua_createtable(L, 0, 3);
        lua_pushstring(L, op->name); lua_setfield(L, -2, "name");
        lua_pushstring(L, op->doc); lua_setfield(L, -2, "doc");
        lua_newtable(L);
        for (int j = 0; op->args[j].name; j++) {
            const sf_arg_spec *s = &op->args[j];
            lua_createtable(L, 0, 5);
            lua_pushstring(L, s->name); lua_setfield(L, -2, "name");
            lua_pushstring(L, type_names[s->type]); lua_setfield(L, -2, "type");
            lua_pushboolean(L, s->required); lua_setfield(L, -2, "required");
            if (s->dflt) { lua_pushstring(L, s->dflt); lua_setfield(L, -2, "default"); }
            lua_pushstring(L, s->doc); lua_setfield(L, -2, "doc");
            lua_rawseti(L, -2, j + 1);
        }
        lua_setfield(L, -2, "args");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

void sf_print_op_list(void)
{
    for (int i = 0; registry[i]; i++) {
        const sf_op *op = registry[i];
        printf("%s — %s\n", op->name, op->doc);
        for (int j = 0; op->args[j].name; j++) {
            const sf_arg_spec *s = &op->args[j];
            char extra[64] = "";
            if (s->required) snprintf(extra, sizeof extra, ", required");
            else if (s->dflt) snprintf(extra, sizeof extra, ", default %s", s->dflt);
            printf("    %-10s %s%s — %s\n", s->name, type_names[s->type], extra, s->doc);
        }
        printf("\n");
    }
}

void sf_register_ops(lua_State *L)
{
    lua_newtable(L);
    for (int i = 0; registry[i]; i++) {
        lua_pushlightuserdata(L, (void *)registry[i]);
        lua_pushcclosure(L, call_op, 1);
        lua_setfield(L, -2, registry[i]->name);
    }
    lua_setfield(L, -2, "ops");
    lua_pushcfunction(L, l_op);
    lua_setfield(L, -2, "op");
    lua_pushcfunction(L, l_op_list);
    lua_setfield(L, -2, "op_list");
    /* fixed limits of the ops, for scenarios that check their parameters before anything runs */
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, SF_DECODE_MAX_QUERIES);
    lua_setfield(L, -2, "decode_queries");
    lua_pushinteger(L, SF_DECODE_MAX_SPLITS);
    lua_setfield(L, -2, "decode_splits");
    lua_pushinteger(L, SF_GEMV_MAX_SPLITS);
    lua_setfield(L, -2, "gemv_splits");
    lua_pushinteger(L, SF_GEMV_MAX_M);
    lua_setfield(L, -2, "gemv_rows");
    lua_setfield(L, -2, "limits");
}
