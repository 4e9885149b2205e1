/* User kernels compiled at run time: sf.compile() runs NVRTC over CUDA source, loads the CUBIN
 * through the runtime's library API (no libcuda link, so sfbench still starts without a driver)
 * and launches kernels by name with arguments packed from Lua values. */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "sfbench.h"
#include "stream.h"
#include "graph.h"
#include "host.h"

#define MODULE_MT "sfbench.module"
#define KERNEL_MT "sfbench.kernel"
#define MAX_PARAMS 32

#ifndef SF_HAVE_CUDA
static int l_compile(lua_State *L)
{
    return luaL_error(L, "compile: this sfbench was built without CUDA; user kernels need it");
}
void sf_register_launch(lua_State *L)
{
    lua_pushcfunction(L, l_compile);
    lua_setfield(L, -2, "compile");
}
#else
#include <nvrtc.h>
#include "cuda_check.h"

typedef struct { cudaLibrary_t lib; char name[128]; } sf_module;

typedef enum { P_PTR, P_I32, P_I64, P_F32, P_F64, P_U8, P_ANY } ptype;

typedef struct {
    cudaKernel_t fn;
    int nparams, smem_limit;
    size_t size[MAX_PARAMS];
    ptype type[MAX_PARAMS];       /* P_ANY: infer from the Lua value */
    char name[128];
} sf_kernel;

static void nvrtc_check(lua_State *L, nvrtcResult r, const char *call)
{
    if (r != NVRTC_SUCCESS) luaL_error(L, "compile: %s failed: %s", call, nvrtcGetErrorString(r));
}

/* a string naming an existing file is read as source; anything else is the source itself */
static const char *source_text(lua_State *L, int idx, const char **name)
{
    size_t len;
    const char *s = luaL_checklstring(L, idx, &len);
    *name = "kernel.cu";
    if (memchr(s, '\n', len) || len > 4096) return s;
    FILE *f = fopen(s, "rb");
    if (!f) {
        if (len > 3 && strcmp(s + len - 3, ".cu") == 0) luaL_error(L, "compile: cannot open '%s'", s);
        return s;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) luaL_addlstring(&b, chunk, n);
    fclose(f);
    luaL_pushresult(&b);
    lua_replace(L, idx);
    *name = s;
    return lua_tostring(L, idx);
}

