-- The gemm op on the CUDA backend (cuBLASLt, and our Hopper GEMM through impl) against the CPU
-- reference in f64: dtypes, transposes, batches (with a broadcast operand), alpha/beta, bias and epilogues, leading
-- dimensions wider than the matrix, outputs poisoned with NaN before each call. Bounds are
-- validate.bounds' relative L2 errors (f32 with tf32 = false). Run with --device cuda.
-- luacheck: allow defined top
local lu = require "luaunit"
local sf = require "sfbench"
local testlib = require "testlib"
local error_of, contains, override = testlib.error_of, testlib.contains, testlib.override

local BOUND = { f32 = 1e-5, f16 = 2e-3, bf16 = 1.6e-2, f64 = 1e-12 }
local CPU = { device = "cpu" }

local seed = 1000
local function next_seed()
  seed = seed + 1
  return seed
end

local function randn(shape, dtype, std)
  return sf.randn(shape, dtype, { seed = next_seed(), std = std or 1 })
end

local function cpu64(t)
  return t:to("cpu", "f64")
end

-- Runs gemm{args} on the GPU and the same product on the CPU in f64, then checks the output.
-- c keeps its contents when beta ~= 0; otherwise it is poisoned with NaN first.
local function check_gemm(args, what, bound)
  local ref_args = {}
  for k, v in pairs(args) do ref_args[k] = v end
  ref_args.tf32, ref_args.stream = nil, nil
  ref_args.a, ref_args.b = cpu64(args.a), cpu64(args.b)
  if args.bias then ref_args.bias = cpu64(args.bias) end
  ref_args.c = cpu64(args.c)                      -- before the GPU call: beta reads it
  sf.ops.gemm(ref_args)
  if not args.beta or args.beta == 0 then args.c:fill(0 / 0) end
  -- a stream of sfbench's is non-blocking: nothing orders it against the default stream's fill
  -- and copies, so the fill is waited for before the product, and the product before c is read
  if args.stream then sf.sync() end
  sf.ops.gemm(args)
  if args.stream then args.stream:sync() end
  local r = sf.compare(args.c, ref_args.c)
  bound = bound or BOUND[args.c:dtype()]
  local detail = ("%s: rel_l2 %.3g (bound %.3g), max_abs %.3g, %d NaN, %d Inf"):format(what, r.rel_l2, bound,
    r.max_abs, r.nan, r.inf)
  lu.assertEquals(r.nan, 0, detail)
  lu.assertEquals(r.inf, 0, detail)
  lu.assertEquals(r.ref_nonfinite, 0, detail)
  lu.assertTrue(r.rel_l2 <= bound, detail)
  lu.assertTrue(r.ref_norm > 0, detail)
  return r
end

-- a [m, k] (or [k, m] when transa), b [k, n] (or [n, k] when transb)
local function operands(dt, m, n, k, transa, transb, batch)
  local function shape(r, c)
    if batch then return { batch, r, c } end
    return { r, c }
  end
  local a = randn(transa and shape(k, m) or shape(m, k), dt)
  local b = randn(transb and shape(n, k) or shape(k, n), dt)
  return a, b, sf.tensor(shape(m, n), dt)
end

-- ---------------------------------------------------------------------------------------------

TestGemm = {}

