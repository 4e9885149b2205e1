/* The autotuner: which of several ways of doing one piece of work runs fastest on the GPU
 * (sf_fastest), and the choice between two of them remembered per shape (sf_run_faster). */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "autotune.h"
#include "timing.h"
#include "cuda_check.h"

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* one round of sf_fastest, queued while the stream is held: each candidate from a cold L2, between
 * its two events */
typedef struct round_ctx {
    int n;
    void (*run)(void *ctx, int i);
    void *ctx, *stream;
    cudaEvent_t *ev;
    int held; /* whether queue_round took the hold */
} round_ctx;

static int queue_round(lua_State *L)
{
    round_ctx *r = (round_ctx *)lua_touserdata(L, 1);
    r->held = sf_hold(L, r->stream);
    for (int i = 0; i < r->n; i++) {
        sf_flush_l2(L, r->stream);
        SF_CUDA(L, cudaEventRecord(r->ev[2 * i], (cudaStream_t)r->stream));
        r->run(r->ctx, i);
        SF_CUDA(L, cudaEventRecord(r->ev[2 * i + 1], (cudaStream_t)r->stream));
    }
    return 0;
}

int sf_fastest(lua_State *L, int n, void (*run)(void *ctx, int i), void *ctx, void *stream, int rounds)
{
    float ms[SF_FASTEST_MAX][SF_FASTEST_ROUNDS];
    cudaEvent_t ev[2 * SF_FASTEST_MAX];
    if (n < 1 || n > SF_FASTEST_MAX || rounds < 1 || rounds > SF_FASTEST_ROUNDS)
        luaL_error(L, "internal: sf_fastest takes 1..%d candidates and 1..%d rounds", SF_FASTEST_MAX, SF_FASTEST_ROUNDS);
    /* a stream already held (a script's sf.hold, or a candidate of an outer round choosing
     * inside it) would run nothing until its hold ends, and no wait for an event could end */
    if (sf_held()) return -1;
    /* warm-up: first-call setup (nested choices, plans, workspaces), caches, clocks; and the
     * flush buffer's allocation, which must not happen under the hold */
    for (int i = 0; i < n; i++) {
        sf_flush_l2(L, stream);
        run(ctx, i);
    }
    for (int i = 0; i < 2 * n; i++) SF_CUDA(L, cudaEventCreate(&ev[i]));
    round_ctx rc = {n, run, ctx, stream, ev, 0};
    for (int r = 0; r < rounds; r++) {
        lua_pushcfunction(L, queue_round);
        lua_pushlightuserdata(L, &rc);
        const int status = lua_pcall(L, 1, 0, 0);
        /* the guard ends a hold only after about a second of queuing; such a round would still
         * count, its first candidate charged part of its launch */
        if (rc.held) sf_release();
        rc.held = 0;
        cudaError_t e = status == LUA_OK ? cudaEventSynchronize(ev[2 * n - 1]) : cudaSuccess;
        for (int i = 0; i < n && e == cudaSuccess; i++) e = cudaEventElapsedTime(&ms[i][r], ev[2 * i], ev[2 * i + 1]);
        if (status != LUA_OK || e != cudaSuccess) {
            for (int i = 0; i < 2 * n; i++) cudaEventDestroy(ev[i]);
            if (status != LUA_OK) lua_error(L); /* the candidate's error, on the stack */
            SF_CUDA(L, e);
        }
    }
    for (int i = 0; i < 2 * n; i++) cudaEventDestroy(ev[i]);
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

/* the remembered choices; past SF_CHOICES, a new one takes the oldest's place (that shape is timed
 * again when it comes back) */
#define SF_CHOICES 256
static struct { sf_choice_key key; int second; } choices[SF_CHOICES];
static int n_choices, next_choice;

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
    const int timed = trials ? sf_fastest(L, 2, run_pair, &pc, stream, 7) : -1, pick = timed == 1;
    if (timed >= 0) {
        choices[next_choice].key = *key;
        choices[next_choice].second = pick;
        next_choice = (next_choice + 1) % SF_CHOICES;
        if (n_choices < SF_CHOICES) n_choices++;
    }
    (pick ? second : first)(ctx);
    return pick;
}
