/* The embedding lookup (kernels/embedding.cu): out[t, :] = table[tokens[t], :]. Plain C.
 * A token outside [0, vocab) cannot be refused on the GPU without reading it back (a sync), so
 * its row is written as NaN instead; the op checks tokens on the CPU backend. */
#ifndef SF_EMBEDDING_H
#define SF_EMBEDDING_H
#include <stdint.h>
#include "sf_types.h"
#ifdef __cplusplus
extern "C" {
#endif

/* dtype SF_F16, SF_BF16 or SF_F32 (the NaN rows are its quiet NaN); table rows of `dim` elements
 * `ld_table` apart, out rows `ld_out` apart. Asynchronous; a cudaError_t. */
int sf_embedding_cuda(const void *table, int64_t vocab, int64_t ld_table, const int32_t *tokens, int64_t n_tokens,
                      void *out, int64_t ld_out, int64_t dim, sf_dtype dtype, void *stream);

#ifdef __cplusplus
}
#endif
#endif
