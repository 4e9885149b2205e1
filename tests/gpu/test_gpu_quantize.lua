-- FP8 on the CUDA backend (run with --device cuda; tests/run-lua.sh skips it without a GPU):
-- e4m3/e5m2 conversions, quantize and dequantize (per tensor and per row, every input dtype) and
-- pack_gate_up of every element size, each against the same call on the CPU backend, bit for
-- bit: both divide in f32 and round once, to nearest even, saturating (kernels/quantize.h).
-- And gemm of e4m3/e5m2 operands through cuBLASLt against the CPU backend's gemm of the same
-- tensors, within bounds worked out below, and the calls cuBLASLt's FP8 GEMM cannot take refused
-- before anything runs; the same on our Hopper GEMM (its scales per tensor, per row or one of
-- each), linear_rope's e4m3 projection and the FP8 SwiGLU FFN (h quantized per token, and per
-- tensor, calibrated or with its scale fixed ahead).
-- luacheck: allow defined top
local lu = require "luaunit"
local sf = require "sfbench"
local testlib = require "testlib"
local contains = testlib.contains
local validate = require "sfbench.validate"

local CPU = { device = "cpu" }

-- random values over a wide range: normal draws times powers of two, and the edges of both formats
local function values(n, seed)
  local x = sf.randn({ n }, "f64", { seed = seed, device = "cpu" }):totable()
  local s = sf.rand({ n }, "f64", { seed = seed + 1, low = -20, high = 20, device = "cpu" }):totable()
  for i = 1, n do x[i] = x[i] * 2 ^ math.floor(s[i]) end
  local edges = { 448, 464, 465, -480, 57344, 61440, 2 ^ -9, 2 ^ -10, 2 ^ -16, 2 ^ -17, 0, 1 / 0, -1 / 0 }
  for i, v in ipairs(edges) do x[i] = v end
  return x
end

