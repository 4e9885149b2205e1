-- The FFN at a Llama-2 shape over token counts: the PyTorch-eager-equivalent unfused path
-- (separate cuBLASLt GEMMs and activation kernels) against the fused one (the activation in our
-- Hopper GEMM's epilogue). Reports ms, effective TFLOP/s (2·T·H·I per GEMM), the speedup, the
-- device memory allocated for intermediates and what the fusion saves. Each impl is timed in its
-- own steady state, as in a model: warmed up with back-to-back calls for warmup_ms, then sampled
-- with back-to-back calls lasting at least sample_ms (on a power-limited GPU a single call after
-- an idle gap runs at a higher clock than sustained work; see layer_sweep).
-- Usage: sfbench ffn_sweep [model=7b|13b|70b] [tokens=512,...] [dtype=f16] [act=gelu,swiglu]
--        [impl=unfused,fused] [iters=N] [sample_ms=25] [warmup_ms=500]
local sf = require "sfbench"
local params = require "sfbench.params"
local models = require "sfbench.models"
local bench = require "sfbench.bench"
local sweep = require "sfbench.sweep"
local llama = require "sfbench.llama"

local gpu = sf.device().backend == "cuda"
local p = params.get(bench.steady_defaults {
  model = "7b",
  tokens = gpu and { 512, 1024, 2048, 4096, 16384 } or { 16, 33 },
  dtype = "f16",
  act = { "gelu", "swiglu" },
  impl = { "unfused", "fused" },
}, { model = models.names(), dtype = { "f16", "bf16" } })
local steady = bench.steady(p)   -- checks sample_ms and warmup_ms
local cfg = models.get(p.model)
if not gpu then
  cfg = models.scaled(cfg, 16)
  io.stderr:write("ffn_sweep: on the CPU backend every impl runs the reference; the timings only exercise the sweep\n")
end
local H, I = cfg.hidden, cfg.intermediate

-- weights once per activation, at the config's shapes (random; nothing is downloaded)
local weights = {}
local function weights_for(act)
  weights[act] = weights[act] or llama.ffn_weights(cfg, act, p.dtype)
  return weights[act]
end

sweep.run {
  params = p,
  points = sweep.product({ tokens = p.tokens, act = p.act }, { "act", "tokens" }),
  context_extra = { model = cfg },
  columns = { "act", "tokens", "impl", { key = "ms", fmt = "%.4f" }, { key = "tflops", title = "TFLOP/s", fmt = "%.1f" },
    { key = "speedup", title = "× unfused", fmt = "%.3f" }, { key = "intermediate_mib", title = "intermediates MiB", fmt = "%.1f" },
    { key = "saved_mib", title = "saved MiB", fmt = "%.1f" } },
  measure = function(pt)
    local T, w = pt.tokens, weights_for(pt.act)
    local x = sf.randn({ T, H }, p.dtype)
    local out = sf.tensor({ T, H }, p.dtype)
    local cases, inter = {}, {}
    for i, impl in ipairs(p.impl) do
      local args = { x = x, w1 = w.w1, w2 = w.w2, w3 = w.w3, w13 = w.w13, out = out, act = pt.act, impl = impl }
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
    x:free(); out:free()
    local rows, base = {}, nil
    for i, impl in ipairs(p.impl) do
      local r = rs[i]
      local row = { act = pt.act, tokens = T, impl = impl, dtype = p.dtype, hidden = H, intermediate = I,
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
