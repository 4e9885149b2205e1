-- The attention op on the CPU backend against attention worked out here in Lua, element by
-- element: the output and the logsumexp (an lse computed independently of the reference), the
-- default scale 1/sqrt(D), GQA's head mapping, and rows with no visible key (causal, more queries
-- than keys: output 0, lse -inf). Run inside sfbench (tests/run-lua.sh).
-- luacheck: allow defined top
local lu = require "luaunit"
local sf = require "sfbench"
local testlib = require "testlib"

local CPU = { device = "cpu" }

-- out[b][i][h][d] and lse[b][h][i] of softmax(scale·q·kᵀ [+ bottom-right causal mask])·v, from
-- nested tables q[b][i][h][d], k and v [b][j][hk][d]
local function attention(q, k, v, scale, causal)
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
          for d = 1, D do o[d] = o[d] + e * v[b][j][hk][d] end
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

return lu.LuaUnit.run()
