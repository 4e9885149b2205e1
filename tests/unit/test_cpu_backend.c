/* Unit tests of the CPU backend (src/backend_cpu.c) over hand-built sf_tensor structs, and of
 * the reference GEMM (src/ref_gemm.c) against products computed by hand. */
#include "config.h"
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <lauxlib.h>
#include "sfbench.h"
#include "backend.h"
#include "gemm.h"
#include "rng.h"

/* A tensor over caller-owned memory; stride NULL means contiguous. */
static sf_tensor make(void *data, sf_dtype dt, int ndim, const int64_t *shape, const int64_t *stride)
{
    sf_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dt;
    t.device = SF_DEV_CPU;
    t.ndim = ndim;
    t.numel = 1;
    t.base_ref = LUA_NOREF;
    for (int d = 0; d < ndim; d++) {
        t.shape[d] = shape[d];
        t.numel *= shape[d];
    }
    int64_t s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        t.stride[d] = stride ? stride[d] : s;
        s *= shape[d];
    }
    return t;
}

static int setup_lua(void **state)
{
    lua_State *L = luaL_newstate();
    if (!L) return -1;
    *state = L;
    return 0;
}

static int teardown_lua(void **state)
{
    lua_close((lua_State *)*state);
    return 0;
}

/* ---- tensor helpers ---- */

static void test_contiguity_and_offsets(void **state)
{
    (void)state;
    float buf[12];
    int64_t shape[2] = {3, 4}, narrow[2] = {3, 2}, wide_stride[2] = {4, 1}, tshape[2] = {4, 3}, tstride[2] = {1, 4};
    sf_tensor c = make(buf, SF_F32, 2, shape, NULL);
    assert_true(sf_tensor_is_contiguous(&c));
    assert_int_equal(c.stride[0], 4);
    assert_int_equal(c.stride[1], 1);
    assert_int_equal(sf_tensor_nbytes(&c), 48);
    sf_tensor s = make(buf, SF_F32, 2, narrow, wide_stride);
    assert_false(sf_tensor_is_contiguous(&s));
    assert_int_equal(sf_tensor_nbytes(&s), 24);
    sf_tensor t = make(buf, SF_F32, 2, tshape, tstride);
    assert_false(sf_tensor_is_contiguous(&t));
    /* row-major walk: element (i, j) of the transposed view is at i + 4j */
    assert_int_equal(sf_offset_of(&t, 0), 0);
    assert_int_equal(sf_offset_of(&t, 1), 4);
    assert_int_equal(sf_offset_of(&t, 2), 8);
    assert_int_equal(sf_offset_of(&t, 3), 1);
    assert_int_equal(sf_offset_of(&t, 11), 11);
    assert_int_equal(sf_offset_of(&s, 3), 5);
    /* a dimension of size 1 may have any stride and still be contiguous */
    int64_t one[3] = {2, 1, 3}, odd[3] = {3, 99, 1};
    sf_tensor u = make(buf, SF_F32, 3, one, odd);
    assert_true(sf_tensor_is_contiguous(&u));
}

/* ---- fill ---- */

static void test_fill_contiguous_all_dtypes(void **state)
{
    lua_State *L = *state;
    int64_t shape[1] = {5};
    float f[5];
    uint16_t h[5], b[5];
    int32_t i[5];
    double d[5];
    sf_tensor tf = make(f, SF_F32, 1, shape, NULL), th = make(h, SF_F16, 1, shape, NULL),
              tb = make(b, SF_BF16, 1, shape, NULL), ti = make(i, SF_I32, 1, shape, NULL),
              td = make(d, SF_F64, 1, shape, NULL);
    sf_cpu_backend.fill(L, &tf, 1.5, NULL);
    sf_cpu_backend.fill(L, &th, -2.5, NULL);
    sf_cpu_backend.fill(L, &tb, 1.0, NULL);
    sf_cpu_backend.fill(L, &ti, 6.5, NULL);
    sf_cpu_backend.fill(L, &td, 0.1, NULL);
    for (int k = 0; k < 5; k++) {
        assert_true(f[k] == 1.5f);
        assert_int_equal(h[k], 0xc100);
        assert_int_equal(b[k], 0x3f80);
        assert_int_equal(i[k], 6);            /* round half to even */
        assert_true(d[k] == 0.1);
    }
    sf_cpu_backend.fill(L, &tf, NAN, NULL);
    for (int k = 0; k < 5; k++) assert_true(isnan(f[k]));
}

