-- luacheck: allow defined top
-- The decode layer and the whole model (lua/sfbench/llama.lua) on the CPU backend, in f64: a
-- decode step after a prefill of P tokens gives the logits of a prefill of P + 1 (the cache,
-- each sequence's RoPE positions and decode attention against the prefill's causal attention),
-- contiguous and paged, GQA; a subset of layers; bad arguments.
local lu = require "luaunit"
local sf = require "sfbench"
local models = require "sfbench.models"
local llama = require "sfbench.llama"
local testlib = require "testlib"
local error_of, contains = testlib.error_of, testlib.contains

TestModel = {}

local cfg = models.custom { name = "tiny-gqa", hidden = 64, layers = 3, heads = 4, kv_heads = 2, intermediate = 96,
  vocab = 50, max_positions = 64 }

local function ids(n, s) return testlib.token_ids(n, cfg.vocab, s) end

-- tokens of B sequences row by row: the first `len` of each of rows of `full` tokens
local function prefix(tokens, B, full, len)
  local t = {}
  for b = 0, B - 1 do
    for i = 1, len do t[#t + 1] = tokens[b * full + i] end
  end
  return t
end

local function column(tokens, B, full, i)
  local t = {}
  for b = 0, B - 1 do t[b + 1] = tokens[b * full + i] end
  return t
end

function TestModel.test_decode_matches_prefill()
  for _, page_size in ipairs({ false, 2 }) do
    local B, P = 2, 6
    local M = llama.model(cfg, { batch = B, capacity = 9, layers = 2, dtype = "f64", device = "cpu", seed = 5,
      page_size = page_size or nil })
    local tokens = ids(B * (P + 2), 7)
    local want = M.prefill(P + 2, tokens):to("cpu")
    M.prefill(P, prefix(tokens, B, P + 2, P))
    M.decode(column(tokens, B, P + 2, P + 1))
    local got = M.decode(column(tokens, B, P + 2, P + 2))
    local what = page_size and "paged" or "contiguous"
    local r = testlib.assert_finite(sf.compare(got, want), what)
    lu.assertTrue(r.rel_l2 < 1e-10, ("%s: rel_l2 %.3g"):format(what, r.rel_l2))
    lu.assertTrue(r.ref_norm > 0, what)
    lu.assertEquals(M.cache.lengths, { P + 2, P + 2 }, what)
    -- a different last token changes the logits (the test can fail)
    M.prefill(P + 1, prefix(tokens, B, P + 2, P + 1))
    local other = column(tokens, B, P + 2, P + 2)
    other[1] = (other[1] + 1) % cfg.vocab
    lu.assertTrue(sf.compare(M.decode(other), want).rel_l2 > 1e-6, what)
  end
end

-- the standard deviation of a tensor's values
local function std_of(t)
  return select(2, testlib.mean_std(t:to("cpu", "f64"):view({ t:numel() }):totable()))
end

-- fails unless every value of a tensor is finite
local function assert_all_finite(t, what) testlib.assert_finite(sf.compare(t, t), what) end

-- Random weights as llama.layer's (std 0.02): at widths where weights of std 1 overflow f16
-- (every logit was NaN), a prefill and a decode step stay finite.
function TestModel.test_random_weights_keep_f16_finite()
  local wide = models.custom { name = "wide", hidden = 512, layers = 4, heads = 8, kv_heads = 8, intermediate = 1376,
    vocab = 200, max_positions = 64 }
  local M = llama.model(wide, { batch = 2, capacity = 8, dtype = "f16", device = "cpu", seed = 3 })
  local std = std_of(M.weights[1].wo)
  lu.assertTrue(math.abs(std - 0.02) < 0.002, ("wo's std %.4f"):format(std))
  assert_all_finite(M.prefill(4), "prefill logits")
  local logits = M.decode()
  assert_all_finite(logits, "decode logits")
  lu.assertTrue(std_of(logits) > 0, "decode logits all equal")
  local D = llama.decode_layer(wide, { cache = M.cache, layer = 1, device = "cpu" })
  lu.assertTrue(math.abs(std_of(D.weights.w2) - 0.02) < 0.002, "decode_layer's w2")
end

function TestModel.test_weights_from_and_subset()
  local M = llama.model(cfg, { batch = 1, capacity = 4, layers = 1, dtype = "f32", device = "cpu", seed = 2 })
  local R = llama.model(cfg, { batch = 1, capacity = 4, layers = 1, dtype = "f64", device = "cpu", weights_from = M })
  local t = ids(3, 9)
  local r = testlib.assert_finite(sf.compare(M.prefill(3, t), R.prefill(3, t)), "f32 vs f64")
  lu.assertTrue(r.rel_l2 < 1e-5 and r.ref_norm > 0, ("f32 vs f64: %.3g"):format(r.rel_l2))
  contains(error_of(llama.model, cfg, { capacity = 4, layers = 2, device = "cpu", weights_from = M }),
    "'weights_from' must be a model of the same config and layers")
end

-- pack_gate_up's w13 back into w1 and w3: of each 16 rows, the first 8 are w1's, the next 8 w3's
local function unpack_gate_up(w13)
  local rows, H = w13:size(1), w13:size(2)
  local blocks = w13:view({ rows // 16, 16, H })
  local halves = {}
  for i, first in ipairs({ 1, 9 }) do
    halves[i] = sf.tensor({ rows // 16, 8, H }, w13:dtype(), { device = "cpu" })
    halves[i]:copy(blocks:slice(2, first, 8))
  end
  return halves[1]:view({ rows // 2, H }), halves[2]:view({ rows // 2, H })
end

-- a model's wq, wk and wv share the packed QKV weight's memory, and are its right rows: the
-- baseline layer, which projects with them one by one, gives the optimized layer's output. It
-- keeps no w1 and w3 beside the packed w13 (the baseline gets them unpacked from it), but for
-- ffn "unfused", which reads them.
function TestModel.test_unpacked_weights_are_the_packed_rows()
  local M = llama.model(cfg, { batch = 1, capacity = 4, layers = 1, dtype = "f64", device = "cpu", seed = 3 })
  local w = M.weights[1]
  lu.assertNil(w.w1)
  lu.assertNil(w.w3)
  local unfused = llama.model(cfg, { batch = 1, capacity = 4, layers = 1, dtype = "f64", device = "cpu", seed = 3,
    ffn = "unfused" })
  local w1, w3 = unpack_gate_up(M.packed[1].w13)
  testlib.assert_same(w1, unfused.weights[1].w1, "w1")
  testlib.assert_same(w3, unfused.weights[1].w3, "w3")
  contains(error_of(llama.layer, cfg, { impl = "optimized", seq = 5, dtype = "f64", device = "cpu", weights = w }),
    "llama.pack_weights: the weights hold no w1 and w3")
  contains(error_of(llama.layer, cfg, { impl = "fp8", seq = 5, device = "cpu", weights = w }),
    "llama.fp8_weights: the weights hold no w1 and w3")
  contains(error_of(llama.model, cfg, { capacity = 4, layers = 1, dtype = "f64", device = "cpu", weights_from = M,
    ffn = "unfused" }), "llama.model: ffn 'unfused' reads w1 and w3, which 'weights_from' does not keep")
  local wb = { w1 = w1, w3 = w3 }
  for k, t in pairs(w) do wb[k] = t end
  local base = llama.layer(cfg, { impl = "baseline", seq = 5, dtype = "f64", device = "cpu", weights = wb })
  local opt = llama.layer(cfg, { impl = "optimized", seq = 5, dtype = "f64", device = "cpu", weights = w,
    packed = M.packed[1] })
  local x = sf.randn({ 5, cfg.hidden }, "f64", { seed = 4, device = "cpu" })
  base.input:copy(x)
  opt.input:copy(x)
  base.forward()
  opt.forward()
  local r = testlib.assert_finite(sf.compare(base.output, opt.output), "baseline against optimized")
  lu.assertTrue(r.rel_l2 < 1e-12 and r.ref_norm > 0, ("baseline against optimized: %.3g"):format(r.rel_l2))
  -- one copy: writing the packed rows shows through wk
  local before = w.wk:get(1, 1)
  M.packed[1].wqkv:slice(1, cfg.heads * cfg.head_dim + 1, 1):fill(before + 1)
  lu.assertEquals(w.wk:get(1, 1), before + 1)
end

function TestModel.test_stages_and_profile()
  local M = llama.model(cfg, { batch = 3, capacity = 8, layers = 2, dtype = "f32", device = "cpu" })
  local list = M.begin_decode { context = 4 }
  lu.assertEquals(#list, 1 + 2 * #llama.decode_stage_names() + 2)
  local names = {}
  for i, st in ipairs(M.profile(list, 1)) do names[i] = st.stage end
  local want = { "embedding" }
  table.move(llama.decode_stage_names(), 1, #llama.decode_stage_names(), 2, want)
  want[#want + 1], want[#want + 2] = "final_norm", "lm_head"
  lu.assertEquals(names, want)
  lu.assertEquals(M.cache.lengths, { 5, 5, 5 })
  local pre = {}
  for i, st in ipairs(M.profile(M.begin_prefill(4), 1)) do pre[i] = st.stage end
  lu.assertEquals(pre[1], "embedding")
  lu.assertEquals(pre[#pre - 2], "kv_store")
  lu.assertEquals(M.cache.lengths, { 4, 4, 4 })
  local bytes = M.decode_bytes()
  -- from the shapes, f32: a layer's packed QKV [(heads + 2 kv_heads)·head_dim, hidden], wo
  -- [hidden, heads·head_dim], packed gate/up [2·intermediate, hidden], w2 [hidden, intermediate]
  -- and its two norms [hidden]; K and V of 3 sequences of 4; the head's final norm [hidden] and
  -- lm_head [vocab, hidden]; two layers
  local H, D = cfg.hidden, cfg.head_dim
  local layer = 4 * ((cfg.heads + 2 * cfg.kv_heads) * D * H + H * cfg.heads * D + 2 * cfg.intermediate * H
    + H * cfg.intermediate + 2 * H)
  local kv = 2 * 3 * 4 * cfg.kv_heads * D * 4
  local head = 4 * (H + cfg.vocab * H)
  lu.assertEquals(bytes.layer_weights, layer)
  lu.assertEquals(bytes.kv, kv)
  lu.assertEquals(bytes.head, head)
  lu.assertEquals(bytes.total, 2 * (layer + kv) + head)
end

function TestModel.test_bad_arguments()
  contains(error_of(llama.model, cfg, { capacity = 4, layers = 4, device = "cpu" }), "'layers' must be an integer in 1..3")
  contains(error_of(llama.model, cfg, { layers = 1, device = "cpu" }), "'capacity'")
  local M = llama.model(cfg, { batch = 1, capacity = 3, layers = 1, dtype = "f32", device = "cpu" })
  contains(error_of(M.prefill, 2, { 1 }), "expected 2 token ids")
  contains(error_of(M.prefill, 2, { 1, 50 }), "token 2 is 50, not an id in 0..49")
  M.prefill(3)
  contains(error_of(M.decode, { 1 }), "passes the cache's capacity of 3")
  contains(error_of(llama.decode_layer, cfg, { cache = M.cache, layer = 2 }), "'layer' must be one of the cache's layers 1..1")
  local other = models.custom { name = "other", hidden = 64, layers = 1, heads = 2, intermediate = 96 }
  contains(error_of(llama.decode_layer, other, { cache = M.cache, layer = 1 }), "the cache holds 2 kv heads of 16")
end

return lu.LuaUnit.run()
