-- cuBLAS(Lt) GEMM, or our Hopper GEMM (impl=hopper), over the Llama-2 projection shapes (x·Wᵀ
-- with Linear weights) and a square reference; TFLOP/s from 2·m·n·k.
-- Usage: sfbench gemm_sweep [model=7b|13b|70b] [tokens=512,2048,4096] [dtype=bf16,f16] [square=8192]
--        [impl=cublaslt] [fast_accum=false] [autotune=true] [cold=false] [iters=N] [sample_ms=25] [warmup_ms=500]
-- (dtype also f32, f64 and e4m3; impl also hopper and fastest)
-- Each shape is timed in its steady state (as ffn_sweep's: back-to-back calls for warmup_ms, then
-- samples of back-to-back calls lasting at least sample_ms; cold=true: one call a sample).
-- dtype=e4m3: x and W are quantized once, per tensor (the scales torch._scaled_mm takes), and the
-- product is written in bf16; each point's product is checked once, before it is timed, against
-- the CPU reference of the same e4m3 tensors, and a point out of bounds stops the sweep.
-- fast_accum=true: cuBLASLt's fast FP8 accumulation, which our Hopper GEMM's e4m3 path always does
-- (so impl=hopper with dtype=e4m3 needs it; without it, fastest runs cuBLASLt alone). Each row says the implementation asked for (impl)
-- and the one that ran (ran: fastest's pick; the CPU backend's reference).
local sf = require "sfbench"
local params = require "sfbench.params"
local models = require "sfbench.models"
local bench = require "sfbench.bench"
local sweep = require "sfbench.sweep"
local fp8ops = require "sfbench.fp8"
local validate = require "sfbench.validate"

local gpu = sf.device().backend == "cuda"
local p = params.get(bench.steady_defaults {
  model = "7b",
  tokens = gpu and { 512, 2048, 4096 } or { 16, 33 },
  dtype = gpu and { "bf16", "f16" } or { "f32" },
  square = gpu and { 8192 } or { 64 },
  cold = false,
  autotune = true,                 -- false: cuBLASLt's first heuristic choice
  impl = { "cublaslt" },
  fast_accum = false,
}, { model = models.names(), dtype = { "bf16", "f16", "f32", "f64", "e4m3" }, impl = { "cublaslt", "hopper", "fastest" } })
params.whole_numbers("tokens", p.tokens, 1, nil, "a token count, at least 1")
params.whole_numbers("square", p.square, 1, nil, "a matrix size, at least 1")
for _, impl in ipairs(p.impl) do
  for _, dtype in ipairs(p.dtype) do
    if impl ~= "cublaslt" and not gpu then
      params.usage_error(("impl=%s runs on the GPU; the CPU backend has the reference alone"):format(impl))
    end
    if impl == "hopper" and dtype == "e4m3" and not p.fast_accum then
      params.usage_error("impl=hopper with dtype=e4m3 needs fast_accum=true: our Hopper GEMM accumulates as "
        .. "cuBLASLt's fast accumulation does")
    end
  end
end
local steady = bench.steady(p)   -- checks iters, timeout, sample_ms and warmup_ms
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

-- an e4m3 tensor of random values (std) and its per-tensor scale
local function quantized(shape, std)
  local x = sf.randn(shape, "f32", { std = std })
  local q, scale = fp8ops.quantized(x)
  x:free()
  return q, scale
end

-- an e4m3 point's product against the CPU reference (double accumulation of the same e4m3
-- values) over its first rows and columns, which keeps the CPU's work small, by validate's bounds
-- for the output's dtype; the output poisoned first. Returns the implementation that ran.
local CHECK_ROWS, CHECK_COLS = 64, 256
local function check_fp8(pt, args)
  local rows, cols = math.min(pt.m, CHECK_ROWS), math.min(pt.n, CHECK_COLS)
  validate.poison(args.c)
  local ran = sf.ops.gemm(args)
  local a <close> = args.a:slice(1, 1, rows)
  local b <close> = args.b:slice(1, 1, cols)
  local c_rows <close> = args.c:slice(1, 1, rows)
  local c <close> = c_rows:slice(2, 1, cols)
  local ref = sf.tensor({ rows, cols }, "f32", { device = "cpu" })
  sf.ops.gemm { a = a:to("cpu"), b = b:to("cpu"), c = ref, transb = true, a_scale = args.a_scale:to("cpu"),
    b_scale = args.b_scale:to("cpu") }
  local r = validate.check(c:to("cpu"), ref)
  if not r.ok then
    error(("gemm_sweep: %s e4m3 m=%d n=%d k=%d against the CPU reference: %s"):format(pt.shape, pt.m, pt.n, pt.k,
      validate.describe(r)), 0)
  end
  return ran
end

local points = {}
for _, dtype in ipairs(p.dtype) do
  for _, impl in ipairs(p.impl) do
    for _, s in ipairs(p.square) do
      points[#points + 1] = { dtype = dtype, impl = impl, shape = "square", m = s, n = s, k = s }
    end
    for _, T in ipairs(p.tokens) do
      for _, s in ipairs(shapes(T)) do
        points[#points + 1] = { dtype = dtype, impl = impl, shape = s.name, m = s.m, n = s.n, k = s.k }
      end
    end
  end
end

sweep.run {
  params = p,
  points = points,
  context_extra = { model = cfg },
  columns = { "dtype", "impl", "ran", "shape", "m", "n", "k", { key = "ms", fmt = "%.4f" }, { key = "tflops", title = "TFLOP/s", fmt = "%.1f" },
    { key = "noise", fmt = "%.4f" }, "samples", "stop" },
  measure = function(pt)
    local fp8 = pt.dtype == "e4m3"
    local x, w, x_scale, w_scale
    if fp8 then
      x, x_scale = quantized({ pt.m, pt.k }, 1)
      w, w_scale = quantized({ pt.n, pt.k }, 0.02)
    else
      x = sf.randn({ pt.m, pt.k }, pt.dtype)
      w = sf.randn({ pt.n, pt.k }, pt.dtype, { std = 0.02 })
    end
    local y = sf.tensor({ pt.m, pt.n }, fp8 and "bf16" or pt.dtype)
    local args = { a = x, b = w, c = y, transb = true, autotune = p.autotune, a_scale = x_scale, b_scale = w_scale,
      impl = pt.impl, fast_accum = fp8 and p.fast_accum or nil }
    local ran = fp8 and check_fp8(pt, args) or sf.ops.gemm(args)
    local r = bench.run({
      name = ("%s %s %s"):format(pt.shape, pt.dtype, pt.impl),
      fn = function() sf.ops.gemm(args) end,
      flops = 2 * pt.m * pt.n * pt.k,
      cold = p.cold,
    }, steady)
    x:free(); w:free(); y:free()
    return { dtype = pt.dtype, impl = pt.impl, ran = ran, fast_accum = fp8 and p.fast_accum or nil, shape = pt.shape, m = pt.m,
      n = pt.n, k = pt.k, ms = r.stats.median,
      tflops = r.tflops, noise = r.stats.noise, samples = r.stats.n, stop = r.stop_reason }, r
  end,
}
