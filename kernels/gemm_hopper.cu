/* Hopper (sm_90a) GEMM with fused epilogues: C = epi(A·Bᵀ (+ bias)), A [M, K] and B [N, K]
 * row-major (B is a Linear weight), f16/bf16 out, fp32 accumulation. A and B are f16/bf16 (C's
 * type) or e4m3; e4m3 products are scaled by a_scale·b_scale (each per tensor, or per row of A
 * and of B) on the accumulators, before the rest of the epilogue. The SwiGLU epilogue of e4m3
 * inputs may write its output in e4m3 too, divided by a scale fixed ahead (out_scale): the next
 * GEMM's input, with no pass over it in between.
 *
 * Design (a persistent, warp-specialised kernel, one CTA per SM):
 *   - CTA tile BM×BN×BK = 128×BN×(128 bytes: 64 f16/bf16, 128 e4m3), BN ∈ {128, 176, 208,
 *     224, 256} (widths that fill the
 *     132 SMs with whole waves at the FFN shapes); 384 threads = 3 warpgroups.
 *   - Warpgroup 0 is the producer: after setmaxnreg.dec one thread issues TMA loads
 *     (cp.async.bulk.tensor, 128-byte swizzle) of the A and B tiles into a ring of
 *     kStages shared-memory stages; each stage has a "full" mbarrier (TMA transaction bytes)
 *     and an "empty" mbarrier (one arrival from each of the 8 consumer warps).
 *   - Warpgroups 1 and 2 are consumers (setmaxnreg.inc): each owns 64 rows of the tile and
 *     issues wgmma.m64nBNk16 (k32 for e4m3) from shared-memory descriptors, keeping one wgmma group in flight
 *     (wait_group 1) so the tensor cores never wait for the issue of the next stage.
 *   - Tiles are walked persistently (tile = blockIdx.x, += gridDim.x) in groups of `group`
 *     cluster rows so that the CTAs running together share A and B panels in L2; the producer runs
 *     ahead into the next tile while the consumers run the epilogue of this one.
 *   - The epilogue works on the accumulator registers: + bias, activation, + residual, or the
 *     rotary embedding of a QKV projection (rope_acc). By default it stages 64-row output boxes
 *     in shared memory (see box_cols) and stores them with TMA, overlapping the next tile's main
 *     loop (epilogue_store = 2). The direct form (1) stores two adjacent columns (4 bytes) per
 *     thread per row. For SWIGLU the B rows are
 *     interleaved in blocks of 8 (gate, up, gate, up, ...; see gemm_hopper.h), so accumulator column
 *     block 2p holds the gate and 2p+1 the up values of the same 8 output columns in the same
 *     thread: h = silu(g)·u is formed in registers and only h [M, N/2] is written.
 *   - Clusters of 2 CTAs along M (cluster_m = 2, the default once M > 128) share each B tile:
 *     each CTA loads half of it and TMA multicasts it into both (see gemm_epi_kernel).
 *   - One schedule, cooperative: both consumer warpgroups on one tile, the epilogue in series
 *     with the main loop (its TMA stores overlap the next tile's). A ping-pong schedule (each
 *     warpgroup on its own 128×128 tiles, one's epilogue under the other's main loop) was
 *     removed in commit 594439b: timed in steady state it was never ahead (kernels/NOTES-ffn.md).
 * Tails: M any (TMA zero-fills rows past M, stores are masked); N and K multiples of 64 (e4m3: the
 * last K tile may be half past K, which TMA fills with zeros). */
#include <cuda_fp8.h>

#include "common.cuh"
#include "gemm_hopper.h"
#include "hopper.cuh"
#include "wgmma.cuh"

