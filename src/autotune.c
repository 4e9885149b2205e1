/* The autotuner: which of several ways of doing one piece of work runs fastest on the GPU
 * (sf_fastest), and the choice between two of them remembered per shape (sf_run_faster). */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include "autotune.h"
#include "cuda_check.h"

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
