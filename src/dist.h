/* Ranks: one sfbench process a GPU (or a CPU rank), as `sfbench --gpus N` starts them on this
 * host (ranks.c) or a launcher (mpirun, srun) does; which rank this process is, and the
 * transport its collectives go through: NCCL between GPUs, shared memory between CPU ranks on one
 * host, nothing at world 1 (every collective the identity). */
#ifndef SF_DIST_H
#define SF_DIST_H
#include <stddef.h>
#include <lua.h>
#include "sfbench.h"

typedef struct sf_dist_info {
    int rank, world, local_rank;
    const char *source;   /* where rank and world came from: "sfbench --gpus", "Open MPI", "PMI", "Slurm", or "none" */
    char tag[128];        /* names this run's rendezvous files: the same on every rank, unique to the run */
} sf_dist_info;

/* Rank, world and local rank from an environment (get: getenv, or a fake in the tests): sfbench's
 * own SFBENCH_RANK/WORLD/LOCAL_RANK, else Open MPI's OMPI_COMM_WORLD_*, else PMI_RANK/PMI_SIZE,
 * else Slurm's SLURM_PROCID/SLURM_STEP_NUM_TASKS/SLURM_LOCALID (a launcher counts where its
 * world size is set); world 1 when none is. 0, or -1 with a
 * message in err when a set variable is malformed or rank is outside 0..world-1. */
int sf_dist_parse_env(char *(*get)(const char *), sf_dist_info *out, char *err, size_t errlen);

typedef enum { SF_REDUCE_SUM, SF_REDUCE_PROD, SF_REDUCE_MAX, SF_REDUCE_MIN, SF_REDUCE_AVG, SF_REDUCE_COUNT } sf_reduce_op;
extern const char *const sf_reduce_names[];   /* "sum", "prod", "max", "min", "avg", NULL */

/* A transport between the ranks. Every call is collective: each rank makes it, in the same
 * order, with the same sizes. Failures raise Lua errors. */
typedef struct sf_transport {
    const char *name;
    void (*barrier)(lua_State *L);
    /* all[r·bytes .. (r+1)·bytes) = rank r's `mine`, on every rank (host memory) */
    void (*gather_bytes)(lua_State *L, const void *mine, size_t bytes, void *all);
    /* GPU tensors (NCCL); NULL for a transport of CPU ranks, whose ops op_collective.c builds
     * from gather_bytes */
    void (*all_reduce)(lua_State *L, const sf_tensor *x, sf_tensor *out, sf_reduce_op op, void *stream);
    void (*all_gather)(lua_State *L, const sf_tensor *x, sf_tensor *out, void *stream);
    void (*reduce_scatter)(lua_State *L, const sf_tensor *x, sf_tensor *out, sf_reduce_op op, void *stream);
    void (*broadcast)(lua_State *L, sf_tensor *x, int root, void *stream);
} sf_transport;

typedef struct sf_dist_state {
    sf_dist_info info;
    const sf_transport *transport;   /* NULL at world 1 */
} sf_dist_state;
extern sf_dist_state sf_dist;

/* main.c, before the device is chosen: reads the environment into sf_dist.info, and turns the
 * device "auto" or "cuda" of a rank of world > 1 into "cuda:<local rank>" (in buf). Returns the
 * device to select, or NULL with a message in err. */
const char *sf_dist_setup(const char *device, char *buf, size_t buflen, char *err, size_t errlen);
/* main.c, after the device is chosen: connects the ranks (the rendezvous directory
 * SFBENCH_DIST_DIR, default the temporary directory); 0, or -1 with a message in err */
int sf_dist_connect(char *err, size_t errlen);
void sf_dist_close(void);
/* "rank R: " at world > 1, else "": what a rank's messages start with */
const char *sf_dist_prefix(void);
/* sets NCCL_NVLS_ENABLE=0, NVSHMEM_DISABLE_NVLS=1 and TORCH_SYMM_MEM_DISABLE_MULTICAST=1 where
 * unset: NVLink multicast stays off in sfbench and in whatever it starts */
void sf_dist_no_multicast(void);

/* the transports (dist_shm.c, dist_nccl.c): connect, or -1 with a message in err. dir and tag
 * name the rendezvous file. */
int sf_shm_connect(const sf_dist_info *d, const char *dir, const sf_transport **t, char *err, size_t errlen);
void sf_shm_close(void);
#ifdef SF_HAVE_NCCL
int sf_nccl_connect(const sf_dist_info *d, const char *dir, const sf_transport **t, char *err, size_t errlen);
void sf_nccl_close(void);
#endif

/* a rendezvous file written by rank 0 and read by the others (dist.c): write makes it appear
 * whole (rename); wait polls until it exists, up to timeout_s */
int sf_dist_publish(const char *path, const void *data, size_t bytes, char *err, size_t errlen);
int sf_dist_wait_file(const char *path, double timeout_s, char *err, size_t errlen);

/* ranks.c: `sfbench --gpus N ...`: runs argv (NULL-terminated, without the --gpus option) as N
 * ranks on this host and returns the exit status (that of the first rank to fail, whose failure
 * ends the others) */
int sf_ranks_launch(int n, char **argv);

void sf_register_dist(lua_State *L);   /* sf.dist */
#endif
