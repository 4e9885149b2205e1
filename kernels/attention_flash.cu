/* Flash attention forward, FlashAttention-2 style, for sm_80+ (tuned on the H100).
 *
 * One thread block owns BM query rows of one (batch, head) and streams the K/V rows of its
 * kv head through shared memory in tiles of BN rows (cp.async, double buffered, one barrier per
 * tile). Each warp owns MT m-tiles of 16 query rows: S = Q K^T with mma.sync m16n8k16 (fp32
 * accumulation), online softmax in registers in log2 units (exp2 with the scale folded in),
 * P converted to f16/bf16 in registers as the A operand of O += P V (ldmatrix.trans for V).
 * No N x N matrix exists anywhere. Tails (any seq_q/seq_k) are zero-filled on load and masked;
 * causal masks only the tiles that straddle the diagonal and skips the fully masked ones.
 *
 * The online softmax rescales lazily: the running row max only moves when it grew by more
 * than 2^8 (log2 units), so O is rarely rescaled; O / l is exact either way.
 *
 * Naming: everything lives in namespace sf_flash; the Hopper kernel (wgmma, TMA, warp
 * specialisation) sits beside this file as kernels/attention_hopper.cu with the same
 * sf_attention_args (impl "flash" picks it on sm_90 at head dim 128; "flash2" is this one). */
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>
#include <math.h>
#include <type_traits>
#include "attention.h"
#include "common.cuh"
#include "mma.cuh"

