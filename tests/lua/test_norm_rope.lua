-- rmsnorm, add_rmsnorm, rope, linear_rope and add on the CPU backend: each op against values computed here in
-- plain Lua (double math, then the output dtype's rounding), in-place and strided calls, and every
-- argument check. Run inside sfbench (tests/run-lua.sh).
-- luacheck: allow defined top
local lu = require "luaunit"
local sf = require "sfbench"
local testlib = require "testlib"
local error_of, contains, f32, override = testlib.error_of, testlib.contains, testlib.f32, testlib.override

-- the spacing of values near 1 in each dtype: one rounding of a double result is within it
local ULP = { f64 = 1e-13, f32 = 2 ^ -23, f16 = 2 ^ -10, bf16 = 2 ^ -7 }
local DTYPES = { "f64", "f32", "f16", "bf16" }

local function poisoned(shape, dtype)
  return sf.tensor(shape, dtype or "f32"):fill(0 / 0)
end

-- values as a dtype stores them (sf's own rounding, tested in test_tensor.lua)
local function rounded(values, dtype)
  return sf.from_table(values, { #values }, dtype):totable()
end

-- each element within one ulp of dtype (relative, with an absolute floor near zero)
local function assert_close(got, want, dtype, what)
  lu.assertEquals(#got, #want, what)
  local tol = ULP[dtype]
  for i = 1, #want do
    if not (math.abs(got[i] - want[i]) <= tol * math.max(math.abs(want[i]), 1e-3)) then
      lu.fail(("%s: element %d is %.17g, expected %.17g (%s)"):format(what or "values", i, got[i], want[i], dtype))
    end
  end
end

-- ---------------------------------------------------------------------------------------------
-- references in plain Lua

local function rmsnorm_lua(x, w, T, H, eps)
  local out = {}
  for r = 0, T - 1 do
    local ss = 0
    for j = 1, H do ss = ss + x[r * H + j] ^ 2 end
    local inv = 1 / math.sqrt(ss / H + eps)
    for j = 1, H do out[r * H + j] = x[r * H + j] * inv * w[j] end
  end
  return out
end

-- HF: inv_freq = 1 / theta^(arange(0, D, 2) / D) in fp32; angle = fp32(pos · inv_freq)
local function inv_freq_lua(D, theta)
  local t = {}
  for i = 0, D / 2 - 1 do t[i] = f32(1 / f32(f32(theta) ^ f32(2 * i / D))) end
  return t
end

-- x flat, contiguous [B, N, Hh, D]; returns the rotated copy
local function rope_lua(x, B, N, Hh, D, pos_offset, theta)
  local inv, half, out = inv_freq_lua(D, theta), D // 2, {}
  for k = 1, #x do out[k] = x[k] end
  for b = 0, B - 1 do
    for n = 0, N - 1 do
      for h = 0, Hh - 1 do
        local base = ((b * N + n) * Hh + h) * D
        for i = 0, half - 1 do
          local angle = f32((pos_offset + n) * inv[i])
          local c, s = math.cos(angle), math.sin(angle)
          local x1, x2 = x[base + i + 1], x[base + i + half + 1]
          out[base + i + 1] = x1 * c - x2 * s
          out[base + i + half + 1] = x2 * c + x1 * s
        end
      end
    end
  end
  return out
end

-- ---------------------------------------------------------------------------------------------

-- rows of values exact in bf16, one with a tiny scale, one of zeros (eps keeps it finite)
local XV = {
  0.5, -1.25, 2, 0.75, -3,
  0.001953125, -0.0078125, 0.015625, 0.00390625, -0.03125,
  0, 0, 0, 0, 0,
}
local WV = { 1, 0.5, -2, 1.5, 0.25 }

TestRegistry = {}

function TestRegistry.test_ops_listed()
  local by_name = {}
  for _, op in ipairs(sf.op_list()) do by_name[op.name] = op end
  local want = {
    rmsnorm = { "x", "weight", "out", "eps", "out_scale", "stream" },
    add_rmsnorm = { "x", "residual", "weight", "out", "eps", "out_scale", "stream" },
    rope = { "x", "pos_offset", "theta", "positions", "stream" },
    linear_rope = { "x", "w", "x_scale", "w_scale", "out", "rope_heads", "pos_offset", "theta", "impl", "stream" },
    add = { "a", "b", "out", "stream" },
  }
  for name, args in pairs(want) do
    local op = by_name[name]
    lu.assertNotNil(op, name .. " is registered")
    local names = {}
    for i, a in ipairs(op.args) do names[i] = a.name end
    lu.assertEquals(names, args, name)
    lu.assertEquals(type(sf.ops[name]), "function")
  end
  local rope = by_name.rope.args
  lu.assertEquals(rope[2].type, "integer")
  lu.assertEquals(rope[2].default, "0")
  lu.assertEquals(rope[3].default, "10000")
  lu.assertEquals(by_name.rmsnorm.args[4].default, "1e-5")
  lu.assertTrue(by_name.add_rmsnorm.args[2].required)
end

TestRmsnorm = {}

function TestRmsnorm.test_values_every_dtype()
  for _, dt in ipairs(DTYPES) do
    for _, eps in ipairs({ 1e-5, 1e-6, 0.5 }) do
      local x, w = sf.from_table(XV, { 3, 5 }, dt), sf.from_table(WV, { 5 }, dt)
      local out = poisoned({ 3, 5 }, dt)
      local n = select("#", sf.ops.rmsnorm { x = x, weight = w, out = out, eps = eps })
      lu.assertEquals(n, 0, "rmsnorm returns nothing")
      local want = rounded(rmsnorm_lua(XV, WV, 3, 5, eps), dt)
      assert_close(out:totable(), want, dt, ("%s eps %g"):format(dt, eps))
      lu.assertEquals(x:totable(), rounded(XV, dt), "x is not modified")
    end
  end
end

function TestRmsnorm.test_default_eps_is_llama2()
  local x, w = sf.from_table(XV, { 3, 5 }, "f64"), sf.from_table(WV, { 5 }, "f64")
  local out = poisoned({ 3, 5 }, "f64")
  sf.ops.rmsnorm { x = x, weight = w, out = out }
  assert_close(out:totable(), rmsnorm_lua(XV, WV, 3, 5, 1e-5), "f64", "default eps")
  -- the zero row stays zero
  for j = 1, 5 do lu.assertEquals(out:get(3, j), 0) end
end

function TestRmsnorm.test_in_place()
  for _, dt in ipairs(DTYPES) do
    local x, w = sf.from_table(XV, { 3, 5 }, dt), sf.from_table(WV, { 5 }, dt)
    sf.ops.rmsnorm { x = x, weight = w, out = x }
    assert_close(x:totable(), rounded(rmsnorm_lua(XV, WV, 3, 5, 1e-5), dt), dt, dt .. " in place")
  end
end

function TestRmsnorm.test_strided_rows_and_edges()
  -- x and out are column slices of wider buffers: rows strided, columns dense
  local big = sf.from_table((function()
    local t = {}
    for r = 0, 2 do
      for c = 1, 7 do t[r * 7 + c] = (c >= 2 and c <= 6) and XV[r * 5 + c - 1] or 99 end
    end
    return t
  end)(), { 3, 7 }, "f32")
  local x = big:slice(2, 2, 5)
  local obuf = sf.tensor({ 3, 9 }, "f32"):fill(-7)
  local out = obuf:slice(2, 3, 5)
  sf.ops.rmsnorm { x = x, weight = sf.from_table(WV, { 5 }, "f32"), out = out }
  assert_close(out:to("f64"):totable(), rounded(rmsnorm_lua(XV, WV, 3, 5, 1e-5), "f32"), "f32", "strided")
  for r = 1, 3 do
    for _, c in ipairs({ 1, 2, 8, 9 }) do lu.assertEquals(obuf:get(r, c), -7, "outside the out view") end
  end
  -- one row, one column: x / sqrt(x² + eps) · w
  local one = poisoned({ 1, 1 }, "f64")
  sf.ops.rmsnorm { x = sf.from_table({ -3 }, { 1, 1 }, "f64"), weight = sf.from_table({ 2 }, { 1 }, "f64"),
    out = one, eps = 0 }
  lu.assertEquals(one:get(1, 1), -2)
end

-- out_scale: the norm writes e4m3 with each row's scale, the same bits as the norm in f64 and
-- quantize per row after it (both quantize the unrounded values: amax in double, value / scale in
-- f32); add_rmsnorm too (against add, then that), its residual updated as add updates it; and the
-- argument checks
function TestRmsnorm.test_e4m3_out()
  local T, H = 5, 48
  for _, fused in ipairs({ false, true }) do
    for _, dt in ipairs({ "f32", "f16", "bf16" }) do
      local x, w = sf.randn({ T, H }, dt, { seed = 41 }), sf.randn({ H }, dt, { seed = 42 })
      local r0 = sf.randn({ T, H }, dt, { seed = 43 })
      local op = fused and sf.ops.add_rmsnorm or sf.ops.rmsnorm
      local res1, res2 = fused and r0:to("cpu") or nil, fused and r0:to("cpu") or nil
      -- the composition: the residual sum rounded to dt (as add_rmsnorm stores it), normalised in f64
      if fused then sf.ops.add { a = x, b = res1, out = res1 } end
      local h = sf.tensor({ T, H }, "f64")
      sf.ops.rmsnorm { x = (fused and res1 or x):to("f64"), weight = w:to("f64"), out = h }
      local want, want_scale = sf.tensor({ T, H }, "e4m3"), sf.tensor({ T }, "f32")
      sf.ops.quantize { x = h, out = want, scale = want_scale }
      local q, scale = poisoned({ T, H }, "e4m3"), poisoned({ T }, "f32")
      op { x = x, residual = res2, weight = w, out = q, out_scale = scale }
      local what = (fused and "add_rmsnorm " or "rmsnorm ") .. dt
      testlib.assert_same(q, want, what)
      testlib.assert_same(scale, want_scale, what .. ": scales")
      if fused then testlib.assert_same(res2, res1, what .. ": the residual") end
    end
  end
  local x, w = sf.randn({ 4, 16 }, "bf16"), sf.randn({ 16 }, "bf16")
  local function err(over)
    return error_of(sf.ops.rmsnorm, override({ x = x, weight = w, out = sf.tensor({ 4, 16 }, "e4m3"),
      out_scale = sf.tensor({ 4 }) }, over))
  end
  lu.assertNil(select(2, pcall(sf.ops.rmsnorm, { x = x, weight = w, out = sf.tensor({ 4, 16 }, "e4m3"),
    out_scale = sf.tensor({ 4 }) })))
  contains(err { out_scale = false }, "rmsnorm:", "an e4m3 'out' needs 'out_scale', the f32 [T] its rows' scales go to")
  contains(err { out = sf.tensor({ 4, 16 }, "bf16") }, "'out' has dtype bf16 (expected e4m3)")
  contains(err { out_scale = sf.tensor({ 16 }) }, "rmsnorm: 'out_scale' has shape [16] (expected [4])")
  contains(err { out_scale = sf.tensor({ 4 }, "f16") }, "'out_scale' has dtype f16 (expected f32)")
  contains(err { out = sf.tensor({ 4, 8 }, "e4m3") }, "rmsnorm: 'out' has shape [4, 8] (expected [4, 16])")
  contains(err { out = sf.tensor({ 4, 16 }, "e5m2") }, "rmsnorm: 'out' has dtype e5m2 (expected e4m3)")
  -- the scales may not share memory with what the op reads
  local xf, wf, rf = sf.tensor({ 4, 16 }, "f32"):fill(1), sf.randn({ 16 }, "f32"), sf.tensor({ 4, 16 }, "f32"):fill(1)
  local o8 = sf.tensor({ 4, 16 }, "e4m3")
  contains(error_of(sf.ops.rmsnorm, { x = xf, weight = wf, out = o8, out_scale = xf:view({ 64 }):slice(1, 5, 4) }),
    "rmsnorm: 'out_scale' overlaps 'x': they must be separate memory")
  contains(error_of(sf.ops.rmsnorm, { x = xf, weight = wf, out = o8, out_scale = wf:slice(1, 3, 4) }),
    "rmsnorm: 'out_scale' overlaps 'weight': they must be separate memory")
  contains(error_of(sf.ops.add_rmsnorm, { x = xf, residual = rf, weight = wf, out = o8,
    out_scale = rf:view({ 64 }):slice(1, 1, 4) }), "add_rmsnorm: 'out_scale' overlaps 'residual': they must be separate memory")
end

TestAddRmsnorm = {}

-- residual values chosen so that x + residual rounds in bf16 and f16 (1 + 2^-8 ties to 1 in bf16)
local RV = {
  -0.5, 0.25, 1, -1, 0.00390625,
  1, 0.0078125, -0.015625, 1, 2,
  0, 0, 0, 0, 0,
}

function TestAddRmsnorm.test_values_every_dtype()
  for _, dt in ipairs(DTYPES) do
    local x, w = sf.from_table(XV, { 3, 5 }, dt), sf.from_table(WV, { 5 }, dt)
    local res = sf.from_table(RV, { 3, 5 }, dt)
    local out = poisoned({ 3, 5 }, dt)
    sf.ops.add_rmsnorm { x = x, residual = res, weight = w, out = out, eps = 1e-6 }
    local sum = {}
    local xr, rr = rounded(XV, dt), rounded(RV, dt)
    for i = 1, #XV do sum[i] = xr[i] + rr[i] end
    sum = rounded(sum, dt)
    lu.assertEquals(res:totable(), sum, dt .. ": residual holds the rounded sum")
    -- the rounded sum is what is normalised
    assert_close(out:totable(), rounded(rmsnorm_lua(sum, WV, 3, 5, 1e-6), dt), dt, dt)
    lu.assertEquals(x:totable(), xr, "x is not modified")
  end
end

function TestAddRmsnorm.test_same_as_add_then_rmsnorm()
  for _, dt in ipairs({ "bf16", "f16", "f32" }) do
    local x = sf.randn({ 7, 33 }, dt, { seed = 11 })
    local r1 = sf.randn({ 7, 33 }, dt, { seed = 12 })
    local w = sf.randn({ 33 }, dt, { seed = 13 })
    local r2 = r1:to(dt)
    local fused, unfused = poisoned({ 7, 33 }, dt), poisoned({ 7, 33 }, dt)
    sf.ops.add_rmsnorm { x = x, residual = r1, weight = w, out = fused }
    sf.ops.add { a = x, b = r2, out = r2 }
    sf.ops.rmsnorm { x = r2, weight = w, out = unfused }
    lu.assertEquals(r1:totable(), r2:totable(), dt .. " residual")
    lu.assertEquals(fused:totable(), unfused:totable(), dt .. " out")
  end
end

function TestAddRmsnorm.test_out_is_x()
  local x, w = sf.from_table(XV, { 3, 5 }, "bf16"), sf.from_table(WV, { 5 }, "bf16")
  local res = sf.from_table(RV, { 3, 5 }, "bf16")
  local sum = {}
  for i = 1, #XV do sum[i] = XV[i] + RV[i] end
  sum = rounded(sum, "bf16")
  sf.ops.add_rmsnorm { x = x, residual = res, weight = w, out = x }
  lu.assertEquals(res:totable(), sum)
  assert_close(x:totable(), rounded(rmsnorm_lua(sum, WV, 3, 5, 1e-5), "bf16"), "bf16", "out = x")
end

TestRope = {}

function TestRope.test_exact_frequencies()
  -- theta 16, D 8: inv_freq = 1, 1/2, 1/4, 1/8 exactly, so the angles are exact too
  local B, N, Hh, D = 2, 3, 2, 8
  local xv = {}
  for i = 1, B * N * Hh * D do xv[i] = ((i * 37) % 23 - 11) / 8 end
  local inv = inv_freq_lua(D, 16)
  lu.assertEquals({ inv[0], inv[1], inv[2], inv[3] }, { 1, 0.5, 0.25, 0.125 })
  local x = sf.from_table(xv, { B, N, Hh, D }, "f64")
  local n = select("#", sf.ops.rope { x = x, pos_offset = 5, theta = 16 })
  lu.assertEquals(n, 0, "rope returns nothing")
  local want = rope_lua(xv, B, N, Hh, D, 5, 16)
  assert_close(x:totable(), want, "f64", "theta 16")
  -- by hand, token 1 of batch 1, head 1, pair 0: angle 5 (position 5, frequency 1)
  lu.assertAlmostEquals(x:get(1, 1, 1, 1), xv[1] * math.cos(5) - xv[5] * math.sin(5), 1e-15)
  lu.assertAlmostEquals(x:get(1, 1, 1, 5), xv[5] * math.cos(5) + xv[1] * math.sin(5), 1e-15)
end

function TestRope.test_llama_defaults_every_dtype()
  -- theta 10000, positions from 0: position 0 is the identity
  local B, N, Hh, D = 1, 4, 3, 16
  for _, dt in ipairs(DTYPES) do
    local x = sf.randn({ B, N, Hh, D }, dt, { seed = 21 })
    local xv = x:to("f64"):totable()
    sf.ops.rope { x = x }
    local got = x:to("f64"):totable()
    for i = 1, Hh * D do lu.assertEquals(got[i], xv[i], dt .. ": position 0 is unchanged") end
    assert_close(got, rounded(rope_lua(xv, B, N, Hh, D, 0, 10000), dt), dt, dt)
  end
end

function TestRope.test_rotation_keeps_pair_norms()
  local D = 64
  local x = sf.randn({ 1, 9, 2, D }, "f64", { seed = 22 })
  local before = x:totable()
  sf.ops.rope { x = x, pos_offset = 4000, theta = 500000 }
  local after = x:totable()
  local moved = 0
  for base = 0, #before - D, D do
    for i = 1, D // 2 do
      local a = before[base + i] ^ 2 + before[base + i + D // 2] ^ 2
      local b = after[base + i] ^ 2 + after[base + i + D // 2] ^ 2
      lu.assertAlmostEquals(b, a, 1e-12 * (1 + a))
      if after[base + i] ~= before[base + i] then moved = moved + 1 end
    end
  end
  lu.assertTrue(moved > 0)
end

function TestRope.test_strided_view_of_packed_qkv()
  -- [B, N, Hq + 2Hkv, D] with Hq = Hkv = 2: rotate heads 1..4 (q and k), leave v alone
  local B, N, Ht, D = 2, 5, 6, 8
  for _, dt in ipairs({ "f64", "bf16" }) do
    local qkv = sf.randn({ B, N, Ht, D }, dt, { seed = 23 })
    local orig = qkv:to("f64"):totable()
    local qk = qkv:slice(3, 1, 4)
    local copy = qk:to(dt)
    sf.ops.rope { x = qk, pos_offset = 3 }
    sf.ops.rope { x = copy, pos_offset = 3 }
    lu.assertEquals(qk:to("f64"):totable(), copy:to("f64"):totable(), dt .. ": view = contiguous copy")
    local now = qkv:to("f64"):totable()
    for k = 1, #orig do
      local h = ((k - 1) // D) % Ht
      if h >= 4 then lu.assertEquals(now[k], orig[k], dt .. ": v heads untouched") end
    end
    -- the k heads alone (a view that starts inside the row) give the same as within q+k
    local qkv2 = sf.randn({ B, N, Ht, D }, dt, { seed = 23 })
    sf.ops.rope { x = qkv2:slice(3, 3, 2), pos_offset = 3 }
    lu.assertEquals(qkv2:slice(3, 3, 2):to("f64"):totable(), qkv:slice(3, 3, 2):to("f64"):totable())
  end
end

TestLinearRope = {}

-- x [T, K] · w [Ht·D, K]ᵀ in double, rounded to dtype, then the first rope_heads heads rotated
local function linear_rope_lua(xv, wv, B, N, K, Ht, D, rope_heads, pos_offset, theta, dtype)
  local T, proj = B * N, {}
  for t = 0, T - 1 do
    for c = 0, Ht * D - 1 do
      local acc = 0
      for k = 1, K do acc = acc + xv[t * K + k] * wv[c * K + k] end
      proj[t * Ht * D + c + 1] = acc
    end
  end
  proj = rounded(proj, dtype)
  local turned = rope_lua(proj, B, N, Ht, D, pos_offset, theta)
  for k = 1, #proj do
    if ((k - 1) // D) % Ht < rope_heads then proj[k] = turned[k] end
  end
  return rounded(proj, dtype)
end

function TestLinearRope.test_against_lua()
  local B, N, K, Ht, D = 2, 3, 5, 4, 8
  for _, dt in ipairs(DTYPES) do
    for _, case in ipairs({ { rope_heads = 3, pos_offset = 0 }, { rope_heads = 1, pos_offset = 7 },
      { rope_heads = 0, pos_offset = 0 }, { rope_heads = 4, pos_offset = 2 } }) do
      local x = sf.randn({ B * N, K }, dt, { seed = 31 })
      local w = sf.randn({ Ht * D, K }, dt, { seed = 32 })
      local out = poisoned({ B, N, Ht, D }, dt)
      local n = select("#", sf.ops.linear_rope { x = x, w = w, out = out, rope_heads = case.rope_heads,
        pos_offset = case.pos_offset, theta = 100 })
      lu.assertEquals(n, 0, "linear_rope returns nothing")
      local want = linear_rope_lua(x:to("f64"):totable(), w:to("f64"):totable(), B, N, K, Ht, D, case.rope_heads,
        case.pos_offset, 100, dt)
      assert_close(out:to("f64"):totable(), want, dt, ("%s rope_heads %d pos_offset %d"):format(dt, case.rope_heads,
        case.pos_offset))
    end
  end
end

function TestLinearRope.test_equals_gemm_then_rope()
  -- every impl on the CPU is the reference: the product, then rope over the first heads
  local B, N, K, Ht, D = 1, 6, 16, 5, 4
  local x, w = sf.randn({ B * N, K }, "f32", { seed = 33 }), sf.randn({ Ht * D, K }, "f32", { seed = 34 })
  local want = sf.tensor({ B, N, Ht, D }, "f32")
  sf.ops.gemm { a = x, b = w, c = want:view({ B * N, Ht * D }), transb = true }
  sf.ops.rope { x = want:slice(3, 1, 3), pos_offset = 9 }
  for _, impl in ipairs({ "unfused", "fused", "fastest" }) do
    local out = poisoned({ B, N, Ht, D }, "f32")
    sf.ops.linear_rope { x = x, w = w, out = out, rope_heads = 3, pos_offset = 9, impl = impl }
    lu.assertEquals(out:totable(), want:totable(), impl)
  end
end

TestAdd = {}

function TestAdd.test_values_and_rounding()
  for _, dt in ipairs(DTYPES) do
    local a = sf.from_table({ 1, 2, -3.5, 0.25, 100, -0 }, { 2, 3 }, dt)
    local b = sf.from_table({ 0.5, -2, 1.25, 0.25, 28, 0 }, { 2, 3 }, dt)
    local out = poisoned({ 2, 3 }, dt)
    local n = select("#", sf.ops.add { a = a, b = b, out = out })
    lu.assertEquals(n, 0, "add returns nothing")
    lu.assertEquals(out:totable(), { 1.5, 0, -2.25, 0.5, 128, 0 }, dt)
  end
  -- one rounding of the exact sum: 1 + 2^-11 ties to 1 in f16, 1 + 3·2^-11 to 1 + 2^-9
  local a = sf.from_table({ 1, 1 }, { 2 }, "f16")
  local out = poisoned({ 2 }, "f16")
  sf.ops.add { a = a, b = sf.from_table({ 2 ^ -11, 3 * 2 ^ -11 }, { 2 }, "f16"), out = out }
  lu.assertEquals(out:totable(), { 1, 1 + 2 ^ -9 })
  -- bf16: 1 + 2^-8 ties to 1
  local c = poisoned({ 1 }, "bf16")
  sf.ops.add { a = sf.from_table({ 1 }, { 1 }, "bf16"), b = sf.from_table({ 2 ^ -8 }, { 1 }, "bf16"), out = c }
  lu.assertEquals(c:totable(), { 1 })
end

function TestAdd.test_in_place_and_strided()
  local a = sf.from_table({ 1, 2, 3, 4 }, { 2, 2 }, "bf16")
  local b = sf.from_table({ 10, 20, 30, 40 }, { 2, 2 }, "bf16")
  sf.ops.add { a = a, b = b, out = a }
  lu.assertEquals(a:totable(), { 11, 22, 33, 44 })
  sf.ops.add { a = a, b = b, out = b }
  lu.assertEquals(b:totable(), { 21, 42, 63, 84 })
  -- 3-D views with strided leading dimensions
  local big = sf.tensor({ 2, 3, 6 }, "f32"):fill(5)
  local av = {}
  for i = 1, 12 do av[i] = i end
  local x = sf.from_table(av, { 2, 3, 2 }, "f32")
  local yb = sf.tensor({ 4, 3, 2 }, "f32"):fill(0.5)
  local y = yb:slice(1, 2, 2)
  local o = big:slice(3, 3, 2)
  sf.ops.add { a = x, b = y, out = o }
  local want = {}
  for i = 1, 12 do want[i] = i + 0.5 end
  lu.assertEquals(o:to("f32"):totable(), want)
  local all = big:totable()
  for k = 1, #all do
    local col = (k - 1) % 6 + 1
    if col < 3 or col > 4 then lu.assertEquals(all[k], 5, "outside the out view") end
  end
end

-- ---------------------------------------------------------------------------------------------

TestErrors = {}

local function norm_args(over)
  return override({ x = sf.tensor({ 4, 8 }, "f32"):fill(1), weight = sf.tensor({ 8 }, "f32"):fill(1),
    out = sf.tensor({ 4, 8 }, "f32") }, over)
end

function TestErrors.test_registry_checks()
  contains(error_of(sf.ops.rmsnorm, norm_args { bogus = 1 }), "rmsnorm:", "unknown argument 'bogus'")
  contains(error_of(sf.ops.rmsnorm, { weight = sf.tensor({ 8 }), out = sf.tensor({ 4, 8 }) }), "missing argument 'x'")
  contains(error_of(sf.ops.rmsnorm, { x = sf.tensor({ 4, 8 }), out = sf.tensor({ 4, 8 }) }), "missing argument 'weight'")
  contains(error_of(sf.ops.rmsnorm, norm_args { x = 3 }), "argument 'x' must be a tensor, got number")
  contains(error_of(sf.ops.rmsnorm, norm_args { eps = "small" }), "argument 'eps' must be a number, got string")
  contains(error_of(sf.ops.add_rmsnorm, norm_args()), "add_rmsnorm:", "missing argument 'residual'")
  contains(error_of(sf.ops.rope, { x = sf.tensor({ 1, 2, 1, 4 }), pos_offset = 1.5 }),
    "argument 'pos_offset' must be a integer")
  contains(error_of(sf.ops.rope, { x = sf.tensor({ 1, 2, 1, 4 }), theta = "big" }), "argument 'theta' must be a number")
  contains(error_of(sf.ops.add, { a = sf.tensor({ 2 }), b = sf.tensor({ 2 }) }), "add:", "missing argument 'out'")
end

function TestErrors.test_rmsnorm()
  local function err(over) return error_of(sf.ops.rmsnorm, norm_args(over)) end
  contains(err { x = sf.tensor({ 4, 8 }, "i32") }, "rmsnorm:", "'x' has dtype i32", "f32, f16, bf16, f64")
  contains(err { x = sf.tensor({ 2, 4, 8 }), out = sf.tensor({ 2, 4, 8 }) }, "'x' must be [T, H], got 3 dimensions")
  contains(err { x = sf.tensor({ 32 }) }, "'x' must be [T, H], got 1 dimensions")
  contains(err { weight = sf.tensor({ 8 }, "f16") }, "'weight' has dtype f16 (expected f32)")
  contains(err { weight = sf.tensor({ 9 }) }, "'weight' has shape [9] (expected [8])")
  contains(err { weight = sf.tensor({ 1, 8 }) }, "'weight' has shape [1, 8] (expected [8])")
  contains(err { out = sf.tensor({ 4, 8 }, "bf16") }, "'out' has dtype bf16 (expected f32)")
  contains(err { out = sf.tensor({ 8, 4 }) }, "'out' has shape [8, 4] (expected [4, 8])")
  contains(err { eps = -1e-6 }, "'eps' must be a finite number >= 0")
  contains(err { eps = 0 / 0 }, "'eps' must be a finite number >= 0")
  contains(err { eps = math.huge }, "'eps' must be a finite number >= 0")
  -- overlaps: out a shifted view of x's memory, or over the weight
  local buf = sf.tensor({ 5, 8 }):fill(1)
  contains(err { x = buf:slice(1, 1, 4), out = buf:slice(1, 2, 4) }, "'out' overlaps 'x' without being the same view")
  local wbuf = sf.tensor({ 5, 8 }):fill(1)
  contains(err { weight = wbuf:view({ 40 }):slice(1, 1, 8), out = wbuf:slice(1, 1, 4) }, "'out' overlaps 'weight'")
end

function TestErrors.test_add_rmsnorm()
  local function err(over)
    return error_of(sf.ops.add_rmsnorm, override(norm_args({ residual = sf.tensor({ 4, 8 }):fill(0) }), over))
  end
  contains(err { residual = sf.tensor({ 4, 8 }, "f64") }, "add_rmsnorm:", "'residual' has dtype f64 (expected f32)")
  contains(err { residual = sf.tensor({ 4, 9 }) }, "'residual' has shape [4, 9] (expected [4, 8])")
  contains(err { residual = sf.tensor({ 32 }) }, "'residual' has shape [32] (expected [4, 8])")
  contains(err { x = sf.tensor({ 4, 8 }, "i32") }, "'x' has dtype i32")
  contains(err { eps = -1 }, "'eps' must be a finite number >= 0")
  local r = sf.tensor({ 4, 8 }):fill(0)
  contains(err { residual = r, out = r }, "'out' overlaps 'residual': they must be separate memory")
  local buf = sf.tensor({ 5, 8 }):fill(1)
  contains(err { x = buf:slice(1, 2, 4), residual = buf:slice(1, 1, 4) },
    "'residual' overlaps 'x' without being the same view")
  -- residual may be x itself: r = 2x
  local x = sf.from_table({ 1, 2, 3, 4 }, { 1, 4 }, "f64")
  local out = poisoned({ 1, 4 }, "f64")
  sf.ops.add_rmsnorm { x = x, residual = x, weight = sf.from_table({ 1, 1, 1, 1 }, { 4 }, "f64"), out = out, eps = 0 }
  lu.assertEquals(x:totable(), { 2, 4, 6, 8 })
  local rms = math.sqrt((4 + 16 + 36 + 64) / 4)
  assert_close(out:totable(), { 2 / rms, 4 / rms, 6 / rms, 8 / rms }, "f64", "residual = x")
end

function TestErrors.test_rope()
  local function err(x, over)
    return error_of(sf.ops.rope, override({ x = x }, over))
  end
  local x = sf.tensor({ 1, 4, 2, 8 }):fill(1)
  contains(err(sf.tensor({ 4, 2, 8 })), "rope:", "'x' must be [B, N, heads, D], got 3 dimensions")
  contains(err(sf.tensor({ 1, 4, 2, 8 }, "i32")), "'x' has dtype i32 (expected f32, f16, bf16, f64)")
  contains(err(sf.tensor({ 1, 4, 2, 7 })), "head dim (7, dimension 4 of 'x') must be even and at most 512")
  contains(err(sf.tensor({ 1, 1, 1, 514 })), "head dim (514, dimension 4 of 'x') must be even and at most 512")
  contains(err(x, { pos_offset = -1 }), "'pos_offset' must be >= 0, got -1")
  contains(err(x, { pos_offset = 2 ^ 24 - 3 }), "positions reach 16777217", "at most 2^24")
  contains(err(x, { theta = 0 }), "'theta' must be a positive finite number")
  contains(err(x, { theta = -10000 }), "'theta' must be a positive finite number")
  contains(err(x, { theta = math.huge }), "'theta' must be a positive finite number")
  contains(err(x, { theta = 0 / 0 }), "'theta' must be a positive finite number")
  contains(err(x, { theta = 1e39 }), "'theta' must be a positive finite number (fp32)")
  -- the last position that is still exact works, and D = 512 and D = 2 too
  sf.ops.rope { x = x, pos_offset = 2 ^ 24 - 4 }
  sf.ops.rope { x = sf.tensor({ 1, 1, 1, 512 }):fill(1), pos_offset = 7 }
  local two = sf.from_table({ 1, 0 }, { 1, 1, 1, 2 }, "f64")
  sf.ops.rope { x = two, pos_offset = 2 }
  assert_close(two:totable(), { math.cos(2), math.sin(2) }, "f64", "D = 2")
end

function TestErrors.test_linear_rope()
  local function err(over)
    return error_of(sf.ops.linear_rope, override({ x = sf.tensor({ 6, 16 }), w = sf.tensor({ 24, 16 }),
      out = sf.tensor({ 2, 3, 3, 8 }), rope_heads = 2 }, over))
  end
  contains(err { x = sf.tensor({ 6, 16 }, "i32") }, "linear_rope:", "'x' has dtype i32")
  contains(err { w = sf.tensor({ 24, 16 }, "f16") }, "'w' has dtype f16 (expected f32)")
  contains(err { out = sf.tensor({ 2, 3, 3, 8 }, "f64") }, "'out' has dtype f64 (expected f32)")
  contains(err { x = sf.tensor({ 6, 16, 1 }) }, "'x' must be [B·N, K], got 3 dimensions")
  contains(err { w = sf.tensor({ 24 }) }, "'w' must be [heads·D, K], got 1 dimensions")
  contains(err { out = sf.tensor({ 6, 24 }) }, "'out' must be [B, N, heads, D], got 2 dimensions")
  contains(err { out = sf.tensor({ 2, 3, 3, 7 }), w = sf.tensor({ 21, 16 }) }, "head dim (7, dimension 4 of 'out')")
  contains(err { x = sf.tensor({ 5, 16 }) }, "'x' has shape [5, 16] (expected [6, 16])")
  contains(err { w = sf.tensor({ 24, 8 }) }, "'w' has shape [24, 8] (expected [24, 16])")
  contains(err { w = sf.tensor({ 16, 16 }) }, "'w' has shape [16, 16] (expected [24, 16])")
  contains(err { x = sf.tensor({ 6, 32 }):slice(2, 1, 16) }, "'x' must be contiguous")
  contains(err { out = sf.tensor({ 2, 3, 4, 8 }):slice(3, 1, 3) }, "'out' must be contiguous")
  contains(err { rope_heads = 4 }, "'rope_heads' must be between 0 and the 3 heads of 'out', got 4")
  contains(err { rope_heads = -1 }, "'rope_heads' must be between 0 and the 3 heads of 'out', got -1")
  contains(err { rope_heads = false }, "missing argument 'rope_heads'")
  contains(err { pos_offset = -2 }, "'pos_offset' must be >= 0, got -2")
  contains(err { theta = 0 }, "'theta' must be a positive finite number")
  contains(err { impl = "best" }, "unknown impl 'best'", "unfused", "fused", "fastest")
end

function TestErrors.test_add()
  local function err(over)
    return error_of(sf.ops.add, override({ a = sf.tensor({ 3, 4 }):fill(1), b = sf.tensor({ 3, 4 }):fill(1),
      out = sf.tensor({ 3, 4 }) }, over))
  end
  contains(err { a = sf.tensor({ 3, 4 }, "i32") }, "add:", "'a' has dtype i32 (expected f32, f16, bf16, f64)")
  contains(err { b = sf.tensor({ 3, 4 }, "f16") }, "'b' has dtype f16 (expected f32)")
  contains(err { out = sf.tensor({ 3, 4 }, "f64") }, "'out' has dtype f64 (expected f32)")
  contains(err { b = sf.tensor({ 4, 3 }) }, "'b' has shape [4, 3] (expected [3, 4])")
  contains(err { b = sf.tensor({ 12 }) }, "'b' has shape [12] (expected [3, 4])")
  contains(err { out = sf.tensor({ 3, 4, 1 }) }, "'out' has shape [3, 4, 1] (expected [3, 4])")
  local buf = sf.tensor({ 4, 4 }):fill(1)
  contains(err { a = buf:slice(1, 1, 3), out = buf:slice(1, 2, 3) }, "'out' overlaps 'a' without being the same view")
  contains(err { b = buf:slice(1, 2, 3), out = buf:slice(1, 1, 3) }, "'out' overlaps 'b' without being the same view")
  -- a and b may overlap each other: they are only read
  local v = sf.from_table({ 1, 2, 3, 4 }, { 4 }, "f64")
  local o = poisoned({ 3 }, "f64")
  sf.ops.add { a = v:slice(1, 1, 3), b = v:slice(1, 2, 3), out = o }
  lu.assertEquals(o:totable(), { 3, 5, 7 })
end

function TestErrors.test_errors_leave_outputs_untouched()
  local out = sf.tensor({ 4, 8 }):fill(7)
  error_of(sf.ops.rmsnorm, norm_args { out = out, eps = -1 })
  error_of(sf.ops.add_rmsnorm, norm_args { out = out, residual = sf.tensor({ 4, 9 }) })
  for _, v in ipairs(out:totable()) do lu.assertEquals(v, 7) end
  local x = sf.tensor({ 1, 2, 2, 8 }):fill(3)
  error_of(sf.ops.rope, { x = x, theta = -1 })
  for _, v in ipairs(x:totable()) do lu.assertEquals(v, 3) end
end

return lu.LuaUnit.run()
