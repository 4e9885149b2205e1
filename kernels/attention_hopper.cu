/* Flash attention forward for Hopper (sm_90a): wgmma, TMA and warp specialisation.
 *
 * One CTA owns BM = 128 query rows of one (batch, head); 384 threads = 3 warpgroups.
 *   - Warpgroup 0 is the producer: one thread loads Q once and then streams the K and V tiles of
 *     the kv head (BN = 128 rows each) with TMA (128-byte swizzle) into a ring of kStages
 *     stages; every tile has a "full" mbarrier (transaction bytes) and an "empty" one (an arrival
 *     from each of the 8 consumer warps). K and V have separate barriers, so S = Q·Kᵀ can start
 *     before V has landed.
 *   - Warpgroups 1 and 2 are consumers, 64 query rows each. Per tile j:
 *       S_j = Q·K_jᵀ           wgmma m64n128k16, A and B from shared memory (K-major)
 *       O  += P_{j-1}·V_{j-1}   wgmma m64n128k16, A = P from registers, B = V (N-major)
 *     are issued together; the softmax of S_j (in place, fp32, log2 units with the scale folded
 *     in) runs while P_{j-1}·V_{j-1} is still on the tensor cores. Only then is O rescaled and
 *     S_j packed into the 16-bit A fragments of the next P·V: the wgmma accumulator layout of S
 *     is the mma.sync A-fragment layout, so P never touches shared memory.
 *   - Ping-pong: the two consumer warpgroups take turns to issue their wgmma pair (named barriers
 *     1 and 2), so one's softmax overlaps the other's matrix products.
 *   - Online softmax with the lazy rescale of kernels/attention_flash.cu: the running row max
 *     only moves when a row of the warp grew by more than 2^8; otherwise P <= 256 and O is not
 *     rescaled. O / l is exact either way.
 * Tails: TMA zero-fills rows past seq_q / seq_k; keys past seq_k and, for causal, keys after the
 * diagonal are masked in the tiles that need it; tiles entirely above the diagonal are never
 * loaded. The output goes through shared memory (the warpgroup's own Q rows, no longer needed)
 * to 16-byte coalesced stores; rows past seq_q are not written.
 * Supports head_dim 128, f16/bf16, strides that are multiples of 8 elements, 16-byte aligned
 * pointers; other cases return cudaErrorInvalidValue (impl "flash" runs the mma.sync kernel of
 * kernels/attention_flash.cu for head dim 64). */
#include <math.h>

#include "attention.h"
#include "common.cuh"
#include "hopper.cuh"
#include "mma.cuh"
#include "wgmma.cuh"

