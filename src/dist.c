/* Which rank this process is (sfbench --gpus, or a launcher's environment), the rendezvous of
 * the ranks, and sf.dist: rank, world, barrier and the host-side exchanges the harness needs
 * (the largest of each rank's numbers, every rank's string). The tensor collectives are ops
 * (op_collective.c). */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <lauxlib.h>
#include "dist.h"
#include "host.h"
#include "stream.h"

sf_dist_state sf_dist = {.info = {.rank = 0, .world = 1, .local_rank = 0, .source = "none"}};

const char *const sf_reduce_names[] = {"sum", "prod", "max", "min", "avg", NULL};

/* a non-negative decimal integer, the whole string; -1 otherwise */
static long parse_count(const char *s)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return (*end || errno || v < 0 || v > 1000000) ? -1 : v;
}

int sf_dist_parse_env(char *(*get)(const char *), sf_dist_info *d, char *err, size_t errlen)
{
    static const struct {
        const char *source, *rank, *world, *local;
    } launchers[] = {
        {"sfbench --gpus", "SFBENCH_RANK", "SFBENCH_WORLD", "SFBENCH_LOCAL_RANK"},
        {"Open MPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"},
        {"PMI", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"},
        {"Slurm", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_LOCALID"},
    };
    memset(d, 0, sizeof *d);
    d->world = 1;
    d->source = "none";
    snprintf(d->tag, sizeof d->tag, "single");
    for (size_t i = 0; i < sizeof launchers / sizeof launchers[0]; i++) {
        const char *rs = get(launchers[i].rank), *ws = get(launchers[i].world), *ls = get(launchers[i].local);
        /* a launcher's world size says this process is one of its ranks (a Slurm batch script
         * has SLURM_PROCID but is no step's task: its SLURM_STEP_NUM_TASKS is unset) */
        if (!ws) continue;
        long r = parse_count(rs), w = parse_count(ws), l = ls ? parse_count(ls) : r;
        if (r < 0 || w < 1 || l < 0) {
            snprintf(err, errlen, "%s's rank variables are malformed: %s=%s %s=%s %s=%s", launchers[i].source,
                     launchers[i].rank, rs ? rs : "(unset)", launchers[i].world, ws ? ws : "(unset)",
                     launchers[i].local, ls ? ls : "(unset)");
            return -1;
        }
        if (r >= w) {
            snprintf(err, errlen, "%s says rank %ld of a world of %ld: the rank must be below the world size",
                     launchers[i].source, r, w);
            return -1;
        }
        d->rank = (int)r;
        d->world = (int)w;
        d->local_rank = (int)l;
        d->source = launchers[i].source;
        break;
    }
    /* the tag: the same on every rank of one run and different in the next, so that a file left
     * by an earlier run is never taken for this one's */
    const char *tag = get("SFBENCH_DIST_TAG"), *job = get("SLURM_JOB_ID"), *step = get("SLURM_STEP_ID"),
               *ns = get("PMIX_NAMESPACE");
    if (tag && *tag) snprintf(d->tag, sizeof d->tag, "%s", tag);
    else if (job && *job) snprintf(d->tag, sizeof d->tag, "slurm-%s.%s", job, step ? step : "0");
    else if (ns && *ns) snprintf(d->tag, sizeof d->tag, "pmix-%s", ns);
    else if (d->world > 1) snprintf(d->tag, sizeof d->tag, "run");
    for (char *c = d->tag; *c; c++)
        if (*c == '/') *c = '_';
    return 0;
}

void sf_dist_no_multicast(void)
{
    setenv("NCCL_NVLS_ENABLE", "0", 0);
    setenv("NVSHMEM_DISABLE_NVLS", "1", 0);
    setenv("TORCH_SYMM_MEM_DISABLE_MULTICAST", "1", 0);
}

const char *sf_dist_setup(const char *device, char *buf, size_t buflen, char *err, size_t errlen)
{
    sf_dist_no_multicast();
    if (sf_dist_parse_env(getenv, &sf_dist.info, err, errlen) != 0) return NULL;
    if (sf_dist.info.world > 1 && (!strcmp(device, "auto") || !strcmp(device, "cuda"))) {
        snprintf(buf, buflen, "cuda:%d", sf_dist.info.local_rank);
        return buf;
    }
    return device;
}

int sf_dist_connect(char *err, size_t errlen)
{
    const sf_dist_info *d = &sf_dist.info;
    if (d->world == 1) return 0;
    const char *dir = getenv("SFBENCH_DIST_DIR");
    if (!dir || !*dir) dir = getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    if (sf_dev.kind == SF_DEV_CPU) return sf_shm_connect(d, dir, &sf_dist.transport, err, errlen);
#ifdef SF_HAVE_NCCL
    return sf_nccl_connect(d, dir, &sf_dist.transport, err, errlen);
#else
    snprintf(err, errlen, "a world of %d GPU ranks needs NCCL, and this sfbench was built without it "
             "(configure --with-nccl=DIR)", d->world);
    return -1;
#endif
}

void sf_dist_close(void)
{
    if (!sf_dist.transport) return;
    if (sf_dev.kind == SF_DEV_CPU) sf_shm_close();
#ifdef SF_HAVE_NCCL
    else sf_nccl_close();
#endif
    sf_dist.transport = NULL;
}

const char *sf_dist_prefix(void)
{
    static char buf[32];
    if (sf_dist.info.world == 1) return "";
    snprintf(buf, sizeof buf, "rank %d: ", sf_dist.info.rank);
    return buf;
}

int sf_dist_publish(const char *path, const void *data, size_t bytes, char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, data, bytes) != (ssize_t)bytes || close(fd) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write the rendezvous file %s: %s (SFBENCH_DIST_DIR names a directory all ranks share)",
                 path, strerror(errno));
        if (fd >= 0) unlink(tmp);
        return -1;
    }
    return 0;
}

