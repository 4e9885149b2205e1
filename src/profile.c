/* Hooks for external profilers, no-ops on the CPU backend: NVTX push/pop ranges (the toolkit's
 * header-only nvtx3), which Nsight Systems shows on its timeline and Nsight Compute selects
 * kernels by (--nvtx-include), and cudaProfilerStart/Stop, which bound what a profiler started
 * with its capture off records (ncu --profile-from-start off, nsys --capture-range=cudaProfilerApi).
 * What the ranges are called and when the profiler runs is sfbench.profile's business. */
#include "config.h"
#include <lauxlib.h>
#include "sfbench.h"
#include "host.h"
#ifdef SF_HAVE_CUDA
#include <cuda_profiler_api.h>
#include <nvtx3/nvToolsExt.h>
#include "cuda_check.h"
#endif

/* sf.nvtx_push(name): opens a range on this thread's stack (its return, the depth, is -2 when no
 * tool is attached: nothing to check) */
static int l_nvtx_push(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
#ifdef SF_HAVE_CUDA
    if (sf_dev.kind == SF_DEV_CUDA) nvtxRangePushA(name);
#else
    (void)name;
#endif
    return 0;
}

/* sf.nvtx_pop(): closes the innermost range */
static int l_nvtx_pop(lua_State *L)
{
    (void)L;
#ifdef SF_HAVE_CUDA
    if (sf_dev.kind == SF_DEV_CUDA) nvtxRangePop();
#endif
    return 0;
}

static int l_profiler_start(lua_State *L)
{
#ifdef SF_HAVE_CUDA
    if (sf_dev.kind == SF_DEV_CUDA) SF_CUDA(L, cudaProfilerStart());
#else
    (void)L;
#endif
    return 0;
}

static int l_profiler_stop(lua_State *L)
{
#ifdef SF_HAVE_CUDA
    if (sf_dev.kind == SF_DEV_CUDA) SF_CUDA(L, cudaProfilerStop());
#else
    (void)L;
#endif
    return 0;
}

void sf_register_profile(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"nvtx_push", l_nvtx_push}, {"nvtx_pop", l_nvtx_pop},
                                     {"profiler_start", l_profiler_start}, {"profiler_stop", l_profiler_stop},
                                     {NULL, NULL}};
    luaL_setfuncs(L, funcs, 0);
}
