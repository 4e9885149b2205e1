-- The attention op on the CPU backend against attention worked out here in Lua, element by
-- element: the output and the logsumexp (an lse computed independently of the reference), the
-- default scale 1/sqrt(D), GQA's head mapping, and rows with no visible key (causal, more queries
-- than keys: output 0, lse -inf). FP8: pack_vt's layout against the order worked out here from
-- the wgmma fragments, attention of e4m3 q, k and vt as the exact attention of their dequantized
-- values (each scale applied once, to its own operand), within validate.fp8_bounds of the 16-bit
-- inputs they were quantized from, and every bad FP8 argument refused with a message naming it.
-- Run inside sfbench (tests/run-lua.sh).
-- luacheck: allow defined top
local lu = require "luaunit"
local sf = require "sfbench"
local testlib = require "testlib"

local CPU = { device = "cpu" }
local validate = require "sfbench.validate"
local fp8 = require "sfbench.fp8"
local error_of, contains = testlib.error_of, testlib.contains

-- out[b][i][h][d] and lse[b][h][i] of softmax(scale·q·kᵀ [+ bottom-right causal mask])·v, from
-- nested tables q[b][i][h][d], k and v [b][j][hk][d]; round_p(x), when given, rounds each P =
-- exp(s - row max) before P·V (the row sum takes it unrounded)
local function attention(q, k, v, scale, causal, round_p)
  local B, Nq, H, D, Nk, Hkv = #q, #q[1], #q[1][1], #q[1][1][1], #k[1], #k[1][1]
  local out, lse = {}, {}
  for b = 1, B do
    out[b], lse[b] = {}, {}
    for h = 1, H do lse[b][h] = {} end
    for i = 1, Nq do
      out[b][i] = {}
      for h = 1, H do
        local hk = (h - 1) // (H // Hkv) + 1
        local s, m = {}, -math.huge
        for j = 1, Nk do
          if not causal or j - 1 <= (i - 1) + (Nk - Nq) then
            local dot = 0
            for d = 1, D do dot = dot + q[b][i][h][d] * k[b][j][hk][d] end
            s[j] = dot * scale
            m = math.max(m, s[j])
          end
        end
        local sum, o = 0, {}
        for d = 1, D do o[d] = 0 end
        for j, sj in pairs(s) do
          local e = math.exp(sj - m)
          sum = sum + e
          local pe = round_p and round_p(e) or e
          for d = 1, D do o[d] = o[d] + pe * v[b][j][hk][d] end
        end
        for d = 1, D do o[d] = sum > 0 and o[d] / sum or 0 end
        out[b][i][h] = o
        lse[b][h][i] = sum > 0 and m + math.log(sum) or -math.huge
      end
    end
  end
  return out, lse
end

-- nested tables of a [B, N, H, D] (or [B, H, N]) tensor
local function nested(t)
  local shape, flat = t:shape(), t:totable()
  local pos = 0
  local function build(dim)
    local r = {}
    for i = 1, shape[dim] do
      if dim == #shape then pos = pos + 1; r[i] = flat[pos] else r[i] = build(dim + 1) end
    end
    return r
  end
  return build(1)
end

