/* Unit tests of src/dtype.c (names, sizes, fp16/bf16 conversions, the double load/store the CPU
 * backend goes through) and src/rng.h (the counter-based generator both backends share). */
#include "config.h"
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "sfbench.h"
#include "rng.h"

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- names and sizes ---- */

static void test_sizes_and_names(void **state)
{
    (void)state;
    assert_int_equal(sf_dtype_size(SF_F32), 4);
    assert_int_equal(sf_dtype_size(SF_F16), 2);
    assert_int_equal(sf_dtype_size(SF_BF16), 2);
    assert_int_equal(sf_dtype_size(SF_I32), 4);
    assert_int_equal(sf_dtype_size(SF_F64), 8);
    assert_string_equal(sf_dtype_name(SF_F32), "f32");
    assert_string_equal(sf_dtype_name(SF_F16), "f16");
    assert_string_equal(sf_dtype_name(SF_BF16), "bf16");
    assert_string_equal(sf_dtype_name(SF_I32), "i32");
    assert_string_equal(sf_dtype_name(SF_F64), "f64");
}

static void expect_name(const char *name, sf_dtype want)
{
    sf_dtype got = SF_DTYPE_COUNT;
    assert_int_equal(sf_dtype_from_name(name, &got), 0);
    assert_int_equal(got, want);
}

static void test_from_name(void **state)
{
    (void)state;
    expect_name("f32", SF_F32);
    expect_name("f16", SF_F16);
    expect_name("bf16", SF_BF16);
    expect_name("i32", SF_I32);
    expect_name("f64", SF_F64);
    expect_name("float32", SF_F32);
    expect_name("float", SF_F32);
    expect_name("float16", SF_F16);
    expect_name("half", SF_F16);
    expect_name("bfloat16", SF_BF16);
    expect_name("int32", SF_I32);
    expect_name("float64", SF_F64);
    expect_name("double", SF_F64);
    /* every canonical name maps back to itself */
    for (int i = 0; i < SF_DTYPE_COUNT; i++) expect_name(sf_dtype_name((sf_dtype)i), (sf_dtype)i);
}

static void test_from_name_unknown(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "f8", "F32", "fp32", "int", "bf", "f32 ", "float128", "i64"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sf_dtype got = SF_F64;
        assert_int_not_equal(sf_dtype_from_name(bad[i], &got), 0);
    }
}

/* ---- fp16 ---- */

static void test_half_exact_values(void **state)
{
    (void)state;
    assert_int_equal(sf_float_to_half(1.0f), 0x3c00);
    assert_int_equal(sf_float_to_half(-2.5f), 0xc100);
    assert_int_equal(sf_float_to_half(65504.0f), 0x7bff);          /* largest finite */
    assert_int_equal(sf_float_to_half(0.0f), 0x0000);
    assert_int_equal(sf_float_to_half(-0.0f), 0x8000);
    assert_int_equal(sf_float_to_half(0.5f), 0x3800);
    assert_int_equal(sf_float_to_half(ldexpf(1.0f, -14)), 0x0400); /* smallest normal */
    assert_int_equal(sf_float_to_half(ldexpf(1.0f, -24)), 0x0001); /* smallest subnormal */
    assert_int_equal(sf_float_to_half(ldexpf(1023.0f, -24)), 0x03ff); /* largest subnormal */
    assert_int_equal(sf_float_to_half(-ldexpf(1.0f, -24)), 0x8001);
    assert_int_equal(sf_float_to_half(1.0f / 3.0f), 0x3555);

    assert_true(sf_half_to_float(0x3c00) == 1.0f);
    assert_true(sf_half_to_float(0xc100) == -2.5f);
    assert_true(sf_half_to_float(0x7bff) == 65504.0f);
    assert_true(sf_half_to_float(0x0001) == ldexpf(1.0f, -24));
    assert_true(sf_half_to_float(0x8001) == -ldexpf(1.0f, -24));
    assert_true(sf_half_to_float(0x03ff) == ldexpf(1023.0f, -24));
    assert_true(sf_half_to_float(0x0400) == ldexpf(1.0f, -14));
    assert_true(sf_half_to_float(0x3555) == 0.333251953125f);
    assert_int_equal(bits_of(sf_half_to_float(0x8000)), 0x80000000u);  /* -0 keeps its sign */
}

