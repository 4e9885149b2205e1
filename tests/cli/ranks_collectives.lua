-- Run by tests/cli/ranks.sh as `sfbench --gpus N --device cpu` (or as a launcher's ranks): every
-- collective on every float dtype against the values each rank can work out alone; an error
-- names what differed. Prints "ok rank R of W" at the end.
local sf = require "sfbench"
local rank, world = sf.dist.rank(), sf.dist.world()
local o = { device = "cpu" }

-- rank r's contribution: element i is r + i/4 (exact in every dtype for small i and r)
local function contribution(r, n, dt)
  local v = {}
  for i = 1, n do v[i] = r + (i - 1) / 4 end
  return sf.from_table(v, { n }, dt, o)
end

local function expect(t, want, what)
  local got = t:to("cpu", "f64"):totable()
  for i = 1, #want do
    if math.abs(got[i] - want[i]) > 1e-9 * math.max(1, math.abs(want[i])) then
      error(("%s: element %d is %s, expected %s"):format(what, i, got[i], want[i]), 0)
    end
  end
end

local REDUCE = {
  sum = function(vs) local s = 0 for _, v in ipairs(vs) do s = s + v end return s end,
  prod = function(vs) local s = 1 for _, v in ipairs(vs) do s = s * v end return s end,
  max = function(vs) return math.max(table.unpack(vs)) end,
  min = function(vs) return math.min(table.unpack(vs)) end,
  avg = function(vs) local s = 0 for _, v in ipairs(vs) do s = s + v end return s / #vs end,
}

for _, dt in ipairs({ "f32", "f64", "f16", "bf16" }) do
  local n = 6
  for op, f in pairs(REDUCE) do
    local want = {}
    for i = 1, n do
      local vs = {}
      for r = 0, world - 1 do vs[#vs + 1] = r + (i - 1) / 4 end
      want[i] = f(vs)
    end
    if dt == "f16" or dt == "bf16" then   -- round the expectation as the dtype does
      want = sf.from_table(want, { n }, dt, o):to("cpu", "f64"):totable()
    end
    local x = contribution(rank, n, dt)
    sf.ops.all_reduce{ x = x, op = op }
    expect(x, want, ("all_reduce %s %s in place"):format(op, dt))
    local out = sf.tensor({ n }, dt, o)
    sf.ops.all_reduce{ x = contribution(rank, n, dt), out = out, op = op }
    expect(out, want, ("all_reduce %s %s"):format(op, dt))
  end
  -- all_gather: blocks in rank order
  local g = sf.tensor({ world * n }, dt, o)
  sf.ops.all_gather{ x = contribution(rank, n, dt), out = g }
  local want = {}
  for r = 0, world - 1 do for i = 1, n do want[#want + 1] = r + (i - 1) / 4 end end
  expect(g, want, "all_gather " .. dt)
  -- reduce_scatter: rank r gets block r of the sum; x's block j on rank r is 10·j + r + i/4
  local xs = {}
  for j = 0, world - 1 do for i = 1, n do xs[#xs + 1] = 10 * j + rank + (i - 1) / 4 end end
  local rs = sf.tensor({ n, 1 }, dt, o)
  sf.ops.reduce_scatter{ x = sf.from_table(xs, { world * n, 1 }, dt, o), out = rs }
  want = {}
  for i = 1, n do
    local s = 0
    for r = 0, world - 1 do s = s + 10 * rank + r + (i - 1) / 4 end
    want[i] = s
  end
  if dt == "f16" or dt == "bf16" then want = sf.from_table(want, { n }, dt, o):to("cpu", "f64"):totable() end
  expect(rs:view({ n }), want, "reduce_scatter " .. dt)
  -- broadcast from the last rank
  local b = contribution(rank, n, dt)
  sf.ops.broadcast{ x = b, root = world - 1 }
  expect(b, contribution(world - 1, n, "f64"):totable(), "broadcast " .. dt)
end

-- larger than one exchange slot (1 MiB): 300000 f32 elements
local n = 300000
local x = sf.tensor({ n }, "f32", o):fill(rank + 1)
sf.ops.all_reduce{ x = x }
local s = x:to("cpu", "f64"):totable()
if s[1] ~= world * (world + 1) / 2 or s[n] ~= s[1] then error("all_reduce over several slots: " .. s[1] .. " " .. s[n], 0) end

-- host-side exchanges
local m = sf.dist.max({ rank, -rank, 7 })
if m[1] ~= world - 1 or m[2] ~= 0 or m[3] ~= 7 then error("dist.max", 0) end
local g = sf.dist.gather(("r%d"):rep(rank + 1):format(rank, rank, rank, rank))
for r = 0, world - 1 do
  if g[r + 1] ~= ("r%d"):rep(r + 1):format(r, r, r, r) then error("dist.gather: rank " .. r .. "'s string is " .. tostring(g[r + 1]), 0) end
end
sf.dist.barrier()
print(("ok rank %d of %d (%s)"):format(rank, world, sf.dist.backend()))
