-- The memory-bound ops of the Llama-2 layer at its 4096-token shapes: effective bandwidth
-- (each byte read or written once) of rmsnorm, add_rmsnorm, rope (q and k heads of a packed
-- QKV buffer, one pass) and the residual add. "rotate" cycles back-to-back calls over 4 sets of
-- buffers, well past L2, so every call streams from DRAM; "cold" flushes L2 before one call.
-- Usage: sfbench memory_ops [tokens=4096] [hidden=4096] [dtype=f16,bf16] [mode=rotate,cold] [sets=4] [timeout=3]
local sf = require "sfbench"
local params = require "sfbench.params"
local bench = require "sfbench.bench"
local sweep = require "sfbench.sweep"

local gpu = sf.device().backend == "cuda"
local p = params.get({ tokens = gpu and 4096 or 64, hidden = gpu and 4096 or 256, dtype = { "f16", "bf16" },
  mode = { "rotate", "cold" }, sets = 4, timeout = gpu and 3 or 0.5 },
  { dtype = { "f16", "bf16", "f32", "f64" }, mode = { "rotate", "cold" } })
params.whole_numbers("tokens", p.tokens, 1, nil, "a token count, at least 1")
params.whole_numbers("hidden", p.hidden, 128, nil, "a hidden size, at least 128 (rope's heads are 128 wide)")
params.whole_numbers("sets", p.sets, 1, nil, "a count of buffer sets, at least 1")
bench.timeout(p.timeout)
local T, H = p.tokens, p.hidden
local heads, D = H // 128, 128

-- each op: bytes moved, and a maker of one buffer set's call
local OPS = {
  { name = "rmsnorm", bytes = function(es) return 2 * T * H * es + H * es end, make = function(dt, w)
    local x, out = sf.randn({ T, H }, dt), sf.tensor({ T, H }, dt)
    return function() sf.ops.rmsnorm { x = x, weight = w, out = out } end
  end },
  { name = "add_rmsnorm", bytes = function(es) return 4 * T * H * es + H * es end, make = function(dt, w)
    local x, r, out = sf.randn({ T, H }, dt), sf.randn({ T, H }, dt), sf.tensor({ T, H }, dt)
    return function() sf.ops.add_rmsnorm { x = x, residual = r, weight = w, out = out } end
  end },
  { name = "rope (q+k of packed qkv)", bytes = function(es) return 2 * T * 2 * heads * D * es end, make = function(dt)
    local qk = sf.randn({ 1, T, 3 * heads, D }, dt, { std = 0.1 }):slice(3, 1, 2 * heads)
    return function() sf.ops.rope { x = qk } end
  end },
  { name = "add", bytes = function(es) return 3 * T * H * es end, make = function(dt)
    local a, b, out = sf.randn({ T, H }, dt), sf.randn({ T, H }, dt), sf.tensor({ T, H }, dt)
    return function() sf.ops.add { a = a, b = b, out = out } end
  end },
}
local by_name = {}
for _, op in ipairs(OPS) do by_name[op.name] = op end
local names = {}
for i, op in ipairs(OPS) do names[i] = op.name end

sweep.run {
  params = p,
  points = sweep.product({ dtype = p.dtype, op = names, mode = p.mode }, { "dtype", "op", "mode" }),
  columns = { "dtype", "op", "mode", { key = "us", title = "median µs", fmt = "%.2f" },
    { key = "tbs", title = "TB/s", fmt = "%.2f" }, "batch" },
  measure = function(pt)
    local op = by_name[pt.op]
    local w = sf.randn({ H }, pt.dtype, { mean = 1, std = 0.1 })
    local sets = {}
    for i = 1, (pt.mode == "rotate" and p.sets or 1) do sets[i] = op.make(pt.dtype, w) end
    local k = 0
    local r = bench.run {
      name = pt.op,
      fn = function() k = k % #sets + 1; sets[k]() end,
      bytes = op.bytes(2),
      cold = pt.mode == "cold",
      timeout = p.timeout,
    }
    sets = nil
    collectgarbage()
    return { dtype = pt.dtype, op = pt.op, mode = pt.mode, tokens = T, hidden = H, us = r.stats.median * 1e3,
      tbs = r.gbs / 1e3, batch = r.batch, noise = r.stats.noise, stop = r.stop_reason }, r
  end,
}
