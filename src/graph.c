/* CUDA graph capture (graph.h). The capture is thread-local: a call that is unsafe while a stream
 * captures (a synchronization, cudaMalloc, a copy to the host) fails at once. A failed capture is
 * ended whatever state it is in, its partial graph dropped and its error (capture errors are not
 * sticky) cleared, so that the stream and the device work as before. Releases asked for while a
 * capture is open (a finalizer's cudaFree, a destroy) wait until it has ended. */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "sfbench.h"
#include "graph.h"
#include "host.h"
#include "stream.h"

static void *capture_stream;

void *sf_default_stream(void) { return capture_stream; }

int sf_capturing(void) { return capture_stream != NULL; }

/* from cudaStreamBeginCapture until the capture has ended (fn runs only part of that): the
 * releases asked for meanwhile, in order */
static int capture_open;
static struct release { void (*fn)(void *); void *p; } *held;
static size_t n_held, held_cap;

void sf_release_after_capture(void (*fn)(void *), void *p)
{
    if (!capture_open) {
        fn(p);
        return;
    }
    if (n_held == held_cap) {
        size_t cap = held_cap ? 2 * held_cap : 16;
        struct release *more = realloc(held, cap * sizeof *more);
        if (!more) return; /* out of host memory: the resource leaks rather than break the capture */
        held = more;
        held_cap = cap;
    }
    held[n_held].fn = fn;
    held[n_held++].p = p;
}

/* sf.graph's fn and calls, checked the same on every build; returns calls */
static lua_Integer graph_args(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_Integer calls = luaL_checkinteger(L, 2);
    luaL_argcheck(L, calls >= 1, 2, "the number of calls must be at least 1");
    return calls;
}

#ifndef SF_HAVE_CUDA
void sf_capture_check(lua_State *L, const char *op)
{
    (void)L;
    (void)op;
}

static int l_graph(lua_State *L)
{
    graph_args(L);
    return luaL_error(L, "graph: CUDA graphs need the CUDA backend (running on cpu): this sfbench was built without CUDA");
}
#else
#include "cuda_check.h"

#define GRAPH_MT "sfbench.graph"

/* the capture has ended: what waited is released */
static void capture_closed(void)
{
    capture_open = 0;
    for (size_t i = 0; i < n_held; i++) held[i].fn(held[i].p);
    n_held = 0;
}

/* the captured graph is kept until the executable one goes: :nodes() reads it */
typedef struct { cudaGraph_t graph; cudaGraphExec_t exec; size_t nodes; } sf_graph;

void sf_capture_check(lua_State *L, const char *op)
{
    enum cudaStreamCaptureStatus status;
    if (!capture_stream) return;
    SF_CUDA(L, cudaStreamIsCapturing((cudaStream_t)capture_stream, &status));
    if (status == cudaStreamCaptureStatusInvalidated)
        luaL_error(L, "%s: a call it made invalidated the CUDA graph capture", op);
}

/* Who raised an error during the capture, noted by the calls' message handler while the stack
 * still holds it: the op running, else a C function reached through a table (sf.sync, sf.tensor,
 * t:to, ...); empty when Lua code raised it. */
static char culprit[64];

static int note_culprit(lua_State *L)
{
    lua_Debug ar;
    culprit[0] = 0;
    if (strcmp(sf_current_op, "sfbench") != 0)
        snprintf(culprit, sizeof culprit, "%s", sf_current_op);
    else if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sn", &ar) && ar.what[0] == 'C' && ar.name &&
             (strcmp(ar.namewhat, "field") == 0 || strcmp(ar.namewhat, "method") == 0))
        snprintf(culprit, sizeof culprit, "%s", ar.name);
    return 1;
}