static void test_half_overflow_inf_nan(void **state)
{
    (void)state;
    assert_int_equal(sf_float_to_half(INFINITY), 0x7c00);
    assert_int_equal(sf_float_to_half(-INFINITY), 0xfc00);
    assert_int_equal(sf_float_to_half(65520.0f), 0x7c00);          /* halfway to 2^16: rounds up, overflows */
    assert_int_equal(sf_float_to_half(65519.0f), 0x7bff);          /* below halfway: stays finite */
    assert_int_equal(sf_float_to_half(1e6f), 0x7c00);
    assert_int_equal(sf_float_to_half(-1e6f), 0xfc00);
    assert_int_equal(sf_float_to_half(3.0e38f), 0x7c00);
    assert_true(isinf(sf_half_to_float(0x7c00)) && sf_half_to_float(0x7c00) > 0);
    assert_true(isinf(sf_half_to_float(0xfc00)) && sf_half_to_float(0xfc00) < 0);

    uint16_t h = sf_float_to_half(NAN);
    assert_int_equal(h & 0x7c00, 0x7c00);
    assert_int_not_equal(h & 0x03ff, 0);                           /* a NaN, not infinity */
    assert_true(isnan(sf_half_to_float(h)));
    /* a NaN whose payload sits only in the low mantissa bits must not become infinity */
    h = sf_float_to_half(float_of(0x7f800001u));
    assert_int_not_equal(h & 0x03ff, 0);
    assert_true(isnan(sf_half_to_float(h)));
    assert_true(isnan(sf_half_to_float(0x7e00)));
    assert_true(isnan(sf_half_to_float(0x7c01)));
    assert_true(isnan(sf_half_to_float(0xfe00)));
    /* underflow: below half the smallest subnormal goes to (signed) zero */
    assert_int_equal(sf_float_to_half(ldexpf(1.0f, -26)), 0x0000);
    assert_int_equal(sf_float_to_half(-ldexpf(1.0f, -26)), 0x8000);
}

static void test_half_round_to_nearest_even(void **state)
{
    (void)state;
    const float ulp = ldexpf(1.0f, -10);                            /* fp16 ulp at 1.0 */
    assert_int_equal(sf_float_to_half(1.0f + ulp / 2), 0x3c00);      /* tie, even is down */
    assert_int_equal(sf_float_to_half(1.0f + 3 * ulp / 2), 0x3c02);  /* tie, even is up */
    assert_int_equal(sf_float_to_half(1.0f + ulp / 2 + ldexpf(1.0f, -20)), 0x3c01);  /* above the tie */
    assert_int_equal(sf_float_to_half(1.0f + ulp / 4), 0x3c00);
    assert_int_equal(sf_float_to_half(1.0f + 3 * ulp / 4), 0x3c01);
    assert_int_equal(sf_float_to_half(-(1.0f + 3 * ulp / 2)), 0xbc02);
    /* 2049 is halfway between 2048 and 2050 (ulp 2 there): even mantissa is 2048 */
    assert_int_equal(sf_float_to_half(2049.0f), 0x6800);
    assert_int_equal(sf_float_to_half(2051.0f), 0x6802);
    /* ties in the subnormal range */
    assert_int_equal(sf_float_to_half(ldexpf(1.0f, -25)), 0x0000);   /* 0.5 ulp: to even 0 */
    assert_int_equal(sf_float_to_half(ldexpf(3.0f, -25)), 0x0002);   /* 1.5 ulp: to even 2 */
    assert_int_equal(sf_float_to_half(ldexpf(5.0f, -25)), 0x0002);   /* 2.5 ulp: to even 2 */
    /* rounding up out of the subnormal range gives the smallest normal */
    assert_int_equal(sf_float_to_half(ldexpf(2047.0f, -25)), 0x0400);
    /* rounding carries into the exponent */
    assert_int_equal(sf_float_to_half(2.0f - ldexpf(1.0f, -12)), 0x4000);
}

static void test_half_round_trip_all(void **state)
{
    (void)state;
    /* every finite half survives half -> float -> half bit for bit */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x03ff)) continue;       /* NaNs: payload may change */
        uint16_t back = sf_float_to_half(sf_half_to_float((uint16_t)h));
        if (back != h) fail_msg("half 0x%04x came back as 0x%04x", h, back);
    }
}

/* ---- bf16 ---- */

