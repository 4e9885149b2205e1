/* Events, streams and the L2 flush. On the CUDA backend events are cudaEvents on a stream; on
 * the CPU backend the same API reads a monotonic clock, so the harness is the same everywhere. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <lauxlib.h>
#include "sfbench.h"
#include "backend.h"
#include "timing.h"
#include "graph.h"
#ifdef SF_HAVE_CUDA
#include "cuda_check.h"
#include "../kernels/tensor_ops.h"
#endif

#define EVENT_MT "sfbench.event"
#define STREAM_MT "sfbench.stream"

typedef struct { sf_device_kind dev; int recorded; double host_s; void *ev; } sf_event;
typedef struct { sf_device_kind dev; void *stream; } sf_stream;

double sf_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void *sf_opt_stream(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx)) return sf_default_stream();
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

/* sf.flush_l2([stream]): write a buffer the size of the last-level cache, evicting what a
 * previous sample left there (cold-cache timing). */
static int l_flush_l2(lua_State *L)
{
    static void *buf[2];
    static size_t bytes[2];
    void *stream = sf_opt_stream(L, 1);
    sf_device_kind dev = sf_dev.kind;
    if (!buf[dev]) {
        size_t n = (size_t)64 << 20;                       /* CPU: larger than any L3 we meet */
#ifdef SF_HAVE_CUDA
        int l2 = 0;
        if (dev == SF_DEV_CUDA) {
            SF_CUDA(L, cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, sf_dev.cuda_index));
            n = (size_t)l2;
        }
#endif
        buf[dev] = sf_alloc(L, dev, n, "the L2 flush buffer");
        bytes[dev] = n;
    }
#ifdef SF_HAVE_CUDA
    if (dev == SF_DEV_CUDA) {
        SF_CUDA(L, cudaMemsetAsync(buf[dev], 0, bytes[dev], (cudaStream_t)stream));
        return 0;
    }
#endif
    (void)stream;
    memset(buf[dev], (int)(sf_now() * 1e3) & 0xff, bytes[dev]);
    return 0;
}

/* sf.hold([stream]) ... sf.release(): the work queued between them starts only at release, so a
 * batch of short launches runs back to back on the GPU however slowly the host queued it (the
 * blocking kernel of nvbench). A guard ends the hold after about a second; sf.release() returns
 * false when it did (the batch then ran while it was being queued). No-ops on the CPU backend. */
static struct { volatile int *flag; int *timed_out; int *dev_flag, *dev_timed_out; int held; } hold;

static int l_hold(lua_State *L)
{
    void *stream = sf_opt_stream(L, 1);
    if (sf_dev.kind != SF_DEV_CUDA) return 0;
#ifdef SF_HAVE_CUDA
    if (hold.held) return luaL_error(L, "hold: the stream is already held (call sf.release first)");
    if (!hold.flag) {
        void *h;
        SF_CUDA(L, cudaHostAlloc(&h, 2 * sizeof(int), cudaHostAllocMapped));
        hold.flag = (volatile int *)h;
        hold.timed_out = (int *)h + 1;
        SF_CUDA(L, cudaHostGetDevicePointer((void **)&hold.dev_flag, h, 0));
        hold.dev_timed_out = hold.dev_flag + 1;
    }
    int khz = 0;
    SF_CUDA(L, cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, sf_dev.cuda_index));
    *hold.flag = 0;
    *hold.timed_out = 0;
    SF_CUDA(L, sf_spin_cuda(hold.dev_flag, hold.dev_timed_out, (long long)khz * 1000, stream));
    hold.held = 1;
#else
    (void)stream;
#endif
    return 0;
}

static int l_release(lua_State *L)
{
    if (!hold.held) {
        lua_pushboolean(L, 1);
        return 1;
    }
    __atomic_store_n(hold.flag, 1, __ATOMIC_SEQ_CST);
    hold.held = 0;
    lua_pushboolean(L, !__atomic_load_n(hold.timed_out, __ATOMIC_SEQ_CST));
    return 1;
}