namespace {

using namespace sf_hopper;

constexpr int D = 128, BM = 128, BN = 128;
constexpr int kStages = 2;
constexpr int kThreads = 384;
constexpr int kHalfBytes = 64 * 2;            /* one 64-column half of a row: the 128-byte swizzle span */
constexpr int kQBytes = BM * D * 2;           /* 32 KB: two column halves of [128 rows][64] */
constexpr int kKVBytes = BN * D * 2;          /* 32 KB per K or V tile, same layout */
constexpr int kSmem = 1024 + kQBytes + 2 * kStages * kKVBytes + 8 * (1 + 4 * kStages);
constexpr float kLazyLog2 = 8.f;
constexpr int kProducerRegs = 40, kConsumerRegs = 232;

struct Params {
    CUtensorMap map_q, map_k, map_v;  /* 4-d {d, n, h, b}, boxes of 64 × 128 rows */
    char *o;
    float *lse;
    int64_t os[3];                    /* output strides (elements) for b, n, h */
    int batch, seq_q, seq_k, n_heads, group, n_qblocks;
    int diag;                         /* seq_k - seq_q: key j visible to query i iff j <= i + diag */
    float scale_log2;                 /* scale · log2(e) */
};

using sf::fast_exp2;

template <typename T, bool CAUSAL>
__global__ void __launch_bounds__(kThreads, 1) attention_hopper_kernel(const __grid_constant__ Params p)
{
    using tr = sf::dtype_traits<T>;
    extern __shared__ uint8_t smem_raw[];
    const uint32_t base = (smem_u32(smem_raw) + 1023u) & ~1023u;
    const uint32_t sQ = base, sK = sQ + kQBytes, sV = sK + kStages * kKVBytes;
    const uint32_t q_full = sV + kStages * kKVBytes;
    const uint32_t k_full = q_full + 8, k_empty = k_full + 8 * kStages;
    const uint32_t v_full = k_empty + 8 * kStages, v_empty = v_full + 8 * kStages;

    int qb, bh;
    sf::attention_block((int)blockIdx.x, p.batch * p.n_heads, p.n_qblocks, CAUSAL, qb, bh);
    const int b = bh / p.n_heads, h = bh % p.n_heads, hk = h / p.group;
    const int q0 = qb * BM;
    int n_tiles = (p.seq_k + BN - 1) / BN;
    if (CAUSAL) {
        const int last = q0 + BM - 1 + p.diag; /* the last key the block's last row sees */
        n_tiles = last < 0 ? 0 : min(n_tiles, last / BN + 1);
    }

    const int wg = threadIdx.x / 128, tid = threadIdx.x % 128;
    if (threadIdx.x == 0) {
        mbar_init(q_full, 1);
        for (int s = 0; s < kStages; s++) {
            mbar_init(k_full + 8 * s, 1);
            mbar_init(v_full + 8 * s, 1);
            mbar_init(k_empty + 8 * s, 8);
            mbar_init(v_empty + 8 * s, 8);
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    sf::grid_dep_wait(); /* q, k and v are complete (see common.cuh) */
    sf::grid_dep_launch();

    if (wg == 0) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(kProducerRegs));
        if (tid != 0) return;
        /* rows [row0, row0 + 128) of one head as its two 64-column halves, signalling `full` */
        auto load = [&](uint32_t dst, const CUtensorMap *map, uint32_t full, int bytes, int row0, int head) {
            mbar_expect_tx(full, bytes);
            tma_load_4d(dst, map, full, 0, row0, head, b);
            tma_load_4d(dst + bytes / 2, map, full, 64, row0, head, b);
        };
        load(sQ, &p.map_q, q_full, kQBytes, q0, h);
        for (int j = 0; j < n_tiles; j++) {
            const int s = j % kStages;
            const uint32_t phase = ((j / kStages) & 1) ^ 1; /* the use of this stage one round ago */
            if (j >= kStages) mbar_wait(k_empty + 8 * s, phase);
            load(sK + s * kKVBytes, &p.map_k, k_full + 8 * s, kKVBytes, j * BN, hk);
            if (j >= kStages) mbar_wait(v_empty + 8 * s, phase);
            load(sV + s * kKVBytes, &p.map_v, v_full + 8 * s, kKVBytes, j * BN, hk);
        }
        return;
    }

    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(kConsumerRegs));
    const int c = wg - 1, warp = tid / 32, lane = tid % 32;
    const int quad = lane % 4, g = lane / 4;
    const int r0 = q0 + 64 * c + 16 * warp;      /* this warp's first query row */
    const int row0 = r0 + g, row1 = row0 + 8;    /* this thread's two rows */
    const uint32_t qa = sQ + 64 * c * kHalfBytes; /* this warpgroup's 64 rows of Q */
    const int bar_mine = 1 + c, bar_other = 2 - c;

    float o[D / 2];
#pragma unroll
    for (int i = 0; i < D / 2; i++) o[i] = 0.f;
    float s[BN / 2];
    uint32_t pa[BN / 16][4];                     /* P of the previous tile as A fragments */
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f; /* row max (log2 units), row sum */

