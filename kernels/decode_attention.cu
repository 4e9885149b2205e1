/* Decode attention (flash-decoding): Nq <= 8 query tokens per sequence against a KV cache with
 * per-sequence lengths, contiguous or paged. Bound by reading K and V, so the design is about
 * bytes in flight and reading every K/V row once:
 *  - One CTA (4 warps) serves one (sequence, kv head, split) and up to 8 query rows of that kv
 *    head (its G = H/Hkv query heads times Nq tokens), so GQA/MQA read K and V once per kv head;
 *    more rows take more row blocks of the same (sequence, kv head, split), launched next to one
 *    another so that the second read comes from L2.
 *  - A key row is D/8 lanes, each with a 16-byte vector of K and of V; a warp streams 32/(D/8)
 *    keys per load, and every thread has U such pairs in flight before it computes (U = 8, 8, 4,
 *    2 for 1, 2, 4, 8 rows: what the registers allow). Paged caches look the page of each key
 *    up in the block table one step ahead, so the table read never delays the K/V loads.
 *  - Dot products are fp32 FMAs over the thread's 8 elements, summed over the key's lanes by
 *    shuffles; each lane group keeps its own online softmax (m, l, o) over the keys it saw, and
 *    the groups of the CTA are merged through shared memory at the end.
 *  - The KV length of every sequence is cut into `splits` chunks of whole steps; with one split
 *    the CTA writes out and lse itself, otherwise it writes its unnormalised o, m and l in fp32
 *    and a combine kernel (one warp per output row) merges the splits by their maxima.
 * The number of splits comes from B·Hkv·(row blocks) against the SMs, so that B = 1 fills every
 * SM too (sf_decode_attention_splits).
 *
 * Variants, a tuning knob (SFBENCH_DECODE_VARIANT, read once; the default is mma, faster than
 * ring48 at B = 1 and for GQA 64/8 by 1.1-1.8x and within 1% of it at B = 8 and 32 MHA on the
 * H100: kernels/NOTES-decode.md, 2026-12-05):
 *  - base:   each iteration loads its U key/value pairs into registers, then computes on them;
 *            nothing is in flight while a warp computes, and the registers bound U.
 *  - ring:   cp.async into a ring of S stages in shared memory, 64 KB a CTA, S - 1 stages in
 *            flight while the thread computes on the oldest. Every thread reads back only the
 *            vectors it copied itself, so the ring needs no barrier, only cp.async.wait_group.
 *  - ring48: the same with 48 KB a CTA: fewer stages in flight, one more CTA an SM.
 *  - mma:    another kernel (decode_mma_kernel, below): the products on the tensor cores, 16
 *            query rows a CTA whatever G·Nq is, so GQA's rows cost no registers, and the splits
 *            merged by the last CTA of each group instead of a combine kernel. With pages of
 *            16 keys or more a warp's stage lies in one page, read 32 stages ahead by one lane
 *            and handed out by a shuffle (GQA's pages of 16 handed out in order then cost what
 *            a contiguous cache costs: kernels/NOTES-decode.md, 2026-12-07 15:00 UTC). */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.cuh"
#include "mma.cuh"
#include "decode_attention.h"

