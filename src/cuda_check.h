/* One way to check CUDA runtime calls: a failure becomes a Lua error naming the call and the op
 * in progress, and the (non-sticky) error state is cleared so the next op starts clean. */
#ifndef SF_CUDA_CHECK_H
#define SF_CUDA_CHECK_H
#include <cuda_runtime_api.h>
#include "sfbench.h"

_Noreturn void sf_raise_cuda(lua_State *L, int err, const char *call);

#define SF_CUDA(L, call) do { int e_ = (int)(call); if (e_ != 0) sf_raise_cuda((L), e_, #call); } while (0)
#endif
