-- luacheck: allow defined top
-- The layer's stage list and the stages= subset (lua/sfbench/llama.lua), and the tensor-parallel
-- layer's shards, and the fp8 layer's FP8 weights, bounds and calibration, on the CPU backend.
local lu = require "luaunit"
local sf = require "sfbench"
local models = require "sfbench.models"
local llama = require "sfbench.llama"
local validate = require "sfbench.validate"
local testlib = require "testlib"

TestLlamaStages = {}

local cfg = models.custom { name = "tiny", hidden = 64, layers = 1, heads = 2, kv_heads = 2, intermediate = 96 }

function TestLlamaStages.test_names()
  lu.assertEquals(llama.stage_names("baseline"),
    { "attn_norm", "qkv_proj", "rope", "attention", "o_proj", "residual", "ffn_norm", "ffn", "residual2" })
  lu.assertEquals(llama.stage_names("optimized"),
    { "attn_norm", "qkv_proj+rope", "attention", "o_proj+residual", "ffn_norm", "ffn+residual" })
  lu.assertEquals(llama.stage_names("optimized", "split"),
    { "attn_norm", "qkv_proj", "rope", "attention", "o_proj+residual", "ffn_norm", "ffn+residual" })
  lu.assertEquals(llama.stage_names("fp8", "split"), { "attn_norm", "qkv_proj+rope", "attention", "o_quant",
    "o_proj+residual", "ffn_norm", "ffn+residual" })
  local n = llama.stage_names("baseline")
  n[1] = "changed"                                     -- a copy: the layer's own list is untouched
  lu.assertEquals(llama.stage_names("baseline")[1], "attn_norm")
end

function TestLlamaStages.test_layers_run_every_named_stage()
  for _, c in ipairs({ { "baseline" }, { "optimized", "packed" }, { "optimized", "split" }, { "fp8" } }) do
    local L = llama.layer(cfg, { impl = c[1], qkv = c[2], seq = 5, dtype = "f32", device = "cpu" })
    local names = {}
    for i, s in ipairs(L.stages) do
      names[i] = s.name
      lu.assertIsFunction(s.fn, c[1] .. " " .. s.name)
    end
    lu.assertEquals(names, llama.stage_names(c[1], c[2]))
  end
end

function TestLlamaStages.test_check_stages()
  lu.assertNil(llama.check_stages("optimized", "packed", { "attention", "ffn+residual" }))
  lu.assertNil(llama.check_stages("baseline", nil, {}))
  lu.assertEquals(llama.check_stages("baseline", nil, { "attention", "qkv_proj+rope" }),
    "the baseline layer has no stage 'qkv_proj+rope' (its stages: attn_norm, qkv_proj, rope, attention, "
      .. "o_proj, residual, ffn_norm, ffn, residual2)")
end

function TestLlamaStages.test_subset_runs_only_those_stages()
  local full = llama.layer(cfg, { impl = "baseline", seq = 7, dtype = "f64", device = "cpu", seed = 3 })
  local all = llama.layer(cfg, { impl = "baseline", seq = 7, dtype = "f64", device = "cpu", weights = full.weights,
    stages = llama.stage_names("baseline") })
  local some = llama.layer(cfg, { impl = "baseline", seq = 7, dtype = "f64", device = "cpu", weights = full.weights,
    stages = { "ffn", "attn_norm" } })
  lu.assertEquals(#some.stages, 2)
  lu.assertEquals({ some.stages[1].name, some.stages[2].name }, { "attn_norm", "ffn" }) -- the layer's order
  local x = sf.randn({ 7, cfg.hidden }, "f64", { seed = 4, device = "cpu" })
  for _, L in ipairs({ full, all, some }) do
    L.input:copy(x)
    L.output:fill(0)
  end
  full.forward(); all.forward(); some.forward()
  testlib.assert_same(all.output, full.output, "every stage named")
  lu.assertTrue(testlib.assert_finite(sf.compare(full.output, x), "the full layer").max_abs > 0)
  testlib.assert_same(some.output, sf.zeros({ 7, cfg.hidden }, "f64", { device = "cpu" }),
    "without residual2 the output is never written")
  lu.assertEquals(#some.profile(1), 2)
  some.forward_all()                                   -- every stage, whatever the subset
  testlib.assert_same(some.output, full.output, "forward_all")
end

-- a profile as one line, stages in the profile's order, three decimals of ms each
function TestLlamaStages.test_stages_text()
  lu.assertEquals(llama.stages_text({ { stage = "attn_norm", ms = 0.01234 }, { stage = "ffn", ms = 2 } }),
    "attn_norm 0.012, ffn 2.000")
  lu.assertEquals(llama.stages_text({}), "")
end

function TestLlamaStages.test_bad_stages()
  local ok, err = pcall(llama.layer, cfg, { impl = "optimized", seq = 4, device = "cpu", stages = { "rope" } })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "llama.layer: the optimized layer has no stage 'rope' (its stages: attn_norm, qkv_proj+rope")
  ok, err = pcall(llama.layer, cfg, { impl = "baseline", seq = 4, device = "cpu", stages = "ffn" })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "llama.layer: stages must be a list of stage names")
