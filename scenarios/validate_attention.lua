-- Every attention impl against the double-accumulation CPU reference, on fresh random inputs
-- (the seed is printed; seed=N replays a run), outputs poisoned with NaN before each call.
-- On the CPU backend the reference itself is checked against attention composed from GEMMs
-- and a softmax written here in Lua. Fails (non-zero exit) if any case is out of bounds.
-- Usage: sfbench validate_attention [seed=N] [impl=flash,flash2,hopper,naive]
-- (hopper is in the default list where the device runs it; it covers the head-dim-128 cases)
local sf = require "sfbench"
local params = require "sfbench.params"
local report = require "sfbench.report"
local validate = require "sfbench.validate"

local dev = sf.device()
local gpu = dev.backend == "cuda"
local p = params.get { seed = 0, impl = dev.hopper_kernels and { "flash", "flash2", "hopper", "naive" } or { "flash", "flash2", "naive" } }
local seed = p.seed ~= 0 and p.seed or validate.fresh_seed()
io.stderr:write(("validate_attention: seed %d\n"):format(seed))

-- {B, Nq, Nk, H, Hkv, D}; GPU shapes cover odd lengths, tile multiples, GQA (64/8) and MQA
local cases = gpu and {
  { 1, 1, 1, 4, 4, 128 }, { 2, 17, 17, 4, 2, 64 }, { 1, 1000, 1000, 8, 8, 128 }, { 1, 4097, 4097, 2, 1, 128 },
  { 1, 128, 128, 4, 4, 64 }, { 2, 256, 256, 8, 8, 128 }, { 1, 1024, 1024, 64, 8, 128 }, { 1, 512, 512, 16, 1, 64 },
  { 1, 17, 300, 4, 2, 128 },
} or {
  { 1, 1, 1, 2, 2, 64 }, { 2, 17, 17, 4, 2, 64 }, { 1, 33, 33, 4, 1, 128 }, { 1, 64, 64, 2, 2, 128 }, { 1, 9, 20, 2, 1, 64 },
}
local dtypes = gpu and { "f16", "bf16" } or { "f16", "bf16", "f32" }

local rows, failures, n = {}, 0, 0
local function add(row, r)
  row.rel_l2, row.max_abs, row.bound, row.ok = r.rel_l2, r.max_abs, r.bound, r.ok and "ok" or "FAIL"
  if not r.ok then failures = failures + 1 end
  rows[#rows + 1] = row
end

-- attention composed from GEMMs (per head) and a Lua softmax: an independent check of the reference
local function composed(q, k, v, causal, scale)
  local B, Nq, H, D = table.unpack(q:shape())
  local Nk, Hkv = k:size(2), k:size(3)
  local out = sf.zeros({ B, Nq, H, D }, "f64", { device = "cpu" })
  for b = 1, B do
    for h = 1, H do
      local kh = (h - 1) // (H // Hkv) + 1
      local qh = q:slice(1, b, 1):slice(3, h, 1):to("f64"):view({ Nq, D })
      local kk = k:slice(1, b, 1):slice(3, kh, 1):to("f64"):view({ Nk, D })
      local vv = v:slice(1, b, 1):slice(3, kh, 1):to("f64"):view({ Nk, D })
      local s = sf.tensor({ Nq, Nk }, "f64", { device = "cpu" })
      -- the op takes the scale as a float (as the kernels do): round it the same way
      sf.ops.gemm { a = qh, b = kk, c = s, transb = true, alpha = string.unpack("f", string.pack("f", scale)) }
      local sv = s:totable()
      for i = 0, Nq - 1 do
        local m, sum = -math.huge, 0
        for j = 0, Nk - 1 do
          if causal and j > i + (Nk - Nq) then sv[i * Nk + j + 1] = -math.huge end
          m = math.max(m, sv[i * Nk + j + 1])
        end
        for j = 0, Nk - 1 do
          local e = m == -math.huge and 0 or math.exp(sv[i * Nk + j + 1] - m)
          sv[i * Nk + j + 1] = e
          sum = sum + e
        end
        for j = 0, Nk - 1 do sv[i * Nk + j + 1] = sum > 0 and sv[i * Nk + j + 1] / sum or 0 end
      end
      local pm = sf.from_table(sv, { Nq, Nk }, "f64", { device = "cpu" })
      local oh = sf.tensor({ Nq, D }, "f64", { device = "cpu" })
      sf.ops.gemm { a = pm, b = vv, c = oh }
      out:slice(1, b, 1):slice(3, h, 1):copy(oh:view({ 1, Nq, 1, D }))
    end
  end
  return out
end

for _, dtype in ipairs(dtypes) do
  for _, c in ipairs(cases) do
    for _, causal in ipairs({ false, true }) do
      local B, Nq, Nk, H, Hkv, D = table.unpack(c)
      n = n + 1
      local s = seed + n * 3
      local q = sf.randn({ B, Nq, H, D }, dtype, { seed = s })
      local k = sf.randn({ B, Nk, Hkv, D }, dtype, { seed = s + 1 })
      local v = sf.randn({ B, Nk, Hkv, D }, dtype, { seed = s + 2 })
      local scale = 1 / math.sqrt(D)
      local shape = ("B%d Nq%d Nk%d H%d/%d D%d"):format(B, Nq, Nk, H, Hkv, D)
      -- the reference in f64 on the CPU, from the very same (rounded) inputs
      local ref = sf.tensor({ B, Nq, H, D }, "f64", { device = "cpu" })
      local ref_lse = sf.tensor({ B, H, Nq }, "f32", { device = "cpu" })
      sf.ops.attention { q = q:to("cpu", "f64"), k = k:to("cpu", "f64"), v = v:to("cpu", "f64"), out = ref,
        lse = ref_lse, causal = causal, scale = scale }
      if gpu then
        for _, impl in ipairs(p.impl) do
          if impl ~= "hopper" or D == 128 then -- the Hopper kernel is for head dim 128
            local out = validate.poison(sf.tensor({ B, Nq, H, D }, dtype))
            local lse = impl ~= "naive" and validate.poison(sf.tensor({ B, H, Nq }, "f32")) or nil
            sf.ops.attention { q = q, k = k, v = v, out = out, lse = lse, causal = causal, scale = scale, impl = impl }
            add({ impl = impl, dtype = dtype, shape = shape, causal = causal, what = "out" }, validate.check(out, ref))
            if lse then
              add({ impl = impl, dtype = dtype, shape = shape, causal = causal, what = "lse" },
                validate.check(lse, ref_lse, { bound = 1e-4 }))
            end
          end
        end
      else
        local out = validate.poison(sf.tensor({ B, Nq, H, D }, dtype))
        sf.ops.attention { q = q, k = k, v = v, out = out, causal = causal, scale = scale }
        add({ impl = "reference", dtype = dtype, shape = shape, causal = causal, what = "out" }, validate.check(out, ref))
        add({ impl = "reference", dtype = "f64", shape = shape, causal = causal, what = "vs composed" },
          validate.check(ref, composed(q, k, v, causal, scale)))
      end
    end
  end
end

report.print(rows, { "impl", "dtype", "shape", "causal", "what", { key = "rel_l2", fmt = "%.2e" },
  { key = "max_abs", fmt = "%.2e" }, { key = "bound", fmt = "%.1e" }, "ok" })
local path = report.save("validate_attention", { params = p, seed = seed, rows = rows, complete = true })
if not sf.quiet then print(("%d checks, %d failed, seed %d; results: %s"):format(#rows, failures, seed, path)) end
if failures > 0 then error(("%d attention check(s) out of bounds (seed %d)"):format(failures, seed), 0) end
