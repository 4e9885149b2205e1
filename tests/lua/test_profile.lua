-- What profilers are shown (sfbench.profile): the NVTX ranges of a sweep, of each point and of
-- each bench.run, balanced however a point ends; names that ncu's filters can address; under
-- --profile, one call of each case between cudaProfilerStart and Stop. sf's hooks are swapped
-- for recorders of one log, the device for a simulated clock.
-- luacheck: allow defined top
local lu = require "luaunit"
local support = require "fake_sf"
local bench = require "sfbench.bench"
local sweep = require "sfbench.sweep"
local profile = require "sfbench.profile"

TestProfile = {}

function TestProfile:setUp()
  local log = {}
  self.log = log
  self.dir = support.tmpdir()
  self.clock = support.sim_clock()
  local fields = { output_dir = self.dir, quiet = true, script_name = "unit_sweep", profile = false }
  for k, v in pairs(self.clock.fields) do fields[k] = v end
  fields.nvtx_push = function(name) log[#log + 1] = "push " .. name end
  fields.nvtx_pop = function() log[#log + 1] = "pop" end
  fields.profiler_start = function() log[#log + 1] = "start" end
  fields.profiler_stop = function() log[#log + 1] = "stop" end
  fields.sync = function() log[#log + 1] = "sync" end
  self.restore = support.patch(fields)
  self.restore_io = support.patch({ stdout = support.capture() }, io)
end

function TestProfile:tearDown()
  self.restore_io()
  self.restore()
  support.rmtree(self.dir)
end

-- the log without the syncs
function TestProfile:events()
  local out = {}
  for _, e in ipairs(self.log) do
    if e ~= "sync" then out[#out + 1] = e end
  end
  return out
end

function TestProfile:kernel()
  return function()
    self.log[#self.log + 1] = "call"
    self.clock.advance(1)
  end
end

function TestProfile:test_sweep_and_point_ranges()
  local fn = self:kernel()
  sweep.run({
    points = sweep.product({ n = { 1, 2 } }),
    measure = function(p)
      local r = bench.run({ name = "impl", fn = fn, iters = 1, warmup = 0, batch = 1, hold = false })
      return { n = p.n, ms = r.stats.median }, r
    end,
  })
  lu.assertEquals(self:events(), { "push unit_sweep",
    "push n=1", "push impl", "call", "pop", "pop",
    "push n=2", "push impl", "call", "pop", "pop",
    "pop" })
end

function TestProfile:test_ranges_closed_when_a_point_fails()
  local ok, err = pcall(sweep.run, {
    name = "failing",
    points = { { n = 1 }, { n = 2 } },
    measure = function(p)
      if p.n == 2 then bench.run({ name = "bad", fn = function() error("kernel failed") end, iters = 1 }) end
      return { n = p.n }
    end,
  })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "kernel failed")
  lu.assertEquals(self:events(), { "push failing", "push n=1", "pop", "push n=2", "push bad", "pop", "pop", "pop" })
end

-- '/' nests push/pop ranges in ncu's filters and '@' ends a domain: neither is left in a name
function TestProfile:test_names_safe_for_ncu_filters()
  do
    local _ <close> = profile.range("kernel=a/b.cu dev@1")
  end
  lu.assertEquals(self:events(), { "push kernel=a_b.cu dev_1", "pop" })
end

function TestProfile:test_unnamed_run_opens_no_range()
  bench.run({ fn = self:kernel(), iters = 1, warmup = 0, batch = 1, hold = false })
  lu.assertEquals(self:events(), { "call" })
end

-- --profile: the warm-up calls, then exactly one call between start and stop with the device
-- idle at both ends, then the samples
function TestProfile:test_profile_runs_one_call_in_the_capture_range()
  support.sf.profile = true
  local setups = 0
  bench.run({ name = "p", fn = self:kernel(), iters = 2, warmup = 2, warmup_time = 0, batch = 1, hold = false,
    setup = function() setups = setups + 1 end })
  lu.assertEquals(self:events(), { "push p", "call", "call", "start", "call", "stop", "call", "call", "pop" })
  local i = 1
  while self.log[i] ~= "start" do i = i + 1 end
  lu.assertEquals({ self.log[i - 1], self.log[i + 1], self.log[i + 2], self.log[i + 3] },
    { "sync", "call", "sync", "stop" })
  lu.assertEquals(setups, 2 + 1 + 2, "warm-up, the profiled call, the samples")
end

function TestProfile:test_profiler_stopped_when_the_call_fails()
  support.sf.profile = true
  local calls = 0
  local ok = pcall(bench.run, { fn = function()
    calls = calls + 1
    if calls > 1 then error("second call failed") end
  end, iters = 1, warmup = 1, warmup_time = 0, batch = 1, hold = false })
  lu.assertFalse(ok)
  lu.assertEquals(self:events(), { "start", "stop" })
end

function TestProfile:test_no_profiler_calls_without_profile()
  bench.run({ fn = self:kernel(), iters = 1, warmup = 1, warmup_time = 0, batch = 1, hold = false })
  lu.assertEquals(self:events(), { "call", "call" })
end

return lu.LuaUnit.run()
