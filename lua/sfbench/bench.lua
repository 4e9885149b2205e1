-- The timing loop: warmup, event-timed samples, the stopping rule (doc/API.md, bench.run), clock check.
local sf = require "sfbench"
local stats = require "sfbench.stats"
local profile = require "sfbench.profile"
local params = require "sfbench.params"
local dist = require "sfbench.dist"
local roofline = require "sfbench.roofline"

local bench = {}

local KINDS = {
  string = { "a string", function(v) return type(v) == "string" end },
  ["function"] = { "a function", function(v) return type(v) == "function" end },
  boolean = { "a boolean", function(v) return type(v) == "boolean" end },
  positive = { "a positive number", function(v) return type(v) == "number" and v > 0 end },
  nonneg = { "a number >= 0", function(v) return type(v) == "number" and v >= 0 end },
  count0 = { "an integer >= 0", function(v) return math.type(v) == "integer" and v >= 0 end },
  count1 = { "an integer >= 1", function(v) return math.type(v) == "integer" and v >= 1 end },
  batch = { "an integer >= 1 or \"auto\"",
    function(v) return v == "auto" or (math.type(v) == "integer" and v >= 1) end },
  any = { "anything", function() return true end },
}

local OPTIONS = {
  name = "string", fn = "function", setup = "function", flops = "positive", bytes = "positive",
  warmup = "count0", iters = "count1", min_samples = "count1", max_samples = "count1",
  batch = "batch", warmup_time = "nonneg", sample_time = "positive", min_time = "nonneg", max_noise = "nonneg", timeout = "positive",
  cold = "boolean", hold = "boolean", stream = "any", graph = "boolean",
}

local DEFAULTS = {
  warmup = 1, min_samples = 10, min_time = 0.5, max_noise = 0.005, timeout = 15,
  max_samples = 10000, cold = false, hold = true, batch = "auto", warmup_time = 0.05, sample_time = 2e-4,
  graph = false,
}

local MAX_BATCH = 256
local MAX_GRAPH_CALLS = 4096

