-- The validation policy (sfbench.validate) failing where it must: NaN, Inf, a poisoned output
-- left partly unwritten, a whole-tensor bound exceeded, one wrong row or a few wrong rows that
-- the whole tensor's norm hides, the logsumexp's -inf rows and bound, and the suite's verdict.
-- Run inside sfbench on the CPU backend (tests/run-lua.sh).
-- luacheck: allow defined top
local lu = require "luaunit"
local sf = require "sfbench"
local validate = require "sfbench.validate"

local U = { f16 = 2 ^ -11, bf16 = 2 ^ -8, f32 = 2 ^ -24 }
local CPU = { device = "cpu" }

-- a reference and its values scaled by (1 + delta), rounded to dtype
local function scaled(ref, delta, dtype)
  local v = ref:totable()
  for i = 1, #v do v[i] = v[i] * (1 + delta) end
  return sf.from_table(v, ref:shape(), dtype, CPU)
end

TestValidate = {}

function TestValidate.test_rounded_output_passes()
  local ref = sf.randn({ 64, 48 }, "f64", { seed = 1, device = "cpu" })
  for _, dt in ipairs({ "f16", "bf16", "f32" }) do
    local r = validate.check(ref:to(dt), ref)
    lu.assertTrue(r.ok, dt .. ": " .. validate.describe(r))
    lu.assertTrue(r.rel_l2 > 0, dt .. ": the output is rounded")
  end
end

-- every element off by delta (relative): passes at 2u, fails at 16u, in each dtype
function TestValidate.test_whole_tensor_bound()
  local ref = sf.randn({ 64, 48 }, "f64", { seed = 2, device = "cpu" })
  for _, dt in ipairs({ "f16", "bf16" }) do
    local near = validate.check(scaled(ref, 2 * U[dt], dt), ref)
    lu.assertTrue(near.ok, dt .. " within 2u: " .. validate.describe(near))
    local far = validate.check(scaled(ref, 16 * U[dt], dt), ref)
    lu.assertFalse(far.ok, dt .. " 16u off passed: " .. validate.describe(far))
    lu.assertTrue(far.rel_l2 > far.bound, dt)
  end
  local far = validate.check(scaled(ref, 1e-4, "f32"), ref)
  lu.assertFalse(far.ok, "f32 1e-4 off passed: " .. validate.describe(far))
  lu.assertFalse(validate.check(scaled(ref, 1e-4, "f64"), ref).ok, "f64 1e-4 off")
end

function TestValidate.test_nan_and_inf_never_pass()
  local ref = sf.randn({ 8, 16 }, "f64", { seed = 3, device = "cpu" })
  for _, bad in ipairs({ 0 / 0, math.huge, -math.huge }) do
    local out = ref:to("f32")
    out:set(bad, 5, 7)
    local r = validate.check(out, ref)
    lu.assertFalse(r.ok, tostring(bad))
    lu.assertEquals(r.nan + r.inf, 1, tostring(bad))
    lu.assertStrContains(validate.describe(r), "FAIL")
  end
  local bad_ref = ref:to("f64")
  bad_ref:set(0 / 0, 1, 1)
  local r = validate.check(ref:to("f32"), bad_ref)
  lu.assertFalse(r.ok, "a non-finite reference")
  lu.assertEquals(r.ref_nonfinite, 1)
end

-- poison fills with NaN: an op that leaves part of its output unwritten fails the check
function TestValidate.test_poisoned_unwritten_output()
  local ref = sf.randn({ 8, 16 }, "f64", { seed = 4, device = "cpu" })
  local out = sf.tensor({ 8, 16 }, "f32", CPU)
  lu.assertIs(validate.poison(out), out)
  for _, v in ipairs(out:totable()) do lu.assertNotEquals(v, v) end
  out:slice(1, 1, 7):copy(ref:slice(1, 1, 7))      -- the last row is not written
  local r = validate.check(out, ref)
  lu.assertFalse(r.ok)
  lu.assertEquals(r.nan, 16)
  out:slice(1, 8, 1):copy(ref:slice(1, 8, 1))
  lu.assertTrue(validate.check(out, ref).ok, "once written")
end

