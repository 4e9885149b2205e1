-- One Llama-2 decoder layer, baseline (PyTorch-eager order) against optimized (and, with
-- impl=fp8, the FP8 layer: FP8 projections, their inputs quantized by the norms), over sequence
-- lengths: ms, speedup, TFLOP/s, peak device memory of the layer (weights, activations and op
-- scratch), and the median time of each stage so a user sees where the time goes. Each impl is
-- timed in its own steady state, as a model runs its layers: warmed up with back-to-back forwards
-- for warmup_ms, then sampled with back-to-back forwards lasting at least sample_ms. On a
-- power-limited GPU the clock follows the load: a single call after an idle gap, or samples
-- alternated with a lighter impl's, run 5-15% faster than sustained work (measured on the H100
-- here), which would flatter the more compute-dense impl.
-- Usage: sfbench layer_sweep [model=7b|13b|70b] [seq=512,...] [batch=1] [dtype=f16]
--        [impl=baseline,optimized] [qkv=packed|split] [iters=N] [sample_ms=25] [warmup_ms=500] [allow_long=false]
--        [stages=NAME,...] [fp8_h=static|dynamic] [profile_iters=20]
-- qkv: the optimized layer's QKV projection output, one packed [T, (H + 2·Hkv)·hd] buffer or
-- (MHA) q, k and v each contiguous. stages: time only these stages of each impl (e.g.
-- stages=attention for both, or impl=optimized stages=qkv_proj+rope,o_proj+residual,ffn+residual
-- for the optimized layer's GEMMs alone), after one whole forward has filled every buffer with
-- real values (a GEMM over zeros draws less power, so on a power-limited GPU it runs faster);
-- the TFLOP/s column is then left out. fp8_h: how the fp8 layer's FFN quantizes h, its input to
-- the down projection: static (the default) with one scale fixed ahead by a calibration forward
-- (llama's L.calibrate) before the timing, or dynamic, per token (a pass over h of its own);
-- without impl=fp8 among the impls, fp8_h is a usage error.
local sf = require "sfbench"
local params = require "sfbench.params"
local models = require "sfbench.models"
local llama = require "sfbench.llama"
local bench = require "sfbench.bench"
local sweep = require "sfbench.sweep"

local gpu = sf.device().backend == "cuda"
local p = params.get(bench.steady_defaults {
  model = "7b",
  seq = gpu and { 512, 1024, 2048, 4096 } or { 16, 33 },
  batch = 1,
  dtype = "f16",
  impl = { "baseline", "optimized" },
  profile_iters = gpu and 20 or 2,
  allow_long = false,
  qkv = "packed",
  stages = {},                     -- empty: the whole layer
  fp8_h = "static",
}, { model = models.names(), dtype = { "f16", "bf16" }, impl = { "baseline", "optimized", "fp8" },
  qkv = { "packed", "split" }, fp8_h = { "static", "dynamic" } })
local steady = bench.steady(p)   -- checks iters, timeout, sample_ms and warmup_ms
params.whole_numbers("seq", p.seq, 1, nil, "a sequence length, at least 1")
params.whole_numbers("batch", p.batch, 1, nil, "a batch size, at least 1")
params.whole_numbers("profile_iters", p.profile_iters, 1, nil, "runs of the stage profile, at least 1")
for _, impl in ipairs(p.impl) do
  local bad = #p.stages > 0 and llama.check_stages(impl, p.qkv, p.stages)
  if bad then params.usage_error("bad value for stages: " .. bad) end
end
if sf.args.fp8_h ~= nil then
  local fp8 = false
  for _, impl in ipairs(p.impl) do fp8 = fp8 or impl == "fp8" end
  if not fp8 then params.usage_error("fp8_h is for impl=fp8 (how the FP8 layer's FFN quantizes h)") end
end
local cfg = models.get(p.model)
if not gpu then
  cfg = models.scaled(cfg, 16)
  io.stderr:write("layer_sweep: on the CPU backend every op runs its reference; the timings only exercise the sweep\n")
end
for _, n in ipairs(p.seq) do                        -- a clear error before anything is allocated
  if n > cfg.max_positions and not p.allow_long then
    params.usage_error(("seq %d is longer than %s's %d positions (allow_long=true to go past them)"):format(n,
      cfg.name, cfg.max_positions))
  end
end

sweep.run {
  params = p,
  points = sweep.product({ seq = p.seq }, { "seq" }),
  -- batch: the batch size (by name, batch is bench.run's calls a sample); stages: the rows' stage
  -- times, where the parameter of that name picks the stages run
  column_kinds = { batch = "parameter", stages = "measurement" },
  context_extra = { model = cfg },
  columns = { "seq", "impl", { key = "ms", fmt = "%.3f" }, { key = "speedup", title = "× baseline", fmt = "%.2f" },
    { key = "tflops", title = "TFLOP/s", fmt = "%.1f" }, { key = "peak_mib", title = "peak MiB", fmt = "%.0f" },
    { key = "stages", title = "stages (ms)" } },
  measure = function(pt)
    local layers, peaks, cases, fp8_h = {}, {}, {}, {}
    for i, impl in ipairs(p.impl) do
      -- the device memory this layer adds, in a forward after a first one: its tensors at their
      -- peak (weights, activations) less those allocated before, plus the most one of its ops
      -- asks of the scratch buffer. The buffer itself is not counted: it only grows, and every
      -- impl of the sweep shares it (an impl after a hungrier one would be counted without it),
      -- and the fp8 layer's calibration forward asks more of it than a timed forward does.
      collectgarbage() -- tensors no one holds any more (an earlier impl's temporaries) are freed now
      sf.sync()
      local before = sf.memory()
      local layer = llama.layer(cfg, { impl = impl, batch = p.batch, seq = pt.seq, dtype = p.dtype,
        allow_long = p.allow_long, qkv = p.qkv, stages = #p.stages > 0 and p.stages or nil })
      layer.input:randn { std = 1 }
      -- static where the layer could fix h's scale (its FFN fused: our Hopper kernels, or the CPU)
      fp8_h[i] = impl == "fp8" and (p.fp8_h == "static" and layer.calibrate() and "static" or "dynamic") or nil
      layer.forward_all() -- with stages=, what the skipped stages leave is a real forward's data
      collectgarbage() -- and the construction's temporaries (packing, quantizing) are not the layer's
      sf.sync()
      sf.reset_peak()
      local scratch = sf.memory().scratch
      layer.forward_all()
      sf.sync()
      local m = sf.memory()
      -- the first forward grew the scratch buffer to what the layer asks, so the peak's scratch is m.scratch
      assert(m.scratch == scratch, "layer_sweep: the scratch buffer grew in the measured forward")
      peaks[i] = (m.peak - m.scratch) - (before.in_use - before.scratch) + m.scratch_peak
      layers[i] = layer
      cases[i] = { name = ("%s N=%d"):format(impl, pt.seq), fn = layer.forward,
        flops = #p.stages == 0 and llama.flops(cfg, p.batch, pt.seq) or nil }
    end
    local rs = {}
    for i, case in ipairs(cases) do
      rs[i] = bench.run({ name = case.name, fn = case.fn, flops = case.flops }, steady)
    end
    local rows, base = {}, nil
    for i, impl in ipairs(p.impl) do
      local r, stages = rs[i], layers[i].profile(p.profile_iters)
      rows[i] = { seq = pt.seq, impl = impl, batch = p.batch, dtype = p.dtype, ms = r.stats.median, tflops = r.tflops,
        fp8_h = fp8_h[i],
        peak_mib = peaks[i] / 2 ^ 20, stage_ms = stages, stages = llama.stages_text(stages), noise = r.stats.noise,
        stop = r.stop_reason }
      if impl == "baseline" then base = rows[i] end
    end
    for _, row in ipairs(rows) do
      if base and row ~= base then row.speedup = base.ms / row.ms end
    end
    for _, layer in ipairs(layers) do
      for _, t in pairs(layer.weights) do t:free() end
    end
    layers = nil -- luacheck: ignore (unreachable now, so the collection below frees their buffers)
    collectgarbage()
    return rows, rs
  end,
}