/* sf.compile(source_or_path [, {options = {...}, name = "..."}]) -> module */
static int l_compile(lua_State *L)
{
    if (sf_dev.kind != SF_DEV_CUDA) return luaL_error(L, "compile: user kernels need the CUDA backend (running on cpu)");
    const char *name;
    lua_pushvalue(L, 1);
    const char *src = source_text(L, lua_gettop(L), &name);
    name = lua_pushstring(L, name);
    int major, minor;
    SF_CUDA(L, cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, sf_dev.cuda_index));
    SF_CUDA(L, cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, sf_dev.cuda_index));
    char arch[32];
    /* sm_90a etc.: the arch-specific target exposes wgmma/setmaxnreg to user kernels too */
    snprintf(arch, sizeof arch, "-arch=sm_%d%d%s", major, minor, major >= 9 ? "a" : "");
    const char *opts[64];
    int nopts = 0;
    opts[nopts++] = arch;
    opts[nopts++] = "-std=c++17";
    opts[nopts++] = "-default-device";
    opts[nopts++] = "--include-path=" SF_CUDA_INCLUDE;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "options");
        if (lua_istable(L, -1)) {
            int n = (int)luaL_len(L, -1);
            for (int i = 1; i <= n && nopts < 64; i++) {
                lua_geti(L, -1, i);
                opts[nopts++] = luaL_checkstring(L, -1);
                lua_pop(L, 1);                            /* still referenced by the options table */
            }
        } else if (!lua_isnil(L, -1)) {
            return luaL_error(L, "compile: option 'options' must be a list of strings");
        }
    }
    nvrtcProgram prog;
    nvrtc_check(L, nvrtcCreateProgram(&prog, src, name, 0, NULL, NULL), "nvrtcCreateProgram");
    nvrtcResult r = nvrtcCompileProgram(prog, nopts, opts);
    if (r != NVRTC_SUCCESS) {
        size_t log_size = 0;
        nvrtcGetProgramLogSize(prog, &log_size);
        char *log = (char *)lua_newuserdatauv(L, log_size + 1, 0);
        log[0] = 0;
        nvrtcGetProgramLog(prog, log);
        nvrtcDestroyProgram(&prog);
        size_t n = strlen(log);
        while (n && (log[n - 1] == '\n' || log[n - 1] == ' ')) log[--n] = 0;
        return luaL_error(L, "compile: NVRTC could not compile %s:\n%s", name, log);
    }
    size_t cubin_size = 0;
    nvrtc_check(L, nvrtcGetCUBINSize(prog, &cubin_size), "nvrtcGetCUBINSize");
    char *cubin = (char *)lua_newuserdatauv(L, cubin_size, 0);
    r = nvrtcGetCUBIN(prog, cubin);
    nvrtcDestroyProgram(&prog);
    nvrtc_check(L, r, "nvrtcGetCUBIN");
    sf_module *m = (sf_module *)lua_newuserdatauv(L, sizeof *m, 0);
    memset(m, 0, sizeof *m);
    luaL_setmetatable(L, MODULE_MT);
    snprintf(m->name, sizeof m->name, "%s", name);
    SF_CUDA(L, cudaLibraryLoadData(&m->lib, cubin, NULL, NULL, 0, NULL, NULL, 0));
    return 1;
}

static void unload(void *lib) { cudaLibraryUnload((cudaLibrary_t)lib); }

/* __gc and __close: unloads the module; its kernels cannot be launched after */
static int mod_gc(lua_State *L)
{
    sf_module *m = (sf_module *)luaL_checkudata(L, 1, MODULE_MT);
    if (m->lib) sf_release_after_capture(unload, m->lib);
    m->lib = NULL;
    return 0;
}

static sf_module *check_module(lua_State *L, int idx)
{
    sf_module *m = (sf_module *)luaL_checkudata(L, idx, MODULE_MT);
    if (!m->lib) luaL_argerror(L, idx, "module has been unloaded");
    return m;
}

static int mod_tostring(lua_State *L)
{
    sf_module *m = (sf_module *)luaL_checkudata(L, 1, MODULE_MT);
    if (m->lib) lua_pushfstring(L, "module(%s)", m->name);
    else lua_pushfstring(L, "module(%s, unloaded)", m->name);
    return 1;
}

static ptype parse_ptype(lua_State *L, const char *s, size_t len)
{
    static const struct { const char *n; ptype t; } names[] = {
        {"ptr", P_PTR}, {"i32", P_I32}, {"int", P_I32}, {"i64", P_I64}, {"f32", P_F32}, {"float", P_F32},
        {"f64", P_F64}, {"double", P_F64}, {"u8", P_U8}, {"bool", P_U8}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].n) == len && strncmp(names[i].n, s, len) == 0) return names[i].t;
    sf_error(L, "kernel: unknown parameter type '%.*s' in sig (use ptr, i32, i64, f32, f64, u8)", (int)len, s);
    return P_ANY;
}

static const size_t ptype_size[] = {8, 4, 8, 4, 8, 1};

