-- Random sequences of calls to the Lua API on the CPU backend: tensors of random shapes and
-- dtypes, views, slices, copies, `to`, get/set, fills, frees, compare, and every registered op
-- with a random subset of its arguments, each valid or not (wrong types, shapes, dtypes, freed
-- tensors, extreme integers, NaN), and in turn with arguments made to fit (FIT), now and then with
-- one of them dropped or swapped. Every call runs under pcall: a Lua error is a pass, a crash,
-- abort or (in the sanitizer build) a leak or undefined behaviour fails the run, and so do a
-- registered op that never once succeeded (one without an entry in FIT) and a device that no
-- longer adds 1 + 10 after a "CUDA error" or at the end (a kernel fault's sticky error). The
-- seed is printed; `seed=N` replays a run, `calls=N` sets its length, `log=true` prints each
-- call, and `device=cuda` makes the tensors on the GPU (tests/gpu/fuzz.sh: a longer run there;
-- tests/gpu/sanitize.sh: under compute-sanitizer).
-- Usage: sfbench --device cpu tests/lua/test_fuzz.lua [seed=N] [calls=3000] [log=false] [device=cpu]
--        sfbench --device cuda tests/lua/test_fuzz.lua device=cuda [calls=N]
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

local DTYPES = { "f32", "f32", "f16", "bf16", "f64", "i32", "e4m3", "e5m2" }
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

-- Well-formed arguments for each registered op: shapes, dtypes and values that the op accepts on
-- this device (the GPU kernels take f16/bf16 and, for attention, head dims 64 and 128), with the
-- optional arguments each given or not. Returns the arguments and the tensor the op writes. An op
-- without an entry here fails the run: every op must succeed at least once.
local CUDA = p.device == "cuda"
local FLOATS = CUDA and { "f16", "bf16" } or { "f32", "f16", "bf16", "f64" }
local function head_dim() return CUDA and pick({ 64, 128 }) or pick({ 2, 4, 8 }) end
local function i32(vals, shape, o) return sf.from_table(vals, shape, "i32", o) end
local FP8 = { "e4m3", "e5m2" }
-- a scale for an e4m3/e5m2 tensor of shape s: [1], or one a row (s without its last dimension)
local function fp8_scale(s, o)
  if #s < 2 or chance(0.5) then return sf.rand({ 1 }, "f32", o) end
  return sf.rand(table.move(s, 1, #s - 1, 1, {}), "f32", o)
end
local function small_shape()
  local s = {}
  for d = 1, rnd(1, 3) do s[d] = rnd(1, 6) end
  return s
end
local function heads()
  local Hkv = pick({ 1, 2 })
  return Hkv * pick({ 1, 2 }), Hkv
end
-- a KV cache's layout for B sequences: contiguous [B, capacity, Hkv, D], or a page pool
-- [pages, page, Hkv, D] and a block table of each sequence's pages (any of the pool's, shared or
-- not); returns the cache's shape, its rows a sequence and the block table (nil: contiguous)
local function kv_layout(B, Hkv, D, o)
  if chance(0.5) then
    local cap = rnd(1, 12)
    return { B, cap, Hkv, D }, cap, nil
  end
  local page, per_seq, pool_pages = pick({ 1, 2, 4, 8 }), rnd(1, 3), rnd(1, 6)
  local bt = {}
  for _ = 1, B * per_seq do bt[#bt + 1] = rnd(0, pool_pages - 1) end
  return { pool_pages, page, Hkv, D }, per_seq * page, i32(bt, { B, per_seq }, o)
end

local FIT = {
  gemm = function(o)
    if not CUDA and chance(0.25) then
      -- e4m3/e5m2 operands with their scales (the CPU backend's; the GPU refuses them so far)
      local m, n, k = rnd(1, 9), rnd(1, 9), rnd(1, 9)
      local c = sf.tensor({ m, n }, pick({ "f32", "f16", "bf16" }), o)
      return { a = sf.randn({ m, k }, pick(FP8), o), b = sf.randn({ n, k }, pick(FP8), o), transb = true, c = c,
        a_scale = sf.rand(chance(0.5) and { 1 } or { m }, "f32", o), b_scale = sf.rand(chance(0.5) and { 1 } or { n }, "f32", o) },
        c
    end
    local dt = pick({ "f32", "f16", "bf16", "f64" })
    -- sizes that are multiples of 8 on the GPU half the time (cuBLASLt's aligned kernels)
    local function dim() return (CUDA and chance(0.5)) and 8 * rnd(1, 4) or rnd(1, 9) end
    local m, n, k = dim(), dim(), dim()
    local batch = chance(0.2) and rnd(1, 3) or nil
    local function sh(r, c) return batch and { batch, r, c } or { r, c } end
    local transa, transb = chance(0.3), chance(0.6)
    local cdt = (dt == "f16" or dt == "bf16") and pick({ dt, "f32" }) or dt
    local c = sf.randn(sh(m, n), cdt, o)
    local args = { a = sf.randn(transa and sh(k, m) or sh(m, k), dt, o), b = sf.randn(transb and sh(n, k) or sh(k, n), dt, o),
      c = c, transa = transa, transb = transb, alpha = rnd() * 2, beta = pick({ 0, 1, 0.5 }) }
    if chance(0.3) then args.bias = sf.randn({ n }, cdt, o) end
    if chance(0.3) then args.epilogue = pick({ "none", "relu", "gelu" }) end
    if chance(0.2) then args.out = sf.tensor(sh(m, n), cdt, o) end
    return args, args.out or c
  end,
  attention = function(o)
    local dt, B, D = pick(FLOATS), rnd(1, 2), head_dim()
    local H, Hkv = heads()
    local Nq, Nk = rnd(1, 9), rnd(1, 9)
    local out = sf.tensor({ B, Nq, H, D }, dt, o)
    if not CUDA and chance(0.25) then
      -- e4m3 q, k and vt with their scales (the CPU backend's; on the GPU only the Hopper kernel takes them)
      return { q = sf.randn({ B, Nq, H, D }, "e4m3", o), k = sf.randn({ B, Nk, Hkv, D }, "e4m3", o),
        vt = sf.randn({ B, Hkv, D, (Nk + 15) // 16 * 16 }, "e4m3", o), q_scale = sf.rand({ 1 }, "f32", o),
        k_scale = sf.rand({ 1 }, "f32", o), v_scale = sf.rand({ 1 }, "f32", o), out = out, causal = chance(0.5) }, out
    end
    local args = { q = sf.randn({ B, Nq, H, D }, dt, o), k = sf.randn({ B, Nk, Hkv, D }, dt, o),
      v = sf.randn({ B, Nk, Hkv, D }, dt, o), out = out, causal = chance(0.5) }
    if chance(0.3) then args.lse = sf.tensor({ B, H, Nq }, "f32", o) end
    if chance(0.3) then args.scale = rnd() end
    if CUDA then args.impl = pick({ "flash", "naive" }) end
    return args, out
  end,
  decode_attention = function(o)
    local dt, B, D, Nq = pick(FLOATS), rnd(1, 3), head_dim(), rnd(1, 4)
    local H, Hkv = heads()
    local out = sf.tensor({ B, Nq, H, D }, dt, o)
    local args = { q = sf.randn({ B, Nq, H, D }, dt, o), out = out }
    if chance(0.5) then args.causal = chance(0.5) end
    local cache, cap
    cache, cap, args.block_table = kv_layout(B, Hkv, D, o)
    local lens = {}
    for b = 1, B do lens[b] = rnd(0, cap) end
    args.k, args.v = sf.randn(cache, dt, o), sf.randn(cache, dt, o)
    args.seqlens = i32(lens, { B }, o)
    if chance(0.3) then args.lse = sf.tensor({ B, H, Nq }, "f32", o) end
    if chance(0.2) then args.scale = rnd() end
    if chance(0.3) then args.splits = rnd(0, 4) end
    return args, out
  end,
  ffn = function(o)
    local dt, T, Hd, I = pick(FLOATS), rnd(1, 5), 2 * rnd(1, 6), rnd(1, 8)
    local out = sf.tensor({ T, Hd }, dt, o)
    local args = { x = sf.randn({ T, Hd }, dt, o), w1 = sf.randn({ I, Hd }, dt, o), w2 = sf.randn({ Hd, I }, dt, o),
      out = out, act = pick({ "swiglu", "gelu" }) }
    if args.act == "swiglu" then
      args.w3 = sf.randn({ I, Hd }, dt, o)
    else
      if chance(0.5) then args.b1 = sf.randn({ I }, dt, o) end
      if chance(0.5) then args.b2 = sf.randn({ Hd }, dt, o) end
      if chance(0.5) then args.gelu = pick({ "tanh", "erf" }) end
    end
    if chance(0.3) then args.residual = chance(0.5) and out:fill(0.5) or sf.randn({ T, Hd }, dt, o) end
    -- the GPU's fused SwiGLU wants the packed w13 and a Hopper GPU: the unfused path runs anywhere
    args.impl = CUDA and "unfused" or pick({ "unfused", "fused" })
    return args, out
  end,
  pack_vt = function(o)
    local B, N, Hkv, D = rnd(1, 2), rnd(1, 40), rnd(1, 3), rnd(1, 9)
    local out = sf.tensor({ B, Hkv, D, (N + 15) // 16 * 16 }, "e4m3", o)
    return { v = sf.randn({ B, N, Hkv, D }, "e4m3", o), out = out }, out
  end,
  pack_gate_up = function(o)
    local dt, I, Hd = pick(FLOATS), 8 * rnd(1, 3), rnd(1, 9)
    local out = sf.tensor({ 2 * I, Hd }, dt, o)
    return { w1 = sf.randn({ I, Hd }, dt, o), w3 = sf.randn({ I, Hd }, dt, o), out = out }, out
  end,
  swiglu = function(o)
    local dt, s = pick(FLOATS), { rnd(1, 5), rnd(1, 9) }
    local gate = sf.randn(s, dt, o)
    local out = chance(0.5) and gate or sf.tensor(s, dt, o)
    return { gate = gate, up = sf.randn(s, dt, o), out = out }, out
  end,
  rmsnorm = function(o)
    local dt, T, Hd = pick(FLOATS), rnd(1, 9), rnd(1, 16)
    -- rows may be strided: x a slice of wider rows
    local x = chance(0.3) and sf.randn({ T, Hd + 3 }, dt, o):slice(2, 2, Hd) or sf.randn({ T, Hd }, dt, o)
    local out = chance(0.3) and x or sf.tensor({ T, Hd }, dt, o)
    local args = { x = x, weight = sf.randn({ Hd }, dt, o), out = out }
    if chance(0.3) then args.eps = rnd() * 1e-3 end
    return args, out
  end,
  add_rmsnorm = function(o)
    local dt, T, Hd = pick(FLOATS), rnd(1, 9), rnd(1, 16)
    local x = sf.randn({ T, Hd }, dt, o)
    local out = chance(0.3) and x or sf.tensor({ T, Hd }, dt, o)
    local args = { x = x, residual = sf.randn({ T, Hd }, dt, o), weight = sf.randn({ Hd }, dt, o), out = out }
    if chance(0.3) then args.eps = rnd() * 1e-3 end
    return args, out
  end,
  rope = function(o)
    local dt, B, N, H, D = pick(FLOATS), rnd(1, 2), rnd(1, 9), rnd(1, 4), 2 * rnd(1, 8)
    local x = sf.randn({ B, N, H, D }, dt, o)
    local args = { x = x }
    if chance(0.3) then
      local pos = {}
      for b = 1, B do pos[b] = rnd(0, 100) end
      args.positions = i32(pos, { B }, o)
    elseif chance(0.7) then
      args.pos_offset = rnd(0, 100)
    end
    if chance(0.3) then args.theta = pick({ 10000, 500000, 1 + rnd() * 100 }) end
    return args, x
  end,
  linear_rope = function(o)
    local dt, B, N, heads, D, K = pick(FLOATS), rnd(1, 2), rnd(1, 5), rnd(1, 4), 2 * rnd(1, 4), rnd(1, 9)
    local out = sf.tensor({ B, N, heads, D }, dt, o)
    local args = { x = sf.randn({ B * N, K }, dt, o), w = sf.randn({ heads * D, K }, dt, o), out = out,
      rope_heads = rnd(0, heads) }
    if chance(0.5) then args.pos_offset = rnd(0, 100) end
    if chance(0.3) then args.theta = pick({ 10000, 500000 }) end
    if chance(0.5) then args.impl = CUDA and pick({ "unfused", "fastest" }) or pick({ "unfused", "fused", "fastest" }) end
    return args, out
  end,
  add = function(o)
    local dt, s = pick(FLOATS), { rnd(1, 5), rnd(1, 7) }
    local a, b = sf.randn(s, dt, o), sf.randn(s, dt, o)
    local out = pick({ a, b, sf.tensor(s, dt, o) })
    return { a = a, b = b, out = out }, out
  end,
  quantize = function(o)
    local s = small_shape()
    local x = sf.randn(s, pick(CUDA and { "f32", "f16", "bf16" } or { "f32", "f16", "bf16", "f64" }), o)
    local out = sf.tensor(s, pick(FP8), o)
    return { x = x, out = out, scale = fp8_scale(s, o) }, out
  end,
  dequantize = function(o)
    local s = small_shape()
    local out = sf.tensor(s, pick(CUDA and { "f32", "f16", "bf16" } or { "f32", "f16", "bf16", "f64" }), o)
    return { x = sf.randn(s, pick(FP8), o), scale = fp8_scale(s, o), out = out }, out
  end,
  -- the collectives at world 1 (each the identity, a copy where out is another tensor)
  all_reduce = function(o)
    local s, dt = small_shape(), pick(FLOATS)
    local x = sf.randn(s, dt, o)
    local out = chance(0.5) and sf.tensor(s, dt, o) or nil
    return { x = x, out = out, op = pick({ "sum", "prod", "max", "min", "avg" }) }, out or x
  end,
  all_gather = function(o)
    local s, dt = small_shape(), pick(FLOATS)
    local out = sf.tensor(s, dt, o)
    return { x = sf.randn(s, dt, o), out = out }, out
  end,
  reduce_scatter = function(o)
    local s, dt = small_shape(), pick(FLOATS)
    local out = sf.tensor(s, dt, o)
    return { x = sf.randn(s, dt, o), out = out, op = pick({ "sum", "max" }) }, out
  end,
  broadcast = function(o)
    local x = sf.randn(small_shape(), pick(FLOATS), o)
    return { x = x, root = 0 }, x
  end,
  kv_append = function(o)
    local dt, B, T, D = pick(FLOATS), rnd(1, 3), rnd(1, 4), head_dim()
    local H, Hkv = heads()
    local k, v = sf.randn({ B, T, Hkv, D }, dt, o), sf.randn({ B, T, Hkv, D }, dt, o)
    local args, pos = { k = k, v = v }, {}
    local cache, cap
    cache, cap, args.block_table = kv_layout(B, Hkv, D, o)
    for b = 1, B do pos[b] = rnd(0, math.max(0, cap - T)) end -- past the cache where cap < T
    args.k_cache, args.v_cache = sf.zeros(cache, dt, o), sf.zeros(cache, dt, o)
    args.positions = i32(pos, { B }, o)
    if chance(0.5) then args.q = sf.randn({ B, T, H, D }, dt, o) end
    if chance(0.2) then args.theta = rnd(1, 500000) end
    return args, args.k_cache
  end,
  embedding = function(o)
    local dt = pick(CUDA and { "f32", "f16", "bf16" } or { "f32", "f16", "bf16", "f64" })
    local V, dim, T = rnd(1, 12), rnd(1, 9), rnd(1, 6)
    local toks = {}
    for t = 1, T do toks[t] = rnd(0, V - 1) end
    local out = sf.tensor({ T, dim }, dt, o)
    return { table = sf.randn({ V, dim }, dt, o), tokens = i32(toks, { T }, o), out = out }, out
  end,
}
local fit_turn, fit_ran = rnd(#OPS) - 1, {}

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
      args[i] = chance(0.8) and pick({ "cpu", "cuda", "f32", "f16", "bf16", "f64", "i32", "e4m3", "e5m2", "x" }) or pick(WEIRD)
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
  -- an op on well-formed arguments (FIT above), so that the op itself runs and not only its
  -- checks; the ops take turns, and once an op has run, now and then one argument is dropped or
  -- swapped for a random value
  function()
    fit_turn = fit_turn % #OPS + 1
    local op = OPS[fit_turn]
    local fit = FIT[op.name]
    if not fit then return "no fitting call for " .. op.name end
    local args, out = fit({ device = p.device })
    local swapped = fit_ran[op.name] and chance(0.15)
    if swapped then
      local spec = pick(op.args)
      args[spec.name] = chance(0.3) and nil or ARG[spec.type]()
    end
    local r = sf.ops[op.name](args)
    fit_ran[op.name] = fit_ran[op.name] or not swapped
    return op.name .. " (fitting)", r, out
  end,
  function() collectgarbage(); return "collectgarbage" end,
}

-- the device still works: no sticky error left behind, and an op gives the right sum
local function device_works()
  sf.sync()
  local o = { device = p.device }
  local a, b = sf.from_table({ 1, 2, 3 }, { 3 }, "f16", o), sf.from_table({ 10, 20, 30 }, { 3 }, "f16", o)
  local out = sf.tensor({ 3 }, "f16", o)
  sf.ops.add { a = a, b = b, out = out }
  local got = out:totable()
  if got[1] ~= 11 or got[2] ~= 22 or got[3] ~= 33 then error("add gave " .. table.concat(got, " "), 0) end
end

local raised, kinds, cuda_errors, first_cuda_error = 0, {}, 0, nil
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
    -- a CUDA error is a Lua error too, but one a kernel fault leaves behind breaks the device for
    -- every later call: it fails the run (kernels run asynchronously, so the fault may be an
    -- earlier call's: log=true shows them)
    if type(what) == "string" and what:find("CUDA error", 1, true) then
      cuda_errors = cuda_errors + 1
      first_cuda_error = first_cuda_error or ("call %d: %s"):format(i, what)
      local fine, why = pcall(device_works)
      if not fine then
        error(("call %d (action %d, seed %d): %s; the device no longer works: %s"):format(i, action, seed, what,
          tostring(why)), 0)
      end
    end
  end
  if p.log then io.stderr:write(("%d action %d: %s\n"):format(i, action, ok and tostring(what) or tostring(what))) end
end
pool = {}
collectgarbage()
collectgarbage()
local fine, why = pcall(device_works)
if not fine then error(("after the run (seed %d) the device no longer works: %s"):format(seed, tostring(why)), 0) end
local succeeded = {}
for k in pairs(kinds) do succeeded[#succeeded + 1] = k end
table.sort(succeeded)
-- every registered op ran to the end at least once, through its fitting call or a random one
local missing = {}
for _, op in ipairs(OPS) do
  if not (kinds[op.name .. " (fitting)"] or kinds["op " .. op.name] or kinds["sf.op " .. op.name]) then
    missing[#missing + 1] = op.name
  end
end
print(("ok: fuzz seed %d: %d calls, %d raised a Lua error, no crash; calls that succeeded: %d, ops: %d of %d"):format(
  seed, p.calls, raised, #succeeded, #OPS - #missing, #OPS))
if cuda_errors > 0 then
  print(("   %d of the errors were CUDA errors, the device working after each; the first, %s"):format(cuda_errors,
    first_cuda_error))
end
-- a run where nothing got through the argument checks would test only them
if #succeeded < 15 then error(("only %d kinds of call succeeded (seed %d)"):format(#succeeded, seed), 0) end
if #missing > 0 then
  error(("no call of op %s succeeded in %d calls (seed %d): give it a fitting call in FIT"):format(
    table.concat(missing, ", "), p.calls, seed), 0)
end
