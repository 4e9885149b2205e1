-- Random sequences of calls to the Lua API on the CPU backend: tensors of random shapes and
-- dtypes, views, slices, copies, `to`, get/set, fills, frees, compare, and every registered op
-- with a random subset of its arguments, each valid or not (wrong types, shapes, dtypes, freed
-- tensors, extreme integers, NaN). Every call runs under pcall: a Lua error is a pass, a crash,
-- abort or (in the sanitizer build) a leak or undefined behaviour fails the run. The seed is
-- printed; `seed=N` replays a run, `calls=N` sets its length, `log=true` prints each call, and
-- `device=cuda` makes the tensors on the GPU (a longer run there, under compute-sanitizer too).
-- Usage: sfbench --device cpu tests/lua/test_fuzz.lua [seed=N] [calls=3000] [log=false] [device=cpu]
local sf = require "sfbench"
local params = require "sfbench.params"
local validate = require "sfbench.validate"

local p = params.get({ seed = 0, calls = 3000, log = false, device = "cpu" }, { device = { "cpu", "cuda" } })
local seed = p.seed ~= 0 and p.seed or validate.fresh_seed()
io.stderr:write(("test_fuzz: seed %d (seed=%d replays it)\n"):format(seed, seed))
math.randomseed(seed)
local rnd = math.random