-- Checked options merged over `base` (e.g. bench.steady's), then over the defaults; errors blame
-- the caller of bench.run.
local function options(opts, base)
  if type(opts) ~= "table" or (base ~= nil and type(base) ~= "table") then
    error("bench.run: expected a table of options", 3)
  end
  local o = {}
  for k, v in pairs(DEFAULTS) do
    o[k] = v
  end
  for _, t in ipairs({ base or {}, opts }) do
    for k, v in pairs(t) do
      local kind = OPTIONS[k]
      if not kind then
        error(("bench.run: unknown option '%s'"):format(tostring(k)), 3)
      end
      if not KINDS[kind][2](v) then
        error(("bench.run: '%s' must be %s"):format(k, KINDS[kind][1]), 3)
      end
      o[k] = v
    end
  end
  if o.fn == nil then
    error("bench.run: 'fn' must be a function", 3)
  end
  if o.cold and o.batch == "auto" then o.batch = 1 end
  if o.cold and o.batch > 1 then
    error("bench.run: 'cold' flushes L2 once a sample, so it needs batch = 1", 3)
  end
  if o.graph and sf.device().backend ~= "cuda" then
    error(("bench.run: 'graph' times CUDA graph replays: it needs the CUDA backend, not the %s backend")
      :format(sf.device().backend), 3)
  end
  return o
end

-- Why sampling stops after this sample, or nil to go on.
local function stop_reason(o, n, total_ms, noise, wall_s)
  if o.iters then
    return n >= o.iters and "iters" or nil
  end
  if n >= o.min_samples and total_ms >= o.min_time * 1000 and noise < o.max_noise then
    return "converged"
  end
  if wall_s >= o.timeout then
    return "timeout"
  end
  if n >= o.max_samples then
    return "max_samples"
  end
end

-- Hot mode for short kernels: back-to-back calls in one sample, enough of them that a sample
-- lasts `sample_time` seconds, so event overhead and launch gaps stop dominating.
local function batch_size(o, call_ms)
  if o.batch ~= "auto" then return o.batch end
  if call_ms <= 0 then return 1 end
  return math.max(1, math.min(MAX_BATCH, math.ceil(o.sample_time * 1e3 / call_ms)))
end

-- Calls fn until both `warmup` calls and `warmup_time` seconds have passed (clocks ramp up to
-- the load's steady state, caches and lazy allocations settle); returns the fastest of the
-- `warmup` calls timed one at a time, in ms (a late slow one, e.g. an allocation, must not
-- shrink the batch). The rest of warmup_time runs calls back to back, a sample's worth between
-- waits, so that the GPU sees the sustained load that the samples will put on it.
local function warm_up(o)
  local fn, setup = o.fn, o.setup
  if o.warmup == 0 and o.batch ~= "auto" then return 0 end
  local ev_start, ev_end = sf.event(), sf.event()
  local start, calls, ms = sf.now(), 0, math.huge
  repeat
    if setup then setup() end
    ev_start:record(o.stream)
    fn()
    ev_end:record(o.stream)
    ms = math.min(ms, sf.elapsed(ev_start, ev_end))
    calls = calls + 1
  until calls >= o.warmup
  ms = dist.agree({ ms })[1]
  if o.warmup > 0 then
    local per = batch_size(o, ms)
    while dist.agree({ sf.now() - start })[1] < o.warmup_time do
      for _ = 1, per do
        if setup then setup() end
        fn()
      end
      sf.sync()
    end
  end
  sf.sync()
  return ms
end

-- The steady-state parameters of the scenarios that time whole implementations (the sweeps and
-- ab), as defaults for params.get: `spec` with those it does not set added. iters: 0 for the stopping rule; timeout: seconds a case may sample; sample_ms: each
-- sample is back-to-back calls lasting at least this long; warmup_ms: back-to-back calls before
-- the samples, so the clock settles where the load puts it. The CPU backend's are short: its
-- timings only exercise a sweep.
function bench.steady_defaults(spec)
  local gpu = sf.device().backend == "cuda"
  local defaults = { iters = 0, timeout = gpu and 5 or 1, sample_ms = gpu and 25 or 0.2, warmup_ms = gpu and 500 or 0 }
  local out = {}
  for k, v in pairs(spec) do out[k] = v end
  for k, v in pairs(defaults) do
    if out[k] == nil then out[k] = v end
  end
  return out
end

-- parameter `key` (in `unit`) as a positive number, else a usage error naming it; returns it
local function positive(key, v, unit)
  if not (type(v) == "number" and v > 0) then
    params.usage_error(("%s must be a positive number of %s, got %s"):format(key, unit, tostring(v)))
  end
  return v
end

-- A scenario's timeout parameter (seconds a case may sample, bench.run's `timeout`), checked
-- before anything runs: a usage error naming it unless it is a positive number. Returns it.
function bench.timeout(t) return positive("timeout", t, "seconds") end

-- From a scenario's steady-state parameters (bench.steady_defaults), the bench.run options they
-- mean (bench.run's second argument). Bad iters, timeout, sample_ms or warmup_ms is a usage
-- error naming it (exit status 2), raised when the scenario starts rather than at its first
-- measurement.
function bench.steady(p)
  params.whole_numbers("iters", p.iters, 0, nil, "0 (the stopping rule) or a count of samples a case")
  bench.timeout(p.timeout)
  positive("sample_ms", p.sample_ms, "ms")
  if not (type(p.warmup_ms) == "number" and p.warmup_ms >= 0) then
    params.usage_error(("warmup_ms must be a number of ms >= 0, got %s"):format(tostring(p.warmup_ms)))
  end
  return { iters = p.iters > 0 and p.iters or nil, timeout = p.timeout, sample_time = p.sample_ms / 1000,
    warmup_time = p.warmup_ms / 1000 }
end

-- A sweep's launch= list ("stream", "graph": bench.run{graph = true}) checked before anything
-- runs: graph replays need the CUDA backend. Returns the list.
function bench.launches(list)
  local backend = sf.device().backend
  for _, l in ipairs(list) do
    if l == "graph" and backend ~= "cuda" then
      params.usage_error(("launch=graph times CUDA graph replays: it needs the CUDA backend, not the %s backend")
        :format(backend))
    end
  end
  return list
end

-- The DRAM bandwidth a floor is taken against, bytes/s, and where it comes from: peak_tbs (TB/s)
-- when positive, else the device's 2 × memory clock × bus width; nil where neither is known (the
-- CPU backend).
function bench.peak_dram(peak_tbs)
  local dev = sf.device()
  if peak_tbs and peak_tbs > 0 then return peak_tbs * 1e12, "the peak_tbs parameter" end
  local device_peak = roofline.dram_bandwidth(dev)
  if device_peak then return device_peak, "the device: 2 × memory clock × bus width" end
end

-- How many copies of an operand of `bytes` a sweep cycles over so that together they are four
-- times the device's L2, and each call reads its copy from DRAM: 64 at most (an operand under a
-- sixteenth of the L2 then stays partly in it), 1 where the L2 is unknown (the CPU backend).
-- scenarios/torch/reference.py's decode does the same.
function bench.dram_copies(bytes)
  local l2 = sf.device().l2_bytes or 0
  return math.min(64, math.max(1, math.ceil(4 * l2 / bytes)))
