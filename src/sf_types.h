/* The types the host code (src/) and the kernels (kernels/) share. Plain C, with neither Lua nor
 * CUDA: the C compiler and nvcc both include it. */
#ifndef SF_TYPES_H
#define SF_TYPES_H

#define SF_MAX_DIMS 8   /* dimensions of a tensor */

/* e4m3 and e5m2 are the OCP 8-bit floats (torch's float8_e4m3fn and float8_e5m2): e4m3 has no
 * infinity, its largest finite value is 448 and its NaN S.1111.111; e5m2 is IEEE-like, largest
 * finite 57344. Stores into them round to nearest even and saturate to the largest finite value
 * (NaN stays NaN), as the GPU's cvt.rn.satfinite does. */
typedef enum { SF_F32 = 0, SF_F16, SF_BF16, SF_I32, SF_F64, SF_E4M3, SF_E5M2, SF_DTYPE_COUNT } sf_dtype;

/* the largest finite value of an 8-bit float dtype */
static inline double sf_fp8_max(sf_dtype t) { return t == SF_E4M3 ? 448.0 : 57344.0; }

/* What is applied to a product before it is stored: the epilogue of a GEMM, the function of the
 * activation kernel, the activation of the FFN reference. Each takes the kinds it names:
 *   cuBLASLt and the CPU GEMM (src/gemm.h)      NONE, RELU, GELU_TANH
 *   our Hopper GEMM (kernels/gemm_hopper.h)     NONE, GELU_TANH, GELU_ERF, SWIGLU, ADD, ROPE
 *   sf_act_cuda (kernels/ffn.h)                 GELU_TANH, GELU_ERF, SILU
 *   sf_ffn_ref_cpu (kernels/ffn.h)              GELU_TANH, GELU_ERF, SWIGLU
 *   our GEMV (kernels/gemv.h)                   NONE, RELU, GELU_TANH, SWIGLU
 * The bias, where one is given, is added first. The Hopper GEMM's kinds come first, in the range
 * its kernels are built for. */
typedef enum {
    SF_EPI_NONE = 0,      /* C = A·Bᵀ                                                        */
    SF_EPI_GELU_TANH = 1, /* C = gelu_tanh(A·Bᵀ), the tanh approximation                     */
    SF_EPI_GELU_ERF = 2,  /* C = gelu_erf(A·Bᵀ), the exact form                              */
    SF_EPI_SWIGLU = 3,    /* B interleaved (gemm_hopper.h), N = 2I: C[M, N/2] = silu(gate)·up */
    SF_EPI_ADD = 4,       /* C = A·Bᵀ + R; R [M, N] may be the same memory as C              */
    SF_EPI_ROPE = 5,      /* C = A·Bᵀ, rotary embedding on C's first rope_cols columns       */
    SF_EPI_RELU = 6,      /* C = max(A·Bᵀ, 0)                                                */
    SF_EPI_SILU = 7       /* out = silu(in): the activation kernel only                      */
} sf_epilogue;

#endif
