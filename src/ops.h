/* Built-in ops: each op declares its named arguments once; the registry checks a call's table
 * against that declaration (unknown names, missing ones, wrong types) before the op runs, and
 * the same declaration prints `sfbench --list`. */
#ifndef SF_OPS_H
#define SF_OPS_H
#include "sfbench.h"

typedef enum { SF_ARG_TENSOR, SF_ARG_BOOL, SF_ARG_NUMBER, SF_ARG_INTEGER, SF_ARG_STRING, SF_ARG_STREAM } sf_arg_type;

typedef struct sf_arg_spec {
    const char *name;
    sf_arg_type type;
    int required;
    const char *dflt;      /* shown by --list; NULL when none */
    const char *doc;
} sf_arg_spec;

#define SF_MAX_OP_ARGS 24
typedef struct sf_op_args {
    lua_State *L;
    const struct sf_op *op;
    int present[SF_MAX_OP_ARGS];
    union { sf_tensor *t; int b; double n; lua_Integer i; const char *s; void *stream; } v[SF_MAX_OP_ARGS];
} sf_op_args;

typedef struct sf_op {
    const char *name;
    const char *doc;
    const sf_arg_spec *args;           /* terminated by {NULL} */
    void (*run)(sf_op_args *a);        /* raises on error; may push results and return their count in a->L */
} sf_op;

/* typed access by name (the spec is short: a linear search costs nothing next to a launch) */
sf_tensor *sf_arg_tensor(sf_op_args *a, const char *name);   /* NULL when absent and optional */
int sf_arg_bool(sf_op_args *a, const char *name, int dflt);
double sf_arg_number(sf_op_args *a, const char *name, double dflt);
lua_Integer sf_arg_integer(sf_op_args *a, const char *name, lua_Integer dflt);
const char *sf_arg_string(sf_op_args *a, const char *name, const char *dflt);
int sf_arg_choice(sf_op_args *a, const char *name, const char *const *choices, int dflt); /* index */
void *sf_arg_stream(sf_op_args *a);
_Noreturn void sf_op_error(sf_op_args *a, const char *fmt, ...);

/* checks shared by ops: one device for all tensors, dtypes and shapes as the op needs */
sf_device_kind sf_op_device(sf_op_args *a, const char *const *names);
void sf_op_check_dtype(sf_op_args *a, const char *name, const sf_tensor *t, unsigned dtype_mask);
/* the dtypes of the model ops' activations: f16 and bf16, and on the CPU backend (the references)
 * f32 and f64 too */
unsigned sf_op_model_dtypes(sf_device_kind dev);
void sf_op_check_shape(sf_op_args *a, const char *name, const sf_tensor *t, int ndim, const int64_t *shape);
/* attention's [B, N, H, D] tensors: 4 dimensions, a dense last one; stride gets dims 0..2 */
void sf_op_check_bnhd(sf_op_args *a, const char *name, const sf_tensor *t, int64_t *stride);
#define SF_DT(x) (1u << (x))
/* elements of the last dimension adjacent (a size-1 dimension takes any stride); an error naming
 * the tensor and its stride otherwise */
void sf_op_check_last_dense(sf_op_args *a, const char *name, const sf_tensor *t);
/* An FP8 operand's scale argument `name`, of operand `of` (dtype of_dtype): refused unless fp8;
 * where fp8, required (unless optional) and a contiguous f32 [1] (per tensor, where per_tensor) or
 * [rows] (one per `unit`, where rows > 0; rows 1 reads as per tensor). Returns its data (NULL where
 * absent) and sets *per_row (when given): whether it is [rows]. One wording for gemm,
 * linear_rope, ffn and attention. */
typedef struct {
    int64_t rows;
    const char *unit;
    int per_tensor, optional;
} sf_fp8_scale_form;
const float *sf_op_fp8_scale(sf_op_args *a, const char *name, const char *of, sf_dtype of_dtype, int fp8,
                             sf_fp8_scale_form form, int *per_row);
/* FP8 inputs (`what`, e.g. "e4m3 inputs") on this GPU: an error unless it has FP8 tensor cores
 * (compute capability 8.9 or later) */
void sf_op_check_fp8_gpu(sf_op_args *a, const char *what);
/* a written tensor and another operand: separate memory, or (same_allowed) the same view, as
 * an op working in place; anything else is an error naming both */
void sf_op_check_alias(sf_op_args *a, const char *written, const sf_tensor *w, const char *other,
                       const sf_tensor *o, int same_allowed);
/* the same for [B, T, heads, D] views that may also be separate heads of the same rows (q, k and
 * v of a packed QKV buffer); any other overlap is an error naming both */
void sf_op_check_heads_apart(sf_op_args *a, const char *written, const sf_tensor *w, const char *other,
                             const sf_tensor *o);
/* rope and linear_rope: checks x [B, N, heads, D] (D even, last dim dense) and the pos_offset
 * and theta arguments, then describes the rotation of all of x's heads (op_norm_rope.c; r is a
 * struct sf_rope_args of kernels/norm_rope.h); sf_op_rope_heads the same without pos_offset
 * (left 0), for an op that takes positions only */
struct sf_rope_args;
void sf_op_rope_setup(sf_op_args *a, const char *name, const sf_tensor *x, struct sf_rope_args *r);
void sf_op_rope_heads(sf_op_args *a, const char *name, const sf_tensor *x, struct sf_rope_args *r);
/* decode_attention and kv_append: a KV cache, contiguous [B, capacity, Hkv, D] or paged (the pool
 * [pages, page_size, Hkv, D] with block_table i32 [B, pages per sequence]), named `name`, for
 * `batch` sequences (the size of dimension 1 of `of`): the block table's shape and the page size
 * (a power of two) checked, the capacity at most 2^30 */
typedef struct sf_op_cache {
    const int32_t *block_table; /* NULL: contiguous */
    int64_t bt_stride, page_size, n_pages, capacity; /* contiguous: page_size = capacity, n_pages = batch */
} sf_op_cache;
void sf_op_check_cache(sf_op_args *a, const char *name, const sf_tensor *cache, const sf_tensor *block_table,
                       int64_t batch, const char *of, sf_op_cache *c);

const sf_op *const *sf_op_registry(void);   /* NULL-terminated */
void sf_print_op_list(void);

extern const sf_op sf_op_gemm;
extern const sf_op sf_op_attention;
extern const sf_op sf_op_decode_attention;
extern const sf_op sf_op_ffn;
extern const sf_op sf_op_pack_gate_up;
extern const sf_op sf_op_pack_vt;
extern const sf_op sf_op_swiglu;
extern const sf_op sf_op_rmsnorm;
extern const sf_op sf_op_add_rmsnorm;
extern const sf_op sf_op_rope;
extern const sf_op sf_op_linear_rope;
extern const sf_op sf_op_add;
extern const sf_op sf_op_embedding;
extern const sf_op sf_op_kv_append;
extern const sf_op sf_op_quantize;
extern const sf_op sf_op_dequantize;
extern const sf_op sf_op_all_reduce;
extern const sf_op sf_op_all_gather;
extern const sf_op sf_op_reduce_scatter;
extern const sf_op sf_op_broadcast;
#endif