-- impl hopper (our wgmma GEMM) and fastest (it or cuBLASLt, timed once per shape): Linear-layer
-- products, odd row counts, beta 1 as the residual (the ADD epilogue), a bias, out distinct from c
function TestGemm.test_hopper_impl()
  if not sf.device().hopper_kernels then
    local a, b, c = operands("f16", 64, 64, 64, false, true)
    contains(error_of(sf.ops.gemm, { a = a, b = b, c = c, transb = true, impl = "hopper" }), "gemm:", "impl 'hopper'")
    return
  end
  for _, dt in ipairs({ "f16", "bf16" }) do
    for _, impl in ipairs({ "hopper", "fastest" }) do
      local a, b, c = operands(dt, 300, 192, 128, false, true)
      check_gemm({ a = a, b = b, c = c, transb = true, impl = impl }, dt .. " " .. impl)
      local a2, b2 = operands(dt, 129, 256, 192, false, true)
      check_gemm({ a = a2, b = b2, c = randn({ 129, 256 }, dt), transb = true, beta = 1, bias = randn({ 256 }, dt),
        impl = impl }, dt .. " " .. impl .. " beta 1 + bias")
      -- c read and written in place by the ADD epilogue, at widths whose tiles are 128, 176 or 256
      -- wide and with a partial last row block
      for _, s in ipairs({ { 1000, 1408, 128 }, { 17, 4160, 64 }, { 4097, 512, 64 } }) do
        local a4, b4 = operands(dt, s[1], s[2], s[3], false, true)
        check_gemm({ a = a4, b = b4, c = randn({ s[1], s[2] }, dt), transb = true, beta = 1, impl = impl },
          ("%s %s beta 1 in place %dx%dx%d"):format(dt, impl, s[1], s[2], s[3]))
      end
      -- out = a·bᵀ + c with c left as it was
      local c3 = randn({ 129, 256 }, dt)
      local before = cpu64(c3)
      local out = sf.tensor({ 129, 256 }, dt):fill(0 / 0)
      sf.ops.gemm { a = a2, b = b2, c = c3, out = out, beta = 1, transb = true, impl = impl }
      local ref = sf.tensor({ 129, 256 }, "f64", CPU)
      sf.ops.gemm { a = cpu64(a2), b = cpu64(b2), c = before, out = ref, beta = 1, transb = true }
      local r = sf.compare(out, ref)
      lu.assertTrue(r.nan == 0 and r.rel_l2 <= BOUND[dt], ("%s %s out=: rel_l2 %.3g, %d NaN"):format(dt, impl, r.rel_l2, r.nan))
      lu.assertEquals(sf.compare(c3, before).rel_l2, 0, "c was written")
    end
  end
  local a, b, c = operands("f16", 64, 64, 64, false, true)
  local function hopper_error(over)
    return error_of(sf.ops.gemm, override({ a = a, b = b, c = c, transb = true, impl = "hopper" }, over))
  end
  contains(hopper_error({ transb = false }), "gemm:", "impl 'hopper' takes a [m, k] and b [n, k]")
  contains(hopper_error({ alpha = 2 }), "impl 'hopper' takes alpha 1 and beta 0 or 1")
  contains(hopper_error({ epilogue = "relu" }), "impl 'hopper' has no relu or gelu epilogue")
  local a4, b4, c4 = operands("f16", 64, 96, 64, false, true)
  contains(hopper_error({ a = a4, b = b4, c = c4 }), "impl 'hopper' needs n and k that are multiples of 64")
  local x, y, z = operands("f32", 64, 64, 64, false, true)
  contains(hopper_error({ a = x, b = y, c = z }), "impl 'hopper' takes f16 or bf16")
  -- fastest falls back to cuBLASLt where hopper does not apply
  check_gemm({ a = a4, b = b4, c = c4, transb = true, impl = "fastest" }, "fastest, n = 96")
end

