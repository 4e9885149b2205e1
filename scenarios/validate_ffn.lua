-- Every FFN impl against the double-accumulation CPU reference, on fresh random inputs (seed
-- printed; seed=N replays), outputs poisoned with NaN, odd token counts. On the CPU backend the
-- reference is checked against an FFN composed from GEMMs and activations written here in Lua.
-- Usage: sfbench validate_ffn [seed=N] [impl=unfused,fused] [quick=false]
-- (quick=true: the CPU backend's small shapes on the GPU too, e.g. under compute-sanitizer)
local sf = require "sfbench"
local validate = require "sfbench.validate"

local gpu = sf.device().backend == "cuda"
local suite = validate.suite("validate_ffn", { impl = { "unfused", "fused" }, quick = false })
local p, seed = suite.params, suite.seed

-- {T, H, I}: odd token counts, and one Llama-2-7B shape on the GPU
local shapes = gpu and not p.quick and { { 1, 512, 1408 }, { 17, 512, 1408 }, { 1000, 512, 1408 }, { 4097, 256, 704 }, { 64, 4096, 11008 } }
  or { { 1, 64, 128 }, { 17, 64, 128 }, { 33, 128, 192 } }  -- sizes the fused path takes (multiples of 64)
local variants = {
  { act = "swiglu" }, { act = "gelu", gelu = "tanh" }, { act = "gelu", gelu = "erf", bias = true },
}

-- tanh from exp (Lua 5.4's math library has none without its 5.3 compatibility option)
local function tanh(x)
  if math.abs(x) > 20 then return x > 0 and 1 or -1 end
  local e = math.exp(2 * x)
  return (e - 1) / (e + 1)
end

-- erf(x) = 2/sqrt(pi) · exp(-x²) · Σ 2^k x^(2k+1) / (1·3·…·(2k+1)) (Abramowitz and Stegun
-- 7.1.6), summed to double precision. Its terms all have x's sign, so the sum is good to a few
-- ulps whatever x; exp(-x²) adds x²·u at most (x² is rounded once), 36u at |x| = 6, beyond which
-- erf is ±1 in double. The plain Maclaurin series alternates, and its rounding error, u times the
-- sum of its terms' magnitudes, grows as u·exp(x²): 5e-12 at x = 4, a pre-activation of 5.7,
-- which the random GEMMs here reach now and then. That error, not the reference's, failed the
-- f64 check of gelu/erf (3.85e-12 against 1e-12 at seed 623557447).
local function erf(x)
  if math.abs(x) > 6 then return x > 0 and 1.0 or -1.0 end
  local sum, term, k = x, x, 0
  repeat
    k = k + 1
    term = term * 2 * x * x / (2 * k + 1)
    sum = sum + term
  until math.abs(term) < 1e-17 * math.abs(sum)
  return 2 / math.sqrt(math.pi) * math.exp(-x * x) * sum
end

local function gelu(x, form)
  if form == "erf" then return 0.5 * x * (1 + erf(x / math.sqrt(2))) end
  return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x ^ 3)))
end

-- the FFN composed from f64 GEMMs and Lua activations: an independent check of the reference
local function composed(x, w1, w2, w3, b1, b2, v)
  local T, I = x:size(1), w1:size(1)
  local function f64(t) return t and t:to("cpu", "f64") end
  local h1 = sf.tensor({ T, I }, "f64", { device = "cpu" })
  sf.ops.gemm { a = f64(x), b = f64(w1), c = h1, transb = true, bias = f64(b1) }
  local hv = h1:totable()
  if v.act == "swiglu" then
    local h3 = sf.tensor({ T, I }, "f64", { device = "cpu" })
    sf.ops.gemm { a = f64(x), b = f64(w3), c = h3, transb = true }
    local uv = h3:totable()
    for i, g in ipairs(hv) do hv[i] = g / (1 + math.exp(-g)) * uv[i] end
  else
    for i, g in ipairs(hv) do hv[i] = gelu(g, v.gelu) end
  end
  local out = sf.tensor({ T, x:size(2) }, "f64", { device = "cpu" })
  sf.ops.gemm { a = sf.from_table(hv, { T, I }, "f64", { device = "cpu" }), b = f64(w2), c = out, transb = true,
    bias = f64(b2) }
  return out
end

local n = 0
for _, dtype in ipairs(gpu and { "f16", "bf16" } or { "f16", "bf16", "f32" }) do
  for _, s in ipairs(shapes) do
    for _, v in ipairs(variants) do
      local T, H, I = table.unpack(s)
      n = n + 1
      local sd = seed + 10 * n
      local x = sf.randn({ T, H }, dtype, { seed = sd })
      local w1 = sf.randn({ I, H }, dtype, { seed = sd + 1, std = 1 / math.sqrt(H) })
      local w2 = sf.randn({ H, I }, dtype, { seed = sd + 2, std = 1 / math.sqrt(I) })
      local w3 = v.act == "swiglu" and sf.randn({ I, H }, dtype, { seed = sd + 3, std = 1 / math.sqrt(H) }) or nil
      local b1 = v.bias and sf.randn({ I }, dtype, { seed = sd + 4, std = 0.1 }) or nil
      local b2 = v.bias and sf.randn({ H }, dtype, { seed = sd + 5, std = 0.1 }) or nil
      local w13
      if w3 then
        w13 = sf.tensor({ 2 * I, H }, dtype)
        sf.ops.pack_gate_up { w1 = w1, w3 = w3, out = w13 }
      end
      local function cpu64(t) return t and t:to("cpu", "f64") end
      local ref = sf.tensor({ T, H }, "f64", { device = "cpu" })
      sf.ops.ffn { x = cpu64(x), w1 = cpu64(w1), w2 = cpu64(w2), w3 = cpu64(w3), b1 = cpu64(b1), b2 = cpu64(b2),
        out = ref, act = v.act, gelu = v.gelu }
      local name = v.act .. (v.gelu and ("/" .. v.gelu) or "") .. (v.bias and "+bias" or "")
      local shape = ("T%d H%d I%d"):format(T, H, I)
      for _, impl in ipairs(gpu and p.impl or { "reference" }) do
        local out = validate.poison(sf.tensor({ T, H }, dtype))
        sf.ops.ffn { x = x, w1 = w1, w2 = w2, w3 = w3, w13 = w13, b1 = b1, b2 = b2, out = out, act = v.act,
          gelu = v.gelu, impl = gpu and impl or nil }
        suite.check({ impl = impl, dtype = dtype, shape = shape, ffn = name, what = "out" }, out, ref)
      end
      -- f64 against f64, the two differing in summation order only (and erf's few ulps): each
      -- output is dot products of H then I terms, each good to γ_n = n·u/(1 - n·u) of its terms'
      -- magnitudes, 2.1e-14 at n = 192; validate's f64 bound, 1e-12, leaves a factor of 50 for
      -- rows whose sums cancel. Seen: under 1e-14.
      if not gpu then
        suite.check({ impl = "reference", dtype = "f64", shape = shape, ffn = name, what = "vs composed" }, ref,
          composed(x, w1, w2, w3, b1, b2, v))
      end
    end
  end
end

suite.finish({ "impl", "dtype", "shape", "ffn", "what" })
