-- A Llama-2 decoder layer composed from sfbench ops, in two orders:
--   baseline  — PyTorch eager / transformers' LlamaDecoderLayer: RMSNorm, separate Q/K/V
--               projections, RoPE on Q and on K, naive causal attention, O projection,
--               residual add, RMSNorm, unfused SwiGLU, residual add;
--   optimized — one QKV GEMM with RoPE on Q and K (linear_rope: in the GEMM's epilogue, or a
--               cuBLASLt GEMM and one RoPE pass, whichever was faster for the shape), flash
--               attention, the residual adds in the O and down projections' epilogues, the fused
--               SwiGLU; the O projection runs on cuBLASLt or our Hopper GEMM, whichever was
--               faster (gemm impl "fastest").
-- Each stage is a plain function over preallocated tensors, so a user can swap or reorder them.
local sf = require "sfbench"
local stats = require "sfbench.stats"

local llama = {}

-- FLOPs of one layer over T tokens of sequences of length N (causal attention counts half)
function llama.flops(cfg, batch, seq)
  local T, d, hd = batch * seq, cfg.hidden, cfg.head_dim
  local qkv = 2 * T * d * (cfg.heads + 2 * cfg.kv_heads) * hd
  local o = 2 * T * d * d
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

local function random_weights(cfg, dtype, device, seed, std)
  local d, hd, I = cfg.hidden, cfg.head_dim, cfg.intermediate
  local function w(shape, n) return sf.randn(shape, dtype, { seed = seed + n, std = std, device = device }) end
  return {
    wq = w({ cfg.heads * hd, d }, 1), wk = w({ cfg.kv_heads * hd, d }, 2), wv = w({ cfg.kv_heads * hd, d }, 3),
    wo = w({ d, cfg.heads * hd }, 4), w1 = w({ I, d }, 5), w3 = w({ I, d }, 6), w2 = w({ d, I }, 7),
    attn_norm = sf.randn({ d }, dtype, { seed = seed + 8, mean = 1, std = 0.1, device = device }),
    ffn_norm = sf.randn({ d }, dtype, { seed = seed + 9, mean = 1, std = 0.1, device = device }),
  }
end

local function copy_weights(from, dtype, device)
  local out = {}
  for k, t in pairs(from) do out[k] = t:to(device, dtype) end
  return out
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
}

-- The part of the layer each stage belongs to (L.run_part), with what a part reads and writes
-- (L.tensors):
--   attn_norm  x -> h;  qkv  h -> q, k (rotated), v;  attention  q, k, v -> attn;
--   o  attn, x -> r = x + attn·Woᵀ;  ffn_norm  r -> h2;  ffn  h2, r -> out = r + FFN(h2)
local PART = {
  attn_norm = "attn_norm", qkv_proj = "qkv", rope = "qkv", ["qkv_proj+rope"] = "qkv", attention = "attention",
  o_proj = "o", residual = "o", ["o_proj+residual"] = "o", ffn_norm = "ffn_norm", ffn = "ffn", residual2 = "ffn",
  ["ffn+residual"] = "ffn",
}