namespace {

constexpr int BM = 128;
constexpr int kRowBytes = 128;       /* of a K tile's row: one 128-byte swizzle row */
/* K elements of a tile: 64 f16/bf16 or 128 e4m3; one wgmma takes 32 bytes of each row */
template <typename TI> constexpr int bk() { return kRowBytes / (int)sizeof(TI); }
constexpr int kConsumers = 2;        /* consumer warpgroups, 64 rows of the tile each */
constexpr int kThreads = 128 * (1 + kConsumers);
/* Default rasterisation group, in cluster rows (CM M-blocks each): 8 pairs = 16 M-blocks, an A
 * panel of 16 MB at K = 4096. On the H200 (ncu, 4096 × 22016 × 4096) 16 pairs read 922 MB from
 * DRAM and 8 pairs 740 MB, 1% faster alone; in steady state fused SwiGLU ran 0.4–1.3% faster,
 * fused GELU 0–1.3% slower, within its spread (kernels/NOTES-ffn.md, 2026-12-02). */
constexpr int kGroupM = 8;
constexpr int kProducerRegs = 40, kConsumerRegs = 232; /* 128·40 + 256·232 <= 65536 */

/* Output columns of a tile (SWIGLU writes one h column per gate/up pair of B rows). */
constexpr int out_cols(int bn, int epi) { return epi == SF_EPI_SWIGLU ? bn / 2 : bn; }
constexpr int odd_part(int x) { return x % 2 ? x : odd_part(x / 2); }
/* Width of the 64-row boxes that the staged epilogue stores, for output elements of OB bytes (2,
 * or 1 for e4m3): 128-byte rows (64 or 128 columns, stored with the 128-byte swizzle) when they
 * divide the tile's output row; otherwise rows of 16·(the odd part of OC·OB/16) bytes, plain. An
 * odd multiple of 16 bytes as the row pitch puts the 8 rows one warp store touches in 8
 * different 4-bank groups (no conflicts). 2 bytes: 112 → 2 × 56, 224 → 4 × 56, 88 and 176 → 88,
 * 104 and 208 → 104; 1 byte: 64 → 4 × 16, 112 → 112. The TMA takes rows of whole 16-byte units
 * only, so e4m3 needs OC a multiple of 16 (fp8_out_width). */
constexpr int box_cols(int oc, int ob = 2)
{
    return oc * ob % 128 == 0 ? 128 / ob : 16 / ob * odd_part(oc * ob / 16);
}
/* the tile widths whose SwiGLU output rows are whole 16-byte units in e4m3 */
constexpr bool fp8_out_width(int bn) { return bn / 2 % 16 == 0; }

template <int BN, int EPI, bool TS, int OB = 2> struct tile_cfg {
    static constexpr int kStages = BN == 128 ? 6 : 4; /* 172–196 KB of stages */
    static constexpr int kABytes = BM * kRowBytes;
    static constexpr int kBBytes = BN * kRowBytes;   /* a multiple of 1024 for BN % 8 == 0 */
    static constexpr int kStageBytes = kABytes + kBBytes;
    static constexpr int kOutCols = out_cols(BN, EPI);
    static constexpr int kBoxCols = box_cols(kOutCols, OB);
    static constexpr int kBoxBytes = 64 * kBoxCols * OB; /* one 64-row output box for the TMA store */
    static constexpr int kStaging = TS ? kConsumers * 2 * kBoxBytes : 0; /* two boxes per consumer */
    /* 1024 for aligning the base (128-byte swizzle works on 1024-byte aligned tiles); the
     * mbarriers: full and empty per stage */
    static constexpr int kSmem = 1024 + kStages * kStageBytes + kStaging + 2 * kStages * 8;
    static_assert(kSmem <= 227 * 1024, "shared memory over the sm_90 limit");
    static_assert(kOutCols % kBoxCols == 0 && kBoxCols * OB % 16 == 0 && kBoxCols <= 256, "box width");
};

using namespace sf_hopper;

/* SF_EPI_ROPE's parameters (gemm_hopper.h), passed by value to every cooperative kernel. */
struct rope_params {
    int cols, seq, pos_offset;
    float inv_freq[SF_GEMM_ROPE_HEAD_DIM / 2];
};


/* ---- kernel ---------------------------------------------------------------------------- */

/* Tile t of the rasterisation: groups of `group` rows of units (cluster rows), each group walked
 * M-fastest across all N-blocks, so the CTAs running at once share A and B panels in L2. */
__device__ __forceinline__ void tile_coords(int t, int m_tiles, int n_tiles, int group, int &mb, int &nb)
{
    const int per_group = group * n_tiles;
    const int g = t / per_group, first_m = g * group;
    const int gm = min(m_tiles - first_m, group);
    const int r = t - g * per_group;
    mb = first_m + r % gm;
    nb = r / gm;
}

/* Epilogue values of output column block `ob` (8 columns): v[0..1] row r, v[2..3] row r + 8. */
template <int BN, int EPI, typename T>
__device__ __forceinline__ void epilogue_block(const float (&acc)[BN / 2], const T *bias, int N, int n0, int quad,
                                               int ob, float (&v)[4])
{
    using tr = sf::dtype_traits<T>;
    if (EPI == SF_EPI_SWIGLU) {
        float g[4] = {acc[8 * ob], acc[8 * ob + 1], acc[8 * ob + 2], acc[8 * ob + 3]};
        float u[4] = {acc[8 * ob + 4], acc[8 * ob + 5], acc[8 * ob + 6], acc[8 * ob + 7]};
        const int col = n0 + ob * 16 + quad * 2;
        if (bias && n0 + ob * 16 < N) {
            float2 bg = tr::unpack2(*reinterpret_cast<const uint32_t *>(bias + col));
            float2 bu = tr::unpack2(*reinterpret_cast<const uint32_t *>(bias + col + 8));
            g[0] += bg.x; g[1] += bg.y; g[2] += bg.x; g[3] += bg.y;
            u[0] += bu.x; u[1] += bu.y; u[2] += bu.x; u[3] += bu.y;
        }
#pragma unroll
        for (int e = 0; e < 4; e++) v[e] = sf::silu(g[e]) * u[e];
    } else {
#pragma unroll
        for (int e = 0; e < 4; e++) v[e] = acc[4 * ob + e];
        const int col = n0 + ob * 8 + quad * 2;
        if (bias && n0 + ob * 8 < N) {
            float2 b = tr::unpack2(*reinterpret_cast<const uint32_t *>(bias + col));
            v[0] += b.x; v[1] += b.y; v[2] += b.x; v[3] += b.y;
        }
#pragma unroll
        for (int e = 0; e < 4; e++) {
            if (EPI == SF_EPI_GELU_TANH) v[e] = sf::gelu_tanh(v[e]);
            if (EPI == SF_EPI_GELU_ERF) v[e] = sf::gelu_erf(v[e]);
        }
    }
}

/* cos and sin of a (radians) for the rotary embedding: a reduced to [-π, π] by a two-constant
 * Cody–Waite step (2π rounded to fp32, then the remainder; exact enough for |a| up to the 2^24
 * positions allowed), then the hardware's sin and cos (absolute error about 2^-21 there). About
 * a quarter of sincosf's instructions; the error, under 1e-6, is far below the output's rounding. */
__device__ __forceinline__ void rope_sincos(float a, float &s, float &c)
{
    const float k = rintf(a * 0.159154943091895336f);   /* a / 2π */
    float r = fmaf(-k, 6.28318548202514648f, a);          /* 2π rounded to fp32 */
    r = fmaf(-k, -1.74845553146951715e-7f, r);            /* 2π minus that */
    __sincosf(r, &s, &c);
}

/* SF_EPI_ROPE, on the accumulators before the store: + bias on every column, then each head of
 * 128 columns below rope.cols turns its pairs (i, i + 64) by the angle of the row's position,
 * formed as the rope kernel forms it (kernels/norm_rope.cu), with rope_sincos. Tiles are 128 or 256 wide and
 * start at multiples of their width, so a head never straddles two tiles, and both members of
 * a pair sit in this thread at the same register position: column 8j + 2·quad + e of the head
 * in accumulator block j < 8, its partner 64 columns on in block j + 8. row: this thread's first
 * row (the second is row + 8). */
template <int BN, typename T>
__device__ __forceinline__ void rope_acc(float (&acc)[BN / 2], const T *bias, const rope_params &rope, int N,
                                         int n0, int row, int quad)
{
    using tr = sf::dtype_traits<T>;
    constexpr int kHead = SF_GEMM_ROPE_HEAD_DIM, kHeads = BN / kHead, kHalfBlocks = kHead / 16;
    static_assert(BN % kHead == 0, "RoPE tiles hold whole heads");
    if (bias) {
#pragma unroll
        for (int ob = 0; ob < BN / 8; ob++) {
            if (n0 + ob * 8 >= N) break;
            const float2 b = tr::unpack2(*reinterpret_cast<const uint32_t *>(bias + n0 + ob * 8 + quad * 2));
            acc[4 * ob] += b.x; acc[4 * ob + 1] += b.y; acc[4 * ob + 2] += b.x; acc[4 * ob + 3] += b.y;
        }
    }
    if (n0 >= rope.cols) return;
    const float p0 = (float)(rope.pos_offset + row % rope.seq), p1 = (float)(rope.pos_offset + (row + 8) % rope.seq);
#pragma unroll
    for (int j = 0; j < kHalfBlocks; j++) {
#pragma unroll
        for (int e = 0; e < 2; e++) {
            const float f = rope.inv_freq[j * 8 + quad * 2 + e];
            float s0, c0, s1, c1;
            rope_sincos(__fmul_rn(p0, f), s0, c0);
            rope_sincos(__fmul_rn(p1, f), s1, c1);
#pragma unroll
            for (int h = 0; h < kHeads; h++) {
                if (n0 + h * kHead >= rope.cols) break;
                const int lo = 4 * (2 * kHalfBlocks * h + j) + e, hi = lo + 4 * kHalfBlocks;
                float x1 = acc[lo], x2 = acc[hi];
                acc[lo] = x1 * c0 - x2 * s0;
                acc[hi] = x2 * c0 + x1 * s0;
                x1 = acc[lo + 2];
                x2 = acc[hi + 2];
                acc[lo + 2] = x1 * c1 - x2 * s1;
                acc[hi + 2] = x2 * c1 + x1 * s1;
            }
        }
    }
}

/* e4m3 products: the accumulators times a_scale·b_scale, before bias and activation. Each scale
 * is one f32 (per tensor) or one a row: a_scale [M] (a_rows), b_scale [N] in B's row order
 * (b_rows). row: this thread's first row (the second is row + 8); columns past N are never
 * stored, so not scaled. */
template <int BN>
__device__ __forceinline__ void scale_acc(float (&acc)[BN / 2], const float *a_scale, const float *b_scale,
                                          bool a_rows, bool b_rows, int row, int M, int n0, int N, int quad)
{
    if (!a_rows && !b_rows) {
        const float sc = __ldg(a_scale) * __ldg(b_scale);
#pragma unroll
        for (int i = 0; i < BN / 2; i++) acc[i] *= sc;
        return;
    }
    const float a0 = !a_rows ? __ldg(a_scale) : row < M ? __ldg(a_scale + row) : 0.f;
    const float a1 = !a_rows ? a0 : row + 8 < M ? __ldg(a_scale + row + 8) : 0.f;
#pragma unroll
    for (int ob = 0; ob < BN / 8; ob++) {
        if (n0 + ob * 8 >= N) break;
        const int col = n0 + ob * 8 + quad * 2;
        const float b0 = b_rows ? __ldg(b_scale + col) : __ldg(b_scale), b1 = b_rows ? __ldg(b_scale + col + 1) : b0;
        acc[4 * ob] *= a0 * b0;
        acc[4 * ob + 1] *= a0 * b1;
        acc[4 * ob + 2] *= a1 * b0;
        acc[4 * ob + 3] *= a1 * b1;
    }
}

/* Direct epilogue: each thread stores its two adjacent columns (4 bytes) per row straight from
 * registers. row0: this thread's first row (the second is row0 + 8); n0: the tile's first B row;
 * quad: lane % 4, which selects columns 2·quad, 2·quad + 1 of every 8-column block. */
template <int BN, int EPI, typename T>
__device__ __forceinline__ void epilogue(const float (&acc)[BN / 2], T *C, const T *R, const T *bias,
                                         int M, int N, int64_t ldc, int64_t ldr, int row0, int n0,
                                         int quad)
{
    using tr = sf::dtype_traits<T>;
    constexpr bool swiglu = EPI == SF_EPI_SWIGLU;
    constexpr int span = swiglu ? 16 : 8; /* B rows behind one 8-column output block */
    const bool in0 = row0 < M, in1 = row0 + 8 < M;
    T *c0 = C + (int64_t)row0 * ldc, *c1 = C + (int64_t)(row0 + 8) * ldc;
    const T *r0 = EPI == SF_EPI_ADD ? R + (int64_t)row0 * ldr : R;
    const T *r1 = EPI == SF_EPI_ADD ? R + (int64_t)(row0 + 8) * ldr : R;
    const int out0 = swiglu ? n0 / 2 : n0;
#pragma unroll
    for (int ob = 0; ob < BN / span; ob++) {
        if (n0 + ob * span >= N) break;
        float v[4];
        epilogue_block<BN, EPI, T>(acc, bias, N, n0, quad, ob, v);
        const int col = out0 + ob * 8 + quad * 2;
        if (EPI == SF_EPI_ADD) {
            /* R may be C: each element is read, then written, by this thread alone */
            if (in0) {
                float2 r = tr::unpack2(*reinterpret_cast<const uint32_t *>(r0 + col));
                v[0] += r.x; v[1] += r.y;
            }
            if (in1) {
                float2 r = tr::unpack2(*reinterpret_cast<const uint32_t *>(r1 + col));
                v[2] += r.x; v[3] += r.y;
            }
        }
        if (in0) *reinterpret_cast<uint32_t *>(c0 + col) = tr::pack2(v[0], v[1]);
        if (in1) *reinterpret_cast<uint32_t *>(c1 + col) = tr::pack2(v[2], v[3]);
    }
}

/* Staged epilogue (TS): the warpgroup's 64-row slab goes out in 64-row boxes of kBoxCols columns
 * (see box_cols). Each box is written to shared memory, in the TMA's 128-byte swizzle for boxes
 * of 128-byte rows (16-byte chunk index XOR row % 8) and in plain rows otherwise, either way
 * without bank conflicts; then one thread stores it with cp.async.bulk.tensor, which clips rows
 * past M and columns past the output width. Two box buffers alternate, so filling one overlaps
 * the store of the other; the stores also overlap the next tile's main loop. Replaces 4-byte
 * global stores scattered over 8 rows per warp instruction. ADD reads its residual R [M, N] (row
 * stride ldr) from global memory, each element by the thread that writes it and before the
 * box's store is issued, so R may be C itself. TO: C's type, T or e4m3; e4m3 values are v /
 * out_scale[0] rounded to nearest even and saturated (as quantize writes them), two a 2-byte
 * shared-memory store. */
template <int BN, int EPI, typename T, typename TO>
__device__ __forceinline__ void epilogue_staged(const float (&acc)[BN / 2], const CUtensorMap *map_c,
                                                uint32_t bufs, int &box_count, const T *bias, int N, int n0,
                                                int row0, int wrow, int quad, int tid, int bar_id,
                                                const T *R, int64_t ldr, int M, const float *out_scale)
{
    using tr = sf::dtype_traits<T>;
    constexpr int OB = (int)sizeof(TO);
    using cfg = tile_cfg<BN, EPI, true, OB>;
    constexpr int BW = cfg::kBoxCols, JB = BW / 8, NB = cfg::kOutCols / BW;
    constexpr bool kSwizzled = BW * OB == 128; /* 128-byte rows, 128-byte swizzle */
    constexpr uint32_t pitch = BW * OB;
    const int n_out = EPI == SF_EPI_SWIGLU ? N / 2 : N, out0 = EPI == SF_EPI_SWIGLU ? n0 / 2 : n0;
    const uint32_t swz = kSwizzled ? (uint32_t)(wrow & 7) : 0u; /* rows wrow and wrow + 8 share it */
    float os = 1.f;
    if constexpr (OB == 1) os = __ldg(out_scale);
#pragma unroll
    for (int b = 0; b < NB; b++) {
        if (out0 + b * BW >= n_out) break;
        /* alternate across tiles too: a tile may have a single box */
        const uint32_t buf = bufs + (uint32_t)(box_count++ & 1) * cfg::kBoxBytes;
        if (tid == 0) bulk_wait_read<1>(); /* the store that last used this buffer has read it */
        named_bar_sync(bar_id, 128);
#pragma unroll
        for (int jj = 0; jj < JB; jj++) {
            float v[4];
            epilogue_block<BN, EPI, T>(acc, bias, N, n0, quad, b * JB + jj, v);
            if constexpr (EPI == SF_EPI_ADD) {
                /* a box may reach past N (176 does not divide 512): the store clips those
                 * columns, and their residual, past the row's end, is not read */
                const int64_t col = out0 + b * BW + jj * 8 + quad * 2, r0 = row0 + wrow;
                if (col < n_out && r0 < M) {
                    const float2 r = tr::unpack2(*reinterpret_cast<const uint32_t *>(R + r0 * ldr + col));
                    v[0] += r.x; v[1] += r.y;
                }
                if (col < n_out && r0 + 8 < M) {
                    const float2 r = tr::unpack2(*reinterpret_cast<const uint32_t *>(R + (r0 + 8) * ldr + col));
                    v[2] += r.x; v[3] += r.y;
                }
            }
            /* this thread's 2 columns of block jj: byte jj·8·OB + quad·2·OB of the row, whose
             * 16-byte unit moves by the swizzle */
            const uint32_t byte = (uint32_t)(jj * 8 + quad * 2) * OB;
            const uint32_t off = ((byte >> 4 ^ swz) << 4) | (byte & 15);
            if constexpr (OB == 1) {
                st_shared_u16(buf + wrow * pitch + off, __nv_cvt_float2_to_fp8x2(make_float2(v[0] / os, v[1] / os),
                                                                                 __NV_SATFINITE, __NV_E4M3));
                st_shared_u16(buf + (wrow + 8) * pitch + off,
                              __nv_cvt_float2_to_fp8x2(make_float2(v[2] / os, v[3] / os), __NV_SATFINITE, __NV_E4M3));
            } else {
                st_shared_u32(buf + wrow * pitch + off, tr::pack2(v[0], v[1]));
                st_shared_u32(buf + (wrow + 8) * pitch + off, tr::pack2(v[2], v[3]));
            }
        }
        fence_proxy_async();
        named_bar_sync(bar_id, 128);
        if (tid == 0) {
            tma_store_2d(map_c, buf, out0 + b * BW, row0);
            bulk_commit();
        }
    }
}

/* The producer warpgroup: one thread loads the A and B tiles of every k-block
 * of the CTA's tiles, in order, into the stage ring. With CM = 2 each CTA loads its own A tile
 * and half of the B tile, multicast into both CTAs of the cluster. */
template <int BN, int CM, int BK, typename cfg>
__device__ __forceinline__ void producer(const CUtensorMap *map_a, const CUtensorMap *map_b, uint32_t sA,
                                         uint32_t sB, uint32_t full0, uint32_t empty0, uint32_t rank, int first,
                                         int step, int tiles, int m_groups, int n_tiles, int k_tiles, int group)
{
    constexpr int S = cfg::kStages;
    asm volatile("prefetch.tensormap [%0];" ::"l"((uint64_t)map_a) : "memory");
    asm volatile("prefetch.tensormap [%0];" ::"l"((uint64_t)map_b) : "memory");
    int s = 0;
    uint32_t phase = 0;
    for (int t = first; t < tiles; t += step) {
        int mg, nb;
        tile_coords(t, m_groups, n_tiles, group, mg, nb);
        const int mb = mg * CM + (int)rank; /* past m_tiles: TMA fills zeros, stores masked */
        for (int kb = 0; kb < k_tiles; kb++) {
            mbar_wait(empty0 + 8 * s, phase ^ 1); /* first pass: returns at once */
            mbar_expect_tx(full0 + 8 * s, cfg::kStageBytes);
            tma_load_2d(sA + s * cfg::kABytes, map_a, full0 + 8 * s, kb * BK, mb * BM);
            if (CM == 1)
                tma_load_2d(sB + s * cfg::kBBytes, map_b, full0 + 8 * s, kb * BK, nb * BN);
            else
                tma_load_2d_multicast(sB + s * cfg::kBBytes + rank * (cfg::kBBytes / CM), map_b, full0 + 8 * s,
                                      kb * BK, nb * BN + (int)rank * (BN / CM), (uint16_t)((1u << CM) - 1));
            if (++s == S) { s = 0; phase ^= 1; }
        }
    }
}

/* A consumer warp's release of a stage: one arrival on the empty barrier of every CTA of the
 * cluster (each CTA's stage holds the B half multicast by its peer). */
template <int CM> __device__ __forceinline__ void release_stage(uint32_t empty0, int stage, int lane)
{
    if (lane != 0) return;
    if (CM == 1) {
        mbar_arrive(empty0 + 8 * stage);
    } else {
#pragma unroll
        for (int q = 0; q < CM; q++) mbar_arrive_cluster(empty0 + 8 * stage, (uint32_t)q);
    }
}

/* The kernel. CM = CTAs per cluster along M (1 or 2). With CM = 2 the
 * two CTAs of a cluster take M-blocks 2g and 2g+1 of the same N-block: each loads its own A tile
 * and one half of the shared B tile, multicast into both CTAs, so each CTA pulls 16 + BN·64
 * bytes from L2 per k-step instead of 16 KB + 2·BN·64 (a third less for BN = 256). A stage is
 * then free only when the consumers of both CTAs are done with it: every consumer warp arrives
 * on the empty barrier of both CTAs. TI: A's and B's type (T, or e4m3 with a_scale and b_scale).
 * TO: C's type (T, or e4m3 with out_scale; staged epilogue only). */
template <int BN, int EPI, typename T, typename TI, typename TO, int CM, bool TS>
__global__ void __launch_bounds__(kThreads, 1)
gemm_epi_kernel(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_b,
                const __grid_constant__ CUtensorMap map_c, T *C, const T *R, const T *bias, int M, int N, int K,
                int64_t ldc, int64_t ldr, int group, const __grid_constant__ rope_params rope,
                const float *a_scale, const float *b_scale, int a_scale_rows, int b_scale_rows,
                const float *out_scale)
{
    using cfg = tile_cfg<BN, EPI, TS, (int)sizeof(TO)>;
    static_assert(sizeof(TO) == sizeof(T) || TS, "an e4m3 C is stored by the staged epilogue");
    constexpr int S = cfg::kStages, BK = bk<TI>();
    constexpr bool kFp8 = sizeof(TI) == 1;
    extern __shared__ uint8_t smem_raw[];
    const uint32_t base = (smem_u32(smem_raw) + 1023u) & ~1023u;
    const uint32_t sA = base, sB = base + S * cfg::kABytes;
    const uint32_t staging = base + S * cfg::kStageBytes; /* TS only */
    const uint32_t full0 = staging + cfg::kStaging, empty0 = full0 + 8 * S;

    const uint32_t rank = CM > 1 ? cluster_ctarank() : 0;
    const int m_tiles = (M + BM - 1) / BM, n_tiles = (N + BN - 1) / BN;
    const int m_groups = (m_tiles + CM - 1) / CM; /* a cluster's unit of work: CM M-blocks × 1 N-block */
    const int tiles = m_groups * n_tiles, k_tiles = (K + BK - 1) / BK;
    const int first = blockIdx.x / CM, step = gridDim.x / CM;
    const int wg = threadIdx.x / 128, tid = threadIdx.x % 128;

    if (threadIdx.x == 0) {
        for (int s = 0; s < S; s++) {
            mbar_init(full0 + 8 * s, 1);
            mbar_init(empty0 + 8 * s, kConsumers * 4 * CM);
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    if (CM > 1) cluster_sync(); /* peers' barriers exist before anyone signals them */
    else __syncthreads();
    sf::grid_dep_wait(); /* the previous kernel's outputs (A, R) are complete; see common.cuh */
    sf::grid_dep_launch();

    if (wg == 0) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(kProducerRegs));
        if (tid == 0)
            producer<BN, CM, BK, cfg>(&map_a, &map_b, sA, sB, full0, empty0, rank, first, step, tiles, m_groups,
                                  n_tiles, k_tiles, group);
    } else {
        asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(kConsumerRegs));
        const int c = wg - 1, warp = tid / 32, lane = tid % 32;
        int s = 0, box_count = 0;
        uint32_t phase = 0;
        float acc[BN / 2];
        for (int t = first; t < tiles; t += step) {
            int mg, nb;
            tile_coords(t, m_groups, n_tiles, group, mg, nb);
            const int mb = mg * CM + (int)rank;
#pragma unroll
            for (int i = 0; i < BN / 2; i++) acc[i] = 0.0f;
            fence_acc(acc);
            int prev = 0;
            for (int kb = 0; kb < k_tiles; kb++) {
                mbar_wait(full0 + 8 * s, phase);
                const uint64_t da = smem_desc(sA + s * cfg::kABytes + c * 64 * kRowBytes);
                const uint64_t db = smem_desc(sB + s * cfg::kBBytes);
                wgmma_fence();
#pragma unroll
                for (int k = 0; k < kRowBytes / 32; k++) wgmma_ss<BN, TI>(acc, da + 2 * k, db + 2 * k, 1);
                wgmma_commit();
                if (kb > 0) { /* the previous stage's wgmma group is done: hand it back */
                    wgmma_wait<1>();
                    release_stage<CM>(empty0, prev, lane);
                }
                prev = s;
                if (++s == S) { s = 0; phase ^= 1; }
            }
            wgmma_wait<0>();
            fence_acc(acc);
            release_stage<CM>(empty0, prev, lane);
            if constexpr (kFp8)
                scale_acc<BN>(acc, a_scale, b_scale, a_scale_rows != 0, b_scale_rows != 0,
                              mb * BM + c * 64 + warp * 16 + lane / 4, M, nb * BN, N, lane % 4);
            const T *ebias = bias;
            if constexpr (EPI == SF_EPI_ROPE) { /* the bias goes in before the rotation */
                rope_acc<BN, T>(acc, bias, rope, N, nb * BN, mb * BM + c * 64 + warp * 16 + lane / 4, lane % 4);
                ebias = nullptr;
            }
            if constexpr (TS)
                epilogue_staged<BN, EPI, T, TO>(acc, &map_c, staging + c * 2 * cfg::kBoxBytes, box_count, ebias, N,
                                                nb * BN, mb * BM + c * 64, warp * 16 + lane / 4, lane % 4, tid, 1 + c,
                                                R, ldr, M, out_scale);
            else
                epilogue<BN, EPI, T>(acc, C, R, ebias, M, N, ldc, ldr, mb * BM + c * 64 + warp * 16 + lane / 4,
                                     nb * BN, lane % 4);
        }
        if (TS && tid == 0) bulk_wait_all();
    }
    /* a CTA must not leave while its peer may still multicast into it or arrive on its barriers */
    if (CM > 1) cluster_sync();
}