/* module:kernel(name [, {sig = "ptr,f32,i32"}]) -> kernel */
static int mod_kernel(lua_State *L)
{
    sf_module *m = check_module(L, 1);
    const char *name = luaL_checkstring(L, 2);
    sf_kernel *k = (sf_kernel *)lua_newuserdatauv(L, sizeof *k, 1);
    memset(k, 0, sizeof *k);
    luaL_setmetatable(L, KERNEL_MT);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);                          /* the kernel keeps its module loaded */
    snprintf(k->name, sizeof k->name, "%s", name);
    if (cudaLibraryGetKernel(&k->fn, m->lib, name) != cudaSuccess) {
        cudaGetLastError();
        return luaL_error(L, "kernel: %s has no kernel '%s' (is it declared extern \"C\" __global__?)", m->name, name);
    }
    size_t off;
    while (k->nparams < MAX_PARAMS &&
           cudaFuncGetParamInfo((const void *)k->fn, (size_t)k->nparams, &off, &k->size[k->nparams]) == cudaSuccess) {
        k->type[k->nparams] = P_ANY;
        k->nparams++;
    }
    cudaGetLastError();                                   /* the probe past the last parameter fails */
    const char *sig = NULL;
    if (lua_istable(L, 3)) {
        lua_getfield(L, 3, "sig");
        sig = lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    if (sig) {
        int i = 0;
        for (const char *p = sig; *p; i++) {
            while (*p == ' ' || *p == ',') p++;
            if (!*p) break;
            size_t len = strcspn(p, " ,");
            if (i >= k->nparams) return luaL_error(L, "kernel '%s': sig names more than its %d parameters", name, k->nparams);
            k->type[i] = parse_ptype(L, p, len);
            if (ptype_size[k->type[i]] != k->size[i])
                sf_error(L, "kernel '%s': parameter %d is %d bytes but sig says %.*s", name, i + 1,
                                  (int)k->size[i], (int)len, p);
            p += len;
        }
        if (i != k->nparams) return luaL_error(L, "kernel '%s': sig names %d of its %d parameters", name, i, k->nparams);
    }
    return 1;
}

/* a kernel whose module is still loaded (the module is the kernel's user value) */
static sf_kernel *check_kernel(lua_State *L, int idx)
{
    sf_kernel *k = (sf_kernel *)luaL_checkudata(L, idx, KERNEL_MT);
    lua_getiuservalue(L, idx, 1);
    int loaded = ((sf_module *)lua_touserdata(L, -1))->lib != NULL;
    lua_pop(L, 1);
    if (!loaded) luaL_argerror(L, idx, "the kernel's module has been unloaded");
    return k;
}

static int k_tostring(lua_State *L)
{
    sf_kernel *k = (sf_kernel *)luaL_checkudata(L, 1, KERNEL_MT);
    lua_getiuservalue(L, 1, 1);
    const sf_module *m = (const sf_module *)lua_touserdata(L, -1);
    lua_pushfstring(L, "kernel(%s, %d parameters, %s%s)", k->name, k->nparams, m->name, m->lib ? "" : " unloaded");
    return 1;
}

static dim3 check_dim3(lua_State *L, int idx, const char *what)
{
    unsigned v[3] = {1, 1, 1};
    if (lua_isinteger(L, idx)) {
        lua_Integer x = lua_tointeger(L, idx);
        if (x < 1) luaL_error(L, "launch: %s must be positive, got %I", what, (LUAI_UACINT)x);
        v[0] = (unsigned)x;
    } else if (lua_istable(L, idx)) {
        int n = (int)luaL_len(L, idx);
        if (n < 1 || n > 3) luaL_error(L, "launch: %s has 1 to 3 dimensions", what);
        for (int i = 0; i < n; i++) {
            lua_geti(L, idx, i + 1);
            int ok;
            lua_Integer x = lua_tointegerx(L, -1, &ok);
            if (!ok || x < 1) luaL_error(L, "launch: %s[%d] must be a positive integer", what, i + 1);
            v[i] = (unsigned)x;
            lua_pop(L, 1);
        }
    } else {
        luaL_error(L, "launch: %s must be an integer or a table {x, y, z}", what);
    }
    dim3 d = {v[0], v[1], v[2]};
    return d;
}

typedef union { void *p; int32_t i32; int64_t i64; float f32; double f64; uint8_t u8; } pvalue;

/* args (a list at idx) -> values[]; a tensor is its device pointer; a number's type comes from
 * the kernel's sig, else from the parameter's size and the number's subtype */