local function pick(list) return list[rnd(#list)] end
local function chance(x) return rnd() < x end

local DTYPES = { "f32", "f32", "f16", "bf16", "f64", "i32" }
local WEIRD_INTS = { 0, -1, math.maxinteger, math.mininteger, math.maxinteger // 2, 2 ^ 31, -2 ^ 31 }
local WEIRD = { 0 / 0, math.huge, -math.huge, "x", true, {}, 1.5, -3 }
local STRINGS = { "flash", "flash2", "hopper", "naive", "unfused", "fused", "fastest", "swiglu", "gelu", "tanh",
  "erf", "none", "relu", "bias", "silu", "cublas", "ours", "", "bogus" }

-- a small integer, now and then an extreme or invalid one
local function int(lo, hi)
  if chance(0.05) then return pick(WEIRD_INTS) end
  if chance(0.02) then return pick(WEIRD) end
  return rnd(lo, hi)
end

-- 0 to 5 element indices, mostly in range
local function indices()
  local idx = {}
  for i = 1, rnd(0, 5) do idx[i] = int(0, 6) end
  return table.unpack(idx)
end

local function shape()
  local n = chance(0.03) and pick({ 0, 9, -1 }) or rnd(1, 4)
  local s = {}
  for d = 1, math.max(n, 0) do s[d] = chance(0.03) and pick({ 0, -2, 1.5, "a", 2 ^ 40 }) or rnd(1, 6) end
  return s
end

local TENSOR = getmetatable(sf.tensor({ 1 }, "f32", { device = p.device }))
local pool = {}   -- live tensors (views included; some freed)
local function tensor_arg()
  if #pool == 0 or chance(0.03) then return pick(WEIRD) end
  return pick(pool)
end
local function keep(t)
  if getmetatable(t) == TENSOR then
    if #pool >= 24 then table.remove(pool, rnd(#pool)) end
    pool[#pool + 1] = t
  end
end
local function device_opts()
  if chance(0.05) then return { device = pick({ "cpu", "cuda", "bogus", 3 }) } end
  return { device = p.device, seed = chance(0.9) and rnd(1, 1000) or pick(WEIRD), std = chance(0.1) and pick(WEIRD) or nil }
end

-- a value for an op argument of the given type
local ARG = {
  tensor = tensor_arg,
  boolean = function() return chance(0.9) and chance(0.5) or pick(WEIRD) end,
  number = function() return chance(0.8) and (rnd() * 4 - 1) or pick(WEIRD) end,
  integer = function() return int(-2, 8) end,
  string = function() return chance(0.9) and pick(STRINGS) or pick(WEIRD) end,
  stream = function() return chance(0.5) and sf.stream() or pick(WEIRD) end,
}

local OPS = sf.op_list()

local ACTIONS = {
  function() return "sf.tensor", sf.tensor(shape(), pick(DTYPES), device_opts()) end,
  function() return "sf.randn", sf.randn(shape(), pick(DTYPES), device_opts()) end,
  function() return "sf.rand", sf.rand(shape(), pick(DTYPES), device_opts()) end,
  function() return "sf.zeros", sf.zeros(shape(), pick(DTYPES), device_opts()) end,
  function()
    local s, vals, n = shape(), {}, rnd(0, 30)
    for i = 1, n do vals[i] = chance(0.95) and rnd() or pick(WEIRD) end
    return "sf.from_table", sf.from_table(vals, s, pick(DTYPES), device_opts())
  end,
  function() local t = tensor_arg(); return "view", t:view(shape()) end,
  function()
    local t = tensor_arg()
    return "slice", t:slice(int(-2, 4), int(-1, 6), chance(0.8) and int(0, 6) or nil)
  end,
  function() local a, b = tensor_arg(), tensor_arg(); return "copy", a:copy(b) end,
  function()
    local t = tensor_arg()
    local args = {}
    for i = 1, rnd(0, 3) do
      args[i] = chance(0.8) and pick({ "cpu", "cuda", "f32", "f16", "bf16", "f64", "i32", "x" }) or pick(WEIRD)
    end
    return "to", t:to(table.unpack(args))
  end,
  function() local t = tensor_arg(); return "get", t:get(indices()) end,
  function() local t = tensor_arg(); return "set", t:set(chance(0.9) and rnd() or pick(WEIRD), indices()) end,
  function() local t = tensor_arg(); return "fill", t:fill(chance(0.9) and rnd() or pick(WEIRD)) end,
  function() local t = tensor_arg(); return "zero", t:zero() end,
  function() local t = tensor_arg(); return "t:randn", t:randn(chance(0.7) and device_opts() or pick(WEIRD)) end,
  function() local t = tensor_arg(); return "t:rand", t:rand(chance(0.7) and device_opts() or pick(WEIRD)) end,
  function() local t = tensor_arg(); return "totable", #t:totable() end,
  function()
    local t = tensor_arg()
    return "queries", t:shape(), t:strides(), t:size(int(-3, 4)), t:dtype(), t:device(), t:numel(), t:nbytes(),
      t:ndim(), t:is_contiguous(), t:is_freed(), tostring(t), #t
  end,
  function() local t = tensor_arg(); return "free", t:free() end,
  function() local a, b = tensor_arg(), tensor_arg(); return "compare", sf.compare(a, b) end,
  function() local a, b = tensor_arg(), tensor_arg(); return "compare_rows", sf.compare_rows(a, b) end,
  function()
    -- an op with a random subset of its arguments (a tensor argument prefers a pool tensor)
    local op = pick(OPS)
    local args = {}
    for _, a in ipairs(op.args) do
      if chance(a.required and 0.9 or 0.4) then args[a.name] = ARG[a.type]() end
    end
    if chance(0.03) then args.bogus_argument = 1 end
    if chance(0.02) then args[1] = 1 end
    if chance(0.02) then return "sf.op " .. op.name, sf.op(op.name, chance(0.5) and args or pick(WEIRD)) end
    return "op " .. op.name, sf.ops[op.name](args)
  end,
  -- an op on well-formed arguments: shapes made to fit, so the op itself runs, not just its checks
  function()
    local B, N, H, D = rnd(1, 2), rnd(1, 9), pick({ 1, 2, 4 }), pick({ 2, 4, 8 })
    local dt = pick({ "f32", "f16", "bf16", "f64" })
    local o = { device = p.device }
    local kind = rnd(5)
    if kind == 1 then
      local m, n, k = rnd(1, 9), rnd(1, 9), rnd(1, 9)
      return "gemm (fitting)", sf.ops.gemm { a = sf.randn({ m, k }, dt, o), b = sf.randn({ n, k }, dt, o),
        c = sf.tensor({ m, n }, dt, o), transb = true, alpha = rnd(), beta = chance(0.5) and 0 or 1 }
    elseif kind == 2 then
      local Hkv = pick({ 1, H })
      return "attention (fitting)", sf.ops.attention { q = sf.randn({ B, N, H, D }, dt, o),
        k = sf.randn({ B, rnd(1, 9), Hkv, D }, dt, o), v = sf.randn({ B, rnd(1, 9), Hkv, D }, dt, o),
        out = sf.tensor({ B, N, H, D }, dt, o), causal = chance(0.5) }
    elseif kind == 3 then
      local x = sf.randn({ N, D * 2 }, dt, o)
      return "rmsnorm (fitting)", sf.ops.rmsnorm { x = x, weight = sf.randn({ D * 2 }, dt, o), out = sf.tensor({ N, D * 2 }, dt, o) }
    elseif kind == 4 then
      return "rope (fitting)", sf.ops.rope { x = sf.randn({ B, N, H, D }, dt, o), pos_offset = rnd(0, 5) }
    else
      local T, Hd, I = rnd(1, 5), D * 2, rnd(1, 8)
      return "ffn (fitting)", sf.ops.ffn { x = sf.randn({ T, Hd }, dt, o), w1 = sf.randn({ I, Hd }, dt, o),
        w2 = sf.randn({ Hd, I }, dt, o), w3 = sf.randn({ I, Hd }, dt, o), out = sf.tensor({ T, Hd }, dt, o), act = "swiglu" }
    end
  end,
  function() collectgarbage(); return "collectgarbage" end,
}

local raised, kinds = 0, {}
for i = 1, p.calls do
  local action = rnd(#ACTIONS)
  local results = table.pack(pcall(ACTIONS[action]))
  local ok, what = results[1], results[2]
  if ok then
    for j = 3, results.n do keep(results[j]) end
    kinds[what] = (kinds[what] or 0) + 1
  else
    raised = raised + 1
    if type(what) ~= "string" and type(what) ~= "table" then
      error(("call %d (action %d): an error object of type %s"):format(i, action, type(what)))
    end
  end
  if p.log then io.stderr:write(("%d action %d: %s\n"):format(i, action, ok and tostring(what) or tostring(what))) end
end
pool = {}
collectgarbage()
collectgarbage()
local succeeded = {}
for k in pairs(kinds) do succeeded[#succeeded + 1] = k end
table.sort(succeeded)
print(("ok: fuzz seed %d: %d calls, %d raised a Lua error, no crash; calls that succeeded: %s"):format(seed, p.calls,
  raised, #succeeded))
-- a run where nothing got through the argument checks would test only them
if #succeeded < 15 then error(("only %d kinds of call succeeded (seed %d)"):format(#succeeded, seed), 0) end
