/* Host clock and stream arguments, shared by the bindings that take a stream= option. */
#ifndef SF_TIMING_H
#define SF_TIMING_H
#include <lua.h>
double sf_now(void);
void *sf_opt_stream(lua_State *L, int idx);   /* NULL (the default stream) when nil */
int luaopen_sfbench_timing(lua_State *L);
#endif
