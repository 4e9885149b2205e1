-- A two-point sweep of one user kernel for tests/gpu/nvtx.sh: each point runs in the NVTX ranges
-- nvtx_sweep / n=N / touch, and under --profile launches the kernel once between
-- cudaProfilerStart and Stop. No hold: a profiler may serialise launches.
local sf = require "sfbench"
local bench = require "sfbench.bench"
local sweep = require "sfbench.sweep"

local k = sf.compile([[
extern "C" __global__ void touch(float *p, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] += 1.0f;
}]]):kernel("touch")

sweep.run {
  name = "nvtx_sweep",
  points = sweep.product({ n = { 64, 128 } }),
  measure = function(pt)
    local t = sf.zeros({ pt.n })
    local r = bench.run { name = "touch", fn = function() k:launch(1, 128, { t, pt.n }) end, iters = 2, warmup = 1,
      warmup_time = 0, batch = 1, hold = false }
    return { n = pt.n, us = r.stats.median * 1e3 }, r
  end,
}
