-- A Llama-2 decoder layer composed from sfbench ops, in two orders:
--   baseline  — PyTorch eager / transformers' LlamaDecoderLayer: RMSNorm, separate Q/K/V
--               projections, RoPE on Q and on K, naive causal attention, O projection,
--               residual add, RMSNorm, unfused SwiGLU, residual add;
--   optimized — one QKV GEMM with RoPE on Q and K (linear_rope: in the GEMM's epilogue, or a
--               cuBLASLt GEMM and one RoPE pass, whichever was faster for the shape), flash
--               attention, the residual adds in the O and down projections' epilogues, the fused
--               SwiGLU; the O projection runs on cuBLASLt or our Hopper GEMM, whichever was
--               faster (gemm impl "fastest");
--   fp8       — the optimized layer's order with every projection in FP8: the weights quantized
--               once to e4m3 with a scale per output channel, each projection's input quantized
--               to e4m3 with a scale per token (by the RMSNorm before it, which writes e4m3, or
--               for the O projection a separate quantize op), RoPE in the
--               QKV GEMM's epilogue (linear_rope), the residual adds in the O and down
--               projections' epilogues, the fused FP8 SwiGLU FFN (its h quantized per token
--               between its GEMMs, or once L.calibrate() has fixed h's scale, written in e4m3
--               by the gate/up GEMM's epilogue; on a GPU without our Hopper kernels, the
--               unfused FP8 FFN on cuBLASLt, h per token), each GEMM writing 16 bits but that
--               one; flash attention stays 16-bit.
-- Each stage is a plain function over preallocated tensors, so a user can swap or reorder them.
-- Either layer runs tensor-parallel (Megatron's split, llama.layer's `tp`): each rank holds its
-- share of the heads and of the FFN, and the O and down projections' partial sums are
-- all-reduced over the ranks.
-- llama.decode_layer is the optimized layer's decode step over a KV cache, and llama.model the
-- whole model (embedding, layers, final norm, lm_head) as a prefill that fills the cache and
-- decode steps that extend it.
local sf = require "sfbench"
local stats = require "sfbench.stats"
local kv_cache = require "sfbench.kv_cache"
local fp8 = require "sfbench.fp8"

local llama = {}

-- FLOPs of one layer over T tokens of sequences of length N (causal attention counts half)
function llama.flops(cfg, batch, seq)
  local T, d, hd = batch * seq, cfg.hidden, cfg.head_dim
  local qkv = 2 * T * d * (cfg.heads + 2 * cfg.kv_heads) * hd
  local o = 2 * T * d * cfg.heads * hd
  local ffn = 3 * 2 * T * d * cfg.intermediate
  local attention = 4 * batch * cfg.heads * seq * seq * hd / 2
  return qkv + o + ffn + attention
end

-- llama.ffn_weights(cfg, act, dtype) -> random FFN weights at a config's shape, for both ffn
-- impls: w1 and w2, and for swiglu w3 and w13 (gate and up packed for the fused impl)
function llama.ffn_weights(cfg, act, dtype)
  local H, I = cfg.hidden, cfg.intermediate
  local w = { w1 = sf.randn({ I, H }, dtype, { std = 0.02 }), w2 = sf.randn({ H, I }, dtype, { std = 0.02 }) }
  if act == "swiglu" then
    w.w3 = sf.randn({ I, H }, dtype, { std = 0.02 })
    w.w13 = sf.tensor({ 2 * I, H }, dtype)
    sf.ops.pack_gate_up { w1 = w.w1, w3 = w.w3, out = w.w13 }
  end
  return w
end

-- q[name] and q[name .. "_scale"]: t in e4m3 with an f32 scale per row (per output channel)
local function quantize_rows(q, name, t)
  q[name], q[name .. "_scale"] = fp8.quantized(t, true)
end

-- q.w13 and q.w13_scale: q's e4m3 w1 and w3, and their scales, interleaved for the fused FFN
local function pack_fp8_gate_up(q)
  local I, H = q.w1:size(1), q.w1:size(2)
  local device = q.w1:device()
  q.w13 = sf.tensor({ 2 * I, H }, "e4m3", { device = device })
  q.w13_scale = sf.tensor({ 2 * I }, "f32", { device = device })
  sf.ops.pack_gate_up { w1 = q.w1, w3 = q.w3, out = q.w13 }
  -- the scales as [I, 1] matrices: views closed here, so that the weights can be freed later
  local s1 <close> = q.w1_scale:view({ I, 1 })
  local s3 <close> = q.w3_scale:view({ I, 1 })
  local s13 <close> = q.w13_scale:view({ 2 * I, 1 })
  sf.ops.pack_gate_up { w1 = s1, w3 = s3, out = s13 }
end

-- The FP8 SwiGLU FFN's weights (ffn with e4m3 inputs): random bf16 draws as ffn_weights', each
-- quantized to e4m3 with a scale per row: w1, w3, w2, w13 and each one's _scale.
function llama.fp8_ffn_weights(cfg)
  local w16, q = llama.ffn_weights(cfg, "swiglu", "bf16"), {}
  for _, name in ipairs({ "w1", "w3", "w2" }) do quantize_rows(q, name, w16[name]) end
  for _, t in pairs(w16) do t:free() end
  pack_fp8_gate_up(q)
  return q
end

local function random_weights(cfg, dtype, device, seed, std)
  std = std or 0.02 -- as a trained Llama's projections, so that the activations stay finite at real widths
  local d, hd, I = cfg.hidden, cfg.head_dim, cfg.intermediate
  local function w(shape, n) return sf.randn(shape, dtype, { seed = seed + n, std = std, device = device }) end
  return {
    wq = w({ cfg.heads * hd, d }, 1), wk = w({ cfg.kv_heads * hd, d }, 2), wv = w({ cfg.kv_heads * hd, d }, 3),
    wo = w({ d, cfg.heads * hd }, 4), w1 = w({ I, d }, 5), w3 = w({ I, d }, 6), w2 = w({ d, I }, 7),
    attn_norm = sf.randn({ d }, dtype, { seed = seed + 8, mean = 1, std = 0.1, device = device }),
    ffn_norm = sf.randn({ d }, dtype, { seed = seed + 9, mean = 1, std = 0.1, device = device }),
  }
end

-- another layer's weights in this dtype and on this device: shared where they already are
local function copy_weights(from, dtype, device)
  local out = {}
  local dev = device or sf.device().backend
  for k, t in pairs(from) do out[k] = (t:dtype() == dtype and t:device() == dev) and t or t:to(dev, dtype) end
  return out
