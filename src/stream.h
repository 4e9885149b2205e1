/* The host clock, and stream arguments, shared by the bindings that take a stream= option. */
#ifndef SF_STREAM_H
#define SF_STREAM_H
#include <lua.h>
double sf_now(void);                         /* seconds, monotonic */
void *sf_opt_stream(lua_State *L, int idx);   /* when nil, sf_default_stream() (graph.h) */
#endif
