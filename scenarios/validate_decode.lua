-- decode_attention against attention's double-accumulation CPU reference, on fresh random inputs
-- (the seed is printed; seed=N replays a run), outputs and lse poisoned with NaN before each
-- call. Every case has lengths that differ across the batch (odd ones, the capacity's, one
-- shorter than Nq where Nq > 1); the cases cover contiguous and paged caches (pages handed out in
-- a random order among pages of noise: 8, 16, 64, 256 on the GPU, 16, 64, 256 in the small
-- cases), MHA, GQA (64/8 on the GPU), MQA, Nq 1, 4 and 8. The reference sees each
-- sequence's keys as one contiguous [1, len, Hkv, D] tensor, so the paging is checked too. On
-- the GPU every case runs with the automatic split count, with one split (no combine) and with
-- 7; on the CPU backend the op's own reference runs in each dtype and in f64.
-- Usage: sfbench validate_decode [seed=N] [quick=false]
-- (quick=true: the CPU backend's small cases on the GPU too, e.g. under compute-sanitizer)
local sf = require "sfbench"
local validate = require "sfbench.validate"

local dev = sf.device()
local gpu = dev.backend == "cuda"
local suite = validate.suite("validate_decode", { quick = false })
local seed = suite.seed

-- {B, Nq, H, Hkv, D, longest odd length, page size (nil: contiguous)}; a paged case has a
-- sequence for each of lengths_of's roles: B >= 2, and B >= 3 where Nq > 1
local cases = gpu and not suite.params.quick and {
  { 1, 1, 32, 32, 128, 4097 }, { 3, 1, 64, 8, 128, 1999, 16 }, { 4, 4, 64, 8, 128, 3001, 64 },
  { 3, 4, 8, 1, 64, 777, 256 }, { 5, 1, 16, 16, 64, 301 }, { 3, 8, 32, 8, 128, 515, 16 },
  { 2, 1, 64, 8, 128, 9001, 256 }, { 6, 4, 64, 8, 128, 1025 }, { 2, 1, 4, 2, 128, 33, 64 },
  { 3, 4, 16, 4, 128, 333, 8 },
} or {
  { 2, 1, 4, 2, 64, 37 }, { 3, 4, 8, 2, 64, 71, 16 }, { 2, 1, 8, 1, 128, 131, 64 }, { 3, 4, 4, 4, 64, 301, 256 },
  { 3, 8, 16, 2, 64, 45, 16 },
}
local dtypes = gpu and { "f16", "bf16" } or { "f16", "bf16", "f32" }
local split_counts = gpu and { 0, 1, 7 } or { 0 }

local n = 0
-- one row of the table: the case's fields and what was checked
local function row(case, what)
  local r = { what = what }
  for key, value in pairs(case) do r[key] = value end
  return r
end

-- lengths in 1..cap, differing: the first is `longest` (odd in every case), one is shorter than
-- Nq when Nq > 1 (its first queries see no key), one is the capacity cap (every key of a
-- contiguous cache, every page of a paged one's block table: the first where cap is longest,
-- else the next), the others random in 1..longest
local function lengths_of(B, Nq, longest, cap, s)
  local u = sf.rand({ B }, "f32", { seed = s, device = "cpu" }):totable()
  local len = {}
  for b = 1, B do len[b] = 1 + math.floor(u[b] * (longest - 1)) end
  len[1] = longest
  local slot = 2
  if B > 1 and Nq > 1 then len[2], slot = Nq // 2, 3 end
  if cap ~= longest then
    assert(slot <= B, "validate_decode: a case without a sequence for the capacity")
    len[slot] = cap
  end
  return len
end

-- the cache holding the logical keys x [B, cap, Hkv, D]: x itself, or a pool of pages of noise
-- in which each sequence's pages sit in a random order; returns k, block_table
local function cache_of(x, ps, s)
  if not ps then return x end
  local B, cap, Hkv, D = table.unpack(x:shape())
  local per_seq = cap // ps
  local n_pages = B * per_seq + 3
  local pool = sf.randn({ n_pages, ps, Hkv, D }, x:dtype(), { seed = s })
  local order = sf.rand({ n_pages }, "f32", { seed = s + 1, device = "cpu" }):totable()
  local perm = {}
  for i = 1, n_pages do perm[i] = i - 1 end
  table.sort(perm, function(a, b) return order[a + 1] < order[b + 1] or (order[a + 1] == order[b + 1] and a < b) end)
  local bt = {}
  for b = 1, B do
    for j = 1, per_seq do
      local page = perm[(b - 1) * per_seq + j]
      bt[#bt + 1] = page
      pool:slice(1, page + 1, 1):copy(x:slice(1, b, 1):slice(2, (j - 1) * ps + 1, ps))
    end
  end
  return pool, sf.from_table(bt, { B, per_seq }, "i32")
end

-- lse against the reference, where a query with no visible key must be -inf in both: those
-- entries are set to 0 in both before the comparison (an lse that is -inf elsewhere, or finite
-- there, still fails); bound holds for the whole tensor and for the largest difference relative
-- to the largest |lse|. No bound on the worst row: a row of lse is the Nq values of one head,
-- one value at Nq = 1, and an lse near zero (a few keys whose exp(score) sum to about 1) makes fp32's
-- rounding a large relative error (seed 909676115: 3e-8 on an lse of 0.001 failed f32's 1e-5)
local function check_lse(lse, ref, bound)
  local got, want = lse:to("cpu"):totable(), ref:totable()
  for i = 1, #want do
    if want[i] == -math.huge and got[i] == -math.huge then got[i], want[i] = 0, 0 end
  end
  local shape = ref:shape()
  return validate.check(sf.from_table(got, shape, "f32", { device = "cpu" }),
    sf.from_table(want, shape, "f32", { device = "cpu" }), { bound = bound, max_abs_bound = bound, row_bound = math.huge })
end

for _, dtype in ipairs(dtypes) do
  for _, c in ipairs(cases) do
    local B, Nq, H, Hkv, D, longest, ps = table.unpack(c)
    n = n + 1
    local s = seed + n * 7
    -- capacity: whole pages with one to spare, or the longest (odd) itself
    local cap = ps and ((longest + ps - 1) // ps + 1) * ps or longest
    local len = lengths_of(B, Nq, longest, cap, s)
    local q = sf.randn({ B, Nq, H, D }, dtype, { seed = s + 1 })
    local kx = sf.randn({ B, cap, Hkv, D }, dtype, { seed = s + 2 })
    local vx = sf.randn({ B, cap, Hkv, D }, dtype, { seed = s + 3 })
    local k, bt = cache_of(kx, ps, s + 4)
    local v = cache_of(vx, ps, s + 4)
    local seqlens = sf.from_table(len, { B }, "i32")
    local scale = 1 / math.sqrt(D)
    local shape = ("B%d Nq%d H%d/%d D%d len %d..%d"):format(B, Nq, H, Hkv, D, math.min(table.unpack(len)),
      math.max(table.unpack(len)))
    local layout = ps and ("paged %d"):format(ps) or "contiguous"

    -- the reference: attention (causal, bottom-right) of each sequence over its first len keys, in f64
    local ref = sf.tensor({ B, Nq, H, D }, "f64", { device = "cpu" })
    local ref_lse = sf.tensor({ B, H, Nq }, "f32", { device = "cpu" })
    local q64 = q:to("cpu", "f64")
    for b = 1, B do
      local kb = kx:slice(1, b, 1):slice(2, 1, len[b]):to("cpu", "f64")
      local vb = vx:slice(1, b, 1):slice(2, 1, len[b]):to("cpu", "f64")
      local ob = sf.tensor({ 1, Nq, H, D }, "f64", { device = "cpu" })
      local lb = sf.tensor({ 1, H, Nq }, "f32", { device = "cpu" })
      sf.ops.attention { q = q64:slice(1, b, 1), k = kb, v = vb, out = ob, lse = lb, causal = true, scale = scale }
      ref:slice(1, b, 1):copy(ob)
      ref_lse:slice(1, b, 1):copy(lb)
    end

    local function run(split_count, in_dtype)
      local qq, kk, vv = q, k, v
      if in_dtype ~= dtype then qq, kk, vv = q:to(in_dtype), k:to(in_dtype), v:to(in_dtype) end
      local out = validate.poison(sf.tensor({ B, Nq, H, D }, in_dtype))
      local lse = validate.poison(sf.tensor({ B, H, Nq }, "f32"))
      local used = sf.ops.decode_attention { q = qq, k = kk, v = vv, seqlens = seqlens, block_table = bt, out = out,
        lse = lse, scale = scale, splits = split_count }
      return out, lse, used
    end
    for _, split_count in ipairs(split_counts) do
      local out, lse, used = run(split_count, dtype)
      local case = { dtype = dtype, shape = shape, layout = layout, splits = used }
      suite.check(row(case, "out"), out, ref)
      suite.add(row(case, "lse"), check_lse(lse, ref_lse, 1e-4))
    end
    if not gpu then -- the reference itself, in f64, against attention's
      local out, lse, used = run(0, "f64")
      local case = { dtype = "f64", shape = shape, layout = layout, splits = used }
      suite.check(row(case, "out vs attention"), out, ref)
      suite.add(row(case, "lse vs attention"), check_lse(lse, ref_lse, 1e-6))
    end
  end
end

suite.finish({ "dtype", "shape", "layout", "splits", "what" })
