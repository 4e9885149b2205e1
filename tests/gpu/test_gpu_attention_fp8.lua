-- FP8 (e4m3) attention on the CUDA backend (run with --device cuda): our Hopper kernel against
-- the CPU backend's attention of the very same e4m3 tensors (the exact attention of their
-- dequantized values) and against the f64 attention of the 16-bit inputs they were quantized
-- from, on odd lengths, causal and not, rows with no visible key, GQA (64/8), packed QKV views and
-- both output dtypes; outputs and lse poisoned with NaN first. pack_vt on the GPU against the CPU's,
-- bit for bit; the calls the GPU cannot take refused before anything runs. Fresh random inputs
-- (the seed is printed; SF_TEST_SEED=N replays it).
--
-- Bounds (validate.fp8_bounds(n), n the e4m3 roundings on the path): against the dequantized
-- reference only P's rounding is left (S's products are exact, its fp32 sums and the 16-bit output
-- a few 2^-11 at most): n = 1. Against the 16-bit inputs, Q's, K's and V's roundings come on top:
-- n = 4, with validate.fp8_attention_bounds' wider worst row and max-abs. The lse sums P before its rounding: against the dequantized reference it is held to
-- validate.lse_bounds.e4m3.
-- luacheck: allow defined top
local lu = require "luaunit"
local sf = require "sfbench"
local testlib = require "testlib"
local validate = require "sfbench.validate"
local fp8 = require "sfbench.fp8"
local error_of = testlib.error_of

local seed = tonumber(os.getenv("SF_TEST_SEED") or "") or validate.fresh_seed()
io.stderr:write(("test_gpu_attention_fp8: seed %d (SF_TEST_SEED=%d replays it)\n"):format(seed, seed))
local dev = sf.device()
local CPU = { device = "cpu" }

local quantized, packed_vt = fp8.quantized, fp8.packed_vt

-- e4m3 operands on the GPU, each of its own 16-bit tensor, or (packed) views of one quantized
-- [B, N, H + 2·Hkv, D] buffer sharing its scale
local function operands(B, Nq, Nk, H, Hkv, D, dtype, s, packed)
  local o = {}
  if packed then
    o.all16 = sf.randn({ B, Nq, H + 2 * Hkv, D }, dtype, { seed = s })
    local all8, scale = quantized(o.all16)
    o.q16, o.k16, o.v16 = o.all16:slice(3, 1, H), o.all16:slice(3, H + 1, Hkv), o.all16:slice(3, H + Hkv + 1, Hkv)
    o.q8, o.k8 = all8:slice(3, 1, H), all8:slice(3, H + 1, Hkv)
    o.vt = packed_vt(all8:slice(3, H + Hkv + 1, Hkv))
    o.qs, o.ks, o.vs = scale, scale, scale
  else
    o.q16 = sf.randn({ B, Nq, H, D }, dtype, { seed = s })
    o.k16 = sf.randn({ B, Nk, Hkv, D }, dtype, { seed = s + 1 })
    o.v16 = sf.randn({ B, Nk, Hkv, D }, dtype, { seed = s + 2, std = 3 })
    o.q8, o.qs = quantized(o.q16)
    o.k8, o.ks = quantized(o.k16)
    local v8
    v8, o.vs = quantized(o.v16)
    o.vt = packed_vt(v8)
  end
  return o
end

local function fp8_args(o, over)
  return testlib.override({ q = o.q8, k = o.k8, vt = o.vt, q_scale = o.qs, k_scale = o.ks, v_scale = o.vs }, over)
end

TestAttentionFp8 = {}

-- what each GPU refuses, before anything runs
function TestAttentionFp8.test_errors()
  local o = operands(1, 40, 40, 4, 2, 128, "bf16", seed)
  local out = sf.tensor({ 1, 40, 4, 128 }, "bf16")
  local major, minor = dev.cc:match("^(%d+)%.(%d+)$")
  if tonumber(major) * 10 + tonumber(minor) < 89 then
    lu.assertEquals(error_of(sf.ops.attention, fp8_args(o, { out = out })),
      "attention: e4m3 inputs need a GPU with FP8 tensor cores (compute capability 8.9 or later), this one is " .. dev.cc)
    return
  end
  for _, impl in ipairs({ "flash2", "naive" }) do
    lu.assertEquals(error_of(sf.ops.attention, fp8_args(o, { out = out, impl = impl })), ("attention: impl '%s' takes "
      .. "f16 or bf16 inputs; e4m3 ones run on impl 'hopper' (or 'flash', which picks it)"):format(impl))
  end
  if not dev.hopper_kernels then
    lu.assertEquals(error_of(sf.ops.attention, fp8_args(o, { out = out })), "attention: e4m3 inputs run on our Hopper "
      .. "kernel alone: it needs a Hopper GPU (cc 9.0) and a build for sm_90a")
    return
  end
  local o64 = operands(1, 40, 40, 4, 2, 64, "bf16", seed)
  lu.assertEquals(error_of(sf.ops.attention, fp8_args(o64, { out = sf.tensor({ 1, 40, 4, 64 }, "bf16") })),
    "attention: e4m3 inputs run on our Hopper kernel, which supports head dim 128, got 64")
  -- rows of 136 bytes: the tensor maps take strides of whole 16 bytes
  local wide = quantized(sf.randn({ 1, 40, 4, 136 }, "bf16", { seed = seed }))
  lu.assertEquals(error_of(sf.ops.attention, fp8_args(o, { q = wide:slice(4, 1, 128), out = out })),
    "attention: e4m3 inputs need strides of 'q' that are multiples of 16 elements (dimension 3 is 136)")
  -- an e4m3 operand without its scale, on the GPU too
  lu.assertEquals(error_of(sf.ops.attention, fp8_args(o, { out = out, v_scale = false })),
    "attention: 'vt' is e4m3: it needs its 'v_scale', an f32 [1]")