static void test_bf16_exact_values(void **state)
{
    (void)state;
    assert_int_equal(sf_float_to_bf16(1.0f), 0x3f80);
    assert_int_equal(sf_float_to_bf16(-2.5f), 0xc020);
    assert_int_equal(sf_float_to_bf16(0.0f), 0x0000);
    assert_int_equal(sf_float_to_bf16(-0.0f), 0x8000);
    assert_int_equal(sf_float_to_bf16(65504.0f), 0x4780);           /* 65504 is not a bf16: rounds to 65536 */
    assert_int_equal(sf_float_to_bf16(1.0f / 3.0f), 0x3eab);
    assert_int_equal(sf_float_to_bf16(float_of(0x7f7f0000u)), 0x7f7f);   /* largest finite */
    assert_int_equal(sf_float_to_bf16(float_of(0x00010000u)), 0x0001);   /* smallest subnormal */
    assert_int_equal(sf_float_to_bf16(float_of(0x00800000u)), 0x0080);   /* smallest normal */

    assert_true(sf_bf16_to_float(0x3f80) == 1.0f);
    assert_true(sf_bf16_to_float(0xc020) == -2.5f);
    assert_true(sf_bf16_to_float(0x4780) == 65536.0f);
    assert_true(sf_bf16_to_float(0x3eab) == 0.333984375f);
    assert_true(sf_bf16_to_float(0x0001) == ldexpf(1.0f, -133));
    assert_true(sf_bf16_to_float(0x7f7f) == float_of(0x7f7f0000u));
}

static void test_bf16_overflow_inf_nan(void **state)
{
    (void)state;
    assert_int_equal(sf_float_to_bf16(INFINITY), 0x7f80);
    assert_int_equal(sf_float_to_bf16(-INFINITY), 0xff80);
    assert_int_equal(sf_float_to_bf16(float_of(0x7f7fffffu)), 0x7f80);  /* FLT_MAX rounds to inf */
    assert_int_equal(sf_float_to_bf16(float_of(0x7f7f8000u)), 0x7f80);  /* tie, odd: up to inf */
    assert_int_equal(sf_float_to_bf16(float_of(0x7f7f7fffu)), 0x7f7f);  /* below the tie: finite */
    assert_true(isinf(sf_bf16_to_float(0x7f80)));
    assert_true(isinf(sf_bf16_to_float(0xff80)) && sf_bf16_to_float(0xff80) < 0);

    uint16_t h = sf_float_to_bf16(NAN);
    assert_int_equal(h & 0x7f80, 0x7f80);
    assert_int_not_equal(h & 0x007f, 0);
    assert_true(isnan(sf_bf16_to_float(h)));
    /* payload only in the low 16 bits: truncation alone would give infinity */
    h = sf_float_to_bf16(float_of(0x7f800001u));
    assert_true(isnan(sf_bf16_to_float(h)));
    h = sf_float_to_bf16(float_of(0xff800001u));
    assert_true(isnan(sf_bf16_to_float(h)));
    assert_int_equal(h & 0x8000, 0x8000);                           /* sign kept */
    /* a NaN with the rounding carry bits set must not wrap to +0 or into the sign */
    h = sf_float_to_bf16(float_of(0x7fffffffu));
    assert_true(isnan(sf_bf16_to_float(h)));
    assert_int_equal(h & 0x8000, 0);
}

static void test_bf16_round_to_nearest_even(void **state)
{
    (void)state;
    assert_int_equal(sf_float_to_bf16(float_of(0x3f808000u)), 0x3f80);  /* 1 + 2^-8: tie to even (down) */
    assert_int_equal(sf_float_to_bf16(float_of(0x3f818000u)), 0x3f82);  /* tie to even (up) */
    assert_int_equal(sf_float_to_bf16(float_of(0x3f808001u)), 0x3f81);  /* just above the tie */
    assert_int_equal(sf_float_to_bf16(float_of(0x3f807fffu)), 0x3f80);  /* just below */
    assert_int_equal(sf_float_to_bf16(float_of(0xbf818000u)), 0xbf82);
    assert_int_equal(sf_float_to_bf16(float_of(0x3fff8000u)), 0x4000);  /* carry into the exponent */
    assert_int_equal(sf_float_to_bf16(257.0f), 0x4380);                 /* 257 = 256 + half ulp: even 256 */
    assert_int_equal(sf_float_to_bf16(259.0f), 0x4382);                 /* 259: tie, up to 260 */
}

