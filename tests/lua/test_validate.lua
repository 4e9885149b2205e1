-- The validation policy (sfbench.validate) failing where it must: NaN, Inf, a poisoned output
-- left partly unwritten, a whole-tensor bound exceeded, one wrong row or a few wrong rows that
-- the whole tensor's norm hides, one wrong element that its row's norm hides (the max-abs
-- bound), the logsumexp's -inf rows and bound, and the suite's verdict.
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

-- one element of a long row (a token of a 4096-wide hidden state) off by twice the dtype's
-- max-abs bound (8u for f16 and bf16, 1e-5 for f32) times max|ref|: the row's norm and the whole
-- tensor's hide it, the max-abs bound does not; off by half of it, it passes. So check() applies
-- that bound, in f16, bf16 and f32.
function TestValidate.test_one_wrong_element()
  local ref = sf.randn({ 16, 4096 }, "f64", { seed = 10, device = "cpu" })
  for _, dt in ipairs({ "f16", "bf16", "f32" }) do
    local bound = validate.max_abs_bounds[dt]
    local ref_max = 0
    for _, v in ipairs(ref:totable()) do ref_max = math.max(ref_max, math.abs(v)) end
    local function off_by(delta)
      local out = ref:to(dt)
      out:set(ref:get(7, 1234) + delta * ref_max, 7, 1234)
      return validate.check(out, ref)
    end
    local far = off_by(2 * bound)
    lu.assertEquals(far.ref_max_abs, ref_max, dt)
    lu.assertTrue(far.rel_l2 <= far.bound, dt .. ": the whole tensor's norm hides it: " .. validate.describe(far))
    lu.assertTrue(far.row_rel_l2 <= far.row_bound, dt .. ": its row's norm hides it: " .. validate.describe(far))
    lu.assertTrue(far.max_abs_ratio > bound, dt .. ": " .. validate.describe(far))
    lu.assertFalse(far.ok, dt .. ": " .. validate.describe(far))
    lu.assertStrContains(validate.describe(far), "max_abs/max|ref|")
    local near = off_by(bound / 2)
    lu.assertTrue(near.ok, dt .. ": within half the bound: " .. validate.describe(near))
  end
end

-- the max-abs bound scales with the reference's largest element; an all-zero reference makes it
-- a bound on max_abs itself
function TestValidate.test_max_abs_scale()
  local ref = sf.from_table({ 0, 0, 0, 0 }, { 2, 2 }, "f64", CPU)
  local small = validate.check(sf.from_table({ 0, 0, 0, 1e-3 }, { 2, 2 }, "f16", CPU), ref)
  lu.assertEquals(small.ref_max_abs, 0)
  lu.assertAlmostEquals(small.max_abs_ratio, 1e-3, 1e-6)
  lu.assertTrue(small.ok, validate.describe(small))
  lu.assertStrContains(validate.describe(small), "all zeros")
  local big = validate.check(sf.from_table({ 0, 0, 0, 1e-2 }, { 2, 2 }, "f16", CPU), ref)
  lu.assertFalse(big.ok, validate.describe(big))
  -- the same element error passes beside a reference a thousand times larger elsewhere
  local wide = sf.from_table({ 1000, 0, 0, 0 }, { 2, 2 }, "f64", CPU)
  local r = validate.check(sf.from_table({ 1000, 0, 0, 1e-2 }, { 2, 2 }, "f16", CPU), wide,
    { bound = 1, row_bound = 1 })
  lu.assertAlmostEquals(r.max_abs_ratio, 1e-5, 1e-8)
  lu.assertTrue(r.ok, validate.describe(r))
end

function TestValidate.test_explicit_bounds()
  local ref = sf.from_table({ 1, 2, 3, 4 }, { 2, 2 }, "f64", CPU)
  local out = sf.from_table({ 1, 2, 3, 4.5 }, { 2, 2 }, "f64", CPU)
  lu.assertTrue(validate.check(out, ref, { bound = 1, row_bound = 1, max_abs_bound = 1 }).ok)
  lu.assertFalse(validate.check(out, ref, { bound = 1, row_bound = 1, max_abs_bound = 1, max_abs = 0.4 }).ok, "max_abs")
  lu.assertFalse(validate.check(out, ref, { bound = 1, row_bound = 1, max_abs_bound = 0.1 }).ok, "max_abs_bound")
  lu.assertFalse(validate.check(out, ref, { bound = 1, row_bound = 1 }).ok, "f64's max_abs_bound")
  lu.assertFalse(validate.check(out, ref, { bound = 1, row_bound = 0.05, max_abs_bound = 1 }).ok, "row_bound")
  lu.assertFalse(validate.check(out, ref, { bound = 0.05, row_bound = 1, max_abs_bound = 1 }).ok, "bound")
end

