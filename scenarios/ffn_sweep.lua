-- The FFN at a Llama-2 shape over token counts: the PyTorch-eager-equivalent unfused path
-- (separate cuBLASLt GEMMs and activation kernels) against the fused one (the activation in our
-- Hopper GEMM's epilogue). Reports ms, effective TFLOP/s (2·T·H·I per GEMM), the speedup, the
-- device memory allocated for intermediates and what the fusion saves. Each impl is timed in its
-- own steady state, as in a model: warmed up with back-to-back calls for warmup_ms, then sampled
-- with back-to-back calls lasting at least sample_ms (on a power-limited GPU a single call after
-- an idle gap runs at a higher clock than sustained work; see layer_sweep).
-- dtype=e4m3: the FP8 SwiGLU FFN (ffn with e4m3 inputs; act=swiglu, the only one it has and the
-- default there; unfused: cuBLASLt FP8 GEMMs with h quantized per token between them, fused: our
-- Hopper GEMM's): x quantized to e4m3 with a scale per token before the timing (in the layer,
-- by its ffn_norm; not timed here), the weights with a scale per output channel, the output in
-- bf16; its FLOPs counted as the 16-bit FFN's. fp8_h: how the fused FFN quantizes h, the down
-- projection's input, as layer_sweep's fp8 layer does: "static" (the default, the layer's) fixes
-- h's scale from one calibrating call before the timing, and the gate/up GEMM's epilogue writes h
-- in e4m3 with it; "dynamic" quantizes h per token in a pass between the GEMMs. The unfused FFN
-- quantizes h per token either way (cuBLASLt's down projection needs per-row scales); the rows
-- say which each ran.
-- Usage: sfbench ffn_sweep [model=7b|13b|70b] [tokens=512,...] [dtype=f16|bf16|e4m3] [act=gelu,swiglu]
--        [impl=unfused,fused] [fp8_h=static|dynamic] [iters=N] [sample_ms=25] [warmup_ms=500]
local sf = require "sfbench"
local params = require "sfbench.params"
local models = require "sfbench.models"
local bench = require "sfbench.bench"
local sweep = require "sfbench.sweep"
local llama = require "sfbench.llama"
local fp8ops = require "sfbench.fp8"

local gpu = sf.device().backend == "cuda"
local p = params.get(bench.steady_defaults {
  model = "7b",
  tokens = gpu and { 512, 1024, 2048, 4096, 16384 } or { 16, 33 },
  dtype = "f16",
  act = { "gelu", "swiglu" },
  impl = { "unfused", "fused" },
  fp8_h = "static",
}, { model = models.names(), dtype = { "f16", "bf16", "e4m3" }, act = { "gelu", "swiglu" },
  impl = { "unfused", "fused", "gemv" }, fp8_h = { "static", "dynamic" } })
params.whole_numbers("tokens", p.tokens, 1, nil, "a token count, at least 1")
local fp8 = p.dtype == "e4m3"
if fp8 then
  -- the activation the FP8 FFN has, unless asked otherwise (and then refused)
  if sf.args.act == nil then p.act = { "swiglu" } end
  for _, act in ipairs(p.act) do
    if act ~= "swiglu" then params.usage_error("dtype=e4m3 runs act=swiglu alone (the FP8 FFN is Llama's SwiGLU)") end
  end
elseif sf.args.fp8_h ~= nil then
  params.usage_error("fp8_h is for dtype=e4m3 (how the FP8 FFN quantizes h)")
end
local steady = bench.steady(p)   -- checks iters, timeout, sample_ms and warmup_ms
local cfg = models.get(p.model)
if not gpu then
  cfg = models.scaled(cfg, 16)
  io.stderr:write("ffn_sweep: on the CPU backend every impl runs the reference; the timings only exercise the sweep\n")
end
local H, I = cfg.hidden, cfg.intermediate

-- weights once per activation, at the config's shapes (random; nothing is downloaded)
local weights = {}
local function weights_for(act)
  weights[act] = weights[act] or (fp8 and llama.fp8_ffn_weights(cfg) or llama.ffn_weights(cfg, act, p.dtype))
  return weights[act]
end

-- the input [T, H] and the output: e4m3 x with its scale per token beside a bf16 output, or both
-- in dtype
local function input_output(T)
  if not fp8 then return { x = sf.randn({ T, H }, p.dtype) }, sf.tensor({ T, H }, p.dtype) end
  local x = sf.randn({ T, H }, "bf16")
  local q = {}
  q.x, q.x_scale = fp8ops.quantized(x, true)
  x:free()
  return q, sf.tensor({ T, H }, "bf16")
end

local columns = { "act", "tokens", "dtype", "impl", { key = "ms", fmt = "%.4f" }, { key = "tflops", title = "TFLOP/s", fmt = "%.1f" },
  { key = "speedup", title = "× unfused", fmt = "%.3f" }, { key = "intermediate_mib", title = "intermediates MiB", fmt = "%.1f" },
  { key = "saved_mib", title = "saved MiB", fmt = "%.1f" } }
if fp8 then table.insert(columns, 5, "fp8_h") end
sweep.run {
  params = p,
  points = sweep.product({ tokens = p.tokens, act = p.act }, { "act", "tokens" }),
  context_extra = { model = cfg },
  columns = columns,
  measure = function(pt)
    local T, w = pt.tokens, weights_for(pt.act)
    local input, out = input_output(T)
    local cases, inter, fp8_h = {}, {}, {}
    for i, impl in ipairs(p.impl) do
      local args = { x = input.x, x_scale = input.x_scale, w1 = w.w1, w2 = w.w2, w3 = w.w3, w13 = w.w13,
        w1_scale = w.w1_scale, w2_scale = w.w2_scale, w3_scale = w.w3_scale, w13_scale = w.w13_scale, out = out,
        act = pt.act, impl = impl }
      if fp8 then
        fp8_h[i] = impl == "fused" and p.fp8_h or "dynamic"
        if fp8_h[i] == "static" then
          -- h's scale from one call's h (amax / 448), then fixed for the timed calls
          args.h_scale = sf.tensor({ 1 }, "f32")
          args.calibrate = true
          sf.ops.ffn(args)
          args.calibrate = nil
        end
      end
      -- the intermediates one call asks for (op scratch), measured alone before the timing
      sf.sync()
      sf.reset_peak()
      sf.ops.ffn(args)
      sf.sync()
      inter[i] = sf.memory().scratch_peak
      cases[i] = { name = ("%s %s T=%d"):format(pt.act, impl, T), fn = function() sf.ops.ffn(args) end,
        flops = 2 * T * H * I * (pt.act == "swiglu" and 3 or 2) }
    end
    local rs = {}
    for i, case in ipairs(cases) do
      rs[i] = bench.run({ name = case.name, fn = case.fn, flops = case.flops }, steady)
    end
    for _, t in pairs(input) do t:free() end
    out:free()
    local rows, base = {}, nil
    for i, impl in ipairs(p.impl) do
      local r = rs[i]
      local row = { act = pt.act, tokens = T, impl = impl, dtype = p.dtype, fp8_h = fp8_h[i], hidden = H, intermediate = I,
        ms = r.stats.median, tflops = r.tflops, intermediate_mib = inter[i] / 2 ^ 20, noise = r.stats.noise,
        stop = r.stop_reason }
      if impl == "unfused" then base = row end
      rows[i] = row
    end
    for _, row in ipairs(rows) do
      if base and row ~= base then
        row.speedup = base.ms / row.ms
        row.saved_mib = base.intermediate_mib - row.intermediate_mib
      end
    end
    return rows, rs
  end,
}