namespace sf_decode {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kVec = 8;            /* 16-bit elements per 16-byte vector */
constexpr int kMaxRows = 8;        /* query rows of one CTA */
constexpr int kMinChunk = 128;     /* keys: the shortest split the automatic rule makes */
constexpr int kPagedMaxSplits = 16; /* the most it makes for the mma kernel over a paged cache */
constexpr double kLoadedLatency = 2e-6; /* s: the DRAM latency under load the mma kernel's wave covers */
constexpr int kMinChunkSecond = 256; /* keys: the shortest split of a second mma CTA an SM */
constexpr int kCombineThreads = 128; /* a combine CTA's threads, each 8 elements of an output row */

struct Params {
    const char *q, *k, *v;         /* bytes; element offsets below are in elements */
    char *out;
    float *lse;
    const int32_t *seqlens, *block_table;
    int64_t bt_stride;
    float *ws_o;                   /* [B·H·Nq][splits][D] */
    float2 *ws_ml;                 /* [B·H·Nq][splits]: (m, l) */
    unsigned *counters;            /* the mma kernel merges its splits itself: [B·Hkv·row_blocks], left zeroed */
    int64_t qs[3], ks[3], vs[3], os[3];
    int n_q, n_heads, n_kv_heads, group, rows, row_blocks;
    int capacity, page_shift, n_pages, paged;
    int splits, step;              /* step: keys per CTA iteration of the split kernel in use */
    float scale;
    int causal;
};

/* keys per split of a sequence of len keys: whole steps, at least one step */
__host__ __device__ __forceinline__ int chunk_keys(int len, int splits, int step)
{
    const int per = (len + splits - 1) / splits;
    const int c = (per + step - 1) / step * step;
    return c > step ? c : step;
}

__device__ __forceinline__ bool bad_length(int len, int capacity) { return len < 0 || len > capacity; }

/* a split CTA's block -> (row block fastest, split, kv head, sequence) */
struct Block {
    int rb, split, hk, b;
};
__device__ __forceinline__ Block block_of(const Params &p)
{
    int idx = blockIdx.x;
    Block k;
    k.rb = idx % p.row_blocks;
    idx /= p.row_blocks;
    k.split = idx % p.splits;
    idx /= p.splits;
    k.hk = idx % p.n_kv_heads;
    k.b = idx / p.n_kv_heads;
    return k;
}

/* sequence b: its length, whether that is bad (negative or past the cache), its keys a split
 * (whole steps of `step` keys) and the number of splits that have keys */
struct Seq {
    int len, chunk, ns;
    bool bad;
};
__device__ __forceinline__ Seq seq_of(const Params &p, int b, int step)
{
    Seq q;
    q.len = p.seqlens[b];
    q.bad = bad_length(q.len, p.capacity);
    q.chunk = chunk_keys(q.bad ? 0 : q.len, p.splits, step);
    q.ns = q.bad ? 0 : (q.len + q.chunk - 1) / q.chunk;
    return q;
}

template <typename T> __device__ __forceinline__ void unpack8(const uint4 &r, float f[kVec])
{
    using tr = sf::dtype_traits<T>;
    const float2 a = tr::unpack2(r.x), b = tr::unpack2(r.y), c = tr::unpack2(r.z), d = tr::unpack2(r.w);
    f[0] = a.x, f[1] = a.y, f[2] = b.x, f[3] = b.y, f[4] = c.x, f[5] = c.y, f[6] = d.x, f[7] = d.y;
}

/* the main loop's variants (see the top of the file), in the order of kVariantNames */
enum Variant { kBase, kRing, kRing48, kMma, kVariants };
const char *const kVariantNames[kVariants] = {"base", "ring", "ring48", "mma"};

/* variant and rows per CTA -> K/V vector pairs per thread and iteration (base: all of them in
 * registers at once, as many as they allow; ring: fewer, since the stages hold the bytes in
 * flight) and the ring's stages (1: no ring) */
template <int RB, int V> struct Unroll {
    static constexpr int U = V == kBase ? (RB <= 2 ? 8 : RB == 4 ? 4 : 2) : RB <= 2 ? 4 : 2;
    static constexpr int RING_VECS = V == kRing ? 16 : V == kRing48 ? 12 : 0; /* S·U: 4 KB each */
    static constexpr int S = V == kBase ? 1 : RING_VECS / U;
};

template <typename T, int D, int RB, int V> struct Cfg {
    static constexpr int LPK = D / kVec;          /* lanes per key row */
    static constexpr int KPW = 32 / LPK;          /* keys per warp and load */
    static constexpr int NG = kWarps * KPW;       /* lane groups (independent softmax states) */
    static constexpr int U = Unroll<RB, V>::U;
    static constexpr int S = Unroll<RB, V>::S;
    static constexpr int STEP = NG * U;           /* keys per CTA iteration */
    /* ring [S][K, V][U][kThreads] 16-byte vectors; the end-of-loop merge reuses it */
    static constexpr size_t RING = S > 1 ? (size_t)S * 2 * U * kThreads * sizeof(uint4) : 0;
    static constexpr size_t MERGE = (size_t)NG * RB * (D + 2) * sizeof(float);
    static constexpr size_t SMEM = RING > MERGE ? RING : MERGE;
    static_assert(D == 64 || D == 128, "head dim");
    static_assert(RB >= 1 && RB <= kMaxRows, "rows");
    static_assert(V == kBase || (S >= 2 && S * U == Unroll<RB, V>::RING_VECS), "a ring: two stages or more, whole");
};

using sf::cp_async16;
using sf::cp_async_commit;
using sf::cp_async_wait;
using sf::smem_u32;

/* One iteration's compute: the thread's U keys first, first + NG, ... (kr, vr; zeros past k1)
 * into its group's online softmax state (m, l, o) for every row. */
template <typename T, int LPK, int NG, int RB, int U>
__device__ __forceinline__ void consume(const uint4 (&kr)[U], const uint4 (&vr)[U], int first, int k1,
                                        const float (&qf)[RB][kVec], const int (&lim)[RB], float (&m)[RB],
                                        float (&l)[RB], float (&o)[RB][kVec])
{
    /* scores of the U keys for every row, summed over the key's LPK lanes */
    float s[RB][U];
#pragma unroll
    for (int u = 0; u < U; u++) {
        float kf[kVec];
        unpack8<T>(kr[u], kf);
        const int n = first + u * NG;
#pragma unroll
        for (int r = 0; r < RB; r++) {
            float acc = 0.f;
#pragma unroll
            for (int e = 0; e < kVec; e++) acc = fmaf(qf[r][e], kf[e], acc);
#pragma unroll
            for (int x = LPK / 2; x > 0; x >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, x);
            s[r][u] = n < k1 && n < lim[r] ? acc : -INFINITY;
        }
    }

    /* online softmax of the group's keys; a row with no visible key yet keeps m = -inf */
#pragma unroll
    for (int r = 0; r < RB; r++) {
        float mx = m[r];
#pragma unroll
        for (int u = 0; u < U; u++) mx = fmaxf(mx, s[r][u]);
        const float ref = mx == -INFINITY ? 0.f : mx;
        const float alpha = __expf(m[r] - ref);
        m[r] = mx;
        float sum = 0.f;
#pragma unroll
        for (int u = 0; u < U; u++) {
            s[r][u] = __expf(s[r][u] - ref);
            sum += s[r][u];
        }
        l[r] = fmaf(l[r], alpha, sum);
#pragma unroll
        for (int e = 0; e < kVec; e++) o[r][e] *= alpha;
    }
#pragma unroll
    for (int u = 0; u < U; u++) {
        float vf[kVec];
        unpack8<T>(vr[u], vf);
#pragma unroll
        for (int r = 0; r < RB; r++)
#pragma unroll
            for (int e = 0; e < kVec; e++) o[r][e] = fmaf(s[r][u], vf[e], o[r][e]);
    }
}

/* O += w·(x, y): the 8 floats of a chunk */
__device__ __forceinline__ void add_scaled8(float (&O)[kVec], float w, const float4 &x, const float4 &y)
{
    O[0] = fmaf(w, x.x, O[0]), O[1] = fmaf(w, x.y, O[1]), O[2] = fmaf(w, x.z, O[2]), O[3] = fmaf(w, x.w, O[3]);
    O[4] = fmaf(w, y.x, O[4]), O[5] = fmaf(w, y.y, O[5]), O[6] = fmaf(w, y.z, O[6]), O[7] = fmaf(w, y.w, O[7]);
}

/* The result of query row (sequence b, token i, head h), elements cc·8 .. cc·8 + 7: O
 * unnormalised against the maximum m (natural-log units), L its sum of weights. Where this is
 * the row's only split (direct), out = O / L and lse = m + log L (NaN for a bad sequence; 0 and
 * -inf for a row with no visible key: L >= 1 whenever some key was visible, the maximum's own
 * term); otherwise the split's slot of the workspace, (m, L) beside it, NaN marking a bad one. */
template <typename T, int D>
__device__ __forceinline__ void store_row(const Params &p, bool direct, bool nan, int b, int i, int h, int split, int cc,
                                          float m, float L, const float (&O)[kVec])
{
    using tr = sf::dtype_traits<T>;
    if (direct) {
        const float inv = nan ? NAN : L > 0.f ? 1.f / L : 0.f;
        uint4 packed;
        packed.x = tr::pack2(O[0] * inv, O[1] * inv);
        packed.y = tr::pack2(O[2] * inv, O[3] * inv);
        packed.z = tr::pack2(O[4] * inv, O[5] * inv);
        packed.w = tr::pack2(O[6] * inv, O[7] * inv);
        *reinterpret_cast<uint4 *>(p.out + 2 * ((int64_t)b * p.os[0] + (int64_t)i * p.os[1] + (int64_t)h * p.os[2] +
                                                cc * kVec)) = packed;
        if (p.lse && cc == 0)
            p.lse[((int64_t)b * p.n_heads + h) * p.n_q + i] = nan ? NAN : L > 0.f ? m + logf(L) : -INFINITY;
    } else {
        const int64_t slot = (((int64_t)b * p.n_heads + h) * p.n_q + i) * p.splits + split;
        float4 *dst = reinterpret_cast<float4 *>(p.ws_o + slot * D + cc * kVec);
        dst[0] = make_float4(O[0], O[1], O[2], O[3]);
        dst[1] = make_float4(O[4], O[5], O[6], O[7]);
        if (cc == 0) p.ws_ml[slot] = nan ? make_float2(NAN, NAN) : make_float2(m, L);
    }
}

/* Key n's K and V addresses for this lane (kbase, vbase: the kv head and the lane's 16 bytes),
 * from its page pg (in a contiguous cache the sequence); a page outside the pool leaves them
 * null and sets bad. */
__device__ __forceinline__ void key_rows(const Params &p, const char *kbase, const char *vbase, int n, int pg,
                                         int page_mask, const char *&ka, const char *&va, bool &bad)
{
    ka = va = nullptr;
    if (pg < 0 || pg >= p.n_pages) {
        bad = true;
        return;
    }
    const int off = p.paged ? (n & page_mask) : n;
    ka = kbase + 2 * ((int64_t)pg * p.ks[0] + (int64_t)off * p.ks[1]);
    va = vbase + 2 * ((int64_t)pg * p.vs[0] + (int64_t)off * p.vs[1]);
}

/* The end-of-CTA merge of N independent softmax states of one row (lane groups, or warps): state
 * g's maximum at sm[g·rows + r], its sum at sl[g·rows + r], its unnormalised output at
 * so + (g·rows + r)·ostride; elements cc·8 .. cc·8 + 7 of O, and the merged maximum and sum.
 * LOG2: the maxima are in log2 units (exp2 weights), else natural ones. */
template <int N, bool LOG2>
__device__ __forceinline__ void merge_states(const float *sm, const float *sl, const float *so, int rows, int ostride, int r,
                                             int cc, float &mx, float &L, float (&O)[kVec])
{
    mx = -INFINITY;
#pragma unroll
    for (int g = 0; g < N; g++) mx = fmaxf(mx, sm[g * rows + r]);
    const float ref = mx == -INFINITY ? 0.f : mx;
    L = 0.f;
#pragma unroll
    for (int e = 0; e < kVec; e++) O[e] = 0.f;
#pragma unroll
    for (int g = 0; g < N; g++) {
        const float w = LOG2 ? sf::fast_exp2(sm[g * rows + r] - ref) : __expf(sm[g * rows + r] - ref);
        L = fmaf(w, sl[g * rows + r], L);
        const float4 *src = reinterpret_cast<const float4 *>(so + (g * rows + r) * ostride + cc * kVec);
        add_scaled8(O, w, src[0], src[1]);
    }
}

template <typename T, int D, int RB, int V>
__global__ void __launch_bounds__(kThreads) decode_split_kernel(const __grid_constant__ Params p)
{
    using C = Cfg<T, D, RB, V>;
    constexpr int LPK = C::LPK, KPW = C::KPW, NG = C::NG, U = C::U, S = C::S, STEP = C::STEP;
    /* ring: the ring's stages; after the loop: o [NG][RB][D], then m [NG][RB], then l [NG][RB] */
    extern __shared__ uint4 smem[];
    float *merge = reinterpret_cast<float *>(smem);
    sf::grid_dep_wait();
    sf::grid_dep_launch();

    const Block blk = block_of(p);
    const Seq seq = seq_of(p, blk.b, STEP);
    const int rb = blk.rb, split = blk.split, hk = blk.hk, b = blk.b, len = seq.len;
    bool bad = seq.bad;
    const bool direct = p.splits == 1;
    if (!direct && split >= seq.ns) return; /* the combine reads neither this split nor a bad row */
    const int k0 = split * seq.chunk, k1 = bad ? k0 : min(len, k0 + seq.chunk);

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int c = lane % LPK;                   /* this lane's 8 elements: c*8 .. c*8+7 */
    const int gi = warp * KPW + lane / LPK;     /* lane group: keys k0 + it*STEP + u*NG + gi */

    /* the CTA's query rows: row rr = rb*RB + r is (token i = rr / G, head h = hk*G + rr % G) */
    float qf[RB][kVec];
    int lim[RB];                                /* keys n < lim[r] are visible to row r */
#pragma unroll
    for (int r = 0; r < RB; r++) {
        const int rr = rb * RB + r;
        lim[r] = 0;
#pragma unroll
        for (int e = 0; e < kVec; e++) qf[r][e] = 0.f;
        if (rr < p.rows) {
            const int i = rr / p.group, h = hk * p.group + rr % p.group;
            lim[r] = p.causal ? len - (p.n_q - 1 - i) : len;
            const uint4 raw = __ldg(reinterpret_cast<const uint4 *>(
                p.q + 2 * ((int64_t)b * p.qs[0] + (int64_t)i * p.qs[1] + (int64_t)h * p.qs[2] + c * kVec)));
            unpack8<T>(raw, qf[r]);
#pragma unroll
            for (int e = 0; e < kVec; e++) qf[r][e] *= p.scale;
        }
    }

    float m[RB], l[RB], o[RB][kVec];
#pragma unroll
    for (int r = 0; r < RB; r++) {
        m[r] = -INFINITY;
        l[r] = 0.f;
#pragma unroll
        for (int e = 0; e < kVec; e++) o[r][e] = 0.f;
    }

    const char *kbase = p.k + 2 * ((int64_t)hk * p.ks[2] + c * kVec);
    const char *vbase = p.v + 2 * ((int64_t)hk * p.vs[2] + c * kVec);
    const int32_t *bt = p.block_table + (p.paged ? (int64_t)b * p.bt_stride : 0);
    const int page_mask = (1 << p.page_shift) - 1;
    /* paged: the pages of the next iteration's keys, read one iteration ahead of their loads */
    int page[U];
#pragma unroll
    for (int u = 0; u < U; u++) {
        const int n = k0 + u * NG + gi;
        page[u] = p.paged && n < k1 ? __ldg(bt + (n >> p.page_shift)) : b;
    }
    /* the addresses of the keys base + u*NG + gi from page[] (null past k1 or outside the
     * pool, which sets bad), then page[] for the iteration after */
    auto addresses = [&](int base, const char *(&ka)[U], const char *(&va)[U]) {
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int n = base + u * NG + gi;
            ka[u] = va[u] = nullptr;
            if (n < k1) key_rows(p, kbase, vbase, n, page[u], page_mask, ka[u], va[u], bad);
        }
        if (p.paged) {
#pragma unroll
            for (int u = 0; u < U; u++) {
                const int n = base + STEP + u * NG + gi;
                page[u] = n < k1 ? __ldg(bt + (n >> p.page_shift)) : 0;
            }
        }
    };