static void test_bf16_round_trip_all(void **state)
{
    (void)state;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7f80) == 0x7f80 && (h & 0x007f)) continue;
        uint16_t back = sf_float_to_bf16(sf_bf16_to_float((uint16_t)h));
        if (back != h) fail_msg("bf16 0x%04x came back as 0x%04x", h, back);
    }
}

/* ---- fp8: e4m3 and e5m2 ---- */

/* a code's value from the formats' definitions, written out separately from dtype.c: e4m3 bias
 * 7, 3 mantissa bits, S.1111.111 NaN and no infinity; e5m2 bias 15, 2 mantissa bits, IEEE-like */
static double fp8_value(int code, sf_dtype t)
{
    const int e4 = t == SF_E4M3, mbits = e4 ? 3 : 2, bias = e4 ? 7 : 15;
    const int e = (code >> mbits) & (e4 ? 15 : 31), m = code & (e4 ? 7 : 3);
    const double sign = code & 0x80 ? -1.0 : 1.0;
    if (e4 && e == 15 && m == 7) return NAN;
    if (!e4 && e == 31) return m ? NAN : sign * INFINITY;
    if (e == 0) return sign * m * pow(2.0, 1 - bias - mbits);
    return sign * (1.0 + m / (double)(1 << mbits)) * pow(2.0, e - bias);
}

static void test_fp8_sizes_and_names(void **state)
{
    (void)state;
    assert_int_equal(sf_dtype_size(SF_E4M3), 1);
    assert_int_equal(sf_dtype_size(SF_E5M2), 1);
    assert_string_equal(sf_dtype_name(SF_E4M3), "e4m3");
    assert_string_equal(sf_dtype_name(SF_E5M2), "e5m2");
    expect_name("e4m3", SF_E4M3);
    expect_name("float8_e4m3fn", SF_E4M3);
    expect_name("e5m2", SF_E5M2);
    expect_name("float8_e5m2", SF_E5M2);
}

/* every code decodes to its value, and every finite value encodes back to its code (-0 to 0x80) */
static void test_fp8_every_code(void **state)
{
    (void)state;
    const sf_dtype types[2] = {SF_E4M3, SF_E5M2};
    for (int t = 0; t < 2; t++) {
        int nans = 0;
        for (int code = 0; code < 256; code++) {
            const double want = fp8_value(code, types[t]), got = sf_fp8_to_double((uint8_t)code, types[t]);
            if (isnan(want)) {
                assert_true(isnan(got));
                nans++;
                continue;
            }
            assert_true(got == want);
            if (isinf(want)) continue;
            assert_int_equal(sf_double_to_fp8(want, types[t]), code);
        }
        assert_int_equal(nans, t == 0 ? 2 : 6);
    }
    assert_true(sf_fp8_to_double(0x7e, SF_E4M3) == 448.0);          /* the largest finite values */
    assert_true(sf_fp8_to_double(0x7b, SF_E5M2) == 57344.0);
    assert_true(sf_fp8_to_double(0x01, SF_E4M3) == ldexp(1.0, -9));  /* the smallest subnormals */
    assert_true(sf_fp8_to_double(0x01, SF_E5M2) == ldexp(1.0, -16));
}

/* The nearest value, ties to the even code, against a search over every finite code; beyond the
 * largest finite value (infinity too) the largest finite value, NaN a NaN. */
static uint8_t nearest_fp8(double v, sf_dtype t)
{
    int best = -1;
    double best_d = INFINITY;
    for (int code = 0; code < 256; code++) {
        const double x = fp8_value(code, t);
        if (!isfinite(x) || (x == 0 && (code & 0x80) != (signbit(v) ? 0x80 : 0))) continue;
        const double d = fabs(x - v);
        if (d < best_d || (d == best_d && !(code & 1) && (best & 1))) best = code, best_d = d;
    }
    return (uint8_t)best;
}

