/* The decode projections' GEMV: out[m, n] = x[m, k]·w[n, k]ᵀ for m <= 64 rows (kernels/gemv.h).
 * Its time is the time to read w once, so the design is about keeping enough of w in flight and
 * doing little else per byte:
 *  - A CTA (4 warps) owns a tile of 64 rows of w and a range of k (its split); each warp owns 16
 *    rows. Lane (g, q) = (lane / 4, lane % 4) reads rows g and g + 8 in 16-byte vectors at
 *    k + 32u + 8q, u < U: the four lanes of a row read 64 contiguous bytes per u, and a thread
 *    has 2·U vectors in flight before it computes. w bypasses L1 (read once); x, small and read
 *    by every warp, stays in L1. (A ring of cp.async steps in shared memory, keeping bytes in
 *    flight while a warp computes, was 2-8% slower at m <= 16 on the H100:
 *    kernels/NOTES-decode.md, 2026-12-05.)
 *  - The products run on the tensor cores (mma m16n8k16, fp32 accumulation) with w as the
 *    16-row operand and up to 8 rows of x as the 8-column one, NT = ceil(m / 8) of them. Lane
 *    (g, q) holds w[g][k'] and w[g+8][k'] for k' in {2q, 2q+1, 2q+8, 2q+9} of each mma's 16 k:
 *    the sum over k does not care which physical k a slot holds, so the fragment is taken
 *    straight from the loaded vector (its words 0, 1 for one mma and 2, 3 for the next), and
 *    x's fragment (lane (g, q): x row g, the same slots) from x's vector at the same k. No
 *    shuffles.
 *  - Splits: with the partial sums in an fp32 workspace, [tile][split][row of the tile][x row]
 *    (the m rows of x that exist: the mma's 8 columns hold 8 rows of x, so at m = 1 a fragment's
 *    layout would write 8 times the sums there are, and those lines go back to DRAM when later
 *    reads push them out of L2), the CTA that brings a tile's counter to `splits` adds every
 *    split's partial in split order and writes the epilogue; it leaves the counter at zero for
 *    the next call. One split writes out directly. Accumulator element (row g + 8h, x row
 *    8j + 2q + e) is what a thread holds, so the SwiGLU epilogue finds gate (row g) and up
 *    (row g + 8) of the same output in one thread. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "common.cuh"
#include "mma.cuh"
#include "gemv.h"

namespace sf_gemv {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kTileRows = SF_GEMV_TILE_ROWS;
constexpr int kChunk = 128;       /* k granularity of a split: a whole step of the U = 4 kernels */
constexpr int kMinSplitK = 256;   /* k: the shortest split the automatic rule makes */

/* how w reaches the registers: element by element (rows not 16-byte aligned), or in 16-byte
 * vectors */
enum Load { kElements, kVectors };
static_assert(kTileRows == kWarps * 16, "a warp owns 16 rows");

struct Params {
    const char *x, *w, *c, *bias;
    char *out;
    int64_t ldx, ldw, ldc, ldo;
    float alpha, beta;
    int m, n, k, act, swiglu, splits, kps; /* kps: k of one split, a multiple of kChunk */
    float *ws;
    unsigned *counters;
};

/* x tiles of 8 rows -> 16-byte vectors of each w row in flight per thread (what 128 registers
 * hold; the element-by-element path needs more of them per vector) */
template <int NT, bool VEC> struct Unroll {
    static constexpr int U = (NT <= 2 ? 4 : 2) / (VEC || NT <= 2 ? 1 : 2);
};

__device__ __forceinline__ uint4 load_stream(const void *p)
{
    uint4 r;
    asm("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
        : "l"(p));
    return r;
}

/* 8 elements of a row at k: one 16-byte vector (VEC: aligned, k % 8 == 0, whole vectors only),
 * else element by element; zeros past kend */