function llama.stage_names(impl, qkv)
  local names = STAGES[impl == "baseline" and "baseline" or qkv or "packed"]
  return table.move(names, 1, #names, 1, {})
end

-- nil when every name in `names` is a stage of the impl, else a message naming the first that is not
function llama.check_stages(impl, qkv, names)
  local known = {}
  for _, n in ipairs(llama.stage_names(impl, qkv)) do known[n] = true end
  for _, n in ipairs(names) do
    if not known[n] then
      return ("the %s layer has no stage '%s' (its stages: %s)"):format(impl, tostring(n),
        table.concat(llama.stage_names(impl, qkv), ", "))
    end
  end
end

-- llama.layer(cfg, {impl=, batch=1, seq=, dtype="f16", device=, seed=, std=0.02, weights=, allow_long=, qkv=,
--   stages=})
-- std: of the random projection weights (the norms' weights are 1 ± 0.1).
-- qkv (optimized only): "packed" (the default) or "split" (MHA configs), the QKV projection's layout.
-- stages: a list of stage names (llama.stage_names): forward and profile run only those, in the
-- layer's order (the others' outputs keep whatever they last held: run L.forward_all() first).
-- `weights` reuses another layer's (converted to this dtype and device): how a reference layer
-- in f64 on the CPU is built from a GPU layer's weights.
function llama.layer(cfg, opts)
  local impl = opts.impl or "optimized"
  if impl ~= "baseline" and impl ~= "optimized" then
    error(("llama.layer: unknown impl '%s' (baseline or optimized)"):format(tostring(impl)), 2)
  end
  local B, N = opts.batch or 1, opts.seq
  check_seq(cfg, N, opts.allow_long)
  local qkv_layout = opts.qkv or "packed"
  if qkv_layout ~= "packed" and qkv_layout ~= "split" then
    error(("llama.layer: unknown qkv layout '%s' (packed or split)"):format(tostring(qkv_layout)), 2)
  end
  if qkv_layout == "split" and cfg.kv_heads ~= cfg.heads then
    error(("llama.layer: qkv layout 'split' needs as many kv heads as heads (%s has %d and %d)")
      :format(cfg.name, cfg.kv_heads, cfg.heads), 2)
  end
  if opts.stages ~= nil then
    local bad = type(opts.stages) ~= "table" and "stages must be a list of stage names"
      or llama.check_stages(impl, qkv_layout, opts.stages)
    if bad then error("llama.layer: " .. bad, 2) end
  end
  local dtype, device = opts.dtype or "f16", opts.device
  local T, d, hd, H, Hkv = B * N, cfg.hidden, cfg.head_dim, cfg.heads, cfg.kv_heads
  local w = opts.weights and copy_weights(opts.weights, dtype, device)
    or random_weights(cfg, dtype, device, opts.seed or 1, opts.std or 0.02)
  local function buf(shape) return sf.tensor(shape, dtype, { device = device }) end

  local L = { cfg = cfg, impl = impl, batch = B, seq = N, dtype = dtype, weights = w,
    input = buf({ T, d }), output = buf({ T, d }) }
  local x, out = L.input, L.output
  local h, r, h2 = buf({ T, d }), buf({ T, d }), buf({ T, d })
  local attn = buf({ T, H * hd })
  local attn4 = attn:view({ B, N, H, hd })
  local eps, theta = cfg.norm_eps, cfg.rope_theta
  L.tensors = { x = x, h = h, attn = attn, r = r, h2 = h2, out = out }

  -- stage name -> function over the buffers above; the norms are the same in both orders
  local fns = {
    attn_norm = function() sf.ops.rmsnorm { x = x, weight = w.attn_norm, out = h, eps = eps } end,
    ffn_norm = function() sf.ops.rmsnorm { x = r, weight = w.ffn_norm, out = h2, eps = eps } end,
  }
  if impl == "baseline" then
    local q, k, v, o, f = buf({ T, H * hd }), buf({ T, Hkv * hd }), buf({ T, Hkv * hd }), buf({ T, d }), buf({ T, d })
    local q4, k4, v4 = q:view({ B, N, H, hd }), k:view({ B, N, Hkv, hd }), v:view({ B, N, Hkv, hd })
    L.tensors.q, L.tensors.k, L.tensors.v = q4, k4, v4
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
  else
    -- packed weights: [Wq; Wk; Wv] rows, and gate/up interleaved for the fused SwiGLU
    local wqkv = buf({ (H + 2 * Hkv) * hd, d })
    wqkv:slice(1, 1, H * hd):copy(w.wq)
    wqkv:slice(1, H * hd + 1, Hkv * hd):copy(w.wk)
    wqkv:slice(1, (H + Hkv) * hd + 1, Hkv * hd):copy(w.wv)
    local w13 = buf({ 2 * cfg.intermediate, d })
    sf.ops.pack_gate_up { w1 = w.w1, w3 = w.w3, out = w13 }
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
      local qkv = buf({ 3, T, H * hd })
      local w3d = wqkv:view({ 3, H * hd, d })
      local qk4 = qkv:slice(1, 1, 2):view({ 2 * B, N, H, hd })    -- q and k, adjacent: one RoPE pass
      q4 = qkv:slice(1, 1, 1):view({ B, N, H, hd })
      k4 = qkv:slice(1, 2, 1):view({ B, N, H, hd })
      v4 = qkv:slice(1, 3, 1):view({ B, N, H, hd })
      fns.qkv_proj = function() sf.ops.gemm { a = h, b = w3d, c = qkv, transb = true } end
      fns.rope = function() sf.ops.rope { x = qk4, theta = theta } end
      L.tensors.q, L.tensors.k, L.tensors.v = q4, k4, v4
    else
      local qkv4 = buf({ B, N, H + 2 * Hkv, hd })
      q4, k4, v4 = qkv4:slice(3, 1, H), qkv4:slice(3, H + 1, Hkv), qkv4:slice(3, H + Hkv + 1, Hkv)
      L.tensors.q, L.tensors.k, L.tensors.v = q4, k4, v4
      fns["qkv_proj+rope"] = function()
        sf.ops.linear_rope { x = h, w = wqkv, out = qkv4, rope_heads = H + Hkv, theta = theta }
      end
    end
  end
  local wanted
  if opts.stages then
    wanted = {}
    for _, n in ipairs(opts.stages) do wanted[n] = true end
  end
  L.stages = {}
  for _, name in ipairs(llama.stage_names(impl, qkv_layout)) do
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
    for _, name in ipairs(llama.stage_names(impl, qkv_layout)) do fns[name]() end
    return out
  end

  -- the stages of one part (PART above), in order, whatever `stages` selected
  function L.run_part(part)
    for _, name in ipairs(llama.stage_names(impl, qkv_layout)) do
      if PART[name] == part then fns[name]() end
    end
  end

  -- median ms of each stage over `iters` forwards, timed with events between the stages; each
  -- forward is queued behind sf.hold, so the first stage's time is not the host's launch latency
  function L.profile(iters)
    local events = {}
    for i = 1, #L.stages + 1 do events[i] = sf.event() end
    local times = {}
    for i = 1, #L.stages do times[i] = {} end
    for _ = 1, iters do
      sf.hold()
      events[1]:record()
      for i, s in ipairs(L.stages) do
        s.fn()
        events[i + 1]:record()
      end
      sf.release()
      for i = 1, #L.stages do times[i][#times[i] + 1] = sf.elapsed(events[i], events[i + 1]) end
    end
    local result = {}
    for i, s in ipairs(L.stages) do result[i] = { stage = s.name, ms = stats.summary(times[i]).median } end
    return result
  end

  return L
end

return llama