function test_conversions_match_the_cpu()
  local x = values(4096, 11)
  for _, dt in ipairs({ "e4m3", "e5m2" }) do
    for _, from in ipairs({ "f64", "f32", "f16", "bf16" }) do
      local cpu = sf.from_table(x, { #x }, from, CPU)
      local gpu = sf.from_table(x, { #x }, from)
      testlib.assert_same(gpu:to(dt), cpu:to(dt), ("%s to %s"):format(from, dt))
      -- and back: every fp8 value is exact in the wider dtypes
      testlib.assert_same(gpu:to(dt):to("f32"), cpu:to(dt):to("f32"), ("%s to %s and back"):format(from, dt))
    end
  end
end

function test_quantize_and_dequantize_match_the_cpu()
  for _, xdt in ipairs({ "f32", "f16", "bf16" }) do
    for _, dt in ipairs({ "e4m3", "e5m2" }) do
      for _, per_row in ipairs({ false, true }) do
        local shape, sshape = { 37, 300 }, { per_row and 37 or 1 }
        local x = sf.randn(shape, xdt, { seed = 5 })
        local what = ("%s to %s, %s"):format(xdt, dt, per_row and "per row" or "per tensor")
        local q, s = sf.tensor(shape, dt), sf.tensor(sshape, "f32")
        local qc, sc = sf.tensor(shape, dt, CPU), sf.tensor(sshape, "f32", CPU)
        sf.ops.quantize { x = x, out = q, scale = s }
        sf.ops.quantize { x = x:to("cpu"), out = qc, scale = sc }
        testlib.assert_same(s, sc, what .. ": scale")
        testlib.assert_same(q, qc, what .. ": values")
        local back, backc = sf.tensor(shape, xdt):fill(0 / 0), sf.tensor(shape, xdt, CPU)
        sf.ops.dequantize { x = q, scale = s, out = back }
        sf.ops.dequantize { x = qc, scale = sc, out = backc }
        testlib.assert_same(back, backc, what .. ": dequantized")
        -- with the scale fixed (static quantization): 3/4 of the amax's, so that the largest
        -- values saturate; GPU and CPU read the same scale and write the same bits
        local fv = sc:totable()
        for i = 1, #fv do fv[i] = fv[i] * 0.75 end
        local fixed = sf.from_table(fv, sshape, "f32")
        sf.ops.quantize { x = x, out = q, scale = fixed, fixed_scale = true }
        sf.ops.quantize { x = x:to("cpu"), out = qc, scale = fixed:to("cpu"), fixed_scale = true }
        testlib.assert_same(fixed, sf.from_table(fv, sshape, "f32", CPU), what .. ", fixed scale: the scale kept")
        testlib.assert_same(q, qc, what .. ", fixed scale: values")
      end
    end
  end
end

-- a strided x (a slice of wider rows) and a 3-D one with a per-row scale of its two leading dims
function test_quantize_strided_and_3d()
  local wide = sf.randn({ 16, 96 }, "bf16", { seed = 9 })
  local q, s = sf.tensor({ 16, 64 }, "e4m3"), sf.tensor({ 16 }, "f32")
  sf.ops.quantize { x = wide:slice(2, 17, 64), out = q, scale = s }
  local qc, sc = sf.tensor({ 16, 64 }, "e4m3", CPU), sf.tensor({ 16 }, "f32", CPU)
  sf.ops.quantize { x = wide:to("cpu"):slice(2, 17, 64), out = qc, scale = sc }
  testlib.assert_same(q, qc, "a slice")
  testlib.assert_same(s, sc, "a slice's scales")
  local x3 = sf.randn({ 3, 5, 40 }, "f16", { seed = 10 })
  local q3, s3 = sf.tensor({ 3, 5, 40 }, "e5m2"), sf.tensor({ 3, 5 }, "f32")
  local q3c, s3c = sf.tensor({ 3, 5, 40 }, "e5m2", CPU), sf.tensor({ 3, 5 }, "f32", CPU)
  sf.ops.quantize { x = x3, out = q3, scale = s3 }
  sf.ops.quantize { x = x3:to("cpu"), out = q3c, scale = s3c }
  testlib.assert_same(q3, q3c, "3-D")
  testlib.assert_same(s3, s3c, "3-D scales")
end

-- pack_gate_up moves rows of any element size: 1, 2, 4 and 8 bytes, aligned rows and not
function test_pack_gate_up_of_every_element_size()
  for _, dt in ipairs({ "e4m3", "f16", "f32", "f64" }) do
    for _, H in ipairs({ 64, 3 }) do
      local w1, w3 = sf.randn({ 16, H }, dt, { seed = 1 }), sf.randn({ 16, H }, dt, { seed = 2 })
      local out, outc = sf.tensor({ 32, H }, dt):fill(0 / 0), sf.tensor({ 32, H }, dt, CPU)
      sf.ops.pack_gate_up { w1 = w1, w3 = w3, out = out }
      sf.ops.pack_gate_up { w1 = w1:to("cpu"), w3 = w3:to("cpu"), out = outc }
      testlib.assert_same(out, outc, ("%s, H = %d"):format(dt, H))
    end
  end
end

-- FP8 GEMM. The CPU reference adds the exact products of the fp8 values (times their scales) in
-- double and rounds once, so the GPU's difference is its accumulation and the rounding of its
-- output. The rounding moves each element by at most u of the output's dtype, relative (bf16 2^-8,
-- f16 2^-11, f32 2^-24), so the whole by at most u in relative L2. The accumulation: Hopper's FP8
-- tensor cores keep about 14 bits of a running sum (DeepSeek-V3's report measured it), and
-- cuBLASLt moves the sums into f32 every few k blocks, or with fast_accum never. k products of
-- random sign, each sum rounded to 2^-14 of its size, err as a random walk by 2^-14·sqrt(k/6) of
-- the result (uniform rounding errors, partial sums growing as sqrt(j)); the bound takes 2^-13
-- (a bit less kept than reported) over the whole k, fast_accum or not: 1.6e-3 at k = 1024. A
-- scale off by a factor of 2 errs by 50%, per-row scales on the wrong rows (of rows 1 to 8 times
-- as large) by more: 90 times the largest bound (bf16's, 5.5e-3). The worst row (64 sums: its norm and error stray from the
-- whole's by tens of percent) is held to twice the bound. Hopper's accumulation errs unevenly
-- over the elements, so the largest error of one element, against the largest |ref|, is held to
-- four times the bound: on an H100 it reached 3.5 times the whole's relative L2 (f32, fast_accum).
local U = { bf16 = 2 ^ -8, f16 = 2 ^ -11, f32 = 2 ^ -24 }
local M, N, K = 40, 64, 1024           -- m need not be a multiple of 16; k and n must

-- validate.check's bounds for an FP8 product of inner dimension k written in cdt (above)
local function product_bounds(cdt, k)
  local bound = U[cdt] + 2 ^ -13 * math.sqrt(k / 6)
  return { bound = bound, row_bound = 2 * bound, max_abs_bound = 4 * bound }
end

-- N(0, 1) draws of `shape` quantized on the GPU to dt, per row of the last two dims' rows or per tensor
local function quantized(shape, dt, per_row, seed)
  local x = sf.randn(shape, "f32", { seed = seed })
  local q, s = sf.tensor(shape, dt), sf.tensor({ per_row and shape[#shape - 1] or 1 }, "f32")
  sf.ops.quantize { x = x, out = q, scale = s }
  return q, s
end

-- gemm{args} on the GPU (its output poisoned first, unless beta reads it) against the CPU
-- backend's gemm of the same tensors into f32 (cpu_over: arguments of the CPU call replaced);
-- returns validate.check's result under the bound of the output's dtype
local function fp8_check(args, cpu_over)
  local cpu = { transb = args.transb, transa = args.transa, alpha = args.alpha, beta = args.beta, epilogue = args.epilogue,
    a = args.a:to("cpu"), b = args.b:to("cpu"), a_scale = args.a_scale:to("cpu"), b_scale = args.b_scale:to("cpu"),
    c = args.c:to("cpu", "f32"), bias = args.bias and args.bias:to("cpu", "f32") }
  local out = args.out or args.c
  if args.out then cpu.out = sf.tensor(args.out:shape(), "f32", CPU) end
  for key, v in pairs(cpu_over or {}) do cpu[key] = v end
  sf.ops.gemm(cpu)
  if args.out or (args.beta or 0) == 0 then validate.poison(out) end
  sf.ops.gemm(args)
  return validate.check(out, cpu.out or cpu.c, product_bounds(out:dtype(), args.a:size(args.a:ndim())))
end

local function assert_fp8(args, what)
  local r = fp8_check(args)
  lu.assertTrue(r.ok, what .. ": " .. validate.describe(r))
end

-- every pair cuBLASLt takes, per tensor and per row, each output dtype, fast_accum off and on, on
-- one shape: the plan cache must tell these calls apart (a plan of another scale mode or
-- accumulation reused would scale wrongly or accumulate otherwise)
function test_fp8_gemm_matches_the_cpu()
  for _, pair in ipairs({ { "e4m3", "e4m3" }, { "e4m3", "e5m2" }, { "e5m2", "e4m3" } }) do
    for _, per_row in ipairs({ false, true }) do
      local qa, sa = quantized({ M, K }, pair[1], per_row, 21)
      local qb, sb = quantized({ N, K }, pair[2], per_row, 22)
      for _, cdt in ipairs({ "bf16", "f16", "f32" }) do
        for _, fast in ipairs({ false, true }) do
          assert_fp8({ a = qa, b = qb, c = sf.tensor({ M, N }, cdt), transb = true, a_scale = sa, b_scale = sb,
            fast_accum = fast }, ("%s·%s %s → %s%s"):format(pair[1], pair[2], per_row and "per row" or "per tensor", cdt,
            fast and ", fast_accum" or ""))
        end
      end
    end
  end
end

-- a bias and an epilogue, beta reading c into a separate out, and a batch of three a's against
-- one broadcast b
function test_fp8_gemm_bias_beta_and_batch()
  local qa, sa = quantized({ M, K }, "e4m3", true, 23)
  local qb, sb = quantized({ N, K }, "e4m3", true, 24)
  for _, cdt in ipairs({ "bf16", "f16" }) do
    assert_fp8({ a = qa, b = qb, c = sf.tensor({ M, N }, cdt), transb = true, a_scale = sa, b_scale = sb,
      bias = sf.randn({ N }, cdt, { seed = 25 }), epilogue = "gelu" }, cdt .. " bias, gelu")
  end
  for _, cdt in ipairs({ "bf16", "f32" }) do
    assert_fp8({ a = qa, b = qb, c = sf.randn({ M, N }, cdt, { seed = 26, std = 30 }), out = sf.tensor({ M, N }, cdt),
      transb = true, a_scale = sa, b_scale = sb, beta = 0.5, alpha = 2 }, cdt .. " alpha 2, beta 0.5 into out")
  end
  local qa3, sa3 = quantized({ 3, M, K }, "e4m3", false, 27)
  local qb1, sb1 = quantized({ N, K }, "e5m2", false, 28)
  assert_fp8({ a = qa3, b = qb1, c = sf.tensor({ 3, M, N }, "bf16"), transb = true, a_scale = sa3, b_scale = sb1 },
    "a batch of 3, b broadcast")
end

-- the check can fail: b's scales doubled, or in the wrong order, each far out of bounds
function test_fp8_gemm_wrong_scales_fail()
  local qa, sa = quantized({ M, K }, "e4m3", true, 29)
  local qb, sb = quantized({ N, K }, "e4m3", true, 30)
  local sbv, spread, doubled, reversed = sb:totable(), {}, {}, {}
  for i = 1, N do spread[i] = sbv[i] * 2 ^ ((i - 1) % 4) end     -- rows of b 1, 2, 4 and 8 times as large
  for i = 1, N do doubled[i], reversed[i] = 2 * spread[i], spread[N + 1 - i] end
  local args = { a = qa, b = qb, c = sf.tensor({ M, N }, "bf16"), transb = true, a_scale = sa,
    b_scale = sf.from_table(spread, { N }, "f32") }
  lu.assertTrue(fp8_check(args).ok, "the right scales")
  for what, wrong in pairs({ doubled = doubled, reversed = reversed }) do
    local r = fp8_check(args, { b_scale = sf.from_table(wrong, { N }, "f32", CPU) })
    lu.assertFalse(r.ok, "b_scale " .. what .. ": " .. validate.describe(r))
    lu.assertTrue(r.rel_l2 > 0.4, "b_scale " .. what .. ": " .. validate.describe(r))
  end
end

-- our Hopper GEMM on e4m3 (impl hopper, and fastest's pick between it and cuBLASLt): per tensor
-- and per row, f16 and bf16 out, m not a multiple of the 128-row tile, k = 192 (its second
-- 128-wide k tile half past k, zero-filled), n past a tile width, a bias, the residual added
-- (beta 1) in place and into a separate out. Its accumulation is cuBLASLt's fast_accum's (wgmma
-- keeps the sums over all of k), under the same bound.
function test_fp8_gemm_hopper()
  testlib.skip_unless_hopper()
  for _, per_row in ipairs({ false, true }) do
    -- 2048 × 2304: at least 72 units of work for 66 clusters of 2, so CTAs go on to a second
    -- tile (the persistent loop: its stage phases and epilogue buffers carried over)
    for _, shape in ipairs({ { M, N, K }, { 300, 384, 192 }, { 129, 1408, 512 }, { 2048, 2304, 128 } }) do
      local m, n, k = shape[1], shape[2], shape[3]
      local qa, sa = quantized({ m, k }, "e4m3", per_row, 42)
      local qb, sb = quantized({ n, k }, "e4m3", per_row, 43)
      for _, cdt in ipairs({ "bf16", "f16" }) do
        local what = ("e4m3 %dx%dx%d %s → %s"):format(m, n, k, per_row and "per row" or "per tensor", cdt)
        local base = { a = qa, b = qb, transb = true, a_scale = sa, b_scale = sb, fast_accum = true }
        for _, impl in ipairs({ "hopper", "fastest" }) do
          assert_fp8(testlib.override(base, { c = sf.tensor({ m, n }, cdt), impl = impl }), what .. " " .. impl)
        end
        assert_fp8(testlib.override(base, { c = sf.randn({ m, n }, cdt, { seed = 44, std = 30 }), beta = 1,
          bias = sf.randn({ n }, cdt, { seed = 45 }), impl = "hopper" }), what .. ", bias, c added in place")
        assert_fp8(testlib.override(base, { c = sf.randn({ m, n }, cdt, { seed = 46, std = 30 }), beta = 1,
          out = sf.tensor({ m, n }, cdt), impl = "hopper" }), what .. ", c added into out")
      end
    end
  end
  -- a strided a (its rows 32 elements apart past k: the tensor map's width is k, not the stride),
  -- k = 64 (one tile, half past k), and one row of a with a [1] scale beside b's per-row scales (a
  -- decode step's product), which cuBLASLt's outer-vector scaling refuses
  local wide, swide = quantized({ 129, 1024 + 32 }, "e4m3", true, 47)
  local qb, sb = quantized({ 256, 1024 }, "e4m3", true, 48)
  assert_fp8({ a = wide:slice(2, 1, 1024), b = qb, c = sf.tensor({ 129, 256 }, "bf16"), transb = true, a_scale = swide,
    b_scale = sb, fast_accum = true, impl = "hopper" }, "e4m3 a with rows 1056 apart")
  local qa64, sa64 = quantized({ 200, 64 }, "e4m3", false, 49)
  local qb64, sb64 = quantized({ 128, 64 }, "e4m3", false, 50)
  assert_fp8({ a = qa64, b = qb64, c = sf.tensor({ 200, 128 }, "f16"), transb = true, a_scale = sa64, b_scale = sb64,
    fast_accum = true, impl = "hopper" }, "e4m3 k = 64")
  local q1, s1 = quantized({ 1, 1024 }, "e4m3", false, 51)
  assert_fp8({ a = q1, b = qb, c = sf.tensor({ 1, 256 }, "bf16"), transb = true, a_scale = s1, b_scale = sb,
    fast_accum = true, impl = "hopper" }, "e4m3 m = 1, a_scale [1], b_scale [n]")
  -- one operand's scale per tensor, the other's per row, at m past one tile (an FP8 FFN's down
  -- projection of h quantized with a fixed scale), which cuBLASLt's outer-vector scaling refuses
  local qa, sa = quantized({ 300, 1024 }, "e4m3", true, 54)
  local qt, st = quantized({ 300, 1024 }, "e4m3", false, 55)
  local qbt, sbt = quantized({ 256, 1024 }, "e4m3", false, 56)
  assert_fp8({ a = qt, b = qb, c = sf.tensor({ 300, 256 }, "bf16"), transb = true, a_scale = st, b_scale = sb,
    fast_accum = true, impl = "hopper" }, "e4m3 a_scale [1], b_scale [n]")
  assert_fp8({ a = qa, b = qbt, c = sf.tensor({ 300, 256 }, "f16"), transb = true, a_scale = sa, b_scale = sbt,
    fast_accum = true, impl = "hopper" }, "e4m3 a_scale [m], b_scale [1]")
end

-- the check fails our Hopper GEMM too: per-row scales of b spread over 1 to 8 times, right and
-- then in the wrong order on the CPU's side, each far out of bounds
function test_fp8_gemm_hopper_wrong_scales_fail()
  testlib.skip_unless_hopper()
  local qa, sa = quantized({ 300, 512 }, "e4m3", true, 52)
  local qb, sb = quantized({ 384, 512 }, "e4m3", true, 53)
  local sbv, spread, reversed = sb:totable(), {}, {}
  for i = 1, 384 do spread[i] = sbv[i] * 2 ^ ((i - 1) % 4) end
  for i = 1, 384 do reversed[i] = spread[385 - i] end
  local args = { a = qa, b = qb, c = sf.tensor({ 300, 384 }, "bf16"), transb = true, a_scale = sa,
    b_scale = sf.from_table(spread, { 384 }, "f32"), fast_accum = true, impl = "hopper" }
  lu.assertTrue(fp8_check(args).ok, "the right scales")
  local r = fp8_check(args, { b_scale = sf.from_table(reversed, { 384 }, "f32", CPU) })
  lu.assertFalse(r.ok, "b_scale reversed: " .. validate.describe(r))
  lu.assertTrue(r.rel_l2 > 0.4, "b_scale reversed: " .. validate.describe(r))
end

-- linear_rope with e4m3 x and w (an FP8 layer's QKV projection with RoPE on q and k): cuBLASLt's
-- FP8 GEMM then the rope kernel (unfused), RoPE on our Hopper GEMM's scaled accumulators (fused),
-- and fastest's pick, against the CPU's reference of the same e4m3 tensors, under the FP8
-- product's bound (the rotation's fp32 error is far below it); then the check fails the fused
-- form against w_scale reversed on the CPU's side
function test_fp8_linear_rope()
  local B, Nt, Ht, D, K, rope_heads = 2, 37, 3, 128, 512, 2
  local impls = sf.device().hopper_kernels and { "unfused", "fused", "fastest" } or { "unfused" }
  for _, per_row in ipairs({ false, true }) do
    local qx, sx = quantized({ B * Nt, K }, "e4m3", per_row, 61)
    local qw, sw = quantized({ Ht * D, K }, "e4m3", per_row, 62)
    for _, odt in ipairs({ "bf16", "f16" }) do
      local args = { x = qx:to("cpu"), w = qw:to("cpu"), x_scale = sx:to("cpu"), w_scale = sw:to("cpu"),
        out = sf.tensor({ B, Nt, Ht, D }, "f32", CPU), rope_heads = rope_heads, pos_offset = 3 }
      sf.ops.linear_rope(args)
      for _, impl in ipairs(impls) do
        local out = sf.tensor({ B, Nt, Ht, D }, odt)
        validate.poison(out)
        sf.ops.linear_rope { x = qx, w = qw, x_scale = sx, w_scale = sw, out = out, rope_heads = rope_heads,
          pos_offset = 3, impl = impl }
        local r = validate.check(out, args.out, product_bounds(odt, K))
        lu.assertTrue(r.ok, ("e4m3 linear_rope %s %s %s: %s"):format(per_row and "per row" or "per tensor", odt, impl,
          validate.describe(r)))
      end
    end
  end
  -- one token (a decode step's projection): x_scale [1] beside w_scale [heads·D]
  local qx1, sx1 = quantized({ 1, K }, "e4m3", false, 67)
  local qw1, sw1 = quantized({ Ht * D, K }, "e4m3", true, 68)
  local ref1 = sf.tensor({ 1, 1, Ht, D }, "f32", CPU)
  sf.ops.linear_rope { x = qx1:to("cpu"), w = qw1:to("cpu"), x_scale = sx1:to("cpu"), w_scale = sw1:to("cpu"), out = ref1,
    rope_heads = rope_heads, pos_offset = 4095 }
  for _, impl in ipairs(impls) do
    local out = sf.tensor({ 1, 1, Ht, D }, "bf16")
    validate.poison(out)
    sf.ops.linear_rope { x = qx1, w = qw1, x_scale = sx1, w_scale = sw1, out = out, rope_heads = rope_heads,
      pos_offset = 4095, impl = impl }
    local r = validate.check(out, ref1, product_bounds("bf16", K))
    lu.assertTrue(r.ok, ("e4m3 linear_rope one token %s: %s"):format(impl, validate.describe(r)))
  end
  if not sf.device().hopper_kernels then
    local qx, sx = quantized({ 64, K }, "e4m3", false, 63)
    local qw, sw = quantized({ 256, K }, "e4m3", false, 64)
    contains(testlib.error_of(sf.ops.linear_rope, { x = qx, w = qw, x_scale = sx, w_scale = sw,
      out = sf.tensor({ 1, 64, 2, 128 }, "bf16"), rope_heads = 2, impl = "fused" }), "impl 'fused' needs")
    return
  end
  local qx, sx = quantized({ 64, K }, "e4m3", true, 65)
  local qw, sw = quantized({ 256, K }, "e4m3", true, 66)
  local swv, spread, reversed = sw:totable(), {}, {}
  for i = 1, 256 do spread[i] = swv[i] * 2 ^ ((i - 1) % 4) end
  for i = 1, 256 do reversed[i] = spread[257 - i] end
  local out = sf.tensor({ 1, 64, 2, 128 }, "bf16")
  local call = { x = qx, w = qw, x_scale = sx, w_scale = sf.from_table(spread, { 256 }, "f32"), out = out, rope_heads = 2,
    impl = "fused" }
  local function check(w_scale)
    local ref = sf.tensor({ 1, 64, 2, 128 }, "f32", CPU)
    sf.ops.linear_rope { x = qx:to("cpu"), w = qw:to("cpu"), x_scale = sx:to("cpu"), w_scale = w_scale, out = ref,
      rope_heads = 2 }
    validate.poison(out)
    sf.ops.linear_rope(call)
    return validate.check(out, ref, product_bounds("bf16", K))
  end
  lu.assertTrue(check(sf.from_table(spread, { 256 }, "f32", CPU)).ok, "the right scales")
  local r = check(sf.from_table(reversed, { 256 }, "f32", CPU))
  lu.assertFalse(r.ok, "w_scale reversed: " .. validate.describe(r))
  lu.assertTrue(r.rel_l2 > 0.4, "w_scale reversed: " .. validate.describe(r))
end

-- the FP8 SwiGLU FFN, fused on our Hopper GEMM (SwiGLU in the first GEMM's epilogue, h quantized
-- per token, the residual in the down projection's epilogue) and unfused on cuBLASLt, against the
-- CPU's reference of the same e4m3 tensors, which quantizes h the same way. The GPU's h (fp32
-- accumulation, rounded to its dtype) and the CPU's (double) can fall on either side of an e4m3
-- rounding boundary, so the outputs may differ by up to one more e4m3 rounding of h:
-- validate.fp8_bounds(1), 0.0375 in relative L2. The gate and up weights' scales are spread over
-- 1 to 8 times by blocks of 8 rows (row i times 2^(i // 8 % 4): the interleave's blocks), so
-- that a scale read from the wrong block errs by far more (w2's too, beside a 1/sqrt(fan-in)
-- that keeps h within f16);
-- the residual is half the output's rms, so that losing it errs by far more. Each is shown: the
-- residual left out of the CPU's reference, w13_scale not interleaved, and w2_scale 1 to 8 times
-- too large on the CPU's side all fail the check.
function test_fp8_ffn()
  local H, I = 256, 704
  -- s times f, row i of it times 2^(i // 8 % 4) besides
  local function spread(s, f)
    local v = s:totable()
    for i = 1, #v do v[i] = v[i] * f * 2 ^ ((i - 1) // 8 % 4) end
    return sf.from_table(v, { #v }, "f32")
  end
  -- N(0, 1) draws quantized, then scaled by 1/sqrt(fan-in) as a layer's weights are (N(0, 1)
  -- weights would overflow f16 in h: silu(g)·u reaches 1e5)
  local q1, s1 = quantized({ I, H }, "e4m3", true, 71)
  local q3, s3 = quantized({ I, H }, "e4m3", true, 72)
  local q2, s2 = quantized({ H, I }, "e4m3", true, 73)
  s1, s3 = spread(s1, 1 / math.sqrt(H)), spread(s3, 1 / math.sqrt(H))
  s2 = spread(s2, 1 / math.sqrt(I))
  local q13, s13 = sf.tensor({ 2 * I, H }, "e4m3"), sf.tensor({ 2 * I }, "f32")
  sf.ops.pack_gate_up { w1 = q1, w3 = q3, out = q13 }
  sf.ops.pack_gate_up { w1 = s1:view({ I, 1 }), w3 = s3:view({ I, 1 }), out = s13:view({ 2 * I, 1 }) }
  local function gpu_args(qx, sx, out, impl, residual)
    return { x = qx, x_scale = sx, w1 = q1, w3 = q3, w2 = q2, w13 = q13, w1_scale = s1, w3_scale = s3, w2_scale = s2,
      w13_scale = s13, act = "swiglu", out = out, residual = residual, impl = impl }
  end
  -- the CPU's reference of the same call; over: arguments replaced
  local function reference(qx, sx, odt, residual, over)
    local args = { x = qx:to("cpu"), x_scale = sx:to("cpu"), w1 = q1:to("cpu"), w3 = q3:to("cpu"), w2 = q2:to("cpu"),
      w1_scale = s1:to("cpu"), w3_scale = s3:to("cpu"), w2_scale = s2:to("cpu"), act = "swiglu",
      out = sf.tensor({ qx:size(1), H }, odt, CPU), residual = residual and residual:to("cpu") }
    sf.ops.ffn(testlib.override(args, over))
    return args.out
  end
  local impls = { "unfused" }
  if sf.device().hopper_kernels then
    impls[2] = "fused"
  else
    local qx, sx = quantized({ 8, H }, "e4m3", true, 74)
    contains(testlib.error_of(sf.ops.ffn, gpu_args(qx, sx, sf.tensor({ 8, H }, "bf16"), "fused")), "impl 'fused' needs")
  end
  local bounds = validate.fp8_bounds(1)
  local function run(qx, sx, odt, impl, residual)
    local out = sf.tensor({ qx:size(1), H }, odt)
    validate.poison(out)
    sf.ops.ffn(gpu_args(qx, sx, out, impl, residual))
    return out
  end
  for _, T in ipairs({ 1, 37, 300 }) do
    local qx, sx = quantized({ T, H }, "e4m3", true, 75 + T)
    for _, odt in ipairs({ "bf16", "f16" }) do
      local ref = reference(qx, sx, odt)
      local rms = sf.compare(sf.zeros({ T, H }, "f32", CPU), ref).ref_norm / math.sqrt(T * H)
      local residual = sf.randn({ T, H }, odt, { seed = 76, std = rms / 2 })
      local ref_res = reference(qx, sx, odt, residual)
      for _, impl in ipairs(impls) do
        local what = ("e4m3 ffn %s T=%d %s"):format(impl, T, odt)
        local r = validate.check(run(qx, sx, odt, impl), ref, bounds)
        lu.assertTrue(r.ok, what .. ": " .. validate.describe(r))
        local out = run(qx, sx, odt, impl, residual)
        r = validate.check(out, ref_res, bounds)
        lu.assertTrue(r.ok, what .. " + residual: " .. validate.describe(r))
        r = validate.check(out, ref, bounds)
        lu.assertFalse(r.ok, what .. " + residual against the reference without it: " .. validate.describe(r))
      end
    end
  end
  local qx, sx = quantized({ 64, H }, "e4m3", true, 77)
  local ref = reference(qx, sx, "bf16")
  local r = validate.check(run(qx, sx, "bf16", impls[#impls]), reference(qx, sx, "bf16", nil,
    { w2_scale = spread(s2, 1):to("cpu") }), bounds)
  lu.assertFalse(r.ok, "w2_scale 1 to 8 times too large on the CPU's side: " .. validate.describe(r))
  if sf.device().hopper_kernels then
    local flat = sf.tensor({ 2 * I }, "f32")             -- w1's scales, then w3's: not interleaved
    flat:slice(1, 1, I):copy(s1)
    flat:slice(1, I + 1, I):copy(s3)
    local out = sf.tensor({ 64, H }, "bf16")
    validate.poison(out)
    local args = gpu_args(qx, sx, out, "fused")
    args.w13_scale = flat
    sf.ops.ffn(args)
    r = validate.check(out, ref, bounds)
    lu.assertFalse(r.ok, "w13_scale not interleaved: " .. validate.describe(r))
  end
end

-- the fused FP8 FFN with h quantized per tensor (h_scale): calibrating (h in 16 bits, its scale
-- written from its amax, as the CPU writes it to within the 16-bit rounding of h and the GEMM's
-- error), then with that scale fixed (h written in e4m3 by the gate/up GEMM's epilogue) and with
-- half of it (h's largest values saturate), each against the CPU's reference of the same call;
-- then the check fails a fixed scale the CPU's side takes a quarter as large, where h saturates
-- past a quarter of its amax. (A scale off by a factor that saturates nothing is no error: h is
-- divided by it and multiplied back, and e4m3 keeps 3 bits at any exponent.) The shapes take
-- each tile width the e4m3 output has (choose_tile_n's pick on 132 SMs): T = 1 and 300 at
-- I = 704 take 128 (h's output boxes of 16 columns), T = 1500 at I = 1024 takes 224 (boxes of
-- 112), at I = 1344 256 (boxes of 128, swizzled); 300 and 1500 end in a partial row tile.
local function fp8_ffn_h_scale_case(T, I)
  local H = 256
  local q1, s1 = quantized({ I, H }, "e4m3", true, 81)
  local q3, s3 = quantized({ I, H }, "e4m3", true, 82)
  local q2, s2 = quantized({ H, I }, "e4m3", true, 83)
  -- scaled by 1/sqrt(fan-in), as a layer's weights are
  local function times(s, f)
    local v = s:totable()
    for i = 1, #v do v[i] = v[i] * f end
    return sf.from_table(v, { #v }, "f32")
  end
  s1, s3, s2 = times(s1, 1 / math.sqrt(H)), times(s3, 1 / math.sqrt(H)), times(s2, 1 / math.sqrt(I))
  local q13, s13 = sf.tensor({ 2 * I, H }, "e4m3"), sf.tensor({ 2 * I }, "f32")
  sf.ops.pack_gate_up { w1 = q1, w3 = q3, out = q13 }
  sf.ops.pack_gate_up { w1 = s1:view({ I, 1 }), w3 = s3:view({ I, 1 }), out = s13:view({ 2 * I, 1 }) }
  local bounds = validate.fp8_bounds(1)
  do
    local qx, sx = quantized({ T, H }, "e4m3", true, 84 + T)
    for _, odt in ipairs({ "bf16", "f16" }) do
      local what = ("e4m3 ffn T=%d I=%d %s"):format(T, I, odt)
      local function gpu(hs, calibrate)
        local out = sf.tensor({ T, H }, odt)
        validate.poison(out)
        sf.ops.ffn { x = qx, x_scale = sx, w1 = q1, w3 = q3, w2 = q2, w13 = q13, w2_scale = s2, w13_scale = s13,
          act = "swiglu", out = out, impl = "fused", h_scale = hs, calibrate = calibrate }
        return out
      end
      local function cpu(hs, calibrate)
        local out = sf.tensor({ T, H }, odt, CPU)
        sf.ops.ffn { x = qx:to("cpu"), x_scale = sx:to("cpu"), w1 = q1:to("cpu"), w3 = q3:to("cpu"), w2 = q2:to("cpu"),
          w1_scale = s1:to("cpu"), w3_scale = s3:to("cpu"), w2_scale = s2:to("cpu"), act = "swiglu", out = out,
          h_scale = hs, calibrate = calibrate }
        return out
      end
      local hs_gpu, hs_cpu = sf.tensor({ 1 }, "f32"), sf.tensor({ 1 }, "f32", CPU)
      local out, ref = gpu(hs_gpu, true), cpu(hs_cpu, true)
      local r = validate.check(out, ref, bounds)
      lu.assertTrue(r.ok, what .. " calibrating: " .. validate.describe(r))
      local got, want = hs_gpu:totable()[1], hs_cpu:totable()[1]
      lu.assertTrue(math.abs(got - want) <= 2 ^ -6 * want, ("%s: h_scale %g, the CPU's %g"):format(what, got, want))
      for _, f in ipairs({ 1, 0.5 }) do
        local fixed = sf.from_table({ want * f }, { 1 }, "f32")
        r = validate.check(gpu(fixed), cpu(fixed:to("cpu")), bounds)
        lu.assertTrue(r.ok, ("%s, h_scale fixed at %g of the calibrated: %s"):format(what, f, validate.describe(r)))
      end
      r = validate.check(gpu(sf.from_table({ want }, { 1 }, "f32")), cpu(sf.from_table({ want / 4 }, { 1 }, "f32", CPU)),
        bounds)
      lu.assertFalse(r.ok, what .. ", h_scale a quarter as large on the CPU's side: " .. validate.describe(r))
    end
  end
end

function test_fp8_ffn_h_scale()
  testlib.skip_unless_hopper()
  for _, c in ipairs({ { 1, 704 }, { 300, 704 }, { 1500, 1024 }, { 1500, 1344 } }) do fp8_ffn_h_scale_case(c[1], c[2]) end
end

-- what cuBLASLt's FP8 GEMM cannot take, refused by name before anything runs: c keeps its NaN
function test_fp8_gemm_errors()
  local qa, sa = quantized({ M, K }, "e4m3", false, 31)
  local qb, sb = quantized({ N, K }, "e4m3", false, 32)
  local qa5, sa5 = quantized({ M, K }, "e5m2", false, 33)
  local qb5, sb5 = quantized({ N, K }, "e5m2", false, 34)
  local sa_rows, sb_rows = sf.tensor({ M }, "f32"):fill(0.01), sf.tensor({ N }, "f32"):fill(0.01)
  local c = sf.tensor({ M, N }, "bf16")
  local function call(over)
    c:fill(0 / 0)
    local msg = testlib.error_of(sf.ops.gemm, testlib.override({ a = qa, b = qb, c = c, transb = true, a_scale = sa,
      b_scale = sb }, over))
    lu.assertEquals(sf.compare(c, c).nan, M * N, "c was written: " .. tostring(msg))
    return msg
  end
  local lt = "e4m3/e5m2 inputs on the GPU: cuBLASLt's FP8 GEMM "
  contains(call { a = qa5, b = qb5, a_scale = sa5, b_scale = sb5 }, "gemm", lt, "not e5m2·e5m2")
  contains(call { transb = false, b = quantized({ K, N }, "e4m3", false, 35) }, lt, "transb = true, transa = false")
  contains(call { transa = true, a = quantized({ K, M }, "e4m3", false, 36) }, lt, "the TN layout")
  contains(call { a_scale = sa_rows }, lt, "per-row scales for both 'a' and 'b'")
  contains(call { b_scale = sb_rows }, lt, "per-row scales for both 'a' and 'b'")
  local qa3 = quantized({ 2, M, K }, "e4m3", false, 37)
  contains(call { a = qa3, c = sf.tensor({ 2, M, N }, "bf16"), a_scale = sa_rows, b_scale = sb_rows },
    lt, "per-row scales only for a 2-D product")
  contains(call { a = quantized({ M, 40 }, "e4m3", false, 38), b = quantized({ N, 40 }, "e4m3", false, 39) }, lt,
    "k and n that are multiples of 16")
  contains(call { b = quantized({ 24, K }, "e4m3", false, 40), c = sf.tensor({ M, 24 }, "bf16") }, lt,
    "k and n that are multiples of 16")
  local wide = quantized({ M, K + 8 }, "e4m3", false, 41)
  contains(call { a = wide:slice(2, 1, K) }, lt, "16-byte aligned rows and batches of 'a' and 'b'")
  contains(call { c = sf.tensor({ M, N }, "f32"), bias = sf.tensor({ N }, "f32") }, lt, "a bias only with an f16 or bf16 'c'")
  contains(call { impl = "gemv" }, "impl 'gemv' takes a, b and c of one dtype")
  if not sf.device().hopper_kernels then             -- not a Hopper GPU, or not built for one
    contains(call { impl = "hopper" }, "impl 'hopper' needs")
    return
  end
  -- and what our Hopper GEMM cannot take
  local hopper = "impl 'hopper' "
  contains(call { impl = "hopper" }, hopper, "accumulates as cuBLASLt's fast accumulation does: pass fast_accum = true")
  contains(call { impl = "hopper", fast_accum = true, a = qa5, b = qb5, a_scale = sa5, b_scale = sb5 }, hopper,
    "or e4m3 a and b with an f16 or bf16 c")
  contains(call { impl = "hopper", fast_accum = true, c = sf.tensor({ M, N }, "f32") }, hopper,
    "or e4m3 a and b with an f16 or bf16 c")
  contains(call { impl = "hopper", fast_accum = true, c = sf.tensor({ M, N + 4 }, "bf16"):slice(2, 1, N) }, hopper,
    "16-byte aligned rows of its output")
  contains(call { impl = "fastest", a_scale = sa_rows }, lt, "per-row scales for both 'a' and 'b'", "and our Hopper GEMM",
    "pass fast_accum = true")
end

return lu.LuaUnit.run()