template <typename T, bool VEC, bool TAIL, bool STREAM>
__device__ __forceinline__ uint4 load8(const T *row, int k, int kend)
{
    if constexpr (VEC) {
        if (TAIL && k >= kend) return make_uint4(0, 0, 0, 0);
        return STREAM ? load_stream(row + k) : __ldg(reinterpret_cast<const uint4 *>(row + k));
    } else {
        sf::vec16<T> v;
#pragma unroll
        for (int i = 0; i < 8; i++) v.e[i] = !TAIL || k + i < kend ? row[k + i] : sf::dtype_traits<T>::from_f(0.f);
        return v.raw;
    }
}

/* The products of one step of 32·U k from its w vectors (a0: row g, a1: row g + 8), with x's
 * vectors at the same k. */
template <typename T, int NT, bool VEC, bool TAIL, int U>
__device__ __forceinline__ void products(const uint4 (&a0)[U], const uint4 (&a1)[U], const T *const (&xr)[NT], int k,
                                         int kend, float (&acc)[NT][4])
{
#pragma unroll
    for (int u = 0; u < U; u++) {
#pragma unroll
        for (int j = 0; j < NT; j++) {
            const uint4 b = load8<T, VEC, TAIL, false>(xr[j], k + 32 * u, kend);
            const uint32_t lo[4] = {a0[u].x, a1[u].x, a0[u].y, a1[u].y}, hi[4] = {a0[u].z, a1[u].z, a0[u].w, a1[u].w};
            sf::mma16816<T>(acc[j], lo, b.x, b.y);
            sf::mma16816<T>(acc[j], hi, b.z, b.w);
        }
    }
}

/* One step loaded straight into registers: every w vector first (the bytes in flight), then
 * the products. */
template <typename T, int NT, bool VEC, bool TAIL>
__device__ __forceinline__ void step(const T *w0, const T *w1, const T *const (&xr)[NT], int k, int kend,
                                     float (&acc)[NT][4])
{
    constexpr int U = Unroll<NT, VEC>::U;
    uint4 a0[U], a1[U];
#pragma unroll
    for (int u = 0; u < U; u++) {
        a0[u] = load8<T, VEC, TAIL, true>(w0, k + 32 * u, kend);
        a1[u] = load8<T, VEC, TAIL, true>(w1, k + 32 * u, kend);
    }
    products<T, NT, VEC, TAIL, U>(a0, a1, xr, k, kend, acc);
}

__device__ __forceinline__ float activate(float v, int act)
{
    if (act == SF_EPI_RELU) return v < 0.f ? 0.f : v; /* NaN stays NaN */
    if (act == SF_EPI_GELU_TANH) return sf::gelu_tanh(v);
    return v;
}

/* acc[j][2h + e]: w row base + g + 8h, x row 8j + 2q + e */
template <typename T, int NT>
__device__ __forceinline__ void epilogue(const Params &p, const float (&acc)[NT][4], int base, int g, int q)
{
    using tr = sf::dtype_traits<T>;
    T *out = reinterpret_cast<T *>(p.out);
    if (p.swiglu) {
        if (base >= p.n) return; /* n % 16 == 0: a warp's 16 rows are all in or all out */
        const int col = base / 2 + g;
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int m = 8 * j + 2 * q + e;
                if (m < p.m) out[(int64_t)m * p.ldo + col] = tr::from_f(sf::silu(acc[j][e]) * acc[j][2 + e]);
            }
        return;
    }
    const T *c = reinterpret_cast<const T *>(p.c), *bias = reinterpret_cast<const T *>(p.bias);
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int n = base + g + 8 * h;
        if (n >= p.n) continue;
        const float b = bias ? tr::to_f(bias[n]) : 0.f;
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int m = 8 * j + 2 * q + e;
                if (m >= p.m) continue;
                float v = p.alpha * acc[j][2 * h + e];
                if (p.beta != 0.f) v += p.beta * tr::to_f(c[(int64_t)m * p.ldc + n]);
                out[(int64_t)m * p.ldo + n] = tr::from_f(activate(v + b, p.act));
            }
    }
}