-- fp8_bounds(n): 0.6·2^-4·sqrt(n) on the whole tensor, twice on the worst row and max-abs;
-- fp8_attention_bounds(n): three times on those two, a new table each call
function TestValidate.test_fp8_bounds()
  local b = validate.fp8_bounds(4)
  lu.assertAlmostEquals(b.bound, 0.075, 1e-15)
  lu.assertEquals({ b.row_bound, b.max_abs_bound }, { 2 * b.bound, 2 * b.bound })
  local a = validate.fp8_attention_bounds(4)
  lu.assertEquals({ a.bound, a.row_bound, a.max_abs_bound }, { b.bound, 3 * b.bound, 3 * b.bound })
  lu.assertEquals(validate.fp8_bounds(4), b, "fp8_bounds left as it was")
  lu.assertAlmostEquals(validate.fp8_attention_bounds(1).bound, 0.0375, 1e-15)
end

-- plain_bounds: 1.5 times the straightforward computation's relative L2 and twice its worst row
-- and max-abs (here: ref 1..8, each element 1% off, up and down by turns), each capped by the
-- fixed bound given; an error 1.4 times the straightforward one passes, 1.6 times fails, and its
-- largest element 1.9 times off passes, 2.1 times fails; with a dtype, none below its bounds; a
-- non-finite straightforward computation is an error, not a loose bound
function TestValidate.test_plain_bounds()
  local ref = sf.from_table({ 1, 2, 3, 4, 5, 6, 7, 8 }, { 4, 2 }, "f64", CPU)
  local plain = sf.from_table({ 1.01, 1.98, 3.03, 3.96, 5.05, 5.94, 7.07, 7.92 }, { 4, 2 }, "f64", CPU)
  local r = validate.check(plain, ref, { bound = 1, row_bound = 1, max_abs_bound = 1 })
  local wide = { bound = 1, row_bound = 1, max_abs_bound = 1 }
  local b = validate.plain_bounds(plain, ref, wide)
  lu.assertAlmostEquals(b.bound, 1.5 * r.rel_l2, 1e-15)
  lu.assertAlmostEquals(b.row_bound, 2 * r.row_rel_l2, 1e-15)
  lu.assertAlmostEquals(b.max_abs_bound, 2 * 0.08 / 8, 1e-15)
  lu.assertTrue(b.bound < b.row_bound)
  local capped = validate.plain_bounds(plain, ref, { bound = 1e-3, row_bound = 1, max_abs_bound = 2e-3 })
  lu.assertEquals({ capped.bound, capped.row_bound, capped.max_abs_bound }, { 1e-3, b.row_bound, 2e-3 })
  -- a result 1.4 and 1.6 times as far off as the straightforward one
  for _, f in ipairs({ 1.4, 1.6 }) do
    local v = {}
    for i, x in ipairs(plain:totable()) do v[i] = i + f * (x - i) end
    local out = sf.from_table(v, { 4, 2 }, "f64", CPU)
    lu.assertEquals(validate.check(out, ref, b).ok, f < 1.5, "an error " .. f .. " times the straightforward one's")
  end
  -- the largest error alone 1.9 and 2.1 times as large: relative L2 stays within 1.5 times (1.35,
  -- 1.44) and the worst row within twice (1.57, 1.71); max-abs decides
  for _, f in ipairs({ 1.9, 2.1 }) do
    local v = plain:totable()
    v[8] = 8 + f * (v[8] - 8)
    local rr = validate.check(sf.from_table(v, { 4, 2 }, "f64", CPU), ref, b)
    lu.assertTrue(rr.rel_l2 <= b.bound and rr.row_rel_l2 <= b.row_bound, "only max-abs at " .. f)
    lu.assertEquals(rr.ok, f < 2, "the largest error " .. f .. " times the straightforward one's")
  end
  -- with the output's dtype, none below its own bounds: a straightforward computation with no
  -- error of its own still leaves the output its rounding
  local exact = validate.plain_bounds(ref, ref, wide, "bf16")
  lu.assertEquals({ exact.bound, exact.row_bound, exact.max_abs_bound },
    { validate.bounds.bf16, validate.row_bounds.bf16, validate.max_abs_bounds.bf16 })
  lu.assertEquals(validate.plain_bounds(plain, ref, wide, "f16"), b, "above f16's bounds: 1.5 times the error")
  local ok_e4, err_e4 = pcall(validate.plain_bounds, plain, ref, wide, "e4m3")
  lu.assertFalse(ok_e4)
  lu.assertStrContains(err_e4, "validate.plain_bounds: no bounds for dtype e4m3")
  plain:set(0 / 0, 1, 2)
  local ok, err = pcall(validate.plain_bounds, plain, ref, wide)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "the straightforward computation is not finite")
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

return lu.LuaUnit.run()