static void pack_args(lua_State *L, sf_kernel *k, int idx, pvalue *values, void **ptrs)
{
    int n = lua_isnoneornil(L, idx) ? 0 : (luaL_checktype(L, idx, LUA_TTABLE), (int)luaL_len(L, idx));
    if (n != k->nparams) luaL_error(L, "launch: kernel '%s' takes %d arguments, %d given", k->name, k->nparams, n);
    for (int i = 0; i < n; i++) {
        lua_geti(L, idx, i + 1);
        size_t size = k->size[i];
        ptype t = k->type[i];
        int lt = lua_type(L, -1);
        if (lt == LUA_TUSERDATA) {
            sf_tensor *tn = (sf_tensor *)luaL_testudata(L, -1, SF_TENSOR_MT);
            if (!tn || (t != P_ANY && t != P_PTR) || size != 8)
                luaL_error(L, "launch: argument %d of '%s' is a %s, which does not fit a %d-byte parameter", i + 1,
                           k->name, tn ? "tensor" : "userdata", (int)size);
            if (!tn->data) luaL_error(L, "launch: argument %d of '%s' is a freed tensor", i + 1, k->name);
            if (tn->device != SF_DEV_CUDA) luaL_error(L, "launch: argument %d of '%s' is a cpu tensor", i + 1, k->name);
            values[i].p = tn->data;
        } else if (lt == LUA_TNUMBER || lt == LUA_TBOOLEAN) {
            int is_int = lt == LUA_TBOOLEAN || lua_isinteger(L, -1);
            if (t == P_ANY) t = size == 1 ? P_U8 : size == 4 ? (is_int ? P_I32 : P_F32) : (is_int ? P_I64 : P_F64);
            if (t == P_PTR || ptype_size[t] != size)
                luaL_error(L, "launch: argument %d of '%s' is a number; the parameter is %d bytes", i + 1, k->name, (int)size);
            double d = lt == LUA_TBOOLEAN ? lua_toboolean(L, -1) : lua_tonumber(L, -1);
            switch (t) {
            case P_I32: values[i].i32 = (int32_t)d; break;
            case P_I64: values[i].i64 = lua_isinteger(L, -1) ? (int64_t)lua_tointeger(L, -1) : (int64_t)d; break;
            case P_F32: values[i].f32 = (float)d; break;
            case P_F64: values[i].f64 = d; break;
            default: values[i].u8 = (uint8_t)d; break;
            }
        } else {
            luaL_error(L, "launch: argument %d of '%s' is a %s (expected a tensor or a number)", i + 1, k->name,
                       luaL_typename(L, -1));
        }
        ptrs[i] = &values[i];
        lua_pop(L, 1);
    }
}

typedef struct { dim3 grid, block; size_t shared; void *stream; } launch_cfg;

static void read_cfg(lua_State *L, sf_kernel *k, int grid_idx, int opts_idx, launch_cfg *c)
{
    c->grid = check_dim3(L, grid_idx, "grid");
    c->block = check_dim3(L, grid_idx + 1, "block");
    c->shared = 0;
    c->stream = sf_default_stream();
    if (lua_istable(L, opts_idx)) {
        lua_getfield(L, opts_idx, "shared");
        c->shared = (size_t)luaL_optinteger(L, -1, 0);
        lua_getfield(L, opts_idx, "stream");
        c->stream = sf_opt_stream(L, lua_gettop(L));
        lua_pop(L, 2);
    }
    if (c->shared > 48 * 1024 && (int)c->shared > k->smem_limit) {
        cudaError_t e = cudaFuncSetAttribute((const void *)k->fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)c->shared);
        if (e != cudaSuccess) {
            cudaGetLastError();
            luaL_error(L, "launch: kernel '%s' cannot have %d bytes of shared memory: %s", k->name, (int)c->shared,
                       cudaGetErrorString(e));
        }
        k->smem_limit = (int)c->shared;
    }
}

