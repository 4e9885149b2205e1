/* The collectives as ops: all_reduce, all_gather, reduce_scatter, broadcast. GPU tensors go
 * through NCCL; CPU ranks' through the shared-memory transport's byte exchange, reduced here in
 * double in rank order (the same bits on every rank); at world 1 each is the identity. Every
 * rank must make the same calls with the same shapes, as NCCL requires. */
#include "config.h"
#include <string.h>
#include "ops.h"
#include "dist.h"
#include "backend.h"

#define REDUCE_DOC "sum, prod, max, min or avg (the sum over the world size)"
#define STREAM_ARG {"stream", SF_ARG_STREAM, 0, NULL, "stream to run on"}
/* the most host memory a CPU rank's exchange holds at once */
#define CPU_CHUNK_BYTES ((size_t)64 << 20)

static const sf_arg_spec all_reduce_args[] = {
    {"x", SF_ARG_TENSOR, 1, NULL, "this rank's contribution, contiguous"},
    {"out", SF_ARG_TENSOR, 0, "x", "the reduction over the ranks, x's shape and dtype; by default x itself (in place)"},
    {"op", SF_ARG_STRING, 0, "sum", REDUCE_DOC},
    STREAM_ARG,
    {NULL, 0, 0, NULL, NULL}};
static const sf_arg_spec all_gather_args[] = {
    {"x", SF_ARG_TENSOR, 1, NULL, "this rank's block [n, ...], contiguous"},
    {"out", SF_ARG_TENSOR, 1, NULL, "[world·n, ...]: every rank's block, in rank order"},
    STREAM_ARG,
    {NULL, 0, 0, NULL, NULL}};
static const sf_arg_spec reduce_scatter_args[] = {
    {"x", SF_ARG_TENSOR, 1, NULL, "[world·n, ...]: this rank's contribution to every rank's block, contiguous"},
    {"out", SF_ARG_TENSOR, 1, NULL, "[n, ...]: block <rank> reduced over the ranks"},
    {"op", SF_ARG_STRING, 0, "sum", REDUCE_DOC},
    STREAM_ARG,
    {NULL, 0, 0, NULL, NULL}};
static const sf_arg_spec broadcast_args[] = {
    {"x", SF_ARG_TENSOR, 1, NULL, "contiguous: rank root's is copied into every other rank's"},
    {"root", SF_ARG_INTEGER, 0, "0", "the rank whose x is sent"},
    STREAM_ARG,
    {NULL, 0, 0, NULL, NULL}};

static const sf_tensor *check_x(sf_op_args *a)
{
    static const char *const tensors[] = {"x", "out", NULL}, *const x_only[] = {"x", NULL};
    sf_device_kind dev = sf_op_device(a, a->op == &sf_op_broadcast ? x_only : tensors);
    sf_tensor *x = sf_arg_tensor(a, "x");
    sf_op_check_dtype(a, "x", x, SF_DT(SF_F16) | SF_DT(SF_BF16) | SF_DT(SF_F32) | SF_DT(SF_F64));
    if (!sf_tensor_is_contiguous(x)) sf_op_error(a, "'x' must be contiguous");
    const sf_transport *t = sf_dist.transport;
    if (t && dev == SF_DEV_CUDA && !t->all_reduce)
        sf_op_error(a, "GPU tensors need GPU ranks: this world's transport is %s", t->name);
    if (t && dev == SF_DEV_CPU && t->all_reduce)
        sf_op_error(a, "'x' is a CPU tensor: the ranks of this world are GPUs (%s); pass GPU tensors", t->name);
    return x;
}

