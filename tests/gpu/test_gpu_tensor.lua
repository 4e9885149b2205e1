-- Tensors on the CUDA backend (run with --device cuda; tests/run-lua.sh skips it without a GPU):
-- host round trips for every dtype, copies between the CPU and the GPU with conversions, the
-- shared random generator, sf.compare computed on the device, views and slices, memory
-- accounting, and an out-of-memory error that leaves the device usable.
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

local CPU = { device = "cpu" }

-- values and what each dtype keeps of them (round to nearest even, as the CPU tests check)
local VALUES = { 1, -2.5, 65504, 1 / 3, 70000, 2 ^ -24, 1 + 2 ^ -11, 1 + 3 * 2 ^ -11, 0.1, -7 }
local EXPECT = {
  f32 = { 1, -2.5, 65504, f32(1 / 3), 70000, 2 ^ -24, 1 + 2 ^ -11, 1 + 3 * 2 ^ -11, f32(0.1), -7 },
  f16 = { 1, -2.5, 65504, 0.333251953125, math.huge, 2 ^ -24, 1, 1 + 2 ^ -9, f32(0.0999755859375), -7 },
  bf16 = { 1, -2.5, 65536, 0.333984375, 70144, 2 ^ -24, 1, 1, 0.10009765625, -7 },
  f64 = VALUES,
}

local function quiet_gc()
  collectgarbage("collect")
  collectgarbage("collect")
  collectgarbage("stop")
end

-- ---------------------------------------------------------------------------------------------

TestDevice = {}

function TestDevice.test_default_is_cuda()
  local d = sf.device()
  lu.assertEquals(d.backend, "cuda")
  lu.assertEquals(type(d.name), "string")
  lu.assertStrMatches(d.cc, "%d+%.%d+")
  lu.assertTrue(d.sm_count > 0)
  lu.assertTrue(d.mem_total > 0)
  lu.assertTrue(d.mem_free > 0 and d.mem_free <= d.mem_total)
  lu.assertTrue(d.l2_bytes > 0)
  lu.assertEquals(type(d.driver_version), "string")
  lu.assertEquals(type(d.runtime_version), "string")
  lu.assertEquals(sf.device("cpu").backend, "cpu")
  lu.assertEquals(sf.tensor({ 2 }):device(), "cuda")
  lu.assertEquals(sf.tensor({ 2 }, "f32", CPU):device(), "cpu")
  lu.assertEquals(type(sf.cublas_version), "string")
end

-- ---------------------------------------------------------------------------------------------

TestRoundTrip = {}

function TestRoundTrip.test_all_dtypes()
  for dt, want in pairs(EXPECT) do
    local t = sf.from_table(VALUES, { 2, 5 }, dt)
    lu.assertEquals(t:device(), "cuda", dt)
    lu.assertEquals(t:dtype(), dt)
    lu.assertEquals(t:totable(), want, dt)
    lu.assertEquals(t:get(2, 5), want[10], dt)
  end
  local i = sf.from_table({ 1.5, 2.5, -1.5, 7, -2147483648, 2147483647 }, { 6 }, "i32")
  lu.assertEquals(i:totable(), { 2, 2, -2, 7, -2147483648, 2147483647 })
  lu.assertEquals(math.type(i:get(1)), "integer")
end

function TestRoundTrip.test_get_set_on_device()
  local t = sf.zeros({ 3, 4 }, "f16")
  t:set(1 / 3, 2, 3)
  t:set(-1, 3, 4)
  lu.assertEquals(t:get(2, 3), 0.333251953125)
  local want = {}
  for k = 1, 12 do want[k] = 0 end
  want[7], want[12] = 0.333251953125, -1
  lu.assertEquals(t:totable(), want)
  contains(error_of(t.get, t, 4, 1), "index 4 out of range 1..3")
end

function TestRoundTrip.test_fill_on_device()
  for _, dt in ipairs({ "f32", "f16", "bf16", "i32", "f64" }) do
    local t = sf.tensor({ 1000 }, dt):fill(2.5)
    local want = dt == "i32" and 2 or 2.5        -- i32 rounds half to even, like the CPU backend
    local v = t:totable()
    lu.assertEquals(v[1], want, dt)
    lu.assertEquals(v[1000], want, dt)
    t:zero()
    lu.assertEquals(t:totable()[500], 0, dt)
  end
  local n = sf.tensor({ 3 }, "bf16"):fill(0 / 0):totable()
  lu.assertNotEquals(n[2], n[2])
  lu.assertEquals(sf.tensor(2, "f16"):fill(1e6):totable(), { math.huge, math.huge })
