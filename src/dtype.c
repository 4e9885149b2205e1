/* Element types: names, sizes, and the fp16/bf16 conversions the CPU backend uses. */
#include "config.h"
#include <math.h>
#include <string.h>
#include "sfbench.h"

static const struct { const char *name; size_t size; } dtypes[SF_DTYPE_COUNT] = {
    [SF_F32] = {"f32", 4}, [SF_F16] = {"f16", 2}, [SF_BF16] = {"bf16", 2},
    [SF_I32] = {"i32", 4}, [SF_F64] = {"f64", 8},
};

size_t sf_dtype_size(sf_dtype t) { return dtypes[t].size; }
const char *sf_dtype_name(sf_dtype t) { return dtypes[t].name; }

int sf_dtype_from_name(const char *name, sf_dtype *out)
{
    static const struct { const char *alias; sf_dtype t; } aliases[] = {
        {"float32", SF_F32}, {"float", SF_F32}, {"float16", SF_F16}, {"half", SF_F16},
        {"bfloat16", SF_BF16}, {"int32", SF_I32}, {"float64", SF_F64}, {"double", SF_F64},
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

double sf_load_as_double(const void *base, sf_dtype t, int64_t i)
{
    switch (t) {
    case SF_F32: return ((const float *)base)[i];
    case SF_F16: return sf_half_to_float(((const uint16_t *)base)[i]);
    case SF_BF16: return sf_bf16_to_float(((const uint16_t *)base)[i]);
    case SF_I32: return ((const int32_t *)base)[i];
    case SF_F64: return ((const double *)base)[i];
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
    default: break;
    }
}
