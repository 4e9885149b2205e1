/* The autotuner (CUDA only): the fastest of several ways of doing one piece of work. */
#ifndef SF_AUTOTUNE_H
#define SF_AUTOTUNE_H
#include <stdint.h>
#include <lua.h>
/* Which of n ways of doing one piece of work is fastest on `stream`: each runs once untimed,
 * then `rounds` rounds run every candidate once, back to back, each timed with events from a cold
 * L2 (as the weights a decode step streams once are); the smallest median wins (index returned).
 * A round is queued while the stream is held (timing.h), so the GPU runs it as one batch: a
 * candidate's time is its GPU work, not the host's time to launch it (without the hold, the first
 * of a round was charged its own launch latency, and a slow launcher lost to a slower kernel).
 * Interleaving keeps the comparison fair on a power-limited GPU, whose clock drops within
 * milliseconds of sustained load: timed one after another, the first candidate would run on a
 * cooler, faster chip. run(ctx, i) runs candidate i; an error it raises ends the round (the hold
 * released) and is raised again. Returns -1, running nothing, where the stream is already held
 * (timing.h's sf_held: a script's sf.hold, or an outer round whose candidate chooses): nothing
 * could be timed; the caller takes a candidate of its own and remembers nothing. */
#define SF_FASTEST_MAX 16
#define SF_FASTEST_ROUNDS 15
int sf_fastest(lua_State *L, int n, void (*run)(void *ctx, int i), void *ctx, void *stream, int rounds);

/* Two ways of doing the same work (say cuBLASLt and our Hopper GEMM): the first time a key is
 * seen, both are timed (sf_fastest, 7 rounds) and the faster is remembered for the
 * process (the latest 256 keys); later calls with that key run it directly (the key is compared
 * bytewise; it has no padding). trials = 0 (running the work twice would change its result), or
 * a timing sf_fastest cannot do, runs `first` and remembers nothing. Returns 1 when `second` ran. */
typedef struct sf_choice_key {
    int64_t what;    /* which choice (each caller its own constant, SF_CHOICE_*) */
    int64_t dtype, flags, dims[4];
} sf_choice_key;
enum { SF_CHOICE_FFN_DOWN = 1, SF_CHOICE_FFN_GELU_UP, SF_CHOICE_GEMM, SF_CHOICE_LINEAR_ROPE, SF_CHOICE_GEMV,
       SF_CHOICE_FFN_UP_GEMV, SF_CHOICE_FFN_DOWN_GEMV };
int sf_run_faster(lua_State *L, const sf_choice_key *key, void (*first)(void *ctx), void (*second)(void *ctx),
                  void *ctx, void *stream, int trials);
#endif