-- impl gemv (our split-K GEMV for m <= 64): every row-count class (1, 2 and 4 mma column tiles
-- and 8), a ragged last tile of w rows, k with a partial last step, odd k and strides (the
-- element-by-element path), forced and automatic splits, alpha/beta/bias/epilogues, the residual
-- added in place, a result that does not depend on the splits' timing, and fastest's pick
function TestGemm.test_gemv_impl()
  for _, dt in ipairs({ "f16", "bf16" }) do
    for _, m in ipairs({ 1, 5, 8, 9, 16, 23, 32, 33, sf.limits.gemv_rows }) do
      for _, splits in ipairs({ 0, 1, 3 }) do
        local a, b, c = operands(dt, m, 200, 1000, false, true)
        check_gemm({ a = a, b = b, c = c, transb = true, impl = "gemv", splits = splits },
          ("%s gemv m=%d n=200 k=1000 splits=%d"):format(dt, m, splits))
      end
      local a, b, c = operands(dt, m, 77, 333, false, true)
      check_gemm({ a = a, b = b, c = c, transb = true, impl = "gemv", splits = 2 }, ("%s gemv m=%d odd k"):format(dt, m))
    end
    -- strided rows: a view of every other column block (lda 2k), and an lda that breaks 16-byte rows
    local wide, w = randn({ 7, 2 * 512 }, dt), randn({ 96, 512 }, dt)
    check_gemm({ a = wide:slice(2, 1, 512), b = w, c = sf.tensor({ 7, 96 }, dt), transb = true, impl = "gemv" },
      dt .. " gemv strided a")
    local odd = randn({ 7, 515 }, dt)
    check_gemm({ a = odd:slice(2, 2, 512), b = w, c = sf.tensor({ 7, 96 }, dt), transb = true, impl = "gemv", splits = 2 },
      dt .. " gemv unaligned a")
    local a, b = operands(dt, 12, 130, 768, false, true)
    for _, epi in ipairs({ "none", "relu", "gelu" }) do
      check_gemm({ a = a, b = b, c = randn({ 12, 130 }, dt), transb = true, alpha = 0.5, beta = -1.5,
        bias = randn({ 130 }, dt), epilogue = epi, impl = "gemv", splits = 4 }, dt .. " gemv alpha/beta/bias " .. epi)
    end
    -- the residual in place: c read and written by the same call
    check_gemm({ a = a, b = b, c = randn({ 12, 130 }, dt), transb = true, beta = 1, impl = "gemv", splits = 3 },
      dt .. " gemv beta 1 in place")
    -- splits added in split order: two calls give the same bits
    local x, y = operands(dt, 4, 64, 4096, false, true)
    local c1, c2 = sf.tensor({ 4, 64 }, dt), sf.tensor({ 4, 64 }, dt):fill(0 / 0)
    local ran, n = sf.ops.gemm { a = x, b = y, c = c1, transb = true, impl = "gemv", splits = 16 }
    lu.assertEquals({ ran, n }, { "gemv", 16 })
    sf.ops.gemm { a = x, b = y, c = c2, transb = true, impl = "gemv", splits = 16 }
    lu.assertEquals(sf.compare(c2, c1).rel_l2, 0, dt .. " gemv deterministic")
    -- fastest at m <= 64: gemv or the GEMMs, and right either way
    local f1, f2 = operands(dt, 3, 1024, 2048, false, true)
    local fc = sf.tensor({ 3, 1024 }, dt)
    check_gemm({ a = f1, b = f2, c = fc, transb = true, impl = "fastest" }, dt .. " fastest m=3")
    ran = sf.ops.gemm { a = f1, b = f2, c = fc, transb = true, impl = "fastest" }
    lu.assertTrue(ran == "gemv" or ran == "cublaslt" or ran == "hopper", tostring(ran))
  end
  -- sf.limits.gemv_rows, what gemv_sweep checks m against, is the most rows the op takes
  local a, b, c = operands("f16", sf.limits.gemv_rows + 1, 64, 64, false, true)
  local function gemv_error(over)
    return error_of(sf.ops.gemm, override({ a = a, b = b, c = c, transb = true, impl = "gemv" }, over))
  end
  contains(gemv_error({}), "gemm:", "impl 'gemv' takes 1 to 64 rows of x")
  local a1, b1, c1 = operands("f16", 8, 64, 64, false, false)
  contains(gemv_error({ a = a1, b = b1, c = c1, transb = false }), "impl 'gemv' takes a [m, k] and b [n, k]")
  local x, y, z = operands("f32", 8, 64, 64, false, true)
  contains(gemv_error({ a = x, b = y, c = z }), "impl 'gemv' takes f16 or bf16")
  local x3, y3, z3 = operands("f16", 8, 64, 64, false, true, 2)
  contains(gemv_error({ a = x3, b = y3, c = z3 }), "impl 'gemv' takes 2-D a, b and c")
end

function TestGemm.test_dtypes_and_transposes()
  for _, dt in ipairs({ "f32", "f16", "bf16" }) do
    for _, tr in ipairs({ { false, false }, { true, false }, { false, true }, { true, true } }) do
      local a, b, c = operands(dt, 96, 80, 64, tr[1], tr[2])
      check_gemm({ a = a, b = b, c = c, transa = tr[1], transb = tr[2], tf32 = false },
        ("%s transa=%s transb=%s"):format(dt, tr[1], tr[2]))
    end
  end