    /* S = Q·K_jᵀ into s (one commit group) */
    auto issue_s = [&](int j) {
        const uint32_t kb = sK + (j % kStages) * kKVBytes;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk++) {
            const uint32_t off = (kk / 4) * (kQBytes / 2) + (kk % 4) * 32;
            const uint32_t koff = (kk / 4) * (kKVBytes / 2) + (kk % 4) * 32;
            wgmma_ss<BN, T>(s, smem_desc(qa + off), smem_desc(kb + koff), kk > 0);
        }
        wgmma_commit();
    };
    /* O += P·V_j (one commit group) */
    auto issue_pv = [&](int j) {
        const uint32_t vb = sV + (j % kStages) * kKVBytes;
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++)
            wgmma_rs_t<D, T>(o, pa[kk], smem_desc_mn(vb + kk * 16 * kHalfBytes, kKVBytes / 2, 8 * kHalfBytes));
        wgmma_commit();
    };
    auto release = [&](uint32_t empty, int j) {
        __syncwarp();
        if (lane == 0) mbar_arrive(empty + 8 * (j % kStages));
    };
    auto wait_full = [&](uint32_t full, int j) { mbar_wait(full + 8 * (j % kStages), (j / kStages) & 1); };
    /* masked online softmax of S_j in place; returns whether the row maxima moved (a0/a1 then
     * hold the factors by which O must be rescaled) */
    float a0 = 1.f, a1 = 1.f;
    auto softmax = [&](int j) -> bool {
        const int key0 = j * BN;
        if (key0 + BN > p.seq_k || (CAUSAL && key0 + BN - 1 > r0 + p.diag)) {
#pragma unroll
            for (int i = 0; i < BN / 8; i++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int col = key0 + 8 * i + 2 * quad + (e & 1), row = e < 2 ? row0 : row1;
                    if (col >= p.seq_k || (CAUSAL && col > row + p.diag)) s[4 * i + e] = -INFINITY;
                }
        }
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int i = 0; i < BN / 8; i++) {
            mx0 = fmaxf(mx0, fmaxf(s[4 * i], s[4 * i + 1]));
            mx1 = fmaxf(mx1, fmaxf(s[4 * i + 2], s[4 * i + 3]));
        }
#pragma unroll
        for (int x = 1; x <= 2; x <<= 1) {
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, x));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, x));
        }
        mx0 *= p.scale_log2;
        mx1 *= p.scale_log2;
        const bool grow = __any_sync(0xffffffffu, mx0 > m0 + kLazyLog2 || mx1 > m1 + kLazyLog2);
        if (grow) {
            const float n0 = fmaxf(m0, mx0), n1 = fmaxf(m1, mx1);
            a0 = n0 == -INFINITY ? 1.f : fast_exp2(m0 - n0);
            a1 = n1 == -INFINITY ? 1.f : fast_exp2(m1 - n1);
            m0 = n0;
            m1 = n1;
            l0 *= a0;
            l1 *= a1;
        }
        const float off0 = m0 == -INFINITY ? 0.f : m0, off1 = m1 == -INFINITY ? 0.f : m1;
#pragma unroll
        for (int i = 0; i < BN / 8; i++) {
            s[4 * i] = fast_exp2(fmaf(s[4 * i], p.scale_log2, -off0));
            s[4 * i + 1] = fast_exp2(fmaf(s[4 * i + 1], p.scale_log2, -off0));
            s[4 * i + 2] = fast_exp2(fmaf(s[4 * i + 2], p.scale_log2, -off1));
            s[4 * i + 3] = fast_exp2(fmaf(s[4 * i + 3], p.scale_log2, -off1));
            l0 += s[4 * i] + s[4 * i + 1];
            l1 += s[4 * i + 2] + s[4 * i + 3];
        }
        return grow;
    };
    auto rescale_o = [&]() {
#pragma unroll
        for (int i = 0; i < D / 8; i++) {
            o[4 * i] *= a0;
            o[4 * i + 1] *= a0;
            o[4 * i + 2] *= a1;
            o[4 * i + 3] *= a1;
        }
    };
    auto pack_p = [&]() {
#pragma unroll
        for (int kk = 0; kk < BN / 16; kk++) {
            pa[kk][0] = tr::pack2(s[8 * kk], s[8 * kk + 1]);
            pa[kk][1] = tr::pack2(s[8 * kk + 2], s[8 * kk + 3]);
            pa[kk][2] = tr::pack2(s[8 * kk + 4], s[8 * kk + 5]);
            pa[kk][3] = tr::pack2(s[8 * kk + 6], s[8 * kk + 7]);
        }
    };
    /* ping-pong turn: wait for mine before issuing, hand it over after */
    auto turn_begin = [&]() { named_bar_sync(bar_mine, 256); };
    auto turn_end = [&]() { named_bar_arrive(bar_other, 256); };

    if (c == 1) named_bar_arrive(bar_other, 256); /* warpgroup 0 goes first */
    mbar_wait(q_full, 0);
    if (n_tiles > 0) {
        /* tile 0: S alone */
        wait_full(k_full, 0);
        turn_begin();
        wgmma_fence();
        issue_s(0);
        turn_end();
        wgmma_wait<0>();
        fence_acc(s);
        release(k_empty, 0);
        softmax(0);
        pack_p();
        /* tiles 1..n-1: S_j and P_{j-1}·V_{j-1} together; the softmax of S_j overlaps the second */
        for (int j = 1; j < n_tiles; j++) {
            wait_full(k_full, j);
            wait_full(v_full, j - 1);
            turn_begin();
            wgmma_fence();
            issue_s(j);
            issue_pv(j - 1);
            turn_end();
            wgmma_wait<1>();
            fence_acc(s);
            release(k_empty, j);
            const bool grow = softmax(j);
            wgmma_wait<0>();
            fence_acc(o);
            release(v_empty, j - 1);
            if (grow) rescale_o();
            pack_p();
        }
        /* the last P·V */
        wait_full(v_full, n_tiles - 1);
        turn_begin();
        wgmma_fence();
        issue_pv(n_tiles - 1);
        turn_end();
        wgmma_wait<0>();
        fence_acc(o);
        release(v_empty, n_tiles - 1);
    }
    if (c == 0) named_bar_sync(bar_mine, 256); /* balance warpgroup 1's first arrival */

    /* epilogue: O / l through this warpgroup's Q rows (two [64][64] halves, 16-byte chunks
     * swizzled by row) to 16-byte stores */
