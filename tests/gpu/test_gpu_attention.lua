-- attention on the CUDA backend: what each impl accepts (impl-specific errors, raised before any
-- launch) and the impls against the CPU reference on strided views of a packed QKV buffer (the
-- layout a fused QKV projection writes), which validate_attention does not cover; the default
-- scale (1/sqrt(D)) on every impl, and rows with no visible key (causal, more queries than keys:
-- output exactly 0, lse -inf) on every impl. Fresh random
-- inputs (the seed is printed; SF_TEST_SEED=N replays it), outputs poisoned with NaN.
-- Run with --device cuda.
-- luacheck: allow defined top
local lu = require "luaunit"
local sf = require "sfbench"
local testlib = require "testlib"
local validate = require "sfbench.validate"
local error_of, contains = testlib.error_of, testlib.contains

local seed = tonumber(os.getenv("SF_TEST_SEED") or "") or validate.fresh_seed()
io.stderr:write(("test_gpu_attention: seed %d (SF_TEST_SEED=%d replays it)\n"):format(seed, seed))
local hopper = sf.device().hopper_kernels
local IMPLS = hopper and { "flash", "flash2", "hopper", "naive" } or { "flash", "flash2", "naive" }

local function qkv(B, N, H, Hkv, D, dtype)
  return sf.tensor({ B, N, H, D }, dtype), sf.tensor({ B, N, Hkv, D }, dtype), sf.tensor({ B, N, Hkv, D }, dtype),
    sf.tensor({ B, N, H, D }, dtype)
end

TestAttentionImpls = {}

function TestAttentionImpls.test_head_dims()
  local q, k, v, out = qkv(1, 4, 2, 2, 96, "f16")
  for _, impl in ipairs({ "flash", "flash2", "hopper" }) do
    contains(error_of(sf.ops.attention, { q = q, k = k, v = v, out = out, impl = impl }), "attention:", impl,
      "head dim")
  end
  sf.ops.attention { q = q, k = k, v = v, out = out, impl = "naive" } -- cuBLAS takes any head dim
  local q64, k64, v64, o64 = qkv(1, 4, 2, 2, 64, "f16")
  contains(error_of(sf.ops.attention, { q = q64, k = k64, v = v64, out = o64, impl = "hopper" }), "attention:",
    hopper and "impl 'hopper' supports head dim 128, got 64" or "impl 'hopper' needs a Hopper GPU")
end

function TestAttentionImpls.test_strides()
  -- a view whose row stride is not a multiple of 8 elements: the flash kernels' loads need it
  local wide = sf.tensor({ 1, 4, 2, 132 }, "f16")
  local q = wide:slice(4, 1, 128)
  local _, k, v, out = qkv(1, 4, 2, 2, 128, "f16")
  for _, impl in ipairs({ "flash", "flash2" }) do
    contains(error_of(sf.ops.attention, { q = q, k = k, v = v, out = out, impl = impl }), "attention:",
      "strides that are multiples of 8", "'q'")
  end
end

-- q, k and v as views into one [B, N, H + 2·Hkv, D] buffer
local function packed_case(B, N, H, Hkv, D, dtype, causal)
  local all = sf.randn({ B, N, H + 2 * Hkv, D }, dtype, { seed = seed + N + H })
  local q, k, v = all:slice(3, 1, H), all:slice(3, H + 1, Hkv), all:slice(3, H + Hkv + 1, Hkv)
  local ref = sf.tensor({ B, N, H, D }, "f64", { device = "cpu" })
  sf.ops.attention { q = q:to("cpu", "f64"), k = k:to("cpu", "f64"), v = v:to("cpu", "f64"), out = ref,
    causal = causal }
  for _, impl in ipairs(IMPLS) do
    if impl ~= "hopper" or D == 128 then
      local out = validate.poison(sf.tensor({ B, N, H, D }, dtype))
      sf.ops.attention { q = q, k = k, v = v, out = out, causal = causal, impl = impl }
      local r = validate.check(out, ref)
      lu.assertTrue(r.ok, ("%s B%d N%d H%d/%d D%d %s%s: %s"):format(impl, B, N, H, Hkv, D, dtype,
        causal and " causal" or "", validate.describe(r)))
    end
  end
end

function TestAttentionImpls.test_packed_qkv()
  packed_case(2, 300, 8, 2, 128, "f16", false)
  packed_case(1, 257, 4, 4, 128, "bf16", true)
  packed_case(2, 129, 4, 2, 64, "bf16", true)
end

-- the CPU's f64 attention over q, k and v, and its lse ([B, H, Nq] f32)
local function reference(q, k, v, causal, scale)
  local B, Nq, H, D = table.unpack(q:shape())
  local ref = sf.tensor({ B, Nq, H, D }, "f64", { device = "cpu" })
  local ref_lse = sf.tensor({ B, H, Nq }, "f32", { device = "cpu" })
  sf.ops.attention { q = q:to("cpu", "f64"), k = k:to("cpu", "f64"), v = v:to("cpu", "f64"), out = ref,
    lse = ref_lse, causal = causal, scale = scale }
  return ref, ref_lse