end

-- llama.tp_config(cfg, world) -> the shape one rank of `world` computes in a tensor-parallel
-- layer: its heads, kv heads and intermediate size divided by the world (an error unless they
-- divide), hidden and head_dim as they are
function llama.tp_config(cfg, world)
  for _, k in ipairs({ "heads", "kv_heads", "intermediate" }) do
    if cfg[k] % world ~= 0 then
      error(("llama: %s's %d %s do not split over %d ranks"):format(cfg.name, cfg[k], k:gsub("_", " "), world), 3)
    end
  end
  local shard = {}
  for k, v in pairs(cfg) do shard[k] = v end
  shard.name = ("%s tp%d"):format(cfg.name, world)
  shard.heads, shard.kv_heads, shard.intermediate = cfg.heads // world, cfg.kv_heads // world, cfg.intermediate // world
  return shard
end

-- weights a model keeps (no w1 and w3: its packed w13 holds them) cannot be split or quantized
-- by their own rows: an error naming the caller
local function need_gate_up(w, who)
  if not (w.w1 and w.w3) then
    error(("%s: the weights hold no w1 and w3 (a model keeps only their packed w13, unless made with ffn "
      .. "'unfused')"):format(who), 3)
  end
end

-- llama.shard_weights(cfg, w, rank, world) -> rank's share of a layer's full weights `w`, each a
-- contiguous copy on w's device: column-parallel wq, wk, wv (the rank's heads: rows of the
-- output), w1 and w3 (its rows of the intermediate); row-parallel wo and w2 (the matching
-- columns of the input); the norms' weights whole (every rank applies them)
function llama.shard_weights(cfg, w, rank, world)
  need_gate_up(w, "llama.shard_weights")
  local c = llama.tp_config(cfg, world)
  local hd = cfg.head_dim
  local function part(t, dim, n) return t:slice(dim, rank * n + 1, n):to(t:dtype()) end
  return {
    wq = part(w.wq, 1, c.heads * hd), wk = part(w.wk, 1, c.kv_heads * hd), wv = part(w.wv, 1, c.kv_heads * hd),
    wo = part(w.wo, 2, c.heads * hd), w1 = part(w.w1, 1, c.intermediate), w3 = part(w.w3, 1, c.intermediate),
    w2 = part(w.w2, 2, c.intermediate), attn_norm = w.attn_norm, ffn_norm = w.ffn_norm,
  }
end

-- w.wq, w.wk and w.wv made views of the rows of [Wq; Wk; Wv] in wqkv
local function qkv_views(cfg, w, wqkv)
  local H, Hkv, hd = cfg.heads, cfg.kv_heads, cfg.head_dim
  w.wq, w.wk, w.wv = wqkv:slice(1, 1, H * hd), wqkv:slice(1, H * hd + 1, Hkv * hd), wqkv:slice(1, (H + Hkv) * hd + 1, Hkv * hd)
end

-- [Wq; Wk; Wv]: the rows of one QKV GEMM's weight
local function pack_qkv(cfg, w)
  local H, Hkv, hd = cfg.heads, cfg.kv_heads, cfg.head_dim
  local wqkv = sf.tensor({ (H + 2 * Hkv) * hd, cfg.hidden }, w.wq:dtype(), { device = w.wq:device() })
  local rows = {}
  qkv_views(cfg, rows, wqkv)
  for _, k in ipairs({ "wq", "wk", "wv" }) do rows[k]:copy(w[k]) end
  return wqkv
end

-- The fp8 layer's weights from 16-bit ones `w`: each projection in e4m3 with an f32 scale per
-- row (per output channel), as quantize writes them: wqkv (Wq, Wk and Wv packed), wo, w1, w3, w2,
-- and <name>_scale of each; w13 and w13_scale, w1's and w3's interleaved for the fused FFN; the
-- norms' weights as they are.
function llama.fp8_weights(cfg, w)
  need_gate_up(w, "llama.fp8_weights")
  local q = { attn_norm = w.attn_norm, ffn_norm = w.ffn_norm }
  for name, t in pairs({ wqkv = pack_qkv(cfg, w), wo = w.wo, w1 = w.w1, w3 = w.w3, w2 = w.w2 }) do
    quantize_rows(q, name, t)
  end
  pack_fp8_gate_up(q)
  return q
end

-- The optimized layer's packed weights: [Wq; Wk; Wv] rows (one QKV GEMM), and gate/up
-- interleaved for the fused SwiGLU.
function llama.pack_weights(cfg, w)
  need_gate_up(w, "llama.pack_weights")
  local wqkv = pack_qkv(cfg, w)
  local w13 = sf.tensor({ 2 * cfg.intermediate, cfg.hidden }, w.wq:dtype(), { device = w.wq:device() })
  sf.ops.pack_gate_up { w1 = w.w1, w3 = w.w3, out = w13 }
  return { wqkv = wqkv, w13 = w13 }
end

-- buf(name, shape [, dt]): a tensor of the layer's dtype (or dt) and device; with `shared` (a
-- table several layers that run one after another pass), one tensor per name, shape and dtype
-- for all of them
local function buffers(dtype, device, shared)
  return function(name, shape, dt)
    dt = dt or dtype
    if not shared then return sf.tensor(shape, dt, { device = device }) end
    local key = name .. "[" .. table.concat(shape, ",") .. "]" .. dt
    shared[key] = shared[key] or sf.tensor(shape, dt, { device = device })
    return shared[key]
  end
end