    if constexpr (S == 1) {
        for (int base = k0; base < k1; base += STEP) {
            const char *ka[U], *va[U];
            addresses(base, ka, va);
            uint4 kr[U], vr[U];
#pragma unroll
            for (int u = 0; u < U; u++) {
                kr[u] = ka[u] ? __ldg(reinterpret_cast<const uint4 *>(ka[u])) : make_uint4(0, 0, 0, 0);
                vr[u] = va[u] ? __ldg(reinterpret_cast<const uint4 *>(va[u])) : make_uint4(0, 0, 0, 0);
            }
            consume<T, LPK, NG, RB, U>(kr, vr, base + gi, k1, qf, lim, m, l, o);
        }
    } else {
        /* iteration j's vectors at ring[j % S][K or V][u][tid]; one commit group per iteration,
         * empty past the last, so that wait_group<S - 1> always means "iteration j is in" */
        const int iters = k1 > k0 ? (k1 - k0 + STEP - 1) / STEP : 0;
        auto issue = [&](int j) {
            if (j < iters) {
                const char *ka[U], *va[U];
                addresses(k0 + j * STEP, ka, va);
                uint4 *slot = smem + (size_t)(j % S) * 2 * U * kThreads + tid;
#pragma unroll
                for (int u = 0; u < U; u++) {
                    cp_async16(smem_u32(slot + u * kThreads), ka[u] ? ka[u] : kbase, ka[u] ? 16 : 0);
                    cp_async16(smem_u32(slot + (U + u) * kThreads), va[u] ? va[u] : vbase, va[u] ? 16 : 0);
                }
            }
            cp_async_commit();
        };
#pragma unroll
        for (int j = 0; j < S - 1; j++) issue(j);
        for (int j = 0; j < iters; j++) {
            /* the slot it fills was read back by this thread in iteration j - 1 */
            issue(j + S - 1);
            cp_async_wait<S - 1>();
            const uint4 *slot = smem + (size_t)(j % S) * 2 * U * kThreads + tid;
            uint4 kr[U], vr[U];
#pragma unroll
            for (int u = 0; u < U; u++) {
                kr[u] = slot[u * kThreads];
                vr[u] = slot[(U + u) * kThreads];
            }
            consume<T, LPK, NG, RB, U>(kr, vr, k0 + j * STEP + gi, k1, qf, lim, m, l, o);
        }
        cp_async_wait<0>();
    }