end

-- impl's output and lse (naive writes none), poisoned before the call, each against the
-- reference (what names the case in a failure); returns them
local function check_impl(impl, what, q, k, v, causal, ref, ref_lse)
  local B, Nq, H, D = table.unpack(q:shape())
  local out = validate.poison(sf.tensor({ B, Nq, H, D }, q:dtype()))
  local lse = impl ~= "naive" and validate.poison(sf.tensor({ B, H, Nq }, "f32")) or nil
  sf.ops.attention { q = q, k = k, v = v, out = out, lse = lse, causal = causal, impl = impl }
  local r = validate.check(out, ref)
  lu.assertTrue(r.ok, what .. ": " .. validate.describe(r))
  if lse then
    local l = validate.check_lse(lse, ref_lse, q:dtype())
    lu.assertTrue(l.ok, what .. (": lse, %d NaN, %d -inf mismatched, max_abs %g"):format(l.nan, l.mismatched, l.max_abs))
  end
  return out, lse
end

-- no scale given: each impl uses 1/sqrt(D), as the CPU reference given that scale explicitly
function TestAttentionImpls.test_default_scale()
  for _, D in ipairs({ 64, 128 }) do
    local q = sf.randn({ 1, 200, 4, D }, "f16", { seed = seed + D })
    local k = sf.randn({ 1, 200, 2, D }, "f16", { seed = seed + D + 1 })
    local v = sf.randn({ 1, 200, 2, D }, "f16", { seed = seed + D + 2 })
    local ref, ref_lse = reference(q, k, v, false, 1 / math.sqrt(D))
    for _, impl in ipairs(IMPLS) do
      if impl ~= "hopper" or D == 128 then
        check_impl(impl, ("%s D%d default scale"):format(impl, D), q, k, v, false, ref, ref_lse)
      end
    end
  end
end

-- causal, Nq > Nk (bottom-right aligned): the first Nq - Nk query rows see no key
function TestAttentionImpls.test_rows_with_no_visible_key()
  local Nq, Nk, H, D = 150, 70, 4, 128
  for _, dtype in ipairs({ "f16", "bf16" }) do
    local q = sf.randn({ 1, Nq, H, D }, dtype, { seed = seed + 5 })
    local k = sf.randn({ 1, Nk, 2, D }, dtype, { seed = seed + 6 })
    local v = sf.randn({ 1, Nk, 2, D }, dtype, { seed = seed + 7 })
    local ref, ref_lse = reference(q, k, v, true)
    local zeros = sf.zeros({ 1, Nq - Nk, H, D }, "f64", { device = "cpu" })
    for _, impl in ipairs(IMPLS) do
      local what = ("%s %s Nq%d Nk%d causal"):format(impl, dtype, Nq, Nk)
      local out, lse = check_impl(impl, what, q, k, v, true, ref, ref_lse)
      local empty = sf.compare(out:slice(2, 1, Nq - Nk), zeros)
      lu.assertEquals(empty.nan + empty.inf, 0, what .. ": rows with no key")
      lu.assertEquals(empty.max_abs, 0, what .. ": rows with no key are exactly 0")
      if lse then
        for h = 1, H do
          for i = 1, Nq - Nk do lu.assertEquals(lse:get(1, h, i), -math.huge, what .. " lse") end
        end
      end
    end
  end
end

-- The Hopper kernel runs one wave of CTAs, each taking work items (128 query rows of a head) in
-- turn: with three items a CTA or more, its K/V ring and Q run on from item to item, through
-- items with no tile to load (causal, Nq > Nk) and through the causal order's long and short ones.
function TestAttentionImpls.test_more_items_than_ctas()
  testlib.skip_unless_hopper()
  local H = 4 * math.ceil(sf.device().sm_count / 4) -- 3 blocks of rows a head: 3·H items
  for _, c in ipairs({ { 257, 257, false }, { 300, 100, true } }) do
    local Nq, Nk, causal = table.unpack(c)
    local q = sf.randn({ 1, Nq, H, 128 }, "f16", { seed = seed + Nk })
    local k = sf.randn({ 1, Nk, H / 4, 128 }, "f16", { seed = seed + Nk + 1 })
    local v = sf.randn({ 1, Nk, H / 4, 128 }, "f16", { seed = seed + Nk + 2 })
    local ref, ref_lse = reference(q, k, v, causal)
    check_impl("hopper", ("hopper Nq%d Nk%d H%d/%d%s"):format(Nq, Nk, H, H / 4, causal and " causal" or ""), q, k, v,
      causal, ref, ref_lse)
  end
end

return lu.LuaUnit.run()
