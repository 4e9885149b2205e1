/* Hooks for external profilers: NVTX ranges and the profiler's capture range (profile.c). */
#ifndef SF_PROFILE_H
#define SF_PROFILE_H
#include <lua.h>
int sf_register_profile(lua_State *L);   /* sf.nvtx_push/pop, sf.profiler_start/stop on the table on top */
#endif
