/* The transport of CPU ranks on one host (`sfbench --gpus N --device cpu`): a shared-memory file
 * that rank 0 creates in the rendezvous directory and every rank maps, holding a barrier and a
 * slot a rank. It lets the multi-rank paths (collectives, sharded sweeps, timing across ranks)
 * run, and be tested, on machines without GPUs; it is not a fast transport. */
#include "config.h"
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <lauxlib.h>
#include "dist.h"

#define SHM_MAGIC 0x73666273686d3031ull   /* "sfbshm01" */
#define HEADER_BYTES 4096
#define SLOT_BYTES (1u << 20)

typedef struct shm_header {
    uint64_t magic;
    int world;
    atomic_uint arrived, generation;
    atomic_int departed;   /* 1 + the first rank to leave, or 0: a barrier it will never reach fails */
} shm_header;

static struct {
    shm_header *h;
    unsigned char *slots;
    size_t bytes;
    int rank, world;
} shm;

/* Ctrl-C does not end the wait: after one, the ranks still meet to merge what they measured (a
 * second Ctrl-C, or the launcher's signal when a rank dies, ends the process). A rank that has
 * left (ended its script) will never arrive: the wait is then an error. */
static void barrier(lua_State *L)
{
    unsigned gen = atomic_load(&shm.h->generation);
    if (atomic_fetch_add(&shm.h->arrived, 1) == (unsigned)shm.world - 1) {
        atomic_store(&shm.h->arrived, 0);
        atomic_fetch_add(&shm.h->generation, 1);
        return;
    }
    for (long spins = 0; atomic_load(&shm.h->generation) == gen; spins++) {
        if (spins < 1000) {
            sched_yield();
            continue;
        }
        const int gone = atomic_load(&shm.h->departed);
        if (L && gone > 0)
            luaL_error(L, "rank %d ended without reaching this exchange (every rank must make the same "
                          "collective calls)", gone - 1);
        nanosleep(&(struct timespec){.tv_nsec = 50000}, NULL);
    }
}

static void gather_bytes(lua_State *L, const void *mine, size_t bytes, void *all)
{
    for (size_t off = 0; off < bytes || (off == 0 && bytes == 0); off += SLOT_BYTES) {
        size_t n = bytes - off < SLOT_BYTES ? bytes - off : SLOT_BYTES;
        memcpy(shm.slots + (size_t)shm.rank * SLOT_BYTES, (const char *)mine + off, n);
        barrier(L);
        for (int r = 0; r < shm.world; r++)
            memcpy((char *)all + (size_t)r * bytes + off, shm.slots + (size_t)r * SLOT_BYTES, n);
        barrier(L);
        if (bytes == 0) break;
    }
}

static const sf_transport shm_transport = {
    .name = "shm", .barrier = barrier, .gather_bytes = gather_bytes,
};

int sf_shm_connect(const sf_dist_info *d, const char *dir, const sf_transport **t, char *err, size_t errlen)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/sfbench-%s-shm", dir, d->tag);
    shm.bytes = HEADER_BYTES + (size_t)d->world * SLOT_BYTES;
    shm.rank = d->rank;
    shm.world = d->world;
    int fd;
    if (d->rank == 0) {
        snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
        fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || ftruncate(fd, (off_t)shm.bytes) != 0) {
            snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
            if (fd >= 0) close(fd), unlink(tmp);
            return -1;
        }
    } else {
        if (sf_dist_wait_file(path, 120, err, errlen) != 0) return -1;
        fd = open(path, O_RDWR);
        if (fd < 0) {
            snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
            return -1;
        }
    }
    void *p = mmap(NULL, shm.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "cannot map %s: %s", d->rank ? path : tmp, strerror(errno));
        if (d->rank == 0) unlink(tmp);
        return -1;
    }
    shm.h = p;
    shm.slots = (unsigned char *)p + HEADER_BYTES;
    if (d->rank == 0) {
        shm.h->world = d->world;
        atomic_init(&shm.h->arrived, 0);
        atomic_init(&shm.h->generation, 0);
        atomic_init(&shm.h->departed, 0);
        shm.h->magic = SHM_MAGIC;
        if (rename(tmp, path) != 0) {
            snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
            unlink(tmp);
            sf_shm_close();
            return -1;
        }
    } else if (shm.h->magic != SHM_MAGIC || shm.h->world != d->world) {
        snprintf(err, errlen, "%s is not this run's (world %d, expected %d): a file of an earlier run? "
                 "(SFBENCH_DIST_TAG names a run)", path, shm.h->world, d->world);
        sf_shm_close();
        return -1;
    }
    /* once every rank has mapped it, the file's name is no longer needed */
    barrier(NULL);
    if (d->rank == 0) unlink(path);
    *t = &shm_transport;
    return 0;
}

void sf_shm_close(void)
{
    int none = 0;
    if (shm.h) atomic_compare_exchange_strong(&shm.h->departed, &none, shm.rank + 1);
    if (shm.h) munmap(shm.h, shm.bytes);
    shm.h = NULL;
}
