-- The decode projections' GEMV against the double-accumulation CPU reference GEMM, on fresh
-- random inputs (seed printed; seed=N replays), outputs poisoned with NaN: gemm impl gemv (with
-- the automatic split count and a random forced one) and impl fastest, for every m from 1 to 64
-- with random n and k (odd ones too, which take the element-by-element path), a bias, a
-- residual in place; then the SwiGLU FFN of a decode step, ffn impl gemv and fused, at T from 1
-- to 64. On the CPU backend the reference GEMM is checked against products summed here in Lua.
-- Usage: sfbench validate_gemv [seed=N] [dtype=f16,bf16] [quick=false]
-- (quick=true: 14 of the m values and two of the FFN's T, e.g. under compute-sanitizer)
local sf = require "sfbench"
local validate = require "sfbench.validate"

local gpu = sf.device().backend == "cuda"
local suite = validate.suite("validate_gemv", { dtype = { "f16", "bf16" }, quick = false })
local p, seed = suite.params, suite.seed
math.randomseed(seed)
local CPU = { device = "cpu" }

local n = 0
local function next_seed()
  n = n + 1
  return seed + 11 * n
end

-- n and k: mostly multiples of 8 (16-byte rows), every fourth odd
local function size(lo, hi)
  local v = math.random(lo, hi)
  if math.random(4) > 1 then v = (v + 7) // 8 * 8 end
  return v
end

if not gpu then
  -- the reference GEMM of a Linear layer against sums written out here
  for _ = 1, 6 do
    local m, nn, k = math.random(1, 9), math.random(1, 9), math.random(1, 17)
    local x = sf.randn({ m, k }, "f64", { seed = next_seed(), device = "cpu" })
    local w = sf.randn({ nn, k }, "f64", { seed = next_seed(), device = "cpu" })
    local out = validate.poison(sf.tensor({ m, nn }, "f64", CPU))
    sf.ops.gemm { a = x, b = w, c = out, transb = true, impl = "gemv" }
    local xt, wt, want = x:totable(), w:totable(), {}
    for i = 0, m - 1 do
      for j = 0, nn - 1 do
        local acc = 0
        for kk = 1, k do acc = acc + xt[i * k + kk] * wt[j * k + kk] end
        want[#want + 1] = acc
      end
    end
    suite.check({ what = "reference vs Lua sums", dtype = "f64", m = m, n = nn, k = k }, out,
      sf.from_table(want, { m, nn }, "f64", CPU))
  end
end

local ms, ffn_ts = {}, p.quick and { 1, 17 } or { 1, 3, 8, 16, 17, 64 }
if p.quick then
  ms = { 1, 2, 3, 4, 7, 8, 9, 16, 17, 31, 32, 33, 63, 64 }
else
  for m = 1, 64 do ms[m] = m end
end
for _, dtype in ipairs(gpu and p.dtype or {}) do
  for _, m in ipairs(ms) do
    local nn, k = size(1, 700), size(1, 3000)
    local x = sf.randn({ m, k }, dtype, { seed = next_seed() })
    local w = sf.randn({ nn, k }, dtype, { seed = next_seed(), std = 0.05 })
    local bias = m % 3 == 0 and sf.randn({ nn }, dtype, { seed = next_seed() }) or nil
    local residual = m % 2 == 0 and sf.randn({ m, nn }, dtype, { seed = next_seed() }) or nil
    local ref = residual and residual:to("cpu", "f64") or sf.tensor({ m, nn }, "f64", CPU)
    sf.ops.gemm { a = x:to("cpu", "f64"), b = w:to("cpu", "f64"), c = ref, transb = true, beta = residual and 1 or 0,
      bias = bias and bias:to("cpu", "f64") }
    local forced = math.random(2, 16)
    for _, run in ipairs({ { impl = "gemv", splits = 0 }, { impl = "gemv", splits = forced }, { impl = "fastest" } }) do
      -- the residual is added in place: c holds it before the call and the result after
      local c = residual and sf.tensor({ m, nn }, dtype):copy(residual) or validate.poison(sf.tensor({ m, nn }, dtype))
      local ran, used = sf.ops.gemm { a = x, b = w, c = c, transb = true, beta = residual and 1 or 0, bias = bias,
        impl = run.impl, splits = run.splits ~= 0 and run.splits or nil }
      suite.check({ what = "gemm " .. run.impl, dtype = dtype, m = m, n = nn, k = k, ran = ran, splits = used,
        extra = (bias and "bias " or "") .. (residual and "residual" or "") }, c, ref)
    end
  end
  -- a decode step's SwiGLU FFN: hidden and intermediate multiples of 64 (impl fused's GEMMs)
  for _, T in ipairs(ffn_ts) do
    local H, I = 64 * math.random(2, 12), 64 * math.random(3, 30)
    local x = sf.randn({ T, H }, dtype, { seed = next_seed() })
    local w1 = sf.randn({ I, H }, dtype, { seed = next_seed(), std = 0.05 })
    local w3 = sf.randn({ I, H }, dtype, { seed = next_seed(), std = 0.05 })
    local w2 = sf.randn({ H, I }, dtype, { seed = next_seed(), std = 0.05 })
    local w13 = sf.tensor({ 2 * I, H }, dtype)
    sf.ops.pack_gate_up { w1 = w1, w3 = w3, out = w13 }
    local residual = sf.randn({ T, H }, dtype, { seed = next_seed() })
    local ref = sf.tensor({ T, H }, "f64", CPU)
    sf.ops.ffn { x = x:to("cpu", "f64"), w1 = w1:to("cpu", "f64"), w3 = w3:to("cpu", "f64"), w2 = w2:to("cpu", "f64"),
      out = ref, residual = residual:to("cpu", "f64"), act = "swiglu" }
    for _, impl in ipairs(sf.device().hopper_kernels and { "gemv", "fused" } or { "gemv" }) do
      local out = validate.poison(sf.tensor({ T, H }, dtype))
      sf.ops.ffn { x = x, w1 = w1, w3 = w3, w2 = w2, w13 = w13, out = out, residual = residual, act = "swiglu", impl = impl }
      suite.check({ what = "ffn " .. impl, dtype = dtype, m = T, n = H, k = I, extra = "swiglu + residual" }, out, ref)
    end
  end
end

suite.finish({ "what", "dtype", "m", "n", "k", "ran", "splits", "extra" })