-- one query row of one head summed twice in a bf16 attention output (N = 1024, 8 heads, D = 128):
-- within the whole tensor's bound, not within the row bound
function TestValidate.test_one_wrong_row()
  local ref = sf.randn({ 1, 1024, 8, 128 }, "f64", { seed = 5, device = "cpu" })
  local out = ref:to("bf16")
  local row = out:slice(2, 501, 1):slice(3, 4, 1)
  row:copy(scaled(ref:slice(2, 501, 1):slice(3, 4, 1), 1, "f64"))
  local r = validate.check(out, ref)
  lu.assertTrue(r.rel_l2 <= r.bound, "the whole tensor's norm hides the row: " .. validate.describe(r))
  lu.assertFalse(r.ok, validate.describe(r))
  lu.assertEquals(r.row, 500 * 8 + 4, "the worst row is the wrong one")
end

-- the last 16 query rows of a causal attention 25% too large (outputs there are averages over
-- many keys, so small next to the first rows')
function TestValidate.test_wrong_rows_at_the_end_of_a_causal_sequence()
  local B, N, H, D = 1, 1000, 2, 64
  local function x(s, h) return sf.randn({ B, N, h, D }, "bf16", { seed = s, device = "cpu" }):to("f64") end
  local ref = sf.tensor({ B, N, H, D }, "f64", CPU)
  sf.ops.attention { q = x(6, H), k = x(7, 1), v = x(8, 1), out = ref, causal = true }
  local out = ref:to("bf16")
  out:slice(2, N - 15, 16):copy(scaled(ref:slice(2, N - 15, 16), 0.25, "f64"))
  local r = validate.check(out, ref)
  lu.assertTrue(r.rel_l2 <= r.bound, "the whole tensor's norm hides them: " .. validate.describe(r))
  lu.assertFalse(r.ok, validate.describe(r))
end

function TestValidate.test_explicit_bounds()
  local ref = sf.from_table({ 1, 2, 3, 4 }, { 2, 2 }, "f64", CPU)
  local out = sf.from_table({ 1, 2, 3, 4.5 }, { 2, 2 }, "f64", CPU)
  lu.assertTrue(validate.check(out, ref, { bound = 1, row_bound = 1 }).ok)
  lu.assertFalse(validate.check(out, ref, { bound = 1, row_bound = 1, max_abs = 0.4 }).ok, "max_abs")
  lu.assertFalse(validate.check(out, ref, { bound = 1, row_bound = 0.05 }).ok, "row_bound")
  lu.assertFalse(validate.check(out, ref, { bound = 0.05, row_bound = 1 }).ok, "bound")
end

function TestValidate.test_lse()
  local inf = math.huge
  local function t(v) return sf.from_table(v, { 1, 1, #v }, "f32", CPU) end
  local ref = t({ -inf, 1.5, 2.25 })
  lu.assertTrue(validate.check_lse(t({ -inf, 1.5, 2.25 + 1e-3 }), ref, "f16").ok, "-inf rows match")
  lu.assertFalse(validate.check_lse(t({ 0, 1.5, 2.25 }), ref, "f16").ok, "a row with no key must be -inf")
  lu.assertFalse(validate.check_lse(t({ -inf, -inf, 2.25 }), ref, "f16").ok, "a row with keys is finite")
  lu.assertFalse(validate.check_lse(t({ -inf, 0 / 0, 2.25 }), ref, "f16").ok, "NaN")
  lu.assertFalse(validate.check_lse(t({ -inf, 1.5, 2.25 + 4e-3 }), ref, "f16").ok, "beyond f16's bound")
  lu.assertTrue(validate.check_lse(t({ -inf, 1.5, 2.25 + 4e-3 }), ref, "bf16").ok, "within bf16's")
  lu.assertFalse(validate.check_lse(t({ -inf, 1.5, 2.25 + 1e-4 }), ref, "f32").ok, "beyond f32's")
end

-- the suite records every check and fails at the end when one did
function TestValidate.test_suite()
  local ref = sf.randn({ 4, 8 }, "f64", { seed = 9, device = "cpu" })
  local s = validate.suite("validate_test", {})
  lu.assertTrue(math.type(s.seed) == "integer" and s.seed > 0)
  s.check({ case = "good" }, ref:to("f32"), ref)
  s.finish({ "case" })
  lu.assertEquals(#s.rows, 1)
  lu.assertEquals(s.rows[1].ok, "ok")
  local bad = validate.suite("validate_test", {})
  local nan = ref:to("f32")
  nan:set(0 / 0, 2, 2)
  bad.check({ case = "good" }, ref:to("f32"), ref)
  bad.check({ case = "nan" }, nan, ref)
  lu.assertEquals(bad.failures, 1)
  lu.assertEquals(bad.rows[2].ok, "FAIL")
  lu.assertErrorMsgContains("1 check(s) out of bounds", bad.finish, { "case" })
end

os.exit(lu.LuaUnit.run())
