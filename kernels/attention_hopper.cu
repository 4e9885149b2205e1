/* Flash attention forward for Hopper (sm_90a): wgmma, TMA and warp specialisation.
 *
 * A work item is BM = 128 query rows of one (batch, head). The grid is one wave of CTAs (one an
 * SM), each taking items in turn (persistent), so that one item's first loads overlap the last
 * one's final P·V and epilogue; 384 threads = 3 warpgroups.
 *   - Warpgroup 0 is the producer: one thread loads an item's Q once its last one is no longer
 *     read (a "q_empty" mbarrier), and streams the K and V tiles of the kv head (BN = 128 rows
 *     each) with TMA (128-byte swizzle) into a ring of kStages stages that runs on from item to
 *     item; every tile has a "full" mbarrier (transaction bytes) and an "empty" one (an arrival
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
 *     only moves when a row of the warp grew by more than 2^8 (FP8: by anything, see below);
 *     otherwise P <= 256 and O is not rescaled. O / l is exact either way.
 * Tails: TMA zero-fills rows past seq_q / seq_k; keys past seq_k and, for causal, keys after the
 * diagonal are masked in the tiles that need it; tiles entirely above the diagonal are never
 * loaded. The output goes through a staging region of shared memory of its own (so that the
 * next Q can land meanwhile) to 16-byte coalesced stores; rows past seq_q are not written.
 * Supports head_dim 128, f16/bf16, strides that are multiples of 8 elements, 16-byte aligned
 * pointers; other cases return cudaErrorInvalidValue (impl "flash" runs the mma.sync kernel of
 * kernels/attention_flash.cu for head dim 64).
 *
 * FP8 (TI = e4m3, FlashAttention-3's scheme): Q, K and vt in e4m3 with per-tensor scales, out f16
 * or bf16. A row of a Q or K tile is 128 bytes, one swizzle span, so a tile is one TMA box and
 * S = Q·Kᵀ is 4 wgmma m64n128k32 (A and B K-major from shared memory). FP8 wgmma takes B K-major
 * only, so V comes transposed, vt [B, Hkv, D, Np] (pack_vt): a tile is 128 d-rows of 128 keys,
 * and O += P·V is 4 wgmma m64n128k32 with B = the vt tile, K-major, as K's descriptors. The
 * softmax is the same in fp32, q_scale·k_scale folded into its log2 scale (read by every thread
 * from device memory); P, at most 1 (FP8 rescales whenever a row maximum grows: with the lazy
 * rescale a row's largest P was 2^δ for a fractional δ, rounded by up to 2^-4, where the exact
 * maximum makes it 1, exactly; e4m3 reaches 448), is converted to
 * e4m3 (cvt.rn.satfinite) in registers as the A operand of the second product, and O is multiplied
 * by v_scale / l in the epilogue; l sums P before its rounding, as FA3 does.
 * The fp32 accumulator fragment of S and the 8-bit A fragment of wgmma k32 differ (PTX ISA, wgmma
 * register fragments; CUTLASS's ALayout_64x32 and CLayout_64xN say the same): in 32 keys, a
 * thread (t = lane % 4) holds of each of its two rows the keys 8i + 2t + {0, 1}, i = 0..3, while
 * the A fragment's registers a[0] (row lane/4) and a[1] (8 rows down) take columns 4t..4t+3 and
 * a[2], a[3] columns 16 + 4t..16 + 4t + 3. Both are 8 values a row a thread, so no value leaves
 * its thread: a[0] gets keys 2t, 2t+1, 8+2t, 9+2t (bytes in that order, the first lowest), a[2]
 * the same 16 keys on, and the keys of vt are permuted to match, by pack_vt, once per V: column
 * 4t + e of each 16 holds key 8·(e / 2) + 2t + e % 2 (sf_vt_key, kernels/attention.h). No byte
 * permute or shuffle runs in the loop. vt's columns past seq_k are read as stored (pack_vt writes
 * zeros; P is 0 there) up to Np, zero-filled beyond. */
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
constexpr int kHalfBytes = 128;               /* a row of one swizzle span: 64 16-bit or 128 e4m3 columns */
constexpr float kLazyLog2 = 8.f;
constexpr int kProducerRegs = 40, kConsumerRegs = 232;

