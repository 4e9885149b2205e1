/* Events, streams and the host clock. On the CUDA backend events are cudaEvents on a stream; on
 * the CPU backend the same API reads the host clock (sf_now), so the harness is the same
 * everywhere. */
#include "config.h"
#include <string.h>
#include <time.h>
#include <lauxlib.h>
#include "sfbench.h"
#include "stream.h"
#include "host.h"
#ifdef SF_HAVE_CUDA
#include "cuda_check.h"
#endif

double sf_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define EVENT_MT "sfbench.event"
#define STREAM_MT "sfbench.stream"

typedef struct { sf_device_kind dev; int recorded; double host_s; void *ev; } sf_event;
typedef struct { sf_device_kind dev; void *stream; } sf_stream;

void *sf_opt_stream(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx)) return NULL;
    sf_stream *s = (sf_stream *)luaL_checkudata(L, idx, STREAM_MT);
    if (s->dev == SF_DEV_CUDA && !s->stream) luaL_argerror(L, idx, "stream has been destroyed");
    return s->stream;
}

static int l_event(lua_State *L)
{
    sf_event *e = (sf_event *)lua_newuserdatauv(L, sizeof *e, 0);
    memset(e, 0, sizeof *e);
    luaL_setmetatable(L, EVENT_MT);
    e->dev = sf_dev.kind;
#ifdef SF_HAVE_CUDA
    if (e->dev == SF_DEV_CUDA) SF_CUDA(L, cudaEventCreate((cudaEvent_t *)&e->ev));
#endif
    return 1;
}

static int ev_gc(lua_State *L)
{
    sf_event *e = (sf_event *)luaL_checkudata(L, 1, EVENT_MT);
#ifdef SF_HAVE_CUDA
    if (e->ev) cudaEventDestroy((cudaEvent_t)e->ev);
#endif
    e->ev = NULL;
    return 0;
}

/* ev:record([stream]) */
static int ev_record(lua_State *L)
{
    sf_event *e = (sf_event *)luaL_checkudata(L, 1, EVENT_MT);
    void *stream = sf_opt_stream(L, 2);
#ifdef SF_HAVE_CUDA
    if (e->dev == SF_DEV_CUDA) SF_CUDA(L, cudaEventRecord((cudaEvent_t)e->ev, (cudaStream_t)stream));
#else
    (void)stream;
#endif
    e->host_s = sf_now();
    e->recorded = 1;
    lua_settop(L, 1);
    return 1;
}

static int ev_synchronize(lua_State *L)
{
    sf_event *e = (sf_event *)luaL_checkudata(L, 1, EVENT_MT);
#ifdef SF_HAVE_CUDA
    if (e->dev == SF_DEV_CUDA && e->recorded) SF_CUDA(L, cudaEventSynchronize((cudaEvent_t)e->ev));
#endif
    (void)e;
    return 0;
}

/* sf.elapsed(start, stop) -> milliseconds from start to stop (waits for stop) */
static int l_elapsed(lua_State *L)
{
    sf_event *a = (sf_event *)luaL_checkudata(L, 1, EVENT_MT), *b = (sf_event *)luaL_checkudata(L, 2, EVENT_MT);
    if (!a->recorded || !b->recorded) return luaL_error(L, "elapsed: both events must have been recorded");
    if (a->dev != b->dev) return luaL_error(L, "elapsed: events of different devices");
#ifdef SF_HAVE_CUDA
    if (a->dev == SF_DEV_CUDA) {
        float ms;
        SF_CUDA(L, cudaEventSynchronize((cudaEvent_t)b->ev));
        SF_CUDA(L, cudaEventElapsedTime(&ms, (cudaEvent_t)a->ev, (cudaEvent_t)b->ev));
        lua_pushnumber(L, ms);
        return 1;
    }
#endif
    lua_pushnumber(L, (b->host_s - a->host_s) * 1e3);
    return 1;
}

static int l_stream(lua_State *L)
{
    sf_stream *s = (sf_stream *)lua_newuserdatauv(L, sizeof *s, 0);
    memset(s, 0, sizeof *s);
    luaL_setmetatable(L, STREAM_MT);
    s->dev = sf_dev.kind;
#ifdef SF_HAVE_CUDA
    if (s->dev == SF_DEV_CUDA) SF_CUDA(L, cudaStreamCreateWithFlags((cudaStream_t *)&s->stream, cudaStreamNonBlocking));
#endif
    return 1;
}

static int st_gc(lua_State *L)
{
    sf_stream *s = (sf_stream *)luaL_checkudata(L, 1, STREAM_MT);
#ifdef SF_HAVE_CUDA
    if (s->stream) cudaStreamDestroy((cudaStream_t)s->stream);
#endif
    s->stream = NULL;
    return 0;
}

static int st_sync(lua_State *L)
{
    void *stream = sf_opt_stream(L, 1);
#ifdef SF_HAVE_CUDA
    if (sf_dev.kind == SF_DEV_CUDA) SF_CUDA(L, cudaStreamSynchronize((cudaStream_t)stream));
#else
    (void)stream;
#endif
    return 0;
}

static int l_now(lua_State *L)
{
    lua_pushnumber(L, sf_now());
    return 1;
}

void sf_register_stream(lua_State *L)
{
    static const luaL_Reg ev_methods[] = {{"record", ev_record}, {"synchronize", ev_synchronize}, {NULL, NULL}};
    static const luaL_Reg st_methods[] = {{"sync", st_sync}, {NULL, NULL}};
    static const luaL_Reg funcs[] = {{"event", l_event}, {"elapsed", l_elapsed}, {"stream", l_stream},
                                     {"now", l_now}, {NULL, NULL}};
    luaL_newmetatable(L, EVENT_MT);
    lua_pushcfunction(L, ev_gc);
    lua_setfield(L, -2, "__gc");
    luaL_newlib(L, ev_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newmetatable(L, STREAM_MT);
    lua_pushcfunction(L, st_gc);
    lua_setfield(L, -2, "__gc");
    luaL_newlib(L, st_methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_setfuncs(L, funcs, 0);
}