    /* merge the NG groups' states: every lane of a group holds the same m and l */
    bad = __syncthreads_or(bad);
    float *so = merge, *sm = merge + NG * RB * D, *sl = sm + NG * RB;
#pragma unroll
    for (int r = 0; r < RB; r++) {
        float4 *dst = reinterpret_cast<float4 *>(so + (gi * RB + r) * D + c * kVec);
        dst[0] = make_float4(o[r][0], o[r][1], o[r][2], o[r][3]);
        dst[1] = make_float4(o[r][4], o[r][5], o[r][6], o[r][7]);
        if (c == 0) {
            sm[gi * RB + r] = m[r];
            sl[gi * RB + r] = l[r];
        }
    }
    __syncthreads();

    constexpr int CH = D / kVec;
    for (int item = tid; item < RB * CH; item += kThreads) {
        const int r = item / CH, cc = item % CH, rr = rb * RB + r;
        if (rr >= p.rows) continue;
        float mx, L, O[kVec];
        merge_states<NG, false>(sm, sl, so, RB, D, r, cc, mx, L, O);
        store_row<T, D>(p, direct, bad, b, rr / p.group, hk * p.group + rr % p.group, split, cc, mx, L, O);
    }
}

/* Row (sequence b, token i, head h)'s splits s < ns, merged by their maxima (natural-log units)
 * from the workspace, elements cc·8 .. cc·8 + 7, into out and lse; NaN where the sequence is bad
 * or a split marked it so. (__ldcg: the splits may have been written by other CTAs of the same
 * kernel, the mma kernel's last CTA merging them.) */
template <typename T, int D>
__device__ __forceinline__ void merge_chunk(const Params &p, int b, int i, int h, int ns, bool bad, int cc)
{
    const int64_t slot0 = (((int64_t)b * p.n_heads + h) * p.n_q + i) * p.splits;
    float mx = -INFINITY;
    bool nan = bad;
    for (int s = 0; s < ns; s++) {
        const float m = __ldcg(&p.ws_ml[slot0 + s].x);
        nan = nan || isnan(m);
        mx = fmaxf(mx, m);
    }
    const float ref = mx == -INFINITY ? 0.f : mx;
    float L = 0.f, O[kVec] = {};
    for (int s = 0; s < ns; s++) {
        const float2 ml = __ldcg(&p.ws_ml[slot0 + s]);
        const float w = __expf(ml.x - ref);
        L = fmaf(w, ml.y, L);
        const float4 *src = reinterpret_cast<const float4 *>(p.ws_o + (slot0 + s) * D + cc * kVec);
        add_scaled8(O, w, __ldcg(src), __ldcg(src + 1));
    }
    store_row<T, D>(p, true, nan, b, i, h, 0, cc, mx, L, O);
}

/* A thread per 8 elements of an output row (b, h, i): the splits that had keys, merged. */
template <typename T, int D>
__global__ void __launch_bounds__(kCombineThreads) decode_combine_kernel(const __grid_constant__ Params p, int64_t n_rows)
{
    sf::grid_dep_wait();
    sf::grid_dep_launch();
    constexpr int CH = D / kVec;
    const int64_t item = (int64_t)blockIdx.x * kCombineThreads + threadIdx.x;
    if (item >= n_rows * CH) return;
    const int64_t row = item / CH;
    const int i = (int)(row % p.n_q), h = (int)(row / p.n_q % p.n_heads), b = (int)(row / ((int64_t)p.n_q * p.n_heads));
    const Seq seq = seq_of(p, b, p.step);
    merge_chunk<T, D>(p, b, i, h, seq.ns, seq.bad, (int)(item % CH));
}

/* ---- the tensor-core variant ("mma") ----
 * One CTA serves up to 16 query rows of one (sequence, kv head, split): one m16 tile of
 * mma.sync m16n8k16, whatever G·Nq is (a single row wastes 15 of them; the tensor cores have
 * room to spare, the bytes are what counts). Each warp streams its own 16 keys of every 64-key
 * stage, K and V, with cp.async into its part of an S-stage ring (S - 1 stages in flight), so
 * warps never wait for one another until the end; a warp computes S = Q·Kᵀ (16 × 16) and
 * O += P·V (16 × D) on the tensor cores from ldmatrix'd, swizzled tiles, with its own online
 * softmax (log2 units, fp32), and the four warps' states are merged through shared memory.
 * Splits: with `counters`, the CTA that finishes a (sequence, kv head, row block) last merges
 * every split's partial itself (no combine kernel) and leaves the counter at zero; without,
 * the combine kernel does. */
constexpr int kMmaRows = 16;   /* query rows of a CTA */
constexpr int kMmaKeys = 16;   /* keys of a warp a stage: the k of P·V */
constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;

template <int D, int S> struct MmaCfg {
    static constexpr int CH = D / kVec;                    /* 16-byte chunks of a K or V row */
    static constexpr int VPL = kMmaKeys * CH / 32;         /* vectors of K (and of V) a lane copies a stage */
    static constexpr int BLOCK = kMmaKeys * CH;            /* vectors of a warp's K (or V) a stage */
    static constexpr int STEP = kWarps * kMmaKeys;         /* keys of the CTA a stage */
    static constexpr int OSTRIDE = D + 4;                  /* floats a merged row: 16-byte rows, fewer conflicts */
    static constexpr size_t RING = (size_t)S * kWarps * 2 * BLOCK * sizeof(uint4);
    static constexpr size_t MERGE = (size_t)kWarps * kMmaRows * (OSTRIDE + 2) * sizeof(float);
    static constexpr size_t SMEM = RING > MERGE ? RING : MERGE;
    static_assert(D == 64 || D == 128, "head dim");
    static_assert(S >= 2, "a ring of two stages or more");
};

/* the index of 16-byte chunk c of key row kk in a warp's swizzled K or V block: chunk c of row
 * kk sits at c ^ (kk & 7), so the 8 rows an ldmatrix reads hit 8 different bank groups */