/* out: x's dtype, contiguous, shape x's with dimension 0 times `grow` (or divided by `shrink`) */
static sf_tensor *check_out(sf_op_args *a, const sf_tensor *x, int64_t grow, int64_t shrink)
{
    sf_tensor *out = sf_arg_tensor(a, "out");
    if (!out) return NULL;
    sf_op_check_dtype(a, "out", out, SF_DT(x->dtype));
    if (!sf_tensor_is_contiguous(out)) sf_op_error(a, "'out' must be contiguous");
    if (x->shape[0] % shrink)
        sf_op_error(a, "'x' has %lld rows: a reduce_scatter over %lld ranks needs a multiple of %lld",
                    (long long)x->shape[0], (long long)shrink, (long long)shrink);
    int64_t shape[SF_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[0] = x->shape[0] * grow / shrink;
    sf_op_check_shape(a, "out", out, x->ndim, shape);
    sf_op_check_alias(a, "out", out, "x", x, grow == 1 && shrink == 1);
    return out;
}

static sf_reduce_op check_reduce(sf_op_args *a)
{
    return (sf_reduce_op)sf_arg_choice(a, "op", sf_reduce_names, SF_REDUCE_SUM);
}

/* ---- CPU ranks: everything through gather_bytes ------------------------------------------ */

static double reduce_values(const unsigned char *all, size_t rank_stride, sf_dtype dt, int64_t i, sf_reduce_op op)
{
    int world = sf_dist.info.world;
    double v = sf_load_as_double(all, dt, i);
    for (int r = 1; r < world; r++) {
        double u = sf_load_as_double(all + (size_t)r * rank_stride, dt, i);
        switch (op) {
        case SF_REDUCE_SUM: case SF_REDUCE_AVG: v += u; break;
        case SF_REDUCE_PROD: v *= u; break;
        case SF_REDUCE_MAX: v = (u > v || u != u) ? u : v; break;
        case SF_REDUCE_MIN: v = (u < v || u != u) ? u : v; break;
        default: break;
        }
    }
    return op == SF_REDUCE_AVG ? v / world : v;
}

/* elements a chunk of an exchange moves, each rank sending `per_rank` of them an element */
static int64_t chunk_elems(size_t elem, int per_rank)
{
    size_t n = CPU_CHUNK_BYTES / (elem * (size_t)sf_dist.info.world * (size_t)per_rank);
    return n ? (int64_t)n : 1;
}

static unsigned char *exchange_buffer(sf_op_args *a, int64_t chunk, size_t elem, int per_rank)
{
    size_t world = (size_t)sf_dist.info.world;
    return lua_newuserdatauv(a->L, (size_t)chunk * elem * (size_t)per_rank * (world + 1), 0);
}

/* x's elements in chunks, each gathered from every rank (all: rank r's piece at r·n elements)
 * and handed to use(off, n, all) */
typedef void (*chunk_fn)(const sf_tensor *x, sf_tensor *out, int64_t off, int64_t n, const unsigned char *all,
                         int arg);
static void cpu_exchange(sf_op_args *a, const sf_tensor *x, sf_tensor *out, chunk_fn use, int arg)
{
    size_t es = sf_dtype_size(x->dtype);
    int64_t chunk = chunk_elems(es, 1);
    unsigned char *all = exchange_buffer(a, chunk, es, 1);
    for (int64_t off = 0; off < x->numel; off += chunk) {
        int64_t n = x->numel - off < chunk ? x->numel - off : chunk;
        sf_dist.transport->gather_bytes(a->L, (const char *)x->data + off * (int64_t)es, (size_t)n * es, all);
        use(x, out, off, n, all, arg);
    }
    lua_pop(a->L, 1);
}

static void reduce_chunk(const sf_tensor *x, sf_tensor *out, int64_t off, int64_t n, const unsigned char *all, int op)
{
    size_t es = sf_dtype_size(x->dtype);
    for (int64_t i = 0; i < n; i++)
        sf_store_from_double((char *)out->data + off * (int64_t)es, out->dtype, i,
                             reduce_values(all, (size_t)n * es, x->dtype, i, (sf_reduce_op)op));
}

static void gather_chunk(const sf_tensor *x, sf_tensor *out, int64_t off, int64_t n, const unsigned char *all, int unused)
{
    (void)unused;
    size_t es = sf_dtype_size(x->dtype);
    for (int r = 0; r < sf_dist.info.world; r++)
        memcpy((char *)out->data + ((int64_t)r * x->numel + off) * (int64_t)es, all + (size_t)r * (size_t)n * es,
               (size_t)n * es);
}

static void root_chunk(const sf_tensor *x, sf_tensor *out, int64_t off, int64_t n, const unsigned char *all, int root)
{
    size_t es = sf_dtype_size(x->dtype);
    memcpy((char *)out->data + off * (int64_t)es, all + (size_t)root * (size_t)n * es, (size_t)n * es);
}

static void cpu_reduce_scatter(sf_op_args *a, const sf_tensor *x, sf_tensor *out, sf_reduce_op op)
{
    size_t es = sf_dtype_size(x->dtype);
    int world = sf_dist.info.world, rank = sf_dist.info.rank;
    int64_t chunk = chunk_elems(es, world);
    unsigned char *all = exchange_buffer(a, chunk, es, world);
    unsigned char *mine = all + (size_t)chunk * es * (size_t)world * (size_t)world;
    for (int64_t off = 0; off < out->numel; off += chunk) {
        int64_t n = out->numel - off < chunk ? out->numel - off : chunk;
        /* this rank's pieces of every block, one after another */
        for (int j = 0; j < world; j++)
            memcpy(mine + (size_t)j * (size_t)n * es, (const char *)x->data + ((int64_t)j * out->numel + off) * (int64_t)es,
                   (size_t)n * es);
        sf_dist.transport->gather_bytes(a->L, mine, (size_t)n * es * (size_t)world, all);
        const unsigned char *block = all + (size_t)rank * (size_t)n * es;
        for (int64_t i = 0; i < n; i++)
            sf_store_from_double((char *)out->data + off * es, out->dtype, i,
                                 reduce_values(block, (size_t)n * es * (size_t)world, x->dtype, i, op));
    }
    lua_pop(a->L, 1);
}

/* ---- the ops ---------------------------------------------------------------------------- */

/* world 1: what every collective leaves is x itself */
static void identity(sf_op_args *a, const sf_tensor *x, sf_tensor *out)
{
    if (out && out->data != x->data) sf_copy_tensor(a->L, out, x, sf_arg_stream(a));
}

static void run_all_reduce(sf_op_args *a)
{
    const sf_tensor *x = check_x(a);
    sf_tensor *out = check_out(a, x, 1, 1);
    sf_reduce_op op = check_reduce(a);
    if (!out) out = sf_arg_tensor(a, "x");
    const sf_transport *t = sf_dist.transport;
    if (!t) identity(a, x, out);
    else if (t->all_reduce) t->all_reduce(a->L, x, out, op, sf_arg_stream(a));
    else cpu_exchange(a, x, out, reduce_chunk, op);
}

static void run_all_gather(sf_op_args *a)
{
    const sf_tensor *x = check_x(a);
    sf_tensor *out = check_out(a, x, sf_dist.info.world, 1);
    const sf_transport *t = sf_dist.transport;
    if (!t) identity(a, x, out);
    else if (t->all_gather) t->all_gather(a->L, x, out, sf_arg_stream(a));
    else cpu_exchange(a, x, out, gather_chunk, 0);
}

static void run_reduce_scatter(sf_op_args *a)
{
    const sf_tensor *x = check_x(a);
    sf_tensor *out = check_out(a, x, 1, sf_dist.info.world);
    sf_reduce_op op = check_reduce(a);
    const sf_transport *t = sf_dist.transport;
    if (!t) identity(a, x, out);
    else if (t->reduce_scatter) t->reduce_scatter(a->L, x, out, op, sf_arg_stream(a));
    else cpu_reduce_scatter(a, x, out, op);
}

static void run_broadcast(sf_op_args *a)
{
    sf_tensor *x = (sf_tensor *)check_x(a);
    lua_Integer root = sf_arg_integer(a, "root", 0);
    if (root < 0 || root >= sf_dist.info.world)
        sf_op_error(a, "'root' is %lld: the ranks are 0 to %d", (long long)root, sf_dist.info.world - 1);
    const sf_transport *t = sf_dist.transport;
    if (!t) return;
    if (t->broadcast) t->broadcast(a->L, x, (int)root, sf_arg_stream(a));
    else cpu_exchange(a, x, x, root_chunk, (int)root);
}

const sf_op sf_op_all_reduce = {"all_reduce", "reduce x over the ranks (sf.dist), into out or in place",
                                all_reduce_args, run_all_reduce};
const sf_op sf_op_all_gather = {"all_gather", "every rank's x, concatenated along dimension 0 in rank order",
                                all_gather_args, run_all_gather};
const sf_op sf_op_reduce_scatter = {"reduce_scatter", "x reduced over the ranks, each rank keeping its block of dimension 0",
                                    reduce_scatter_args, run_reduce_scatter};
const sf_op sf_op_broadcast = {"broadcast", "rank root's x copied into every rank's x", broadcast_args, run_broadcast};