end

TestLlamaFp8 = {}

local scaled = models.scaled(models.get("7b"), 16)

-- each FP8 weight dequantized is its 16-bit weight to within e4m3's rounding (u = 2^-4 of the row's
-- largest element at most), Wq, Wk and Wv packed in that order
function TestLlamaFp8.test_weights()
  local w = llama.layer(cfg, { impl = "baseline", seq = 3, dtype = "f16", device = "cpu", seed = 2 }).weights
  local L = llama.layer(cfg, { impl = "fp8", seq = 3, dtype = "f16", device = "cpu", weights = w })
  local q = L.weights
  lu.assertEquals(q.wqkv:dtype(), "e4m3")
  lu.assertEquals(q.wqkv_scale:shape(), { 3 * 2 * cfg.head_dim })
  lu.assertIs(q.attn_norm, w.attn_norm)
  local packed = llama.pack_weights(cfg, w)
  for name, src in pairs({ wqkv = packed.wqkv, wo = w.wo, w1 = w.w1, w3 = w.w3, w2 = w.w2 }) do
    local back = sf.tensor(src:shape(), "f32", { device = "cpu" })
    sf.ops.dequantize { x = q[name], scale = q[name .. "_scale"], out = back }
    local rows = sf.compare_rows(back, src)       -- leaves NaN rows out: compare counts them
    lu.assertTrue(testlib.assert_finite(sf.compare(back, src), name).max_abs <= 2 ^ -4 * rows.ref_max_abs, name)
    lu.assertTrue(rows.worst < 2 ^ -4, name)
  end
  local ok, err = pcall(llama.layer, cfg, { impl = "fp8", seq = 3, device = "cpu", tp = { rank = 0, world = 1 } })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "the fp8 layer is not tensor-parallel")
end

-- validate.fp8_bounds holds the fp8 layer's attention block and FFN against the f64 reference of
-- the same weights (as validate_layer does), and fails either once one output channel's weight
-- scale is doubled: the bounds are not so loose that a wrong scale passes
function TestLlamaFp8.test_bounds_catch_a_wrong_scale()
  local seq, std = 16, 1 / math.sqrt(scaled.hidden)
  local base = llama.layer(scaled, { impl = "baseline", seq = seq, dtype = "f16", device = "cpu", seed = 4, std = std })
  local ref = llama.layer(scaled, { impl = "baseline", seq = seq, dtype = "f64", device = "cpu", weights = base.weights })
  local L = llama.layer(scaled, { impl = "fp8", seq = seq, dtype = "f16", device = "cpu", weights = base.weights })
  ref.input:randn { seed = 5 }
  ref.forward()
  -- part `part` of both from the reference's input `name`, the residual `zero` zeroed: L's output
  -- against the reference's
  local function check(part, name, zero, y, n)
    local input = ref.tensors[name]:to("f16"):to("f64")
    for _, l in ipairs({ ref, L }) do
      l.tensors[name]:copy(input)
      l.tensors[zero]:zero()
      l.run_part(part)
    end
    return validate.check(L.tensors[y], ref.tensors[y], validate.fp8_bounds(n))
  end
  for _, c in ipairs({ { "o", "attn", "x", "r", 2, "wo" }, { "ffn", "h2", "r", "out", 6, "w2" } }) do
    local r = check(c[1], c[2], c[3], c[4], c[5])
    lu.assertTrue(r.ok, c[1] .. ": " .. validate.describe(r))
    local scale = L.weights[c[6] .. "_scale"]
    scale:set(2 * scale:get(7), 7)
    r = check(c[1], c[2], c[3], c[4], c[5])
    lu.assertFalse(r.ok, c[1] .. " with " .. c[6] .. "'s 7th scale doubled passes: " .. validate.describe(r))
  end
end

