-- Built-in ops on the CPU backend: the registry (sf.op_list, sf.ops.NAME, sf.op), gemm against
-- products computed by hand, every argument check, sf.compare's metrics, and the device, timing
-- and compile bindings as the CPU backend provides them. Run inside sfbench (tests/run-lua.sh).
-- luacheck: allow defined top
local lu = require "luaunit"
local sf = require "sfbench"
local testlib = require "testlib"
local error_of, contains, override = testlib.error_of, testlib.contains, testlib.override

local function gemm_error(args)
  return error_of(sf.ops.gemm, args)
end

local function assert_close(got, want, tol, what)
  lu.assertEquals(#got, #want, what)
  for i = 1, #want do
    if not (math.abs(got[i] - want[i]) <= tol * (1 + math.abs(want[i]))) then
      lu.fail(("%s: element %d is %.17g, expected %.17g"):format(what or "values", i, got[i], want[i]))
    end
  end
end

local function tanh(x)
  local e = math.exp(2 * x)
  return (e - 1) / (e + 1)
end

local function gelu(x)
  return 0.5 * x * (1 + tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ^ 3)))
end

-- A (2x3), B (3x2) and their product, stored in the layouts the tests ask for
local A = { 1, 2, 3, 4, 5, 6 }
local At = { 1, 4, 2, 5, 3, 6 }           -- A stored transposed (3x2)
local B = { 7, 8, 9, 10, 11, 12 }
local Bt = { 7, 9, 11, 8, 10, 12 }        -- B stored transposed (2x3)
local AB = { 58, 64, 139, 154 }

local function poisoned(shape, dtype)
  return sf.tensor(shape, dtype or "f32"):fill(0 / 0)
end

-- ---------------------------------------------------------------------------------------------

TestRegistry = {}

function TestRegistry.test_op_list()
  local ops = sf.op_list()
  lu.assertEquals(type(ops), "table")
  local gemm
  for _, op in ipairs(ops) do
    lu.assertEquals(type(op.name), "string")
    lu.assertEquals(type(op.doc), "string")
    lu.assertEquals(type(op.args), "table")
    if op.name == "gemm" then gemm = op end
  end
  lu.assertNotNil(gemm, "gemm is registered")
  local names = {}
  for i, a in ipairs(gemm.args) do
    names[i] = a.name
    lu.assertEquals(type(a.type), "string")
    lu.assertEquals(type(a.required), "boolean")
    lu.assertEquals(type(a.doc), "string")
  end
  -- the operands come first; the other arguments may grow, but these stay
  lu.assertEquals({ names[1], names[2], names[3] }, { "a", "b", "c" })
  local by_name = {}
  for _, a in ipairs(gemm.args) do
    lu.assertNil(by_name[a.name], "argument " .. a.name .. " declared twice")
    by_name[a.name] = a
  end
  for _, name in ipairs({ "transa", "transb", "alpha", "beta", "bias", "epilogue", "tf32", "stream" }) do
    lu.assertNotNil(by_name[name], "gemm has no argument " .. name)
  end
  lu.assertEquals(by_name.a.type, "tensor")
  lu.assertTrue(by_name.a.required)
  lu.assertTrue(by_name.b.required)
  lu.assertTrue(by_name.c.required)
  lu.assertFalse(by_name.transa.required)
  lu.assertEquals(by_name.transa.type, "boolean")
  lu.assertEquals(by_name.transa.default, "false")
  lu.assertEquals(by_name.alpha.type, "number")
  lu.assertEquals(by_name.alpha.default, "1")
  lu.assertEquals(by_name.beta.default, "0")
  lu.assertEquals(by_name.epilogue.type, "string")
  lu.assertEquals(by_name.epilogue.default, "none")
  lu.assertEquals(by_name.bias.type, "tensor")
  lu.assertNil(by_name.bias.default)
  lu.assertEquals(by_name.stream.type, "stream")
  -- every op of the list is callable by name
  for _, op in ipairs(ops) do
    lu.assertEquals(type(sf.ops[op.name]), "function", op.name)
  end
end

function TestRegistry.test_op_by_name()
  local c = poisoned({ 2, 2 })
  local ran, splits = sf.op("gemm", { a = sf.from_table(A, { 2, 3 }), b = sf.from_table(B, { 3, 2 }), c = c })
  lu.assertEquals({ ran, splits }, { "reference", 1 }, "gemm returns what ran and its k splits")
  lu.assertEquals(c:totable(), AB)
  -- splits belong to impl gemv (the CPU runs the reference for every impl)
  local function args(over)
    local t = { a = sf.from_table(A, { 2, 3 }), b = sf.from_table(B, { 2, 3 }), c = poisoned({ 2, 2 }), transb = true }
    for k, v in pairs(over) do t[k] = v end
    return t
  end
  contains(error_of(sf.ops.gemm, args { splits = 2 }), "gemm:", "'splits' is for impl 'gemv'")
  contains(error_of(sf.ops.gemm, args { splits = -1, impl = "gemv" }), ("'splits' is -1: 0 (automatic) to %d"):format(sf.limits.gemv_splits))
  contains(error_of(sf.ops.gemm, args { splits = sf.limits.gemv_splits + 1, impl = "gemv" }),
    ("'splits' is %d: 0 (automatic) to %d"):format(sf.limits.gemv_splits + 1, sf.limits.gemv_splits))
  local g = args { impl = "gemv", splits = 3 }
  sf.ops.gemm(g)
  lu.assertEquals(g.c:totable(), { 50, 68, 122, 167 }, "a·bᵀ")
  contains(error_of(sf.op, "nope", {}), "unknown op 'nope'", "gemm")
  contains(error_of(sf.op, "gemm", { a = 1 }), "gemm:", "'a'", "tensor")
end

-- ---------------------------------------------------------------------------------------------

TestGemm = {}

