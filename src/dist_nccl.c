/* The transport of GPU ranks: one NCCL communicator over the world. Its unique id comes from
 * NCCL_COMM_ID where the launcher's environment sets it (every rank then derives the same id),
 * else rank 0 writes it to a rendezvous file that the others read. The host-side exchanges
 * (barrier, gather_bytes) go through a small device buffer on a stream of their own. */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lauxlib.h>
#include <nccl.h>
#include "dist.h"
#include "cuda_check.h"

static struct {
    ncclComm_t comm;
    cudaStream_t stream;
    void *buf;
    size_t buf_bytes;
    int world;
} nc;

static void check(lua_State *L, ncclResult_t r, const char *call)
{
    if (r == ncclSuccess || r == ncclInProgress) return;
    const char *last = nc.comm ? ncclGetLastError(nc.comm) : NULL;
    luaL_error(L, "NCCL: %s failed: %s%s%s", call, ncclGetErrorString(r), last && *last ? ": " : "", last ? last : "");
}
#define NCCL(L, call) check((L), (call), #call)

static ncclDataType_t nccl_type(lua_State *L, sf_dtype t)
{
    switch (t) {
    case SF_F16: return ncclFloat16;
    case SF_BF16: return ncclBfloat16;
    case SF_F32: return ncclFloat32;
    case SF_F64: return ncclFloat64;
    case SF_I32: return ncclInt32;
    default: luaL_error(L, "NCCL: no collective for dtype %s", sf_dtype_name(t));
    }
    return ncclFloat32;
}

static ncclRedOp_t nccl_op(sf_reduce_op op)
{
    static const ncclRedOp_t ops[] = {ncclSum, ncclProd, ncclMax, ncclMin, ncclAvg};
    return ops[op];
}

static void gather_bytes(lua_State *L, const void *mine, size_t bytes, void *all)
{
    size_t need = bytes * (size_t)(nc.world + 1);
    if (need > nc.buf_bytes) {
        if (nc.buf) SF_CUDA(L, cudaFree(nc.buf));
        nc.buf = NULL;
        nc.buf_bytes = 0;
        SF_CUDA(L, cudaMalloc(&nc.buf, need));
        nc.buf_bytes = need;
    }
    char *send = (char *)nc.buf + bytes * (size_t)nc.world;
    SF_CUDA(L, cudaMemcpyAsync(send, mine, bytes, cudaMemcpyHostToDevice, nc.stream));
    NCCL(L, ncclAllGather(send, nc.buf, bytes, ncclUint8, nc.comm, nc.stream));
    SF_CUDA(L, cudaMemcpyAsync(all, nc.buf, bytes * (size_t)nc.world, cudaMemcpyDeviceToHost, nc.stream));
    SF_CUDA(L, cudaStreamSynchronize(nc.stream));
}

static void barrier(lua_State *L)
{
    unsigned char one = 1, *all = lua_newuserdatauv(L, (size_t)nc.world, 0);
    gather_bytes(L, &one, 1, all);
    lua_pop(L, 1);
}

static void all_reduce(lua_State *L, const sf_tensor *x, sf_tensor *out, sf_reduce_op op, void *stream)
{
    NCCL(L, ncclAllReduce(x->data, out->data, (size_t)x->numel, nccl_type(L, x->dtype), nccl_op(op), nc.comm,
                          (cudaStream_t)stream));
}

static void all_gather(lua_State *L, const sf_tensor *x, sf_tensor *out, void *stream)
{
    NCCL(L, ncclAllGather(x->data, out->data, (size_t)x->numel, nccl_type(L, x->dtype), nc.comm, (cudaStream_t)stream));
}

static void reduce_scatter(lua_State *L, const sf_tensor *x, sf_tensor *out, sf_reduce_op op, void *stream)
{
    NCCL(L, ncclReduceScatter(x->data, out->data, (size_t)out->numel, nccl_type(L, x->dtype), nccl_op(op), nc.comm,
                              (cudaStream_t)stream));
}

static void broadcast(lua_State *L, sf_tensor *x, int root, void *stream)
{
    NCCL(L, ncclBroadcast(x->data, x->data, (size_t)x->numel, nccl_type(L, x->dtype), root, nc.comm,
                          (cudaStream_t)stream));
}

static const sf_transport nccl_transport = {
    .name = "nccl", .barrier = barrier, .gather_bytes = gather_bytes, .all_reduce = all_reduce,
    .all_gather = all_gather, .reduce_scatter = reduce_scatter, .broadcast = broadcast,
};

int sf_nccl_connect(const sf_dist_info *d, const char *dir, const sf_transport **t, char *err, size_t errlen)
{
    ncclUniqueId id;
    ncclResult_t r = ncclSuccess;
    char path[4096];
    snprintf(path, sizeof path, "%s/sfbench-%s-nccl-id", dir, d->tag);
    const char *comm_id = getenv("NCCL_COMM_ID");
    if ((comm_id && *comm_id) || d->rank == 0) {
        r = ncclGetUniqueId(&id);
        if (r != ncclSuccess) {
            snprintf(err, errlen, "NCCL: ncclGetUniqueId failed: %s", ncclGetErrorString(r));
            return -1;
        }
        if (!(comm_id && *comm_id) && sf_dist_publish(path, &id, sizeof id, err, errlen) != 0) return -1;
    } else {
        FILE *f = NULL;
        if (sf_dist_wait_file(path, 120, err, errlen) != 0) return -1;
        if (!(f = fopen(path, "rb")) || fread(&id, sizeof id, 1, f) != 1) {
            snprintf(err, errlen, "cannot read NCCL's id from %s", path);
            if (f) fclose(f);
            return -1;
        }
        fclose(f);
    }
    nc.world = d->world;
    r = ncclCommInitRank(&nc.comm, d->world, id, d->rank);
    /* every rank has read the id once the communicator exists */
    if (d->rank == 0 && !(comm_id && *comm_id)) unlink(path);
    if (r != ncclSuccess) {
        snprintf(err, errlen, "NCCL: ncclCommInitRank (rank %d of %d) failed: %s", d->rank, d->world,
                 ncclGetErrorString(r));
        nc.comm = NULL;
        return -1;
    }
    if (cudaStreamCreateWithFlags(&nc.stream, cudaStreamNonBlocking) != cudaSuccess) {
        snprintf(err, errlen, "cannot create a CUDA stream for NCCL");
        sf_nccl_close();
        return -1;
    }
    *t = &nccl_transport;
    return 0;
}

void sf_nccl_close(void)
{
    if (nc.buf) cudaFree(nc.buf);
    if (nc.stream) cudaStreamDestroy(nc.stream);
    if (nc.comm) ncclCommDestroy(nc.comm);
    memset(&nc, 0, sizeof nc);
}