template <int CH> __device__ __forceinline__ int swz(int kk, int c) { return kk * CH + (c ^ (kk & 7)); }

/* the CTA's rows rb·16 .. rb·16 + 15, each row's splits merged (merge_chunk) */
template <typename T, int D>
__device__ void merge_splits(const Params &p, int b, int hk, int rb, int ns, int tid)
{
    constexpr int CH = D / kVec;
    for (int item = tid; item < kMmaRows * CH; item += kThreads) {
        const int rr = rb * kMmaRows + item / CH;
        if (rr < p.rows) merge_chunk<T, D>(p, b, rr / p.group, hk * p.group + rr % p.group, ns, false, item % CH);
    }
}

template <typename T, int D, int S>
__global__ void __launch_bounds__(kThreads) decode_mma_kernel(const __grid_constant__ Params p)
{
    using C = MmaCfg<D, S>;
    constexpr int CH = C::CH, VPL = C::VPL, BLOCK = C::BLOCK, STEP = C::STEP;
    extern __shared__ uint4 smem[];
    sf::grid_dep_wait();
    sf::grid_dep_launch();
    using tr = sf::dtype_traits<T>;

    const Block blk = block_of(p);
    const Seq seq = seq_of(p, blk.b, STEP);
    const int rb = blk.rb, split = blk.split, hk = blk.hk, b = blk.b, len = seq.len, chunk = seq.chunk, ns = seq.ns;
    bool bad = seq.bad;
    const bool fused = p.counters != nullptr;
    /* one split writes out itself; so does split 0 alone when no split has keys and this kernel
     * merges (a bad or empty sequence: NaN or zero rows) */
    const bool direct = p.splits == 1 || (fused && ns == 0);
    if (direct ? split > 0 : split >= ns) return;
    const int k0 = split * chunk, k1 = bad ? k0 : min(len, k0 + chunk);

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, q = lane & 3;

    /* this thread's query rows g and g + 8 of the tile: row rr = rb·16 + r is (token rr / G,
     * head hk·G + rr % G); lim: keys n < lim are visible to it (0 for a row past G·Nq) */
    uint32_t qa[D / 16][4];
    int lim[2];
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
        const int rr = rb * kMmaRows + g + 8 * hr;
        const char *qrow = nullptr;
        lim[hr] = 0;
        if (rr < p.rows) {
            const int i = rr / p.group, h = hk * p.group + rr % p.group;
            lim[hr] = p.causal ? len - (p.n_q - 1 - i) : len;
            qrow = p.q + 2 * ((int64_t)b * p.qs[0] + (int64_t)i * p.qs[1] + (int64_t)h * p.qs[2]);
        }
#pragma unroll
        for (int ks = 0; ks < D / 16; ks++) {
            qa[ks][hr] = qrow ? __ldg(reinterpret_cast<const uint32_t *>(qrow + 2 * (16 * ks + 2 * q))) : 0u;
            qa[ks][2 + hr] = qrow ? __ldg(reinterpret_cast<const uint32_t *>(qrow + 2 * (16 * ks + 8 + 2 * q))) : 0u;
        }
    }
    const float sl2 = p.scale * kLog2e;
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f}, o[D / 8][4];
#pragma unroll
    for (int dt = 0; dt < D / 8; dt++) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.f;

    /* the copies: lane copies vectors v = lane + 32u of its warp's block, key kk = v / CH of
     * the warp's 16, chunk c = lane % CH; the pages: below */
    const int c = lane % CH;
    const char *kbase = p.k + 2 * ((int64_t)hk * p.ks[2] + c * kVec);
    const char *vbase = p.v + 2 * ((int64_t)hk * p.vs[2] + c * kVec);
    const int32_t *bt = p.block_table + (p.paged ? (int64_t)b * p.bt_stride : 0);
    const int page_mask = (1 << p.page_shift) - 1;
    const int iters = k1 > k0 ? (k1 - k0 + STEP - 1) / STEP : 0;
    auto key_of = [&](int j, int u) { return k0 + j * STEP + warp * kMmaKeys + (lane + 32 * u) / CH; };
    /* pages of 16 keys or more hold all of a warp's 16 keys of a stage (they start at a multiple
     * of 16): lane i keeps the page of the warp's stage 32·blk + i (pg_now) and of the block
     * after (pg_next), read 32 stages before they are needed, so that no stage waits on a line of
     * the block table behind the copies in flight; smaller pages look each key up a stage ahead */
    const bool wide = p.paged && p.page_shift >= 4;
    auto stage_page = [&](int j) {
        const int n = k0 + j * STEP + warp * kMmaKeys;
        return n < k1 ? __ldg(bt + (n >> p.page_shift)) : 0;
    };
    int pg_now = wide ? stage_page(lane) : 0, pg_next = wide ? stage_page(32 + lane) : 0;
    int page[VPL];
#pragma unroll
    for (int u = 0; u < VPL; u++) {
        const int n = key_of(0, u);
        page[u] = p.paged && !wide && n < k1 ? __ldg(bt + (n >> p.page_shift)) : b;
    }
    const uint32_t ring = smem_u32(smem) + (uint32_t)(warp * 2 * BLOCK * sizeof(uint4));
    constexpr uint32_t kStageBytes = kWarps * 2 * BLOCK * sizeof(uint4);
    auto issue = [&](int j) {
        if (j < iters) {
            const uint32_t kdst = ring + (uint32_t)(j % S) * kStageBytes, vdst = kdst + BLOCK * sizeof(uint4);
            int pg = 0;
            if (wide) { /* issue(j) runs for j = 0, 1, 2, ... in turn, the whole warp at once */
                if (j > 0 && (j & 31) == 0) {
                    pg_now = pg_next;
                    pg_next = stage_page(j + 32 + lane);
                }
                pg = __shfl_sync(0xffffffffu, pg_now, j & 31);
            }
#pragma unroll
            for (int u = 0; u < VPL; u++) {
                const int n = key_of(j, u), kk = (lane + 32 * u) / CH;
                const char *ka = nullptr, *va = nullptr;
                if (n < k1) key_rows(p, kbase, vbase, n, wide ? pg : page[u], page_mask, ka, va, bad);
                const uint32_t at = (uint32_t)swz<CH>(kk, c) * sizeof(uint4);
                cp_async16(kdst + at, ka ? ka : kbase, ka ? 16 : 0);
                cp_async16(vdst + at, va ? va : vbase, va ? 16 : 0);
            }
            if (p.paged && !wide) {
#pragma unroll
                for (int u = 0; u < VPL; u++) {
                    const int n = key_of(j + 1, u);
                    page[u] = n < k1 ? __ldg(bt + (n >> p.page_shift)) : 0;
                }
            }
        }
        cp_async_commit(); /* one group a stage, empty past the last: wait<S - 1> means "stage j is in" */
    };