static void test_fp8_round_and_saturate(void **state)
{
    (void)state;
    const sf_dtype types[2] = {SF_E4M3, SF_E5M2};
    uint64_t s = 12345;
    for (int t = 0; t < 2; t++) {
        for (int i = 0; i < 20000; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            /* a sign, an exponent over the formats' range and past it, 20 random mantissa bits */
            const double v = ((s >> 63) ? -1.0 : 1.0) * ldexp(1.0 + ((s >> 20) & 0xfffff) / 1048576.0,
                                                               (int)((s >> 8) % 44) - 24);
            assert_int_equal(sf_double_to_fp8(v, types[t]), nearest_fp8(v, types[t]));
        }
        /* the midpoints between neighbours: ties go to the even code */
        for (int code = 0; code < 0x7e; code++) {
            const double lo = fp8_value(code, types[t]), hi = fp8_value(code + 1, types[t]);
            if (!isfinite(hi)) break;
            assert_int_equal(sf_double_to_fp8((lo + hi) / 2, types[t]), code & 1 ? code + 1 : code);
        }
    }
    assert_int_equal(sf_double_to_fp8(1e9, SF_E4M3), 0x7e);
    assert_int_equal(sf_double_to_fp8(-INFINITY, SF_E4M3), 0xfe);
    assert_int_equal(sf_double_to_fp8(INFINITY, SF_E5M2), 0x7b);
    assert_true(isnan(sf_fp8_to_double(sf_double_to_fp8(NAN, SF_E4M3), SF_E4M3)));
    assert_true(isnan(sf_fp8_to_double(sf_double_to_fp8(NAN, SF_E5M2), SF_E5M2)));
    assert_int_equal(sf_double_to_fp8(-0.0, SF_E4M3), 0x80);
    assert_int_equal(sf_double_to_fp8(ldexp(1.0, -10), SF_E4M3), 0x00);  /* half the smallest: to even, 0 */
}

/* What another implementation gives (ml_dtypes 0.7.0, numpy float64 -> float8_e4m3fn / float8_e5m2
 * -> float64, inputs within range: it turns overflow into NaN or inf where we saturate):
 *   python3 -c "import numpy as np, ml_dtypes as md; xs=[0.1,0.3,1.0625,1.1,3.14159,-2.71828,100.0,300.0,
 *   447.9,0.0009765625,0.00146484375,1e-3,17.5,240.0,232.0]; [print([float(np.float64(x).astype(t)) for x in xs])
 *   for t in (md.float8_e4m3fn, md.float8_e5m2)]" */
static void test_fp8_known_values(void **state)
{
    (void)state;
    const double xs[15] = {0.1, 0.3, 1.0625, 1.1, 3.14159, -2.71828, 100.0, 300.0, 447.9, 0.0009765625,
                           0.00146484375, 1e-3, 17.5, 240.0, 232.0};
    const double e4m3[15] = {0.1015625, 0.3125, 1.0, 1.125, 3.25, -2.75, 96.0, 288.0, 448.0, 0.0, 0.001953125,
                             0.001953125, 18.0, 240.0, 224.0};
    const double e5m2[15] = {0.09375, 0.3125, 1.0, 1.0, 3.0, -2.5, 96.0, 320.0, 448.0, 0.0009765625, 0.00146484375,
                             0.0009765625, 16.0, 256.0, 224.0};
    for (int i = 0; i < 15; i++) {
        uint8_t q[2] = {0};
        sf_store_from_double(q, SF_E4M3, 0, xs[i]);
        sf_store_from_double(q, SF_E5M2, 1, xs[i]);
        assert_true(sf_load_as_double(q, SF_E4M3, 0) == e4m3[i]);
        assert_true(sf_load_as_double(q, SF_E5M2, 1) == e5m2[i]);
    }
}

/* ---- load/store through double ---- */