end

-- ---------------------------------------------------------------------------------------------

TestCrossDevice = {}

function TestCrossDevice.test_to()
  local host = sf.from_table(VALUES, { 10 }, "f64", CPU)
  for dt, want in pairs(EXPECT) do
    local g = host:to("cuda", dt)
    lu.assertEquals(g:device(), "cuda")
    lu.assertEquals(g:dtype(), dt)
    lu.assertEquals(g:totable(), want, "cpu f64 -> cuda " .. dt)
    local back = g:to("cpu")
    lu.assertEquals(back:device(), "cpu")
    lu.assertEquals(back:dtype(), dt)
    lu.assertEquals(back:totable(), want, "cuda " .. dt .. " -> cpu")
    lu.assertEquals(g:to("cpu", "f64"):totable(), want, "cuda " .. dt .. " -> cpu f64")
  end
  -- conversion done on the device (cuda f64 -> cuda f16) rounds the same way
  local g64 = host:to("cuda")
  lu.assertEquals(g64:to("f16"):totable(), EXPECT.f16)
  lu.assertEquals(g64:to("bf16"):totable(), EXPECT.bf16)
  lu.assertEquals(g64:to("cuda", "i32"):totable(), { 1, -2, 65504, 0, 70000, 0, 1, 1, 0, -7 })
end

function TestCrossDevice.test_copy()
  local host = sf.from_table(VALUES, { 2, 5 }, "f64", CPU)
  local g = sf.tensor({ 2, 5 }, "f16")
  lu.assertIs(g:copy(host), g)
  lu.assertEquals(g:totable(), EXPECT.f16)
  local h = sf.tensor({ 2, 5 }, "bf16", CPU)
  h:copy(sf.from_table(VALUES, { 2, 5 }, "f32"))
  lu.assertEquals(h:totable(), { 1, -2.5, 65536, 0.333984375, 70144, 2 ^ -24, 1, 1, 0.10009765625, -7 })
  contains(error_of(g.copy, g, sf.tensor({ 5, 2 }, "f32", CPU)), "shapes differ")
end

function TestCrossDevice.test_copy_strided()
  -- a GPU column slice from a contiguous CPU tensor, and back into a strided CPU slice
  local g = sf.zeros({ 3, 4 }, "f32")
  g:slice(2, 2, 2):copy(sf.from_table({ 1, 2, 3, 4, 5, 6 }, { 3, 2 }, "f64", CPU))
  lu.assertEquals(g:totable(), { 0, 1, 2, 0, 0, 3, 4, 0, 0, 5, 6, 0 })
  local h = sf.zeros({ 3, 5 }, "f16", CPU)
  h:slice(2, 3, 2):copy(g:slice(2, 2, 2))
  lu.assertEquals(h:totable(), { 0, 0, 1, 2, 0, 0, 0, 3, 4, 0, 0, 0, 5, 6, 0 })
  -- a strided GPU tensor to the CPU
  lu.assertEquals(g:slice(2, 2, 2):to("cpu"):totable(), { 1, 2, 3, 4, 5, 6 })
end