#pragma unroll
    for (int j = 0; j < S - 1; j++) issue(j);
    for (int j = 0; j < iters; j++) {
        __syncwarp(); /* every lane is done with the slot that stage j + S - 1 refills */
        issue(j + S - 1);
        cp_async_wait<S - 1>();
        __syncwarp(); /* and the lanes' copies of stage j are visible to the whole warp */
        const uint32_t kb = ring + (uint32_t)(j % S) * kStageBytes, vb = kb + BLOCK * sizeof(uint4);
        const int n0 = k0 + j * STEP + warp * kMmaKeys; /* the warp's first key of this stage */

        /* S = Q·Kᵀ: keys n0 .. n0 + 7 (s[0]) and n0 + 8 .. n0 + 15 (s[1]) */
        float s[2][4] = {};
        {
            const int mat = lane >> 3, kk = (mat >> 1) * 8 + (lane & 7);
#pragma unroll
            for (int ks = 0; ks < D / 16; ks++) {
                uint32_t r[4];
                sf::ldsm_x4(r, kb + (uint32_t)swz<CH>(kk, 2 * ks + (mat & 1)) * sizeof(uint4));
                sf::mma16816<T>(s[0], qa[ks], r[0], r[1]);
                sf::mma16816<T>(s[1], qa[ks], r[2], r[3]);
            }
        }
        /* online softmax of rows g (hr 0) and g + 8 (hr 1); element e of s[nt] is row e / 2,
         * key n0 + 8·nt + 2q + e % 2; a row with no visible key yet keeps m = -inf */
        float alpha[2];
#pragma unroll
        for (int hr = 0; hr < 2; hr++) {
            float mx = -INFINITY;
#pragma unroll
            for (int nt = 0; nt < 2; nt++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    const int n = n0 + 8 * nt + 2 * q + e;
                    float &x = s[nt][2 * hr + e];
                    x = n < k1 && n < lim[hr] ? x * sl2 : -INFINITY;
                    mx = fmaxf(mx, x);
                }
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float mnew = fmaxf(m[hr], mx), ref = mnew == -INFINITY ? 0.f : mnew;
            alpha[hr] = sf::fast_exp2(m[hr] - ref);
            m[hr] = mnew;
            float sum = 0.f;
#pragma unroll
            for (int nt = 0; nt < 2; nt++)
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    float &x = s[nt][2 * hr + e];
                    x = sf::fast_exp2(x - ref);
                    sum += x;
                }
            l[hr] = fmaf(l[hr], alpha[hr], sum);
        }
        /* O = O·alpha + P·V, P (16 rows × 16 keys) straight from the score registers */
        const uint32_t pa[4] = {tr::pack2(s[0][0], s[0][1]), tr::pack2(s[0][2], s[0][3]), tr::pack2(s[1][0], s[1][1]),
                                tr::pack2(s[1][2], s[1][3])};
        const int mat = lane >> 3, kk = (mat & 1) * 8 + (lane & 7);
#pragma unroll
        for (int dp = 0; dp < D / 16; dp++) {
#pragma unroll
            for (int h = 0; h < 2; h++) {
                o[2 * dp + h][0] *= alpha[0], o[2 * dp + h][1] *= alpha[0];
                o[2 * dp + h][2] *= alpha[1], o[2 * dp + h][3] *= alpha[1];
            }
            uint32_t r[4];
            sf::ldsm_x4_t(r, vb + (uint32_t)swz<CH>(kk, 2 * dp + (mat >> 1)) * sizeof(uint4));
            sf::mma16816<T>(o[2 * dp], pa, r[0], r[1]);
            sf::mma16816<T>(o[2 * dp + 1], pa, r[2], r[3]);
        }
    }
    cp_async_wait<0>();

    /* merge the four warps: [warp][16 rows][OSTRIDE] o, then m [warp][16], then l [warp][16] */
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
        l[hr] += __shfl_xor_sync(0xffffffffu, l[hr], 1);
        l[hr] += __shfl_xor_sync(0xffffffffu, l[hr], 2);
    }
    bad = __syncthreads_or(bad); /* also: every warp is done with the ring */
    float *so = reinterpret_cast<float *>(smem), *sm = so + kWarps * kMmaRows * C::OSTRIDE, *sl = sm + kWarps * kMmaRows;
#pragma unroll
    for (int hr = 0; hr < 2; hr++) {
        const int row = warp * kMmaRows + g + 8 * hr;
#pragma unroll
        for (int dt = 0; dt < D / 8; dt++)
            *reinterpret_cast<float2 *>(so + row * C::OSTRIDE + 8 * dt + 2 * q) = make_float2(o[dt][2 * hr], o[dt][2 * hr + 1]);
        if (q == 0) {
            sm[row] = m[hr];
            sl[row] = l[hr];
        }
    }
    __syncthreads();

    for (int item = tid; item < kMmaRows * CH; item += kThreads) {
        const int r = item / CH, cc = item % CH, rr = rb * kMmaRows + r;
        if (rr >= p.rows) continue;
        float mx, L, O[kVec];
        merge_states<kWarps, true>(sm, sl, so, kMmaRows, C::OSTRIDE, r, cc, mx, L, O);
        /* the merge and the combine work in natural-log units */
        store_row<T, D>(p, direct, bad, b, rr / p.group, hk * p.group + rr % p.group, split, cc, mx * kLn2, L, O);
    }
    if (direct || !fused) return;

    /* the last split CTA of this (sequence, kv head, row block) to finish merges them all (no
     * static shared memory for the flag: with it, the 48 KB ring of D = 64 would not launch
     * without opting in to more) */
    unsigned *counter = p.counters + ((int64_t)b * p.n_kv_heads + hk) * p.row_blocks + rb;
    __threadfence();
    __syncthreads();
    if (!__syncthreads_or(tid == 0 && atomicAdd(counter, 1u) == (unsigned)ns - 1)) return;
    __threadfence();
    merge_splits<T, D>(p, b, hk, rb, ns, tid);
    if (tid == 0) *counter = 0;
}

int rows_per_cta(int rows) { return rows <= 1 ? 1 : rows <= 2 ? 2 : rows <= 4 ? 4 : kMaxRows; }

bool valid(const sf_decode_attention_args *a)
{
    if (!a || (a->dtype != SF_F16 && a->dtype != SF_BF16) || (a->head_dim != 64 && a->head_dim != 128)) return false;
    if (a->batch <= 0 || a->n_q < 1 || a->n_q > SF_DECODE_MAX_QUERIES || a->n_kv_heads <= 0 ||
        a->n_heads % a->n_kv_heads || a->capacity < 1 || a->capacity > (1 << 30) || a->page_size < 1 ||
        (a->page_size & (a->page_size - 1) && a->block_table) || a->n_pages < 1 || !a->seqlens)
        return false;
    if ((int64_t)a->n_heads / a->n_kv_heads * a->n_q > (1 << 20)) return false;
    if (!(a->scale >= 0.f) || isinf(a->scale)) return false;
    const int64_t *st[4] = {a->q_stride, a->k_stride, a->v_stride, a->o_stride};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            if (st[i][j] % 8) return false;
    const void *ptr[4] = {a->q, a->k, a->v, a->out};
    for (int i = 0; i < 4; i++)
        if (!ptr[i] || !sf::aligned16(ptr[i])) return false;
    return true;
}