static void test_load_store(void **state)
{
    (void)state;
    float f[3] = {0};
    uint16_t h[3] = {0}, b[3] = {0};
    int32_t i[6] = {0};
    double d[2] = {0};
    sf_store_from_double(f, SF_F32, 1, 0.1);
    assert_true(f[1] == 0.1f);
    assert_true(f[0] == 0.0f && f[2] == 0.0f);
    assert_true(sf_load_as_double(f, SF_F32, 1) == (double)0.1f);
    sf_store_from_double(h, SF_F16, 2, -2.5);
    assert_int_equal(h[2], 0xc100);
    assert_int_equal(h[0] | h[1], 0);
    assert_true(sf_load_as_double(h, SF_F16, 2) == -2.5);
    sf_store_from_double(b, SF_BF16, 0, 1.0);
    assert_int_equal(b[0], 0x3f80);
    assert_true(sf_load_as_double(b, SF_BF16, 0) == 1.0);
    sf_store_from_double(d, SF_F64, 1, 0.1);
    assert_true(d[1] == 0.1);
    assert_true(sf_load_as_double(d, SF_F64, 1) == 0.1);
    /* i32: round half to even, NaN stores 0 */
    sf_store_from_double(i, SF_I32, 0, 2.5);
    sf_store_from_double(i, SF_I32, 1, 3.5);
    sf_store_from_double(i, SF_I32, 2, -1.5);
    sf_store_from_double(i, SF_I32, 3, 7.4);
    sf_store_from_double(i, SF_I32, 4, NAN);
    sf_store_from_double(i, SF_I32, 5, -123456789.0);
    assert_int_equal(i[0], 2);
    assert_int_equal(i[1], 4);
    assert_int_equal(i[2], -2);
    assert_int_equal(i[3], 7);
    assert_int_equal(i[4], 0);
    assert_int_equal(i[5], -123456789);
    assert_true(sf_load_as_double(i, SF_I32, 5) == -123456789.0);
    /* f32 through a double rounds once: 1 + 2^-30 is 1.0f */
    sf_store_from_double(f, SF_F32, 0, 1.0 + ldexp(1.0, -30));
    assert_true(f[0] == 1.0f);
}

/* ---- rng.h ---- */

static void test_rng_deterministic(void **state)
{
    (void)state;
    for (uint64_t i = 0; i < 1000; i++) {
        assert_true(sf_rng_u64(42, i, 0) == sf_rng_u64(42, i, 0));
        assert_true(sf_rng_unit(42, i, 1) == sf_rng_unit(42, i, 1));
        assert_true(sf_rng_gauss(42, i) == sf_rng_gauss(42, i));
    }
    /* known outputs pin the generator: the CUDA backend compiles the same header */
    assert_true(sf_mix64(0) == 0);
    assert_true(sf_rng_u64(0, 0, 0) == sf_mix64(0x632be59bd9b4e019ULL));
    assert_true(sf_rng_u64(5, 9, 1) == sf_mix64(sf_mix64(5 * 0x9e3779b97f4a7c15ULL + 1) ^ (9 + 0x632be59bd9b4e019ULL)));
}

static void test_rng_streams_differ(void **state)
{
    (void)state;
    int same_seed = 0, same_lane = 0, same_index = 0;
    for (uint64_t i = 0; i < 1000; i++) {
        same_seed += sf_rng_u64(1, i, 0) == sf_rng_u64(2, i, 0);
        same_lane += sf_rng_u64(1, i, 0) == sf_rng_u64(1, i, 1);
        same_index += sf_rng_u64(1, i, 0) == sf_rng_u64(1, i + 1, 0);
    }
    assert_int_equal(same_seed, 0);
    assert_int_equal(same_lane, 0);
    assert_int_equal(same_index, 0);
    /* different seeds give uncorrelated normal streams */
    double dot = 0;
    const int n = 20000;
    for (int i = 0; i < n; i++) dot += sf_rng_gauss(7, (uint64_t)i) * sf_rng_gauss(8, (uint64_t)i);
    assert_true(fabs(dot / n) < 0.05);
}

static void test_rng_unit_range(void **state)
{
    (void)state;
    double lo = 1, hi = 0, sum = 0;
    const int n = 100000;
    int below_half = 0;
    for (int i = 0; i < n; i++) {
        double u = sf_rng_unit(123, (uint64_t)i, 0);
        if (!(u > 0.0 && u < 1.0)) fail_msg("sf_rng_unit(123, %d, 0) = %.17g is outside (0, 1)", i, u);
        if (u < lo) lo = u;
        if (u > hi) hi = u;
        sum += u;
        below_half += u < 0.5;
    }
    /* loose statistical bounds: the mean's standard error is 0.0009 */
    assert_true(fabs(sum / n - 0.5) < 0.01);
    assert_true(lo < 0.001 && hi > 0.999);
    assert_true(below_half > 49000 && below_half < 51000);
}

/* sf_mix64 is a bijection; its inverse lets a test pick the index that yields a given word */
static uint64_t unxorshift(uint64_t y, int s)
{
    uint64_t x = y;
    for (int i = 0; i < 64 / s + 1; i++) x = y ^ (x >> s);
    return x;
}

