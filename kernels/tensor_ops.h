/* Launchers for the tensor primitives of the CUDA backend (kernels/tensor_ops.cu). Plain C:
 * returns a cudaError_t as int, 0 on success. */
#ifndef SF_TENSOR_OPS_H
#define SF_TENSOR_OPS_H
#include <stdint.h>
#include "sf_types.h"
#ifdef __cplusplus
extern "C" {
#endif

typedef struct sf_layout {
    int ndim, contiguous;
    int64_t numel;
    int64_t shape[SF_MAX_DIMS], stride[SF_MAX_DIMS];
} sf_layout;

/* per-block partial sums written by sf_compare_cuda, summed on the host */
enum { SF_CMP_D2, SF_CMP_R2, SF_CMP_MAXABS, SF_CMP_NAN, SF_CMP_INF, SF_CMP_REFBAD, SF_CMP_FIELDS };
#define SF_CMP_BLOCKS 512

int sf_fill_cuda(void *data, sf_dtype dtype, const sf_layout *lay, double value, void *stream);
int sf_random_cuda(void *data, sf_dtype dtype, const sf_layout *lay, int normal, uint64_t seed, double a,
                   double b, void *stream);
int sf_convert_cuda(void *dst, sf_dtype dst_dtype, const sf_layout *dl, const void *src, sf_dtype src_dtype,
                    const sf_layout *sl, void *stream);
/* dst <- src, one dtype of elem_bytes and one shape, when both have a dense last dimension: each
 * row of that dimension (with the dimensions that are dense in both merged into it) is copied
 * in the widest units, 16 bytes down to 1, that every row start of both allows, row offsets
 * computed once a unit rather than once an element. Returns -1, launching nothing, for other
 * layouts (sf_convert_cuda copies those), else 0 or a CUDA error code. */
int sf_copy_rows_cuda(void *dst, const sf_layout *dl, const void *src, const sf_layout *sl, int elem_bytes,
                      void *stream);
int sf_compare_cuda(const void *out, sf_dtype out_dtype, const sf_layout *ol, const void *ref, sf_dtype ref_dtype,
                    const sf_layout *rl, double *partials, void *stream);
/* Whether our kernels on the current device are launched with programmatic dependent launch
 * (kernels/common.cuh, sf::launch): on a device of compute capability 9.0 or later, unless
 * SFBENCH_PDL=0 is in the environment (read once), which starts every kernel only after the
 * previous one has finished. The decode GEMV never uses it (kernels/gemv.cu). */
int sf_pdl_enabled(void);
/* a one-thread kernel that holds `stream` until *release (host-mapped) becomes non-zero */
int sf_spin_cuda(volatile int *release, int *timed_out, long long timeout_cycles, void *stream);
#ifdef __cplusplus
}
#endif
#endif
