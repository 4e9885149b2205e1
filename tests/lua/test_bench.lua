-- luacheck: allow defined top
local lu = require "luaunit"
local support = require "fake_sf"
local bench = require "sfbench.bench"

TestBench = {}

function TestBench:setUp()
  self.clock = support.sim_clock()
  self.restore = support.patch(self.clock.fields)
end

function TestBench:tearDown()
  self.restore()
end

-- A kernel taking `ms` of simulated time a call, counting its calls.
function TestBench:kernel(ms)
  local k = { calls = 0 }
  k.fn = function()
    k.calls = k.calls + 1
    self.clock.advance(ms)
  end
  return k
end

function TestBench:test_fixed_iters()
  local k = self:kernel(2)
  local r = bench.run({ name = "fixed", fn = k.fn, iters = 7, warmup = 3, warmup_time = 0, batch = 1 })
  lu.assertEquals(#r.samples, 7)
  lu.assertEquals(r.samples, { 2, 2, 2, 2, 2, 2, 2 })
  lu.assertEquals(k.calls, 11, "3 warm-up calls, the probe sample, 7 samples")
  lu.assertEquals(r.stop_reason, "iters")
  lu.assertEquals(r.stats.median, 2)
  lu.assertEquals(r.name, "fixed")
  lu.assertEquals(r.warnings, {})
  lu.assertEquals(self.clock.syncs, 1)
  lu.assertEquals(self.clock.flushes, 0)
  -- the simulated host queues as slowly as the GPU runs: every sample, even of one call, is
  -- queued behind a hold, and so is the probe before them
  lu.assertEquals(r.feed, "held")
  lu.assertEquals(self.clock.holds, 8)
end

function TestBench:test_hold_off()
  local k = self:kernel(1)
  local r = bench.run({ fn = k.fn, iters = 4, warmup = 0, batch = 1, hold = false })
  lu.assertEquals(self.clock.holds, 0)
  lu.assertEquals(k.calls, 4, "no probe without hold")
  lu.assertEquals(r.feed, "plain")
  bench.run({ fn = k.fn, iters = 3, warmup = 0, batch = 2 })
  lu.assertEquals(self.clock.holds, 4)
  lu.assertErrorMsgContains("'hold' must be a boolean", bench.run, { fn = k.fn, hold = 1 })
end

function TestBench:test_batch_cold_and_setup()
  local k = self:kernel(0.5)
  local setups = 0
  local r = bench.run({ fn = k.fn, iters = 5, batch = 4, warmup = 0,
    setup = function() setups = setups + 1; self.clock.advance(10) end })
  lu.assertEquals(r.samples, { 0.5, 0.5, 0.5, 0.5, 0.5 })
  lu.assertEquals(k.calls, 24, "the probe and 5 samples of 4")
  lu.assertEquals(setups, 6)
  lu.assertEquals(self.clock.flushes, 0)
  lu.assertEquals(r.batch, 4)
  lu.assertEquals(r.cold, false)
  r = bench.run({ fn = k.fn, iters = 3, cold = true, warmup = 0 })
  lu.assertEquals(self.clock.flushes, 4)
  lu.assertEquals(r.batch, 1)
  lu.assertErrorMsgContains("needs batch = 1", bench.run, { fn = k.fn, cold = true, batch = 2 })
end

function TestBench:test_auto_batch_and_warmup_time()
  -- 2^-7 ms calls: a 0.2 ms sample needs ceil(25.6) = 26; warm-up runs until 50 ms have passed
  local t = 2 ^ -7
  local k = self:kernel(t)
  local r = bench.run({ fn = k.fn, iters = 3, warmup = 1 })
  lu.assertEquals(r.batch, 26)
  -- one timed call, then batches of 26 until 50 ms have passed: 6400 calls, and at most one
  -- batch more; then the probe's 4 calls and 3 samples
  local warm = k.calls - 4 - 3 * 26
  lu.assertTrue(warm >= 6400 and warm <= 6400 + 26, "warm-up calls: " .. warm)
  lu.assertEquals(r.samples, { t, t, t })
  -- a long call is not batched
  k = self:kernel(5)
  lu.assertEquals(bench.run({ fn = k.fn, iters = 2 }).batch, 1)
end

function TestBench:test_converges_after_min_time()
  local r = bench.run({ fn = self:kernel(1).fn })
  -- noise 0 from the first sample; 0.5 s of measured time takes 500 samples of 1 ms
  lu.assertEquals(r.stop_reason, "converged")
  lu.assertEquals(#r.samples, 500)
end

function TestBench:test_converges_after_min_samples()
  local r = bench.run({ fn = self:kernel(100).fn, min_time = 0 })
  lu.assertEquals(r.stop_reason, "converged")
  lu.assertEquals(#r.samples, 10)
end

-- Calls alternate 1 ms and 2 ms: noise about 33%, never converging.
function TestBench:noisy()
  local calls = 0
  return function()
    calls = calls + 1
    self.clock.advance(calls % 2 == 1 and 1 or 2)
  end
end

function TestBench:test_timeout()
  local r = bench.run({ fn = self:noisy(), timeout = 1, warmup = 0 })
  lu.assertEquals(r.stop_reason, "timeout")
  -- the probe takes the first 1 ms call; samples go 2,1,2,1,...: with it, 666 of them reach
  -- exactly 1000 ms of wall time
  lu.assertEquals(#r.samples, 666)
end

function TestBench:test_max_samples()
  local r = bench.run({ fn = self:noisy(), max_samples = 20 })
  lu.assertEquals(r.stop_reason, "max_samples")
  lu.assertEquals(#r.samples, 20)
end

-- Runs bench.run over calls that each take gpu_ms (default 1) of GPU time and host_ms of host
-- time to queue.
function TestBench:paced(host_ms, opts, gpu_ms)
  local host = 0
  local restore = support.patch({ now = function() return host / 1000 end })
  local calls = 0
  opts.fn = function()
    calls = calls + 1
    self.clock.advance(gpu_ms or 1)
    host = host + host_ms
  end
  local r = bench.run(opts)
  restore()
  return r, calls
end

-- A host that queues a 1 ms call in 0.1 ms: after the probe, each sample is queued while the one
-- before runs, with no hold; one sample more than asked for is queued, and waited for at the end.
function TestBench:test_feed_ahead()
  local r, calls = self:paced(0.1, { iters = 5, warmup = 1, warmup_time = 0, batch = 3 })
  lu.assertEquals(r.feed, "ahead")
  lu.assertEquals(r.samples, { 1, 1, 1, 1, 1 })
  lu.assertEquals(self.clock.holds, 1, "only the probe is held")
  lu.assertEquals(calls, 1 + 3 * (1 + 5 + 1), "warm-up, probe, 5 samples, the one queued ahead")
  lu.assertEquals(self.clock.syncs, 2, "the warm-up's wait and the last one")
end

-- The probe queues at most 4 calls, however large the batch: a whole batch behind a hold could
-- fill the stream's queue. A host at 0.7 of the GPU's pace still keeps ahead of it.
function TestBench:test_probe_is_short()
  local r, calls = self:paced(0.7, { iters = 5, warmup = 1, warmup_time = 0, batch = 10 })
  lu.assertEquals(r.feed, "ahead")
  lu.assertEquals(calls, 1 + 4 + 10 * (5 + 1), "warm-up, probe, 5 samples, the one queued ahead")
end

-- Short samples stay held although the host is well ahead: 2 calls of 0.05 ms queued in 0.01 ms
-- each leave the host 0.08 ms ahead, under the 0.2 ms that feeding ahead asks for.
function TestBench:test_feed_held_when_sample_short()
  local r = self:paced(0.01, { iters = 3, warmup = 1, warmup_time = 0, batch = 2 }, 0.05)
  lu.assertEquals(r.feed, "held")
  r = self:paced(0.01, { iters = 3, warmup = 1, warmup_time = 0, batch = 8 }, 0.05)
  lu.assertEquals(r.feed, "ahead", "8 calls leave it 0.32 ms ahead")
end

-- A host that needs 0.9 of the GPU's time is not far enough ahead: samples stay held.
function TestBench:test_feed_held_when_host_slow()
  local r = self:paced(0.9, { iters = 4, warmup = 1, warmup_time = 0, batch = 2 })
  lu.assertEquals(r.feed, "held")
  lu.assertEquals(self.clock.holds, 5)
end

function TestBench:test_throughput()
  local r = bench.run({ fn = self:kernel(1).fn, iters = 3, flops = 2e12, bytes = 1e9 })
  lu.assertEquals(r.tflops, 2000)
  lu.assertEquals(r.gbs, 1000)
  r = bench.run({ fn = self:kernel(1).fn, iters = 3 })
  lu.assertNil(r.tflops)
  lu.assertNil(r.gbs)
end

function TestBench:test_throttling_warning()
  local readings = { { sm = 1980, sm_max = 1980, mem = 2619 }, { sm = 1000, sm_max = 2000, mem = 2619 } }
  local n = 0
  support.sf.clocks = function()
    n = n + 1
    return readings[n]
  end
  local r = bench.run({ fn = self:kernel(1).fn, iters = 2 })
  lu.assertEquals(r.warnings, { "SM clock at 1000 MHz, below 75% of max 2000 (throttling?)" })
  lu.assertEquals(r.clocks, { before = readings[1], after = readings[2] })
end

function TestBench.test_bad_options()
  lu.assertErrorMsgContains("bench.run: 'fn' must be a function", bench.run, {})
  lu.assertErrorMsgContains("bench.run: 'fn' must be a function", bench.run, { fn = 1 })
  lu.assertErrorMsgContains("bench.run: 'iters' must be an integer >= 1", bench.run,
    { fn = print, iters = 0 })
  lu.assertErrorMsgContains("bench.run: 'batch' must be an integer >= 1", bench.run,
    { fn = print, batch = 1.5 })
  lu.assertErrorMsgContains("bench.run: unknown option 'iter'", bench.run, { fn = print, iter = 5 })
  lu.assertErrorMsgContains("bench.run: expected a table", bench.run, print)
end

function TestBench.test_errors_from_fn_propagate()
  lu.assertErrorMsgContains("kernel failed", bench.run,
    { fn = function() error("kernel failed") end, iters = 1 })
end

-- bench.steady: the sweeps' steady-state parameters as bench.run options, checked up front
function TestBench:test_steady()
  lu.assertEquals(bench.steady { iters = 0, timeout = 5, sample_ms = 25, warmup_ms = 500 },
    { timeout = 5, sample_time = 0.025, warmup_time = 0.5 })
  lu.assertEquals(bench.steady { iters = 30, timeout = 1, sample_ms = 0.2, warmup_ms = 0 },
    { iters = 30, timeout = 1, sample_time = 0.0002, warmup_time = 0 })
  local ok, err = pcall(bench.steady, { iters = 0, timeout = 5, sample_ms = 0, warmup_ms = 500 })
  lu.assertFalse(ok)
  lu.assertEquals(tostring(err), "sample_ms must be a positive number of ms, got 0")
  lu.assertEquals(err.usage, tostring(err), "a usage error (exit status 2)")
  lu.assertEquals(bench.timeout(0.5), 0.5)
  for _, timeout in ipairs({ 0, -1 }) do
    ok, err = pcall(bench.steady, { iters = 0, timeout = timeout, sample_ms = 25, warmup_ms = 500 })
    lu.assertFalse(ok)
    lu.assertEquals(tostring(err), ("timeout must be a positive number of seconds, got %d"):format(timeout))
    lu.assertEquals(err.usage, tostring(err), "a usage error (exit status 2)")
  end
  ok, err = pcall(bench.steady, { iters = 0, timeout = 5, sample_ms = 25, warmup_ms = -1 })
  lu.assertFalse(ok)
  lu.assertEquals(tostring(err), "warmup_ms must be a number of ms >= 0, got -1")
  lu.assertEquals(err.usage, tostring(err), "a usage error (exit status 2)")
  for _, iters in ipairs({ -3, 2.5 }) do
    ok, err = pcall(bench.steady, { iters = iters, timeout = 5, sample_ms = 25, warmup_ms = 500 })
    lu.assertFalse(ok)
    lu.assertEquals(tostring(err), ("bad value '%s' for iters: expected 0 (the stopping rule) or a count of samples a case")
      :format(iters))
    lu.assertEquals(err.usage, tostring(err), "a usage error (exit status 2)")
  end
end

-- bench.steady_defaults: the sweeps' one set of steady-state defaults, per backend, under the
-- scenario's own parameters
function TestBench:test_steady_defaults()
  local spec = { model = "7b", timeout = 2 }
  lu.assertEquals(bench.steady_defaults(spec),
    { model = "7b", iters = 0, timeout = 2, sample_ms = 0.2, warmup_ms = 0 })
  lu.assertEquals(spec, { model = "7b", timeout = 2 }, "the spec is not changed")
  local restore = support.patch({ device = function() return { backend = "cuda" } end })
  local ok, got = pcall(bench.steady_defaults, { model = "7b" })
  restore()
  lu.assertTrue(ok, got)
  lu.assertEquals(got, { model = "7b", iters = 0, timeout = 5, sample_ms = 25, warmup_ms = 500 })
  lu.assertEquals(bench.steady(got), { timeout = 5, sample_time = 0.025, warmup_time = 0.5 })
end

-- bench.dram_copies: copies of an operand that together are four times the L2, 1 to 64
function TestBench:test_dram_copies()
  lu.assertEquals(bench.dram_copies(1e6), 1, "no L2 known (the CPU backend): one copy")
  local restore = support.patch({ device = function() return { backend = "cuda", l2_bytes = 50e6 } end })
  local got = { bench.dram_copies(67e6), bench.dram_copies(200e6), bench.dram_copies(201e6), bench.dram_copies(4.2e6),
    bench.dram_copies(1e6) }
  restore()
  lu.assertEquals(got, { 3, 1, 1, 48, 64 })
end

-- bench.run's second argument: options under the first (bench.steady's), checked the same way
function TestBench:test_base_options()
  local k = self:kernel(1)
  local base = bench.steady { iters = 3, timeout = 5, sample_ms = 0.2, warmup_ms = 0 }
  local r = bench.run({ fn = k.fn, warmup = 0, batch = 1 }, base)
  lu.assertEquals(#r.samples, 3, "iters from the base")
  r = bench.run({ fn = k.fn, warmup = 0, batch = 1, iters = 2 }, base)
  lu.assertEquals(#r.samples, 2, "the first table wins")
  lu.assertErrorMsgContains("bench.run: unknown option 'sample_ms'", bench.run, { fn = k.fn }, { sample_ms = 25 })
  lu.assertErrorMsgContains("bench.run: expected a table", bench.run, { fn = k.fn }, 25)
end

-- Graph mode against a stand-in for sf.graph on the simulated clock: a capture calls fn `calls`
-- times (counted apart, taking no time), a replay takes calls × graph_ms. The device claims to be
-- a GPU.
function TestBench:graphs(graph_ms)
  local g = { captures = {}, calls_before = {}, replays = 0, capturing = false }
  local k = { calls = 0, captured = 0 }
  k.fn = function()
    if g.capturing then
      k.captured = k.captured + 1
    else
      k.calls = k.calls + 1
      self.clock.advance(1 / 64)
    end
  end
  local restore = support.patch({
    device = function() return { backend = "cuda" } end,
    graph = function(fn, calls)
      g.calls_before[#g.calls_before + 1] = k.calls
      g.capturing = true
      for _ = 1, calls do fn() end
      g.capturing = false
      g.captures[#g.captures + 1] = calls
      return { launch = function()
        g.replays = g.replays + 1
        self.clock.advance(calls * graph_ms)
      end }
    end,
  })
  local restore_self = self.restore
  self.restore = function() restore(); restore_self() end
  return g, k
end

function TestBench:test_graph_fixed_batch()
  local g, k = self:graphs(1 / 512)
  local r = bench.run({ fn = k.fn, graph = true, batch = 8, iters = 5, warmup = 1, warmup_time = 0 })
  lu.assertEquals(g.captures, { 8 })
  lu.assertEquals(k.captured, 8)
  lu.assertEquals(g.calls_before, { 2 }, "the warm-up call and one more, both before the capture")
  lu.assertEquals(k.calls, 2, "no eager call after the capture: samples are replays")
  lu.assertEquals(g.replays, 2 + 1 + 5, "upload and timing replays, the probe, the samples")
  lu.assertTrue(r.graph)
  lu.assertEquals(r.batch, 8)
  lu.assertEquals(r.samples, { 1 / 512, 1 / 512, 1 / 512, 1 / 512, 1 / 512 }, "a replay's time over its calls")
end

-- the stream-launched batch (0.2 ms / (1/64 ms) → 13 calls) replays in under half a sample: the
-- graph is captured again, long enough for sample_time
function TestBench:test_graph_auto_batch_recaptures()
  local g, k = self:graphs(1 / 1024)
  local r = bench.run({ fn = k.fn, graph = true, iters = 3, warmup = 1, warmup_time = 0 })
  lu.assertEquals(#g.captures, 2)
  lu.assertEquals(g.captures[1], 13)
  lu.assertTrue(g.captures[2] >= 204 and g.captures[2] <= 205, "second capture of " .. g.captures[2] .. " calls")
  lu.assertEquals(r.batch, g.captures[2])
  for _, x in ipairs(r.samples) do lu.assertAlmostEquals(x, 1 / 1024, 1e-12) end
end

function TestBench:test_graph_calls_capped()
  local g, k = self:graphs(2 ^ -30)
  local r = bench.run({ fn = k.fn, graph = true, iters = 1, warmup = 1, warmup_time = 0 })
  lu.assertEquals(g.captures, { 13, 4096 })
  lu.assertEquals(r.batch, 4096)
end

function TestBench:test_graph_cold_captures_one_call()
  local g, k = self:graphs(1 / 512)
  local r = bench.run({ fn = k.fn, graph = true, cold = true, iters = 2, warmup = 1, warmup_time = 0 })
  lu.assertEquals(g.captures, { 1 })
  lu.assertEquals(self.clock.flushes, 2 + 1, "the probe and each sample flush L2 before their replay")
  lu.assertEquals(r.batch, 1)
end

-- even with no warm-up, an op's first call runs before the capture (it may autotune)
function TestBench:test_graph_first_call_outside_capture()
  local g, k = self:graphs(1 / 512)
  bench.run({ fn = k.fn, graph = true, warmup = 0, batch = 4, iters = 1 })
  lu.assertEquals(g.calls_before, { 1 })
end

function TestBench:test_graph_needs_cuda()
  local calls = 0
  local fn = function() calls = calls + 1 end
  local ok, err = pcall(bench.run, { fn = fn, graph = true, iters = 1 })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "bench.run: 'graph' times CUDA graph replays: it needs the CUDA backend, not the cpu backend")
  lu.assertEquals(calls, 0, "refused before the warm-up")
  lu.assertErrorMsgContains("bench.run: 'graph' must be a boolean", bench.run, { fn = fn, graph = "yes" })
end

return lu.LuaUnit.run()
