-- What the Lua layer costs: an empty user kernel launched N times from a Lua loop, against the
-- same launch repeated from a C loop (kernel:launch_many). Reports µs per launch for both.
-- (The CPU backend has no user kernels: there it times the Lua -> built-in op path alone.)
-- Usage: sfbench launch_overhead [launches=10000] [repeats=5]
local sf = require "sfbench"
local params = require "sfbench.params"
local stats = require "sfbench.stats"
local report = require "sfbench.report"

local p = params.get { launches = 10000, repeats = 5 }
local gpu = sf.device().backend == "cuda"

local variants
if gpu then
  local mod = sf.compile [[extern "C" __global__ void empty(float *p, int n) { if (n < 0) p[0] = 0; }]]
  local k = mod:kernel("empty")
  local args = { sf.tensor({ 1 }, "f32"), 1 }
  variants = {
    { name = "C loop (launch_many)", run = function() k:launch_many(p.launches, 1, 32, args) end },
    { name = "Lua loop (kernel:launch)", run = function() for _ = 1, p.launches do k:launch(1, 32, args) end end },
    { name = "Lua loop (module:launch by name)",
      run = function() for _ = 1, p.launches do mod:launch("empty", 1, 32, args) end end },
  }
else
  -- no user kernels without CUDA: the cost of the Lua -> op path with the smallest CPU op
  io.stderr:write("launch_overhead: CPU backend: user kernels need CUDA; timing sf.ops.gemm 1x1x1 calls instead (no C-loop baseline)\n")
  local a, c = sf.zeros({ 1, 1 }, "f32"), sf.tensor({ 1, 1 }, "f32")
  local op = { a = a, b = a, c = c }
  variants = { { name = "Lua loop (sf.ops.gemm 1x1x1, CPU)", run = function() for _ = 1, p.launches do sf.ops.gemm(op) end end } }
end

-- wall time of n launches until the GPU has run them all, in µs per launch
local function per_launch(run)
  sf.sync()
  local t0 = sf.now()
  run()
  sf.sync()
  return (sf.now() - t0) * 1e6 / p.launches
end

for _, v in ipairs(variants) do v.run() end     -- warm-up
local rows, c_us = {}, nil
for _, v in ipairs(variants) do
  local samples = {}
  for i = 1, p.repeats do samples[i] = per_launch(v.run) end
  local s = stats.summary(samples)
  c_us = c_us or s.median
  rows[#rows + 1] = { variant = v.name, us_per_launch = s.median, min = s.min, max = s.max,
    ratio = gpu and s.median / c_us or nil }
end
local columns = { "variant", { key = "us_per_launch", title = "µs/launch (median)", fmt = "%.3f" },
  { key = "min", fmt = "%.3f" }, { key = "max", fmt = "%.3f" }, { key = "ratio", title = "× C loop", fmt = "%.2f" } }
report.print(rows, columns)
local path = report.save("launch_overhead", { params = p, rows = rows, complete = true })
if not sf.quiet then print("results: " .. path) end