end

-- Queues one sample: setup, the L2 flush of cold mode, then `steps` steps (calls of fn, or
-- replays of a graph of them) between two events.
local function queue_sample(o, step, steps, ev_start, ev_end)
  if o.setup then o.setup() end
  if o.cold then sf.flush_l2(o.stream) end
  ev_start:record(o.stream)
  for _ = 1, steps do
    step()
  end
  ev_end:record(o.stream)
end

-- ms of one replay of graph g on o.stream, the second of two (the first also uploads it)
local function replay_ms(o, g)
  local ev_start, ev_end = sf.event(), sf.event()
  local ms
  for _ = 1, 2 do
    ev_start:record(o.stream)
    g:launch(o.stream)
    ev_end:record(o.stream)
    ms = sf.elapsed(ev_start, ev_end)
  end
  return dist.agree({ ms })[1]
end

-- Graph mode, as triton's do_bench_cudagraph: `calls` calls of fn captured into one CUDA graph
-- (sf.graph), which each sample replays once; returns the graph and its number of calls. fn runs
-- once first, outside the capture, so that what an op does on its first call only (autotuning,
-- a plan, growing its scratch) is done, not captured. With batch "auto" the first graph takes
-- the stream-launched batch; where a replay of it lasts under half of sample_time (the launch
-- gaps a graph removes were most of a call's time), it is captured again, as many calls longer
-- as a sample needs (at most MAX_GRAPH_CALLS).
local function capture(o, calls)
  o.fn()
  sf.sync()
  local g = sf.graph(o.fn, calls, o.stream)
  local ms = replay_ms(o, g)
  if o.batch ~= "auto" or ms >= o.sample_time * 1e3 / 2 then return g, calls end
  local more = math.min(MAX_GRAPH_CALLS, math.ceil(calls * o.sample_time * 1e3 / math.max(ms, 1e-6)))
  if more <= calls then return g, calls end
  g = sf.graph(o.fn, more, o.stream)
  replay_ms(o, g)
  return g, more
end

-- How samples reach the GPU ("feed"). With hold (the default) a discarded probe of up to
-- PROBE_CALLS calls is queued behind sf.hold and released whole; it measures the host's time to
-- queue a call against the GPU's time to run it. (Not a whole batch: that can hold more launches
-- than a stream queues, and the host would then block on the held stream until the hold's guard
-- ends it.) Where the host needs under AHEAD_RATIO of the GPU's time, samples are queued one
-- ahead ("ahead"): each is queued while the one before runs, so the GPU never waits between
-- samples and the load is the sustained one (an idle gap before each sample lets a power-capped
-- GPU clock up, flattering whatever follows). Otherwise ("held") each sample is queued behind
-- its own hold, so the GPU waits while the host queues, but the sample is still its calls back
-- to back. Ahead also needs the host to finish queueing a sample AHEAD_SLACK_MS before the GPU
-- finishes the one before: a short sample has little to gain (too short an idle gap for the
-- clock to move) and much to lose to a hiccup of the host. Without hold ("plain") samples run as
-- queued.
local AHEAD_RATIO = 0.8     -- under 1 the GPU never starves; the rest is room for the host's jitter
local AHEAD_SLACK_MS = 0.2
local PROBE_CALLS = 4