end

function TestGemm.test_odd_sizes()
  for _, dt in ipairs({ "f32", "f16", "bf16" }) do
    for _, s in ipairs({ { 1, 1, 1 }, { 17, 33, 45 }, { 1, 64, 128 }, { 129, 1, 31 } }) do
      local a, b, c = operands(dt, s[1], s[2], s[3], false, true)
      check_gemm({ a = a, b = b, c = c, transb = true }, ("%s %dx%dx%d"):format(dt, s[1], s[2], s[3]))
    end
  end
end

function TestGemm.test_larger()
  for _, dt in ipairs({ "f32", "bf16" }) do
    local a, b, c = operands(dt, 256, 512, 384, false, true)
    check_gemm({ a = a, b = b, c = c, transb = true }, dt .. " 256x512x384")
  end
end

function TestGemm.test_f64_and_mixed_output()
  local a, b, c = operands("f64", 33, 17, 65)
  check_gemm({ a = a, b = b, c = c }, "f64")
  -- f16 and bf16 inputs may write an f32 output
  for _, dt in ipairs({ "f16", "bf16" }) do
    local x, y = randn({ 40, 24 }, dt), randn({ 24, 56 }, dt)
    check_gemm({ a = x, b = y, c = sf.tensor({ 40, 56 }, "f32") }, dt .. " -> f32", BOUND[dt])
  end
end

function TestGemm.test_exact_small()
  -- small integers are exact in every dtype and every accumulation
  for _, dt in ipairs({ "f32", "f16", "bf16", "f64" }) do
    local a = sf.from_table({ 1, 2, 3, 4, 5, 6 }, { 2, 3 }, dt)
    local b = sf.from_table({ 7, 8, 9, 10, 11, 12 }, { 3, 2 }, dt)
    local c = sf.tensor({ 2, 2 }, dt):fill(0 / 0)
    sf.ops.gemm { a = a, b = b, c = c }
    lu.assertEquals(c:totable(), { 58, 64, 139, 154 }, dt)
    c:fill(0 / 0)
    sf.ops.gemm { a = a, b = b, c = c, bias = sf.from_table({ -100, 10 }, { 2 }, dt), epilogue = "relu" }
    lu.assertEquals(c:totable(), { 0, 74, 39, 164 }, dt .. " bias relu")
  end
end

function TestGemm.test_alpha_beta()
  for _, dt in ipairs({ "f32", "f16", "bf16" }) do
    local a, b = randn({ 48, 32 }, dt), randn({ 32, 40 }, dt)
    local c = randn({ 48, 40 }, dt)
    check_gemm({ a = a, b = b, c = c, alpha = 0.5, beta = -1.5, tf32 = false }, dt .. " alpha/beta")
  end
end

function TestGemm.test_bias_and_epilogues()
  for _, dt in ipairs({ "f32", "f16", "bf16" }) do
    for _, epi in ipairs({ "none", "relu", "gelu" }) do
      local a, b, c = operands(dt, 64, 96, 80, false, true)
      local bias = randn({ 96 }, dt)
      check_gemm({ a = a, b = b, c = c, transb = true, bias = bias, epilogue = epi },
        ("%s bias + %s"):format(dt, epi))
      local a2, b2, c2 = operands(dt, 64, 96, 80)
      check_gemm({ a = a2, b = b2, c = c2, epilogue = epi }, ("%s %s, no bias"):format(dt, epi))
    end
  end
end

function TestGemm.test_batched()
  for _, dt in ipairs({ "f32", "f16", "bf16" }) do
    local a, b, c = operands(dt, 40, 24, 32, false, false, 3)
    check_gemm({ a = a, b = b, c = c }, dt .. " batch 3")
    a, b, c = operands(dt, 40, 24, 32, true, true, 4)
    check_gemm({ a = a, b = b, c = c, transa = true, transb = true }, dt .. " batch 4, transposed")
    -- a 2-D weight broadcast over the batch (batch stride 0), with a bias
    local x = randn({ 5, 16, 64 }, dt)
    local w = randn({ 48, 64 }, dt)
    local y = sf.tensor({ 5, 16, 48 }, dt)
    check_gemm({ a = x, b = w, c = y, transb = true, bias = randn({ 48 }, dt) }, dt .. " broadcast b")
    -- a 2-D a broadcast
    local a2 = randn({ 16, 24 }, dt)
    local b2 = randn({ 3, 24, 8 }, dt)
    check_gemm({ a = a2, b = b2, c = sf.tensor({ 3, 16, 8 }, dt) }, dt .. " broadcast a")
  end