/* ---- host side ------------------------------------------------------------------------- */


/* rows × cols (cols contiguous, row stride ld elements) of f16, bf16 or e4m3, boxes of
 * box_rows × box_cols, with the 128-byte swizzle (box rows of 128 bytes) or none. */
bool make_tensor_map(CUtensorMap *map, sf_dtype dtype, const void *ptr, int64_t rows, int64_t cols, int64_t ld,
                     int box_rows, int box_cols, bool swizzle = true)
{
    PFN_cuTensorMapEncodeTiled_v12000 encode = tensor_map_encoder();
    if (!encode) return false;
    const CUtensorMapDataType type = dtype == SF_BF16   ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16
                                     : dtype == SF_E4M3 ? CU_TENSOR_MAP_DATA_TYPE_UINT8
                                                        : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
    cuuint64_t dims[2] = {(cuuint64_t)cols, (cuuint64_t)rows};
    cuuint64_t strides[1] = {(cuuint64_t)ld * (dtype == SF_E4M3 ? 1 : 2)};
    cuuint32_t box[2] = {(cuuint32_t)box_cols, (cuuint32_t)box_rows};
    cuuint32_t elem_strides[2] = {1, 1};
    CUresult r = encode(map, type, 2,
                        const_cast<void *>(ptr), dims, strides, box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                        swizzle ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_NONE,
                        CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    return r == CUDA_SUCCESS;
}

struct launch_params {
    CUtensorMap map_a, map_b, map_c;
    void *C;
    const void *R, *bias;
    int M, N, K;
    int64_t ldc, ldr;
    int group; /* rasterisation group in cluster rows */
    rope_params rope;
    const float *a_scale, *b_scale; /* e4m3 inputs only */
    int a_scale_rows, b_scale_rows;
    const float *out_scale;         /* e4m3 C only */
    int sms, dev;
    cudaStream_t stream;
};

/* Per kernel and device: the dynamic shared memory limit raised once, and how many clusters
 * of the kernel fit on the device at once (the persistent grid). */
struct kernel_slot {
    uint64_t configured;
    int max_clusters[64];
};

template <typename... KArgs, typename... Args>
int launch_on(kernel_slot &slot, void (*kernel)(KArgs...), int smem, int cm, int bn, const launch_params &p,
              Args... args)
{
    if (!(slot.configured >> p.dev & 1)) {
        cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        if (e != cudaSuccess) return (int)e;
        int n = p.sms / cm;
        if (cm > 1) {
            cudaLaunchConfig_t lc = {};
            cudaLaunchAttribute attr[1];
            attr[0].id = cudaLaunchAttributeClusterDimension;
            attr[0].val.clusterDim.x = cm;
            attr[0].val.clusterDim.y = 1;
            attr[0].val.clusterDim.z = 1;
            lc.gridDim = dim3(p.sms / cm * cm);
            lc.blockDim = dim3(kThreads);
            lc.dynamicSmemBytes = smem;
            lc.attrs = attr;
            lc.numAttrs = 1;
            if ((e = cudaOccupancyMaxActiveClusters(&n, kernel, &lc)) != cudaSuccess) return (int)e;
            if (n < 1) return (int)cudaErrorNotSupported;
        }
        slot.max_clusters[p.dev] = n;
        slot.configured |= (uint64_t)1 << p.dev;
    }
    const int64_t units = (int64_t)((p.M + BM * cm - 1) / (BM * cm)) * ((p.N + bn - 1) / bn);
    const int clusters = (int)(units < slot.max_clusters[p.dev] ? units : slot.max_clusters[p.dev]);
    return (int)sf::launch(kernel, dim3(clusters * cm), dim3(kThreads), smem, p.stream, (unsigned)cm, args...);
}

template <int BN, int EPI, typename T, typename TI, int CM, bool TS, typename TO = T> int launch(const launch_params &p)
{
    static kernel_slot slot;
    return launch_on(slot, gemm_epi_kernel<BN, EPI, T, TI, TO, CM, TS>, tile_cfg<BN, EPI, TS, (int)sizeof(TO)>::kSmem,
                     CM, BN, p, p.map_a, p.map_b, p.map_c, (T *)p.C, (const T *)p.R, (const T *)p.bias, p.M, p.N, p.K,
                     p.ldc, p.ldr, p.group, p.rope, p.a_scale, p.b_scale, p.a_scale_rows, p.b_scale_rows,
                     p.out_scale);
}

/* The widths other than 128 and 256 exist only with the staged epilogue (TS); ROPE needs tiles of
 * whole heads, so 128 and 256 only, and the staged epilogue (the direct one would spill). An e4m3
 * C (p.out_scale) exists for SWIGLU over e4m3 inputs, staged, at the widths fp8_out_width takes. */
template <int BN, typename T, typename TI, int CM, bool TS> int launch_epi(int epi, const launch_params &p)
{
    constexpr bool kFp8 = sizeof(TI) == 1; /* e4m3: the epilogues an FP8 op asks for (no GELU) */
    if (p.out_scale) {
        if constexpr (kFp8 && TS && fp8_out_width(BN))
            if (epi == SF_EPI_SWIGLU) return launch<BN, SF_EPI_SWIGLU, T, TI, CM, TS, __nv_fp8_e4m3>(p);
        return (int)cudaErrorInvalidValue;
    }
    switch (epi) {
    case SF_EPI_NONE: return launch<BN, SF_EPI_NONE, T, TI, CM, TS>(p);
    case SF_EPI_GELU_TANH:
        if constexpr (!kFp8) return launch<BN, SF_EPI_GELU_TANH, T, TI, CM, TS>(p);
        else return (int)cudaErrorInvalidValue;
    case SF_EPI_GELU_ERF:
        if constexpr (!kFp8) return launch<BN, SF_EPI_GELU_ERF, T, TI, CM, TS>(p);
        else return (int)cudaErrorInvalidValue;
    case SF_EPI_SWIGLU: return launch<BN, SF_EPI_SWIGLU, T, TI, CM, TS>(p);
    case SF_EPI_ADD: return launch<BN, SF_EPI_ADD, T, TI, CM, TS>(p);
    case SF_EPI_ROPE:
        if constexpr ((BN == 128 || BN == 256) && TS) return launch<BN, SF_EPI_ROPE, T, TI, CM, TS>(p);
        else return (int)cudaErrorInvalidValue;
    default: return (int)cudaErrorInvalidValue;
    }
}

/* e4m3 inputs exist with the staged epilogue only (the host asks for it) */
template <typename T, typename TI, int CM> int launch_cm(int bn, bool ts, int epi, const launch_params &p)
{
    if (!ts) {
        if constexpr (sizeof(TI) == 1) return (int)cudaErrorInvalidValue;
        else return bn == 256 ? launch_epi<256, T, TI, CM, false>(epi, p) : launch_epi<128, T, TI, CM, false>(epi, p);
    }
    switch (bn) {
    case 128: return launch_epi<128, T, TI, CM, true>(epi, p);
    case 176: return launch_epi<176, T, TI, CM, true>(epi, p);
    case 208: return launch_epi<208, T, TI, CM, true>(epi, p);
    case 224: return launch_epi<224, T, TI, CM, true>(epi, p);
    case 256: return launch_epi<256, T, TI, CM, true>(epi, p);
    default: return (int)cudaErrorInvalidValue;
    }
}

template <typename T, typename TI> int launch_cfg(int bn, int cm, bool ts, int epi, const launch_params &p)
{
    return cm == 2 ? launch_cm<T, TI, 2>(bn, ts, epi, p) : launch_cm<T, TI, 1>(bn, ts, epi, p);
}

template <typename T> int launch_in(bool fp8, int bn, int cm, bool ts, int epi, const launch_params &p)
{
    return fp8 ? launch_cfg<T, __nv_fp8_e4m3>(bn, cm, ts, epi, p) : launch_cfg<T, T>(bn, cm, ts, epi, p);
}

bool is_tile_width(int bn) { return bn == 128 || bn == 176 || bn == 208 || bn == 224 || bn == 256; }

/* Persistent grid: the time is about ceil(units / slots) rounds of one tile each (a unit is CM
 * M-blocks × one N-block, a slot one cluster), each round taking time ∝ BN. Measured on the
 * H100 (kernels/NOTES-ffn.md, 2026-11-24, commit 67a6bab): the widths 176–256 run at the same
 * rate per column; 128 at about 0.92 of it (more A traffic per flop). So a width wins when it
 * fills the machine better: BN = 224 splits 2I = 22016 into 99 tiles and 4·99 = 3·132, so every
 * T that is a multiple of 512 gives whole waves; 176 does the same for I = 11008 at
 * T = 512–1024. Ties go to the wider tile. Widths other than 128 and 256 need the staged
 * epilogue (wide_ok); an e4m3 SwiGLU output, the widths fp8_out_width takes (fp8_out).
 * e4m3 inputs (fp8_in) do twice the flops per byte staged, and there the narrower tiles fall
 * further behind: per column, against 256, 176 ran at 0.94–0.96, 208 at 0.95–0.98 and 128 at
 * 0.84–0.92 (H100, the 7B projections at T = 2048 and 4096, and 8192³: kernels/NOTES-ffn.md,
 * 2026-12-06). 224 ran at 0.94–1.01 and counts as level: at 0.98 8192³ would move to 256,
 * which was 2.8% slower there. */
double column_rate(int bn, bool fp8_in)
{
    if (bn == 128) return fp8_in ? 0.88 : 0.92;
    if (!fp8_in || bn >= 224) return 1.0;
    return bn == 208 ? 0.97 : 0.95;
}

int choose_tile_n(int64_t M, int64_t N, bool wide_ok, bool fp8_in, bool fp8_out, int cm, int sms)
{
    static const int widths[] = {256, 224, 208, 176, 128};
    const int64_t m_units = ((M + BM - 1) / BM + cm - 1) / cm, slots = sms / cm;
    int best = 256;
    double best_cost = 0;
    for (int bn : widths) {
        if ((!wide_ok && bn != 128 && bn != 256) || (fp8_out && !fp8_out_width(bn))) continue;
        const int64_t waves = (m_units * ((N + bn - 1) / bn) + slots - 1) / slots;
        const double cost = (double)waves * bn / column_rate(bn, fp8_in);
        if (bn == 256 || cost < best_cost) {
            best = bn;
            best_cost = cost;
        }
    }
    return best;
}

/* Whether epilogue_store = 0 means the staged (shared memory + TMA store) epilogue. */
constexpr bool kStagedByDefault = true;

/* Pairs of CTAs sharing B pay off once there are two M-blocks to pair. */
int choose_cluster(int64_t M) { return M > BM ? 2 : 1; }

bool aligned(const void *p, uintptr_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

} // namespace

extern "C" int sf_gemm_epilogue_cuda(const sf_gemm_epi_args *a, void *stream)
{
    if (!a || (a->dtype != SF_F16 && a->dtype != SF_BF16) || a->epilogue < SF_EPI_NONE || a->epilogue > SF_EPI_ROPE)
        return (int)cudaErrorInvalidValue;
    /* e4m3 A and B: both scales, 4-byte aligned; rows of whole 16-byte vectors */
    const bool fp8 = a->in_dtype == SF_E4M3;
    if ((a->in_dtype != a->dtype && !fp8) ||
        (fp8 && (!a->a_scale || !a->b_scale || !aligned(a->a_scale, 4) || !aligned(a->b_scale, 4) ||
                 a->epilogue == SF_EPI_GELU_TANH || a->epilogue == SF_EPI_GELU_ERF)) ||
        (!fp8 && (a->a_scale || a->b_scale)))
        return (int)cudaErrorInvalidValue;
    /* an e4m3 C: the SwiGLU of e4m3 inputs, its scale 4-byte aligned, a width that takes it */
    const bool fp8_out = a->out_scale != NULL;
    if (fp8_out && (!fp8 || a->epilogue != SF_EPI_SWIGLU || !aligned(a->out_scale, 4) ||
                    (a->tile_n != 0 && !fp8_out_width(a->tile_n))))
        return (int)cudaErrorInvalidValue;
    if (a->M == 0) return (int)cudaSuccess;
    const bool swiglu = a->epilogue == SF_EPI_SWIGLU, add = a->epilogue == SF_EPI_ADD, rope = a->epilogue == SF_EPI_ROPE;
    /* RoPE: whole heads per tile (widths 128, 256), exact fp32 positions */
    if (rope && (a->rope_cols < 0 || a->rope_cols > a->N || a->rope_cols % SF_GEMM_ROPE_HEAD_DIM ||
                 a->rope_seq < 1 || a->rope_pos_offset < 0 || a->rope_pos_offset + a->rope_seq > ((int64_t)1 << 24) ||
                 (a->tile_n != 0 && a->tile_n != 128 && a->tile_n != 256)))
        return (int)cudaErrorInvalidValue;
    const int64_t n_out = swiglu ? a->N / 2 : a->N;
    const int64_t lda = a->lda ? a->lda : a->K, ldb = a->ldb ? a->ldb : a->K;
    const int64_t ldc = a->ldc ? a->ldc : n_out, ldr = a->ldr ? a->ldr : a->N;
    const int64_t lim = (int64_t)1 << 31;
    if (a->M < 0 || a->M >= lim || a->N <= 0 || a->N >= lim || a->K <= 0 || a->K >= lim || a->N % 64 ||
        a->K % 64 || lda < a->K || ldb < a->K || ldc < n_out || lda % (fp8 ? 16 : 8) || ldb % (fp8 ? 16 : 8) || ldc % 2 ||
        !a->A || !a->B || !a->C || !aligned(a->A, 16) || !aligned(a->B, 16) || !aligned(a->C, 4) ||
        (a->bias && !aligned(a->bias, 4)) ||
        (add && (!a->R || !aligned(a->R, 4) || ldr < a->N || ldr % 2)) ||
        (a->tile_n != 0 && !is_tile_width(a->tile_n)) || a->cluster_m < 0 || a->cluster_m > 2 ||
        a->epilogue_store < 0 || a->epilogue_store > 2 || a->group_m < 0)
        return (int)cudaErrorInvalidValue;

    sf::device_info info;
    launch_params p;
    if (int rc = sf::current_device(&info)) return rc;
    p.dev = info.dev;
    if (info.cc_major != 9 || info.cc_minor != 0) return (int)cudaErrorNotSupported;

    /* the TMA store needs a 16-byte aligned C with rows of whole 16-byte units */
    const int ob = fp8_out ? 1 : 2; /* C's element bytes */
    const bool ts_ok = aligned(a->C, 16) && ldc * ob % 16 == 0;
    const bool ts = ts_ok && a->epilogue_store != 1 && (a->epilogue_store == 2 || kStagedByDefault);
    /* the widths other than 128 and 256, and e4m3 inputs, exist with the staged epilogue only */
    if ((rope && !ts) || (fp8 && !ts) ||
        (a->tile_n != 0 && a->tile_n != 128 && a->tile_n != 256 && !ts))
        return (int)cudaErrorInvalidValue;
    const int cm = a->cluster_m ? a->cluster_m : choose_cluster(a->M);
    const int bn = a->tile_n ? a->tile_n : choose_tile_n(a->M, a->N, ts && !rope, fp8, fp8_out, cm, info.sms);
    const int box = box_cols(out_cols(bn, a->epilogue), ob);
    const int bke = fp8 ? bk<__nv_fp8_e4m3>() : bk<__half>();
    if (!make_tensor_map(&p.map_a, a->in_dtype, a->A, a->M, a->K, lda, BM, bke) ||
        !make_tensor_map(&p.map_b, a->in_dtype, a->B, a->N, a->K, ldb, bn / cm, bke) ||
        (ts && !make_tensor_map(&p.map_c, fp8_out ? SF_E4M3 : a->dtype, a->C, a->M, n_out, ldc, 64, box, box * ob == 128)))
        return (int)cudaErrorInvalidValue;
    if (!ts) p.map_c = p.map_a; /* unused; any valid map */
    p.C = a->C;
    p.R = a->R;
    p.bias = a->bias;
    p.M = (int)a->M;
    p.N = (int)a->N;
    p.K = (int)a->K;
    p.ldc = ldc;
    p.ldr = ldr;
    p.a_scale = a->a_scale;
    p.b_scale = a->b_scale;
    p.a_scale_rows = a->a_scale_rows;
    p.b_scale_rows = a->b_scale_rows;
    p.out_scale = a->out_scale;
    p.rope = {};
    if (rope) {
        p.rope.cols = (int)a->rope_cols;
        p.rope.seq = (int)a->rope_seq;
        p.rope.pos_offset = (int)a->rope_pos_offset;
        for (int i = 0; i < SF_GEMM_ROPE_HEAD_DIM / 2; i++) p.rope.inv_freq[i] = a->rope_inv_freq[i];
    }
    /* group_m counts M-blocks; the kernels count cluster rows */
    {
        const int64_t units = ((a->M + BM - 1) / BM + cm - 1) / cm,
                      g = a->group_m ? (a->group_m + cm - 1) / cm : kGroupM;
        p.group = (int)(g < units ? g : units);
    }
    p.sms = info.sms;
    p.stream = (cudaStream_t)stream;
    return a->dtype == SF_F16 ? launch_in<__half>(fp8, bn, cm, ts, a->epilogue, p)
                              : launch_in<__nv_bfloat16>(fp8, bn, cm, ts, a->epilogue, p);
}
