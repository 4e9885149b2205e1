-- What profilers see of a run (the mechanism is sf.nvtx_push/pop and sf.profiler_start/stop):
-- the NVTX ranges that measurements run in, and the one call of each case that --profile hands
-- a profiler started with its capture off.
local sf = require "sfbench"

local profile = {}

-- Nsight Compute's NVTX filters read '/' as the nesting of push/pop ranges and '@' as ending a
-- domain's name, so neither may be part of one range's name. Nested ranges then make paths:
-- `ncu --nvtx --nvtx-include "gemm_sweep/dtype=bf16 impl=cublaslt k=4096 m=512 n=4096 shape=o/"`.
local function range_name(s)
  return (tostring(s):gsub("[/@]", "_"))
end

local CLOSE_RANGE = setmetatable({}, { __close = function() sf.nvtx_pop() end })
local STOP_PROFILER = setmetatable({}, { __close = function() sf.profiler_stop() end })

-- `local _ <close> = profile.range(name)`: the rest of the block runs inside an NVTX range
-- called name, closed however the block ends, an error included.
function profile.range(name)
  sf.nvtx_push(range_name(name))
  return CLOSE_RANGE
end

-- Under --profile (sf.profile), one call of a case, given its bench.run options: after its setup
-- (and L2 flush), with the device idle before and after, between cudaProfilerStart and Stop. A
-- profiler that records only there (ncu --profile-from-start off, nsys
-- --capture-range=cudaProfilerApi) then sees this call alone of each case.
function profile.once(o)
  if not sf.profile then return end
  if o.setup then o.setup() end
  if o.cold then sf.flush_l2(o.stream) end
  sf.sync()
  sf.profiler_start()
  local _ <close> = STOP_PROFILER
  o.fn()
  sf.sync()
end

return profile
