-- The whole Llama-2 model (llama.model: embedding, layers, final norm, lm_head; random weights):
-- time to first token, the prefill of one prompt (B = 1) up to the first token's logits, over
-- prompt lengths; and the decode step, one new token for each of B sequences over a KV cache
-- already holding `context` tokens each, over B and context: ms, tokens/s, the step's
-- bytes/bandwidth floor (every weight and the cache read once) and the median time of each stage
-- summed over the layers, as layer_sweep gives them for one layer. Each phase is timed in its
-- own steady state (bench.steady), stream-launched ("launch" stream), and on the GPU the decode
-- step also as CUDA-graph replays (bench.run{graph = true}; launch "graph"), as a server runs
-- it; the host's part of a step (cache bookkeeping, token upload) runs before the timed calls,
-- which are GPU work only, and each call rewrites the same cache row, so the context stays put.
-- layers=N runs the first N layers only (70B at f16 does not fit one GPU): the measured ms is of
-- N layers; "model ms" scales the layers' share of it (their stages' share of the profile) to
-- the whole model, and the floor is the whole model's; the table says so. Decode points whose
-- cache does not fit the free memory are left out with a note. gemm: gemm's impl for the decode
-- step's attention projections and for the lm_head of both phases (the FFN's fused op, and the
-- prefill's layers, make their own choices).
-- Usage: sfbench model_sweep [model=7b|13b|70b] [layers=0] (0: all) [prompt=512,1024,2048,4096]
--        [batch=1,8,32,64] [context=1024,4096,16384] [dtype=f16]
--        [page=0] (0: contiguous, else a power of two) [launch=stream,graph]
--        [gemm=fastest|cublaslt|gemv|hopper]
--        [peak_tbs=0] [iters=N] [sample_ms=25] [warmup_ms=500] [profile_iters=10]
local sf = require "sfbench"
local params = require "sfbench.params"
local models = require "sfbench.models"
local llama = require "sfbench.llama"
local bench = require "sfbench.bench"
local sweep = require "sfbench.sweep"

local gpu = sf.device().backend == "cuda"
local p = params.get(bench.steady_defaults {
  model = "7b",
  layers = gpu and 0 or 2,
  prompt = gpu and { 512, 1024, 2048, 4096 } or { 8, 16 },
  batch = gpu and { 1, 8, 32, 64 } or { 1, 2 },
  context = gpu and { 1024, 4096, 16384 } or { 8, 16 },
  dtype = "f16",
  page = 0,                        -- 0: a contiguous cache; else its page size
  gemm = "fastest",
  launch = gpu and { "stream", "graph" } or { "stream" },
  peak_tbs = 0,
  profile_iters = gpu and 10 or 1,
}, { model = models.names(), dtype = { "f16", "bf16" }, launch = { "stream", "graph" },
  gemm = { "fastest", "cublaslt", "gemv", "hopper" } })
local steady = bench.steady(p)
bench.launches(p.launch)
local cfg = models.get(p.model)
params.whole_numbers("layers", p.layers, 0, cfg.layers, ("0 (all) or 1 to %d"):format(cfg.layers))
local N = p.layers == 0 and cfg.layers or p.layers
params.page_sizes("page", p.page)
params.whole_numbers("prompt", p.prompt, 1, nil, "a prompt length, at least 1")
if p.gemm == "gemv" then  -- the decode projections run our GEMV alone, which takes at most gemv_rows rows
  params.whole_numbers("batch", p.batch, 1, sf.limits.gemv_rows,
    ("a batch size, 1 to %d with gemm=gemv"):format(sf.limits.gemv_rows))
else
  params.whole_numbers("batch", p.batch, 1, nil, "a batch size, at least 1")
end
params.whole_numbers("context", p.context, 0, nil, "a context length, at least 0 (an empty cache)")
params.whole_numbers("profile_iters", p.profile_iters, 1, nil, "runs of the stage profile, at least 1")
if not gpu then
  cfg = models.scaled(cfg, 32)
  io.stderr:write("model_sweep: on the CPU backend every op runs its reference, on a model scaled down 32 times; "
    .. "the timings only exercise the sweep\n")
end
local scale = cfg.layers / N
local subset = N < cfg.layers and ("%d of %d layers measured, scaled"):format(N, cfg.layers) or nil
local peak, peak_from = bench.peak_dram(p.peak_tbs)
local elem = sf.tensor({ 1 }, p.dtype, { device = "cpu" }):nbytes()

