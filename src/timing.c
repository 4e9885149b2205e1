/* The L2 flush of cold-cache timing, and hold/release, which lets a batch of short launches run
 * back to back however slowly the host queues it. */
#include "config.h"
#include <string.h>
#include <lauxlib.h>
#include "sfbench.h"
#include "stream.h"
#include "host.h"
#include "timing.h"
#ifdef SF_HAVE_CUDA
#include "cuda_check.h"
#include "tensor_ops.h"
#endif

/* sf.flush_l2([stream]): write a buffer the size of the last-level cache, evicting what a
 * previous sample left there (cold-cache timing). */
static void *flush_buf[2];
static size_t flush_bytes[2];

void sf_flush_l2(lua_State *L, void *stream)
{
    sf_device_kind dev = sf_dev.kind;
    if (!flush_buf[dev]) {
        size_t n = (size_t)64 << 20;                       /* CPU: larger than any L3 we meet */
#ifdef SF_HAVE_CUDA
        int l2 = 0;
        if (dev == SF_DEV_CUDA) {
            SF_CUDA(L, cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, sf_dev.cuda_index));
            n = (size_t)l2;
        }
#endif
        flush_buf[dev] = sf_alloc(L, dev, n, "the L2 flush buffer");
        flush_bytes[dev] = n;
    }
#ifdef SF_HAVE_CUDA
    if (dev == SF_DEV_CUDA) {
        SF_CUDA(L, cudaMemsetAsync(flush_buf[dev], 0, flush_bytes[dev], (cudaStream_t)stream));
        return;
    }
#endif
    (void)stream;
    memset(flush_buf[dev], (int)(sf_now() * 1e3) & 0xff, flush_bytes[dev]);
}

static int l_flush_l2(lua_State *L)
{
    sf_flush_l2(L, sf_opt_stream(L, 1));
    return 0;
}

/* sf.hold([stream]) ... sf.release(): the work queued between them starts only at release, so a
 * batch of short launches runs back to back on the GPU however slowly the host queued it (the
 * blocking kernel of nvbench). A guard ends the hold after about a second; sf.release() returns
 * false when it did (the batch then ran while it was being queued). No-ops on the CPU backend. */
static struct { volatile int *flag; int *timed_out; int *dev_flag, *dev_timed_out; int held; } hold;

int sf_hold(lua_State *L, void *stream)
{
    if (sf_dev.kind != SF_DEV_CUDA || hold.held) return 0;
#ifdef SF_HAVE_CUDA
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
    return 1;
#else
    (void)L;
    (void)stream;
    return 0;
#endif
}

int sf_release(void)
{
    if (!hold.held) return 1;
    __atomic_store_n(hold.flag, 1, __ATOMIC_SEQ_CST);
    hold.held = 0;
    return !__atomic_load_n(hold.timed_out, __ATOMIC_SEQ_CST);
}

int sf_held(void) { return hold.held; }

static int l_hold(lua_State *L)
{
    void *stream = sf_opt_stream(L, 1);
    if (hold.held) return luaL_error(L, "hold: the stream is already held (call sf.release first)");
    sf_hold(L, stream);
    return 0;
}

static int l_release(lua_State *L)
{
    lua_pushboolean(L, sf_release());
    return 1;
}

void sf_timing_release(void)
{
    for (int d = 0; d < 2; d++) {
        sf_free((sf_device_kind)d, flush_buf[d], flush_bytes[d]);
        flush_buf[d] = NULL;
        flush_bytes[d] = 0;
    }
#ifdef SF_HAVE_CUDA
    if (hold.flag) {
        if (hold.held) {                  /* a script ended inside a hold: let the spin kernel go */
            __atomic_store_n(hold.flag, 1, __ATOMIC_SEQ_CST);
            cudaDeviceSynchronize();
        }
        cudaFreeHost((void *)hold.flag);
        memset(&hold, 0, sizeof hold);
    }
#endif
}

void sf_register_timing(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"flush_l2", l_flush_l2}, {"hold", l_hold}, {"release", l_release},
                                     {NULL, NULL}};
    luaL_setfuncs(L, funcs, 0);
}
