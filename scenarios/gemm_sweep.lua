-- cuBLAS(Lt) GEMM over the Llama-2 projection shapes (x·Wᵀ with Linear weights) and a square
-- reference; TFLOP/s from 2·m·n·k.
-- Usage: sfbench gemm_sweep [model=7b|13b|70b] [tokens=512,4096] [dtype=bf16,f16] [square=8192]
--        [cold=false] [iters=N] [sample_ms=25] [warmup_ms=500]
-- Each shape is timed in its steady state (as ffn_sweep's: back-to-back calls for warmup_ms, then
-- samples of back-to-back calls lasting at least sample_ms; cold=true: one call a sample).
local sf = require "sfbench"
local params = require "sfbench.params"
local models = require "sfbench.models"
local bench = require "sfbench.bench"
local sweep = require "sfbench.sweep"

local gpu = sf.device().backend == "cuda"
local p = params.get(bench.steady_defaults {
  model = "7b",
  tokens = gpu and { 512, 2048, 4096 } or { 16, 33 },
  dtype = gpu and { "bf16", "f16" } or { "f32" },
  square = gpu and { 8192 } or { 64 },
  cold = false,
  autotune = true,                 -- false: cuBLASLt's first heuristic choice
}, { model = models.names() })
local steady = bench.steady(p)   -- checks sample_ms and warmup_ms
local cfg = models.get(p.model)
if not gpu then cfg = models.scaled(cfg, 16) end   -- the CPU backend: the shapes scaled down

-- (m, n, k) of each projection for T tokens: out[T, n] = x[T, k] · W[n, k]ᵀ
local function shapes(T)
  local kv = cfg.kv_heads * cfg.head_dim
  return {
    { name = "qkv", m = T, n = cfg.hidden + 2 * kv, k = cfg.hidden },
    { name = "o", m = T, n = cfg.hidden, k = cfg.hidden },
    { name = "gate_up", m = T, n = 2 * cfg.intermediate, k = cfg.hidden },
    { name = "down", m = T, n = cfg.hidden, k = cfg.intermediate },
  }
end

local points = {}
for _, dtype in ipairs(p.dtype) do
  for _, s in ipairs(p.square) do
    points[#points + 1] = { dtype = dtype, shape = "square", m = s, n = s, k = s }
  end
  for _, T in ipairs(p.tokens) do
    for _, s in ipairs(shapes(T)) do
      points[#points + 1] = { dtype = dtype, shape = s.name, m = s.m, n = s.n, k = s.k }
    end
  end
end

sweep.run {
  params = p,
  points = points,
  context_extra = { model = cfg },
  columns = { "dtype", "shape", "m", "n", "k", { key = "ms", fmt = "%.4f" }, { key = "tflops", title = "TFLOP/s", fmt = "%.1f" },
    { key = "noise", fmt = "%.4f" }, "samples", "stop" },
  measure = function(pt)
    local out_dtype = pt.dtype
    local x = sf.randn({ pt.m, pt.k }, pt.dtype)
    local w = sf.randn({ pt.n, pt.k }, pt.dtype, { std = 0.02 })
    local y = sf.tensor({ pt.m, pt.n }, out_dtype)
    local r = bench.run({
      name = ("%s %s"):format(pt.shape, pt.dtype),
      fn = function() sf.ops.gemm { a = x, b = w, c = y, transb = true, autotune = p.autotune } end,
      flops = 2 * pt.m * pt.n * pt.k,
      cold = p.cold,
    }, steady)
    x:free(); w:free(); y:free()
    return { dtype = pt.dtype, shape = pt.shape, m = pt.m, n = pt.n, k = pt.k, ms = r.stats.median,
      tflops = r.tflops, noise = r.stats.noise, samples = r.stats.n, stop = r.stop_reason }, r
  end,
}