-- median ms of each named stage over `iters` runs of `list` ({name=, fn=} in order; a name may
-- recur, as a model's layers repeat theirs: its time is then the sum over the run), timed with
-- events between the entries; each run is queued behind sf.hold, so the first entry's time is
-- not the host's launch latency
local function time_stages(list, iters)
  local events = {}
  for i = 1, #list + 1 do events[i] = sf.event() end
  local order, sums = {}, {}
  for _, s in ipairs(list) do
    if not sums[s.name] then
      order[#order + 1] = s.name
      sums[s.name] = {}
    end
  end
  for it = 1, iters do
    sf.hold()
    events[1]:record()
    for i, s in ipairs(list) do
      s.fn()
      events[i + 1]:record()
    end
    sf.release()
    for _, name in ipairs(order) do sums[name][it] = 0 end
    for i, s in ipairs(list) do sums[s.name][it] = sums[s.name][it] + sf.elapsed(events[i], events[i + 1]) end
  end
  local result = {}
  for i, name in ipairs(order) do result[i] = { stage = name, ms = stats.summary(sums[name]).median } end
  return result
end

local function check_seq(cfg, seq, allow_long)
  if math.type(seq) ~= "integer" or seq < 1 then error("llama.layer: seq must be a positive integer", 3) end
  if seq > cfg.max_positions and not allow_long then
    error(("llama.layer: seq %d is longer than %s's %d positions (pass allow_long=true to go past them)")
      :format(seq, cfg.name, cfg.max_positions), 3)
  end
end

-- The stages of each impl, in the order a forward runs them (qkv: the optimized layer's QKV
-- layout, "packed" or "split").
local STAGES = {
  baseline = { "attn_norm", "qkv_proj", "rope", "attention", "o_proj", "residual", "ffn_norm", "ffn", "residual2" },
  packed = { "attn_norm", "qkv_proj+rope", "attention", "o_proj+residual", "ffn_norm", "ffn+residual" },
  split = { "attn_norm", "qkv_proj", "rope", "attention", "o_proj+residual", "ffn_norm", "ffn+residual" },
  fp8 = { "attn_norm", "qkv_proj+rope", "attention", "o_quant", "o_proj+residual", "ffn_norm", "ffn+residual" },
}
-- tensor-parallel: the all-reduce of each row-parallel projection's partial sums, a stage after it
local ALL_REDUCE_AFTER = { o_proj = "o_all_reduce", ["o_proj+residual"] = "o_all_reduce", ffn = "ffn_all_reduce",
  ["ffn+residual"] = "ffn_all_reduce" }

-- The part of the layer each stage belongs to (L.run_part), with what a part reads and writes
-- (L.tensors):
--   attn_norm  x -> h;  qkv  h -> q, k (rotated), v;  attention  q, k, v -> attn;
--   o  attn, x -> r = x + attn·Woᵀ;  ffn_norm  r -> h2;  ffn  h2, r -> out = r + FFN(h2)
local PART = {
  attn_norm = "attn_norm", qkv_proj = "qkv", rope = "qkv", ["qkv_proj+rope"] = "qkv", attention = "attention",
  o_proj = "o", residual = "o", ["o_proj+residual"] = "o", ffn_norm = "ffn_norm", ffn = "ffn", residual2 = "ffn",
  ["ffn+residual"] = "ffn", o_all_reduce = "o", ffn_all_reduce = "ffn", o_quant = "o",
}
-- A part of the fp8 layer run alone (L.run_part) from its 16-bit input (h or h2) first quantizes
-- it per token, as the norm before it does in a forward (rmsnorm's e4m3 out); and its norms run
-- alone also write that 16-bit input, so that the parts run one after another make a forward
-- (each projection's input rounded to 16 bits first: not a forward's bits)
local PART_ENTRY = { fp8 = { qkv = "qkv_quant", ffn = "ffn_quant" } }
local PART_EXIT = { fp8 = { attn_norm = "attn_norm_16", ffn_norm = "ffn_norm_16" } }

-- tp: the tensor-parallel layer's stages (an all-reduce after the O and down projections)
function llama.stage_names(impl, qkv, tp)
  local names = {}
  for _, n in ipairs(STAGES[(impl == "baseline" or impl == "fp8") and impl or qkv or "packed"]) do
    names[#names + 1] = n
    if tp and ALL_REDUCE_AFTER[n] then names[#names + 1] = ALL_REDUCE_AFTER[n] end
  end
  return names
end

-- a profile's stages (profile()'s {stage, ms} list) as one line: "name ms, name ms, ..."
function llama.stages_text(stages)
  local parts = {}
  for i, st in ipairs(stages) do parts[i] = ("%s %.3f"):format(st.stage, st.ms) end
  return table.concat(parts, ", ")
end

-- whether a stage is communication: the all-reduce of a tensor-parallel layer
function llama.is_comm_stage(name)
  return name == "o_all_reduce" or name == "ffn_all_reduce"
end

-- nil when every name in `names` is a stage of the impl, else a message naming the first that is not
function llama.check_stages(impl, qkv, names, tp)
  local known = {}
  for _, n in ipairs(llama.stage_names(impl, qkv, tp)) do known[n] = true end
  for _, n in ipairs(names) do
    if not known[n] then
      return ("the %s layer has no stage '%s' (its stages: %s)"):format(impl, tostring(n),
        table.concat(llama.stage_names(impl, qkv, tp), ", "))
    end
  end
end

-- The optimized tensor-parallel layer's row-parallel projections (llama.layer's tp), in place of
-- its o_proj+residual and ffn+residual: each in blocks of rows of t (the layer's tensors), the
-- all-reduce of block i queued on the stream `comm` behind an event after block i's GEMM, so that
-- it runs while block i+1's does; rank 0 alone adds the residual, so the sum holds it once.
local function tp_projections(fns, t, w, w13, tp, rank0, shape)
  local T = t.x:size(1)
  local n = math.min(tp.chunks or 4, T)
  local blocks, start = {}, 1
  for i = 1, n do
    local rows = T // n + (i <= T % n and 1 or 0)
    local b = {}
    for k, v in pairs(t) do b[k] = v:slice(1, start, rows) end
    blocks[i], start = b, start + rows
  end
  local comm, ready = sf.stream(), sf.event()
  local ffn_impl = shape.intermediate % 64 == 0 and "fused" or "unfused"
  -- fns[name]: project each block, then all-reduce its rows of t[y]; fns[wait]: the wait for the last
  local function overlapped(name, wait, y, project)
    local reduced = sf.event()
    fns[name] = function()
      for _, b in ipairs(blocks) do
        project(b)
        ready:record()
        ready:wait(comm)
        sf.ops.all_reduce { x = b[y], stream = comm }
      end
      reduced:record(comm)
    end
    fns[wait] = function() reduced:wait() end
  end
  overlapped("o_proj+residual", "o_all_reduce", "r", function(b)
    if rank0 then
      sf.ops.gemm { a = b.attn, b = w.wo, c = b.x, out = b.r, beta = 1, transb = true, impl = "fastest" }
    else
      sf.ops.gemm { a = b.attn, b = w.wo, c = b.r, transb = true, impl = "fastest" }
    end
  end)
  overlapped("ffn+residual", "ffn_all_reduce", "out", function(b)
    sf.ops.ffn { x = b.h2, w1 = w.w1, w2 = w.w2, w3 = w.w3, w13 = w13, out = b.out, residual = rank0 and b.r or nil,
      act = "swiglu", impl = ffn_impl }
  end)
end

-- llama.layer(cfg, {impl=, batch=1, seq=, dtype="f16", device=, seed=, std=0.02, weights=, allow_long=, qkv=,
--   stages=, tp=})
-- std: of the random projection weights (the norms' weights are 1 ± 0.1).
-- qkv (optimized only): "packed" (the default) or "split" (MHA configs), the QKV projection's layout.
-- stages: a list of stage names (llama.stage_names): forward and profile run only those, in the
-- layer's order (the others' outputs keep whatever they last held: run L.forward_all() first).
-- `weights` reuses another layer's (converted to this dtype and device, shared where they are
-- already): how a reference layer in f64 on the CPU is built from a GPU layer's weights.
-- packed (optimized): llama.pack_weights of those weights, instead of packing them again.
-- input, output: tensors [B·N, hidden] to read and write instead of the layer's own; shared: a
-- table that layers run one after another pass to use one set of intermediate buffers.
-- tp = {rank=, world=, chunks=4}: tensor-parallel, Megatron's split: the layer computes rank's
-- share (llama.tp_config) with llama.shard_weights of the full weights (`weights`, or the random
-- ones of `seed`, the same on every rank); the O projection and the FFN write partial sums
-- [B·N, hidden], rank 0's with the residual, which the stages o_all_reduce and ffn_all_reduce
-- sum over sf.dist's world. The baseline all-reduces after each projection, on its stream; the
-- optimized layer runs each of the two projections in `chunks` blocks of rows and all-reduces
-- block i on a second stream while block i+1's GEMM runs, its all-reduce stage being the wait for
-- the last block. world must be sf.dist's world for the sums to be whole (a test may build
-- several ranks' layers in one process at world 1, where each all-reduce is the identity). The
-- optimized FFN is fused where the rank's intermediate size is a multiple of 64, else unfused
-- (7B at TP 8); `packed` does not apply.
function llama.layer(cfg, opts)
  local impl = opts.impl or "optimized"
  if impl ~= "baseline" and impl ~= "optimized" and impl ~= "fp8" then
    error(("llama.layer: unknown impl '%s' (baseline, optimized or fp8)"):format(tostring(impl)), 2)
  end
  local B, N = opts.batch or 1, opts.seq
  check_seq(cfg, N, opts.allow_long)
  local qkv_layout = opts.qkv or "packed"
  if qkv_layout ~= "packed" and qkv_layout ~= "split" then
    error(("llama.layer: unknown qkv layout '%s' (packed or split)"):format(tostring(qkv_layout)), 2)
  end
  local tp = opts.tp
  if tp ~= nil and not (type(tp) == "table" and math.type(tp.world) == "integer" and tp.world >= 1
      and math.type(tp.rank) == "integer" and tp.rank >= 0 and tp.rank < tp.world
      and (tp.chunks == nil or math.type(tp.chunks) == "integer" and tp.chunks >= 1)) then
    error("llama.layer: 'tp' must be {rank=, world=, chunks=} with 0 <= rank < world and chunks >= 1", 2)
  end
  if tp and opts.packed then error("llama.layer: 'packed' does not apply to a tensor-parallel layer", 2) end
  if tp and impl == "fp8" then error("llama.layer: the fp8 layer is not tensor-parallel (yet)", 2) end
  local shape = tp and llama.tp_config(cfg, tp.world) or cfg
  if qkv_layout == "split" and cfg.kv_heads ~= cfg.heads then
    error(("llama.layer: qkv layout 'split' needs as many kv heads as heads (%s has %d and %d)")
      :format(cfg.name, cfg.kv_heads, cfg.heads), 2)
  end
  if opts.stages ~= nil then
    local bad = type(opts.stages) ~= "table" and "stages must be a list of stage names"
      or llama.check_stages(impl, qkv_layout, opts.stages, tp ~= nil)
    if bad then error("llama.layer: " .. bad, 2) end
  end
  local dtype, device = opts.dtype or "f16", opts.device
  local T, d, hd, H, Hkv = B * N, cfg.hidden, cfg.head_dim, shape.heads, shape.kv_heads
  local w = opts.weights and copy_weights(opts.weights, dtype, device)
    or random_weights(cfg, dtype, device, opts.seed or 1, opts.std)
  if tp then w = llama.shard_weights(cfg, w, tp.rank, tp.world) end
  if impl == "fp8" then
    local w16 = w
    w = llama.fp8_weights(cfg, w16)
    if not opts.weights then   -- the random 16-bit weights were only the source
      for _, k in ipairs({ "wq", "wk", "wv", "wo", "w1", "w3", "w2" }) do w16[k]:free() end
    end
  end
  local rank0 = not tp or tp.rank == 0     -- the rank whose partial sums carry the residual
  local buffer = buffers(dtype, device, opts.shared)
  local function buf(shape, name) return buffer(name or "?", shape) end

  local L = { cfg = cfg, impl = impl, batch = B, seq = N, dtype = dtype, weights = w, tp = tp,
    input = opts.input or sf.tensor({ T, d }, dtype, { device = device }),
    output = opts.output or sf.tensor({ T, d }, dtype, { device = device }) }
  local x, out = L.input, L.output
  local h, r, h2 = buf({ T, d }, "h"), buf({ T, d }, "r"), buf({ T, d }, "h2")
  local attn = buf({ T, H * hd }, "attn")
  local attn4 = attn:view({ B, N, H, hd })
  local eps, theta = cfg.norm_eps, cfg.rope_theta
  L.tensors = { x = x, h = h, attn = attn, r = r, h2 = h2, out = out }

  -- stage name -> function over the buffers above; the norms are the same in both orders
  local fns = {
    attn_norm = function() sf.ops.rmsnorm { x = x, weight = w.attn_norm, out = h, eps = eps } end,
    ffn_norm = function() sf.ops.rmsnorm { x = r, weight = w.ffn_norm, out = h2, eps = eps } end,
  }
  if impl == "baseline" then
    local q, k, v = buf({ T, H * hd }, "q"), buf({ T, Hkv * hd }, "k"), buf({ T, Hkv * hd }, "v")
    local o, f = buf({ T, d }, "o"), buf({ T, d }, "f")
    local q4, k4, v4 = q:view({ B, N, H, hd }), k:view({ B, N, Hkv, hd }), v:view({ B, N, Hkv, hd })
    L.tensors.q, L.tensors.k, L.tensors.v, L.tensors.o, L.tensors.f = q4, k4, v4, o, f
    fns.qkv_proj = function()
      sf.ops.gemm { a = h, b = w.wq, c = q, transb = true }
      sf.ops.gemm { a = h, b = w.wk, c = k, transb = true }
      sf.ops.gemm { a = h, b = w.wv, c = v, transb = true }
    end
    fns.rope = function()
      sf.ops.rope { x = q4, theta = theta }
      sf.ops.rope { x = k4, theta = theta }
    end
    fns.attention = function()
      sf.ops.attention { q = q4, k = k4, v = v4, out = attn4, causal = true, impl = "naive" }
    end
    fns.o_proj = function() sf.ops.gemm { a = attn, b = w.wo, c = o, transb = true } end
    fns.residual = function() sf.ops.add { a = x, b = o, out = r } end
    fns.ffn = function()
      sf.ops.ffn { x = h2, w1 = w.w1, w2 = w.w2, w3 = w.w3, out = f, act = "swiglu", impl = "unfused" }
    end
    fns.residual2 = function() sf.ops.add { a = r, b = f, out = out } end
    if tp then
      fns.o_all_reduce = function() sf.ops.all_reduce { x = o } end
      fns.ffn_all_reduce = function() sf.ops.all_reduce { x = f } end
    end
  elseif impl == "fp8" then
    -- each projection's input quantized to e4m3 with a scale per token (by the norms, and o_quant), then an
    -- FP8 GEMM over the per-channel-scaled weights writing 16 bits: the QKV projection with RoPE
    -- on q and k (linear_rope, packed as the optimized layer's), O with the residual added in
    -- (gemm, our Hopper GEMM or cuBLASLt, whichever was faster), the FP8 SwiGLU FFN with the
    -- residual added in (fused where our Hopper kernels run, else on cuBLASLt)
    local qkv4 = buf({ B, N, H + 2 * Hkv, hd }, "qkv")
    local q4, k4, v4 = qkv4:slice(3, 1, H), qkv4:slice(3, H + 1, Hkv), qkv4:slice(3, H + Hkv + 1, Hkv)
    L.tensors.q, L.tensors.k, L.tensors.v = q4, k4, v4
    -- x's e4m3 copy q with one scale a token: what the projection after it reads
    local function e4m3_of(x, name)
      return { x = x, q = buffer(name, x:shape(), "e4m3"), scale = buffer(name .. "_scale", { T }, "f32") }
    end
    local function quantize(a) sf.ops.quantize { x = a.x, out = a.q, scale = a.scale } end
    local h8, attn8, h2_8 = e4m3_of(h, "h8"), e4m3_of(attn, "attn8"), e4m3_of(h2, "h2_8")
    -- the norms write e4m3 with each token's scale: the projections' inputs, in one pass
    fns.attn_norm = function() sf.ops.rmsnorm { x = x, weight = w.attn_norm, out = h8.q, out_scale = h8.scale, eps = eps } end
    fns.ffn_norm = function() sf.ops.rmsnorm { x = r, weight = w.ffn_norm, out = h2_8.q, out_scale = h2_8.scale, eps = eps } end
    fns.attn_norm_16 = function() sf.ops.rmsnorm { x = x, weight = w.attn_norm, out = h, eps = eps } end
    fns.ffn_norm_16 = function() sf.ops.rmsnorm { x = r, weight = w.ffn_norm, out = h2, eps = eps } end
    -- the CPU's reference takes either impl, and h_scale as the fused one does
    local on_cpu = device == "cpu" or (device == nil and sf.device().backend == "cpu")
    local fp8_ffn_impl = (on_cpu or sf.device().hopper_kernels) and "fused" or "unfused"
    -- h's scale per tensor: nil until L.calibrate() sets it (h per token until then)
    local h_scale, calibrating
    fns.qkv_quant = function() quantize(h8) end
    fns["qkv_proj+rope"] = function()
      sf.ops.linear_rope { x = h8.q, x_scale = h8.scale, w = w.wqkv, w_scale = w.wqkv_scale, out = qkv4,
        rope_heads = H + Hkv, theta = theta }
    end
    fns.attention = function()
      sf.ops.attention { q = q4, k = k4, v = v4, out = attn4, causal = true, impl = "flash" }
    end
    fns.o_quant = function() quantize(attn8) end
    fns["o_proj+residual"] = function()
      sf.ops.gemm { a = attn8.q, b = w.wo, a_scale = attn8.scale, b_scale = w.wo_scale, c = x, out = r, beta = 1,
        transb = true, fast_accum = true, impl = "fastest" }
    end
    fns.ffn_quant = function() quantize(h2_8) end
    fns["ffn+residual"] = function()
      sf.ops.ffn { x = h2_8.q, x_scale = h2_8.scale, w1 = w.w1, w3 = w.w3, w2 = w.w2, w13 = w.w13, w1_scale = w.w1_scale,
        w3_scale = w.w3_scale, w2_scale = w.w2_scale, w13_scale = w.w13_scale, out = out, residual = r, act = "swiglu",
        impl = fp8_ffn_impl, h_scale = h_scale, calibrate = calibrating }
    end
    -- A forward whose FFN sets h's scale from its h (amax / 448, per tensor), then fixed: from
    -- then on the gate/up GEMM's epilogue writes h in e4m3 with it (a scale fixed ahead, as
    -- static FP8 serving calibrates once), and no pass quantizes h per token. Where the FFN is
    -- cuBLASLt's (no Hopper kernels), h stays per token and this is a plain forward. Returns
    -- whether h's scale is now fixed.
    function L.calibrate()
      local fused = fp8_ffn_impl == "fused"
      if fused then
        h_scale = h_scale or sf.tensor({ 1 }, "f32", { device = device }) -- the layer's own, never shared
        calibrating = true
      end
      local ok, err = pcall(L.forward_all)
      calibrating = nil
      if not ok then error(err, 0) end
      return fused
    end
  else
    local packed = opts.packed or llama.pack_weights(shape, w)
    local wqkv, w13 = packed.wqkv, packed.w13
    -- One GEMM for Q, K and V: "packed" writes [T, (H + 2·Hkv)·hd] with q and k rotated
    -- (attention reads q, k and v as strided views); "split" (as many kv heads as heads only) is
    -- a batch of three products (x broadcast) writing q, k and v each contiguous, then one RoPE
    -- pass over q and k.
    local q4, k4, v4
    fns.attention = function()
      sf.ops.attention { q = q4, k = k4, v = v4, out = attn4, causal = true, impl = "flash" }
    end
    fns["o_proj+residual"] = function()
      sf.ops.gemm { a = attn, b = w.wo, c = x, out = r, beta = 1, transb = true, impl = "fastest" }
    end
    fns["ffn+residual"] = function()
      sf.ops.ffn { x = h2, w1 = w.w1, w2 = w.w2, w3 = w.w3, w13 = w13, out = out, residual = r, act = "swiglu",
        impl = "fused" }
    end
    if qkv_layout == "split" then
      local qkv = buf({ 3, T, H * hd }, "qkv")
      local w3d = wqkv:view({ 3, H * hd, d })
      local qk4 = qkv:slice(1, 1, 2):view({ 2 * B, N, H, hd })    -- q and k, adjacent: one RoPE pass
      q4 = qkv:slice(1, 1, 1):view({ B, N, H, hd })
      k4 = qkv:slice(1, 2, 1):view({ B, N, H, hd })
      v4 = qkv:slice(1, 3, 1):view({ B, N, H, hd })
      fns.qkv_proj = function() sf.ops.gemm { a = h, b = w3d, c = qkv, transb = true } end
      fns.rope = function() sf.ops.rope { x = qk4, theta = theta } end
      L.tensors.q, L.tensors.k, L.tensors.v = q4, k4, v4
    else
      local qkv4 = buf({ B, N, H + 2 * Hkv, hd }, "qkv")
      q4, k4, v4 = qkv4:slice(3, 1, H), qkv4:slice(3, H + 1, Hkv), qkv4:slice(3, H + Hkv + 1, Hkv)
      L.tensors.q, L.tensors.k, L.tensors.v = q4, k4, v4
      fns["qkv_proj+rope"] = function()
        sf.ops.linear_rope { x = h, w = wqkv, out = qkv4, rope_heads = H + Hkv, theta = theta }
      end
    end
    if tp then tp_projections(fns, { x = x, attn = attn, r = r, h2 = h2, out = out }, w, w13, tp, rank0, shape) end
  end
  local wanted
  if opts.stages then
    wanted = {}
    for _, n in ipairs(opts.stages) do wanted[n] = true end
  end
  L.stages = {}
  for _, name in ipairs(llama.stage_names(impl, qkv_layout, tp ~= nil)) do
    if not wanted or wanted[name] then L.stages[#L.stages + 1] = { name = name, fn = fns[name] } end
  end

  function L.forward()
    for _, s in ipairs(L.stages) do s.fn() end
    return out
  end

  -- every stage, whatever `stages` selected: what a stage subset is timed after, so that the
  -- buffers the skipped stages write hold a real forward's values (a GEMM over zeros draws less
  -- power, and on a power-limited GPU runs faster)
  function L.forward_all()
    for _, name in ipairs(llama.stage_names(impl, qkv_layout, tp ~= nil)) do fns[name]() end
    return out
  end

  -- the stages of one part (PART above), in order, whatever `stages` selected
  function L.run_part(part)
    local entry = PART_ENTRY[impl] and PART_ENTRY[impl][part]
    if entry then fns[entry]() end
    for _, name in ipairs(llama.stage_names(impl, qkv_layout, tp ~= nil)) do
      if PART[name] == part then fns[name]() end
    end
    local exit = PART_EXIT[impl] and PART_EXIT[impl][part]
    if exit then fns[exit]() end
  end

  -- median ms of each stage over `iters` forwards (time_stages)
  function L.profile(iters) return time_stages(L.stages, iters) end

  return L
end

-- The optimized layer's decode step, in its order: the QKV GEMM writes q, k and v packed; the
-- cache appends k and v, k turned by RoPE at each sequence's position on the way, and q turned
-- there in place (one kv_append); attention runs over the cache (decode_attention); the
-- projections run on our GEMV or the GEMMs, whichever was faster for the shape (gemm impl
-- fastest, ffn impl fused).
local DECODE_STAGES = { "attn_norm", "qkv_proj", "rope+kv_append", "attention", "o_proj+residual", "ffn_norm",
  "ffn+residual" }

function llama.decode_stage_names()
  return table.move(DECODE_STAGES, 1, #DECODE_STAGES, 1, {})
end

-- llama.decode_layer(cfg, {cache=, layer=, tokens=1, weights=, packed=, dtype=, device=, seed=, input=,
--                          output=, shared=, gemm="fastest", ffn="fused"})
-- One decode step of layer `layer` of `cache` (a kv_cache of B sequences): input and output are
-- [B·tokens, hidden], tokens new ones a sequence (the caller's cache:step(tokens) before each
-- forward). weights, packed, input, output and shared as llama.layer's; gemm and ffn: the impl of
-- the gemm and ffn ops the projections use.
function llama.decode_layer(cfg, opts)
  local cache, layer = opts.cache, opts.layer
  if type(cache) ~= "table" or not cache.attend then error("llama.decode_layer: 'cache' must be a kv_cache", 2) end
  if math.type(layer) ~= "integer" or layer < 1 or layer > cache.layers then
    error(("llama.decode_layer: 'layer' must be one of the cache's layers 1..%d"):format(cache.layers), 2)
  end
  if cache.kv_heads ~= cfg.kv_heads or cache.head_dim ~= cfg.head_dim then
    error(("llama.decode_layer: the cache holds %d kv heads of %d, %s has %d of %d"):format(cache.kv_heads,
      cache.head_dim, cfg.name, cfg.kv_heads, cfg.head_dim), 2)
  end
  if cache.theta ~= cfg.rope_theta then
    error(("llama.decode_layer: the cache turns K by RoPE at theta %g, %s's theta is %g"):format(cache.theta, cfg.name,
      cfg.rope_theta), 2)
  end
  local Tq = opts.tokens or 1
  if math.type(Tq) ~= "integer" or Tq < 1 then error("llama.decode_layer: 'tokens' must be an integer >= 1", 2) end
  local dtype, device = opts.dtype or cache.dtype, opts.device
  local B, d, hd, H, Hkv = cache.batch, cfg.hidden, cfg.head_dim, cfg.heads, cfg.kv_heads
  local T = B * Tq
  local gemm_impl, ffn_impl = opts.gemm or "fastest", opts.ffn or "fused"
  local w = opts.weights and copy_weights(opts.weights, dtype, device) or random_weights(cfg, dtype, device, opts.seed or 1)
  local packed = opts.packed or llama.pack_weights(cfg, w)
  local buf = buffers(dtype, device, opts.shared)
  local L = { cfg = cfg, batch = B, tokens = Tq, dtype = dtype, weights = w, cache = cache, layer = layer,
    input = opts.input or sf.tensor({ T, d }, dtype, { device = device }),
    output = opts.output or sf.tensor({ T, d }, dtype, { device = device }) }
  local x, out = L.input, L.output
  local h, r, h2 = buf("h", { T, d }), buf("r", { T, d }), buf("h2", { T, d })
  local attn = buf("attn", { T, H * hd })
  local attn4 = attn:view({ B, Tq, H, hd })
  local qkv4 = buf("qkv", { B, Tq, H + 2 * Hkv, hd })
  local qkv = qkv4:view({ T, (H + 2 * Hkv) * hd })
  local q4, k4, v4 = qkv4:slice(3, 1, H), qkv4:slice(3, H + 1, Hkv), qkv4:slice(3, H + Hkv + 1, Hkv)
  local eps = cfg.norm_eps
  local fns = {
    attn_norm = function() sf.ops.rmsnorm { x = x, weight = w.attn_norm, out = h, eps = eps } end,
    qkv_proj = function() sf.ops.gemm { a = h, b = packed.wqkv, c = qkv, transb = true, impl = gemm_impl } end,
    ["rope+kv_append"] = function() cache:append(layer, k4, v4, q4) end,
    attention = function() cache:attend(layer, q4, attn4) end,
    ["o_proj+residual"] = function()
      sf.ops.gemm { a = attn, b = w.wo, c = x, out = r, beta = 1, transb = true, impl = gemm_impl }
    end,
    ffn_norm = function() sf.ops.rmsnorm { x = r, weight = w.ffn_norm, out = h2, eps = eps } end,
    ["ffn+residual"] = function()
      sf.ops.ffn { x = h2, w1 = w.w1, w2 = w.w2, w3 = w.w3, w13 = packed.w13, out = out, residual = r, act = "swiglu",
        impl = ffn_impl }
    end,
  }
  L.stages = {}
  for i, name in ipairs(DECODE_STAGES) do L.stages[i] = { name = name, fn = fns[name] } end
  function L.forward()
    for _, st in ipairs(L.stages) do st.fn() end
    return out
  end
  function L.profile(iters) return time_stages(L.stages, iters) end
  return L
end

local function token_tensor(tokens, n, vocab, seed, device)
  if type(tokens) == "userdata" then return tokens end
  local ids = {}
  if tokens == nil then
    local rng = sf.rand({ n }, "f64", { seed = seed, device = "cpu" }):totable()
    for i = 1, n do ids[i] = math.floor(rng[i] * vocab) end
  else
    if type(tokens) ~= "table" or #tokens ~= n then error(("llama.model: expected %d token ids"):format(n), 3) end
    for i = 1, n do
      local t = tokens[i]
      if math.type(t) ~= "integer" or t < 0 or t >= vocab then
        error(("llama.model: token %d is %s, not an id in 0..%d"):format(i, tostring(t), vocab - 1), 3)
      end
      ids[i] = t
    end
  end
  return sf.from_table(ids, { n }, "i32", { device = device })
end

-- llama.model(cfg, {batch=1, capacity=, layers=cfg.layers, dtype="f16", device=, seed=1, page_size=,
--                   allow_long=false, gemm="fastest", ffn="fused", weights_from=})
-- The whole model with random weights: embedding, `layers` decoder layers (fewer than the
-- config's to run a subset), final RMSNorm, lm_head, and a KV cache of `capacity` tokens for each
-- of `batch` sequences (paged with page_size); weights_from: another model whose weights this one
-- takes (converted to its dtype and device: a reference in f64 on the CPU). M.weights[l] and
-- M.packed[l]: layer l's weights and llama.pack_weights of them, wq, wk and wv being views of the
-- rows of M.packed[l].wqkv, and w1 and w3 kept only with ffn="unfused" (the packed w13 holds
-- them). M.prefill(P, tokens)
-- runs B prompts of P tokens (tokens: B·P ids, row by row, or nil for random ones) through the
-- optimized layer, filling the cache, and returns the last tokens' logits [B, vocab]; M.decode(tokens) runs one
-- decode step of B new tokens, extending the cache. For timing, M.begin_prefill(P, tokens) and
-- M.begin_decode{context=, tokens=} do the host's part (cache bookkeeping, token upload) and
-- return the step's list of stages ({name=, fn=}, the GPU work), which M.run(list) runs and
-- M.profile(list, iters) times stage by stage (a layer's stages summed over the layers).
function llama.model(cfg, opts)
  opts = opts or {}
  local B, N = opts.batch or 1, opts.layers or cfg.layers
  if math.type(B) ~= "integer" or B < 1 then error("llama.model: 'batch' must be an integer >= 1", 2) end
  if math.type(N) ~= "integer" or N < 1 or N > cfg.layers then
    error(("llama.model: 'layers' must be an integer in 1..%d (%s's layers)"):format(cfg.layers, cfg.name), 2)
  end
  if math.type(opts.capacity) ~= "integer" or opts.capacity < 1 then
    error("llama.model: 'capacity' (KV cache tokens a sequence) must be an integer >= 1", 2)
  end
  local dtype, device, seed = opts.dtype or "f16", opts.device, opts.seed or 1
  local d, V = cfg.hidden, cfg.vocab
  local M = { cfg = cfg, batch = B, layers = N, dtype = dtype, capacity = opts.capacity, weights = {}, packed = {} }
  local from = opts.weights_from
  if from and (from.cfg ~= cfg or from.layers ~= N) then
    error("llama.model: 'weights_from' must be a model of the same config and layers", 2)
  end
  local unfused = opts.ffn == "unfused"
  if from and unfused and not from.weights[1].w1 then
    error("llama.model: ffn 'unfused' reads w1 and w3, which 'weights_from' does not keep (a model keeps them only "
      .. "with ffn 'unfused')", 2)
  end
  for l = 1, N do
    local src = from and from.weights[l]
    if src and not unfused then -- w1 and w3 not copied where the packed w13 serves
      src = {}
      for k, t in pairs(from.weights[l]) do
        if k ~= "w1" and k ~= "w3" then src[k] = t end
      end
    end
    M.weights[l] = from and copy_weights(src, dtype, device) or random_weights(cfg, dtype, device, seed + 16 * l)
    M.packed[l] = from and copy_weights(from.packed[l], dtype, device) or llama.pack_weights(cfg, M.weights[l])
    qkv_views(cfg, M.weights[l], M.packed[l].wqkv) -- not a second copy of them
    -- w1 and w3 only where an unfused FFN needs them; packed w13 serves every other form
    if not unfused and not from then
      for _, k in ipairs({ "w1", "w3" }) do
        M.weights[l][k]:free()
        M.weights[l][k] = nil
      end
    end
  end
  local own = from and copy_weights({ embed = from.embed, norm = from.norm, lm_head = from.lm_head }, dtype, device) or {
    embed = sf.randn({ V, d }, dtype, { seed = seed + 1, std = 1, device = device }),
    norm = sf.randn({ d }, dtype, { seed = seed + 2, mean = 1, std = 0.1, device = device }),
    lm_head = sf.randn({ V, d }, dtype, { seed = seed + 3, std = 0.02, device = device }) }
  M.embed, M.norm, M.lm_head = own.embed, own.norm, own.lm_head
  M.cache = kv_cache.new { batch = B, capacity = opts.capacity, kv_heads = cfg.kv_heads, head_dim = cfg.head_dim,
    layers = N, dtype = dtype, page_size = opts.page_size, theta = cfg.rope_theta, device = device }
  M.logits = sf.tensor({ B, V }, dtype, { device = device })
  local gemm_impl = opts.gemm or "fastest"
  local hn = sf.tensor({ B, d }, dtype, { device = device })
  local function head(x_last)
    return {
      { name = "final_norm", fn = function() sf.ops.rmsnorm { x = x_last, weight = M.norm, out = hn, eps = cfg.norm_eps } end },
      { name = "lm_head", fn = function() sf.ops.gemm { a = hn, b = M.lm_head, c = M.logits, transb = true, impl = gemm_impl } end },
    }
  end

  -- decode: one list, built once; x ping-pongs between two [B, d] buffers
  local dec_tokens = sf.zeros({ B }, "i32", { device = device })
  local dshared = {}
  local xs = { sf.tensor({ B, d }, dtype, { device = device }), sf.tensor({ B, d }, dtype, { device = device }) }
  local decode = { { name = "embedding", fn = function() sf.ops.embedding { table = M.embed, tokens = dec_tokens, out = xs[1] } end } }
  for l = 1, N do
    local layer = llama.decode_layer(cfg, { cache = M.cache, layer = l, weights = M.weights[l], packed = M.packed[l],
      dtype = dtype, device = device, input = xs[(l - 1) % 2 + 1], output = xs[l % 2 + 1], shared = dshared,
      gemm = gemm_impl, ffn = opts.ffn })
    table.move(layer.stages, 1, #layer.stages, #decode + 1, decode)
  end
  table.move(head(xs[N % 2 + 1]), 1, 2, #decode + 1, decode)

  -- prefill of P tokens a sequence: built on first use of P (the previous P's buffers dropped)
  local pre
  local function prefill_list(P)
    if pre and pre.P == P then return pre end
    pre = nil
    collectgarbage()
    local T = B * P
    local shared = {}
    local ys = { sf.tensor({ T, d }, dtype, { device = device }), sf.tensor({ T, d }, dtype, { device = device }) }
    local toks = sf.zeros({ T }, "i32", { device = device })
    local list = { { name = "embedding", fn = function() sf.ops.embedding { table = M.embed, tokens = toks, out = ys[1] } end } }
    for l = 1, N do
      local layer = llama.layer(cfg, { impl = "optimized", batch = B, seq = P, dtype = dtype, device = device,
        weights = M.weights[l], packed = M.packed[l], input = ys[(l - 1) % 2 + 1], output = ys[l % 2 + 1],
        shared = shared, allow_long = opts.allow_long })
      table.move(layer.stages, 1, #layer.stages, #list + 1, list)
      list[#list + 1] = { name = "kv_store", fn = function() M.cache:store(l, layer.tensors.k, layer.tensors.v) end }
    end
    -- the last token of each sequence: rows P, 2P, ... of the final [B·P, d], a strided [B, d]
    local last = ys[N % 2 + 1]:view({ B, P * d }):slice(2, (P - 1) * d + 1, d)
    table.move(head(last), 1, 2, #list + 1, list)
    pre = { P = P, list = list, tokens = toks }
    return pre
  end

  function M.begin_prefill(P, tokens)
    if math.type(P) ~= "integer" or P < 1 then error("llama.model: a prompt has P >= 1 tokens", 2) end
    local p = prefill_list(P)
    M.cache:reset()
    M.cache:step(P)
    p.tokens:copy(token_tensor(tokens, B * P, V, seed + 4, "cpu"))
    return p.list
  end

  -- o.context: empty the cache and take it as holding that many tokens a sequence already
  -- (whatever the cache holds there), so a step can be timed at any length without a prefill
  function M.begin_decode(o)
    o = o or {}
    if o.context then
      M.cache:reset()
      M.cache:extend(o.context)
    end
    M.cache:step(1)
    dec_tokens:copy(token_tensor(o.tokens, B, V, seed + 5, "cpu"))
    return decode
  end

  function M.run(list)
    for _, st in ipairs(list) do st.fn() end
    return M.logits
  end
  M.profile = time_stages
  function M.prefill(P, tokens) return M.run(M.begin_prefill(P, tokens)) end
  function M.decode(tokens) return M.run(M.begin_decode { tokens = tokens }) end

  -- bytes a decode step reads at least, by part: one layer's weights (the packed QKV and
  -- gate/up, not their sources), one layer's K and V at the cache's lengths, and the head (final
  -- norm and lm_head); total = layers × (weights + kv) + head (the embedding's B rows aside)
  function M.decode_bytes()
    local w, P = M.weights[1], M.packed[1]
    local per = 0
    for _, t in ipairs({ P.wqkv, w.wo, P.w13, w.w2, w.attn_norm, w.ffn_norm }) do per = per + t:nbytes() end
    local kv, head = M.cache:bytes_read(), M.lm_head:nbytes() + M.norm:nbytes()
    return { layer_weights = per, kv = kv, head = head, total = N * (per + kv) + head }
  end
  return M
end

return llama
