/* Unit tests of the autotuner (src/autotune.c) on the GPU; skipped (77) where there is none. A
 * candidate's time must be its GPU work alone: one that is slow to launch but quick on the GPU
 * wins against one that launches at once and runs longer (each candidate is the hold's spin
 * kernel, kernels/tensor_ops.cu, left to its guard, which ends it after a given number of
 * cycles). A candidate's error leaves no hold; a held stream is not timed; sf_run_faster
 * remembers the latest 256 choices, and none made on a held stream. */
#include "config.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <lauxlib.h>
#include "sfbench.h"
#include "autotune.h"
#include "cuda_check.h"
#include "tensor_ops.h"
#include "timing.h"

typedef struct spins {
    int *never;           /* device int: 0, so a spin ends by its guard */
    int *timed_out;       /* device int the guard writes */
    long long cycles[2];  /* each candidate's spin */
    double host_ms[2];    /* each candidate's host time before its launch */
    int raise_at;         /* candidate 1 raises a Lua error on this run of it (0: never) */
    int runs;             /* candidate 1's runs so far */
    int launched;         /* launches of either candidate */
    lua_State *L;
} spins;

static void busy_wait_ms(double ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do clock_gettime(CLOCK_MONOTONIC, &t);
    while ((double)(t.tv_sec - t0.tv_sec) * 1e3 + (double)(t.tv_nsec - t0.tv_nsec) * 1e-6 < ms);
}

static void run_spin(void *ctx, int i)
{
    spins *s = (spins *)ctx;
    busy_wait_ms(s->host_ms[i]);
    /* an error, not a cmocka assertion, which would jump past sf_fastest's round */
    if (sf_spin_cuda(s->never, s->timed_out, s->cycles[i], NULL) != 0) luaL_error(s->L, "spin kernel not launched");
    s->launched++;
    if (i == 1 && ++s->runs == s->raise_at) luaL_error(s->L, "candidate 1 failed");
}

static int setup(void **state)
{
    static spins s;
    int khz = 0;
    s.L = luaL_newstate();
    if (!s.L || cudaMalloc((void **)&s.never, 2 * sizeof(int)) != cudaSuccess) return -1;
    if (cudaMemset(s.never, 0, 2 * sizeof(int)) != cudaSuccess) return -1;
    s.timed_out = s.never + 1;
    if (cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0) != cudaSuccess) return -1;
    /* candidate 0: 20 µs of spinning at the highest clock, launched 3 ms late; candidate 1: 1 ms,
     * launched at once. At any clock the GPU runs 0 the shorter. */
    s.cycles[0] = (long long)khz * 20 / 1000;
    s.cycles[1] = (long long)khz;
    s.host_ms[0] = 3.0;
    s.host_ms[1] = 0.0;
    *state = &s;
    return 0;
}

static int teardown(void **state)
{
    spins *s = (spins *)*state;
    cudaFree(s->never);
    lua_close(s->L);
    return 0;
}

/* sf_fastest over the spins under lua_pcall: a candidate's error is returned (copied) instead
 * of escaping the test; *pick is the result otherwise */
typedef struct timing { spins *s; int rounds, pick; } timing;

static int timing_call(lua_State *L)
{
    timing *t = (timing *)lua_touserdata(L, 1);
    t->pick = sf_fastest(L, 2, run_spin, t->s, NULL, t->rounds);
    return 0;
}

static const char *try_fastest(spins *s, int rounds, int *pick)
{
    static char err[256];
    timing t = {s, rounds, -2};
    lua_pushcfunction(s->L, timing_call);
    lua_pushlightuserdata(s->L, &t);
    if (lua_pcall(s->L, 1, 0, 0) != LUA_OK) {
        snprintf(err, sizeof err, "%s", lua_tostring(s->L, -1));
        lua_pop(s->L, 1);
        return err;
    }
    *pick = t.pick;
    return NULL;
}

static int fastest(spins *s, int rounds)
{
    int pick = -2;
    const char *err = try_fastest(s, rounds, &pick);
    if (err) fail_msg("sf_fastest raised: %s", err);
    return pick;
}