-- on the GPU, views of one dtype with a dense last dimension (rows copied in the widest units the
-- row starts allow: 16, 8, 4, 2 or 1 bytes, by the slices' offsets), the same copies on the CPU,
-- element for element
function TestCrossDevice.test_copy_rows_every_unit()
  for _, dt in ipairs({ "f16", "f32", "f64", "i32", "e4m3" }) do
    local src = sf.randn({ 5, 7, 32 }, "f32", { seed = 3 }):to(dt)
    local src_cpu = src:to("cpu")
    -- columns first..first + n - 1 of rows 8 - rows..7 into rows 2.. of a taller tensor: whole rows
    -- (merged into one), then row starts 0, 16, 8, 4 and 2 bytes apart in f16 (odd ones in e4m3)
    for _, c in ipairs({ { 1, 32 }, { 1, 16 }, { 9, 8 }, { 5, 8 }, { 3, 9 }, { 2, 1 } }) do
      local first, n = c[1], c[2]
      for _, rows in ipairs({ 7, 3 }) do
        local dst, dst_cpu = sf.zeros({ 5, 9, 32 }, dt), sf.zeros({ 5, 9, 32 }, dt, CPU)
        local function part(t, row) return t:slice(2, row, rows):slice(3, first, n) end
        part(dst, 2):copy(part(src, 8 - rows))
        part(dst_cpu, 2):copy(part(src_cpu, 8 - rows))
        lu.assertEquals(dst:to("cpu"):totable(), dst_cpu:totable(), ("%s rows %d, columns %d..%d"):format(dt, rows,
          first, first + n - 1))
      end
    end
  end
  -- rows of 16 bytes that start aligned, whose outer stride (136 bytes) allows only 8-byte units
  local src = sf.randn({ 5, 34 }, "f32", { seed = 4 })
  local dst = sf.zeros({ 5, 4 }, "f32")
  dst:copy(src:slice(2, 1, 4))
  lu.assertEquals(dst:to("cpu"):totable(), src:to("cpu"):slice(2, 1, 4):to("cpu"):totable(), "outer stride of 136 bytes")
  -- a prefill's K into a KV cache: [1, T, Hkv, D] of a packed [1, T, H + 2Hkv, D] into rows 3.. of
  -- [1, capacity, Hkv, D] (the last two dimensions merged into one row), and a size-1 middle one
  local qkv = sf.randn({ 1, 6, 8, 16 }, "f16", { seed = 5 })
  local cache, cache_cpu = sf.zeros({ 1, 12, 2, 16 }, "f16"), sf.zeros({ 1, 12, 2, 16 }, "f16", CPU)
  cache:slice(2, 3, 6):copy(qkv:slice(3, 5, 2))
  cache_cpu:slice(2, 3, 6):copy(qkv:to("cpu"):slice(3, 5, 2))
  lu.assertEquals(cache:to("cpu"):totable(), cache_cpu:totable(), "K of a packed QKV into a cache")
  local a = sf.randn({ 3, 1, 4, 10 }, "f16", { seed = 6 })
  local b = sf.zeros({ 3, 1, 4, 12 }, "f16")
  b:slice(4, 2, 10):copy(a)
  lu.assertEquals(b:slice(4, 2, 10):to("cpu"):totable(), a:to("cpu"):totable(), "a size-1 dimension between")
end

-- ---------------------------------------------------------------------------------------------

TestRandom = {}

function TestRandom.test_randn_matches_cpu()
  local n = 100003
  local bounds = { f32 = 1e-6, f64 = 1e-12, f16 = 1e-3, bf16 = 1e-2 }
  for dt, bound in pairs(bounds) do
    local g = sf.randn({ n }, dt, { seed = 1234 })
    local c = sf.randn({ n }, dt, { seed = 1234, device = "cpu" })
    local r = sf.compare(g, c)
    lu.assertEquals(r.nan, 0, dt)
    lu.assertEquals(r.inf, 0, dt)
    lu.assertEquals(r.numel, n)
    lu.assertTrue(r.rel_l2 < bound, ("%s: rel_l2 %g between cuda and cpu randn"):format(dt, r.rel_l2))
    lu.assertTrue(r.ref_norm > 0.9 * math.sqrt(n) and r.ref_norm < 1.1 * math.sqrt(n), dt)
  end
  -- the first elements, one by one
  local g = sf.randn({ 8 }, "f64", { seed = 99, mean = 1, std = 3 }):totable()
  local c = sf.randn({ 8 }, "f64", { seed = 99, mean = 1, std = 3, device = "cpu" }):totable()
  for i = 1, 8 do lu.assertAlmostEquals(g[i], c[i], 1e-12 * (1 + math.abs(c[i]))) end
  -- another seed differs
  local other = sf.randn({ 8 }, "f64", { seed = 100 }):totable()
  lu.assertNotEquals(other[1], g[1])
end

function TestRandom.test_rand_matches_cpu()
  local g = sf.rand({ 50000 }, "f32", { seed = 5, low = -1, high = 2 })
  local c = sf.rand({ 50000 }, "f32", { seed = 5, low = -1, high = 2, device = "cpu" })
  lu.assertTrue(sf.compare(g, c).rel_l2 < 1e-6)
  local v = g:totable()
  for i = 1, #v, 97 do lu.assertTrue(v[i] >= -1 and v[i] <= 2) end
end

function TestRandom.test_random_into_slice()
  local g = sf.zeros({ 4, 6 }, "f64")
  g:slice(2, 3, 3):randn({ seed = 21 })
  local draws = sf.randn({ 12 }, "f64", { seed = 21, device = "cpu" }):totable()
  local got = g:totable()
  local k = 0
  for r = 0, 3 do
    for col = 1, 6 do
      local v = got[r * 6 + col]
      if col >= 3 and col <= 5 then
        k = k + 1
        lu.assertAlmostEquals(v, draws[k], 1e-12 * (1 + math.abs(draws[k])))
      else
        lu.assertEquals(v, 0)
      end
    end
  end
end

-- ---------------------------------------------------------------------------------------------

TestCompare = {}

function TestCompare.test_metrics_on_device()
  local r = sf.compare(sf.from_table({ 1, 2, 3, 4 }, { 4 }), sf.from_table({ 1, 2, 3, 5 }, { 4 }, "f64"))
  lu.assertAlmostEquals(r.rel_l2, 1 / math.sqrt(39), 1e-15)
  lu.assertEquals(r.max_abs, 1)
  lu.assertAlmostEquals(r.ref_norm, math.sqrt(39), 1e-14)
  lu.assertEquals(r.nan, 0)
  lu.assertEquals(r.inf, 0)
  lu.assertEquals(r.numel, 4)
  local out = sf.from_table({ 0 / 0, math.huge, -math.huge, 1, 2, 10, 0 / 0 }, { 7 })
  local ref = sf.from_table({ 1, 1, 1, 0 / 0, 2, 6, math.huge }, { 7 })
  local r2 = sf.compare(out, ref)
  lu.assertEquals(r2.nan, 2)
  lu.assertEquals(r2.inf, 2)
  lu.assertEquals(r2.ref_nonfinite, 1)
  lu.assertEquals(r2.max_abs, 4)
  lu.assertAlmostEquals(r2.rel_l2, math.sqrt(16 / 40), 1e-15)
end

function TestCompare.test_large_agrees_with_cpu()
  -- more elements than the reduction has threads, NaNs and Infs sprinkled in
  local n = 1 << 20
  local out = sf.randn({ n }, "f32", { seed = 1 })
  local ref = sf.randn({ n }, "f64", { seed = 1 })
  for i = 1, 5 do out:set(0 / 0, i * 1000) end
  for i = 1, 3 do out:set(math.huge, n - i * 7) end
  local rg = sf.compare(out, ref)
  local rc = sf.compare(out:to("cpu"), ref:to("cpu"))
  lu.assertEquals(rg.nan, 5)
  lu.assertEquals(rg.inf, 3)
  lu.assertEquals(rg.numel, n)
  lu.assertEquals(rc.nan, 5)
  lu.assertAlmostEquals(rg.rel_l2, rc.rel_l2, 1e-9 * rc.rel_l2)
  lu.assertAlmostEquals(rg.ref_norm, rc.ref_norm, 1e-9 * rc.ref_norm)
  lu.assertEquals(rg.max_abs, rc.max_abs)
  lu.assertTrue(rg.rel_l2 > 0 and rg.rel_l2 < 1e-7)
end

function TestCompare.test_mixed_devices_and_layouts()
  -- a GPU output against a CPU reference: the reference is brought to the GPU
  local base = sf.from_table({ 1, 2, 9, 3, 4, 9 }, { 2, 3 })
  local r = sf.compare(base:slice(2, 1, 2), sf.from_table({ 1, 2, 3, 4 }, { 2, 2 }, "f64", CPU))
  lu.assertEquals(r.rel_l2, 0)
  lu.assertEquals(r.numel, 4)
  local r2 = sf.compare(sf.from_table({ 1 / 3 }, { 1 }, "f16"), sf.from_table({ 1 / 3 }, { 1 }, "f64"))
  lu.assertAlmostEquals(r2.max_abs, 1 / 3 - 0.333251953125, 1e-16)
  contains(error_of(sf.compare, sf.tensor({ 2 }), sf.tensor({ 3 }, "f32", CPU)), "shapes differ")
end

-- ---------------------------------------------------------------------------------------------

TestViews = {}

function TestViews.test_view_and_slice()
  local t = sf.from_table(seq(24), { 4, 6 }, "bf16")
  local v = t:view({ 6, 4 })
  lu.assertEquals(v:device(), "cuda")
  lu.assertEquals(v:get(2, 1), 5)
  local cols = t:slice(2, 2, 3)
  lu.assertEquals(cols:shape(), { 4, 3 })
  lu.assertEquals(cols:strides(), { 6, 1 })
  lu.assertFalse(cols:is_contiguous())
  lu.assertEquals(cols:totable(), { 2, 3, 4, 8, 9, 10, 14, 15, 16, 20, 21, 22 })
  local inner = cols:slice(1, 2, 2)
  lu.assertEquals(inner:totable(), { 8, 9, 10, 14, 15, 16 })
  inner:fill(-1)
  lu.assertEquals(t:slice(1, 2, 2):totable(), { 7, -1, -1, -1, 11, 12, 13, -1, -1, -1, 17, 18 })
  lu.assertEquals(t:slice(1, 4):view({ 6 }):totable(), { 19, 20, 21, 22, 23, 24 })
  contains(error_of(t.free, t), "view(s)")
end

-- ---------------------------------------------------------------------------------------------

TestMemory = {}

function TestMemory.test_in_use_on_device()
  quiet_gc()
  local m0 = sf.memory()
  lu.assertEquals(sf.memory("cuda").in_use, m0.in_use)
  lu.assertTrue(m0.total > 0)
  local t = sf.tensor({ 1024, 1024 }, "f32")
  lu.assertEquals(sf.memory().in_use, m0.in_use + 4 * 1024 * 1024)
  local h = sf.tensor({ 256 }, "f64", CPU)
  lu.assertEquals(sf.memory().in_use, m0.in_use + 4 * 1024 * 1024, "cpu tensors count on the cpu")
  lu.assertEquals(sf.memory("cpu").in_use >= 2048, true)
  t:free()
  h:free()
  lu.assertEquals(sf.memory().in_use, m0.in_use)
  collectgarbage("restart")
end

function TestMemory.test_out_of_memory_then_work()
  quiet_gc()
  local d = sf.device()
  local before = sf.memory().in_use
  local bytes = d.mem_total + (1 << 30)       -- more than the whole device
  local n = bytes // 4
  local msg = error_of(sf.tensor, { n }, "f32")
  contains(msg, "out of", "cuda", tostring(n * 4))
  lu.assertEquals(sf.memory().in_use, before)
  -- more than is free, though less than the total
  local free = sf.memory().free
  local n2 = (free + (1 << 30)) // 2
  if n2 * 2 < d.mem_total then
    contains(error_of(sf.tensor, { n2 }, "f16"), "out of", tostring(n2 * 2))
  end
  -- the device still works: an allocation, a fill, a GEMM validated on the device
  local a = sf.randn({ 64, 32 }, "f32", { seed = 3 })
  local b = sf.randn({ 32, 48 }, "f32", { seed = 4 })
  local c = sf.tensor({ 64, 48 }, "f32"):fill(0 / 0)
  sf.ops.gemm { a = a, b = b, c = c }
  local ref = sf.tensor({ 64, 48 }, "f64", CPU)
  sf.ops.gemm { a = a:to("cpu", "f64"), b = b:to("cpu", "f64"), c = ref }
  local r = sf.compare(c, ref)
  lu.assertEquals(r.nan, 0)
  lu.assertTrue(r.rel_l2 < 1e-5, "rel_l2 " .. r.rel_l2)
  sf.sync()
  collectgarbage("restart")
end

-- Calls that stage data through temporaries must give the temporaries' memory back before they
-- return: on the GPU a large staging buffer held until some later collection can make the next
-- allocation fail, and sf.memory() would report bytes no tensor holds.
local function assert_no_temporaries(what, f)
  quiet_gc()
  local dev0, host0 = sf.memory("cuda").in_use, sf.memory("cpu").in_use
  f()
  local dev1, host1 = sf.memory("cuda").in_use, sf.memory("cpu").in_use
  collectgarbage("restart")
  lu.assertEquals(dev1 - dev0, 0, what .. ": cuda bytes left in use after the call")
  lu.assertEquals(host1 - host0, 0, what .. ": cpu bytes left in use after the call")
end

function TestMemory.test_compare_with_cpu_reference_releases()
  local out = sf.randn({ 1 << 16 }, "f32", { seed = 1 })
  local ref = sf.randn({ 1 << 16 }, "f32", { seed = 1, device = "cpu" })
  sf.compare(out, out)                        -- the reduction's scratch, made once
  assert_no_temporaries("sf.compare(cuda, cpu)", function() sf.compare(out, ref) end)
end

function TestMemory.test_cross_device_copy_releases()
  local src = sf.randn({ 1 << 16 }, "f64", { seed = 2, device = "cpu" })
  local dst = sf.tensor({ 1 << 16 }, "f16")
  assert_no_temporaries("cuda f16 <- cpu f64 copy", function() dst:copy(src) end)
end

function TestMemory.test_strided_totable_releases()
  local t = sf.randn({ 256, 256 }, "f32", { seed = 3 })
  local cols = t:slice(2, 2, 128)
  assert_no_temporaries("totable of a strided cuda view", function() cols:totable() end)
end

function TestMemory.test_freed_on_device()
  local t = sf.tensor({ 4 })
  t:free()
  t:free()
  lu.assertTrue(t:is_freed())
  contains(error_of(t.totable, t), "freed")
  contains(error_of(t.to, t, "cpu"), "freed")
  local kept
  do
    local c <close> = sf.tensor({ 16 })
    kept = c
  end
  lu.assertTrue(kept:is_freed())
end

return lu.LuaUnit.run()
