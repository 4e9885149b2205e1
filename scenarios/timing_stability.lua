-- Is a short measurement repeatable? A ~3 µs kernel (a device copy of `mib` MiB; at 4 MiB 3.0-3.1
-- µs on the H200, 3.5-3.7 on the H100) measured `runs` times in a row with the default stopping
-- rule; reports each median and the spread, and keeps each run's samples (the result file's
-- `results`, one a row).
-- Usage: sfbench timing_stability [mib=4] [runs=5] [batch=auto] [timeout=15]
local sf = require "sfbench"
local params = require "sfbench.params"
local bench = require "sfbench.bench"
local report = require "sfbench.report"
local profile = require "sfbench.profile"

local gpu = sf.device().backend == "cuda"
local p = params.get { mib = gpu and 4 or 1, runs = 5, batch = "auto", timeout = gpu and 15 or 2 }
params.whole_numbers("mib", p.mib, 1, nil, "a size in MiB, at least 1")
params.whole_numbers("runs", p.runs, 1, nil, "a count of runs, at least 1")
bench.timeout(p.timeout)
local batch = p.batch               -- a string: "auto" or a number
if batch ~= "auto" then
  local calls = tonumber(batch)
  batch = params.whole_numbers("batch", calls and math.tointeger(calls) or batch, 1, nil,
    "auto or calls a sample, at least 1")
end
local n = p.mib * 2 ^ 20 // 4
local src, dst = sf.randn({ n }, "f32"), sf.tensor({ n }, "f32")

local _ <close> = profile.range("timing_stability")
local rows, medians, results = {}, {}, {}
for i = 1, p.runs do
  local _ <close> = profile.range("run=" .. i)
  local r = bench.run { name = "copy", fn = function() dst:copy(src) end, bytes = 2 * n * 4, batch = batch,
    timeout = p.timeout }
  medians[i] = r.stats.median
  r.row, results[i] = i, r
  rows[i] = { run = i, median_us = r.stats.median * 1e3, gbs = r.gbs, noise = r.stats.noise, samples = r.stats.n,
    stop = r.stop_reason }
end
local lo, hi, sum = math.huge, -math.huge, 0
for _, m in ipairs(medians) do lo, hi, sum = math.min(lo, m), math.max(hi, m), sum + m end
local mean = sum / #medians
local spread = { max_dev_pct = 100 * math.max(hi - mean, mean - lo) / mean }
report.print(rows, { "run", { key = "median_us", title = "median µs", fmt = "%.3f" }, { key = "gbs", title = "GB/s", fmt = "%.0f" },
  { key = "noise", fmt = "%.4f" }, "samples", "stop" })
if not sf.quiet then print(("largest deviation of a median from their mean: %.2f%%"):format(spread.max_dev_pct)) end
local path = report.save("timing_stability", { params = p, rows = rows, spread = spread, results = results, complete = true })
if not sf.quiet then print("results: " .. path) end