/* the variant SFBENCH_DECODE_VARIANT names (read once): kMma when unset, -1 when unknown */
int variant()
{
    static const int v = [] {
        const char *e = getenv("SFBENCH_DECODE_VARIANT");
        if (!e || !*e) return (int)kMma;
        for (int i = 0; i < kVariants; i++)
            if (strcmp(e, kVariantNames[i]) == 0) return i;
        return -1;
    }();
    return v;
}

/* The split kernels, as the host sees them: query rows a CTA, keys a CTA iteration (the unit
 * of a split), dynamic shared memory, and whether the kernel merges its splits itself. */
template <typename T, int D, int RB, int V> struct ClassicSplit {
    using C = Cfg<T, D, RB, V>;
    static constexpr int ROWS = RB, STEP = C::STEP;
    static constexpr size_t SMEM = C::SMEM;
    static constexpr bool MERGES = false;
    static constexpr size_t IN_FLIGHT = 0; /* a wave of splits: as many CTAs an SM as fit */
    static constexpr auto kernel = decode_split_kernel<T, D, RB, V>;
};
constexpr int kMmaStages = 3;
template <typename T, int D> struct MmaSplit {
    using C = MmaCfg<D, kMmaStages>;
    static constexpr int ROWS = kMmaRows, STEP = C::STEP;
    static constexpr size_t SMEM = C::SMEM;
    static constexpr bool MERGES = true;
    /* bytes of K and V a CTA keeps in flight, its ring but the stage being read: a wave of splits
     * is as many CTAs an SM as cover the SM's share of the bandwidth (see
     * sf_decode_attention_splits) */
    static constexpr size_t IN_FLIGHT = C::RING / kMmaStages * (kMmaStages - 1);
    static constexpr auto kernel = decode_mma_kernel<T, D, kMmaStages>;
};

/* a split kernel's launch, occupancy and combine */
template <typename T, int D, typename K> struct Kernel {
    static constexpr int ROWS = K::ROWS, STEP = K::STEP;
    static constexpr size_t IN_FLIGHT = K::IN_FLIGHT;
    static constexpr bool MERGES = K::MERGES;
    /* once: more than the default 48 KB of dynamic shared memory asks for it, and for all of
     * the unified L1/shared memory as shared (the kernels read K and V past L1) */
    static int prepare()
    {
        static const int err = [] {
            if (K::SMEM <= 48 * 1024) return 0;
            cudaError_t e = cudaFuncSetAttribute(K::kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)K::SMEM);
            if (e == cudaSuccess)
                e = cudaFuncSetAttribute(K::kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                         (int)cudaSharedmemCarveoutMaxShared);
            return (int)e;
        }();
        return err;
    }
    static int occupancy(int *ctas)
    {
        const int pe = prepare();
        return pe != 0 ? pe : sf::occupancy<K::kernel>(ctas, kThreads, K::SMEM);
    }
    static int launch(const Params &p, unsigned blocks, cudaStream_t stream)
    {
        const int pe = prepare();
        if (pe != 0) return pe;
        return (int)sf::launch(K::kernel, blocks, kThreads, K::SMEM, stream, 1, p);
    }
    static int combine(const Params &p, int64_t n_rows, cudaStream_t stream)
    {
        const unsigned blocks = (unsigned)((n_rows * (D / kVec) + kCombineThreads - 1) / kCombineThreads);
        return (int)sf::launch(decode_combine_kernel<T, D>, blocks, kCombineThreads, 0, stream, 1, p, n_rows);
    }
};

template <typename T, int D, int V, typename F> int by_rows(int rows, F &f)
{
    switch (rows_per_cta(rows)) {
    case 1: return f(Kernel<T, D, ClassicSplit<T, D, 1, V>>());
    case 2: return f(Kernel<T, D, ClassicSplit<T, D, 2, V>>());
    case 4: return f(Kernel<T, D, ClassicSplit<T, D, 4, V>>());
    default: return f(Kernel<T, D, ClassicSplit<T, D, kMaxRows, V>>());
    }
}

template <typename T, int D, typename F> int by_variant(int rows, F &f)
{
    switch (variant()) {
    case kBase: return by_rows<T, D, kBase>(rows, f);
    case kRing: return by_rows<T, D, kRing>(rows, f);
    case kRing48: return by_rows<T, D, kRing48>(rows, f);
    case kMma: return f(Kernel<T, D, MmaSplit<T, D>>());
    default: return (int)cudaErrorInvalidValue;
    }
}

/* f(Kernel<...>) for the arguments' dtype, head dim, rows (G·Nq) and the variant */
template <typename F> int dispatch(const sf_decode_attention_args *a, F f)
{
    const int rows = a->n_heads / a->n_kv_heads * a->n_q;
    if (a->dtype == SF_F16) return a->head_dim == 128 ? by_variant<__half, 128>(rows, f) : by_variant<__half, 64>(rows, f);
    return a->head_dim == 128 ? by_variant<__nv_bfloat16, 128>(rows, f) : by_variant<__nv_bfloat16, 64>(rows, f);
}

/* row blocks of a (sequence, kv head): CTAs of ROWS query rows each */
int row_blocks(const sf_decode_attention_args *a, int rows_per_block)
{
    const int rows = a->n_heads / a->n_kv_heads * a->n_q;
    return (rows + rows_per_block - 1) / rows_per_block;
}

} // namespace sf_decode

using namespace sf_decode;

extern "C" const char *sf_decode_attention_variant(void)
{
    const int v = variant();
    return v < 0 ? NULL : kVariantNames[v];
}

extern "C" size_t sf_decode_attention_workspace_bytes(const sf_decode_attention_args *a, int splits)
{
    if (splits <= 1) return 0;
    const size_t rows = (size_t)a->batch * a->n_heads * a->n_q * splits;
    return rows * ((size_t)a->head_dim * sizeof(float) + sizeof(float2));
}