function TestGemm.test_plain_f32()
  local c = poisoned({ 2, 2 })
  sf.ops.gemm { a = sf.from_table(A, { 2, 3 }), b = sf.from_table(B, { 3, 2 }), c = c }
  lu.assertEquals(c:totable(), AB)
end

function TestGemm.test_transposes()
  local a, at = sf.from_table(A, { 2, 3 }), sf.from_table(At, { 3, 2 })
  local b, bt = sf.from_table(B, { 3, 2 }), sf.from_table(Bt, { 2, 3 })
  local c = poisoned({ 2, 2 })
  sf.ops.gemm { a = at, b = b, c = c, transa = true }
  lu.assertEquals(c:totable(), AB, "transa")
  c:fill(0 / 0)
  sf.ops.gemm { a = a, b = bt, c = c, transb = true }
  lu.assertEquals(c:totable(), AB, "transb")
  c:fill(0 / 0)
  sf.ops.gemm { a = at, b = bt, c = c, transa = true, transb = true }
  lu.assertEquals(c:totable(), AB, "transa and transb")
  c:fill(0 / 0)
  sf.ops.gemm { a = a, b = b, c = c, transa = false, transb = false }
  lu.assertEquals(c:totable(), AB, "explicit false")
  -- B·A (3x3) from the transposed storages
  local c3 = poisoned({ 3, 3 })
  sf.ops.gemm { a = bt, b = at, c = c3, transa = true, transb = true }
  lu.assertEquals(c3:totable(), { 39, 54, 69, 49, 68, 87, 59, 82, 105 })
end

function TestGemm.test_alpha_beta()
  local a, b = sf.from_table(A, { 2, 3 }), sf.from_table(B, { 3, 2 })
  local c = sf.from_table({ 1, 2, 3, 4 }, { 2, 2 })
  sf.ops.gemm { a = a, b = b, c = c, alpha = 2, beta = 0.5 }
  lu.assertEquals(c:totable(), { 116.5, 129, 279.5, 310 })
  c = sf.from_table({ 10, 10, 10, 10 }, { 2, 2 })
  sf.ops.gemm { a = a, b = b, c = c, alpha = -1, beta = 1 }
  lu.assertEquals(c:totable(), { -48, -54, -129, -144 })
  -- beta = 0 (the default) ignores what c held, NaN included
  c = poisoned({ 2, 2 })
  sf.ops.gemm { a = a, b = b, c = c, alpha = 0.5 }
  lu.assertEquals(c:totable(), { 29, 32, 69.5, 77 })
end

function TestGemm.test_bias_and_epilogues()
  local a, b = sf.from_table(A, { 2, 3 }), sf.from_table(B, { 3, 2 })
  local bias = sf.from_table({ -100, 10 }, { 2 })
  local c = poisoned({ 2, 2 })
  sf.ops.gemm { a = a, b = b, c = c, bias = bias }
  lu.assertEquals(c:totable(), { -42, 74, 39, 164 })
  c:fill(0 / 0)
  sf.ops.gemm { a = a, b = b, c = c, bias = bias, epilogue = "relu" }
  lu.assertEquals(c:totable(), { 0, 74, 39, 164 })
  c:fill(0 / 0)
  sf.ops.gemm { a = a, b = b, c = c, epilogue = "none" }
  lu.assertEquals(c:totable(), AB)
  -- order: scale, beta·c, bias, then the activation
  c = sf.from_table({ -300, 0, 0, 0 }, { 2, 2 })
  sf.ops.gemm { a = a, b = b, c = c, alpha = 2, beta = 1, bias = bias, epilogue = "relu" }
  lu.assertEquals(c:totable(), { 0, 138, 178, 318 })
  -- gelu (tanh form) on small values, where it is not the identity
  local x = sf.from_table({ -3, -1, -0.5, 0, 0.25, 0.5, 1, 2 }, { 8, 1 }, "f64")
  local one = sf.from_table({ 1 }, { 1, 1 }, "f64")
  local g = poisoned({ 8, 1 }, "f64")
  sf.ops.gemm { a = x, b = one, c = g, epilogue = "gelu" }
  local want = {}
  for i, v in ipairs(x:totable()) do want[i] = gelu(v) end
  assert_close(g:totable(), want, 1e-12, "gelu")
  -- gelu with a bias, f32
  local cb = poisoned({ 2, 2 })
  local small = sf.from_table({ 0.1, -0.2, 0.3, -0.4, 0.5, -0.6 }, { 2, 3 })
  sf.ops.gemm { a = small, b = b, c = cb, bias = sf.from_table({ -1, 0.5 }, { 2 }), epilogue = "gelu" }
  local s = small:to("f64"):totable()
  local pre = {
    s[1] * 7 + s[2] * 9 + s[3] * 11 - 1, s[1] * 8 + s[2] * 10 + s[3] * 12 + 0.5,
    s[4] * 7 + s[5] * 9 + s[6] * 11 - 1, s[4] * 8 + s[5] * 10 + s[6] * 12 + 0.5,
  }
  for i = 1, 4 do pre[i] = gelu(pre[i]) end
  assert_close(cb:totable(), pre, 1e-6, "gelu with bias")
end

