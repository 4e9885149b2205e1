-- One Llama-2 decoder layer, baseline (PyTorch-eager order) against optimized, over sequence
-- lengths: ms, speedup, TFLOP/s, peak device memory of the layer (weights, activations and op
-- scratch), and the median time of each stage so a user sees where the time goes.
-- Usage: sfbench layer_sweep [model=7b|13b|70b] [seq=512,...] [batch=1] [dtype=f16]
--        [impl=baseline,optimized] [qkv=packed|split] [iters=N] [allow_long=false]
-- qkv: the optimized layer's QKV projection output, one packed [T, (H + 2·Hkv)·hd] buffer or
-- (MHA) q, k and v each contiguous.
local sf = require "sfbench"
local params = require "sfbench.params"
local models = require "sfbench.models"
local llama = require "sfbench.llama"
local bench = require "sfbench.bench"
local sweep = require "sfbench.sweep"

local gpu = sf.device().backend == "cuda"
local p = params.get({
  model = "7b",
  seq = gpu and { 512, 1024, 2048, 4096 } or { 16, 33 },
  batch = 1,
  dtype = "f16",
  impl = { "baseline", "optimized" },
  iters = 0,                       -- 0: the noise-based stopping rule
  timeout = gpu and 5 or 1,
  profile_iters = gpu and 20 or 2,
  allow_long = false,
  qkv = "packed",
}, { model = models.names(), dtype = { "f16", "bf16" }, impl = { "baseline", "optimized" }, qkv = { "packed", "split" } })
local cfg = models.get(p.model)
if not gpu then
  cfg = models.scaled(cfg, 16)
  io.stderr:write("layer_sweep: on the CPU backend every op runs its reference; the timings only exercise the sweep\n")
end
for _, n in ipairs(p.seq) do                        -- a clear error before anything is allocated
  if n > cfg.max_positions and not p.allow_long then
    error(("seq %d is longer than %s's %d positions (allow_long=true to go past them)"):format(n, cfg.name,
      cfg.max_positions), 0)
  end
end

local baseline_ms = {}
sweep.run {
  params = p,
  points = sweep.product({ seq = p.seq, impl = p.impl }, { "seq", "impl" }),
  context_extra = { model = cfg },
  columns = { "seq", "impl", { key = "ms", fmt = "%.3f" }, { key = "speedup", title = "× baseline", fmt = "%.2f" },
    { key = "tflops", title = "TFLOP/s", fmt = "%.1f" }, { key = "peak_mib", title = "peak MiB", fmt = "%.0f" },
    { key = "stages", title = "stages (ms)" } },
  measure = function(pt)
    sf.sync()
    local before = sf.memory().in_use
    sf.reset_peak()
    local layer = llama.layer(cfg, { impl = pt.impl, batch = p.batch, seq = pt.seq, dtype = p.dtype,
      allow_long = p.allow_long, qkv = p.qkv })
    layer.input:randn { std = 1 }
    local r = bench.run {
      name = ("%s N=%d"):format(pt.impl, pt.seq),
      fn = layer.forward,
      flops = llama.flops(cfg, p.batch, pt.seq),
      iters = p.iters > 0 and p.iters or nil,
      timeout = p.timeout,
    }
    local peak = sf.memory().peak - before
    local stages = layer.profile(p.profile_iters)
    local parts = {}
    for i, s in ipairs(stages) do parts[i] = ("%s %.3f"):format(s.stage, s.ms) end
    local row = { seq = pt.seq, impl = pt.impl, batch = p.batch, dtype = p.dtype, ms = r.stats.median, tflops = r.tflops,
      peak_mib = peak / 2 ^ 20, stage_ms = stages, stages = table.concat(parts, ", "), noise = r.stats.noise,
      stop = r.stop_reason }
    if pt.impl == "baseline" then baseline_ms[pt.seq] = r.stats.median
    elseif baseline_ms[pt.seq] then row.speedup = baseline_ms[pt.seq] / r.stats.median end
    for _, t in pairs(layer.weights) do t:free() end
    layer = nil -- luacheck: ignore (unreachable now, so the collection below frees its buffers)
    collectgarbage()
    return row, r
  end,
}
