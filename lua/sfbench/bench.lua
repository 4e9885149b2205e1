-- The timing loop: warmup, event-timed samples, the stopping rule of GUIDE.md §4, clock check.
local sf = require "sfbench"
local stats = require "sfbench.stats"

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
  cold = "boolean", hold = "boolean", stream = "any",
}

local DEFAULTS = {
  warmup = 1, min_samples = 10, min_time = 0.5, max_noise = 0.005, timeout = 15,
  max_samples = 10000, cold = false, hold = true, batch = "auto", warmup_time = 0.05, sample_time = 2e-4,
}

local MAX_BATCH = 256

-- Checked options merged over the defaults; errors blame the caller of bench.run or bench.interleave.
local function options(opts)
  if type(opts) ~= "table" then
    error("bench.run: expected a table of options", 3)
  end
  local o = {}
  for k, v in pairs(DEFAULTS) do
    o[k] = v
  end
  for k, v in pairs(opts) do
    local kind = OPTIONS[k]
    if not kind then
      error(("bench.run: unknown option '%s'"):format(tostring(k)), 3)
    end
    if not KINDS[kind][2](v) then
      error(("bench.run: '%s' must be %s"):format(k, KINDS[kind][1]), 3)
    end
    o[k] = v
  end
  if o.fn == nil then
    error("bench.run: 'fn' must be a function", 3)
  end
  if o.cold and o.batch == "auto" then o.batch = 1 end
  if o.cold and o.batch > 1 then
    error("bench.run: 'cold' flushes L2 once a sample, so it needs batch = 1", 3)
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

-- Calls fn until both `warmup` calls and `warmup_time` seconds have passed (clocks ramp up,
-- caches and lazy allocations settle); returns the fastest call in ms (a late slow one, e.g. an
-- allocation, must not shrink the batch).
local function warm_up(o)
  local fn, setup = o.fn, o.setup
  if o.warmup == 0 and o.batch ~= "auto" then return 0 end
  local ev_start, ev_end = sf.event(), sf.event()
  local start, calls, ms = sf.now(), 0, math.huge
  while calls < math.max(o.warmup, 1) or sf.now() - start < o.warmup_time do
    if setup then setup() end
    ev_start:record(o.stream)
    fn()
    ev_end:record(o.stream)
    ms = math.min(ms, sf.elapsed(ev_start, ev_end))
    calls = calls + 1
    if o.warmup == 0 then break end
  end
  sf.sync()
  return ms
end

-- Hot mode for short kernels: back-to-back calls in one sample, enough of them that a sample
-- lasts `sample_time` seconds, so event overhead and launch gaps stop dominating.
local function batch_size(o, call_ms)
  if o.batch ~= "auto" then return o.batch end
  if call_ms <= 0 then return 1 end
  return math.max(1, math.min(MAX_BATCH, math.ceil(o.sample_time * 1e3 / call_ms)))
end

-- One case's sampling state (warm-up done, batch chosen): sample() takes one sample and returns
-- why sampling may stop after it (or nil); result() summarises.
local function sampler(o)
  local fn, setup, stream = o.fn, o.setup, o.stream
  local batch = batch_size(o, warm_up(o))
  local before = sf.clocks()
  local ev_start, ev_end = sf.event(), sf.event()
  local samples, n, mean, m2, total_ms = {}, 0, 0, 0, 0
  local start = sf.now()
  local reason
  -- a sample's calls are queued behind sf.hold and run back to back at sf.release, so neither
  -- the host's pace of queueing (slower than a µs kernel) nor the latency of the first launch
  -- onto an idle GPU (the previous sample was waited for) leaks into the sample: it is GPU time
  local hold = o.hold and sf.hold
  local held_out = 0
  local s = {}
  function s.sample()
    if setup then setup() end
    if o.cold then sf.flush_l2(stream) end
    if hold then hold(stream) end
    ev_start:record(stream)
    for _ = 1, batch do
      fn()
    end
    ev_end:record(stream)
    if hold and not sf.release() then held_out = held_out + 1 end
    local ms = sf.elapsed(ev_start, ev_end)
    total_ms = total_ms + ms
    local x = ms / batch
    n = n + 1
    samples[n] = x
    -- Welford's running variance keeps the stopping check O(1) a sample.
    local delta = x - mean
    mean = mean + delta / n
    m2 = m2 + delta * (x - mean)
    local std = n > 1 and math.sqrt(m2 / (n - 1)) or 0
    reason = stop_reason(o, n, total_ms, mean ~= 0 and std / mean or 0, sf.now() - start)
    return reason
  end
  function s.result()
    local after = sf.clocks()
    local warnings = {}
    if after and after.sm and after.sm_max and after.sm < 0.75 * after.sm_max then
      warnings[#warnings + 1] = ("SM clock at %.0f MHz, below 75%% of max %.0f (throttling?)")
        :format(after.sm, after.sm_max)
    end
    if held_out > 0 then
      warnings[#warnings + 1] = ("%d sample(s) outlived the stream hold (too much work queued per batch?)"):format(held_out)
    end
    local st = stats.summary(samples)
    return {
      name = o.name,
      samples = samples,
      stats = st,
      stop_reason = reason,
      tflops = o.flops and o.flops / st.median / 1e9,
      gbs = o.bytes and o.bytes / st.median / 1e6,
      clocks = { before = before, after = after },
      warnings = warnings,
      batch = batch,
      cold = o.cold,
    }
  end
  return s
end

function bench.run(opts)
  local s = sampler(options(opts))
  repeat until s.sample()
  return s.result()
end

-- bench.interleave(cases [, opts]): each case is bench.run's options (at least fn), merged over
-- the shared opts. Every case is warmed up, then they are sampled in turn, one sample each a
-- round, until every case's stopping rule holds in the same round. On a power-limited GPU the
-- clock drifts by several percent within seconds; sampled one after another, two cases would
-- see different clocks, and their ratio would carry that drift. Returns bench.run's result per
-- case, in order.
function bench.interleave(cases, opts)
  if type(cases) ~= "table" or #cases == 0 then
    error("bench.interleave: expected a non-empty list of cases", 2)
  end
  if opts ~= nil and type(opts) ~= "table" then error("bench.interleave: 'opts' must be a table", 2) end
  local checked = {}   -- every case's options are checked before any runs
  for i, c in ipairs(cases) do
    if type(c) ~= "table" then error(("bench.interleave: case %d is not a table"):format(i), 2) end
    local merged = {}
    for k, v in pairs(opts or {}) do merged[k] = v end
    for k, v in pairs(c) do merged[k] = v end
    checked[i] = options(merged)
  end
  local samplers = {}
  for i, o in ipairs(checked) do samplers[i] = sampler(o) end
  local done
  repeat
    done = true
    for _, s in ipairs(samplers) do
      if not s.sample() then done = false end
    end
  until done
  local results = {}
  for i, s in ipairs(samplers) do results[i] = s.result() end
  return results
end

return bench
