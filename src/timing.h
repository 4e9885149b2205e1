/* Host clock and stream arguments, shared by the bindings that take a stream= option. */
#ifndef SF_TIMING_H
#define SF_TIMING_H
#include <lua.h>
double sf_now(void);
void *sf_opt_stream(lua_State *L, int idx);   /* NULL (the default stream) when nil */
int luaopen_sfbench_timing(lua_State *L);
#ifdef SF_HAVE_CUDA
/* The best time in ms of run(ctx) on `stream` over `reps` runs after `warmup` untimed ones: how
 * an op chooses among implementations once per shape. */
float sf_best_ms(lua_State *L, void (*run)(void *ctx), void *ctx, void *stream, int warmup, int reps);
#endif
#endif