/* Shared-memory sizes for inputs of type TI (TI 16-bit: Q and K/V rows are two 128-byte halves).
 * The output is staged in a region of its own, so that the next work item's Q can land while a
 * warpgroup writes out the last one's. (A ring of 4 stages for FP8 was slower than 2 on the H100:
 * kernels/NOTES-attention.md, 2026-12-06.) */
template <typename TI> struct Tiles {
    static constexpr bool kFp8 = sizeof(TI) == 1;
    static constexpr int kHalves = D * (int)sizeof(TI) / kHalfBytes;
    static constexpr int kQBytes = BM * D * (int)sizeof(TI); /* kHalves column halves of [128 rows][128 bytes] */
    static constexpr int kKVBytes = BN * D * (int)sizeof(TI); /* per K or V tile, same layout (vt: [d][keys]) */
    static constexpr int kOBytes = 2 * 64 * D * 2;            /* the 16-bit output, 64 rows a warpgroup */
    static constexpr int kSmem = 1024 + kQBytes + 2 * kStages * kKVBytes + kOBytes + 8 * (2 + 4 * kStages);
};

struct Params {
    CUtensorMap map_q, map_k, map_v;  /* 4-d {d, n, h, b} (vt: {keys, d, h, b}), boxes of 128 bytes × 128 rows */
    char *o;
    float *lse;
    const float *q_scale, *k_scale, *v_scale; /* FP8: the dequantization scales ([1], device memory) */
    int64_t os[3];                    /* output strides (elements) for b, n, h */
    int batch, seq_q, seq_k, n_heads, group, n_qblocks;
    int diag;                         /* seq_k - seq_q: key j visible to query i iff j <= i + diag */
    float scale_log2;                 /* scale · log2(e) */
};

using sf::fast_exp2;

/* v[0] op v[1] op ... as a tree (N a power of two) */
template <int N, typename F> __device__ __forceinline__ float join(const float (&v)[N], F op)
{
    static_assert(N > 0 && (N & (N - 1)) == 0, "a power of two");
    if constexpr (N == 1) {
        return v[0];
    } else {
        float h[N / 2];
#pragma unroll
        for (int i = 0; i < N / 2; i++) h[i] = op(v[2 * i], v[2 * i + 1]);
        return join(h, op);
    }
}

/* four floats to e4m3 (round to nearest even, saturated), x0 in the lowest byte: cvt's first
 * source goes to the upper byte of its pair */
__device__ __forceinline__ uint32_t pack4_e4m3(float x0, float x1, float x2, float x3)
{
    uint16_t lo, hi;
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %2, %1;" : "=h"(lo) : "f"(x0), "f"(x1));
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %2, %1;" : "=h"(hi) : "f"(x2), "f"(x3));
    return (uint32_t)lo | (uint32_t)hi << 16;
}

