-- luacheck: allow defined top
local lu = require "luaunit"
local support = require "fake_sf"
local params = require "sfbench.params"
local sweep = require "sfbench.sweep"

local SPEC = { seq = { 512, 1024 }, batch = 4, causal = false, dtype = "fp16" }

TestParams = {}

function TestParams:setUp()
  self.used = {}
  self.restore = support.patch({ args = {}, used_args = self.used })
end

function TestParams:tearDown()
  self.restore()
end

local function with_args(args)
  support.sf.args = args
end

function TestParams:test_defaults_without_overrides()
  local p = params.get(SPEC)
  lu.assertEquals(p, { seq = { 512, 1024 }, batch = 4, causal = false, dtype = "fp16" })
  p.seq[1] = 1
  lu.assertEquals(SPEC.seq[1], 512) -- lists are copied
  lu.assertEquals(self.used, {})
end

function TestParams:test_overrides_by_type()
  with_args({ seq = "256, 2048,4096", batch = "8", causal = "yes", dtype = "bf16" })
  local p = params.get(SPEC)
  lu.assertEquals(p, { seq = { 256, 2048, 4096 }, batch = 8, causal = true, dtype = "bf16" })
  lu.assertEquals(math.type(p.batch), "integer")
  lu.assertEquals(self.used, { seq = true, batch = true, causal = true, dtype = true })
end

function TestParams:test_whole_floats_are_integers()
  with_args({ seq = "1e3,4096.0,0.5", batch = "1e1" })
  local p = params.get(SPEC)
  lu.assertEquals(p, { seq = { 1000, 4096, 0.5 }, batch = 10, causal = false, dtype = "fp16" })
  lu.assertEquals(math.type(p.seq[1]), "integer")
  lu.assertEquals(math.type(p.seq[2]), "integer")
  lu.assertEquals(math.type(p.batch), "integer")
end

function TestParams:test_boolean_list_starting_with_false()
  with_args({ causal = "true,false" })
  lu.assertEquals(params.get({ causal = { false } }).causal, { true, false })
end

function TestParams:test_marks_only_consumed_keys()
  with_args({ batch = "2.5" })
  lu.assertEquals(params.get(SPEC).batch, 2.5)
  lu.assertEquals(self.used, { batch = true })
end

function TestParams.test_booleans()
  local cases = { ["true"] = true, ["1"] = true, yes = true, ON = true,
    ["false"] = false, ["0"] = false, no = false, off = false }
  for raw, expected in pairs(cases) do
    with_args({ causal = raw })
    lu.assertEquals(params.get({ causal = true }).causal, expected, raw)
  end
  with_args({ causal = "maybe" })
  lu.assertErrorMsgEquals(
    "bad value 'maybe' for causal: expected a boolean (true/false, 1/0, yes/no, on/off)",
    params.get, { causal = true })
end

function TestParams.test_single_value_list()
  with_args({ seq = "512" })
  lu.assertEquals(params.get(SPEC).seq, { 512 })
  with_args({ impl = "flash,naive" })
  lu.assertEquals(params.get({ impl = { "flash" } }).impl, { "flash", "naive" })
end

function TestParams.test_bad_numbers()
  with_args({ batch = "x" })
  lu.assertErrorMsgEquals("bad value 'x' for batch: expected a number", params.get, SPEC)
  with_args({ seq = "512,abc" })
  lu.assertErrorMsgEquals("bad value 'abc' for seq: expected a number", params.get, SPEC)
  with_args({ seq = "512,,1024" })
  lu.assertErrorMsgEquals("bad value '512,,1024' for seq: expected a comma-separated list",
    params.get, SPEC)
end

function TestParams.test_unknown_key()
  with_args({ sqe = "1024" })
  lu.assertErrorMsgEquals("unknown parameter 'sqe' (accepted: batch, causal, dtype, seq)",
    params.get, SPEC)
end

function TestParams.test_choices()
  local choices = { dtype = { "fp16", "bf16" }, seq = { 512, 1024, 2048 } }
  with_args({ dtype = "bf16", seq = "2048,512" })
  lu.assertEquals(params.get(SPEC, choices).seq, { 2048, 512 })
  with_args({ dtype = "fp8" })
  lu.assertErrorMsgEquals("bad value 'fp8' for dtype: expected one of fp16, bf16",
    params.get, SPEC, choices)
  with_args({ seq = "512,100" })
  lu.assertErrorMsgEquals("bad value '100' for seq: expected one of 512, 1024, 2048",
    params.get, SPEC, choices)