/* the slow launcher with the short kernel wins, whichever place it has among the candidates;
 * a timing leaves the Lua stack as it found it */
static void test_launch_time_not_counted(void **state)
{
    spins *s = (spins *)*state;
    s->raise_at = 0;
    assert_int_equal(fastest(s, 5), 0);
    spins swapped = *s;
    for (int i = 0; i < 2; i++) {
        swapped.cycles[i] = s->cycles[1 - i];
        swapped.host_ms[i] = s->host_ms[1 - i];
    }
    assert_int_equal(fastest(&swapped, 5), 1);
    const int top = lua_gettop(s->L);
    sf_fastest(s->L, 2, run_spin, s, NULL, 1);
    assert_int_equal(lua_gettop(s->L), top);
}

/* an error a candidate raises in a timed round (its second run: the first is the warm-up, before
 * any hold) reaches the caller, and the stream is not left held: the next timing holds it again
 * and picks as the test above (a hold left taken would not be taken again, and the slow launcher
 * would lose) */
static void test_error_releases_the_hold(void **state)
{
    spins *s = (spins *)*state;
    int pick = -2;
    s->runs = 0;
    s->raise_at = 2;
    const char *err = try_fastest(s, 3, &pick);
    assert_non_null(err);
    assert_non_null(strstr(err, "candidate 1 failed"));
    assert_int_equal(s->runs, 2);
    assert_false(sf_held());
    s->raise_at = 0;
    assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
    assert_int_equal(fastest(s, 3), 0);
}

/* a stream already held (a script's sf.hold) is not timed: -1 at once, nothing launched, the
 * hold still the holder's */
static void test_held_stream_is_not_timed(void **state)
{
    spins *s = (spins *)*state;
    s->raise_at = 0;
    assert_int_equal(sf_hold(s->L, NULL), 1);
    const int launched = s->launched;
    assert_int_equal(fastest(s, 5), -1);
    assert_int_equal(s->launched, launched);
    assert_true(sf_held());
    assert_int_equal(sf_release(), 1);
    assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
}

/* sf_run_faster's memory, by the runs of two ways that only count: a key seen first is timed
 * (one warm-up run of each, 7 rounds of both, then the chosen one: 17 runs), a remembered one
 * runs once; a key met on a held stream runs its first way once and is not remembered; the
 * table keeps the latest 256 keys, the oldest giving way */
static int runs;
static void count_run(void *ctx)
{
    (void)ctx;
    runs++;
}

static int runs_of(lua_State *L, int64_t what)
{
    const sf_choice_key key = {what, 0, 0, {0, 0, 0, 0}};
    runs = 0;
    sf_run_faster(L, &key, count_run, count_run, NULL, NULL, 1);
    return runs;
}

static void test_choices_remembered(void **state)
{
    lua_State *L = ((spins *)*state)->L;
    const int64_t base = 1000; /* no op's SF_CHOICE_* */
    assert_int_equal(sf_hold(L, NULL), 1);
    assert_int_equal(runs_of(L, base), 1);
    assert_int_equal(sf_release(), 1);
    assert_int_equal(runs_of(L, base), 17);
    assert_int_equal(runs_of(L, base), 1);
    for (int64_t i = 1; i <= 255; i++) assert_int_equal(runs_of(L, base + i), 17);
    assert_int_equal(runs_of(L, base), 1);       /* 256 keys: all kept */
    assert_int_equal(runs_of(L, base + 256), 17); /* the 257th takes the oldest's place */
    assert_int_equal(runs_of(L, base + 1), 1);
    assert_int_equal(runs_of(L, base), 17);
}

int main(void)
{
    char err[256];
    if (sf_device_select("cuda", err, sizeof err) != 0) {
        printf("SKIP: %s\n", err);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_launch_time_not_counted),
        cmocka_unit_test(test_error_releases_the_hold),
        cmocka_unit_test(test_held_stream_is_not_timed),
        cmocka_unit_test(test_choices_remembered),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