int sf_dist_wait_file(const char *path, double timeout_s, char *err, size_t errlen)
{
    double start = sf_now();
    struct stat st;
    while (stat(path, &st) != 0) {
        if (sf_host_interrupted() || sf_now() - start > timeout_s) {
            snprintf(err, errlen, "rank 0's rendezvous file %s did not appear within %.0f s (did rank 0 start? "
                     "SFBENCH_DIST_DIR must be a directory all ranks share)", path, timeout_s);
            return -1;
        }
        nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);
    }
    return 0;
}

/* ---- sf.dist ----------------------------------------------------------------------------- */

static int l_rank(lua_State *L) { lua_pushinteger(L, sf_dist.info.rank); return 1; }
static int l_world(lua_State *L) { lua_pushinteger(L, sf_dist.info.world); return 1; }
static int l_local_rank(lua_State *L) { lua_pushinteger(L, sf_dist.info.local_rank); return 1; }

static int l_backend(lua_State *L)
{
    lua_pushstring(L, sf_dist.transport ? sf_dist.transport->name : "none");
    return 1;
}

static int l_barrier(lua_State *L)
{
    if (sf_dist.transport) sf_dist.transport->barrier(L);
    return 0;
}

/* sf.dist.max(list) -> a new list: each element the largest over the ranks (the same on every rank) */
static int l_max(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 1);
    int world = sf_dist.info.world;
    double *all = lua_newuserdatauv(L, sizeof(double) * (size_t)(n ? n : 1) * (size_t)(world + 1), 0);
    double *mine = all + n * world;
    for (lua_Integer i = 0; i < n; i++) {
        if (lua_geti(L, 1, i + 1) != LUA_TNUMBER)
            luaL_error(L, "dist.max: element %d of the list is a %s, not a number", (int)(i + 1), luaL_typename(L, -1));
        mine[i] = lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    if (sf_dist.transport) {
        /* the lists must be equally long: a rank whose list is not fails, rather than mixing */
        double len = (double)n, *lens = lua_newuserdatauv(L, sizeof(double) * (size_t)world, 0);
        sf_dist.transport->gather_bytes(L, &len, sizeof len, lens);
        for (int r = 0; r < world; r++)
            if (lens[r] != len) luaL_error(L, "dist.max: rank %d passed %d numbers, this rank %d", r, (int)lens[r], (int)n);
        lua_pop(L, 1);
        sf_dist.transport->gather_bytes(L, mine, sizeof(double) * (size_t)n, all);
        for (int r = 0; r < world; r++)
            for (lua_Integer i = 0; i < n; i++)
                if (all[r * n + i] > mine[i] || all[r * n + i] != all[r * n + i]) mine[i] = all[r * n + i];
    }
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_pushnumber(L, mine[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* sf.dist.gather(s) -> {rank 0's string, rank 1's, ...} on every rank */
static int l_gather(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    int world = sf_dist.info.world;
    lua_createtable(L, world, 0);
    if (!sf_dist.transport) {
        lua_pushvalue(L, 1);
        lua_rawseti(L, -2, 1);
        return 1;
    }
    double mine = (double)len, *lens = lua_newuserdatauv(L, sizeof(double) * (size_t)world, 0);
    sf_dist.transport->gather_bytes(L, &mine, sizeof mine, lens);
    size_t most = 0;
    for (int r = 0; r < world; r++)
        if ((size_t)lens[r] > most) most = (size_t)lens[r];
    char *padded = lua_newuserdatauv(L, most ? most : 1, 0);
    char *all = lua_newuserdatauv(L, (most ? most : 1) * (size_t)world, 0);
    memcpy(padded, s, len);
    sf_dist.transport->gather_bytes(L, padded, most, all);
    for (int r = 0; r < world; r++) {
        lua_pushlstring(L, all + (size_t)r * most, (size_t)lens[r]);
        lua_rawseti(L, -5, r + 1);
    }
    lua_pop(L, 3);
    return 1;
}

static int l_info(lua_State *L)
{
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, sf_dist.info.rank);
    lua_setfield(L, -2, "rank");
    lua_pushinteger(L, sf_dist.info.world);
    lua_setfield(L, -2, "world");
    lua_pushinteger(L, sf_dist.info.local_rank);
    lua_setfield(L, -2, "local_rank");
    lua_pushstring(L, sf_dist.info.source);
    lua_setfield(L, -2, "launcher");
    lua_pushstring(L, sf_dist.transport ? sf_dist.transport->name : "none");
    lua_setfield(L, -2, "backend");
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    lua_pushstring(L, host);
    lua_setfield(L, -2, "host");
    return 1;
}

void sf_register_dist(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"rank", l_rank}, {"world", l_world}, {"local_rank", l_local_rank}, {"backend", l_backend},
        {"barrier", l_barrier}, {"max", l_max}, {"gather", l_gather}, {"info", l_info}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    lua_setfield(L, -2, "dist");
}