end

function TestGemm.test_strided_leading_dimension()
  for _, dt in ipairs({ "f32", "f16", "bf16" }) do
    -- a, b and c are windows of wider tensors: row strides of 72, 40 and 104 elements
    local wa, wb = randn({ 32, 72 }, dt), randn({ 64, 40 }, dt)
    local wc = sf.tensor({ 32, 104 }, dt):fill(7)
    local a, b = wa:slice(2, 9, 64), wb:slice(2, 1, 24)
    local c = wc:slice(2, 17, 24)
    lu.assertEquals(a:strides(), { 72, 1 })
    lu.assertEquals(c:strides(), { 104, 1 })
    check_gemm({ a = a, b = b, c = c, tf32 = false }, dt .. " strided")
    -- nothing outside c's window was written
    local left, right = wc:slice(2, 1, 16), wc:slice(2, 41, 64)
    local rl = sf.compare(left, sf.tensor({ 32, 16 }, "f64", CPU):fill(7))
    local rr = sf.compare(right, sf.tensor({ 32, 64 }, "f64", CPU):fill(7))
    lu.assertEquals(rl.max_abs + rr.max_abs + rl.nan + rr.nan, 0, dt .. ": gemm wrote outside c")
    -- a row window of a batch, with a transposed a
    local big = randn({ 4, 64, 32 }, dt)
    local at = big:slice(1, 2, 2)                  -- batches 2..3: [2, 64, 32], contiguous
    local bb = randn({ 2, 64, 16 }, dt)
    check_gemm({ a = at, b = bb, c = sf.tensor({ 2, 32, 16 }, dt), transa = true }, dt .. " batch window")
  end
end

function TestGemm.test_tf32()
  local a, b, c = operands("f32", 128, 128, 256)
  check_gemm({ a = a, b = b, c = c, tf32 = true }, "f32 tf32", 1e-3)
end

function TestGemm.test_streams_and_repeat()
  -- the same shape again reuses its plan; on a stream too
  local s = sf.stream()
  local a, b, c = operands("bf16", 64, 64, 64)
  for _ = 1, 3 do check_gemm({ a = a, b = b, c = c, stream = s }, "bf16 on a stream") end
end

-- ---------------------------------------------------------------------------------------------

TestGemmErrors = {}

function TestGemmErrors.test_mixed_devices()
  local a = sf.tensor({ 2, 3 })
  local b = sf.tensor({ 3, 2 }, "f32", CPU)
  local c = sf.tensor({ 2, 2 })
  contains(error_of(sf.ops.gemm, { a = a, b = b, c = c }), "gemm:", "'b' is on cpu", "'a' is on cuda", "one device")
  contains(error_of(sf.ops.gemm, { a = a, b = sf.tensor({ 3, 2 }), c = c, bias = sf.tensor({ 2 }, "f32", CPU) }),
    "'bias' is on cpu")
end

function TestGemmErrors.test_errors_leave_no_sticky_state()
  local a, b, c = sf.tensor({ 2, 3 }), sf.tensor({ 4, 2 }), sf.tensor({ 2, 2 })
  contains(error_of(sf.ops.gemm, { a = a, b = b, c = c }), "inner dimensions differ")
  contains(error_of(sf.ops.gemm, { a = a, b = sf.tensor({ 3, 2 }, "f16"), c = c }), "'a' is f32 but 'b' is f16")
  contains(error_of(sf.ops.gemm, { a = sf.tensor({ 2, 3 }, "i32"), b = b, c = c }), "dtype i32")
  -- and the next GEMM is right
  local x, y, z = operands("f16", 32, 32, 32)
  check_gemm({ a = x, b = y, c = z }, "f16 after errors")
end

return lu.LuaUnit.run()