/* f(j, 2h + e, offset) for each sum acc[j][2h + e] a thread holds of an x row that exists (8j + 2q
 * + e < m): tile row warp·16 + g + 8h, x row 8j + 2q + e, at (g + 8h)·m + x row from the warp's
 * first row in a split's partial sums */
template <int NT, typename F> __device__ __forceinline__ void each_sum(int m, int g, int q, F f)
{
#pragma unroll
    for (int j = 0; j < NT; j++)
#pragma unroll
        for (int h = 0; h < 2; h++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int xr = 8 * j + 2 * q + e;
                if (xr < m) f(j, 2 * h + e, (g + 8 * h) * m + xr);
            }
}

template <typename T, int NT, int L>
__global__ void __launch_bounds__(kThreads, 4) gemv_kernel(const __grid_constant__ Params p)
{
    constexpr bool VEC = L != kElements;
    constexpr int STEP = 32 * Unroll<NT, VEC>::U;
    sf::grid_dep_wait();
    sf::grid_dep_launch();
    const int split = blockIdx.x, tile = blockIdx.y;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, q = lane & 3;
    const int base = tile * kTileRows + warp * 16;
    /* rows past n or m read the last row (results dropped): no predicate in the loop */
    const T *w0 = reinterpret_cast<const T *>(p.w) + (int64_t)min(base + g, p.n - 1) * p.ldw + 8 * q;
    const T *w1 = reinterpret_cast<const T *>(p.w) + (int64_t)min(base + g + 8, p.n - 1) * p.ldw + 8 * q;
    const T *xr[NT];
#pragma unroll
    for (int j = 0; j < NT; j++) xr[j] = reinterpret_cast<const T *>(p.x) + (int64_t)min(8 * j + g, p.m - 1) * p.ldx + 8 * q;

    float acc[NT][4];
#pragma unroll
    for (int j = 0; j < NT; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
    const int kbeg = split * p.kps, kend = min(p.k, kbeg + p.kps);
    /* kend is relative to the thread's first element: pointers above are offset by 8q */
    int kb = kbeg;
    for (; kb + STEP <= kend; kb += STEP) step<T, NT, VEC, false>(w0, w1, xr, kb, kend - 8 * q, acc);
    if (kb < kend) step<T, NT, VEC, true>(w0, w1, xr, kb, kend - 8 * q, acc);

    if (p.splits == 1) {
        epilogue<T, NT>(p, acc, base, g, q);
        return;
    }
    /* a split's sums are kTileRows·m, [row of the tile][x row] */
    const int64_t per_split = (int64_t)kTileRows * p.m;
    float *const ws = p.ws + (int64_t)tile * p.splits * per_split + warp * 16 * p.m;
    each_sum<NT>(p.m, g, q, [&](int j, int i, int at) { ws[split * per_split + at] = acc[j][i]; });
    /* the last CTA of the tile */
    __threadfence();
    __syncthreads();
    if (!__syncthreads_or(tid == 0 && atomicAdd(&p.counters[tile], 1u) == (unsigned)p.splits - 1)) return;
    __threadfence();
    /* every split's partial added in split order, R splits' loads in flight at once (one L2 round
     * trip for R splits rather than one a split: the tile's output waits on them) */
    constexpr int R = NT <= 2 ? 4 : 1;
#pragma unroll
    for (int j = 0; j < NT; j++) acc[j][0] = acc[j][1] = acc[j][2] = acc[j][3] = 0.f;
    for (int s0 = 0; s0 < p.splits; s0 += R) {
        float part[R][NT][4];
#pragma unroll
        for (int r = 0; r < R; r++) {
            const int s = s0 + r < p.splits ? s0 + r : s0; /* past the last split: loaded, not added */
            each_sum<NT>(p.m, g, q, [&](int j, int i, int at) { part[r][j][i] = __ldcg(ws + s * per_split + at); });
        }
#pragma unroll
        for (int r = 0; r < R; r++)
            if (s0 + r < p.splits) each_sum<NT>(p.m, g, q, [&](int j, int i, int) { acc[j][i] += part[r][j][i]; });
    }
    if (tid == 0) p.counters[tile] = 0;
    epilogue<T, NT>(p, acc, base, g, q);
}

template <typename T, int NT, int L> struct Kernel {
    static int occupancy(int *ctas) { return sf::occupancy<gemv_kernel<T, NT, L>>(ctas, kThreads, 0); }
    static int launch(const Params &p, int tiles, cudaStream_t stream)
    {
        /* without programmatic dependent launch: it starts once the kernel before it has
         * finished. With it, the 7B decode step took 5-8% longer (H100, kernels/NOTES-decode.md,
         * 2026-12-06); the kernel still lets the next one launch early. */
        return (int)sf::launch_with(false, gemv_kernel<T, NT, L>, dim3((unsigned)p.splits, (unsigned)tiles), kThreads, 0,
                                    stream, 1, p);
    }
};

bool vectorized(const sf_gemv_args *a)
{
    return a->k % 8 == 0 && a->ldx % 8 == 0 && a->ldw % 8 == 0 && sf::aligned16(a->x) && sf::aligned16(a->w);
}

/* f(Kernel<T, NT, L>) for the arguments' dtype, row count and alignment */
template <typename F> int dispatch(const sf_gemv_args *a, F f)
{
    const bool vectors = vectorized(a);
#define SF_GEMV_NT(T, L)                                                                                          \
    if (a->m <= 8) return f(Kernel<T, 1, L>());                                                                   \
    if (a->m <= 16) return f(Kernel<T, 2, L>());                                                                  \
    if (a->m <= 32) return f(Kernel<T, 4, L>());                                                                  \
    return f(Kernel<T, 8, L>());
#define SF_GEMV_LOAD(T)                                                                                           \
    if (vectors) { SF_GEMV_NT(T, kVectors) }                                                                      \
    SF_GEMV_NT(T, kElements)
    if (a->dtype == SF_F16) { SF_GEMV_LOAD(__half) }
    SF_GEMV_LOAD(__nv_bfloat16)
#undef SF_GEMV_LOAD
#undef SF_GEMV_NT
}

/* k of each of `splits` splits, in whole chunks, and the number of splits that makes */
int split_k(int64_t k, int splits, int *kps)
{
    const int64_t per = (k + splits - 1) / splits;
    *kps = (int)((per + kChunk - 1) / kChunk * kChunk);
    return (int)((k + *kps - 1) / *kps);
}

} // namespace sf_gemv