local function flatten(x, acc)
  acc = acc or {}
  if type(x) ~= "table" then acc[#acc + 1] = x; return acc end
  for _, y in ipairs(x) do flatten(y, acc) end
  return acc
end

local function assert_values(got, want, tol, what)
  got, want = flatten(got), flatten(want)
  lu.assertEquals(#got, #want, what)
  for i = 1, #want do
    if want[i] == -math.huge then
      lu.assertEquals(got[i], -math.huge, ("%s: element %d"):format(what, i))
    elseif not (math.abs(got[i] - want[i]) <= tol * (1 + math.abs(want[i]))) then
      lu.fail(("%s: element %d is %.17g, expected %.17g"):format(what, i, got[i], want[i]))
    end
  end
end

-- runs the op in f64 with an lse; returns the output and lse as nested tables
local function run(B, Nq, Nk, H, Hkv, D, opts)
  local q = sf.randn({ B, Nq, H, D }, "f64", { seed = 11, device = "cpu" })
  local k = sf.randn({ B, Nk, Hkv, D }, "f64", { seed = 12, device = "cpu" })
  local v = sf.randn({ B, Nk, Hkv, D }, "f64", { seed = 13, device = "cpu" })
  local out = sf.tensor({ B, Nq, H, D }, "f64", CPU):fill(0 / 0)
  local lse = sf.tensor({ B, H, Nq }, "f32", CPU):fill(0 / 0)
  sf.ops.attention(testlib.override({ q = q, k = k, v = v, out = out, lse = lse }, opts))
  return nested(out), nested(lse), nested(q), nested(k), nested(v)
end

TestAttention = {}

function TestAttention.test_output_and_lse()
  for _, causal in ipairs({ false, true }) do
    local out, lse, q, k, v = run(2, 5, 5, 4, 2, 8, { causal = causal, scale = 0.3 })
    local want_out, want_lse = attention(q, k, v, testlib.f32(0.3), causal)
    assert_values(out, want_out, 1e-12, "out, causal " .. tostring(causal))
    assert_values(lse, want_lse, 1e-6, "lse, causal " .. tostring(causal))   -- stored in f32
  end
end

-- no scale given: 1/sqrt(D), not 1/D nor 1
function TestAttention.test_default_scale()
  for _, D in ipairs({ 8, 64 }) do
    local out, lse, q, k, v = run(1, 6, 7, 2, 1, D, {})
    local want_out, want_lse = attention(q, k, v, testlib.f32(1 / math.sqrt(D)), false)
    assert_values(out, want_out, 1e-12, "out, D " .. D)
    assert_values(lse, want_lse, 1e-6, "lse, D " .. D)
  end
end

-- causal with more queries than keys (bottom-right aligned): the first Nq - Nk rows see no key
function TestAttention.test_rows_with_no_visible_key()
  local Nq, Nk = 7, 3
  local out, lse, q, k, v = run(1, Nq, Nk, 2, 2, 4, { causal = true })
  local want_out, want_lse = attention(q, k, v, testlib.f32(0.5), true)
  assert_values(out, want_out, 1e-12, "out")
  assert_values(lse, want_lse, 1e-6, "lse")
  for i = 1, Nq - Nk do
    for h = 1, 2 do
      for d = 1, 4 do lu.assertEquals(out[1][i][h][d], 0, ("row %d head %d"):format(i, h)) end
      lu.assertEquals(lse[1][h][i], -math.huge, ("lse row %d head %d"):format(i, h))
    end
  end
  lu.assertTrue(lse[1][1][Nq - Nk + 1] > -math.huge, "the first row with a key")
  -- in the 16-bit dtypes too
  for _, dt in ipairs({ "f16", "bf16" }) do
    local o = sf.tensor({ 1, Nq, 2, 4 }, dt, CPU):fill(0 / 0)
    local l = sf.tensor({ 1, 2, Nq }, "f32", CPU):fill(0 / 0)
    local x = sf.randn({ 1, Nq, 2, 4 }, dt, { seed = 1, device = "cpu" })
    local kv = sf.randn({ 1, Nk, 2, 4 }, dt, { seed = 2, device = "cpu" })
    sf.ops.attention { q = x, k = kv, v = kv, out = o, lse = l, causal = true }
    local ot, lt = nested(o), nested(l)
    for i = 1, Nq - Nk do
      for h = 1, 2 do
        lu.assertEquals(ot[1][i][h], { 0, 0, 0, 0 }, dt)
        lu.assertEquals(lt[1][h][i], -math.huge, dt)
      end
    end
  end
end

-- FP8 ----------------------------------------------------------------------------------------

-- The key vt holds at 0-based column p (kernels/attention.h), worked out from the register
-- fragments: in 32 keys, a thread t (lane % 4) holds keys 8i + 2t + {0, 1} of S's accumulators, and
-- the e4m3 A operand of wgmma k32 takes its 4t..4t+3 (and 16 on) in that order, so column 4t + e of
-- each 16 holds key 8·(e // 2) + 2t + e % 2.
local function vt_key(p)
  local g, c = p // 16, p % 16
  local t, e = c // 4, c % 4
  return 16 * g + 8 * (e // 2) + 2 * t + e % 2
end

local quantized, packed_vt = fp8.quantized, fp8.packed_vt

-- pack_vt against the layout worked out above: every key once, zeros past N, on views too
function TestAttention.test_pack_vt_layout()
  for _, c in ipairs({ { 1, 1, 1, 8 }, { 2, 16, 2, 4 }, { 1, 17, 3, 8 }, { 2, 40, 1, 16 }, { 1, 33, 2, 128 } }) do
    local B, N, Hkv, D = table.unpack(c)
    -- v as a view into a wider packed buffer (two more heads), e4m3 values of every magnitude
    local all = quantized(sf.randn({ B, N, Hkv + 2, D }, "f64", { seed = N, device = "cpu" }))
    local v8 = all:slice(3, 2, Hkv)
    local vt = packed_vt(v8)
    local Np = vt:size(4)
    lu.assertEquals(Np, (N + 15) // 16 * 16)
    local v, got = nested(v8), nested(vt)
    for b = 1, B do
      for h = 1, Hkv do
        for d = 1, D do
          local seen = {}
          for p = 0, Np - 1 do
            local key = vt_key(p)
            lu.assertNil(seen[key], "a key twice")
            seen[key] = true
            local want = key < N and v[b][key + 1][h][d] or 0
            lu.assertEquals(got[b][h][d][p + 1], want, ("N %d b %d h %d d %d column %d"):format(N, b, h, d, p))
          end
        end
      end
    end
  end
end

-- e4m3 attention on the CPU: q, k and vt with their scales, in f64 (and the rows with no key)
local function fp8_case(B, Nq, Nk, H, Hkv, D, causal, out_dtype, round_p)
  -- three magnitudes, so that three different scales come out of quantize
  local q16 = sf.randn({ B, Nq, H, D }, "bf16", { seed = 21, std = 3, device = "cpu" })
  local k16 = sf.randn({ B, Nk, Hkv, D }, "bf16", { seed = 22, std = 0.5, device = "cpu" })
  local v16 = sf.randn({ B, Nk, Hkv, D }, "bf16", { seed = 23, std = 2, device = "cpu" })
  local q8, qs = quantized(q16)
  local k8, ks = quantized(k16)
  local v8, vs = quantized(v16)
  local out = sf.tensor({ B, Nq, H, D }, out_dtype, CPU):fill(0 / 0)
  local lse = sf.tensor({ B, H, Nq }, "f32", CPU):fill(0 / 0)
  local scale = 1 / math.sqrt(D)
  sf.ops.attention { q = q8, k = k8, vt = packed_vt(v8), q_scale = qs, k_scale = ks, v_scale = vs, out = out, lse = lse,
    causal = causal, scale = scale, round_p = round_p }
  return { out = out, lse = lse, q8 = q8, k8 = k8, v8 = v8, qs = qs:get(1), ks = ks:get(1), vs = vs:get(1),
    q16 = q16, k16 = k16, v16 = v16, scale = testlib.f32(scale) }
end

-- nested values of an e4m3 tensor times its scale
local function dequantized(x8, s)
  local t = nested(x8)
  local function mul(x)
    if type(x) ~= "table" then return x * s end
    for i, y in ipairs(x) do x[i] = mul(y) end
    return x
  end
  return mul(t)
end

function TestAttention.test_fp8_is_attention_of_the_dequantized_values()
  for _, causal in ipairs({ false, true }) do
    for _, c in ipairs({ { 2, 5, 19, 4, 2, 8 }, { 1, 20, 7, 2, 1, 16 } }) do
      local r = fp8_case(c[1], c[2], c[3], c[4], c[5], c[6], causal, "f64")
      lu.assertTrue(r.qs ~= r.ks and r.ks ~= r.vs and r.qs ~= r.vs, "three different scales")
      local want_out, want_lse = attention(dequantized(r.q8, r.qs), dequantized(r.k8, r.ks), dequantized(r.v8, r.vs),
        r.scale, causal)
      local what = ("B%d Nq%d Nk%d H%d/%d D%d%s"):format(c[1], c[2], c[3], c[4], c[5], c[6], causal and " causal" or "")
      assert_values(nested(r.out), want_out, 1e-12, "out, " .. what)
      assert_values(nested(r.lse), want_lse, 1e-6, "lse, " .. what)
    end
  end
end

-- round_p: P rounded to e4m3 before P·V, the row sum and lse as without it
function TestAttention.test_fp8_round_p_rounds_p_alone()
  local function e4m3(x) return sf.from_table({ x }, { 1 }, "f64", CPU):to("e4m3"):to("f64"):get(1) end
  for _, causal in ipairs({ false, true }) do
    local r = fp8_case(2, 5, 19, 4, 2, 8, causal, "f64", true)
    local exact = fp8_case(2, 5, 19, 4, 2, 8, causal, "f64")
    local q, k, v = dequantized(r.q8, r.qs), dequantized(r.k8, r.ks), dequantized(r.v8, r.vs)
    local want_out, want_lse = attention(q, k, v, r.scale, causal, e4m3)
    local what = causal and "causal" or "non-causal"
    assert_values(nested(r.out), want_out, 1e-12, "out, " .. what)
    assert_values(nested(r.lse), want_lse, 1e-6, "lse, " .. what)
    lu.assertTrue(sf.compare(r.out, exact.out).max_abs > 1e-3, "P's rounding shows in out, " .. what)
    lu.assertEquals(sf.compare(r.lse, exact.lse).max_abs, 0, "lse, " .. what)
  end
end

-- against the 16-bit inputs quantized: three e4m3 roundings on the CPU's path (Q, K, V; the GPU
-- kernel adds P's), each output written in f16 or bf16
function TestAttention.test_fp8_within_bounds_of_the_16_bit_inputs()
  for _, out_dtype in ipairs({ "f16", "bf16" }) do
    for _, causal in ipairs({ false, true }) do
      local r = fp8_case(1, 33, 47, 4, 2, 64, causal, out_dtype)
      local ref = sf.tensor(r.out:shape(), "f64", CPU)
      sf.ops.attention { q = r.q16:to("f64"), k = r.k16:to("f64"), v = r.v16:to("f64"), out = ref, causal = causal }
      local res = validate.check(r.out, ref, validate.fp8_bounds(3))
      lu.assertTrue(res.ok, out_dtype .. (causal and " causal: " or ": ") .. validate.describe(res))
    end
  end
end

-- q_scale·k_scale not positive: NaN out and lse, as the kernel writes them
function TestAttention.test_fp8_scales_not_positive()
  local q8, qs = quantized(sf.randn({ 1, 3, 2, 8 }, "f32", { seed = 1, device = "cpu" }))
  local k8, ks = quantized(sf.randn({ 1, 3, 2, 8 }, "f32", { seed = 2, device = "cpu" }))
  local vt = packed_vt(k8)
  qs:set(-qs:get(1), 1)
  local out, lse = sf.tensor({ 1, 3, 2, 8 }, "f32", CPU):fill(0), sf.tensor({ 1, 2, 3 }, "f32", CPU):fill(0)
  sf.ops.attention { q = q8, k = k8, vt = vt, q_scale = qs, k_scale = ks, v_scale = ks, out = out, lse = lse }
  lu.assertEquals(sf.compare(out, out).nan, out:numel())
  lu.assertEquals(sf.compare(lse, lse).nan, lse:numel())
end

function TestAttention.test_fp8_errors()
  local function t(shape, dt) return sf.tensor(shape, dt, CPU):fill(1) end
  local q, k = t({ 1, 20, 4, 8 }, "e4m3"), t({ 1, 20, 2, 8 }, "e4m3")
  local vt, one = t({ 1, 2, 8, 32 }, "e4m3"), t({ 1 }, "f32")
  local out = t({ 1, 20, 4, 8 }, "f16")
  local function args(over)
    return testlib.override({ q = q, k = k, vt = vt, q_scale = one, k_scale = one, v_scale = one, out = out }, over)
  end
  sf.ops.attention(args()) -- all well
  local mixed = "but 'q' is e4m3: FP8 attention takes e4m3 'q', 'k' and 'vt'"
  local cases = {
    { { q_scale = false }, "attention: 'q' is e4m3: it needs its 'q_scale', an f32 [1]" },
    { { k_scale = false }, "attention: 'k' is e4m3: it needs its 'k_scale', an f32 [1]" },
    { { v_scale = false }, "attention: 'vt' is e4m3: it needs its 'v_scale', an f32 [1]" },
    { { q_scale = t({ 4 }, "f32") }, "attention: 'q_scale' must be a contiguous f32 [1]" },
    { { k_scale = t({ 1, 1 }, "f32") }, "attention: 'k_scale' must be a contiguous f32 [1]" },
    { { v_scale = t({ 1 }, "f16") }, "attention: 'v_scale' has dtype f16 (expected f32)" },
    { { k = t({ 1, 20, 2, 8 }, "e5m2") }, "attention: 'k' is e5m2 " .. mixed },
    { { k = t({ 1, 20, 2, 8 }, "bf16") }, "attention: 'k' is bf16 " .. mixed },
    { { vt = t({ 1, 2, 8, 32 }, "e5m2") }, "attention: 'vt' is e5m2 " .. mixed },
    { { q = t({ 1, 20, 4, 8 }, "e5m2") }, "attention: 'q' has dtype e5m2 (expected f32, f16, bf16, f64, e4m3)" },
    { { vt = false }, "attention: e4m3 'q' and 'k' need 'vt', the e4m3 values as pack_vt writes them" },
    { { v = t({ 1, 20, 2, 8 }, "e4m3") },
      "attention: e4m3 'q' and 'k' take their values as 'vt' (pack_vt of the e4m3 v), not 'v'" },
    { { vt = t({ 1, 2, 8, 20 }, "e4m3") }, "attention: 'vt' has shape [1, 2, 8, 20] (expected [1, 2, 8, 32])" },
    { { vt = t({ 1, 2, 32, 8 }, "e4m3") }, "attention: 'vt' has shape [1, 2, 32, 8] (expected [1, 2, 8, 32])" },
    { { out = t({ 1, 20, 4, 8 }, "e4m3") }, "attention: 'out' has dtype e4m3 (expected f32, f16, bf16, f64)" },
  }
  for _, c in ipairs(cases) do lu.assertEquals(error_of(sf.ops.attention, args(c[1])), c[2]) end
  -- 16-bit inputs take no FP8 arguments
  local q16, k16, o16 = t({ 1, 20, 4, 8 }, "f16"), t({ 1, 20, 2, 8 }, "f16"), t({ 1, 20, 4, 8 }, "f16")
  local plain = { q = q16, k = k16, v = k16, out = o16 }
  lu.assertEquals(error_of(sf.ops.attention, testlib.override(testlib.override({}, plain), { q_scale = one })),
    "attention: 'q_scale' scales an FP8 'q'; 'q' is f16")
  lu.assertEquals(error_of(sf.ops.attention, testlib.override(testlib.override({}, plain), { v = false, vt = vt })),
    "attention: 'vt' holds e4m3 values for e4m3 'q' and 'k'; 'q' is f16: pass 'v'")
  lu.assertEquals(error_of(sf.ops.attention, testlib.override(testlib.override({}, plain), { v = false })),
    "attention: missing argument 'v'")
  lu.assertEquals(error_of(sf.ops.attention, testlib.override(testlib.override({}, plain), { round_p = true })),
    "attention: 'round_p' is the CPU reference's, with e4m3 inputs (here f16 on the CPU)")
  -- pack_vt
  lu.assertEquals(error_of(sf.ops.pack_vt, { v = t({ 1, 20, 2, 8 }, "f16"), out = vt }),
    "pack_vt: 'v' has dtype f16 (expected e4m3)")
  lu.assertEquals(error_of(sf.ops.pack_vt, { v = k, out = t({ 1, 2, 8, 20 }, "e4m3") }),
    "pack_vt: 'out' has shape [1, 2, 8, 20] (expected [1, 2, 8, 32])")
  local k16keys = t({ 1, 16, 2, 8 }, "e4m3")
  lu.assertEquals(error_of(sf.ops.pack_vt, { v = k16keys, out = k16keys:view({ 1, 2, 8, 16 }) }),
    "pack_vt: 'out' overlaps 'v': they must be separate memory")
end

return lu.LuaUnit.run()
