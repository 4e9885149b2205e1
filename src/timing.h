/* The host clock. */
#ifndef SF_TIMING_H
#define SF_TIMING_H
#include <lua.h>
double sf_now(void);
int luaopen_sfbench_timing(lua_State *L);
#endif