/* T: the output's type (f16/bf16); TI: the inputs', T or e4m3 */
template <typename T, typename TI, bool CAUSAL>
__global__ void __launch_bounds__(kThreads, 1) attention_hopper_kernel(const __grid_constant__ Params p)
{
    using tr = sf::dtype_traits<T>;
    using L = Tiles<TI>;
    constexpr bool kFp8 = L::kFp8;
    /* independent chains of a row's max and sum over a tile: four for FP8, whose softmax is
     * what holds it; one for 16 bits, where four took 1-2.5% longer non-causal on the H200
     * (kernels/NOTES-attention.md, 2026-12-07) */
    constexpr int kChains = kFp8 ? 4 : 1;
    /* how far a row maximum may grow before O is rescaled: 2^8 for 16 bits; 0 for FP8, whose P is
     * rounded to e4m3 (kernels/NOTES-attention.md, 2026-12-07) */
    constexpr float kLazy = kFp8 ? 0.f : kLazyLog2;
    constexpr int kQBytes = L::kQBytes, kKVBytes = L::kKVBytes;
    extern __shared__ uint8_t smem_raw[];
    const uint32_t base = (smem_u32(smem_raw) + 1023u) & ~1023u;
    const uint32_t sQ = base, sK = sQ + kQBytes, sV = sK + kStages * kKVBytes, sO = sV + kStages * kKVBytes;
    const uint32_t q_full = sO + L::kOBytes, q_empty = q_full + 8;
    const uint32_t k_full = q_empty + 8, k_empty = k_full + 8 * kStages;
    const uint32_t v_full = k_empty + 8 * kStages, v_empty = v_full + 8 * kStages;

    /* Work items: every CTA takes item blockIdx.x, then the next round's gridDim.x items counted
     * from the end, and so on (a zigzag): over each pair of rounds the indices of a CTA's two items
     * add up to the same for every CTA. The causal order runs from the longest items to the
     * shortest (sf::attention_block), so a CTA that took a longer item in one round takes a
     * shorter one in the next. */
    const int64_t n_work = (int64_t)p.batch * p.n_heads * p.n_qblocks;
    auto work = [&](int round) {
        return (int64_t)round * gridDim.x + (round & 1 ? gridDim.x - 1 - blockIdx.x : blockIdx.x);
    };
    struct Item {
        int b, h, hk, q0, n_tiles;
    };
    auto item = [&](int64_t w) {
        int qb, bh;
        sf::attention_block((int)w, p.batch * p.n_heads, p.n_qblocks, CAUSAL, qb, bh);
        Item x;
        x.b = bh / p.n_heads;
        x.h = bh % p.n_heads;
        x.hk = x.h / p.group;
        x.q0 = qb * BM;
        x.n_tiles = (p.seq_k + BN - 1) / BN;
        if (CAUSAL) {
            const int last = x.q0 + BM - 1 + p.diag; /* the last key the block's last row sees */
            x.n_tiles = last < 0 ? 0 : min(x.n_tiles, last / BN + 1);
        }
        return x;
    };

    const int wg = threadIdx.x / 128, tid = threadIdx.x % 128;
    if (threadIdx.x == 0) {
        mbar_init(q_full, 1);
        mbar_init(q_empty, 8);
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
        /* a tile of one head from coordinates (c0, c1) as its 128-byte column halves, signalling `full` */
        auto load = [&](uint32_t dst, const CUtensorMap *map, uint32_t full, int bytes, int c0, int c1, int head, int b) {
            mbar_expect_tx(full, bytes);
#pragma unroll
            for (int x = 0; x < L::kHalves; x++)
                tma_load_4d(dst + x * (bytes / L::kHalves), map, full, c0 + x * kHalfBytes / (int)sizeof(TI), c1, head, b);
        };
        /* it: K/V tiles loaded so far, over all of the CTA's items (the ring's position) */
        for (int t = 0, it = 0; work(t) < n_work; t++) {
            const Item x = item(work(t));
            if (t > 0) mbar_wait(q_empty, (t - 1) & 1); /* the consumers are done with the last item's Q */
            load(sQ, &p.map_q, q_full, kQBytes, 0, x.q0, x.h, x.b);
            for (int j = 0; j < x.n_tiles; j++, it++) {
                const int s = it % kStages;
                const uint32_t phase = ((it / kStages) & 1) ^ 1; /* the use of this stage one round ago */
                if (it >= kStages) mbar_wait(k_empty + 8 * s, phase);
                load(sK + s * kKVBytes, &p.map_k, k_full + 8 * s, kKVBytes, 0, j * BN, x.hk, x.b);
                if (it >= kStages) mbar_wait(v_empty + 8 * s, phase);
                if (kFp8) /* vt: 128 keys of the 128 d-rows */
                    load(sV + s * kKVBytes, &p.map_v, v_full + 8 * s, kKVBytes, j * BN, 0, x.hk, x.b);
                else
                    load(sV + s * kKVBytes, &p.map_v, v_full + 8 * s, kKVBytes, 0, j * BN, x.hk, x.b);
            }
        }
        return;
    }

    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(kConsumerRegs));
    const int c = wg - 1, warp = tid / 32, lane = tid % 32;
    const int quad = lane % 4, g = lane / 4;
    const uint32_t qa = sQ + 64 * c * kHalfBytes; /* this warpgroup's 64 rows of Q */
    const int bar_mine = 1 + c, bar_other = 2 - c;
    /* scale · log2(e), times q_scale · k_scale for FP8: NaN unless positive (kernels/attention.h) */
    float scale_log2 = p.scale_log2;
    if (kFp8) {
        const float qk = *p.q_scale * *p.k_scale;
        scale_log2 = qk > 0.f ? scale_log2 * qk : NAN;
    }
    const float vs = kFp8 ? *p.v_scale : 1.f;

    float o[D / 2];
    float s[BN / 2];
    constexpr int kPSteps = BN * (int)sizeof(TI) / 32; /* k steps of P·V: 32 bytes of P's rows each */
    uint32_t pa[kPSteps][4];                     /* P of the previous tile as A fragments */
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f; /* row max (log2 units), row sum */
    int r0 = 0, row0 = 0, row1 = 0; /* the item's first query row of this warp, and this thread's two rows */

    /* S = Q·K_jᵀ into s (one commit group); j: the ring's position */
    auto issue_s = [&](int j) {
        const uint32_t kb = sK + (j % kStages) * kKVBytes;
#pragma unroll
        for (int kk = 0; kk < D * (int)sizeof(TI) / 32; kk++) {
            const uint32_t off = (kk / 4) * (kQBytes / L::kHalves) + (kk % 4) * 32;
            const uint32_t koff = (kk / 4) * (kKVBytes / L::kHalves) + (kk % 4) * 32;
            wgmma_ss<BN, TI>(s, smem_desc(qa + off), smem_desc(kb + koff), kk > 0);
        }
        wgmma_commit();
    };
    /* O += P·V_j (one commit group): V N-major, or vt K-major for FP8 (32 keys a step) */
    auto issue_pv = [&](int j) {
        const uint32_t vb = sV + (j % kStages) * kKVBytes;
#pragma unroll
        for (int kk = 0; kk < kPSteps; kk++) {
            if constexpr (kFp8)
                wgmma_rs<D, TI>(o, pa[kk], smem_desc(vb + kk * 32));
            else
                wgmma_rs_t<D, T>(o, pa[kk], smem_desc_mn(vb + kk * 16 * kHalfBytes, kKVBytes / 2, 8 * kHalfBytes));
        }
        wgmma_commit();
    };
    auto arrive = [&](uint32_t bar) {
        __syncwarp();
        if (lane == 0) mbar_arrive(bar);
    };
    auto release = [&](uint32_t empty, int j) { arrive(empty + 8 * (j % kStages)); };
    auto wait_full = [&](uint32_t full, int j) { mbar_wait(full + 8 * (j % kStages), (j / kStages) & 1); };
    /* masked online softmax of the item's tile j, S in place; returns whether the row maxima
     * moved (a0/a1 then hold the factors by which O must be rescaled) */
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
        /* the row maxima and sums below run as kChains independent chains each, joined at the
         * end: one chain of 16 dependent FMNMX or FADD a row holds the warp for their latencies */
        float c0[kChains], c1[kChains];
