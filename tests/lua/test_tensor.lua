-- Tensors on the CPU backend: shapes and strides, host round trips per dtype, element access,
-- fills and random fills, copies and conversions, views and slices, lifetime, memory
-- accounting, and the errors bad input gets. Run inside sfbench (tests/run-lua.sh).
-- luacheck: allow defined top
local lu = require "luaunit"
local sf = require "sfbench"
local testlib = require "testlib"
local error_of, contains, f32 = testlib.error_of, testlib.contains, testlib.f32

local function seq(n, start)
  local t = {}
  for i = 1, n do t[i] = (start or 1) + i - 1 end
  return t
end

-- Memory checks must not see the collector free an earlier test's garbage half-way through.
local function quiet_gc()
  collectgarbage("collect")
  collectgarbage("collect")
  collectgarbage("stop")
end

local function in_use()
  return sf.memory().in_use
end

-- ---------------------------------------------------------------------------------------------

TestShape = {}

function TestShape.test_metadata()
  local t = sf.tensor({ 2, 3, 4 }, "f16")
  lu.assertEquals(t:shape(), { 2, 3, 4 })
  lu.assertEquals(t:strides(), { 12, 4, 1 })
  lu.assertEquals(t:dtype(), "f16")
  lu.assertEquals(t:device(), "cpu")
  lu.assertEquals(t:numel(), 24)
  lu.assertEquals(#t, 24)
  lu.assertEquals(t:nbytes(), 48)
  lu.assertEquals(t:ndim(), 3)
  lu.assertEquals(t:size(1), 2)
  lu.assertEquals(t:size(3), 4)
  lu.assertEquals(t:size(-1), 4)
  lu.assertEquals(t:size(-3), 2)
  lu.assertTrue(t:is_contiguous())
  lu.assertFalse(t:is_freed())
  lu.assertEquals(tostring(t), "tensor(f16, [2, 3, 4], cpu)")
  contains(error_of(t.size, t, 4), "dimension out of range")
  contains(error_of(t.size, t, 0), "dimension out of range")
end

function TestShape.test_defaults_and_sizes()
  local t = sf.tensor(5)
  lu.assertEquals(t:shape(), { 5 })
  lu.assertEquals(t:dtype(), "f32")
  lu.assertEquals(t:ndim(), 1)
  local sizes = { f32 = 4, f16 = 2, bf16 = 2, i32 = 4, f64 = 8 }
  for dt, size in pairs(sizes) do
    local x = sf.tensor({ 3, 5 }, dt)
    lu.assertEquals(x:dtype(), dt)
    lu.assertEquals(x:nbytes(), 15 * size)
  end
  -- aliases give the canonical name
  local aliases = { float32 = "f32", float = "f32", float16 = "f16", half = "f16", bfloat16 = "bf16",
    int32 = "i32", float64 = "f64", double = "f64" }
  for alias, name in pairs(aliases) do
    lu.assertEquals(sf.tensor(1, alias):dtype(), name)
  end
  local big = sf.tensor({ 1, 1, 1, 1, 1, 1, 1, 2 })
  lu.assertEquals(big:ndim(), 8)
  lu.assertEquals(big:strides(), { 2, 2, 2, 2, 2, 2, 2, 1 })
  lu.assertEquals(sf.tensor({ 4, 1, 3 }):strides(), { 3, 3, 1 })
  -- the options table names the device
  lu.assertEquals(sf.tensor({ 2 }, "f32", { device = "cpu" }):device(), "cpu")
  lu.assertEquals(sf.zeros({ 2 }, nil, { device = "cpu" }):dtype(), "f32")
end

-- ---------------------------------------------------------------------------------------------

TestRoundTrip = {}

function TestRoundTrip.test_f32()
  local values = { 1.5, -2, 1 / 3, 1e-8, 3e38, -0.1 }
  local got = sf.from_table(values, { 2, 3 }):totable()
  lu.assertEquals(#got, 6)
  for i, v in ipairs(values) do lu.assertEquals(got[i], f32(v)) end
  lu.assertEquals(math.type(got[2]), "float")
end

function TestRoundTrip.test_f16_rounding()
  local values = { 1, -2.5, 65504, 1 / 3, 70000, -70000, 2 ^ -24, 2 ^ -26, 1 + 2 ^ -11, 1 + 3 * 2 ^ -11, 2049 }
  local want = { 1, -2.5, 65504, 0.333251953125, math.huge, -math.huge, 2 ^ -24, 0, 1, 1 + 2 ^ -9, 2048 }
  lu.assertEquals(sf.from_table(values, { #values }, "f16"):totable(), want)
end

function TestRoundTrip.test_bf16_rounding()
  local values = { 1, -2.5, 65504, 1 / 3, 1 + 2 ^ -8, 1 + 3 * 2 ^ -8, 257, 1e39 }
  local want = { 1, -2.5, 65536, 0.333984375, 1, 1 + 2 ^ -6, 256, math.huge }
  lu.assertEquals(sf.from_table(values, { #values }, "bf16"):totable(), want)
end

function TestRoundTrip.test_i32()
  local got = sf.from_table({ 1.5, 2.5, -1.5, 7, -2147483648, 2147483647 }, { 6 }, "i32"):totable()
  lu.assertEquals(got, { 2, 2, -2, 7, -2147483648, 2147483647 })
  for _, v in ipairs(got) do lu.assertEquals(math.type(v), "integer") end
end

function TestRoundTrip.test_f64_exact()
  local values = { 0.1, 1 / 3, 1e300, -1e-300, 2 ^ 53 + 2 }
  lu.assertEquals(sf.from_table(values, { 5 }, "f64"):totable(), values)
end

function TestRoundTrip.test_nan_and_inf()
  for _, dt in ipairs({ "f32", "f16", "bf16", "f64" }) do
    local got = sf.from_table({ 0 / 0, math.huge, -math.huge }, { 3 }, dt):totable()
    lu.assertNotEquals(got[1], got[1], dt .. ": NaN must stay NaN")
    lu.assertEquals(got[2], math.huge, dt)
    lu.assertEquals(got[3], -math.huge, dt)
  end
  -- NaN stored in an i32 becomes 0
  lu.assertEquals(sf.from_table({ 0 / 0 }, { 1 }, "i32"):totable(), { 0 })
end

function TestRoundTrip.test_multidim_order()
  -- row-major: the table's order is the last dimension fastest
  local t = sf.from_table(seq(24), { 2, 3, 4 })
  lu.assertEquals(t:get(1, 1, 1), 1)
  lu.assertEquals(t:get(1, 1, 4), 4)
  lu.assertEquals(t:get(1, 2, 1), 5)
  lu.assertEquals(t:get(2, 1, 1), 13)
  lu.assertEquals(t:get(2, 3, 4), 24)
  lu.assertEquals(t:totable(), seq(24))
end

-- ---------------------------------------------------------------------------------------------

TestGetSet = {}

function TestGetSet.test_one_based()
  local t = sf.from_table(seq(6), { 2, 3 })
  lu.assertEquals(t:get(1, 1), 1)
  lu.assertEquals(t:get(1, 3), 3)
  lu.assertEquals(t:get(2, 1), 4)
  lu.assertEquals(t:get(2, 3), 6)
  t:set(-10, 2, 1)
  t:set(0.5, 1, 3)
  lu.assertEquals(t:totable(), { 1, 2, 0.5, -10, 5, 6 })
end

function TestGetSet.test_dtypes()
  local h = sf.tensor({ 2 }, "f16")
  h:set(1 / 3, 2)
  lu.assertEquals(h:get(2), 0.333251953125)
  local b = sf.tensor({ 2 }, "bf16")
  b:set(65504, 1)
  lu.assertEquals(b:get(1), 65536)
  local i = sf.tensor({ 1, 1 }, "i32")
  i:set(41.5, 1, 1)
  lu.assertEquals(i:get(1, 1), 42)
  lu.assertEquals(math.type(i:get(1, 1)), "integer")
  local d = sf.tensor(1, "f64")
  d:set(0.1, 1)
  lu.assertEquals(d:get(1), 0.1)
end

function TestGetSet.test_out_of_range()
  local t = sf.tensor({ 2, 3 })
  contains(error_of(t.get, t, 0, 1), "index 0 out of range 1..2")
  contains(error_of(t.get, t, 3, 1), "index 3 out of range 1..2")
  contains(error_of(t.get, t, 1, 4), "index 4 out of range 1..3")
  contains(error_of(t.get, t, 1, -1), "index -1 out of range 1..3")
  contains(error_of(t.set, t, 1.0, 2, 4), "index 4 out of range 1..3")
  contains(error_of(t.get, t, 1), "1 indices for a tensor of 2 dimensions")
  contains(error_of(t.get, t, 1, 1, 1), "3 indices for a tensor of 2 dimensions")
  contains(error_of(t.set, t, 1.0, 1), "1 indices for a tensor of 2 dimensions")
  contains(error_of(t.set, t, "x", 1, 1), "number expected")
  contains(error_of(t.get, t, 1.5, 1), "number has no integer representation")
end

-- ---------------------------------------------------------------------------------------------

TestFill = {}

function TestFill.test_fill_zero()
  local t = sf.tensor({ 2, 2 }, "f16")
  lu.assertIs(t:fill(2.5), t)
  lu.assertEquals(t:totable(), { 2.5, 2.5, 2.5, 2.5 })
  lu.assertIs(t:zero(), t)
  lu.assertEquals(t:totable(), { 0, 0, 0, 0 })
  lu.assertEquals(sf.zeros({ 3 }, "i32"):totable(), { 0, 0, 0 })
  lu.assertEquals(sf.zeros(2, "f64"):totable(), { 0, 0 })
  local n = sf.tensor(3):fill(0 / 0):totable()
  for i = 1, 3 do lu.assertNotEquals(n[i], n[i]) end
end

function TestFill.test_fill_slice_only()
  local t = sf.zeros({ 3, 4 })
  t:slice(2, 2, 2):fill(7)
  lu.assertEquals(t:totable(), { 0, 7, 7, 0, 0, 7, 7, 0, 0, 7, 7, 0 })
  t:slice(1, 3, 1):zero()
  t:slice(1, 1, 1):fill(-1)
  lu.assertEquals(t:totable(), { -1, -1, -1, -1, 0, 7, 7, 0, 0, 0, 0, 0 })
end

-- ---------------------------------------------------------------------------------------------

TestRandom = {}

function TestRandom.test_randn_seeded()
  local a = sf.randn({ 1000 }, "f32", { seed = 42 }):totable()
  local b = sf.randn({ 1000 }, "f32", { seed = 42 }):totable()
  local c = sf.randn({ 1000 }, "f32", { seed = 43 }):totable()
  lu.assertEquals(a, b)
  local same = 0
  for i = 1, 1000 do
    if a[i] == c[i] then same = same + 1 end
  end
  lu.assertEquals(same, 0)
  -- element i does not depend on the shape or size of the tensor
  local small = sf.randn({ 2, 5 }, "f32", { seed = 42 }):totable()
  lu.assertEquals(small, table.move(a, 1, 10, 1, {}))
  -- nor on the dtype beyond rounding: f32 values are the f64 draws rounded once
  local d = sf.randn({ 1000 }, "f64", { seed = 42 }):totable()
  for i = 1, 1000 do lu.assertEquals(a[i], f32(d[i])) end
  -- the method fills an existing tensor with the same draws
  local t = sf.tensor({ 1000 }, "f32")
  lu.assertIs(t:randn({ seed = 42 }), t)
  lu.assertEquals(t:totable(), a)
end

function TestRandom.test_randn_moments()
  local v = sf.randn({ 20000 }, "f64", { seed = 7 }):totable()
  local m, s = testlib.mean_std(v)
  lu.assertTrue(math.abs(m) < 0.05, "mean " .. m)
  lu.assertTrue(math.abs(s - 1) < 0.05, "std " .. s)
  v = sf.randn({ 20000 }, "f32", { seed = 8, mean = 3, std = 2 }):totable()
  m, s = testlib.mean_std(v)
  lu.assertTrue(math.abs(m - 3) < 0.1, "mean " .. m)
  lu.assertTrue(math.abs(s - 2) < 0.1, "std " .. s)
end

function TestRandom.test_rand_uniform()
  local v = sf.rand({ 20000 }, "f64", { seed = 3, low = -2, high = 5 }):totable()
  local lo, hi = math.huge, -math.huge
  for _, x in ipairs(v) do
    lo, hi = math.min(lo, x), math.max(hi, x)
  end
  lu.assertTrue(lo >= -2 and lo < -1.99, "min " .. lo)
  lu.assertTrue(hi < 5 and hi > 4.99, "max " .. hi)
  local m, s = testlib.mean_std(v)
  lu.assertTrue(math.abs(m - 1.5) < 0.1, "mean " .. m)
  lu.assertTrue(math.abs(s - 7 / math.sqrt(12)) < 0.1, "std " .. s)
  -- defaults: (0, 1)
  local u = sf.rand({ 1000 }, "f64", { seed = 4 }):totable()
  for _, x in ipairs(u) do lu.assertTrue(x > 0 and x < 1) end
  lu.assertEquals(sf.rand({ 1000 }, "f64", { seed = 4 }):totable(), u)
  local t = sf.tensor({ 1000 }, "f64")
  lu.assertIs(t:rand({ seed = 4 }), t)
  lu.assertEquals(t:totable(), u)
end

function TestRandom.test_global_seed()
  local base = sf.seed()
  lu.assertEquals(math.type(base), "integer")
  lu.assertEquals(sf.seed(1234), 1234)
  local a1 = sf.randn({ 50 }):totable()
  local a2 = sf.randn({ 50 }):totable()
  lu.assertNotEquals(a1, a2)        -- each unseeded fill takes the next seed
  sf.seed(1234)
  lu.assertEquals(sf.randn({ 50 }):totable(), a1)
  lu.assertEquals(sf.randn({ 50 }):totable(), a2)
  sf.seed(base)
end

function TestRandom.test_random_into_slice()
  -- element i of the view, in row-major order, gets draw i; the rest of the base is untouched
  local t = sf.zeros({ 3, 4 }, "f64")
  t:slice(2, 2, 2):randn({ seed = 11 })
  local draws = sf.randn({ 6 }, "f64", { seed = 11 }):totable()
  local got = t:totable()
  lu.assertEquals({ got[2], got[3], got[6], got[7], got[10], got[11] }, draws)
  lu.assertEquals({ got[1], got[4], got[5], got[8], got[9], got[12] }, { 0, 0, 0, 0, 0, 0 })
end

function TestRandom.test_bad_options()
  contains(error_of(sf.randn, { 3 }, "f32", { seed = 1.5 }), "seed", "integer")
  contains(error_of(sf.randn, { 3 }, "f32", { mean = "x" }), "mean", "number")
  contains(error_of(sf.rand, { 3 }, "f32", { low = {} }), "low", "number")
end

-- ---------------------------------------------------------------------------------------------

TestCopy = {}

function TestCopy.test_copy_converts()
  local src = sf.from_table({ 1, 1 / 3, 70000, -2.5 }, { 2, 2 }, "f64")
  local dst = sf.tensor({ 2, 2 }, "f16")
  lu.assertIs(dst:copy(src), dst)
  lu.assertEquals(dst:totable(), { 1, 0.333251953125, math.huge, -2.5 })
  local i = sf.tensor({ 2, 2 }, "i32"):copy(sf.from_table({ 0.5, 1.5, -7.2, 9 }, { 2, 2 }))
  lu.assertEquals(i:totable(), { 0, 2, -7, 9 })
  -- the copy is a copy: changing the source afterwards does not change it
  src:fill(0)
  lu.assertEquals(dst:get(2, 2), -2.5)
end

function TestCopy.test_copy_strided()
  local base = sf.from_table(seq(12), { 3, 4 })
  local col = sf.tensor({ 3, 2 }):copy(base:slice(2, 3, 2))
  lu.assertEquals(col:totable(), { 3, 4, 7, 8, 11, 12 })
  -- into a strided destination
  base:slice(2, 1, 2):copy(sf.from_table({ -1, -2, -3, -4, -5, -6 }, { 3, 2 }))
  lu.assertEquals(base:totable(), { -1, -2, 3, 4, -3, -4, 7, 8, -5, -6, 11, 12 })
end

function TestCopy.test_copy_shape_mismatch()
  local a, b = sf.tensor({ 2, 3 }), sf.tensor({ 3, 2 })
  contains(error_of(a.copy, a, b), "shapes differ", "[3, 2]", "[2, 3]")
  contains(error_of(a.copy, a, sf.tensor({ 6 })), "shapes differ")
end

function TestCopy.test_to()
  local t = sf.from_table({ 1, 1 / 3, 65504, -2 }, { 2, 2 })
  local h = t:to("f16")
  lu.assertEquals(h:dtype(), "f16")
  lu.assertEquals(h:device(), "cpu")
  lu.assertEquals(h:shape(), { 2, 2 })
  lu.assertEquals(h:totable(), { 1, 0.333251953125, 65504, -2 })
  local c = t:to("cpu")
  lu.assertEquals(c:dtype(), "f32")
  c:set(9, 1, 1)
  lu.assertEquals(t:get(1, 1), 1, ":to returns new memory")
  lu.assertEquals(t:to("cpu", "f64"):totable(), { 1, f32(1 / 3), 65504, -2 })
  lu.assertEquals(t:to("f64", "cpu"):dtype(), "f64")
  lu.assertEquals(t:to("bfloat16"):dtype(), "bf16")
  lu.assertEquals(h:to("f32"):totable(), { 1, 0.333251953125, 65504, -2 })
  -- a slice comes out contiguous
  local s = sf.from_table(seq(12), { 3, 4 }):slice(2, 2, 2):to("f64")
  lu.assertTrue(s:is_contiguous())
  lu.assertEquals(s:strides(), { 2, 1 })
  lu.assertEquals(s:totable(), { 2, 3, 6, 7, 10, 11 })
  contains(error_of(t.to, t, "bogus"), "unknown device 'bogus'")
  contains(error_of(t.to, t, "cuda"), "no CUDA device")
end

-- ---------------------------------------------------------------------------------------------

TestViews = {}

function TestViews.test_view()
  local t = sf.from_table(seq(12), { 3, 4 })
  local v = t:view({ 2, 6 })
  lu.assertEquals(v:shape(), { 2, 6 })
  lu.assertEquals(v:strides(), { 6, 1 })
  lu.assertEquals(v:numel(), 12)
  lu.assertEquals(v:get(2, 1), 7)
  lu.assertTrue(v:is_contiguous())
  v:set(-7, 2, 1)
  lu.assertEquals(t:get(2, 3), -7, "a view shares its base's memory")
  local flat = v:view(12)
  lu.assertEquals(flat:shape(), { 12 })
  lu.assertEquals(flat:get(7), -7)
  lu.assertEquals(t:view({ 2, 2, 3 }):get(1, 2, 3), 6)
  lu.assertEquals(t:view({ 2, 2, 3 }):get(2, 1, 1), -7)
  contains(error_of(t.view, t, { 5 }), "12 elements cannot be viewed as 5")
  contains(error_of(t.view, t, { 0, 12 }), "dimension 1 is 0")
  local s = t:slice(2, 1, 2)
  contains(error_of(s.view, s, { 6 }), "not contiguous")
end

function TestViews.test_slice()
  local t = sf.from_table(seq(12), { 3, 4 })
  local rows = t:slice(1, 2, 2)
  lu.assertEquals(rows:shape(), { 2, 4 })
  lu.assertEquals(rows:strides(), { 4, 1 })
  lu.assertTrue(rows:is_contiguous())
  lu.assertEquals(rows:totable(), seq(8, 5))
  lu.assertEquals(rows:numel(), 8)
  lu.assertEquals(rows:nbytes(), 32)
  local cols = t:slice(2, 2, 2)
  lu.assertEquals(cols:shape(), { 3, 2 })
  lu.assertEquals(cols:strides(), { 4, 1 })
  lu.assertFalse(cols:is_contiguous())
  lu.assertEquals(cols:totable(), { 2, 3, 6, 7, 10, 11 })
  lu.assertEquals(cols:get(3, 2), 11)
  lu.assertEquals(cols:numel(), 6)
  lu.assertEquals(cols:nbytes(), 24)
  -- default length: to the end; negative dimension counts from the last
  local last = t:slice(-1, 4)
  lu.assertEquals(last:shape(), { 3, 1 })
  lu.assertEquals(last:totable(), { 4, 8, 12 })
  lu.assertEquals(t:slice(1, 3):totable(), { 9, 10, 11, 12 })
  -- a contiguous row slice may be viewed
  lu.assertEquals(rows:view({ 8 }):get(1), 5)
end

function TestViews.test_slice_of_slice()
  local t = sf.from_table(seq(24), { 4, 6 })
  local a = t:slice(2, 2, 4)                  -- columns 2..5
  local b = a:slice(1, 2, 2)                  -- rows 2..3 of those
  lu.assertEquals(b:shape(), { 2, 4 })
  lu.assertEquals(b:strides(), { 6, 1 })
  lu.assertEquals(b:totable(), { 8, 9, 10, 11, 14, 15, 16, 17 })
  local c = b:slice(2, 3, 2)                  -- columns 4..5 of the base
  lu.assertEquals(c:totable(), { 10, 11, 16, 17 })
  c:fill(0)
  lu.assertEquals(t:slice(1, 2, 2):totable(), { 7, 8, 9, 0, 0, 12, 13, 14, 15, 0, 0, 18 })
end

function TestViews.test_slice_errors()
  local t = sf.tensor({ 3, 4 })
  contains(error_of(t.slice, t, 1, 2, 5), "outside 1..3 of dimension 1")
  contains(error_of(t.slice, t, 2, 0, 1), "outside 1..4 of dimension 2")
  contains(error_of(t.slice, t, 2, 5), "outside 1..4")
  contains(error_of(t.slice, t, 1, 1, 0), "outside")
  -- extreme starts and lengths: a range check, not an overflow
  contains(error_of(t.slice, t, 1, 2, math.maxinteger), "outside 1..3 of dimension 1")
  contains(error_of(t.slice, t, 1, math.maxinteger, 1), "outside 1..3 of dimension 1")
  contains(error_of(t.slice, t, 1, math.mininteger), "outside 1..3 of dimension 1")
  contains(error_of(t.slice, t, 2, math.mininteger, math.maxinteger), "outside 1..4 of dimension 2")
  -- shapes whose element count overflows
  contains(error_of(t.view, t, { 2 ^ 40, 2 ^ 40 }), "overflows 64 bits")
  contains(error_of(sf.from_table, { 1 }, { 2 ^ 40, 2 ^ 40 }), "overflows 64 bits")
  contains(error_of(t.slice, t, 3, 1, 1), "dimension out of range")
  contains(error_of(t.slice, t, 0, 1, 1), "dimension out of range")
end

-- ---------------------------------------------------------------------------------------------

TestLifetime = {}

function TestLifetime.test_free()
  local t = sf.tensor({ 4 })
  t:free()
  lu.assertTrue(t:is_freed())
  lu.assertEquals(tostring(t), "tensor (freed)")
  t:free()                                    -- a second free is harmless
  contains(error_of(t.get, t, 1), "freed")
  contains(error_of(t.totable, t), "freed")
  contains(error_of(t.fill, t, 1), "freed")
  contains(error_of(t.numel, t), "freed")
  contains(error_of(t.view, t, { 2, 2 }), "freed")
  contains(error_of(t.slice, t, 1, 1, 1), "freed")
  local live = sf.tensor({ 4 })
  contains(error_of(live.copy, live, t), "freed")
  contains(error_of(t.copy, t, live), "freed")
  contains(error_of(sf.compare, live, t), "freed")
end

function TestLifetime.test_base_with_live_views()
  local t = sf.from_table(seq(6), { 2, 3 })
  local v = t:slice(1, 2, 1)
  local w = v:slice(2, 1, 2)                  -- a view of a view counts against the base
  contains(error_of(t.free, t), "2 view(s)")
  lu.assertFalse(t:is_freed())
  lu.assertEquals(w:totable(), { 4, 5 }, "a failed free leaves the tensor usable")
  v:free()
  contains(error_of(t.free, t), "1 view(s)")
  w:free()
  t:free()
  lu.assertTrue(t:is_freed())
end

function TestLifetime.test_view_keeps_base_alive()
  local v
  do
    local t = sf.from_table(seq(6), { 2, 3 })
    v = t:slice(2, 2, 2)
  end
  collectgarbage("collect")
  collectgarbage("collect")
  lu.assertEquals(v:totable(), { 2, 3, 5, 6 })
end

function TestLifetime.test_close()
  local kept
  do
    local t <close> = sf.tensor({ 8 })
    kept = t
    lu.assertFalse(t:is_freed())
  end
  lu.assertTrue(kept:is_freed())
  -- closed on an error too
  lu.assertTrue(testlib.closed_by_error(function() return sf.tensor({ 8 }) end):is_freed())
  -- a freed tensor closes without complaint
  do
    local t <close> = sf.tensor({ 2 })
    t:free()
  end
  -- one that cannot be freed yet (a view of it is alive) raises at its scope's end, but not over
  -- an error already on its way out: that error is the one raised, and the collector frees it
  local view
  local ok, err = pcall(function()
    local t <close> = sf.tensor({ 4 })
    view = t:view({ 2, 2 })
  end)
  lu.assertFalse(ok)
  lu.assertStrContains(err, "1 view(s) of this tensor are still alive")
  ok, err = pcall(function()
    local t <close> = sf.tensor({ 4 })
    view = t:view({ 2, 2 })
    error("the first error", 0)
  end)
  lu.assertEquals({ ok, err }, { false, "the first error" })
  lu.assertFalse(view:is_freed())
end

function TestLifetime.test_gc_frees()
  quiet_gc()
  local before = in_use()
  do
    local t = sf.tensor({ 1000 }, "f64")
    lu.assertEquals(in_use(), before + 8000)
    t = nil -- luacheck: ignore
  end
  collectgarbage("collect")
  collectgarbage("collect")
  lu.assertEquals(in_use(), before)
  collectgarbage("restart")
end

-- ---------------------------------------------------------------------------------------------

TestMemory = {}

function TestMemory.test_in_use_up_and_down()
  quiet_gc()
  local m0 = sf.memory()
  for _, k in ipairs({ "in_use", "peak", "scratch", "scratch_peak", "free", "total" }) do
    lu.assertEquals(math.type(m0[k]), "integer", k)
  end
  lu.assertTrue(m0.total > 0 and m0.free <= m0.total)
  lu.assertTrue(m0.peak >= m0.in_use)
  local a = sf.tensor({ 100 }, "f32")
  lu.assertEquals(in_use(), m0.in_use + 400)
  local b = sf.tensor({ 10, 10 }, "f16")
  lu.assertEquals(in_use(), m0.in_use + 600)
  local v = a:slice(1, 1, 50)                 -- views allocate nothing
  lu.assertEquals(in_use(), m0.in_use + 600)
  v:free()
  lu.assertEquals(in_use(), m0.in_use + 600)
  a:free()
  lu.assertEquals(in_use(), m0.in_use + 200)
  b:free()
  lu.assertEquals(in_use(), m0.in_use)
  lu.assertTrue(sf.memory().peak >= m0.in_use + 600)
  sf.reset_peak()
  lu.assertEquals(sf.memory().peak, m0.in_use)
  collectgarbage("restart")
end

function TestMemory.test_temporaries_not_left_to_gc()
  -- reading a strided view goes through a contiguous temporary; once the call returns, the
  -- bytes it took must be given back (not held until some later collection)
  quiet_gc()
  local t = sf.randn({ 64, 64 }, "f32", { seed = 1 })
  local cols = t:slice(2, 2, 32)
  local before = in_use()
  local values = cols:totable()
  lu.assertEquals(#values, 64 * 32)
  local after = in_use()
  collectgarbage("restart")
  lu.assertEquals(after, before, "totable of a strided view left its temporary allocated")
end

function TestMemory.test_out_of_memory()
  quiet_gc()
  local before = in_use()
  local elements = 1 << 48                    -- 2^50 bytes of f32: more than any host has
  local msg = error_of(sf.tensor, { elements // 4, 4 }, "f32")
  contains(msg, "out of", tostring(4 * elements))
  lu.assertEquals(in_use(), before, "a failed allocation counts nothing")
  -- twice the machine's memory: within the address space, but larger than the device, so it
  -- must fail too (also where the kernel overcommits memory)
  local total = sf.memory().total
  lu.assertTrue(total > 0)
  local n = total // 2
  local ok, big = pcall(sf.tensor, { n }, "f32")
  if ok then
    big:free()
    lu.fail(("allocating %d bytes (twice the %d bytes of memory) succeeded"):format(4 * n, total))
  end
  contains(tostring(big), "out of", tostring(4 * n))
  lu.assertEquals(in_use(), before)
  -- and the next allocation works
  local t = sf.from_table({ 1, 2 }, { 2 })
  lu.assertEquals(t:totable(), { 1, 2 })
  collectgarbage("restart")
end

-- ---------------------------------------------------------------------------------------------

TestBadInput = {}

function TestBadInput.test_unknown_dtype()
  contains(error_of(sf.tensor, { 2, 3 }, "f8"), "unknown dtype 'f8'")
  contains(error_of(sf.tensor, { 2 }, "F32"), "unknown dtype 'F32'")
  contains(error_of(sf.randn, { 2 }, "int8"), "unknown dtype 'int8'")
  contains(error_of(sf.zeros, { 2 }, ""), "unknown dtype ''")
  contains(error_of(sf.from_table, { 1 }, { 1 }, "f128"), "unknown dtype 'f128'")
end

function TestBadInput.test_zero_and_negative_dims()
  contains(error_of(sf.tensor, { 0, 3 }), "dimension 1 is 0", "positive")
  contains(error_of(sf.tensor, { 2, -1 }), "dimension 2 is -1", "positive")
  contains(error_of(sf.tensor, 0), "dimension 1 is 0")
  contains(error_of(sf.tensor, -3), "dimension 1 is -3")
  contains(error_of(sf.randn, { 4, 0 }), "dimension 2 is 0")
  contains(error_of(sf.from_table, {}, { 0 }), "dimension 1 is 0")
end

function TestBadInput.test_non_integer_dims()
  contains(error_of(sf.tensor, { 2.5 }), "dimension 1 is not an integer")
  contains(error_of(sf.tensor, { 3, "x" }), "dimension 2 is not an integer")
  contains(error_of(sf.tensor, { 3, {} }), "dimension 2 is not an integer")
  -- a single dimension given as a plain number must be checked the same way
  contains(error_of(sf.tensor, 2.5), "integer")
  contains(error_of(sf.tensor, "abc"), "table expected")
end

function TestBadInput.test_number_of_dims()
  contains(error_of(sf.tensor, { 1, 1, 1, 1, 1, 1, 1, 1, 1 }), "1 to 8 dimensions, got 9")
  contains(error_of(sf.tensor, {}), "1 to 8 dimensions, got 0")
end

function TestBadInput.test_shape_overflow()
  contains(error_of(sf.tensor, { 1 << 40, 1 << 40 }), "too large")
  -- numel fits in 64 bits but its byte count does not: must fail, not allocate a few bytes
  local ok, t = pcall(sf.tensor, { 1 << 62 }, "f64")
  if ok then
    local nbytes = t:nbytes()
    t:free()
    lu.fail(("sf.tensor({2^62}, 'f64') succeeded (nbytes() = %d)"):format(nbytes))
  end
  ok = pcall(sf.tensor, { 1 << 31, 1 << 31 }, "f32")
  lu.assertFalse(ok, "2^62 f32 elements (2^64 bytes) must not allocate")
end

function TestBadInput.test_from_table()
  contains(error_of(sf.from_table, { 1, 2 }, { 3 }), "2 values for a shape of 3 elements")
  contains(error_of(sf.from_table, { 1, "x", 3 }, { 3 }), "value 2 is not a number")
  contains(error_of(sf.from_table, "x", { 3 }), "table expected")
end

function TestBadInput.test_device_option()
  contains(error_of(sf.tensor, { 2 }, "f32", { device = "gpu" }), "unknown device 'gpu'")
  contains(error_of(sf.tensor, { 2 }, "f32", { device = "cuda" }), "no CUDA device")
end

return lu.LuaUnit.run()