static void test_fill_strided(void **state)
{
    lua_State *L = *state;
    /* a 3x2 view into a 3x4 buffer, starting at column 1: only those six elements change */
    float buf[12];
    for (int k = 0; k < 12; k++) buf[k] = (float)-k;
    int64_t shape[2] = {3, 2}, stride[2] = {4, 1};
    sf_tensor t = make(buf + 1, SF_F32, 2, shape, stride);
    sf_cpu_backend.fill(L, &t, 7.0, NULL);
    const float want[12] = {0, 7, 7, -3, -4, 7, 7, -7, -8, 7, 7, -11};
    for (int k = 0; k < 12; k++) assert_true(buf[k] == want[k]);
}

/* ---- random ---- */

static void test_random_matches_generator(void **state)
{
    lua_State *L = *state;
    int64_t shape[2] = {4, 8};
    double u[32], g[32];
    sf_tensor tu = make(u, SF_F64, 2, shape, NULL), tg = make(g, SF_F64, 2, shape, NULL);
    sf_cpu_backend.random(L, &tu, SF_RAND_UNIFORM, 77, -1.0, 3.0, NULL);
    sf_cpu_backend.random(L, &tg, SF_RAND_NORMAL, 77, 2.0, 0.5, NULL);
    for (int k = 0; k < 32; k++) {
        assert_true(u[k] == -1.0 + 4.0 * sf_rng_unit(77, (uint64_t)k, 0));
        assert_true(u[k] > -1.0 && u[k] < 3.0);
        assert_true(g[k] == 2.0 + 0.5 * sf_rng_gauss(77, (uint64_t)k));
    }
    /* the same seed again gives the same values; another seed others */
    double again[32], other[32];
    sf_tensor ta = make(again, SF_F64, 2, shape, NULL), to = make(other, SF_F64, 2, shape, NULL);
    sf_cpu_backend.random(L, &ta, SF_RAND_NORMAL, 77, 2.0, 0.5, NULL);
    sf_cpu_backend.random(L, &to, SF_RAND_NORMAL, 78, 2.0, 0.5, NULL);
    assert_memory_equal(again, g, sizeof g);
    int same = 0;
    for (int k = 0; k < 32; k++) same += other[k] == g[k];
    assert_int_equal(same, 0);
}

static void test_random_strided_and_low_precision(void **state)
{
    lua_State *L = *state;
    /* element i in row-major order of the view gets draw i, wherever it lives in memory */
    float buf[12];
    for (int k = 0; k < 12; k++) buf[k] = 100.0f;
    int64_t shape[2] = {3, 2}, stride[2] = {4, 1};
    sf_tensor t = make(buf, SF_F32, 2, shape, stride);
    sf_cpu_backend.random(L, &t, SF_RAND_NORMAL, 5, 0.0, 1.0, NULL);
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++) {
            float v = buf[r * 4 + c];
            if (c < 2) assert_true(v == (float)sf_rng_gauss(5, (uint64_t)(r * 2 + c)));
            else assert_true(v == 100.0f);
        }
    /* f16: the double draw rounded once through f32 then to half */
    int64_t n[1] = {16};
    uint16_t h[16];
    sf_tensor th = make(h, SF_F16, 1, n, NULL);
    sf_cpu_backend.random(L, &th, SF_RAND_UNIFORM, 9, 0.0, 1.0, NULL);
    for (int k = 0; k < 16; k++) assert_int_equal(h[k], sf_float_to_half((float)sf_rng_unit(9, (uint64_t)k, 0)));
}

/* ---- convert ---- */