-- The fp8 layer's parts run one after another: its norms run alone write the 16-bit h and h2 the
-- next part reads (as the optimized layer's do, the same bits), besides the e4m3 ones
function TestLlamaFp8.test_parts_in_turn()
  local seq, std = 16, 1 / math.sqrt(scaled.hidden)
  local opt = llama.layer(scaled, { impl = "optimized", seq = seq, dtype = "f16", device = "cpu", seed = 8, std = std })
  local L = llama.layer(scaled, { impl = "fp8", seq = seq, dtype = "f16", device = "cpu", weights = opt.weights })
  local x, r = sf.randn({ seq, scaled.hidden }, "f16", { seed = 9 }), sf.randn({ seq, scaled.hidden }, "f16", { seed = 10 })
  for _, l in ipairs({ opt, L }) do
    l.tensors.x:copy(x)
    l.tensors.r:copy(r)
    l.tensors.h:fill(0 / 0)
    l.tensors.h2:fill(0 / 0)
    l.run_part("attn_norm")
    l.run_part("ffn_norm")
  end
  testlib.assert_same(L.tensors.h, opt.tensors.h, "attn_norm's h")
  testlib.assert_same(L.tensors.h2, opt.tensors.h2, "ffn_norm's h2")
end

-- L.calibrate fixes h's scale from a forward's h: the FFN's output then differs from the per-token
-- one (another quantization of h) by about e4m3's rounding, not more; and a layer that never
-- calibrated gives, on its second forward, the same bits as a fresh layer's first (nothing carried
-- from call to call), its output poisoned in between so that a second forward that writes
-- nothing fails
function TestLlamaFp8.test_calibrate()
  local seq, std = 16, 1 / math.sqrt(scaled.hidden)
  local w = llama.layer(scaled, { impl = "baseline", seq = seq, dtype = "f16", device = "cpu", seed = 6, std = std }).weights
  local function fp8_layer()
    local L = llama.layer(scaled, { impl = "fp8", seq = seq, dtype = "f16", device = "cpu", weights = w })
    L.input:randn { seed = 7 }
    return L
  end
  local a, b, fresh = fp8_layer(), fp8_layer(), fp8_layer()
  a.forward()
  a.output:fill(0 / 0)
  a.forward()
  fresh.forward()
  testlib.assert_same(a.output, fresh.output, "per token: a second forward against a fresh layer's first")
  local per_token = fresh.output:to("f64")
  b.calibrate()
  b.forward()
  local r = testlib.assert_finite(sf.compare(b.output, per_token), "calibrated")
  lu.assertTrue(r.max_abs > 0, "calibrated: the same bits as per token")
  lu.assertTrue(r.rel_l2 < 2 ^ -5, ("calibrated against per token: rel_l2 %g"):format(r.rel_l2))
end

TestLlamaTensorParallel = {}

local gqa = models.custom { name = "tiny-gqa", hidden = 64, layers = 1, heads = 4, kv_heads = 2, intermediate = 96 }

-- the shards put back together along the dimension each was cut from
local function unshard(shards, key, dim)
  local parts = {}
  for r, w in ipairs(shards) do parts[r] = w[key] end
  local shape = parts[1]:shape()
  shape[dim] = shape[dim] * #parts
  local whole = sf.tensor(shape, parts[1]:dtype(), { device = "cpu" })
  for r, t in ipairs(parts) do whole:slice(dim, (r - 1) * t:size(dim) + 1, t:size(dim)):copy(t) end
  return whole
end

local SPLIT = { wq = 1, wk = 1, wv = 1, w1 = 1, w3 = 1, wo = 2, w2 = 2 }

function TestLlamaTensorParallel.test_shards_are_the_weights_cut()
  local full = llama.layer(gqa, { impl = "baseline", seq = 3, dtype = "f64", device = "cpu", seed = 7 }).weights
  local shards = {}
  for r = 0, 1 do shards[r + 1] = llama.shard_weights(gqa, full, r, 2) end
  lu.assertEquals(shards[1].wq:shape(), { 2 * gqa.head_dim, 64 })
  lu.assertEquals(shards[1].wk:shape(), { gqa.head_dim, 64 })
  lu.assertEquals(shards[1].wo:shape(), { 64, 2 * gqa.head_dim })
  lu.assertEquals(shards[1].w2:shape(), { 64, 48 })
  for key, dim in pairs(SPLIT) do
    lu.assertTrue(shards[2][key]:is_contiguous(), key)
    testlib.assert_same(unshard(shards, key, dim), full[key], key)
  end
  lu.assertIs(shards[2].attn_norm, full.attn_norm)
  local c = llama.tp_config(gqa, 2)
  lu.assertEquals({ c.heads, c.kv_heads, c.intermediate, c.hidden, c.head_dim }, { 2, 1, 48, 64, gqa.head_dim })
  local ok, err = pcall(llama.shard_weights, gqa, full, 0, 4)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "tiny-gqa's 2 kv heads do not split over 4 ranks")