static uint64_t inverse_odd(uint64_t c)
{
    uint64_t inv = c;                                   /* Newton: correct to 3, 6, 12, ... bits */
    for (int i = 0; i < 6; i++) inv *= 2 - c * inv;
    return inv;
}

static uint64_t unmix64(uint64_t x)
{
    x = unxorshift(x, 31);
    x *= inverse_odd(0x94d049bb133111ebULL);
    x = unxorshift(x, 27);
    x *= inverse_odd(0xbf58476d1ce4e5b9ULL);
    return unxorshift(x, 30);
}

/* the index at which sf_rng_u64(seed, ., lane) gives `word` */
static uint64_t index_for(uint64_t seed, uint64_t lane, uint64_t word)
{
    return (unmix64(word) ^ sf_mix64(seed * 0x9e3779b97f4a7c15ULL + lane)) - 0x632be59bd9b4e019ULL;
}

static void test_rng_unit_extremes(void **state)
{
    (void)state;
    for (uint64_t x = 1; x < (1ULL << 62); x = x * 3 + 7) assert_true(unmix64(sf_mix64(x)) == x);
    uint64_t i0 = index_for(99, 0, 0), i1 = index_for(99, 0, UINT64_MAX);
    assert_true(sf_rng_u64(99, i0, 0) == 0);
    assert_true(sf_rng_u64(99, i1, 0) == UINT64_MAX);
    double lo = sf_rng_unit(99, i0, 0), hi = sf_rng_unit(99, i1, 0);
    assert_true(lo > 0.0);
    assert_true(lo < 1e-15);
    /* the largest 53-bit value must still map below 1: uniform fills promise (0, 1), so
     * sf.rand{low=a, high=b} never returns b */
    if (!(hi < 1.0)) fail_msg("sf_rng_unit(99, %llu, 0) = %.17g: the largest draw is not below 1",
                              (unsigned long long)i1, hi);
    assert_true(hi > 1.0 - 1e-15);
}

static void test_rng_gauss_moments(void **state)
{
    (void)state;
    const int n = 100000;
    double sum = 0, sum2 = 0, sum4 = 0;
    int within1 = 0;
    for (int i = 0; i < n; i++) {
        double g = sf_rng_gauss(2024, (uint64_t)i);
        if (!isfinite(g)) fail_msg("sf_rng_gauss(2024, %d) = %g", i, g);
        sum += g;
        sum2 += g * g;
        sum4 += g * g * g * g;
        within1 += fabs(g) < 1.0;
    }
    double mean = sum / n, var = sum2 / n - mean * mean, kurt = sum4 / n / (var * var);
    /* standard errors: mean 0.003, std 0.0022, kurtosis ~0.015; bounds are 5-10x that */
    assert_true(fabs(mean) < 0.02);
    assert_true(fabs(sqrt(var) - 1.0) < 0.02);
    assert_true(fabs(kurt - 3.0) < 0.15);
    /* 68.27% within one standard deviation */
    assert_true(fabs((double)within1 / n - 0.6827) < 0.01);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_and_names),
        cmocka_unit_test(test_from_name),
        cmocka_unit_test(test_from_name_unknown),
        cmocka_unit_test(test_half_exact_values),
        cmocka_unit_test(test_half_overflow_inf_nan),
        cmocka_unit_test(test_half_round_to_nearest_even),
        cmocka_unit_test(test_half_round_trip_all),
        cmocka_unit_test(test_bf16_exact_values),
        cmocka_unit_test(test_bf16_overflow_inf_nan),
        cmocka_unit_test(test_bf16_round_to_nearest_even),
        cmocka_unit_test(test_bf16_round_trip_all),
        cmocka_unit_test(test_fp8_sizes_and_names),
        cmocka_unit_test(test_fp8_every_code),
        cmocka_unit_test(test_fp8_round_and_saturate),
        cmocka_unit_test(test_fp8_known_values),
        cmocka_unit_test(test_load_store),
        cmocka_unit_test(test_rng_deterministic),
        cmocka_unit_test(test_rng_streams_differ),
        cmocka_unit_test(test_rng_unit_range),
        cmocka_unit_test(test_rng_unit_extremes),
        cmocka_unit_test(test_rng_gauss_moments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