end

function TestParams.test_whole_numbers()
  lu.assertEquals(params.whole_numbers("ctas", { 1, 8, 4 }, 1, 8, "1 to 8"), { 1, 8, 4 })
  lu.assertEquals(params.whole_numbers("mib", { 1, 100000 }, 1, nil, "at least 1"), { 1, 100000 })
  lu.assertErrorMsgEquals("bad value '0' for ctas: expected 1 to 8", params.whole_numbers, "ctas", { 4, 0 }, 1, 8, "1 to 8")
  lu.assertErrorMsgEquals("bad value '9' for ctas: expected 1 to 8", params.whole_numbers, "ctas", { 9 }, 1, 8, "1 to 8")
  lu.assertErrorMsgEquals("bad value '1.5' for mib: expected at least 1", params.whole_numbers, "mib", { 1.5 }, 1, nil,
    "at least 1")
  lu.assertErrorMsgEquals("ctas: 4 is listed twice", params.whole_numbers, "ctas", { 4, 2, 4 }, 1, 8, "1 to 8")
  -- one number, as a parameter whose default is a number
  lu.assertEquals(params.whole_numbers("batch", 3, 1, nil, "at least 1"), 3)
  lu.assertErrorMsgEquals("bad value '0' for batch: expected at least 1", params.whole_numbers, "batch", 0, 1, nil,
    "at least 1")
  lu.assertErrorMsgEquals("bad value '2.5' for batch: expected at least 1", params.whole_numbers, "batch", 2.5, 1, nil,
    "at least 1")
  lu.assertErrorMsgEquals("bad value '65' for splits: expected 0 (the op's choice) or a count of splits up to 64",
    params.split_counts, "splits", { 0, 65 }, 64)
end

function TestParams.test_bad_spec()
  lu.assertErrorMsgContains("params.get: default for 'f' must be a number, boolean, string or list",
    params.get, { f = print })
  lu.assertErrorMsgContains("params.get: choices for 'x'", params.get, SPEC, { x = { 1 } })
  lu.assertErrorMsgContains("params.get: expected a table", params.get, nil)
end

TestProduct = {}

function TestProduct.test_order_and_size()
  local points = sweep.product({ seq = { 512, 1024, 2048 }, impl = { "flash", "naive" } },
    { "impl", "seq" })
  lu.assertEquals(points, {
    { impl = "flash", seq = 512 }, { impl = "flash", seq = 1024 }, { impl = "flash", seq = 2048 },
    { impl = "naive", seq = 512 }, { impl = "naive", seq = 1024 }, { impl = "naive", seq = 2048 },
  })
  points = sweep.product({ seq = { 512, 1024 }, impl = { "flash", "naive" } }, { "seq", "impl" })
  lu.assertEquals(points[2], { seq = 512, impl = "naive" })
end

function TestProduct.test_default_order_is_sorted()
  local points = sweep.product({ b = { 1, 2 }, a = { "x", "y" } })
  lu.assertEquals(points, { { a = "x", b = 1 }, { a = "x", b = 2 }, { a = "y", b = 1 },
    { a = "y", b = 2 } })
end

function TestProduct.test_edge_sizes()
  lu.assertEquals(#sweep.product({ a = { 1, 2 }, b = {} }, { "a", "b" }), 0)
  lu.assertEquals(sweep.product({}, {}), { {} })
  local big = sweep.product({ a = { 1, 2, 3 }, b = { 1, 2, 3, 4 }, c = { 1, 2, 3, 4, 5 } })
  lu.assertEquals(#big, 60)
end

function TestProduct.test_bad_axes()
  lu.assertErrorMsgContains("axis 'b' is missing from 'order'", sweep.product,
    { a = { 1 }, b = { 2 } }, { "a" })
  lu.assertErrorMsgContains("axis 'c' must be a list", sweep.product, { a = { 1 } }, { "a", "c" })
  lu.assertErrorMsgContains("axis 'a' appears twice", sweep.product, { a = { 1 } }, { "a", "a" })
end

return lu.LuaUnit.run()