using namespace sf_gemv;

extern "C" const char *sf_gemv_unfit(const sf_gemv_args *a)
{
    if (a->dtype != SF_F16 && a->dtype != SF_BF16) return "takes f16 or bf16 x, w and out of one dtype";
    if (a->m < 1 || a->m > SF_GEMV_MAX_M) return "takes 1 to 64 rows of x (m)";
    if (a->n < 1 || a->k < 1 || a->n > 0x7fffffff || a->k > 0x7fffffff) return "takes n and k from 1 to 2^31 - 1";
    if ((a->n + kTileRows - 1) / kTileRows > 65535) return "takes n up to 65535·64";
    if (!a->x || !a->w || !a->out || (a->beta != 0.f && !a->c)) return "needs x, w, out (and c when beta is not 0)";
    const bool swiglu = a->epilogue == SF_EPI_SWIGLU;
    const int64_t out_cols = swiglu ? a->n / 2 : a->n;
    if (a->ldx < a->k || a->ldw < a->k || a->ldo < out_cols || (a->beta != 0.f && a->ldc < a->n))
        return "needs row strides at least the rows' lengths";
    if (swiglu && (a->n % 16 || a->alpha != 1.f || a->beta != 0.f || a->bias))
        return "takes SwiGLU with gate and up interleaved (n a multiple of 16), alone";
    if (!swiglu && a->epilogue != SF_EPI_NONE && a->epilogue != SF_EPI_RELU && a->epilogue != SF_EPI_GELU_TANH)
        return "has no such activation";
    return NULL;
}