#ifdef SF_HAVE_CUDA
static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int sf_fastest(lua_State *L, int n, void (*run)(void *ctx, int i), void *ctx, void *stream, int rounds)
{
    float ms[SF_FASTEST_MAX][SF_FASTEST_ROUNDS];
    cudaEvent_t ev[SF_FASTEST_MAX + 1];
    if (n < 1 || n > SF_FASTEST_MAX || rounds < 1 || rounds > SF_FASTEST_ROUNDS)
        luaL_error(L, "internal: sf_fastest takes 1..%d candidates and 1..%d rounds", SF_FASTEST_MAX, SF_FASTEST_ROUNDS);
    for (int i = 0; i <= n; i++) SF_CUDA(L, cudaEventCreate(&ev[i]));
    for (int i = 0; i < n; i++) run(ctx, i); /* warm-up: first-call setup, caches, clocks */
    for (int r = 0; r < rounds; r++) {
        /* back to back, as in a timed loop; candidate i runs between events i and i + 1 */
        SF_CUDA(L, cudaEventRecord(ev[0], (cudaStream_t)stream));
        for (int i = 0; i < n; i++) {
            run(ctx, i);
            SF_CUDA(L, cudaEventRecord(ev[i + 1], (cudaStream_t)stream));
        }
        SF_CUDA(L, cudaEventSynchronize(ev[n]));
        for (int i = 0; i < n; i++) SF_CUDA(L, cudaEventElapsedTime(&ms[i][r], ev[i], ev[i + 1]));
    }
    for (int i = 0; i <= n; i++) cudaEventDestroy(ev[i]);
    int best = 0;
    float best_ms = 0;
    for (int i = 0; i < n; i++) {
        qsort(ms[i], (size_t)rounds, sizeof(float), cmp_float);
        float median = ms[i][rounds / 2];
        if (i == 0 || median < best_ms) {
            best = i;
            best_ms = median;
        }
    }
    return best;
}

#define SF_CHOICES 64
static struct { sf_choice_key key; int second; } choices[SF_CHOICES];
static int n_choices;

typedef struct pair_ctx { void (*run[2])(void *ctx); void *ctx; } pair_ctx;
static void run_pair(void *ctx, int i)
{
    pair_ctx *p = (pair_ctx *)ctx;
    p->run[i](p->ctx);
}

int sf_run_faster(lua_State *L, const sf_choice_key *key, void (*first)(void *ctx), void (*second)(void *ctx),
                  void *ctx, void *stream, int trials)
{
    for (int i = 0; i < n_choices; i++)
        if (memcmp(&choices[i].key, key, sizeof *key) == 0) {
            (choices[i].second ? second : first)(ctx);
            return choices[i].second;
        }
    pair_ctx pc = {{first, second}, ctx};
    int pick = trials && sf_fastest(L, 2, run_pair, &pc, stream, 7) == 1;
    if (trials && n_choices < SF_CHOICES) {
        choices[n_choices].key = *key;
        choices[n_choices].second = pick;
        n_choices++;
    }
    (pick ? second : first)(ctx);
    return pick;
}
#endif

static int l_now(lua_State *L)
{
    lua_pushnumber(L, sf_now());
    return 1;
}

int luaopen_sfbench_timing(lua_State *L)
{
    static const luaL_Reg ev_methods[] = {{"record", ev_record}, {"synchronize", ev_synchronize}, {NULL, NULL}};
    static const luaL_Reg st_methods[] = {{"sync", st_sync}, {NULL, NULL}};
    static const luaL_Reg funcs[] = {{"event", l_event}, {"elapsed", l_elapsed}, {"stream", l_stream},
                                     {"flush_l2", l_flush_l2}, {"now", l_now}, {"hold", l_hold},
                                     {"release", l_release}, {NULL, NULL}};
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
    return 0;
}