/* the stream captured when sf.graph is given none (the default stream cannot be captured) */
static cudaStream_t own_stream(lua_State *L)
{
    static cudaStream_t s;
    if (!s) SF_CUDA(L, cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    return s;
}

/* Ends a capture that failed, and releases what waited for its end. Ending an invalidated
 * capture returns the capture's error (cudaErrorStreamCaptureInvalidated): that is the failure
 * being reported, so it is cleared, not raised; so are the others here, which would hide it. */
static void abandon_capture(cudaStream_t s)
{
    enum cudaStreamCaptureStatus status = cudaStreamCaptureStatusActive;
    if (cudaStreamIsCapturing(s, &status) != cudaSuccess) cudaGetLastError();
    cudaGraph_t partial = NULL;
    if (status != cudaStreamCaptureStatusNone && cudaStreamEndCapture(s, &partial) != cudaSuccess) cudaGetLastError();
    if (partial) cudaGraphDestroy(partial);
    capture_closed();
}

/* sf.graph(fn, calls [, stream]) -> graph: fn called `calls` times while `stream` (by default a
 * stream of sfbench's own) captures; nothing runs until the graph is launched */
static int l_graph(lua_State *L)
{
    lua_Integer calls = graph_args(L);
    if (sf_dev.kind != SF_DEV_CUDA) return luaL_error(L, "graph: CUDA graphs need the CUDA backend (running on cpu)");
    if (capture_stream) return luaL_error(L, "graph: a capture is already in progress (sf.graph inside a captured function)");
    cudaStream_t s = lua_isnoneornil(L, 3) ? own_stream(L) : (cudaStream_t)sf_opt_stream(L, 3);
    lua_settop(L, 3);
    sf_graph *g = (sf_graph *)lua_newuserdatauv(L, sizeof *g, 0);    /* 4: its __gc frees what a failure leaves */
    memset(g, 0, sizeof *g);
    luaL_setmetatable(L, GRAPH_MT);
    lua_pushcfunction(L, note_culprit);                                /* 5 */
    sf_begin_op(L, "graph");             /* 6: CUDA errors name the graph while it begins the capture */
    enum cudaStreamCaptureStatus status;
    SF_CUDA(L, cudaStreamIsCapturing(s, &status));
    if (status != cudaStreamCaptureStatusNone) return luaL_error(L, "graph: the stream is already being captured");
    SF_CUDA(L, cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    capture_open = 1;
    capture_stream = s;
    sf_end_op(L, 6);                     /* while fn runs, no op is named but those it calls, each
                                          * naming itself (note_culprit reads sf_current_op) */
    int called = LUA_OK;
    culprit[0] = 0;                      /* the handler does not run for an out-of-memory error */
    for (lua_Integer i = 0; i < calls && called == LUA_OK; i++) {
        lua_pushvalue(L, 1);
        called = lua_pcall(L, 0, 0, 5);  /* on failure, its message at 6 */
    }
    capture_stream = NULL;
    sf_begin_op(L, "graph");             /* CUDA errors name the graph again, until it returns or raises */
    if (called != LUA_OK) {
        abandon_capture(s);
        const char *msg = luaL_tolstring(L, 6, NULL);
        if (!culprit[0]) return luaL_error(L, "graph: the function failed during the capture: %s", msg);
        return luaL_error(L, "graph: %s cannot be captured into a CUDA graph (a capture allows no synchronization, "
                          "allocation or copy to the host; an op that autotunes on its first call must run once "
                          "before): %s", culprit, msg);
    }
    cudaError_t e = cudaStreamEndCapture(s, &g->graph);
    if (e != cudaSuccess) {
        abandon_capture(s);
        sf_raise_cuda(L, e, "cudaStreamEndCapture");
    }
    capture_closed();
    SF_CUDA(L, cudaGraphGetNodes(g->graph, NULL, &g->nodes));
    if (g->nodes == 0)
        return luaL_error(L, "graph: the function queued no work on the capturing stream (work on another stream is not captured)");
    SF_CUDA(L, cudaGraphInstantiate(&g->exec, g->graph, 0));
    lua_pushvalue(L, 4);                 /* the graph; the op named is closed as this returns */
    return 1;
}

/* a graph not yet destroyed (a graph returned to Lua has an executable one until then) */
static sf_graph *check_graph(lua_State *L, int idx)
{
    sf_graph *g = (sf_graph *)luaL_checkudata(L, idx, GRAPH_MT);
    if (!g->exec) luaL_argerror(L, idx, "graph has been destroyed");
    return g;
}

/* g:launch([stream]): one replay of the captured calls, queued on stream */
static int graph_launch(lua_State *L)
{
    sf_graph *g = check_graph(L, 1);
    void *stream = sf_opt_stream(L, 2);
    SF_CUDA(L, cudaGraphLaunch(g->exec, (cudaStream_t)stream));
    return 0;
}

/* g:nodes(): how many nodes (kernels, copies, ...) the capture recorded */
static int graph_nodes(lua_State *L)
{
    sf_graph *g = check_graph(L, 1);
    lua_pushinteger(L, (lua_Integer)g->nodes);
    return 1;
}

static void destroy_exec(void *e) { cudaGraphExecDestroy((cudaGraphExec_t)e); }
static void destroy_graph(void *g) { cudaGraphDestroy((cudaGraph_t)g); }

/* __gc and __close (again a no-op): replays already queued still run; the graph cannot be
 * launched after. __gc also frees what a failed capture left. */
static int graph_gc(lua_State *L)
{
    sf_graph *g = (sf_graph *)luaL_checkudata(L, 1, GRAPH_MT);
    if (g->exec) sf_release_after_capture(destroy_exec, g->exec);
    if (g->graph) sf_release_after_capture(destroy_graph, g->graph);
    g->exec = NULL;
    g->graph = NULL;
    return 0;
}

/* "graph(6 nodes)", "graph(1 node, destroyed)" */
static int graph_tostring(lua_State *L)
{
    sf_graph *g = (sf_graph *)luaL_checkudata(L, 1, GRAPH_MT);
    lua_pushfstring(L, "graph(%I node%s%s)", (LUAI_UACINT)g->nodes, g->nodes == 1 ? "" : "s",
                    g->exec ? "" : ", destroyed");
    return 1;
}
#endif

void sf_register_graph(lua_State *L)
{
#ifdef SF_HAVE_CUDA
    static const luaL_Reg methods[] = {{"launch", graph_launch}, {"nodes", graph_nodes}, {NULL, NULL}};
    static const luaL_Reg meta[] = {{"__gc", graph_gc}, {"__close", graph_gc}, {"__tostring", graph_tostring},
                                    {NULL, NULL}};
    sf_define_type(L, GRAPH_MT, meta, methods);
#endif
    lua_pushcfunction(L, l_graph);
    lua_setfield(L, -2, "graph");
}
