/* The embedding lookup (kernels/embedding.cu): out[t, :] = table[tokens[t], :]. Plain C.
 * A token outside [0, vocab) cannot be refused on the GPU without reading it back (a sync), so
 * its row is written as NaN instead; the op checks tokens on the CPU backend. */
#ifndef SF_EMBEDDING_H
#define SF_EMBEDDING_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/* elem_bytes 2 (f16, bf16: nan_bits 0x7e00 or 0x7fc0) or 4 (f32: 0x7fc00000); table rows of
 * `dim` elements `ld_table` apart, out rows `ld_out` apart. Asynchronous; a cudaError_t. */
int sf_embedding_cuda(const void *table, int64_t vocab, int64_t ld_table, const int32_t *tokens, int64_t n_tokens,
                      void *out, int64_t ld_out, int64_t dim, int elem_bytes, uint32_t nan_bits, void *stream);

#ifdef __cplusplus
}
#endif
#endif