static void test_convert_dtypes(void **state)
{
    lua_State *L = *state;
    int64_t shape[1] = {6};
    double src[6] = {1.0, -2.5, 1.0 / 3.0, 65504.0, 70000.0, 2.5};
    uint16_t h[6], b[6];
    int32_t i[6];
    float back[6];
    sf_tensor ts = make(src, SF_F64, 1, shape, NULL), th = make(h, SF_F16, 1, shape, NULL),
              tb = make(b, SF_BF16, 1, shape, NULL), ti = make(i, SF_I32, 1, shape, NULL),
              tback = make(back, SF_F32, 1, shape, NULL);
    sf_cpu_backend.convert(L, &th, &ts, NULL);
    const uint16_t want_h[6] = {0x3c00, 0xc100, 0x3555, 0x7bff, 0x7c00, 0x4100};
    assert_memory_equal(h, want_h, sizeof h);
    sf_cpu_backend.convert(L, &tb, &ts, NULL);
    const uint16_t want_b[6] = {0x3f80, 0xc020, 0x3eab, 0x4780, 0x4789, 0x4020};
    assert_memory_equal(b, want_b, sizeof b);
    sf_cpu_backend.convert(L, &ti, &ts, NULL);
    const int32_t want_i[6] = {1, -2, 0, 65504, 70000, 2};
    assert_memory_equal(i, want_i, sizeof i);
    sf_cpu_backend.convert(L, &tback, &th, NULL);
    assert_true(back[0] == 1.0f);
    assert_true(back[1] == -2.5f);
    assert_true(back[2] == 0.333251953125f);
    assert_true(back[3] == 65504.0f);
    assert_true(isinf(back[4]));
    assert_true(back[5] == 2.5f);
}