function bench.run(opts, base)
  local o = options(opts, base)
  local together = dist.together()
  local _ <close> = o.name and profile.range(o.name)
  local batch = batch_size(o, warm_up(o))
  profile.once(o)
  -- a sample is `steps` steps: `batch` calls of fn, or one replay of a graph of `batch` calls
  local step, steps = o.fn, batch
  if o.graph then
    local g
    g, batch = capture(o, batch)
    step, steps = function() g:launch(o.stream) end, 1
  end
  local before = sf.clocks()
  local evs = { { sf.event(), sf.event() }, { sf.event(), sf.event() } }
  local samples, n, mean, m2, total_ms = {}, 0, 0, 0, 0
  local start = sf.now()
  local reason
  local held_out = 0
  local function held_sample(ev, count)
    sf.hold(o.stream)
    local t0 = sf.now()
    queue_sample(o, step, count, ev[1], ev[2])
    local queue_ms = (sf.now() - t0) * 1000
    if not sf.release() then held_out = held_out + 1 end
    return sf.elapsed(ev[1], ev[2]), queue_ms
  end
  local feed = "plain"
  if o.hold then
    local probe = math.min(steps, PROBE_CALLS)
    local gpu_ms, queue_ms = held_sample(evs[1], probe)
    local slack_ms = (gpu_ms - queue_ms) * steps / probe
    local ahead = queue_ms < AHEAD_RATIO * gpu_ms and slack_ms >= AHEAD_SLACK_MS
    -- several ranks: never ahead, since the exchange that agrees on each sample must not run
    -- beside the next one's collectives
    feed = (ahead and not together) and "ahead" or "held"
  end
  if feed == "ahead" then queue_sample(o, step, steps, evs[1][1], evs[1][2]) end
  repeat
    local ev, ms = evs[n % 2 + 1], nil
    if feed == "ahead" then
      local nxt = evs[(n + 1) % 2 + 1]
      queue_sample(o, step, steps, nxt[1], nxt[2])
      ms = sf.elapsed(ev[1], ev[2])
    elseif feed == "held" then
      ms = held_sample(ev, steps)
    else
      queue_sample(o, step, steps, ev[1], ev[2])
      ms = sf.elapsed(ev[1], ev[2])
    end
    local wall_s = sf.now() - start
    if together then ms, wall_s = table.unpack(dist.agree({ ms, wall_s })) end
    total_ms = total_ms + ms
    local x = ms / batch
    n = n + 1
    samples[n] = x
    -- Welford's running variance keeps the stopping check O(1) a sample.
    local delta = x - mean
    mean = mean + delta / n
    m2 = m2 + delta * (x - mean)
    local std = n > 1 and math.sqrt(m2 / (n - 1)) or 0
    reason = stop_reason(o, n, total_ms, mean ~= 0 and std / mean or 0, wall_s)
  until reason
  if feed == "ahead" then sf.sync() end   -- the sample queued ahead of the last one
  local after = sf.clocks()
  local warnings = {}
  if after and after.sm and after.sm_max and after.sm < 0.75 * after.sm_max then
    warnings[#warnings + 1] = ("SM clock at %.0f MHz, below 75%% of max %.0f (throttling?)")
      :format(after.sm, after.sm_max)
  end
  if held_out > 0 then
    warnings[#warnings + 1] = ("%d sample(s) outlived the stream hold (too much work queued per batch?)"):format(held_out)
  end
  local s = stats.summary(samples)
  return {
    name = o.name,
    samples = samples,
    stats = s,
    stop_reason = reason,
    tflops = o.flops and o.flops / s.median / 1e9,
    gbs = o.bytes and o.bytes / s.median / 1e6,
    clocks = { before = before, after = after },
    warnings = warnings,
    batch = batch,
    cold = o.cold,
    feed = feed,
    graph = o.graph,
    ranks = together and sf.dist.world() or nil,
  }
end

return bench
