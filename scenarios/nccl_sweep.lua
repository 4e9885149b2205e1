-- The collectives over the ranks (sfbench --gpus N, or a launcher's ranks): all_reduce (sum,
-- out of place), all_gather, reduce_scatter (sum) and broadcast (from rank 0, in place) over
-- message sizes, with nccl-tests' algorithm and bus bandwidths (its doc/PERFORMANCE.md):
--   algbw = S / t, S the message size in bytes as nccl-tests counts it:
--     all_reduce, broadcast: the buffer each rank holds (x; all_reduce's out is as large);
--     all_gather: the gathered buffer (out, world × each rank's x);
--     reduce_scatter: the buffer each rank reduces (x, world × each rank's out).
--   busbw = algbw × 2(n−1)/n (all_reduce), × (n−1)/n (all_gather, reduce_scatter), × 1 (broadcast),
--     n the world size: a rate to hold against the links' peak whatever n is. GB/s are 1e9 B/s.
-- A size that does not split into whole elements (and for all_gather and reduce_scatter into
-- world equal blocks) is rounded down to one that does, as nccl-tests does; the row's bytes is the
-- size measured. t is the median of the samples, each sample the slowest rank's (bench.run at
-- world > 1). Every rank runs every point; rank 0 alone prints and saves. A point whose buffers
-- do not fit some rank's free memory is left out, on every rank, with a note. At world 1 the
-- collectives are the identity: all_reduce, all_gather and reduce_scatter copy x into out (busbw
-- is 0, its factor is 0 at n = 1) and broadcast does nothing, so its points are left out.
-- Usage: sfbench --gpus N nccl_sweep [op=all_reduce,all_gather,reduce_scatter,broadcast]
--        [bytes=1K,4K,...,4G] (K, M, G, T: powers of 1024; at most 1024T) [dtype=bf16] [iters=N] [sample_ms=25]
--        [warmup_ms=500]
local sf = require "sfbench"
local params = require "sfbench.params"
local bench = require "sfbench.bench"
local sweep = require "sfbench.sweep"

local gpu = sf.device().backend == "cuda"
local world, rank = sf.dist.world(), sf.dist.rank()

-- on the GPU the powers of 4 from 1K to 4G (2^e bytes: 2^(e mod 10) of the unit 1024^(e div 10))
local default_bytes = { "1K", "64K" }
if gpu then
  default_bytes = {}
  for e = 10, 32, 2 do default_bytes[#default_bytes + 1] = ("%d%s"):format(1 << e % 10, ({ "K", "M", "G" })[e // 10]) end
end

local OP_NAMES = { "all_reduce", "all_gather", "reduce_scatter", "broadcast" }
local p = params.get(bench.steady_defaults {
  op = OP_NAMES,
  bytes = default_bytes,
  dtype = { "bf16" },
}, { op = OP_NAMES, dtype = { "bf16", "f16", "f32", "f64" } })
local steady = bench.steady(p)

local UNITS = { [""] = 1, K = 1 << 10, M = 1 << 20, G = 1 << 30, T = 1 << 40 }
local sizes = {}
for _, raw in ipairs(p.bytes) do
  local digits, unit = tostring(raw):upper():match("^(%d+)([KMGT]?)$")
  local n = digits and #digits <= 16 and math.tointeger(tonumber(digits))
  if not n or n < 1 or n > (1 << 50) // UNITS[unit] then
    params.usage_error(("bad value '%s' for bytes: expected a positive size in bytes, K, M, G or T (powers of 1024) up to 1024T, e.g. 64K"):format(raw))
  end
  sizes[#sizes + 1] = n * UNITS[unit]
end

-- each op: how many equal blocks its message S splits into (one a rank for all_gather and
-- reduce_scatter), the bytes of buffers a rank holds, busbw's factor, and its call
local OPS = {
  all_reduce = { blocks = 1, held = function(S) return 2 * S end, factor = 2 * (world - 1) / world,
    make = function(c, dt)
      local x, out = sf.randn({ c }, dt), sf.tensor({ c }, dt)
      return function(s) sf.ops.all_reduce { x = x, out = out, stream = s } end
    end },
  all_gather = { blocks = world, held = function(S) return S + S // world end, factor = (world - 1) / world,
    make = function(c, dt)
      local x, out = sf.randn({ c }, dt), sf.tensor({ world * c }, dt)
      return function(s) sf.ops.all_gather { x = x, out = out, stream = s } end
    end },
  reduce_scatter = { blocks = world, held = function(S) return S + S // world end, factor = (world - 1) / world,
    make = function(c, dt)
      local x, out = sf.randn({ world * c }, dt), sf.tensor({ c }, dt)
      return function(s) sf.ops.reduce_scatter { x = x, out = out, stream = s } end
    end },
  broadcast = { blocks = 1, held = function(S) return S end, factor = 1,
    make = function(c, dt)
      local x = sf.randn({ c }, dt)
      return function(s) sf.ops.broadcast { x = x, root = 0, stream = s } end
    end },
}

-- the bytes of one element in every block: a size is rounded down to a multiple
local function unit(op, dtype)
  return sf.tensor({ 1 }, dtype, { device = "cpu" }):nbytes() * OPS[op].blocks
end
for _, op in ipairs(p.op) do
  for _, dtype in ipairs(p.dtype) do
    for i, S in ipairs(sizes) do
      if S < unit(op, dtype) then
        params.usage_error(("bytes=%s: %s of %s over %d rank(s) needs at least %d bytes"):format(p.bytes[i], op, dtype,
          world, unit(op, dtype)))
      end
    end
  end
end

if rank == 0 then
  if world == 1 then
    io.stderr:write("nccl_sweep: at world 1 the collectives are the identity: all_reduce, all_gather and reduce_scatter",
      " copy x into out (busbw 0), broadcast does nothing (left out); sfbench --gpus N runs N ranks\n")
  end
  if not gpu then
    io.stderr:write("nccl_sweep: on the CPU backend (CPU ranks exchange through shared memory) the timings only exercise the sweep\n")
  end
end

local stream = sf.stream()
local GiB = 2 ^ 30
sweep.run {
  params = p,
  points = sweep.product({ op = p.op, dtype = p.dtype, bytes = sizes }, { "op", "dtype", "bytes" }),
  distributed = true,
  context_extra = { world = world, backend = sf.dist.backend() },
  columns = { "op", "dtype", "bytes", { key = "us", title = "median µs", fmt = "%.2f" },
    { key = "algbw", title = "algbw GB/s", fmt = "%.2f" }, { key = "busbw", title = "busbw GB/s", fmt = "%.2f" }, "world", "note" },
  column_kinds = { bytes = "parameter", world = "parameter", algbw = "measurement", busbw = "measurement" },
  measure = function(pt)
    local o, u = OPS[pt.op], unit(pt.op, pt.dtype)
    local S = pt.bytes - pt.bytes % u
    local row = { op = pt.op, dtype = pt.dtype, bytes = S, world = world }
    if pt.op == "broadcast" and world == 1 then
      row.note = "left out: at world 1 broadcast does nothing"
      return row
    end
    -- every rank skips the point where any one cannot hold its buffers
    local held = o.held(S)
    local ok, call = held < sf.memory().free, nil
    if ok then
      ok, call = pcall(o.make, S // u, pt.dtype)
      if not ok and not tostring(call):find("^out of %a+ memory") then error(call, 0) end
    end
    if sf.dist.max({ ok and 0 or 1 })[1] > 0 then
      call = nil
      collectgarbage()
      row.note = ("left out: its buffers take %.2f GiB a rank, more than some rank has free"):format(held / GiB)
      return row
    end
    local r = bench.run({
      name = ("%s %s %d"):format(pt.op, pt.dtype, S),
      fn = function() call(stream) end,
      bytes = S,
      stream = stream,
    }, steady)
    call = nil
    collectgarbage()
    local sec = r.stats.median / 1e3
    row.us, row.algbw = sec * 1e6, S / sec / 1e9
    row.busbw = row.algbw * o.factor
    row.noise, row.samples, row.stop = r.stats.noise, r.stats.n, r.stop_reason
    return row, r
  end,
}
