-- One Llama-2 decoder layer tensor-parallel (Megatron's split), TP = the world size: run it as
-- `sfbench --gpus N tp_layer_sweep` with N = 1, 2, 4 or 8 (one rank a GPU, NCCL between them). QKV
-- and gate/up are column-parallel (each rank holds H/TP query heads, Hkv/TP kv heads and I/TP of
-- the FFN: an error where they do not divide), O and down row-parallel, each followed by an
-- all-reduce of the [T, hidden] partial sums (llama.layer's tp). Prefill over seq and batch, as
-- layer_sweep. impl:
--   baseline  — layer_sweep's baseline order, each all-reduce after its GEMM on the same stream;
--   optimized — layer_sweep's optimized layer with the communication overlapped: the O and down
--               projections run in `chunks` blocks of rows, and each block's all-reduce runs on a
--               second stream while the next block's GEMM runs (events order them), so that only
--               the last block's all-reduce is left exposed. Chosen over sequence parallelism
--               (reduce_scatter + all_gather around the norms), which moves the same bytes and
--               divides only the norms' and residuals' small work, but hides none of the
--               communication behind the GEMMs, where the time is.
-- Columns: ms (the layer, max over the ranks), comm_ms and comm % (the all-reduce stages of the
-- profile: the time the compute stream waits for the all-reduces after each projection's last
-- GEMM, so for optimized only what the overlap leaves exposed; the overlapped all-reduces' cost
-- to the GEMMs they share the GPU with is in those GEMMs' stages), TFLOP/s per GPU (the layer's
-- FLOPs over TP) and each stage's median time on rank 0. A stage time includes any wait for a
-- slower rank at its collective.
-- Usage: sfbench --gpus N tp_layer_sweep [model=7b|70b|13b] [seq=512,...] [batch=1] [dtype=f16]
--        [impl=baseline,optimized] [chunks=4] [tp=N] [iters=N] [sample_ms=25] [warmup_ms=500] [profile_iters=20]
-- tp: if given, must equal the world size (a check that the launch is the one intended).
local sf = require "sfbench"
local params = require "sfbench.params"
local models = require "sfbench.models"
local llama = require "sfbench.llama"
local bench = require "sfbench.bench"
local sweep = require "sfbench.sweep"

local gpu = sf.device().backend == "cuda"
local world, rank = sf.dist.world(), sf.dist.rank()
local p = params.get(bench.steady_defaults {
  model = "7b",
  seq = gpu and { 512, 1024, 2048, 4096 } or { 16, 33 },
  batch = 1,
  dtype = "f16",
  impl = { "baseline", "optimized" },
  chunks = 4,
  tp = world,
  profile_iters = gpu and 20 or 2,
}, { model = models.names(), dtype = { "f16", "bf16" }, impl = { "baseline", "optimized" } })
local steady = bench.steady(p)
params.whole_numbers("seq", p.seq, 1, nil, "a sequence length, at least 1")
params.whole_numbers("batch", p.batch, 1, nil, "a batch size, at least 1")
params.whole_numbers("profile_iters", p.profile_iters, 1, nil, "runs of the stage profile, at least 1")
if p.tp ~= world then
  params.usage_error(("tp=%s, but this world has %d rank(s): run it with --gpus %s"):format(tostring(p.tp), world,
    tostring(p.tp)))
end
params.whole_numbers("chunks", p.chunks, 1, nil, "a count of row blocks, at least 1")
local cfg = models.get(p.model)
if not gpu then
  cfg = models.scaled(cfg, 16)
  io.stderr:write("tp_layer_sweep: on the CPU backend every op runs its reference; the timings only exercise the sweep\n")
end
local ok, err = pcall(llama.tp_config, cfg, world)
if not ok then params.usage_error(err) end
for _, n in ipairs(p.seq) do
  if n > cfg.max_positions then
    params.usage_error(("seq %d is longer than %s's %d positions"):format(n, cfg.name, cfg.max_positions))
  end
end

sweep.run {
  params = p,
  distributed = true,
  points = sweep.product({ seq = p.seq }, { "seq" }),
  column_kinds = { batch = "parameter", tp = "parameter" },
  context_extra = { model = cfg },
  columns = { "impl", "model", "seq", "tp", { key = "ms", fmt = "%.3f" }, { key = "comm_ms", fmt = "%.3f" },
    { key = "comm_pct", title = "comm %", fmt = "%.1f" }, { key = "tflops", title = "TFLOP/s/GPU", fmt = "%.1f" },
    { key = "stages", title = "stages (ms)" } },
  measure = function(pt)
    local rows, rs = {}, {}
    for i, impl in ipairs(p.impl) do
      local layer = llama.layer(cfg, { impl = impl, batch = p.batch, seq = pt.seq, dtype = p.dtype,
        tp = { rank = rank, world = world, chunks = p.chunks } })
      layer.input:randn { std = 1 }
      layer.forward()
      rs[i] = bench.run({ name = ("%s N=%d tp=%d"):format(impl, pt.seq, world), fn = layer.forward,
        flops = llama.flops(cfg, p.batch, pt.seq) / world }, steady)
      local stages = layer.profile(p.profile_iters)
      local total, comm = 0, 0
      for _, st in ipairs(stages) do
        total = total + st.ms
        if llama.is_comm_stage(st.stage) then comm = comm + st.ms end
      end
      rows[i] = { impl = impl, model = cfg.name, seq = pt.seq, tp = world, batch = p.batch, dtype = p.dtype,
        chunks = impl == "optimized" and p.chunks or nil, ms = rs[i].stats.median, comm_ms = comm,
        comm_pct = total > 0 and 100 * comm / total or 0, tflops = rs[i].tflops, stage_ms = stages,
        stages = llama.stages_text(stages), noise = rs[i].stats.noise, stop = rs[i].stop_reason }
      for _, t in pairs(layer.weights) do t:free() end
      layer = nil -- luacheck: ignore (unreachable now, so the collection below frees its buffers)
      collectgarbage()
    end
    return rows, rs
  end,
}
