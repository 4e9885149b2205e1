/* Device memory goes through here so that every byte an op or a tensor takes is counted: the
 * sweeps report what each implementation allocates beyond its inputs and outputs. */
#include "config.h"
#include <stdio.h>
#include <lauxlib.h>
#include "sfbench.h"
#include "backend.h"
#include "graph.h"

sf_mem_stats sf_mem[2];

/* One grow-only scratch buffer per device, like a caching allocator's largest block: ops ask for
 * their temporaries here, so a timed loop pays no cudaMalloc and the high-water mark is known. */
static struct { void *ptr; size_t bytes; } scratch[2];
static unsigned *counters[SF_COUNTER_SETS]; /* sf_counters */

static const char *human(size_t b, char *buf, size_t n)
{
    if (b >= ((size_t)1 << 30)) snprintf(buf, n, "%.2f GiB", b / 1073741824.0);
    else if (b >= ((size_t)1 << 20)) snprintf(buf, n, "%.1f MiB", b / 1048576.0);
    else snprintf(buf, n, "%zu bytes", b);
    return buf;
}

void *sf_alloc(lua_State *L, sf_device_kind dev, size_t bytes, const char *what)
{
    const sf_backend *be = sf_backend_of(dev);
    if (dev == SF_DEV_CUDA && sf_capturing())
        sf_error(L, "%s: cannot allocate %s during a CUDA graph capture (cudaMalloc is not captured)", sf_current_op, what);
    void *p = be->raw_alloc(bytes ? bytes : 1);
    if (!p) {
        size_t free_b = 0, total_b = 0;
        char a[32], f[32];
        be->mem_info(&free_b, &total_b);
        sf_error(L, "out of %s memory allocating %s: asked %s (%zu bytes), %s free",
                   be->name, what, human(bytes, a, sizeof a), bytes, human(free_b, f, sizeof f));
    }
    sf_mem[dev].in_use += bytes;
    if (sf_mem[dev].in_use > sf_mem[dev].peak) sf_mem[dev].peak = sf_mem[dev].in_use;
    return p;
}

void sf_free(sf_device_kind dev, void *p, size_t bytes)
{
    if (!p) return;
    if (dev == SF_DEV_CUDA) sf_release_after_capture(sf_backend_of(dev)->raw_free, p);
    else sf_backend_of(dev)->raw_free(p);
    sf_mem[dev].in_use -= bytes;
}

void *sf_scratch(lua_State *L, sf_device_kind dev, size_t bytes, const char *what)
{
    if (bytes > sf_mem[dev].scratch_peak) sf_mem[dev].scratch_peak = bytes;
    if (bytes <= scratch[dev].bytes) return scratch[dev].ptr;
    sf_backend_of(dev)->sync(L);                        /* the old buffer may still be in use */
    sf_free(dev, scratch[dev].ptr, scratch[dev].bytes);
    scratch[dev].ptr = NULL;
    scratch[dev].bytes = 0;
    sf_mem[dev].scratch_capacity = 0;
    scratch[dev].ptr = sf_alloc(L, dev, bytes, what);
    scratch[dev].bytes = sf_mem[dev].scratch_capacity = bytes;
    return scratch[dev].ptr;
}

void sf_scratch_release_all(void)
{
    for (int d = 0; d < 2; d++) {
        sf_free((sf_device_kind)d, scratch[d].ptr, scratch[d].bytes);
        scratch[d].ptr = NULL;
        scratch[d].bytes = sf_mem[d].scratch_capacity = 0;
    }
    for (int i = 0; i < SF_COUNTER_SETS; i++) {
        sf_free(SF_DEV_CUDA, counters[i], SF_COUNTERS * sizeof(unsigned));
        counters[i] = NULL;
    }
}

unsigned *sf_counters(lua_State *L, sf_counter_set set)
{
    static const unsigned zeros[SF_COUNTERS];
    if (!counters[set]) {
        unsigned *c = sf_alloc(L, SF_DEV_CUDA, sizeof zeros, "the kernels' counters");
        sf_backend_of(SF_DEV_CUDA)->from_host(L, c, zeros, sizeof zeros);
        counters[set] = c;
    }
    return counters[set];
}