#pragma unroll
    for (int x = 1; x <= 2; x <<= 1) {
        l0 += __shfl_xor_sync(0xffffffffu, l0, x);
        l1 += __shfl_xor_sync(0xffffffffu, l1, x);
    }
    const float inv0 = l0 > 0.f ? 1.f / l0 : 0.f, inv1 = l1 > 0.f ? 1.f / l1 : 0.f;
    if (p.lse && quad == 0) {
        float *lse = p.lse + ((int64_t)b * p.n_heads + h) * p.seq_q;
        if (row0 < p.seq_q) lse[row0] = l0 > 0.f ? (m0 + log2f(l0)) * 0.6931471805599453f : -INFINITY;
        if (row1 < p.seq_q) lse[row1] = l1 > 0.f ? (m1 + log2f(l1)) * 0.6931471805599453f : -INFINITY;
    }
    named_bar_sync(bar_mine + 2, 128); /* every warp of the warpgroup is done reading its Q rows */
    const int lr0 = 16 * warp + g, lr1 = lr0 + 8; /* rows within the warpgroup's 64 */
#pragma unroll
    for (int i = 0; i < D / 8; i++) {
        const uint32_t half = qa + (i / 8) * (kQBytes / 2);
        const uint32_t a_0 = half + lr0 * kHalfBytes + (((i % 8) ^ (lr0 % 8)) * 16) + quad * 4;
        const uint32_t a_1 = half + lr1 * kHalfBytes + (((i % 8) ^ (lr1 % 8)) * 16) + quad * 4;
        st_shared_u32(a_0, tr::pack2(o[4 * i] * inv0, o[4 * i + 1] * inv0));
        st_shared_u32(a_1, tr::pack2(o[4 * i + 2] * inv1, o[4 * i + 3] * inv1));
    }
    named_bar_sync(bar_mine + 2, 128);
    T *out = reinterpret_cast<T *>(p.o) + (int64_t)b * p.os[0] + (int64_t)h * p.os[2];
#pragma unroll
    for (int k = 0; k < 64 * D / 8 / 128; k++) {
        const int idx = tid + 128 * k, r = idx / (D / 8), ch = idx % (D / 8);
        const int row = q0 + 64 * c + r;
        const uint32_t a = qa + (ch / 8) * (kQBytes / 2) + r * kHalfBytes + (((ch % 8) ^ (r % 8)) * 16);
        uint4 v;
        asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];"
                     : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                     : "r"(a));
        if (row < p.seq_q) *reinterpret_cast<uint4 *>(out + (int64_t)row * p.os[1] + ch * 8) = v;
    }
}