static void test_convert_strided(void **state)
{
    lua_State *L = *state;
    /* the transpose of a 2x3 matrix, read through strides, written contiguously */
    float m[6] = {1, 2, 3, 4, 5, 6};
    int64_t tshape[2] = {3, 2}, tstride[2] = {1, 3};
    sf_tensor src = make(m, SF_F32, 2, tshape, tstride);
    double out[6];
    sf_tensor dst = make(out, SF_F64, 2, tshape, NULL);
    sf_cpu_backend.convert(L, &dst, &src, NULL);
    const double want[6] = {1, 4, 2, 5, 3, 6};
    for (int k = 0; k < 6; k++) assert_true(out[k] == want[k]);
    /* same dtype, strided destination: a column of a 3x3 buffer, the rest untouched */
    float grid[9] = {0};
    float col[3] = {7, 8, 9};
    int64_t cshape[2] = {3, 1}, cstride[2] = {3, 1};
    sf_tensor csrc = make(col, SF_F32, 2, cshape, NULL);
    sf_tensor cdst = make(grid + 1, SF_F32, 2, cshape, cstride);
    sf_cpu_backend.convert(L, &cdst, &csrc, NULL);
    const float want_grid[9] = {0, 7, 0, 0, 8, 0, 0, 9, 0};
    assert_memory_equal(grid, want_grid, sizeof grid);
    /* a 2x2 window of a 3x3 buffer copied to a contiguous f16 */
    float win_src[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    int64_t wshape[2] = {2, 2}, wstride[2] = {3, 1};
    sf_tensor ws = make(win_src + 4, SF_F32, 2, wshape, wstride);
    uint16_t wh[4];
    sf_tensor wd = make(wh, SF_F16, 2, wshape, NULL);
    sf_cpu_backend.convert(L, &wd, &ws, NULL);
    assert_true(sf_half_to_float(wh[0]) == 5.0f);
    assert_true(sf_half_to_float(wh[1]) == 6.0f);
    assert_true(sf_half_to_float(wh[2]) == 8.0f);
    assert_true(sf_half_to_float(wh[3]) == 9.0f);
}

static void test_convert_same_dtype_contiguous(void **state)
{
    lua_State *L = *state;
    int64_t shape[2] = {2, 3};
    int32_t a[6] = {1, -2, 3, -4, 5, -6}, b[6] = {0};
    sf_tensor ta = make(a, SF_I32, 2, shape, NULL), tb = make(b, SF_I32, 2, shape, NULL);
    sf_cpu_backend.convert(L, &tb, &ta, NULL);
    assert_memory_equal(a, b, sizeof a);
}

/* ---- compare ---- */

static void test_compare_metrics(void **state)
{
    lua_State *L = *state;
    int64_t shape[1] = {4};
    float out[4] = {1, 2, 3, 4};
    double ref[4] = {1, 2, 3, 5};
    sf_tensor to = make(out, SF_F32, 1, shape, NULL), tr = make(ref, SF_F64, 1, shape, NULL);
    sf_compare r;
    memset(&r, 0xff, sizeof r);
    sf_cpu_backend.compare(L, &to, &tr, &r, NULL);
    assert_true(fabs(r.rel_l2 - sqrt(1.0 / 39.0)) < 1e-15);
    assert_true(r.max_abs == 1.0);
    assert_true(fabs(r.ref_norm - sqrt(39.0)) < 1e-14);
    assert_int_equal(r.nan, 0);
    assert_int_equal(r.inf, 0);
    assert_int_equal(r.ref_nonfinite, 0);
    assert_int_equal(r.numel, 4);
    /* identical tensors */
    sf_cpu_backend.compare(L, &tr, &tr, &r, NULL);
    assert_true(r.rel_l2 == 0.0);
    assert_true(r.max_abs == 0.0);
}

static void test_compare_nonfinite(void **state)
{
    lua_State *L = *state;
    int64_t shape[1] = {6};
    double out[6] = {NAN, INFINITY, -INFINITY, 1.0, 2.0, 10.0};
    double ref[6] = {1.0, 1.0, 1.0, NAN, 2.0, 6.0};
    sf_tensor to = make(out, SF_F64, 1, shape, NULL), tr = make(ref, SF_F64, 1, shape, NULL);
    sf_compare r;
    sf_cpu_backend.compare(L, &to, &tr, &r, NULL);
    assert_int_equal(r.nan, 1);
    assert_int_equal(r.inf, 2);
    assert_int_equal(r.ref_nonfinite, 1);
    assert_int_equal(r.numel, 6);
    /* the norms cover only the two finite pairs: d = (0, 4), ref = (2, 6) */
    assert_true(r.max_abs == 4.0);
    assert_true(fabs(r.ref_norm - sqrt(40.0)) < 1e-14);
    assert_true(fabs(r.rel_l2 - sqrt(16.0 / 40.0)) < 1e-15);
}

static void test_compare_zero_reference_and_strides(void **state)
{
    lua_State *L = *state;
    /* a zero reference: the error is absolute */
    int64_t shape[1] = {2};
    float out[2] = {3, 4}, zero[2] = {0, 0};
    sf_tensor to = make(out, SF_F32, 1, shape, NULL), tz = make(zero, SF_F32, 1, shape, NULL);
    sf_compare r;
    sf_cpu_backend.compare(L, &to, &tz, &r, NULL);
    assert_true(r.rel_l2 == 5.0);
    assert_true(r.ref_norm == 0.0);
    assert_true(r.max_abs == 4.0);
    /* a strided out against a transposed ref holding the same logical values */
    float wide[6] = {1, 2, -1, 3, 4, -1};           /* 2x2 in a 2x3 buffer */
    float tr_buf[4] = {1, 3, 2, 4};                 /* stored transposed */
    int64_t s2[2] = {2, 2}, ws[2] = {3, 1}, ts[2] = {1, 2};
    sf_tensor o2 = make(wide, SF_F32, 2, s2, ws), r2 = make(tr_buf, SF_F32, 2, s2, ts);
    sf_cpu_backend.compare(L, &o2, &r2, &r, NULL);
    assert_true(r.rel_l2 == 0.0);
    assert_true(fabs(r.ref_norm - sqrt(30.0)) < 1e-14);
    assert_int_equal(r.numel, 4);
    /* f16 output against its f64 reference: the rounding error is exact */
    uint16_t h[1] = {sf_float_to_half(1.0f / 3.0f)};
    double third[1] = {1.0 / 3.0};
    int64_t one[1] = {1};
    sf_tensor th = make(h, SF_F16, 1, one, NULL), t3 = make(third, SF_F64, 1, one, NULL);
    sf_cpu_backend.compare(L, &th, &t3, &r, NULL);
    assert_true(fabs(r.max_abs - (1.0 / 3.0 - 0.333251953125)) < 1e-15);
}

/* ---- host copies ---- */

static void test_host_copies(void **state)
{
    lua_State *L = *state;
    char a[16] = "sfbench-copies!", b[16] = {0};
    sf_cpu_backend.to_host(L, b, a, sizeof a);
    assert_memory_equal(a, b, sizeof a);
    memset(b, 0, sizeof b);
    sf_cpu_backend.from_host(L, b, a, 8);
    assert_memory_equal(a, b, 8);
    assert_int_equal(b[8], 0);
    size_t free_b = 0, total_b = 0;
    sf_cpu_backend.mem_info(&free_b, &total_b);
    assert_true(total_b > 0);
    assert_true(free_b <= total_b);
    assert_string_equal(sf_cpu_backend.name, "cpu");
    assert_ptr_equal(sf_backend_of(SF_DEV_CPU), &sf_cpu_backend);
    void *p = sf_cpu_backend.raw_alloc(100);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 64, 0);
    sf_cpu_backend.raw_free(p);
}

