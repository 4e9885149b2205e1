/* The types the host code (src/) and the kernels (kernels/) share. Plain C, with neither Lua nor
 * CUDA: the C compiler and nvcc both include it. */
#ifndef SF_TYPES_H
#define SF_TYPES_H

#define SF_MAX_DIMS 8   /* dimensions of a tensor */

typedef enum { SF_F32 = 0, SF_F16, SF_BF16, SF_I32, SF_F64, SF_DTYPE_COUNT } sf_dtype;

#endif