/* [B, N, H, D] (strides in elements) as a 4-d tensor {d, n, h, b} with boxes of 64 × rows. */
bool make_map(CUtensorMap *map, sf_dtype dtype, const void *ptr, int batch, int n, int heads, const int64_t *stride,
              int rows)
{
    PFN_cuTensorMapEncodeTiled_v12000 encode = tensor_map_encoder();
    if (!encode) return false;
    cuuint64_t dims[4] = {(cuuint64_t)D, (cuuint64_t)n, (cuuint64_t)heads, (cuuint64_t)batch};
    cuuint64_t strides[3] = {(cuuint64_t)stride[1] * 2, (cuuint64_t)stride[2] * 2, (cuuint64_t)stride[0] * 2};
    cuuint32_t box[4] = {64, (cuuint32_t)rows, 1, 1};
    cuuint32_t elem_strides[4] = {1, 1, 1, 1};
    return encode(map, dtype == SF_BF16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 4,
                  const_cast<void *>(ptr), dims, strides, box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                  CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                  CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

template <typename T, bool CAUSAL> int launch(const Params &p, int blocks, cudaStream_t stream)
{
    auto kernel = attention_hopper_kernel<T, CAUSAL>;
    static bool configured = false; /* per instantiation; the attribute is per device function */
    if (!configured) {
        cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem);
        if (e != cudaSuccess) return (int)e;
        configured = true;
    }
    return (int)sf::launch(kernel, blocks, kThreads, kSmem, stream, 1, p);
}

} // namespace

extern "C" int sf_attention_hopper_cuda(const sf_attention_args *a, void *stream)
{
    if (a->head_dim != D || (a->dtype != SF_F16 && a->dtype != SF_BF16) || a->n_kv_heads <= 0 ||
        a->n_heads % a->n_kv_heads != 0 || !(a->scale >= 0.f) || !isfinite(a->scale))
        return (int)cudaErrorInvalidValue;
    const void *ptrs[4] = {a->q, a->k, a->v, a->out};
    const int64_t *strides[4] = {a->q_stride, a->k_stride, a->v_stride, a->o_stride};
    for (int i = 0; i < 4; i++) {
        if ((uintptr_t)ptrs[i] % 16) return (int)cudaErrorInvalidValue;
        for (int d = 0; d < 3; d++)
            if (strides[i][d] % 8) return (int)cudaErrorInvalidValue;
    }
    if (a->batch == 0 || a->seq_q == 0 || a->n_heads == 0) return 0;
    Params p;
    if (!make_map(&p.map_q, a->dtype, a->q, a->batch, a->seq_q, a->n_heads, a->q_stride, BM) ||
        !make_map(&p.map_k, a->dtype, a->k, a->batch, a->seq_k, a->n_kv_heads, a->k_stride, BN) ||
        !make_map(&p.map_v, a->dtype, a->v, a->batch, a->seq_k, a->n_kv_heads, a->v_stride, BN))
        return (int)cudaErrorInvalidValue;
    p.o = (char *)a->out;
    p.lse = a->lse;
    for (int d = 0; d < 3; d++) p.os[d] = a->o_stride[d];
    p.batch = a->batch;
    p.seq_q = a->seq_q;
    p.seq_k = a->seq_k;
    p.n_heads = a->n_heads;
    p.group = a->n_heads / a->n_kv_heads;
    p.n_qblocks = (a->seq_q + BM - 1) / BM;
    p.diag = a->seq_k - a->seq_q;
    p.scale_log2 = (a->scale > 0.f ? a->scale : 1e-30f) * 1.4426950408889634f;
    const long long blocks = (long long)p.n_qblocks * a->batch * a->n_heads;
    if (blocks > 0x7fffffff) return (int)cudaErrorInvalidValue;
    cudaStream_t s = (cudaStream_t)stream;
    const bool bf = a->dtype == SF_BF16, causal = a->causal != 0;
    if (bf) return causal ? launch<__nv_bfloat16, true>(p, (int)blocks, s) : launch<__nv_bfloat16, false>(p, (int)blocks, s);
    return causal ? launch<__half, true>(p, (int)blocks, s) : launch<__half, false>(p, (int)blocks, s);
}
