/* Events, streams and the host clock. On the CUDA backend events are cudaEvents on a stream; on
 * the CPU backend the same API reads the host clock (sf_now), so the harness is the same
 * everywhere. */
#include "config.h"
#include <string.h>
#include <time.h>
#include <lauxlib.h>
#include "sfbench.h"
#include "backend.h"
#include "stream.h"
#include "graph.h"
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

/* destroyed: by __close or __gc; the userdata stays, unusable, as a freed tensor does */
typedef struct { sf_device_kind dev; int recorded, destroyed; double host_s; void *ev; } sf_event;
typedef struct { sf_device_kind dev; int destroyed; void *stream; } sf_stream;

void *sf_opt_stream(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx)) return sf_default_stream();
    sf_stream *s = (sf_stream *)luaL_checkudata(L, idx, STREAM_MT);
    if (s->destroyed) luaL_argerror(L, idx, "stream has been destroyed");
    return s->stream;
}

static sf_event *check_event(lua_State *L, int idx)
{
    sf_event *e = (sf_event *)luaL_checkudata(L, idx, EVENT_MT);
    if (e->destroyed) luaL_argerror(L, idx, "event has been destroyed");
    return e;
}

/* "event(cuda)", "event(cpu, recorded)", "event(cuda, destroyed)"; streams alike */
static int push_name(lua_State *L, const char *type, sf_device_kind dev, const char *state)
{
    lua_pushfstring(L, "%s(%s%s%s)", type, sf_backend_of(dev)->name, state ? ", " : "", state ? state : "");
    return 1;
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

#ifdef SF_HAVE_CUDA
static void destroy_event(void *e) { cudaEventDestroy((cudaEvent_t)e); }
static void destroy_stream(void *s) { cudaStreamDestroy((cudaStream_t)s); }
#endif

/* __gc and __close */
static int ev_gc(lua_State *L)
{
    sf_event *e = (sf_event *)luaL_checkudata(L, 1, EVENT_MT);
#ifdef SF_HAVE_CUDA
    if (e->ev) sf_release_after_capture(destroy_event, e->ev);
#endif
    e->ev = NULL;
    e->destroyed = 1;
    return 0;
}

static int ev_tostring(lua_State *L)
{
    sf_event *e = (sf_event *)luaL_checkudata(L, 1, EVENT_MT);
    return push_name(L, "event", e->dev, e->destroyed ? "destroyed" : e->recorded ? "recorded" : NULL);
}

/* ev:record([stream]) */
static int ev_record(lua_State *L)
{
    sf_event *e = check_event(L, 1);
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

/* ev:wait([stream]): work queued on the stream (by default the default stream) after this call
 * starts only once the event's last record has completed: how one stream's work is ordered
 * after another's. On the CPU backend, where ops run as they are called, it does nothing. */
static int ev_wait(lua_State *L)
{
    sf_event *e = check_event(L, 1);
    void *stream = sf_opt_stream(L, 2);
    if (!e->recorded) return luaL_error(L, "wait: the event must have been recorded");
#ifdef SF_HAVE_CUDA
    if (e->dev == SF_DEV_CUDA) SF_CUDA(L, cudaStreamWaitEvent((cudaStream_t)stream, (cudaEvent_t)e->ev, 0));
#else
    (void)stream;
#endif
    return 0;
}

static int ev_synchronize(lua_State *L)
{
    sf_event *e = check_event(L, 1);
#ifdef SF_HAVE_CUDA
    if (e->dev == SF_DEV_CUDA && e->recorded) SF_CUDA(L, cudaEventSynchronize((cudaEvent_t)e->ev));
#endif
    (void)e;
    return 0;
}

/* sf.elapsed(start, stop) -> milliseconds from start to stop (waits for stop) */
static int l_elapsed(lua_State *L)
{
    sf_event *a = check_event(L, 1), *b = check_event(L, 2);
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

/* __gc and __close: work queued on the stream still runs */
static int st_gc(lua_State *L)
{
    sf_stream *s = (sf_stream *)luaL_checkudata(L, 1, STREAM_MT);
#ifdef SF_HAVE_CUDA
    if (s->stream) sf_release_after_capture(destroy_stream, s->stream);
#endif
    s->stream = NULL;
    s->destroyed = 1;
    return 0;
}

static int st_tostring(lua_State *L)
{
    sf_stream *s = (sf_stream *)luaL_checkudata(L, 1, STREAM_MT);
    return push_name(L, "stream", s->dev, s->destroyed ? "destroyed" : NULL);
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
    static const luaL_Reg ev_methods[] = {{"record", ev_record}, {"synchronize", ev_synchronize},
                                         {"wait", ev_wait}, {NULL, NULL}};
    static const luaL_Reg st_methods[] = {{"sync", st_sync}, {NULL, NULL}};
    static const luaL_Reg funcs[] = {{"event", l_event}, {"elapsed", l_elapsed}, {"stream", l_stream},
                                     {"now", l_now}, {NULL, NULL}};
    static const luaL_Reg ev_meta[] = {{"__gc", ev_gc}, {"__close", ev_gc}, {"__tostring", ev_tostring}, {NULL, NULL}};
    static const luaL_Reg st_meta[] = {{"__gc", st_gc}, {"__close", st_gc}, {"__tostring", st_tostring}, {NULL, NULL}};
    sf_define_type(L, EVENT_MT, ev_meta, ev_methods);
    sf_define_type(L, STREAM_MT, st_meta, st_methods);
    luaL_setfuncs(L, funcs, 0);
}