/* ---- reference GEMM ---- */

static sf_gemm_desc desc(sf_dtype dt, int64_t m, int64_t n, int64_t k, const void *a, const void *b, void *c)
{
    sf_gemm_desc d;
    memset(&d, 0, sizeof d);
    d.m = m; d.n = n; d.k = k; d.batch = 1;
    d.a = a; d.b = b; d.c = c;
    d.a_dtype = d.b_dtype = d.c_dtype = dt;
    d.lda = k; d.ldb = n; d.ldc = n;
    d.alpha = 1.0;
    return d;
}

/* A = [[1,2,3],[4,5,6]] (2x3), B = [[7,8],[9,10],[11,12]] (3x2): A·B = [[58,64],[139,154]] */
static const double A23[6] = {1, 2, 3, 4, 5, 6};
static const double B32[6] = {7, 8, 9, 10, 11, 12};
static const double AB[4] = {58, 64, 139, 154};

static void assert_doubles(const double *got, const double *want, int n)
{
    for (int i = 0; i < n; i++)
        if (fabs(got[i] - want[i]) > 1e-12 * (1 + fabs(want[i])))
            fail_msg("element %d: got %.17g, want %.17g", i, got[i], want[i]);
}

static void test_gemm_plain(void **state)
{
    (void)state;
    double c[4] = {-1, -1, -1, -1};
    sf_gemm_desc d = desc(SF_F64, 2, 2, 3, A23, B32, c);
    assert_int_equal(sf_gemm_ref_cpu(&d), 0);
    assert_doubles(c, AB, 4);
}