extern "C" int64_t sf_gemv_tiles(const sf_gemv_args *a) { return (a->n + kTileRows - 1) / kTileRows; }

/* The split count whose CTAs fill the last of their waves best (one wave: what the GPU runs at
 * once, SMs times the kernel's occupancy), the smallest of equals; never splits shorter than
 * kMinSplitK, so a tile's extra traffic (its partials, written and read once) stays small next
 * to its share of w. */
extern "C" int sf_gemv_splits(const sf_gemv_args *a, int *splits)
{
    int kps = 0;
    *splits = 1;
    if (sf_gemv_unfit(a)) return (int)cudaErrorInvalidValue;
    if (a->splits > 0) {
        *splits = split_k(a->k, a->splits < SF_GEMV_MAX_SPLITS ? a->splits : SF_GEMV_MAX_SPLITS, &kps);
        return 0;
    }
    int sms = 0, ctas = 0;
    int e = sf::sm_count(&sms);
    if (e == 0) e = dispatch(a, [&](auto kern) { return decltype(kern)::occupancy(&ctas); });
    if (e != 0) return e;
    const double slots = (double)sms * (ctas > 0 ? ctas : 1);
    const int64_t tiles = sf_gemv_tiles(a);
    int64_t most = a->k / kMinSplitK;
    if (most > SF_GEMV_MAX_SPLITS) most = SF_GEMV_MAX_SPLITS;
    double best = -1;
    for (int s = 1; s <= most || s == 1; s++) {
        const int actual = split_k(a->k, s, &kps);
        if (actual != s) continue; /* rounding to whole chunks made it another count, seen already */
        const double waves = (double)tiles * s / slots;
        const double whole = waves <= 1 ? 1 : ceil(waves);
        const double fill = waves / whole;
        if (fill > best + 1e-3) {
            best = fill;
            *splits = s;
        }
    }
    return 0;
}

extern "C" size_t sf_gemv_workspace_bytes(const sf_gemv_args *a, int splits)
{
    if (splits <= 1) return 0;
    return (size_t)sf_gemv_tiles(a) * splits * kTileRows * a->m * sizeof(float);
}

extern "C" int sf_gemv_cuda(const sf_gemv_args *a, int splits, void *workspace, unsigned *counters, void *stream)
{
    if (sf_gemv_unfit(a) || splits < 1 || splits > SF_GEMV_MAX_SPLITS || (splits > 1 && (!workspace || !counters)))
        return (int)cudaErrorInvalidValue;
    Params p = {};
    p.x = (const char *)a->x;
    p.w = (const char *)a->w;
    p.c = (const char *)a->c;
    p.bias = (const char *)a->bias;
    p.out = (char *)a->out;
    p.ldx = a->ldx;
    p.ldw = a->ldw;
    p.ldc = a->ldc;
    p.ldo = a->ldo;
    p.alpha = a->alpha;
    p.beta = a->beta;
    p.m = (int)a->m;
    p.n = (int)a->n;
    p.k = (int)a->k;
    p.act = a->epilogue;
    p.swiglu = a->epilogue == SF_EPI_SWIGLU;
    p.splits = split_k(a->k, splits, &p.kps);
    if (p.splits != splits) return (int)cudaErrorInvalidValue; /* not a count sf_gemv_splits gives */
    p.ws = (float *)workspace;
    p.counters = counters;
    const int tiles = (int)sf_gemv_tiles(a);
    return dispatch(a, [&](auto kern) { return decltype(kern)::launch(p, tiles, (cudaStream_t)stream); });
}