#pragma unroll
        for (int u = 0; u < kChains; u++) c0[u] = c1[u] = -INFINITY;
#pragma unroll
        for (int i = 0; i < BN / 8; i++) {
            c0[i % kChains] = fmaxf(c0[i % kChains], fmaxf(s[4 * i], s[4 * i + 1]));
            c1[i % kChains] = fmaxf(c1[i % kChains], fmaxf(s[4 * i + 2], s[4 * i + 3]));
        }
        float mx0 = join(c0, [](float a, float b) { return fmaxf(a, b); });
        float mx1 = join(c1, [](float a, float b) { return fmaxf(a, b); });
#pragma unroll
        for (int x = 1; x <= 2; x <<= 1) {
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, x));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, x));
        }
        mx0 *= scale_log2;
        mx1 *= scale_log2;
        const bool grow = __any_sync(0xffffffffu, mx0 > m0 + kLazy || mx1 > m1 + kLazy);
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
        for (int u = 0; u < kChains; u++) c0[u] = c1[u] = 0.f;
#pragma unroll
        for (int i = 0; i < BN / 8; i++) {
            s[4 * i] = fast_exp2(fmaf(s[4 * i], scale_log2, -off0));
            s[4 * i + 1] = fast_exp2(fmaf(s[4 * i + 1], scale_log2, -off0));
            s[4 * i + 2] = fast_exp2(fmaf(s[4 * i + 2], scale_log2, -off1));
            s[4 * i + 3] = fast_exp2(fmaf(s[4 * i + 3], scale_log2, -off1));
            c0[i % kChains] += s[4 * i] + s[4 * i + 1];
            c1[i % kChains] += s[4 * i + 2] + s[4 * i + 3];
        }
        l0 += join(c0, [](float a, float b) { return a + b; });
        l1 += join(c1, [](float a, float b) { return a + b; });
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
    /* S_j's accumulators to the A fragments of P·V: 16-bit, the accumulator layout is the A layout;
     * e4m3, each thread's own 16 values of 32 keys in vt's key order (see the header) */
    auto pack_p = [&]() {
#pragma unroll
        for (int kk = 0; kk < kPSteps; kk++) {
            if constexpr (kFp8) {
                pa[kk][0] = pack4_e4m3(s[16 * kk], s[16 * kk + 1], s[16 * kk + 4], s[16 * kk + 5]);
                pa[kk][1] = pack4_e4m3(s[16 * kk + 2], s[16 * kk + 3], s[16 * kk + 6], s[16 * kk + 7]);
                pa[kk][2] = pack4_e4m3(s[16 * kk + 8], s[16 * kk + 9], s[16 * kk + 12], s[16 * kk + 13]);
                pa[kk][3] = pack4_e4m3(s[16 * kk + 10], s[16 * kk + 11], s[16 * kk + 14], s[16 * kk + 15]);
            } else {
                pa[kk][0] = tr::pack2(s[8 * kk], s[8 * kk + 1]);
                pa[kk][1] = tr::pack2(s[8 * kk + 2], s[8 * kk + 3]);
                pa[kk][2] = tr::pack2(s[8 * kk + 4], s[8 * kk + 5]);
                pa[kk][3] = tr::pack2(s[8 * kk + 6], s[8 * kk + 7]);
            }
        }
    };
    /* ping-pong turn: wait for mine before issuing, hand it over after */
    auto turn_begin = [&]() { named_bar_sync(bar_mine, 256); };
    auto turn_end = [&]() { named_bar_arrive(bar_other, 256); };

    if (c == 1) named_bar_arrive(bar_other, 256); /* warpgroup 0 goes first */
    /* it: the ring position of the item's first K/V tile */
    for (int t = 0, it = 0; work(t) < n_work; t++) {
        const Item x = item(work(t));
        const int n_tiles = x.n_tiles;
        r0 = x.q0 + 64 * c + 16 * warp;
        row0 = r0 + g;
        row1 = row0 + 8;
#pragma unroll
        for (int i = 0; i < D / 2; i++) o[i] = 0.f;
        m0 = m1 = -INFINITY;
        l0 = l1 = 0.f;
        mbar_wait(q_full, t & 1);
        if (n_tiles > 0) {
            /* tile 0: S alone */
            wait_full(k_full, it);
            turn_begin();
            wgmma_fence();
            issue_s(it);
            turn_end();
            wgmma_wait<0>();
            fence_acc(s);
            release(k_empty, it);
            softmax(0);
            pack_p();
            /* tiles 1..n-1: S_j and P_{j-1}·V_{j-1} together; the softmax of S_j overlaps the second */
            for (int j = 1; j < n_tiles; j++) {
                wait_full(k_full, it + j);
                wait_full(v_full, it + j - 1);
                turn_begin();
                wgmma_fence();
                issue_s(it + j);
                issue_pv(it + j - 1);
                turn_end();
                wgmma_wait<1>();
                fence_acc(s);
                release(k_empty, it + j);
                const bool grow = softmax(j);
                wgmma_wait<0>();
                fence_acc(o);
                release(v_empty, it + j - 1);
                if (grow) rescale_o();
                pack_p();
            }
        }
        arrive(q_empty); /* every S is done: the producer may load the next item's Q */
        if (n_tiles > 0) {
            /* the last P·V */
            wait_full(v_full, it + n_tiles - 1);
            turn_begin();
            wgmma_fence();
            issue_pv(it + n_tiles - 1);
            turn_end();
            wgmma_wait<0>();
            fence_acc(o);
            release(v_empty, it + n_tiles - 1);
        }
        it += n_tiles;

        /* epilogue: O / l (· v_scale) through this warpgroup's staging in shared memory (two
         * [64][64] halves, 16-byte chunks swizzled by row), to 16-byte stores */
#pragma unroll
        for (int i = 1; i <= 2; i <<= 1) {
            l0 += __shfl_xor_sync(0xffffffffu, l0, i);
            l1 += __shfl_xor_sync(0xffffffffu, l1, i);
        }
        const float inv0 = l0 > 0.f ? vs / l0 : 0.f, inv1 = l1 > 0.f ? vs / l1 : 0.f;
        if (p.lse && quad == 0) {
            float *lse = p.lse + ((int64_t)x.b * p.n_heads + x.h) * p.seq_q;
            /* no visible key: -inf; a NaN l (FP8 scales that are not positive) stays NaN */
            if (row0 < p.seq_q) lse[row0] = l0 > 0.f ? (m0 + log2f(l0)) * 0.6931471805599453f : l0 == 0.f ? -INFINITY : l0;
            if (row1 < p.seq_q) lse[row1] = l1 > 0.f ? (m1 + log2f(l1)) * 0.6931471805599453f : l1 == 0.f ? -INFINITY : l1;
        }
        named_bar_sync(bar_mine + 2, 128); /* every warp of the warpgroup is done reading the last item's rows */
        const uint32_t ob = sO + c * (L::kOBytes / 2); /* the staged rows */
        constexpr uint32_t kOHalf = L::kOBytes / 4;    /* from one 64-column half to the next */
        const int lr0 = 16 * warp + g, lr1 = lr0 + 8;  /* rows within the warpgroup's 64 */
#pragma unroll
        for (int i = 0; i < D / 8; i++) {
            const uint32_t half = ob + (i / 8) * kOHalf;
            const uint32_t a_0 = half + lr0 * kHalfBytes + (((i % 8) ^ (lr0 % 8)) * 16) + quad * 4;
            const uint32_t a_1 = half + lr1 * kHalfBytes + (((i % 8) ^ (lr1 % 8)) * 16) + quad * 4;
            st_shared_u32(a_0, tr::pack2(o[4 * i] * inv0, o[4 * i + 1] * inv0));
            st_shared_u32(a_1, tr::pack2(o[4 * i + 2] * inv1, o[4 * i + 3] * inv1));
        }
        named_bar_sync(bar_mine + 2, 128);
        T *out = reinterpret_cast<T *>(p.o) + (int64_t)x.b * p.os[0] + (int64_t)x.h * p.os[2];
#pragma unroll
        for (int k = 0; k < 64 * D / 8 / 128; k++) {
            const int idx = tid + 128 * k, r = idx / (D / 8), ch = idx % (D / 8);
            const int row = x.q0 + 64 * c + r;
            const uint32_t a = ob + (ch / 8) * kOHalf + r * kHalfBytes + (((ch % 8) ^ (r % 8)) * 16);
            uint4 v;
            asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];"
                         : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                         : "r"(a));
            if (row < p.seq_q) *reinterpret_cast<uint4 *>(out + (int64_t)row * p.os[1] + ch * 8) = v;
        }
    }
    if (c == 0) named_bar_sync(bar_mine, 256); /* balance warpgroup 1's first arrival */
}