function TestGemm.test_f64()
  local av = { 0.1, -0.25, 1 / 3, 2.5, 1e-3, -7 }
  local bv = { 0.7, 1 / 7, -0.9, 3.25, 1e2, -1e-2 }
  local a, b = sf.from_table(av, { 2, 3 }, "f64"), sf.from_table(bv, { 3, 2 }, "f64")
  local c = poisoned({ 2, 2 }, "f64")
  sf.ops.gemm { a = a, b = b, c = c }
  local want = {}
  for i = 0, 1 do
    for j = 0, 1 do
      local acc = 0
      for p = 0, 2 do acc = acc + av[i * 3 + p + 1] * bv[p * 2 + j + 1] end
      want[#want + 1] = acc
    end
  end
  assert_close(c:totable(), want, 1e-15, "f64")
end

function TestGemm.test_low_precision_inputs()
  -- f16 and bf16 operands with small integers are exact; c may be f32 or the input dtype
  for _, dt in ipairs({ "f16", "bf16" }) do
    local a, b = sf.from_table(A, { 2, 3 }, dt), sf.from_table(B, { 3, 2 }, dt)
    local c = poisoned({ 2, 2 }, dt)
    sf.ops.gemm { a = a, b = b, c = c }
    lu.assertEquals(c:totable(), AB, dt)
    local c32 = poisoned({ 2, 2 })
    sf.ops.gemm { a = a, b = b, c = c32 }
    lu.assertEquals(c32:totable(), AB, dt .. " -> f32")
  end
  -- an f16 output rounds: 1/3 · 3 accumulated in double, then stored
  local a = sf.from_table({ 1 / 3 }, { 1, 1 }, "f16")
  local c = sf.tensor({ 1, 1 }, "f32")
  sf.ops.gemm { a = a, b = sf.from_table({ 3 }, { 1, 1 }, "f16"), c = c }
  lu.assertEquals(c:get(1, 1), 0.333251953125 * 3)
end

function TestGemm.test_batched()
  -- a [2, 2, 3]: A and -A; b [2, 3, 2]: B and 2B
  local av, bv = {}, {}
  for i = 1, 6 do
    av[i], av[6 + i] = A[i], -A[i]
    bv[i], bv[6 + i] = B[i], 2 * B[i]
  end
  local a, b = sf.from_table(av, { 2, 2, 3 }), sf.from_table(bv, { 2, 3, 2 })
  local c = poisoned({ 2, 2, 2 })
  sf.ops.gemm { a = a, b = b, c = c }
  lu.assertEquals(c:totable(), { 58, 64, 139, 154, -116, -128, -278, -308 })
  -- a 2-D b is broadcast over the batch
  c:fill(0 / 0)
  sf.ops.gemm { a = a, b = sf.from_table(B, { 3, 2 }), c = c, bias = sf.from_table({ 1, 2 }, { 2 }) }
  lu.assertEquals(c:totable(), { 59, 66, 140, 156, -57, -62, -138, -152 })
  -- a 2-D a is broadcast too, with transposes
  c:fill(0 / 0)
  local bt = {}
  for i = 1, 6 do bt[i], bt[6 + i] = Bt[i], 2 * Bt[i] end
  sf.ops.gemm { a = sf.from_table(At, { 3, 2 }), b = sf.from_table(bt, { 2, 2, 3 }), c = c, transa = true, transb = true }
  lu.assertEquals(c:totable(), { 58, 64, 139, 154, 116, 128, 278, 308 })
  -- batch of one
  local c1 = poisoned({ 1, 2, 2 })
  sf.ops.gemm { a = sf.from_table(A, { 1, 2, 3 }), b = sf.from_table(B, { 1, 3, 2 }), c = c1 }
  lu.assertEquals(c1:totable(), AB)
end

function TestGemm.test_strided_leading_dimension()
  -- a, b and c are column slices of wider tensors: their row strides exceed their widths
  local wa = sf.from_table({ 0, 1, 2, 3, 0, 0, 4, 5, 6, 0 }, { 2, 5 })
  local wb = sf.from_table({ 7, 8, 0, 9, 10, 0, 11, 12, 0 }, { 3, 3 })
  local wc = sf.zeros({ 2, 4 }):fill(-1)
  local a, b, c = wa:slice(2, 2, 3), wb:slice(2, 1, 2), wc:slice(2, 2, 2)
  lu.assertEquals(a:strides(), { 5, 1 })
  sf.ops.gemm { a = a, b = b, c = c }
  lu.assertEquals(c:totable(), AB)
  lu.assertEquals(wc:totable(), { -1, 58, 64, -1, -1, 139, 154, -1 }, "only c's window is written")
  -- a row slice of a batch: c[2] only
  local cb = sf.zeros({ 3, 2, 2 })
  sf.ops.gemm { a = sf.from_table(A, { 2, 3 }), b = sf.from_table(B, { 3, 2 }), c = cb:slice(1, 2, 1):view({ 2, 2 }) }
  lu.assertEquals(cb:totable(), { 0, 0, 0, 0, 58, 64, 139, 154, 0, 0, 0, 0 })
end

function TestGemm.test_odd_sizes_against_f64()
  -- 17x33x9 in f32 against the same product in f64, through sf.compare
  local a = sf.randn({ 17, 9 }, "f32", { seed = 1 })
  local b = sf.randn({ 9, 33 }, "f32", { seed = 2 })
  local c = poisoned({ 17, 33 })
  sf.ops.gemm { a = a, b = b, c = c }
  local ref = sf.tensor({ 17, 33 }, "f64")
  sf.ops.gemm { a = a:to("f64"), b = b:to("f64"), c = ref }
  local r = sf.compare(c, ref)
  lu.assertEquals(r.nan, 0)
  lu.assertEquals(r.inf, 0)
  lu.assertTrue(r.rel_l2 < 1e-7, "rel_l2 " .. r.rel_l2)
  lu.assertTrue(r.rel_l2 > 0, "f32 output rounds")
  -- element (5, 7) by hand
  local at, bt = a:to("f64"), b:to("f64")
  local acc = 0
  for p = 1, 9 do acc = acc + at:get(5, p) * bt:get(p, 7) end
  lu.assertTrue(math.abs(ref:get(5, 7) - acc) < 1e-12)
end

-- ---------------------------------------------------------------------------------------------

TestGemmErrors = {}

local function args(over)
  return override({ a = sf.tensor({ 2, 3 }), b = sf.tensor({ 3, 2 }), c = sf.tensor({ 2, 2 }) }, over)
end

function TestGemmErrors.test_not_a_table()
  contains(error_of(sf.ops.gemm, 5), "gemm:", "table of named arguments")
  contains(error_of(sf.ops.gemm), "gemm:", "table of named arguments")
  contains(gemm_error({ sf.tensor({ 2, 2 }) }), "gemm:", "named", "number key")
end

function TestGemmErrors.test_unknown_argument()
  local msg = gemm_error(args({ foo = 1 }))
  contains(msg, "gemm:", "unknown argument 'foo'", "accepted:", "transa", "epilogue")
  contains(gemm_error(args({ transA = true })), "unknown argument 'transA'")
end

function TestGemmErrors.test_missing_argument()
  contains(gemm_error(args({ c = false })), "gemm:", "missing argument 'c'")
  contains(gemm_error(args({ a = false })), "missing argument 'a'")
  contains(gemm_error(args({ b = false })), "missing argument 'b'")
  contains(gemm_error({}), "missing argument")
end

function TestGemmErrors.test_wrong_type()
  contains(gemm_error(args({ transa = 1 })), "gemm:", "argument 'transa' must be a boolean, got number")
  contains(gemm_error(args({ transb = "yes" })), "argument 'transb' must be a boolean, got string")
  contains(gemm_error(args({ alpha = "2" })), "argument 'alpha' must be a number, got string")
  contains(gemm_error(args({ beta = true })), "argument 'beta' must be a number, got boolean")
  contains(gemm_error(args({ a = 3 })), "argument 'a' must be a tensor, got number")
  contains(gemm_error(args({ c = {} })), "argument 'c' must be a tensor, got table")
  contains(gemm_error(args({ bias = "x" })), "argument 'bias' must be a tensor, got string")
  contains(gemm_error(args({ epilogue = 1 })), "argument 'epilogue' must be a string, got number")
  contains(gemm_error(args({ tf32 = 0 })), "argument 'tf32' must be a boolean")
  contains(gemm_error(args({ stream = 5 })), "stream")
  contains(gemm_error(args({ epilogue = "tanh" })), "gemm:", "unknown epilogue 'tanh'", "none, relu, gelu")
  local freed = sf.tensor({ 2, 3 })
  freed:free()
  contains(gemm_error(args({ a = freed })), "freed")
end

function TestGemmErrors.test_wrong_dtype()
  contains(gemm_error(args({ a = sf.tensor({ 2, 3 }, "i32") })), "gemm:", "'a' has dtype i32", "f32", "bf16")
  contains(gemm_error(args({ b = sf.tensor({ 3, 2 }, "i32") })), "'b' has dtype i32")
  contains(gemm_error(args({ c = sf.tensor({ 2, 2 }, "i32") })), "'c' has dtype i32")
  contains(gemm_error(args({ b = sf.tensor({ 3, 2 }, "f16") })), "'a' is f32 but 'b' is f16")
  contains(gemm_error(args({ c = sf.tensor({ 2, 2 }, "f16") })), "f32 inputs need an f32 'c', got f16")
  contains(gemm_error(args({ c = sf.tensor({ 2, 2 }, "f64") })), "f64")
  contains(gemm_error({ a = sf.tensor({ 2, 3 }, "f64"), b = sf.tensor({ 3, 2 }, "f64"), c = sf.tensor({ 2, 2 }) }), "f64")
  contains(gemm_error(args({ bias = sf.tensor({ 2 }, "f16") })), "'bias' has dtype f16 (expected f32)")
end

function TestGemmErrors.test_shapes()
  contains(gemm_error(args({ b = sf.tensor({ 4, 2 }) })), "gemm:", "inner dimensions differ", "2×3", "4×2")
  contains(gemm_error(args({ transa = true })), "inner dimensions differ", "3×2", "3×2")
  contains(gemm_error(args({ c = sf.tensor({ 3, 3 }) })), "gemm:", "'c' is 3×3 but op(a)·op(b) is 2×2")
  contains(gemm_error(args({ c = sf.tensor({ 2, 3 }) })), "'c' is 2×3")
  contains(gemm_error(args({ bias = sf.tensor({ 3 }) })), "'bias' has shape [3] (expected [2])")
  contains(gemm_error(args({ bias = sf.tensor({ 1, 2 }) })), "'bias' has shape [1, 2] (expected [2])")
  contains(gemm_error(args({ a = sf.tensor({ 6 }) })), "'a' must be 2-D or 3-D, got 1 dimensions")
  contains(gemm_error(args({ c = sf.tensor({ 1, 1, 2, 2 }) })), "'c' must be 2-D or 3-D, got 4 dimensions")
  contains(gemm_error({ a = sf.tensor({ 2, 2, 3 }), b = sf.tensor({ 3, 3, 2 }), c = sf.tensor({ 2, 2, 2 }) }),
    "batch sizes differ", "a 2, b 3, c 2")
  contains(gemm_error({ a = sf.tensor({ 2, 2, 3 }), b = sf.tensor({ 3, 2 }), c = sf.tensor({ 2, 2 }) }),
    "batch sizes differ")
  local wide = sf.tensor({ 4, 2, 2 })
  contains(gemm_error(args({ c = wide:slice(1, 1, 2):slice(2, 1, 1) })), "'c' is 1×2")
end

function TestGemmErrors.test_error_leaves_c_untouched()
  local c = sf.from_table({ 1, 2, 3, 4 }, { 2, 2 })
  gemm_error({ a = sf.tensor({ 2, 3 }), b = sf.tensor({ 4, 2 }), c = c })
  lu.assertEquals(c:totable(), { 1, 2, 3, 4 })
end

-- ---------------------------------------------------------------------------------------------

-- attention's argument checks (they run before anything is launched, on every backend)
TestAttentionErrors = {}

local function attention_args(over)
  return override({ q = sf.tensor({ 1, 5, 4, 8 }, "f16"), k = sf.tensor({ 1, 7, 2, 8 }, "f16"),
    v = sf.tensor({ 1, 7, 2, 8 }, "f16"), out = sf.tensor({ 1, 5, 4, 8 }, "f16") }, over)
end

local function attention_error(over)
  return error_of(sf.ops.attention, attention_args(over))
end

function TestAttentionErrors.test_valid_call_runs()
  local a = attention_args({ q = sf.randn({ 1, 5, 4, 8 }, "f16"), k = sf.randn({ 1, 7, 2, 8 }, "f16"),
    v = sf.randn({ 1, 7, 2, 8 }, "f16"), causal = true })
  sf.ops.attention(a)
  for _, x in ipairs(a.out:to("f32"):totable()) do lu.assertTrue(x == x, "NaN in the output") end
end

function TestAttentionErrors.test_dtypes()
  contains(attention_error({ k = sf.tensor({ 1, 7, 2, 8 }, "bf16") }), "attention:", "'k'", "bf16")
  contains(attention_error({ v = sf.tensor({ 1, 7, 2, 8 }, "f32") }), "attention:", "'v'", "f32")
  contains(attention_error({ out = sf.tensor({ 1, 5, 4, 8 }, "bf16") }), "attention:", "'out'")
  contains(attention_error({ q = sf.tensor({ 1, 5, 4, 8 }, "i32") }), "attention:", "'q'", "i32")
  contains(attention_error({ lse = sf.tensor({ 1, 4, 5 }, "f16") }), "attention:", "'lse'")
end

function TestAttentionErrors.test_shapes()
  contains(attention_error({ k = sf.tensor({ 1, 7, 2, 16 }, "f16") }), "attention:", "'k'")
  contains(attention_error({ v = sf.tensor({ 1, 6, 2, 8 }, "f16") }), "attention:", "'v'")
  contains(attention_error({ out = sf.tensor({ 1, 5, 4, 16 }, "f16") }), "attention:", "'out'")
  contains(attention_error({ q = sf.tensor({ 5, 4, 8 }, "f16") }), "attention:", "'q' must be [B, N, H, D]")
  contains(attention_error({ lse = sf.tensor({ 1, 5, 4 }, "f32") }), "attention:", "'lse'")
  contains(attention_error({ k = sf.tensor({ 1, 7, 3, 8 }, "f16"), v = sf.tensor({ 1, 7, 3, 8 }, "f16") }),
    "attention:", "kv heads (3", "must divide q heads (4)")
end

function TestAttentionErrors.test_options()
  contains(attention_error({ causal = "yes" }), "attention:", "'causal' must be a boolean")
  contains(attention_error({ scale = "x" }), "attention:", "'scale' must be a number")
  contains(attention_error({ impl = "fast" }), "attention:", "unknown impl 'fast'", "flash2", "hopper", "naive")
  contains(attention_error({ foo = 1 }), "attention:", "unknown argument 'foo'")
end

function TestAttentionErrors.test_error_leaves_out_untouched()
  local out = sf.from_table({ 1, 2, 3, 4 }, { 1, 1, 1, 4 }, "f16")
  error_of(sf.ops.attention, { q = sf.tensor({ 1, 1, 1, 4 }, "f16"), k = sf.tensor({ 1, 1, 1, 4 }, "bf16"),
    v = sf.tensor({ 1, 1, 1, 4 }, "f16"), out = out })
  lu.assertEquals(out:to("f32"):totable(), { 1, 2, 3, 4 })
end

-- ffn's argument checks (before anything is launched, on every backend)
TestFfnErrors = {}

local function ffn_args(over)
  return override({ x = sf.tensor({ 3, 8 }, "f16"), w1 = sf.tensor({ 16, 8 }, "f16"), w2 = sf.tensor({ 8, 16 }, "f16"),
    w3 = sf.tensor({ 16, 8 }, "f16"), out = sf.tensor({ 3, 8 }, "f16"), act = "swiglu", impl = "unfused" }, over)
end

local function ffn_error(over)
  return error_of(sf.ops.ffn, ffn_args(over))
end

function TestFfnErrors.test_shapes()
  contains(ffn_error({ w1 = sf.tensor({ 16, 9 }, "f16") }), "ffn:", "'w1'")
  contains(ffn_error({ w2 = sf.tensor({ 9, 16 }, "f16") }), "ffn:", "'w2'")
  contains(ffn_error({ w3 = sf.tensor({ 15, 8 }, "f16") }), "ffn:", "'w3'")
  contains(ffn_error({ out = sf.tensor({ 3, 9 }, "f16") }), "ffn:", "'out'")
  contains(ffn_error({ x = sf.tensor({ 3, 8, 1 }, "f16") }), "ffn:", "'x' must be [T, H]")
  contains(ffn_error({ residual = sf.tensor({ 2, 8 }, "f16") }), "ffn:", "'residual'")
end

function TestFfnErrors.test_dtypes()
  contains(ffn_error({ w1 = sf.tensor({ 16, 8 }, "bf16") }), "ffn:", "'w1'", "bf16")
  contains(ffn_error({ out = sf.tensor({ 3, 8 }, "f32") }), "ffn:", "'out'", "f32")
  contains(ffn_error({ x = sf.tensor({ 3, 8 }, "i32") }), "ffn:", "'x'", "i32")
end

function TestFfnErrors.test_choices()
  contains(ffn_error({ act = "relu" }), "ffn:", "unknown act 'relu'", "gelu", "swiglu")
  contains(ffn_error({ impl = "fast" }), "ffn:", "unknown impl 'fast'", "unfused", "fused")
  contains(ffn_error({ gelu = "exact" }), "ffn:", "unknown gelu 'exact'", "tanh", "erf")
  contains(ffn_error({ w3 = false }), "ffn:", "act 'swiglu' takes 'w1' and 'w3' together")
  contains(ffn_error({ w1 = false }), "ffn:", "act 'swiglu' needs 'w1' and 'w3', or 'w13'")
  contains(ffn_error({ w1 = false, w3 = false }), "ffn:", "act 'swiglu' needs 'w1' and 'w3', or 'w13'")
  contains(ffn_error({ act = "gelu", w1 = false, w3 = false }), "ffn:", "act 'gelu' needs 'w1'")
  contains(ffn_error({ act = "gelu", w1 = false, w3 = false, w13 = sf.tensor({ 32, 8 }, "f16") }), "ffn:",
    "'w13' is for act 'swiglu'")
  contains(ffn_error({ w1 = false, w3 = false, w13 = sf.tensor({ 24, 8 }, "f16") }), "ffn:", "'w13' must have 2I rows",
    "multiple of 8", "24")
  contains(ffn_error({ w13 = sf.tensor({ 16, 8 }, "f16") }), "ffn:", "'w13'", "[32, 8]")
  contains(ffn_error({ act = "gelu" }), "ffn:", "'w3' is for act 'swiglu'")
  contains(ffn_error({ b1 = sf.tensor({ 16 }, "f16") }), "ffn:", "no biases")
  contains(ffn_error({ act = false }), "ffn:", "missing argument 'act'")
end

function TestFfnErrors.test_valid_call_runs()
  local a = ffn_args({ x = sf.randn({ 3, 8 }, "f16"), w1 = sf.randn({ 16, 8 }, "f16"), w2 = sf.randn({ 8, 16 }, "f16"),
    w3 = sf.randn({ 16, 8 }, "f16") })
  sf.ops.ffn(a)
  for _, v in ipairs(a.out:to("f32"):totable()) do lu.assertTrue(v == v, "NaN in the output") end
end

-- the reference's swiglu from w13 alone (pack_gate_up's interleaving, as llama.model keeps its
-- weights) gives what w1 and w3 give, bit for bit, in 16 and 8 bits (a wrong row map would swap
-- or shift gate and up rows); the GPU's kernels read w13 either way (tests/gpu/test_gpu_model.lua
-- runs a model of w13 alone against this reference)
function TestFfnErrors.test_w13_alone_is_w1_and_w3()
  local x, w1, w3, w2 = sf.randn({ 3, 8 }, "f16", { seed = 1 }), sf.randn({ 16, 8 }, "f16", { seed = 2 }),
    sf.randn({ 16, 8 }, "f16", { seed = 3 }), sf.randn({ 8, 16 }, "f16", { seed = 4 })
  local w13 = sf.tensor({ 32, 8 }, "f16")
  sf.ops.pack_gate_up { w1 = w1, w3 = w3, out = w13 }
  local a16, b16 = sf.tensor({ 3, 8 }, "f16"), sf.tensor({ 3, 8 }, "f16")
  sf.ops.ffn { x = x, w1 = w1, w3 = w3, w2 = w2, out = a16, act = "swiglu" }
  sf.ops.ffn { x = x, w13 = w13, w2 = w2, out = b16, act = "swiglu" }
  lu.assertEquals(b16:to("f32"):totable(), a16:to("f32"):totable(), "f16")
  local q = {}
  for name, t in pairs({ x = x, w1 = w1, w3 = w3, w2 = w2 }) do
    q[name] = sf.tensor(t:shape(), "e4m3")
    q[name .. "_scale"] = sf.tensor({ t:size(1) }, "f32")
    sf.ops.quantize { x = t, out = q[name], scale = q[name .. "_scale"] }
  end
  q.w13, q.w13_scale = sf.tensor({ 32, 8 }, "e4m3"), sf.tensor({ 32 }, "f32")
  sf.ops.pack_gate_up { w1 = q.w1, w3 = q.w3, out = q.w13 }
  sf.ops.pack_gate_up { w1 = q.w1_scale:view({ 16, 1 }), w3 = q.w3_scale:view({ 16, 1 }), out = q.w13_scale:view({ 32, 1 }) }
  local a, b = sf.tensor({ 3, 8 }, "f16"), sf.tensor({ 3, 8 }, "f16")
  local function fp8_args(over)
    return override({ x = q.x, x_scale = q.x_scale, w2 = q.w2, w2_scale = q.w2_scale, act = "swiglu", impl = "fused" },
      over)
  end
  sf.ops.ffn(fp8_args({ w1 = q.w1, w1_scale = q.w1_scale, w3 = q.w3, w3_scale = q.w3_scale, out = a }))
  sf.ops.ffn(fp8_args({ w13 = q.w13, w13_scale = q.w13_scale, out = b }))
  lu.assertEquals(b:to("f32"):totable(), a:to("f32"):totable(), "e4m3")
  contains(error_of(sf.ops.ffn, fp8_args({ w13 = q.w13, out = b })), "ffn:", "w13_scale")
