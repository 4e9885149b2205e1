/* Counter-based random numbers, written once for the host and the device (nvcc includes this
 * too), so a tensor filled from a seed holds the same values on either backend. */
#ifndef SF_RNG_H
#define SF_RNG_H
#include <stdint.h>
#ifdef __CUDACC__
#define SF_HD __host__ __device__ __forceinline__
#else
#define SF_HD static inline
#endif

/* splitmix64 finaliser over (seed, index, lane): cheap, stateless, well mixed */
SF_HD uint64_t sf_mix64(uint64_t x)
{
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27; x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}
SF_HD uint64_t sf_rng_u64(uint64_t seed, uint64_t index, uint64_t lane)
{
    return sf_mix64(sf_mix64(seed * 0x9e3779b97f4a7c15ULL + lane) ^ (index + 0x632be59bd9b4e019ULL));
}
/* uniform in (0, 1): 52 random bits plus a half, so neither 0 (log() is safe) nor 1 (the largest
 * value, 1 - 2^-53, is a double; with 53 bits the top one would round to 1.0) */
SF_HD double sf_rng_unit(uint64_t seed, uint64_t index, uint64_t lane)
{
    return ((double)(sf_rng_u64(seed, index, lane) >> 12) + 0.5) * (1.0 / 4503599627370496.0);
}
/* Box-Muller; one normal per index keeps element i independent of the tensor's size */
SF_HD double sf_rng_gauss(uint64_t seed, uint64_t index)
{
    double u1 = sf_rng_unit(seed, index, 0), u2 = sf_rng_unit(seed, index, 1);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
#endif