/* A 4-d tensor, dims innermost first (the innermost contiguous), strides of the outer three in
 * elements, as a map with boxes of 128 bytes × `rows` of f16, bf16 or e4m3 (uint8: TMA moves
 * bytes), 128-byte swizzled: [B, N, H, D] as {d, n, h, b}, or vt [B, Hkv, D, Np] as {p, d, h, b}. */
bool make_map(CUtensorMap *map, sf_dtype dtype, const void *ptr, const cuuint64_t (&dims)[4], const int64_t (&stride)[3],
              int rows)
{
    PFN_cuTensorMapEncodeTiled_v12000 encode = tensor_map_encoder();
    if (!encode) return false;
    const int64_t elem = dtype == SF_E4M3 ? 1 : 2;
    cuuint64_t strides[3] = {(cuuint64_t)(stride[0] * elem), (cuuint64_t)(stride[1] * elem), (cuuint64_t)(stride[2] * elem)};
    cuuint32_t box[4] = {(cuuint32_t)(kHalfBytes / elem), (cuuint32_t)rows, 1, 1};
    cuuint32_t elem_strides[4] = {1, 1, 1, 1};
    const CUtensorMapDataType type = dtype == SF_E4M3   ? CU_TENSOR_MAP_DATA_TYPE_UINT8
                                     : dtype == SF_BF16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
                                                        : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
    return encode(map, type, 4, const_cast<void *>(ptr), dims, strides, box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                  CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                  CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

/* [B, N, H, D] with strides for b, n, h: {d, n, h, b} */
bool make_bnhd_map(CUtensorMap *map, sf_dtype dtype, const void *ptr, int batch, int n, int heads, const int64_t *s,
                   int rows)
{
    return make_map(map, dtype, ptr, {(cuuint64_t)D, (cuuint64_t)n, (cuuint64_t)heads, (cuuint64_t)batch},
                    {s[1], s[2], s[0]}, rows);
}

/* `items` work items (blocks of 128 query rows) on at most one wave of CTAs, each taking its
 * share of the items in turn (the kernel's zigzag) */
template <typename T, typename TI, bool CAUSAL> int launch(const Params &p, int items, cudaStream_t stream)
{
    auto kernel = attention_hopper_kernel<T, TI, CAUSAL>;
    constexpr int smem = Tiles<TI>::kSmem;
    /* once per instantiation: the attribute is per kernel function */
    static const cudaError_t prepared = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    if (prepared != cudaSuccess) return (int)prepared;
    int per_sm = 0, sms = 0;
    if (int e = sf::occupancy<attention_hopper_kernel<T, TI, CAUSAL>>(&per_sm, kThreads, smem)) return e;
    if (per_sm < 1) return (int)cudaErrorInvalidConfiguration;
    if (int e = sf::sm_count(&sms)) return e;
    const int64_t wave = (int64_t)sms * per_sm;
    const int blocks = (int)(items < wave ? items : wave);
    return (int)sf::launch(kernel, blocks, kThreads, smem, stream, 1, p);
}

template <typename T, typename TI> int launch_causal(const Params &p, bool causal, int items, cudaStream_t stream)
{
    return causal ? launch<T, TI, true>(p, items, stream) : launch<T, TI, false>(p, items, stream);
}

} // namespace

extern "C" int sf_attention_hopper_cuda(const sf_attention_args *a, void *stream)
{
    const bool fp8 = a->dtype == SF_E4M3;
    const sf_dtype out = fp8 ? a->out_dtype : a->dtype;
    if (a->head_dim != D || (out != SF_F16 && out != SF_BF16) || (!fp8 && a->out_dtype != a->dtype) ||
        (fp8 && (!a->q_scale || !a->k_scale || !a->v_scale)) || a->n_kv_heads <= 0 || a->n_heads % a->n_kv_heads != 0 ||
        !(a->scale >= 0.f) || !isfinite(a->scale))
        return (int)cudaErrorInvalidValue;
    /* 16 bytes: the tensor maps' strides and the output's stores */
    const void *ptrs[4] = {a->q, a->k, a->v, a->out};
    const int64_t *strides[4] = {a->q_stride, a->k_stride, a->v_stride, a->o_stride};
    for (int i = 0; i < 4; i++) {
        if (!sf::aligned16(ptrs[i])) return (int)cudaErrorInvalidValue;
        for (int d = 0; d < 3; d++)
            if (strides[i][d] % (fp8 && i < 3 ? 16 : 8)) return (int)cudaErrorInvalidValue;
    }
    if (a->batch == 0 || a->seq_q == 0 || a->n_heads == 0) return 0;
    Params p;
    const int64_t *vs = a->v_stride;
    const bool v_ok = fp8 ? make_map(&p.map_v, a->dtype, a->v,
                                     {(cuuint64_t)sf_vt_columns(a->seq_k), (cuuint64_t)D, (cuuint64_t)a->n_kv_heads,
                                      (cuuint64_t)a->batch},
                                     {vs[2], vs[1], vs[0]}, D)
                          : make_bnhd_map(&p.map_v, a->dtype, a->v, a->batch, a->seq_k, a->n_kv_heads, vs, BN);
    if (!make_bnhd_map(&p.map_q, a->dtype, a->q, a->batch, a->seq_q, a->n_heads, a->q_stride, BM) ||
        !make_bnhd_map(&p.map_k, a->dtype, a->k, a->batch, a->seq_k, a->n_kv_heads, a->k_stride, BN) || !v_ok)
        return (int)cudaErrorInvalidValue;
    p.o = (char *)a->out;
    p.lse = a->lse;
    p.q_scale = a->q_scale;
    p.k_scale = a->k_scale;
    p.v_scale = a->v_scale;
    for (int d = 0; d < 3; d++) p.os[d] = a->o_stride[d];
    p.batch = a->batch;
    p.seq_q = a->seq_q;
    p.seq_k = a->seq_k;
    p.n_heads = a->n_heads;
    p.group = a->n_heads / a->n_kv_heads;
    p.n_qblocks = (a->seq_q + BM - 1) / BM;
    p.diag = a->seq_k - a->seq_q;
    p.scale_log2 = (a->scale > 0.f ? a->scale : 1e-30f) * 1.4426950408889634f;
    const long long items = (long long)p.n_qblocks * a->batch * a->n_heads;
    if (items > 0x7fffffff) return (int)cudaErrorInvalidValue;
    cudaStream_t s = (cudaStream_t)stream;
    const bool causal = a->causal != 0;
    if (fp8)
        return out == SF_BF16 ? launch_causal<__nv_bfloat16, __nv_fp8_e4m3>(p, causal, (int)items, s)
                              : launch_causal<__half, __nv_fp8_e4m3>(p, causal, (int)items, s);
    return out == SF_BF16 ? launch_causal<__nv_bfloat16, __nv_bfloat16>(p, causal, (int)items, s)
                          : launch_causal<__half, __half>(p, causal, (int)items, s);
}
