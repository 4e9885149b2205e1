/* Element types: names, sizes, and the fp16, bf16 and fp8 conversions the CPU backend uses. */
#include "config.h"
#include <math.h>
#include <string.h>
#include "sfbench.h"

static const struct { const char *name; size_t size; } dtypes[SF_DTYPE_COUNT] = {
    [SF_F32] = {"f32", 4}, [SF_F16] = {"f16", 2}, [SF_BF16] = {"bf16", 2},
    [SF_I32] = {"i32", 4}, [SF_F64] = {"f64", 8}, [SF_E4M3] = {"e4m3", 1}, [SF_E5M2] = {"e5m2", 1},
};

size_t sf_dtype_size(sf_dtype t) { return dtypes[t].size; }
const char *sf_dtype_name(sf_dtype t) { return dtypes[t].name; }

int sf_dtype_from_name(const char *name, sf_dtype *out)
{
    static const struct { const char *alias; sf_dtype t; } aliases[] = {
        {"float32", SF_F32}, {"float", SF_F32}, {"float16", SF_F16}, {"half", SF_F16},
        {"bfloat16", SF_BF16}, {"int32", SF_I32}, {"float64", SF_F64}, {"double", SF_F64},
        {"float8_e4m3fn", SF_E4M3}, {"float8_e5m2", SF_E5M2},
    };
    for (int i = 0; i < SF_DTYPE_COUNT; i++)
        if (strcmp(name, dtypes[i].name) == 0) { *out = (sf_dtype)i; return 0; }
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(name, aliases[i].alias) == 0) { *out = aliases[i].t; return 0; }
    return -1;
}

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float sf_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13));       /* inf/nan */
    if (exp == 0) {                                                           /* subnormal */
        float v = ldexpf((float)man, -24);
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

/* Round to nearest even, as the GPU's __float2half_rn does. */
uint16_t sf_float_to_half(float f)
{
    uint32_t u = f32_bits(f), sign = (u >> 16) & 0x8000;
    uint32_t abs = u & 0x7fffffffu;
    if (abs >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0));
    if (abs >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);                /* overflow */
    if (abs < 0x38800000u) {                                                  /* subnormal */
        float v = bits_f32(abs) * 16777216.0f;                                /* 2^24 */
        return (uint16_t)(sign | (uint32_t)nearbyintf(v));
    }
    uint32_t mant_odd = (abs >> 13) & 1;
    abs += 0xfff + mant_odd;
    return (uint16_t)(sign | ((abs - 0x38000000u) >> 13));
}

float sf_bf16_to_float(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t sf_float_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  /* quiet nan */
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

/* The two fp8 formats: mantissa bits, exponent bias (the largest finite value: sf_fp8_max). */
typedef struct { int mbits, bias; } fp8_format;
static const fp8_format *fp8_of(sf_dtype t)
{
    static const fp8_format e4m3 = {3, 7}, e5m2 = {2, 15};
    return t == SF_E4M3 ? &e4m3 : &e5m2;
}

double sf_fp8_to_double(uint8_t b, sf_dtype t)
{
    const fp8_format *f = fp8_of(t);
    const int exp = (b & 0x7f) >> f->mbits, man = b & ((1 << f->mbits) - 1);
    const int top = (1 << (7 - f->mbits)) - 1;          /* the largest exponent field */
    double v;
    if (t == SF_E4M3 && exp == top && man == (1 << f->mbits) - 1) return NAN;
    if (t == SF_E5M2 && exp == top) {
        if (man) return NAN;
        v = INFINITY;
    } else if (exp == 0) {
        v = ldexp(man, 1 - f->bias - f->mbits);         /* subnormal */
    } else {
        v = ldexp(man + (1 << f->mbits), exp - f->bias - f->mbits);
    }
    return b & 0x80 ? -v : v;
}

/* Round to nearest even, straight from the double (no float step: no double rounding), then
 * saturate to the largest finite value; NaN gives the format's NaN. */
uint8_t sf_double_to_fp8(double v, sf_dtype t)
{
    const fp8_format *f = fp8_of(t);
    const uint8_t sign = signbit(v) ? 0x80 : 0;
    if (isnan(v)) return sign | (t == SF_E4M3 ? 0x7f : 0x7e); /* the GPU's NaN codes, sign kept */
    double a = fabs(v);
    const int emin = 1 - f->bias;                        /* the exponent of the smallest normal */
    int e = emin;
    const double max = sf_fp8_max(t);
    if (isinf(a)) {
        a = max;
    } else if (a > 0) {
        frexp(a, &e);                                    /* a = m·2^e, m in [0.5, 1) */
        e = e - 1 < emin ? emin : e - 1;
        const double quantum = ldexp(1.0, e - f->mbits); /* the spacing of the values around a */
        a = nearbyint(a / quantum) * quantum;            /* exact scaling, then ties to even */
        if (a > max) a = max;
    }
    if (a == 0) return sign;
    frexp(a, &e);
    e -= 1;                                              /* rounding may have carried to the next binade */
    if (e < emin) return (uint8_t)(sign | (int)ldexp(a, f->mbits - emin));
    const int man = (int)ldexp(a, f->mbits - e) - (1 << f->mbits);
    return (uint8_t)(sign | (e + f->bias) << f->mbits | man);
}

double sf_load_as_double(const void *base, sf_dtype t, int64_t i)
{
    switch (t) {
    case SF_F32: return ((const float *)base)[i];
    case SF_F16: return sf_half_to_float(((const uint16_t *)base)[i]);
    case SF_BF16: return sf_bf16_to_float(((const uint16_t *)base)[i]);
    case SF_I32: return ((const int32_t *)base)[i];
    case SF_F64: return ((const double *)base)[i];
    case SF_E4M3:
    case SF_E5M2: return sf_fp8_to_double(((const uint8_t *)base)[i], t);
    default: return NAN;
    }
}

void sf_store_from_double(void *base, sf_dtype t, int64_t i, double v)
{
    switch (t) {
    case SF_F32: ((float *)base)[i] = (float)v; break;
    case SF_F16: ((uint16_t *)base)[i] = sf_float_to_half((float)v); break;
    case SF_BF16: ((uint16_t *)base)[i] = sf_float_to_bf16((float)v); break;
    case SF_I32: ((int32_t *)base)[i] = isnan(v) ? 0 : (int32_t)lrint(v); break;
    case SF_F64: ((double *)base)[i] = v; break;
    case SF_E4M3:
    case SF_E5M2: ((uint8_t *)base)[i] = sf_double_to_fp8(v, t); break;
    default: break;
    }
}