/* Enough CTAs for one full wave, never splits shorter than kMinChunk keys of max_seqlen:
 * B·Hkv·(row blocks) CTAs per split. One wave, not more: the split lengths are equal, so a second,
 * partial wave would double the time. A wave is what the GPU runs at once (occupancy x SMs) for
 * the classic kernels. For the mma kernel it is one CTA an SM, and a second where one CTA's
 * IN_FLIGHT bytes (64 KB at D = 128) do not cover the SM's share of the DRAM bandwidth over
 * kLoadedLatency, and the splits stay kMinChunkSecond keys or longer:
 *  - H100 SXM, 3.35 TB/s over 132 SMs: 51 KB, one CTA. Half the splits of two an SM ran faster at
 *    B = 1 (2026-12-06, kernels/NOTES-decode.md): 16 against 33 for 64/8 heads (12.5 against
 *    15.4 µs at N = 4096), 4 against 8 for 32/32 (27.2 against 28.2).
 *  - H200, 4.81 TB/s (a 6016-bit bus): 73 KB, two. With forced counts (2026-12-07): 32/32 heads, B = 1, 8 splits
 *    against 4: 21.7 against 24.5 µs at N = 4096, 66.1 against 85.0 at 16384; B = 4, 2 against 1:
 *    65.9 against 78.8 and 245 against 304. 33 splits of 124 keys (64/8, B = 1, N = 4096) took
 *    14.4 µs against 11.6 at 16: hence the floor on a second CTA's splits. Of 16 points (B = 1
 *    to 8, N = 4096 and 16384, both head counts) the rule is slower than the one it replaced at
 *    two: 64/8, B = 2, N = 4096, 16 splits against 8, 16.3 against 15.5 µs; B = 1, N = 16384,
 *    33 against 16, 26.3 against 26.1.
 *  kLoadedLatency is assumed, not measured: any value from 1.80 to 2.58 µs makes these choices.
 *  Splits of 64 keys cost more than they bring: 64/8 heads, B = 1 (H100, 2026-12-07), N = 1024 took
 *  8.76 µs at 16 splits of 64 keys, 8.03 at 8 of 128 (cuDNN 7.94); N = 2048, 10.01 at 16 of 128 and
 *  10.26 at 8 of 256. Hence kMinChunk.
 *  At head dim 64 a CTA keeps 32 KB in flight, so both machines take a second CTA there: not
 *  measured.
 * A paged cache is the exception: each key's page index is a load its K and V wait on, which the
 * mma kernel hides better at its occupancy of two CTAs an SM, up to kPagedMaxSplits splits; past
 * that, the last CTA's merge of every partial costs more than the extra CTAs bring. With pages
 * of 16 (H100, 2026-12-06) this count was the fastest of the six timed (2, 4, 8, 16, 33 and one
 * CTA an SM), or within 3.4% of it, at each of 16 points, where one CTA an SM was up to 4.9%
 * behind the fastest (32/32 heads, B = 4, N = 16384: 384.0 against 366.2 µs). */
extern "C" int sf_decode_split_rule(const sf_decode_split_inputs *in)
{
    const int64_t base = in->ctas_a_split > 0 ? in->ctas_a_split : 1;
    const int occupancy = in->occupancy > 0 ? in->occupancy : 1;
    int64_t n;
    if (in->in_flight == 0 || in->paged) {
        n = (int64_t)in->sms * occupancy / base;
        if (in->in_flight > 0 && n > kPagedMaxSplits) n = kPagedMaxSplits;
    } else {
        n = in->sms / base;
        const double needed = in->sms > 0 ? in->dram_bytes_per_s / in->sms * kLoadedLatency : 0.0;
        if (occupancy > 1 && needed > (double)in->in_flight) {
            int64_t second = (int64_t)in->sms * 2 / base;
            if (second > in->keys / kMinChunkSecond) second = in->keys / kMinChunkSecond;
            if (second > n) n = second;
        }
    }
    const int64_t by_length = (in->keys + kMinChunk - 1) / kMinChunk;
    if (n > by_length) n = by_length;
    if (n > SF_DECODE_MAX_SPLITS) n = SF_DECODE_MAX_SPLITS;
    return n < 1 ? 1 : (int)n;
}

extern "C" int sf_decode_attention_splits(const sf_decode_attention_args *a, int *splits)
{
    *splits = 1;
    if (a->splits > 0) {
        *splits = a->splits < SF_DECODE_MAX_SPLITS ? a->splits : SF_DECODE_MAX_SPLITS;
        return 0;
    }
    if (!valid(a)) return (int)cudaErrorInvalidValue;
    sf::device_info d;
    sf_decode_split_inputs in = {};
    int blocks = 1;
    int e = sf::current_device(&d);
    if (e == 0)
        e = dispatch(a, [&](auto k) {
            blocks = row_blocks(a, decltype(k)::ROWS);
            in.in_flight = decltype(k)::IN_FLIGHT;
            return decltype(k)::occupancy(&in.occupancy);
        });
    if (e != 0) return e;
    in.ctas_a_split = (int64_t)a->batch * a->n_kv_heads * blocks;
    in.keys = a->max_seqlen > 0 && a->max_seqlen < a->capacity ? a->max_seqlen : a->capacity;
    in.sms = d.sms;
    in.dram_bytes_per_s = d.dram_bytes_per_s;
    in.paged = a->block_table != NULL;
    *splits = sf_decode_split_rule(&in);
    return 0;
}

extern "C" int sf_decode_attention_cuda(const sf_decode_attention_args *a, int splits, void *workspace,
                                        unsigned *counters, void *stream)
{
    if (!valid(a) || splits < 1 || splits > SF_DECODE_MAX_SPLITS || (splits > 1 && !workspace))
        return (int)cudaErrorInvalidValue;
    Params p = {};
    p.q = (const char *)a->q;
    p.k = (const char *)a->k;
    p.v = (const char *)a->v;
    p.out = (char *)a->out;
    p.lse = a->lse;
    p.seqlens = a->seqlens;
    p.block_table = a->block_table;
    p.bt_stride = a->bt_stride;
    for (int j = 0; j < 3; j++) {
        p.qs[j] = a->q_stride[j];
        p.ks[j] = a->k_stride[j];
        p.vs[j] = a->v_stride[j];
        p.os[j] = a->o_stride[j];
    }
    p.n_q = a->n_q;
    p.n_heads = a->n_heads;
    p.n_kv_heads = a->n_kv_heads;
    p.group = a->n_heads / a->n_kv_heads;
    p.rows = p.group * a->n_q;
    p.capacity = a->capacity;
    p.paged = a->block_table != NULL;
    p.page_shift = 0;
    while (p.paged && (1 << p.page_shift) < a->page_size) p.page_shift++;
    p.n_pages = a->n_pages;
    p.splits = splits;
    p.scale = a->scale;
    p.causal = a->causal != 0;
    const int64_t n_rows = (int64_t)a->batch * a->n_heads * a->n_q;
    if (splits > 1) {
        p.ws_o = (float *)workspace;
        p.ws_ml = (float2 *)((char *)workspace + (size_t)n_rows * splits * a->head_dim * sizeof(float));
    }
    cudaStream_t s = (cudaStream_t)stream;
    return dispatch(a, [&](auto k) {
        using K = decltype(k);
        p.step = K::STEP;
        p.row_blocks = row_blocks(a, K::ROWS);
        const int64_t blocks = (int64_t)a->batch * a->n_kv_heads * splits * p.row_blocks;
        if (blocks > 0x7fffffff || n_rows * (a->head_dim / kVec) > (int64_t)0x7fffffff * kCombineThreads)
            return (int)cudaErrorInvalidValue;
        /* the kernel merges its splits where there is a counter for each (sequence, kv head,
         * row block); else the combine kernel does */
        const bool merges = K::MERGES && splits > 1 && counters &&
                            (int64_t)a->batch * a->n_kv_heads * p.row_blocks <= SF_DECODE_COUNTERS;
        p.counters = merges ? counters : nullptr;
        int e = K::launch(p, (unsigned)blocks, s);
        return e != 0 || splits == 1 || merges ? e : K::combine(p, n_rows, s);
    });
}