end

-- swiglu: silu(gate) rounded to the dtype, times up, rounded again (the unfused ffn's two steps)
TestSwiglu = {}

function TestSwiglu.test_values()
  local g, u = { 1, -2, 0, 3, 0.7, -0.1 }, { 2, 1, 5, -1, 3.3, 7 }
  for _, dt in ipairs({ "f64", "f16", "bf16" }) do
    local function round(v) return sf.from_table({ v }, { 1 }, "f64"):to(dt):get(1) end
    local gate, up = sf.from_table(g, { 2, 3 }, "f64"):to(dt), sf.from_table(u, { 2, 3 }, "f64"):to(dt)
    local out = sf.tensor({ 2, 3 }, dt)
    sf.ops.swiglu { gate = gate, up = up, out = out }
    local got, gv, uv = out:totable(), gate:totable(), up:totable()
    for i = 1, #g do
      lu.assertEquals(got[i], round(round(gv[i] / (1 + math.exp(-gv[i]))) * uv[i]), dt .. " element " .. i)
    end
    sf.ops.swiglu { gate = gate, up = up, out = gate }  -- in place over the gate
    lu.assertEquals(gate:totable(), got)
  end
end

function TestSwiglu.test_errors()
  local g, u = sf.tensor({ 3, 8 }, "f16"), sf.tensor({ 3, 8 }, "f16")
  local function err(over)
    return error_of(sf.ops.swiglu, override({ gate = g, up = u, out = sf.tensor({ 3, 8 }, "f16") }, over))
  end
  contains(err({ up = sf.tensor({ 3, 9 }, "f16") }), "swiglu:", "'up'")
  contains(err({ out = sf.tensor({ 3, 8 }, "bf16") }), "swiglu:", "'out'", "bf16")
  contains(err({ gate = sf.tensor({ 3, 8, 1 }, "f16") }), "swiglu:", "'gate' must be [T, I]")
  contains(err({ out = u }), "swiglu:", "'out'", "'up'")
  contains(err({ gate = sf.tensor({ 8, 3 }, "f16"):view({ 3, 8 }):slice(2, 1, 4) }), "swiglu:", "contiguous")
end

-- ---------------------------------------------------------------------------------------------

TestEmbedding = {}

function TestEmbedding.test_lookup_and_errors()
  local table_ = sf.from_table({ 1, 2, 3, 4, 5, 6, 7, 8 }, { 4, 2 }, "f32")
  local out = poisoned({ 3, 2 })
  sf.ops.embedding { table = table_, tokens = sf.from_table({ 3, 0, 3 }, { 3 }, "i32"), out = out }
  lu.assertEquals(out:totable(), { 7, 8, 1, 2, 7, 8 })
  -- rows of a wider buffer, any float dtype
  local wide = sf.tensor({ 2, 5 }, "f64"):fill(-1)
  sf.ops.embedding { table = table_:to("f64"), tokens = sf.from_table({ 1, 2 }, { 2 }, "i32"), out = wide:slice(2, 2, 2) }
  lu.assertEquals(wide:totable(), { -1, 3, 4, -1, -1, -1, 5, 6, -1, -1 })
  -- a bad token is refused before anything is written
  local keep = poisoned({ 2, 2 })
  contains(error_of(sf.ops.embedding, { table = table_, tokens = sf.from_table({ 1, 4 }, { 2 }, "i32"), out = keep }),
    "embedding:", "tokens[2] is 4, outside the table's 4 rows")
  contains(error_of(sf.ops.embedding, { table = table_, tokens = sf.from_table({ -1, 0 }, { 2 }, "i32"), out = keep }),
    "tokens[1] is -1")
  for _, v in ipairs(keep:totable()) do lu.assertTrue(v ~= v, "out was written") end
  contains(error_of(sf.ops.embedding, { table = table_, tokens = sf.from_table({ 1 }, { 1 }, "f32"), out = keep }),
    "'tokens' has dtype f32")
  contains(error_of(sf.ops.embedding, { table = table_, tokens = sf.from_table({ 1 }, { 1 }, "i32"), out = keep }),
    "'out' has shape [2, 2] (expected [1, 2])")
  contains(error_of(sf.ops.embedding, { table = table_, tokens = sf.from_table({ 1 }, { 1 }, "i32"),
    out = sf.tensor({ 1, 2 }, "f16") }), "'out' has dtype f16 (expected f32)")
end

TestCompare = {}

function TestCompare.test_metrics()
  local r = sf.compare(sf.from_table({ 1, 2, 3, 4 }, { 4 }), sf.from_table({ 1, 2, 3, 5 }, { 4 }, "f64"))
  lu.assertAlmostEquals(r.rel_l2, 1 / math.sqrt(39), 1e-15)
  lu.assertEquals(r.max_abs, 1)
  lu.assertAlmostEquals(r.ref_norm, math.sqrt(39), 1e-14)
  lu.assertEquals(r.nan, 0)
  lu.assertEquals(r.inf, 0)
  lu.assertEquals(r.ref_nonfinite, 0)
  lu.assertEquals(r.numel, 4)
  lu.assertEquals(math.type(r.nan), "integer")
  lu.assertEquals(math.type(r.numel), "integer")
  local same = sf.from_table({ 0.5, -1 }, { 2 })
  local z = sf.compare(same, same)
  lu.assertEquals(z.rel_l2, 0)
  lu.assertEquals(z.max_abs, 0)
end

function TestCompare.test_nan_inf()
  local out = sf.from_table({ 0 / 0, math.huge, -math.huge, 1, 2, 10, 0 / 0 }, { 7 })
  local ref = sf.from_table({ 1, 1, 1, 0 / 0, 2, 6, math.huge }, { 7 })
  local r = sf.compare(out, ref)
  lu.assertEquals(r.nan, 2)
  lu.assertEquals(r.inf, 2)
  lu.assertEquals(r.ref_nonfinite, 1)
  lu.assertEquals(r.numel, 7)
  -- only the finite pairs (2, 2) and (10, 6) enter the norms
  lu.assertEquals(r.max_abs, 4)
  lu.assertAlmostEquals(r.ref_norm, math.sqrt(40), 1e-14)
  lu.assertAlmostEquals(r.rel_l2, math.sqrt(16 / 40), 1e-15)
end

function TestCompare.test_zero_reference_and_layouts()
  local r = sf.compare(sf.from_table({ 3, 4 }, { 2 }), sf.zeros({ 2 }))
  lu.assertEquals(r.rel_l2, 5, "an all-zero reference gives the absolute error")
  lu.assertEquals(r.ref_norm, 0)
  -- a strided view against a contiguous f64 reference of the same values
  local base = sf.from_table({ 1, 2, 9, 3, 4, 9 }, { 2, 3 })
  local r2 = sf.compare(base:slice(2, 1, 2), sf.from_table({ 1, 2, 3, 4 }, { 2, 2 }, "f64"))
  lu.assertEquals(r2.rel_l2, 0)
  lu.assertEquals(r2.numel, 4)
  -- f16 output against its exact value: the rounding error
  local h = sf.from_table({ 1 / 3 }, { 1 }, "f16")
  local r3 = sf.compare(h, sf.from_table({ 1 / 3 }, { 1 }, "f64"))
  lu.assertAlmostEquals(r3.max_abs, 1 / 3 - 0.333251953125, 1e-16)
end

function TestCompare.test_errors()
  contains(error_of(sf.compare, sf.tensor({ 2 }), sf.tensor({ 3 })), "compare: shapes differ", "[2]", "[3]")
  contains(error_of(sf.compare, sf.tensor({ 2, 3 }), sf.tensor({ 3, 2 })), "shapes differ")
  contains(error_of(sf.compare, sf.tensor({ 2 }), 5), "sfbench.tensor expected")
  contains(error_of(sf.compare, sf.tensor({ 2 }), sf.tensor({ 2 }), 5), "stream")
end

-- ---------------------------------------------------------------------------------------------

TestCpuBackend = {}

function TestCpuBackend.test_compile_needs_cuda()
  local msg = error_of(sf.compile, 'extern "C" __global__ void k() {}')
  contains(msg, "compile:", "CUDA")
end

function TestCpuBackend.test_device()
  local d = sf.device()
  lu.assertEquals(d.backend, "cpu")
  lu.assertEquals(type(d.name), "string")
  lu.assertTrue(#d.name > 0)
  lu.assertEquals(math.type(d.cores), "integer")
  lu.assertTrue(d.cores >= 1)
  lu.assertEquals(math.type(d.mem_total), "integer")
  lu.assertTrue(d.mem_total > 0)
  lu.assertTrue(d.mem_free >= 0 and d.mem_free <= d.mem_total)
  lu.assertEquals(sf.device("cpu").backend, "cpu")
  contains(error_of(sf.device, "cuda"), "no CUDA device")
  contains(error_of(sf.device, "tpu"), "unknown device 'tpu'")
  lu.assertNil(sf.clocks(), "no clocks on the CPU backend")
  lu.assertEquals(select("#", sf.sync()), 0)
end

function TestCpuBackend.test_module_fields()
  lu.assertStrMatches(sf.version, "%d+%.%d+%.%d+")
  lu.assertEquals(type(sf.datadir), "string")
  lu.assertEquals(sf.script_name, "test_ops")
  lu.assertEquals(type(sf.output_dir), "string")
  lu.assertEquals(sf.args, {})
  lu.assertEquals(type(sf.used_args), "table")
  lu.assertEquals(type(sf.quiet), "boolean")
  lu.assertFalse(sf.interrupted())
  lu.assertEquals(type(sf.isatty(2)), "boolean")
  -- the preloaded libraries
  lu.assertEquals(type(require("cjson").encode), "function")
  lu.assertEquals(type(require("lfs").attributes), "function")
end

function TestCpuBackend.test_events()
  local e0, e1 = sf.event(), sf.event()
  contains(error_of(sf.elapsed, e0, e1), "elapsed:", "recorded")
  lu.assertIs(e0:record(), e0)
  contains(error_of(sf.elapsed, e0, e1), "recorded")
  -- some work between the two records
  local a, b, c = sf.randn({ 64, 64 }, "f64", { seed = 1 }), sf.randn({ 64, 64 }, "f64", { seed = 2 }), sf.tensor({ 64, 64 }, "f64")
  for _ = 1, 3 do sf.ops.gemm { a = a, b = b, c = c } end
  e1:record()
  e1:synchronize()
  local ms = sf.elapsed(e0, e1)
  lu.assertEquals(type(ms), "number")
  lu.assertTrue(ms > 0, "elapsed " .. ms)
  -- a later record moves the event
  e1:record()
  lu.assertTrue(sf.elapsed(e0, e1) >= ms)
  contains(error_of(sf.elapsed, e0, 5), "sfbench.event expected")
  -- wait: an event not yet recorded is an error; on the CPU a recorded one has nothing to order
  contains(error_of(sf.event().wait, sf.event()), "wait: the event must have been recorded")
  lu.assertEquals(select("#", e1:wait()), 0)
  lu.assertEquals(select("#", e1:wait(sf.stream())), 0)
end

function TestCpuBackend.test_now_monotonic()
  local t0 = sf.now()
  local t1 = sf.now()
  lu.assertEquals(type(t0), "number")
  lu.assertTrue(t1 >= t0)
end

function TestCpuBackend.test_streams()
  local s = sf.stream()
  lu.assertEquals(select("#", s:sync()), 0)
  local e0, e1 = sf.event(), sf.event()
  e0:record(s)
  e1:record(s)
  lu.assertTrue(sf.elapsed(e0, e1) >= 0)
  -- ops and compare take a stream
  local c = poisoned({ 2, 2 })
  sf.ops.gemm { a = sf.from_table(A, { 2, 3 }), b = sf.from_table(B, { 3, 2 }), c = c, stream = s }
  lu.assertEquals(c:totable(), AB)
  lu.assertEquals(sf.compare(c, c, s).rel_l2, 0)
  contains(error_of(e0.record, e0, 5), "sfbench.stream expected")
end

-- the profiler hooks do nothing on the CPU backend
function TestCpuBackend.test_profiler_hooks()
  for _, call in ipairs({ function() return sf.nvtx_push("range") end, sf.nvtx_pop, sf.profiler_start, sf.profiler_stop }) do
    lu.assertEquals(select("#", call()), 0)
  end
  contains(error_of(sf.nvtx_push), "string expected")
  lu.assertEquals(sf.profile, false, "no --profile")
end

-- CUDA graphs are refused on the CPU backend, before fn is called
function TestCpuBackend.test_graph_needs_cuda()
  local calls = 0
  local err = error_of(sf.graph, function() calls = calls + 1 end, 2)
  contains(err, "graph: CUDA graphs need the CUDA backend (running on cpu)")
  lu.assertEquals(calls, 0)
  contains(error_of(sf.graph, "not a function", 2), "function expected")
end

function TestCpuBackend.test_flush_l2()
  lu.assertEquals(select("#", sf.flush_l2()), 0)
  local before = sf.memory().in_use
  sf.flush_l2()                               -- the buffer is made once, then reused
  sf.flush_l2(sf.stream())
  lu.assertEquals(sf.memory().in_use, before)
end

return lu.LuaUnit.run()