end

-- pack_vt: the GPU's against the CPU's, bit for bit, of views too
function TestAttentionFp8.test_pack_vt_matches_the_cpu()
  for _, c in ipairs({ { 1, 1, 1, 128 }, { 2, 17, 2, 8 }, { 1, 300, 3, 128 }, { 2, 64, 8, 64 } }) do
    local B, N, Hkv, D = table.unpack(c)
    local all = quantized(sf.randn({ B, N, Hkv + 2, D }, "f32", { seed = seed + N }))
    local v8 = all:slice(3, 3, Hkv)
    testlib.assert_same(packed_vt(v8), packed_vt(v8:to("cpu")), ("B%d N%d Hkv%d D%d"):format(B, N, Hkv, D))
  end
end

-- {B, Nq, Nk, H, Hkv, packed}: odd lengths, one tile, GQA 64/8 and MQA, Nq > Nk (rows with no
-- visible key when causal), packed QKV views. GQA 64/8 at 512 is 256 work items (blocks of 128
-- query rows), more than one an SM: CTAs take several in turn.
local CASES = { { 1, 1, 1, 4, 4 }, { 2, 300, 300, 8, 2 }, { 1, 512, 512, 64, 8 }, { 1, 129, 129, 4, 1 },
  { 1, 17, 300, 4, 2 }, { 1, 300, 100, 4, 2 }, { 2, 257, 257, 4, 2, true } }

function TestAttentionFp8.test_against_the_references()
  testlib.skip_unless_hopper()
  local n = 0
  for _, c in ipairs(CASES) do
    for _, causal in ipairs({ false, true }) do
      for _, out_dtype in ipairs({ "f16", "bf16" }) do
        n = n + 1
        local B, Nq, Nk, H, Hkv, packed = table.unpack(c)
        if packed then Nk = Nq end
        local D = 128
        local o = operands(B, Nq, Nk, H, Hkv, D, out_dtype, seed + 10 * n, packed)
        local out = validate.poison(sf.tensor({ B, Nq, H, D }, out_dtype))
        local lse = validate.poison(sf.tensor({ B, H, Nq }, "f32"))
        sf.ops.attention(fp8_args(o, { out = out, lse = lse, causal = causal }))
        -- the CPU's attention of the same e4m3 tensors: the dequantized values' exact attention
        local refq = sf.tensor({ B, Nq, H, D }, "f64", CPU)
        local refq_lse = sf.tensor({ B, H, Nq }, "f32", CPU)
        sf.ops.attention { q = o.q8:to("cpu"), k = o.k8:to("cpu"), vt = o.vt:to("cpu"), q_scale = o.qs:to("cpu"),
          k_scale = o.ks:to("cpu"), v_scale = o.vs:to("cpu"), out = refq, lse = refq_lse, causal = causal }
        local ref16 = sf.tensor({ B, Nq, H, D }, "f64", CPU)
        sf.ops.attention { q = o.q16:to("cpu", "f64"), k = o.k16:to("cpu", "f64"), v = o.v16:to("cpu", "f64"),
          out = ref16, causal = causal }
        local what = ("B%d Nq%d Nk%d H%d/%d %s%s%s"):format(B, Nq, Nk, H, Hkv, out_dtype, causal and " causal" or "",
          packed and " packed" or "")
        local r = validate.check(out, refq, validate.fp8_bounds(1))
        lu.assertTrue(r.ok, what .. " vs the dequantized reference: " .. validate.describe(r))
        r = validate.check(out, ref16, validate.fp8_attention_bounds(4))
        lu.assertTrue(r.ok, what .. " vs the 16-bit inputs: " .. validate.describe(r))
        local l = validate.check_lse(lse, refq_lse, "e4m3")
        lu.assertTrue(l.ok, what .. (": lse, %d NaN, %d -inf mismatched, max_abs %g"):format(l.nan, l.mismatched,
          l.max_abs))
        if causal and Nq > Nk then
          local empty = sf.compare(out:slice(2, 1, Nq - Nk), sf.zeros({ B, Nq - Nk, H, D }, "f64", CPU))
          lu.assertEquals(empty.nan + empty.inf + empty.max_abs, 0, what .. ": rows with no key are exactly 0")
        end
      end
    end
  end
end

-- q_scale·k_scale not positive: NaN out and lse, as on the CPU
function TestAttentionFp8.test_scales_not_positive()
  testlib.skip_unless_hopper()
  local o = operands(1, 70, 70, 2, 2, 128, "f16", seed + 3)
  local qs = o.qs:to("cpu")
  qs:set(-qs:get(1), 1)
  local out, lse = sf.zeros({ 1, 70, 2, 128 }, "f16"), sf.zeros({ 1, 2, 70 }, "f32")
  sf.ops.attention(fp8_args(o, { q_scale = qs:to("cuda"), out = out, lse = lse }))
  lu.assertEquals(sf.compare(out, out).nan, out:numel())
  lu.assertEquals(sf.compare(lse, lse).nan, lse:numel())
end

return lu.LuaUnit.run()