namespace sf_flash {

/* ---------------------------------------------------------------- kernel parameters -------- */
struct Params {
    const char *q, *k, *v;          /* bytes; element offsets below are in elements */
    char *o;
    float *lse;
    int64_t qs[3], ks[3], vs[3], os[3];
    int batch, seq_q, seq_k, n_heads, group, n_qblocks;
    int causal, diag;               /* diag = seq_k - seq_q: key j visible iff j <= i + diag */
    float scale, scale_log2;        /* scale, scale * log2(e) */
};

/* -------------------------------------------------------------- PTX building blocks -------- */
using sf::cp_async16;
using sf::cp_async_commit;
using sf::cp_async_wait;
using sf::fast_exp2;
using sf::ldsm_x4;
using sf::ldsm_x4_t;
using sf::smem_u32;

/* ------------------------------------------------------------------- configuration -------- */
/* Rescale policy of the online softmax when a row max grows. */
enum { RESCALE_ALWAYS = 0,  /* every tile: m = new max, O and l scaled (textbook FA2) */
       RESCALE_MOVED = 1,   /* only when some row max of the warp moved at all */
       RESCALE_LAZY = 2 };  /* only when some row max of the warp grew by more than LAZY_LOG2
                             * (log2 units); otherwise keep the stale max: P <= 2^LAZY_LOG2, and
                             * O / l is unchanged because both use the same offset */
constexpr float LAZY_LOG2 = 8.f;

/* D: head dim; BM: query rows per block; MT: 16-row m-tiles per warp; BN: K/V rows per tile;
 * RS: rescale policy (above);
 * MINB: blocks per SM for __launch_bounds__ (caps registers at 64K / (THREADS * MINB));
 * LATE: issue the next tile's cp.async after S = Q K^T instead of right after the barrier. */
template <int D_, int BM_, int MT_, int BN_, int RS_, int MINB_, bool LATE_ = false>
struct Cfg {
    static constexpr int D = D_, BM = BM_, MT = MT_, BN = BN_, RS = RS_;
    static constexpr bool LATE = LATE_;
    static constexpr int WARPS = BM / (16 * MT);
    static constexpr int THREADS = WARPS * 32;
    static constexpr int ROWB = D * 2;           /* bytes per smem row (16-bit elements) */
    static constexpr int CH = D / 8;             /* 16-byte chunks per row */
    static constexpr int NT = BN / 8;            /* n-tiles of S per m-tile */
    static constexpr int DT = D / 8;             /* n-tiles of O per m-tile */
    static constexpr int Q_BYTES = BM * ROWB, KV_BYTES = BN * ROWB;
    static constexpr int SMEM = Q_BYTES + 4 * KV_BYTES; /* Q, K[2], V[2] */
    static constexpr int MINB = MINB_;            /* blocks per SM the register cap aims at */
    static_assert(D == 64 || D == 128, "head dim");
    static_assert(BM % (16 * MT) == 0 && BN % 16 == 0, "tile");
    static_assert(THREADS % CH == 0, "loader");
};

/* Copy `ROWS` rows of D 16-bit elements, starting at global row `row0` of a matrix with row
 * stride `stride` (elements), into a swizzled smem tile; rows >= n_valid are zero-filled and
 * never read. Swizzle: 16-byte chunk c of row r lives at chunk c ^ (r & 7). */
template <class C, int ROWS>
__device__ __forceinline__ void load_tile(uint32_t smem, const char *g, int64_t stride, int row0,
                                          int n_valid, int tid)
{
    constexpr int RSTEP = C::THREADS / C::CH;
    const int c = tid % C::CH, r0 = tid / C::CH;
#pragma unroll
    for (int it = 0; it < (ROWS + RSTEP - 1) / RSTEP; it++) {
        const int r = r0 + it * RSTEP;
        if (ROWS % RSTEP == 0 || r < ROWS) {
            const int gr = row0 + r;
            const bool ok = gr < n_valid;
            const char *src = ok ? g + ((int64_t)gr * stride + c * 8) * 2 : g;
            cp_async16(smem + r * C::ROWB + ((c ^ (r & 7)) << 4), src, ok ? 16 : 0);
        }
    }
}

/* One K or V stream of a block: this thread copies chunk c = tid % CH of rows r0 = tid / CH,
 * r0 + RSTEP, ... of each tile, tiles in order. A running pointer replaces per-chunk 64-bit
 * index arithmetic; only the tile that crosses seq_k pays for bounds checks. */
struct KvStream {
    const char *ptr; /* global address of (row next_row + r0, chunk c) */
    int next_row;    /* first row of the next tile */
};

template <class C>
__device__ __forceinline__ KvStream kv_stream(const char *g, int64_t stride, int tid)
{
    return KvStream{g + ((int64_t)(tid / C::CH) * stride + (tid % C::CH) * 8) * 2, 0};
}

/* this thread's smem byte offset inside a K/V stage (row r0, chunk c, swizzled) */
template <class C> __device__ __forceinline__ uint32_t kv_smem_off(int tid)
{
    const int r0 = tid / C::CH, c = tid % C::CH;
    return r0 * C::ROWB + ((c ^ (r0 & 7)) << 4);
}

template <class C>
__device__ __forceinline__ void kv_load(KvStream &s, uint32_t dst, int64_t stride, int seq_k, int tid,
                                        const char *safe)
{
    constexpr int RSTEP = C::THREADS / C::CH, ITERS = C::BN / RSTEP;
    static_assert(C::BN % RSTEP == 0 && RSTEP % 8 == 0, "kv loader layout");
    const int64_t step = stride * (2 * RSTEP);
    const char *src = s.ptr;
    if (s.next_row + C::BN <= seq_k) {
#pragma unroll
        for (int it = 0; it < ITERS; it++, src += step) cp_async16(dst + it * RSTEP * C::ROWB, src, 16);
    } else {
        const int left = seq_k - s.next_row - tid / C::CH; /* row it is valid iff it * RSTEP < left */
#pragma unroll
        for (int it = 0; it < ITERS; it++, src += step) {
            const bool ok = it * RSTEP < left;
            cp_async16(dst + it * RSTEP * C::ROWB, ok ? src : safe, ok ? 16 : 0);
        }
    }
    s.ptr += stride * (2 * C::BN);
    s.next_row += C::BN;
}

/* S[mt][nt] = Q(warp rows) . K(tile)^T. q_lane/k_lane: per-lane ldmatrix addresses for kk = 0.
 * Fragment maps (m16n8k16): Q A-operand from ldmatrix.x4 of rows lane&15, chunk kk*2 + lane/16;
 * K B-operand pairs from ldmatrix.x4 of key rows (lane/16)*8 + lane&7, chunk kk*2 + (lane/8)&1. */
template <class C, class T>
__device__ __forceinline__ void qk_tile(float (&s)[C::MT][C::NT][4], uint32_t q_lane, uint32_t k_lane)
{
#pragma unroll
    for (int mt = 0; mt < C::MT; mt++)
#pragma unroll
        for (int nt = 0; nt < C::NT; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) s[mt][nt][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < C::D / 16; kk++) {
        uint32_t qa[C::MT][4];
#pragma unroll
        for (int mt = 0; mt < C::MT; mt++) ldsm_x4(qa[mt], (q_lane ^ (kk * 32)) + mt * 16 * C::ROWB);
#pragma unroll
        for (int np = 0; np < C::BN / 16; np++) {
            uint32_t kb[4];
            ldsm_x4(kb, (k_lane ^ (kk * 32)) + np * 16 * C::ROWB);
#pragma unroll
            for (int mt = 0; mt < C::MT; mt++) {
                sf::mma16816<T>(s[mt][2 * np], qa[mt], kb[0], kb[1]);
                sf::mma16816<T>(s[mt][2 * np + 1], qa[mt], kb[2], kb[3]);
            }
        }
    }
}

/* -inf where key col > limit of the row (limit = last visible key of that row). */
template <class C>
__device__ __forceinline__ void mask_tile(float (&s)[C::MT][C::NT][4], int kv0, int row_g, int lane,
                                          const Params &p)
{
    const int col0 = kv0 + 2 * (lane & 3);
#pragma unroll
    for (int mt = 0; mt < C::MT; mt++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int row = row_g + mt * 16 + h * 8;
            int lim = p.seq_k - 1;
            if (p.causal) lim = min(lim, row + p.diag);
#pragma unroll
            for (int nt = 0; nt < C::NT; nt++)
#pragma unroll
                for (int e = 0; e < 2; e++)
                    if (col0 + nt * 8 + e > lim) s[mt][nt][2 * h + e] = -INFINITY;
        }
}

/* Online softmax of one S tile: updates the running max m (raw score units) and the running
 * per-thread partial sum l, rescales O when the policy says so, and packs P into A-operand
 * fragments. The rescale (a warp-uniform branch) comes before the exponentials so that the
 * exp/pack work and the P.V mma that follows sit in one basic block. */
template <class C, class T>
__device__ __forceinline__ void softmax_tile(float (&s)[C::MT][C::NT][4], float (&o)[C::MT][C::DT][4],
                                             float (&m)[C::MT][2], float (&l)[C::MT][2],
                                             uint32_t (&pa)[C::MT][C::BN / 16][4], float sl2)
{
    float mx[C::MT][2];
    bool need = false;
#pragma unroll
    for (int mt = 0; mt < C::MT; mt++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            float v = m[mt][h];
#pragma unroll
            for (int nt = 0; nt < C::NT; nt++) v = fmaxf(v, fmaxf(s[mt][nt][2 * h], s[mt][nt][2 * h + 1]));
            v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
            v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
            mx[mt][h] = v;
            if (C::RS == RESCALE_LAZY)
                need |= (v - m[mt][h]) * sl2 > LAZY_LOG2; /* -inf -> finite: +inf > 8; -inf -> -inf: NaN, false */
            else
                need |= v != m[mt][h];
        }
    if (C::RS == RESCALE_ALWAYS || __any_sync(0xffffffffu, need)) {
#pragma unroll
        for (int mt = 0; mt < C::MT; mt++) {
            float alpha[2];
#pragma unroll
            for (int h = 0; h < 2; h++) {
                /* a row with nothing visible so far has m = -inf, O = 0, l = 0: alpha 0 is exact */
                const float mnew = mx[mt][h] == -INFINITY ? 0.f : mx[mt][h];
                alpha[h] = m[mt][h] == -INFINITY ? 0.f : fast_exp2((m[mt][h] - mnew) * sl2);
                m[mt][h] = mx[mt][h];
                l[mt][h] *= alpha[h];
            }
#pragma unroll
            for (int dt = 0; dt < C::DT; dt++) {
                o[mt][dt][0] *= alpha[0];
                o[mt][dt][1] *= alpha[0];
                o[mt][dt][2] *= alpha[1];
                o[mt][dt][3] *= alpha[1];
            }
        }
    }
#pragma unroll
    for (int mt = 0; mt < C::MT; mt++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            /* a row with nothing visible yet keeps m = -inf; offset 0 makes exp2(-inf) = 0 */
            const float msc = (m[mt][h] == -INFINITY ? 0.f : m[mt][h]) * sl2;
            float sum = 0.f;
#pragma unroll
            for (int nt = 0; nt < C::NT; nt++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const float pv = fast_exp2(fmaf(s[mt][nt][2 * h + e], sl2, -msc));
                    s[mt][nt][2 * h + e] = pv;
                    sum += pv;
                }
            l[mt][h] += sum;
        }
#pragma unroll
    for (int mt = 0; mt < C::MT; mt++)
#pragma unroll
        for (int kk = 0; kk < C::BN / 16; kk++) {
            pa[mt][kk][0] = sf::dtype_traits<T>::pack2(s[mt][2 * kk][0], s[mt][2 * kk][1]);
            pa[mt][kk][1] = sf::dtype_traits<T>::pack2(s[mt][2 * kk][2], s[mt][2 * kk][3]);
            pa[mt][kk][2] = sf::dtype_traits<T>::pack2(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
            pa[mt][kk][3] = sf::dtype_traits<T>::pack2(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
        }
}

/* O += P . V(tile). v_lane: per-lane ldmatrix.trans address for dp = 0. */
template <class C, class T>
__device__ __forceinline__ void pv_tile(float (&o)[C::MT][C::DT][4], const uint32_t (&pa)[C::MT][C::BN / 16][4],
                                        uint32_t v_lane)
{
#pragma unroll
    for (int kk = 0; kk < C::BN / 16; kk++)
#pragma unroll
        for (int dp = 0; dp < C::D / 16; dp++) {
            uint32_t vb[4];
            ldsm_x4_t(vb, (v_lane ^ (dp * 32)) + kk * 16 * C::ROWB);
#pragma unroll
            for (int mt = 0; mt < C::MT; mt++) {
                sf::mma16816<T>(o[mt][2 * dp], pa[mt][kk], vb[0], vb[1]);
                sf::mma16816<T>(o[mt][2 * dp + 1], pa[mt][kk], vb[2], vb[3]);
            }
        }
}

/* ------------------------------------------------------------------------ the kernel -------- */
template <class C, class T>
__global__ void __launch_bounds__(C::THREADS, C::MINB) flash_fwd_kernel(const __grid_constant__ Params p)
{
    extern __shared__ __align__(1024) unsigned char smem[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

    int qb, bh;
    sf::attention_block((int)blockIdx.x, p.batch * p.n_heads, p.n_qblocks, p.causal, qb, bh);
    const int b = bh / p.n_heads, h = bh % p.n_heads, hk = h / p.group;
    const int q0 = qb * C::BM;

    const char *qg = p.q + (b * p.qs[0] + h * p.qs[2]) * 2;
    const char *kg = p.k + (b * p.ks[0] + hk * p.ks[2]) * 2;
    const char *vg = p.v + (b * p.vs[0] + hk * p.vs[2]) * 2;

    const uint32_t sq = smem_u32(smem);
    const uint32_t sk = sq + C::Q_BYTES;
    const uint32_t sv = sk + 2 * C::KV_BYTES;
    const uint32_t kv_off = kv_smem_off<C>(tid);
    KvStream ks = kv_stream<C>(kg, p.ks[1], tid), vs = kv_stream<C>(vg, p.vs[1], tid);

    /* key tiles to visit, and how many leading ones need no mask */
    int kv_end = p.seq_k;
    if (p.causal) kv_end = min(kv_end, q0 + C::BM + p.diag);
    const int n_tiles = kv_end > 0 ? (kv_end + C::BN - 1) / C::BN : 0;
    int n_full = p.seq_k / C::BN;
    if (p.causal) {
        const int lim = q0 + p.diag + 1; /* keys [0, lim) visible to every row of the block */
        n_full = min(n_full, lim > 0 ? lim / C::BN : 0);
    }
    n_full = min(n_full, n_tiles);

    /* per-lane ldmatrix addresses (see qk_tile / pv_tile for the fragment maps) */
    const int x = lane & 7;
    const uint32_t q_lane = sq + (warp * C::MT * 16 + (lane & 15)) * C::ROWB + ((((lane >> 4) ^ x)) << 4);
    const uint32_t k_off = (((lane >> 4) << 3) + x) * C::ROWB + ((((lane >> 3) & 1) ^ x) << 4);
    const uint32_t v_off = (lane & 15) * C::ROWB + ((((lane >> 4) ^ x)) << 4);
    const int row_g = q0 + warp * C::MT * 16 + (lane >> 2); /* query row of c0/c1 in m-tile 0 */

    float o[C::MT][C::DT][4];
    float m[C::MT][2], l[C::MT][2];
#pragma unroll
    for (int mt = 0; mt < C::MT; mt++) {
#pragma unroll
        for (int dt = 0; dt < C::DT; dt++)
#pragma unroll
            for (int e = 0; e < 4; e++) o[mt][dt][e] = 0.f;
        m[mt][0] = m[mt][1] = -INFINITY;
        l[mt][0] = l[mt][1] = 0.f;
    }

    if (n_tiles > 0) {
        load_tile<C, C::BM>(sq, qg, p.qs[1], q0, p.seq_q, tid);
        kv_load<C>(ks, sk + kv_off, p.ks[1], p.seq_k, tid, kg);
        kv_load<C>(vs, sv + kv_off, p.vs[1], p.seq_k, tid, vg);
        cp_async_commit();
        /* two copies of the step: unmasked tiles keep S = Q K^T, the row max and the vote in
         * one basic block; only diagonal / tail tiles pay for the mask */
        auto step = [&](int j, auto masked) {
            const int st = j & 1;
            cp_async_wait<0>();
            __syncthreads(); /* tile j visible to all; every warp is done with tile j-1 */
            auto prefetch = [&]() {
                if (j + 1 < n_tiles) {
                    kv_load<C>(ks, sk + (st ^ 1) * C::KV_BYTES + kv_off, p.ks[1], p.seq_k, tid, kg);
                    kv_load<C>(vs, sv + (st ^ 1) * C::KV_BYTES + kv_off, p.vs[1], p.seq_k, tid, vg);
                }
                cp_async_commit();
            };
            if constexpr (!C::LATE) prefetch();
            float s[C::MT][C::NT][4];
            uint32_t pa[C::MT][C::BN / 16][4];
            qk_tile<C, T>(s, q_lane, sk + st * C::KV_BYTES + k_off);
            if constexpr (C::LATE) prefetch();
            if constexpr (decltype(masked)::value) mask_tile<C>(s, j * C::BN, row_g, lane, p);
            softmax_tile<C, T>(s, o, m, l, pa, p.scale_log2);
            pv_tile<C, T>(o, pa, sv + st * C::KV_BYTES + v_off);
        };
        int j = 0;
#pragma unroll 1
        for (; j < n_full; j++) step(j, std::false_type());
#pragma unroll 1
        for (; j < n_tiles; j++) step(j, std::true_type());
    }

    /* ---- epilogue: O / l -> smem (this warp's own Q rows) -> coalesced 16-byte stores ---- */
    /* the warp's last ldmatrix of those Q rows, before any lane overwrites them (compute-sanitizer's
     * racecheck reported the read-then-write within the warp without it) */
    __syncwarp();
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int mt = 0; mt < C::MT; mt++)
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
            float sum = l[mt][hh];
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            sum += __shfl_xor_sync(0xffffffffu, sum, 2);
            const float inv = sum > 0.f ? 1.f / sum : 0.f;
            const int r = warp * C::MT * 16 + mt * 16 + hh * 8 + g; /* row within block */
            const uint32_t row_addr = sq + r * C::ROWB + t * 4;
#pragma unroll
            for (int dt = 0; dt < C::DT; dt++) {
                const uint32_t v = sf::dtype_traits<T>::pack2(o[mt][dt][2 * hh] * inv, o[mt][dt][2 * hh + 1] * inv);
                asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(row_addr + ((dt ^ g) << 4)), "r"(v));
            }
            const int qrow = q0 + r;
            if (p.lse && t == 0 && qrow < p.seq_q)
                p.lse[((int64_t)b * p.n_heads + h) * p.seq_q + qrow] =
                    sum > 0.f ? m[mt][hh] * p.scale + logf(sum) : -INFINITY;
        }
    __syncwarp();
    char *og = p.o + (b * p.os[0] + h * p.os[2]) * 2;
    constexpr int WROWS = C::MT * 16;
#pragma unroll
    for (int idx = lane; idx < WROWS * C::CH; idx += 32) {
        const int rr = idx / C::CH, c = idx % C::CH;
        const int r = warp * WROWS + rr, qrow = q0 + r;
        uint4 v;
        asm volatile("ld.shared.v4.b32 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                     : "r"(sq + r * C::ROWB + ((c ^ (r & 7)) << 4)));
        if (qrow < p.seq_q) *reinterpret_cast<uint4 *>(og + ((int64_t)qrow * p.os[1] + c * 8) * 2) = v;
    }
}

/* -------------------------------------------------------------------------- host side -------- */
template <class C, class T>
static int launch(const Params &p, cudaStream_t stream)
{
    auto kern = flash_fwd_kernel<C, T>;
    cudaError_t e = cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM);
    if (e != cudaSuccess) return (int)e;
    Params q = p;
    q.n_qblocks = (p.seq_q + C::BM - 1) / C::BM;
    const long long blocks = (long long)q.n_qblocks * p.batch * p.n_heads;
    if (blocks > 0x7fffffffLL) return (int)cudaErrorInvalidValue;
    kern<<<(unsigned)blocks, C::THREADS, C::SMEM, stream>>>(q);
    return (int)cudaGetLastError();
}

template <class C>
static int launch_dt(const Params &p, sf_dtype dtype, cudaStream_t stream)
{
    return dtype == SF_F16 ? launch<C, __half>(p, stream) : launch<C, __nv_bfloat16>(p, stream);
}

/* The configurations in use (the others tried, and why they lost, are in
 * kernels/NOTES-attention.md). */
using V128_default = Cfg<128, 128, 2, 64, RESCALE_LAZY, 2>;
using V64_default = Cfg<64, 128, 2, 64, RESCALE_LAZY, 2, true>;

static int make_params(const sf_attention_args *a, Params *p)
{
    if (!a || (a->dtype != SF_F16 && a->dtype != SF_BF16)) return (int)cudaErrorInvalidValue;
    if (a->head_dim != 64 && a->head_dim != 128) return (int)cudaErrorInvalidValue;
    if (a->batch < 0 || a->seq_q < 0 || a->seq_k < 0 || a->n_heads <= 0) return (int)cudaErrorInvalidValue;
    const int hkv = a->n_kv_heads;
    if (hkv <= 0 || a->n_heads % hkv) return (int)cudaErrorInvalidValue;
    if (!(a->scale >= 0.f) || isinf(a->scale)) return (int)cudaErrorInvalidValue;
    const int64_t *st[4] = {a->q_stride, a->k_stride, a->v_stride, a->o_stride};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            if (st[i][j] % 8) return (int)cudaErrorInvalidValue;
    const void *ptr[4] = {a->q, a->k, a->v, a->out};
    for (int i = 0; i < 4; i++)
        if (!ptr[i] || !sf::aligned16(ptr[i])) return (int)cudaErrorInvalidValue;
    p->q = (const char *)a->q;
    p->k = (const char *)a->k;
    p->v = (const char *)a->v;
    p->o = (char *)a->out;
    p->lse = a->lse;
    for (int j = 0; j < 3; j++) {
        p->qs[j] = a->q_stride[j];
        p->ks[j] = a->k_stride[j];
        p->vs[j] = a->v_stride[j];
        p->os[j] = a->o_stride[j];
    }
    p->batch = a->batch;
    p->seq_q = a->seq_q;
    p->seq_k = a->seq_k;
    p->n_heads = a->n_heads;
    p->group = a->n_heads / hkv;
    p->n_qblocks = 0;
    p->causal = a->causal != 0;
    p->diag = a->seq_k - a->seq_q;
    /* scale 0 (uniform weights) runs as a tiny positive scale so that masked -inf scores
     * still map to exp2(-inf) = 0 instead of -inf * 0 = NaN */
    const float sc = a->scale > 1e-30f ? a->scale : 1e-30f;
    p->scale = sc;
    p->scale_log2 = sc * 1.4426950408889634f;

    return 0;
}

} // namespace sf_flash

extern "C" {

int sf_attention_flash_cuda(const sf_attention_args *a, void *stream)
{
    sf_flash::Params p;
    int e = sf_flash::make_params(a, &p);
    if (e) return e;
    if (a->batch == 0 || a->seq_q == 0) return 0;
    cudaStream_t s = (cudaStream_t)stream;
    if (a->head_dim == 128) return sf_flash::launch_dt<sf_flash::V128_default>(p, a->dtype, s);
    return sf_flash::launch_dt<sf_flash::V64_default>(p, a->dtype, s);
}

} // extern "C"