end

-- the tensor each all-reduce stage sums: baseline's O and FFN outputs; the optimized layer's r and
-- output, which rank 0's partial sums carry the residual into
local REDUCED = { baseline = { o_all_reduce = "o", ffn_all_reduce = "f" },
  optimized = { o_all_reduce = "r", ffn_all_reduce = "out" } }

-- each emulated rank's layer at world 1, stage by stage, where each all-reduce is the identity:
-- at each all-reduce stage the ranks' tensors are summed here, as the all-reduce would
local function emulated_output(impl, ranks, world, weights, x)
  local layers = {}
  for i, rank in ipairs(ranks) do
    layers[i] = llama.layer(gqa, { impl = impl, seq = 5, dtype = "f64", device = "cpu", weights = weights,
      tp = { rank = rank, world = world, chunks = 2 } })
    layers[i].input:copy(x)
  end
  for s, stage in ipairs(layers[1].stages) do
    for _, L in ipairs(layers) do L.stages[s].fn() end
    local name = REDUCED[impl][stage.name]
    if name then
      local sum = sf.zeros({ 5, 64 }, "f64", { device = "cpu" })
      for _, L in ipairs(layers) do sf.ops.add { a = sum, b = L.tensors[name], out = sum } end
      for _, L in ipairs(layers) do L.tensors[name]:copy(sum) end
    end
  end
  return layers[1].output
end

function TestLlamaTensorParallel.test_partial_sums_make_the_layer()
  local x = sf.randn({ 5, 64 }, "f64", { seed = 11, device = "cpu" })
  for _, impl in ipairs({ "baseline", "optimized" }) do
    local full = llama.layer(gqa, { impl = impl, seq = 5, dtype = "f64", device = "cpu", seed = 9, std = 0.125 })
    full.input:copy(x)
    full.forward()
    local got = emulated_output(impl, { 0, 1 }, 2, full.weights, x)
    lu.assertTrue(testlib.assert_finite(sf.compare(got, full.output), impl).rel_l2 < 1e-12, impl)
    -- a wrong shard (rank 0's twice) is caught
    got = emulated_output(impl, { 0, 0 }, 2, full.weights, x)
    lu.assertTrue(sf.compare(got, full.output).rel_l2 > 1e-2, impl .. ": a wrong shard passes")
    -- TP 1 is the layer itself, bit for bit
    local one = llama.layer(gqa, { impl = impl, seq = 5, dtype = "f64", device = "cpu", weights = full.weights,
      tp = { rank = 0, world = 1 } })
    one.input:copy(x)
    testlib.assert_same(one.forward(), full.output, impl .. ": TP 1")
  end
end

function TestLlamaTensorParallel.test_stages()
  lu.assertEquals(llama.stage_names("baseline", nil, true), { "attn_norm", "qkv_proj", "rope", "attention", "o_proj",
    "o_all_reduce", "residual", "ffn_norm", "ffn", "ffn_all_reduce", "residual2" })
  lu.assertEquals(llama.stage_names("optimized", "packed", true), { "attn_norm", "qkv_proj+rope", "attention",
    "o_proj+residual", "o_all_reduce", "ffn_norm", "ffn+residual", "ffn_all_reduce" })
  lu.assertTrue(llama.is_comm_stage("ffn_all_reduce"))
  lu.assertFalse(llama.is_comm_stage("ffn"))
  lu.assertNil(llama.check_stages("baseline", nil, { "o_all_reduce" }, true))
  lu.assertStrContains(llama.check_stages("baseline", nil, { "o_all_reduce" }), "no stage 'o_all_reduce'")
  local L = llama.layer(gqa, { impl = "optimized", seq = 4, dtype = "f32", device = "cpu", tp = { rank = 1, world = 2 } })
  lu.assertEquals(#L.stages, 8)
  lu.assertEquals(L.weights.wq:shape(), { 2 * gqa.head_dim, 64 })
end

function TestLlamaTensorParallel.test_bad_tp()
  for _, tp in ipairs({ 2, { rank = 2, world = 2 }, { rank = 0 }, { rank = 0, world = 2, chunks = 0 } }) do
    local ok, err = pcall(llama.layer, gqa, { seq = 4, device = "cpu", tp = tp })
    lu.assertFalse(ok)
    lu.assertStrContains(err, "llama.layer: 'tp' must be {rank=, world=, chunks=}")
  end
  local ok, err = pcall(llama.layer, gqa, { seq = 4, device = "cpu", tp = { rank = 0, world = 3 } })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "tiny-gqa's 4 heads do not split over 3 ranks")
end

return lu.LuaUnit.run()
