/* The embedding lookup: one CTA a token, its row copied in 16-byte vectors where the rows allow,
 * element by element otherwise; a token outside the table gets a row of NaN. */
#include <cuda_runtime.h>
#include <stdint.h>

#include "common.cuh"
#include "embedding.h"

namespace {

constexpr int kThreads = 128;

template <typename V>
__global__ void __launch_bounds__(kThreads) embedding_kernel(const V *table, int64_t vocab, int64_t ld_table,
                                                            const int32_t *tokens, V *out, int64_t ld_out, int64_t n,
                                                            V nan)
{
    sf::grid_dep_wait();
    sf::grid_dep_launch();
    const int32_t tok = tokens[blockIdx.x];
    V *dst = out + (int64_t)blockIdx.x * ld_out;
    const bool ok = tok >= 0 && tok < vocab;
    const V *src = table + (ok ? (int64_t)tok * ld_table : 0);
    for (int64_t i = threadIdx.x; i < n; i += kThreads) dst[i] = ok ? __ldg(src + i) : nan;
}

template <typename V>
int launch(const void *table, int64_t vocab, int64_t ld_table, const int32_t *tokens, int64_t n_tokens, void *out,
           int64_t ld_out, int64_t n, V nan, cudaStream_t stream)
{
    return (int)sf::launch(embedding_kernel<V>, dim3((unsigned)n_tokens), dim3(kThreads), 0, stream, 1,
                           (const V *)table, vocab, ld_table, tokens, (V *)out, ld_out, n, nan);
}

} // namespace

extern "C" int sf_embedding_cuda(const void *table, int64_t vocab, int64_t ld_table, const int32_t *tokens,
                                 int64_t n_tokens, void *out, int64_t ld_out, int64_t dim, sf_dtype dtype,
                                 void *stream)
{
    if ((dtype != SF_F16 && dtype != SF_BF16 && dtype != SF_F32) || n_tokens < 0 || n_tokens > 0x7fffffff || dim < 1)
        return (int)cudaErrorInvalidValue;
    const int elem_bytes = dtype == SF_F32 ? 4 : 2;
    const uint32_t nan_bits = dtype == SF_F16 ? 0x7e00u : dtype == SF_BF16 ? 0x7fc0u : 0x7fc00000u;
    if (n_tokens == 0) return 0;
    cudaStream_t s = (cudaStream_t)stream;
    const int64_t row = dim * elem_bytes, per = 16 / elem_bytes;
    if (row % 16 == 0 && ld_table % per == 0 && ld_out % per == 0 && sf::aligned16(table) && sf::aligned16(out)) {
        const uint4 nan = elem_bytes == 2 ? make_uint4(nan_bits * 0x10001u, nan_bits * 0x10001u, nan_bits * 0x10001u,
                                                       nan_bits * 0x10001u)
                                          : make_uint4(nan_bits, nan_bits, nan_bits, nan_bits);
        return launch<uint4>(table, vocab, ld_table / per, tokens, n_tokens, out, ld_out / per, row / 16, nan, s);
    }
    if (elem_bytes == 2)
        return launch<uint16_t>(table, vocab, ld_table, tokens, n_tokens, out, ld_out, dim, (uint16_t)nan_bits, s);
    return launch<uint32_t>(table, vocab, ld_table, tokens, n_tokens, out, ld_out, dim, nan_bits, s);
}