static void launch_once(lua_State *L, sf_kernel *k, const launch_cfg *c, void **ptrs)
{
    cudaError_t e = cudaLaunchKernel((const void *)k->fn, c->grid, c->block, ptrs, c->shared, (cudaStream_t)c->stream);
    if (e != cudaSuccess) {
        cudaGetLastError();
        sf_error(L, "launch: kernel '%s' failed to launch (grid %u×%u×%u, block %u×%u×%u, %d bytes shared): %s",
                   k->name, c->grid.x, c->grid.y, c->grid.z, c->block.x, c->block.y, c->block.z, (int)c->shared,
                   cudaGetErrorString(e));
    }
}

/* kernel:launch(grid, block, args [, {shared=, stream=}]) */
static int k_launch(lua_State *L)
{
    sf_kernel *k = check_kernel(L, 1);
    launch_cfg c;
    pvalue values[MAX_PARAMS];
    void *ptrs[MAX_PARAMS];
    read_cfg(L, k, 2, 5, &c);
    pack_args(L, k, 4, values, ptrs);
    launch_once(L, k, &c, ptrs);
    return 0;
}

/* kernel:launch_many(n, grid, block, args [, opts]): the same launch n times from a C loop,
 * the baseline against which a Lua loop's overhead is measured */
static int k_launch_many(lua_State *L)
{
    sf_kernel *k = check_kernel(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    launch_cfg c;
    pvalue values[MAX_PARAMS];
    void *ptrs[MAX_PARAMS];
    read_cfg(L, k, 3, 6, &c);
    pack_args(L, k, 5, values, ptrs);
    for (lua_Integer i = 0; i < n; i++) launch_once(L, k, &c, ptrs);
    return 0;
}

/* kernel:attributes() -> {registers=, local_bytes=, static_shared=, max_threads=, params=} */
static int k_attributes(lua_State *L)
{
    sf_kernel *k = check_kernel(L, 1);
    struct cudaFuncAttributes a;
    SF_CUDA(L, cudaFuncGetAttributes(&a, (const void *)k->fn));
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, a.numRegs); lua_setfield(L, -2, "registers");
    lua_pushinteger(L, (lua_Integer)a.localSizeBytes); lua_setfield(L, -2, "local_bytes");
    lua_pushinteger(L, (lua_Integer)a.sharedSizeBytes); lua_setfield(L, -2, "static_shared");
    lua_pushinteger(L, a.maxThreadsPerBlock); lua_setfield(L, -2, "max_threads");
    lua_pushinteger(L, k->nparams); lua_setfield(L, -2, "params");
    return 1;
}

/* module:launch(name, grid, block, args [, opts]): kernel lookup and launch in one call */
static int mod_launch(lua_State *L)
{
    lua_settop(L, 6);
    lua_pushcfunction(L, mod_kernel);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_call(L, 2, 1);                                    /* kernel at 7 */
    lua_replace(L, 2);
    lua_remove(L, 1);                                     /* kernel, grid, block, args, opts */
    return k_launch(L);
}

void sf_register_launch(lua_State *L)
{
    static const luaL_Reg mod_methods[] = {{"kernel", mod_kernel}, {"launch", mod_launch}, {NULL, NULL}};
    static const luaL_Reg k_methods[] = {{"launch", k_launch}, {"launch_many", k_launch_many},
                                         {"attributes", k_attributes}, {NULL, NULL}};
    static const luaL_Reg mod_meta[] = {{"__gc", mod_gc}, {"__close", mod_gc}, {"__tostring", mod_tostring},
                                        {NULL, NULL}};
    static const luaL_Reg k_meta[] = {{"__tostring", k_tostring}, {NULL, NULL}};
    sf_define_type(L, MODULE_MT, mod_meta, mod_methods);
    sf_define_type(L, KERNEL_MT, k_meta, k_methods);
    lua_pushcfunction(L, l_compile);
    lua_setfield(L, -2, "compile");
}
#endif
