-- Multi-head attention at a Llama-2 shape over sequence lengths: the PyTorch-eager-equivalent
-- naive impl (materialises the N×N scores) against our flash kernels: flash (what a caller gets:
-- the Hopper kernel on an H100, else flash2) and flash2 (the mma.sync kernel, any sm_80+ GPU).
-- Reports ms, TFLOP/s (4·B·H·N²·D, half when causal), the speedup over naive, and the device
-- memory each impl allocates beyond its inputs and outputs. dtype=e4m3 times FP8 attention (our
-- Hopper kernel, impl flash or hopper; flash alone by default): q, k and v quantized per tensor
-- and v laid out by pack_vt once, before the timing, into an f16 output; the FLOPs are counted as
-- for the 16-bit rows.
-- Usage: sfbench attention_sweep [model=7b|13b|70b] [seq=512,...] [batch=1] [dtype=f16|bf16|e4m3]
--        [causal=false] [impl=naive,flash,flash2] (also hopper) [iters=N] [sample_ms=25] [warmup_ms=500]
-- Each impl is timed in its own steady state (as ffn_sweep's: back-to-back calls for warmup_ms,
-- then samples of back-to-back calls lasting at least sample_ms).
local sf = require "sfbench"
local params = require "sfbench.params"
local models = require "sfbench.models"
local bench = require "sfbench.bench"
local sweep = require "sfbench.sweep"
local fp8ops = require "sfbench.fp8"

local gpu = sf.device().backend == "cuda"
local p = params.get(bench.steady_defaults {
  model = "7b",
  seq = gpu and { 512, 1024, 2048, 4096, 8192 } or { 64, 128 },
  batch = 1,
  dtype = "f16",
  causal = { false },
  impl = { "naive", "flash", "flash2" },
}, { model = models.names(), dtype = { "f16", "bf16", "e4m3" }, impl = { "naive", "flash", "flash2", "hopper" } })
params.whole_numbers("seq", p.seq, 1, nil, "a sequence length, at least 1")
params.whole_numbers("batch", p.batch, 1, nil, "a batch size, at least 1")
local steady = bench.steady(p)   -- checks iters, timeout, sample_ms and warmup_ms
local fp8 = p.dtype == "e4m3"
if fp8 then
  if sf.args.impl == nil then p.impl = { "flash" } end
  for _, impl in ipairs(p.impl) do
    if impl ~= "flash" and impl ~= "hopper" then
      params.usage_error(("dtype e4m3 runs on impl flash or hopper (our Hopper kernel), not %s"):format(impl))
    end
  end
end
local cfg = models.get(p.model)
if not gpu then
  cfg = models.scaled(cfg, 16)                     -- the CPU backend: fewer heads, same head dim
  io.stderr:write("attention_sweep: on the CPU backend every impl runs the reference; the timings only exercise the sweep\n")
end
for _, n in ipairs(p.seq) do
  if n > cfg.max_positions * 2 then
    params.usage_error(("seq %d is beyond twice %s's %d positions"):format(n, cfg.name, cfg.max_positions))
  end
end

local H, Hkv, D = cfg.heads, cfg.kv_heads, cfg.head_dim
local points = sweep.product({ seq = p.seq, causal = p.causal, impl = p.impl }, { "causal", "seq", "impl" })
local naive_ms = {}

sweep.run {
  params = p,
  points = points,
  column_kinds = { batch = "parameter" }, -- the batch size (by name, batch is bench.run's calls a sample)
  context_extra = { model = cfg },
  columns = { "seq", "causal", "impl", { key = "ms", fmt = "%.4f" }, { key = "tflops", title = "TFLOP/s", fmt = "%.1f" },
    { key = "speedup", title = "× naive", fmt = "%.2f" }, { key = "scratch_mib", title = "extra MiB", fmt = "%.1f" } },
  measure = function(pt)
    local B, N = p.batch, pt.seq
    local in_dtype = fp8 and "f16" or p.dtype
    local q = sf.randn({ B, N, H, D }, in_dtype)
    local k = sf.randn({ B, N, Hkv, D }, in_dtype)
    local v = sf.randn({ B, N, Hkv, D }, in_dtype)
    local out = sf.tensor({ B, N, H, D }, in_dtype)
    local args = { q = q, k = k, v = v, out = out, causal = pt.causal, impl = pt.impl }
    if fp8 then -- quantized once, outside the timing
      local q16, k16, v16, v8 = q, k, v, nil
      q, args.q_scale = fp8ops.quantized(q16)
      k, args.k_scale = fp8ops.quantized(k16)
      v8, args.v_scale = fp8ops.quantized(v16)
      v = fp8ops.packed_vt(v8)
      q16:free(); k16:free(); v16:free(); v8:free()
      args.q, args.k, args.v, args.vt = q, k, nil, v
    end
    sf.reset_peak()
    local flops = 4 * B * H * N * N * D * (pt.causal and 0.5 or 1)
    local r = bench.run({
      name = ("%s N=%d%s"):format(pt.impl, N, pt.causal and " causal" or ""),
      fn = function() sf.ops.attention(args) end,
      flops = flops,
    }, steady)
    local extra = sf.memory().scratch_peak
    q:free(); k:free(); v:free(); out:free()
    for _, name in ipairs({ "q_scale", "k_scale", "v_scale" }) do
      if args[name] then args[name]:free() end
    end
    local key = ("%d %s"):format(N, pt.causal)
    if pt.impl == "naive" then naive_ms[key] = r.stats.median end
    local row = { seq = N, causal = pt.causal, impl = pt.impl, batch = B, heads = H, kv_heads = Hkv, head_dim = D,
      dtype = p.dtype, ms = r.stats.median, tflops = r.tflops, scratch_mib = extra / 2 ^ 20, noise = r.stats.noise,
      stop = r.stop_reason }
    if pt.impl ~= "naive" and naive_ms[key] then row.speedup = naive_ms[key] / r.stats.median end
    return row, r
  end,
}
