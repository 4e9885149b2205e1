-- What launching costs. First the Lua layer: an empty user kernel launched N times from a Lua
-- loop against the same launch repeated from a C loop (kernel:launch_many), µs per launch of
-- wall clock. Then µs kernels, whose launch cost hides the kernel, timed by bench.run as
-- launched on a stream and as CUDA graph replays:
--   stream             bench.run's default: a sample's calls are queued behind a hold and run
--                      back to back, so the gap left between two is the GPU's own;
--   stream, hold=false samples run as the host queues them, its launch pace included;
--   graph              the calls captured into one CUDA graph, a replay a sample
--                      (bench.run{graph = true}).
-- The kernels: the empty one, rmsnorm at T = tokens (1: a decode step) and the decode GEMM
-- [tokens, hidden] · [hidden, hidden]ᵀ through cuBLASLt. "× graph" is a time over the graph's.
-- The JSON holds both tables (rows, graph_rows) and the bench.run results of the second.
-- (The CPU backend has no user kernels and no graphs: there it times the Lua -> built-in op path alone.)
-- Usage: sfbench launch_overhead [launches=10000] [repeats=5] [hidden=4096] [tokens=1] [dtype=bf16] [timeout=5]
local sf = require "sfbench"
local params = require "sfbench.params"
local stats = require "sfbench.stats"
local report = require "sfbench.report"
local bench = require "sfbench.bench"
local profile = require "sfbench.profile"

local p = params.get({ launches = 10000, repeats = 5, hidden = 4096, tokens = 1, dtype = "bf16", timeout = 5 },
  { dtype = { "bf16", "f16" } })
params.whole_numbers("launches", p.launches, 1, nil, "a count of launches, at least 1")
params.whole_numbers("repeats", p.repeats, 1, nil, "a count of repeats, at least 1")
params.whole_numbers("hidden", p.hidden, 1, nil, "a hidden size, at least 1")
params.whole_numbers("tokens", p.tokens, 1, nil, "a token count, at least 1")
bench.timeout(p.timeout)
local gpu = sf.device().backend == "cuda"
local _ <close> = profile.range("launch_overhead")

local variants, k, args
if gpu then
  local mod = sf.compile [[extern "C" __global__ void empty(float *p, int n) { if (n < 0) p[0] = 0; }]]
  k = mod:kernel("empty")
  args = { sf.tensor({ 1 }, "f32"), 1 }
  variants = {
    { name = "C loop (launch_many)", run = function() k:launch_many(p.launches, 1, 32, args) end },
    { name = "Lua loop (kernel:launch)", run = function() for _ = 1, p.launches do k:launch(1, 32, args) end end },
    { name = "Lua loop (module:launch by name)",
      run = function() for _ = 1, p.launches do mod:launch("empty", 1, 32, args) end end },
  }
else
  -- no user kernels without CUDA: the cost of the Lua -> op path with the smallest CPU op
  io.stderr:write("launch_overhead: CPU backend: user kernels need CUDA; timing sf.ops.gemm 1x1x1 calls instead (no C-loop baseline, no graphs)\n")
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
  local _ <close> = profile.range("variant=" .. v.name)
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

local graph_rows, results = nil, nil
if gpu then
  graph_rows, results = {}, {}
  local x = sf.randn({ p.tokens, p.hidden }, p.dtype)
  local w = sf.randn({ p.hidden }, p.dtype, { mean = 1, std = 0.1 })
  local W = sf.randn({ p.hidden, p.hidden }, p.dtype, { std = 0.02 })
  local h, y = sf.tensor({ p.tokens, p.hidden }, p.dtype), sf.tensor({ p.tokens, p.hidden }, p.dtype)
  local kernels = {
    { name = "empty kernel", fn = function() k:launch(1, 32, args) end },
    { name = ("rmsnorm T=%d"):format(p.tokens), fn = function() sf.ops.rmsnorm { x = x, weight = w, out = h } end },
    { name = ("gemm %dx%dx%d"):format(p.tokens, p.hidden, p.hidden),
      fn = function() sf.ops.gemm { a = x, b = W, c = y, transb = true } end },
  }
  local modes = { { "stream", {} }, { "stream, hold=false", { hold = false } }, { "graph", { graph = true } } }
  for _, kn in ipairs(kernels) do
    local these = {}
    for _, m in ipairs(modes) do
      local launch, opts = m[1], m[2]
      local _ <close> = profile.range(("kernel=%s launch=%s"):format(kn.name, launch))
      local r = bench.run({ name = kn.name .. ", " .. launch, fn = kn.fn, timeout = p.timeout }, opts)
      r.point = { kernel = kn.name, launch = launch }
      results[#results + 1] = r
      for _, warning in ipairs(r.warnings) do
        if not sf.quiet then io.stderr:write("sfbench: warning: ", r.name, ": ", warning, "\n") end
      end
      these[#these + 1] = { kernel = kn.name, launch = launch, us_per_call = r.stats.median * 1e3,
        noise = r.stats.noise, samples = r.stats.n, calls_per_sample = r.batch, feed = r.feed }
    end
    for _, row in ipairs(these) do
      row.vs_graph = row.us_per_call / these[#these].us_per_call
      graph_rows[#graph_rows + 1] = row
    end
  end
  report.print(graph_rows, { "kernel", "launch", { key = "us_per_call", title = "µs/call (median)", fmt = "%.3f" },
    { key = "vs_graph", title = "× graph", fmt = "%.2f" }, { key = "noise", fmt = "%.4f" }, "samples",
    { key = "calls_per_sample", title = "calls/sample" }, "feed" })
end

local path = report.save("launch_overhead", { params = p, rows = rows, graph_rows = graph_rows, results = results,
  complete = true })
if not sf.quiet then print("results: " .. path) end