static void test_gemm_transposes(void **state)
{
    (void)state;
    const double At[6] = {1, 4, 2, 5, 3, 6};           /* A stored as 3x2 */
    const double Bt[6] = {7, 9, 11, 8, 10, 12};        /* B stored as 2x3 */
    double c[4];
    sf_gemm_desc d = desc(SF_F64, 2, 2, 3, At, B32, c);
    d.trans_a = 1; d.lda = 2;
    assert_int_equal(sf_gemm_ref_cpu(&d), 0);
    assert_doubles(c, AB, 4);
    d = desc(SF_F64, 2, 2, 3, A23, Bt, c);
    d.trans_b = 1; d.ldb = 3;
    memset(c, 0, sizeof c);
    assert_int_equal(sf_gemm_ref_cpu(&d), 0);
    assert_doubles(c, AB, 4);
    d = desc(SF_F64, 2, 2, 3, At, Bt, c);
    d.trans_a = d.trans_b = 1; d.lda = 2; d.ldb = 3;
    memset(c, 0, sizeof c);
    assert_int_equal(sf_gemm_ref_cpu(&d), 0);
    assert_doubles(c, AB, 4);
    /* B·A (3x2 · 2x3 = 3x3) through the transposes of At and Bt: (Bᵀ)ᵀ·(Aᵀ)ᵀ */
    double c3[9];
    d = desc(SF_F64, 3, 3, 2, Bt, At, c3);
    d.trans_a = d.trans_b = 1; d.lda = 3; d.ldb = 2;
    assert_int_equal(sf_gemm_ref_cpu(&d), 0);
    const double BA[9] = {39, 54, 69, 49, 68, 87, 59, 82, 105};
    assert_doubles(c3, BA, 9);
}

static void test_gemm_alpha_beta_bias_relu(void **state)
{
    (void)state;
    double c[4] = {1, 2, 3, 4};
    const double bias[2] = {-200, 10};
    sf_gemm_desc d = desc(SF_F64, 2, 2, 3, A23, B32, c);
    d.alpha = 2.0; d.beta = 0.5;
    assert_int_equal(sf_gemm_ref_cpu(&d), 0);
    const double want[4] = {116.5, 129, 279.5, 310};
    assert_doubles(c, want, 4);
    /* bias per column, then relu: 2·AB + bias = [[-84, 138], [78, 318]] */
    d.beta = 0; d.bias = bias; d.epilogue = SF_EPI_RELU;
    assert_int_equal(sf_gemm_ref_cpu(&d), 0);
    const double want_relu[4] = {0, 138, 78, 318};
    assert_doubles(c, want_relu, 4);
    /* beta with a NaN-free c, negative alpha, no epilogue */
    double c2[4] = {10, 10, 10, 10};
    d = desc(SF_F64, 2, 2, 3, A23, B32, c2);
    d.alpha = -1; d.beta = 1;
    assert_int_equal(sf_gemm_ref_cpu(&d), 0);
    const double want2[4] = {-48, -54, -129, -144};
    assert_doubles(c2, want2, 4);
    /* beta = 0 ignores what c held, even NaN */
    double c3[4] = {NAN, NAN, NAN, NAN};
    d = desc(SF_F64, 2, 2, 3, A23, B32, c3);
    assert_int_equal(sf_gemm_ref_cpu(&d), 0);
    assert_doubles(c3, AB, 4);
}

static void test_gemm_gelu(void **state)
{
    (void)state;
    /* 1x1x1 products: c = gelu(a·b) for a few a·b */
    const double xs[5] = {-3, -0.5, 0, 0.5, 2};
    for (int i = 0; i < 5; i++) {
        double a = xs[i], b = 1, c = 123;
        sf_gemm_desc d = desc(SF_F64, 1, 1, 1, &a, &b, &c);
        d.epilogue = SF_EPI_GELU_TANH;
        assert_int_equal(sf_gemm_ref_cpu(&d), 0);
        double x = xs[i];
        double want = 0.5 * x * (1 + tanh(sqrt(2 / acos(-1.0)) * (x + 0.044715 * x * x * x)));
        if (fabs(c - want) > 1e-12) fail_msg("gelu(%g) = %.17g, want %.17g", x, c, want);
    }
}

