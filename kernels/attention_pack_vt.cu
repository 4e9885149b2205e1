/* pack_vt on the GPU: e4m3 V [B, N, Hkv, D] into vt [B, Hkv, D, Np], the layout the FP8 Hopper
 * attention kernel reads (kernels/attention.h: each head's values transposed, keys in the order of
 * sf_vt_key within every 16, zeros past key N). A memory-bound utility run once per V, as
 * quantize is: a grid-stride loop, one output byte a thread per step, written coalesced; the
 * reads, one per key, are strided. */
#include <cuda_runtime.h>
#include <stdint.h>

#include "attention.h"
#include "common.cuh"

namespace {

constexpr int kThreads = 256;

struct Strides {
    int64_t v[3], vt[3]; /* elements, of v's dims b, n, h and vt's b, h, d */
};

__global__ void __launch_bounds__(kThreads) pack_vt(const uint8_t *v, uint8_t *vt, Strides s, int n, int heads,
                                                    int head_dim, int64_t columns, int64_t total)
{
    sf::grid_dep_wait();
    sf::grid_dep_launch();
    for (int64_t i = blockIdx.x * (int64_t)kThreads + threadIdx.x; i < total; i += (int64_t)gridDim.x * kThreads) {
        const int64_t p = i % columns, r = i / columns;
        const int64_t d = r % head_dim, h = r / head_dim % heads, b = r / head_dim / heads;
        const int key = sf_vt_key((int)p);
        vt[b * s.vt[0] + h * s.vt[1] + d * s.vt[2] + p] = key < n ? v[b * s.v[0] + key * s.v[1] + h * s.v[2] + d] : 0;
    }
}

} // namespace

extern "C" int sf_pack_vt_cuda(const void *v, const int64_t *v_stride, void *vt, const int64_t *vt_stride, int batch,
                               int n, int heads, int head_dim, void *stream)
{
    if (!v || !vt || batch <= 0 || n <= 0 || heads <= 0 || head_dim <= 0) return (int)cudaErrorInvalidValue;
    Strides s;
    for (int d = 0; d < 3; d++) {
        s.v[d] = v_stride[d];
        s.vt[d] = vt_stride[d];
    }
    const int64_t columns = sf_vt_columns(n), total = (int64_t)batch * heads * head_dim * columns;
    const int64_t blocks = (total + kThreads - 1) / kThreads;
    return (int)sf::launch(pack_vt, (unsigned)(blocks < 4096 ? blocks : 4096), kThreads, 0, (cudaStream_t)stream, 1,
                           static_cast<const uint8_t *>(v), static_cast<uint8_t *>(vt), s, n, heads, head_dim, columns,
                           total);
}