-- the points: every prompt at B = 1, then every (B, context)
local points = {}
for _, P in ipairs(p.prompt) do points[#points + 1] = { phase = "prefill", batch = 1, tokens = P } end
for _, B in ipairs(p.batch) do
  for _, ctx in ipairs(p.context) do points[#points + 1] = { phase = "decode", batch = B, tokens = ctx } end
end
local longest_prompt = 1
for _, P in ipairs(p.prompt) do longest_prompt = math.max(longest_prompt, P) end

local function cache_bytes(B, capacity)
  return 2 * N * B * capacity * cfg.kv_heads * cfg.head_dim * elem
end

local function fits(B, capacity)
  if not gpu then return true end
  return cache_bytes(B, capacity) + (1 << 31) < sf.memory().free
end

-- one model for the prompts; one a batch size for decode, sharing the first one's weights, its
-- cache as long as the longest context that fits (nil when none does)
local base, model, model_batch
local function model_for(B)
  if model_batch == B then return model end
  model, model_batch = nil, B
  collectgarbage()
  sf.sync()
  local contexts = table.move(p.context, 1, #p.context, 1, {})
  table.sort(contexts, function(a, b) return a > b end)
  for _, ctx in ipairs(contexts) do
    if fits(B, ctx + 1) then
      model = llama.model(cfg, { batch = B, capacity = ctx + 1, layers = N, dtype = p.dtype, weights_from = base,
        page_size = p.page > 0 and p.page or nil, allow_long = true, gemm = p.gemm })
      for l = 1, N do
        model.cache.k[l]:randn {}
        model.cache.v[l]:randn {}
      end
      break
    end
  end
  return model
end

local function stage_parts(stages)
  local layer_ms, total = 0, 0
  for _, st in ipairs(stages) do
    total = total + st.ms
    if st.stage ~= "embedding" and st.stage ~= "final_norm" and st.stage ~= "lm_head" then layer_ms = layer_ms + st.ms end
  end
  return llama.stages_text(stages), total > 0 and layer_ms / total or 1
end

base = llama.model(cfg, { batch = 1, capacity = longest_prompt, layers = N, dtype = p.dtype, allow_long = true,
  gemm = p.gemm })
sweep.run {
  params = p,
  points = points,
  context_extra = { model = cfg, layers_measured = N, peak_bytes_per_s = peak, peak_from = peak_from },
  column_kinds = { batch = "parameter" }, -- the batch size (by name, batch is bench.run's calls a sample)
  columns = { "phase", "launch", "batch", { key = "tokens", title = "prompt/context" }, { key = "ms", title = "ms", fmt = "%.3f" },
    { key = "model_ms", title = "model ms", fmt = "%.3f" }, { key = "tok_s", title = "tokens/s", fmt = "%.1f" },
    { key = "floor_ms", title = "floor ms", fmt = "%.3f" }, { key = "of_floor", title = "× floor", fmt = "%.2f" },
    "note", { key = "stages", title = "stages (ms)" } },
  measure = function(pt)
    local B = pt.batch
    local M, list
    if pt.phase == "prefill" then
      M = base
      list = M.begin_prefill(pt.tokens)
    else
      M = model_for(B)
      if not M or M.capacity < pt.tokens + 1 then
        return { phase = "decode", batch = B, tokens = pt.tokens,
          note = ("left out: its cache needs %.1f GiB"):format(cache_bytes(B, pt.tokens + 1) / 2 ^ 30) }
      end
      list = M.begin_decode { context = pt.tokens }
    end
    M.run(list) -- first calls: cuBLASLt plans and the GEMV/GEMM choices, before any timing
    sf.sync()
    local bytes = pt.phase == "decode" and M.decode_bytes() or nil
    -- each launch mode a row; the prefill stream-launched only (a graph of it would hold a whole prompt's launches)
    local launches = pt.phase == "decode" and p.launch or { "stream" }
    local res = {}
    for i, launch in ipairs(launches) do
      res[i] = bench.run({ name = ("%s B=%d %d %s"):format(pt.phase, B, pt.tokens, launch),
        fn = function() M.run(list) end, bytes = bytes and bytes.total, graph = launch == "graph" }, steady)
    end
    local stages, layer_share = stage_parts(M.profile(list, p.profile_iters))
    local rows = {}
    for i, r in ipairs(res) do
      local ms = r.stats.median
      local model_ms = ms * (1 - layer_share + layer_share * scale)
      local row = { phase = pt.phase, launch = launches[i], batch = B, tokens = pt.tokens, ms = ms, model_ms = model_ms,
        tok_s = (pt.phase == "decode" and B or pt.tokens) * 1e3 / model_ms, stages = stages, note = subset,
        layers = N, model_layers = cfg.layers, dtype = p.dtype, gemm = p.gemm, noise = r.stats.noise,
        stop = r.stop_reason }
      if bytes then
        row.bytes_model = cfg.layers * (bytes.layer_weights + bytes.kv) + bytes.head
        if peak then
          row.floor_ms = row.bytes_model / peak * 1e3
          row.of_floor = model_ms / row.floor_ms
        end
      end
      rows[i] = row
    end
    return rows, res
  end,
}