static void test_gemm_f32_f16_and_ld(void **state)
{
    (void)state;
    /* f16 operands, f32 output written into a 2x4 buffer (ldc 4): columns 2..3 untouched */
    uint16_t a[6], b[6];
    for (int i = 0; i < 6; i++) {
        a[i] = sf_float_to_half((float)A23[i]);
        b[i] = sf_float_to_half((float)B32[i]);
    }
    float c[8] = {0, 0, -7, -7, 0, 0, -7, -7};
    sf_gemm_desc d = desc(SF_F16, 2, 2, 3, a, b, c);
    d.c_dtype = SF_F32;
    d.ldc = 4;
    assert_int_equal(sf_gemm_ref_cpu(&d), 0);
    const float want[8] = {58, 64, -7, -7, 139, 154, -7, -7};
    assert_memory_equal(c, want, sizeof c);
    /* A with a leading dimension wider than k: A is the left 2x3 of a 2x5 buffer */
    float aw[10] = {1, 2, 3, 99, 99, 4, 5, 6, 99, 99}, bf[6], cf[4];
    for (int i = 0; i < 6; i++) bf[i] = (float)B32[i];
    d = desc(SF_F32, 2, 2, 3, aw, bf, cf);
    d.lda = 5;
    assert_int_equal(sf_gemm_ref_cpu(&d), 0);
    for (int i = 0; i < 4; i++) assert_true(cf[i] == (float)AB[i]);
    /* bf16 in and out: the four products have at most 8 significant bits, so they are exact */
    uint16_t cb[4];
    uint16_t ab16[6], bb16[6];
    for (int i = 0; i < 6; i++) {
        ab16[i] = sf_float_to_bf16((float)A23[i]);
        bb16[i] = sf_float_to_bf16((float)B32[i]);
    }
    d = desc(SF_BF16, 2, 2, 3, ab16, bb16, cb);
    assert_int_equal(sf_gemm_ref_cpu(&d), 0);
    for (int i = 0; i < 4; i++) assert_true(sf_bf16_to_float(cb[i]) == (float)AB[i]);
}

static void test_gemm_batched_broadcast(void **state)
{
    (void)state;
    /* batch 2: A broadcast (stride 0); B[1] = 2·B[0]; C batch stride 4 */
    double b[12], c[8];
    for (int i = 0; i < 6; i++) {
        b[i] = B32[i];
        b[6 + i] = 2 * B32[i];
    }
    sf_gemm_desc d = desc(SF_F64, 2, 2, 3, A23, b, c);
    d.batch = 2;
    d.stride_a = 0; d.stride_b = 6; d.stride_c = 4;
    assert_int_equal(sf_gemm_ref_cpu(&d), 0);
    const double want[8] = {58, 64, 139, 154, 116, 128, 278, 308};
    assert_doubles(c, want, 8);
    /* B broadcast, A batched: A[1] = -A[0] */
    double a[12], c2[8];
    for (int i = 0; i < 6; i++) {
        a[i] = A23[i];
        a[6 + i] = -A23[i];
    }
    d = desc(SF_F64, 2, 2, 3, a, B32, c2);
    d.batch = 2;
    d.stride_a = 6; d.stride_b = 0; d.stride_c = 4;
    d.bias = (const double[]){1, 2};
    assert_int_equal(sf_gemm_ref_cpu(&d), 0);
    const double want2[8] = {59, 66, 140, 156, -57, -62, -138, -152};
    assert_doubles(c2, want2, 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contiguity_and_offsets),
        cmocka_unit_test(test_fill_contiguous_all_dtypes),
        cmocka_unit_test(test_fill_strided),
        cmocka_unit_test(test_random_matches_generator),
        cmocka_unit_test(test_random_strided_and_low_precision),
        cmocka_unit_test(test_convert_dtypes),
        cmocka_unit_test(test_convert_strided),
        cmocka_unit_test(test_convert_same_dtype_contiguous),
        cmocka_unit_test(test_compare_metrics),
        cmocka_unit_test(test_compare_nonfinite),
        cmocka_unit_test(test_compare_zero_reference_and_strides),
        cmocka_unit_test(test_host_copies),
        cmocka_unit_test(test_gemm_plain),
        cmocka_unit_test(test_gemm_transposes),
        cmocka_unit_test(test_gemm_alpha_beta_bias_relu),
        cmocka_unit_test(test_gemm_gelu),
        cmocka_unit_test(test_gemm_f32_f16_and_ld),
        cmocka_unit_test(test_gemm_batched_broadcast),
    };
    return cmocka_run_group_tests(tests, setup_lua, teardown_lua);
}
