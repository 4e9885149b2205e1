-- Synthetic sfbench results of a chosen size, for the compare tests and the compare benchmark:
-- `points` rows (impl a or b by size), each with `samples` kept samples of a lognormal time
-- around its own median, seeded, times `scale` (so scale=1.05 with the same seed is a copy 5%
-- slower, sample for sample).
-- Usage: sfbench --device cpu tests/gen_results.lua out=FILE [points=100] [samples=1000]
--        [scale=1] [noise=0.01] [seed=1] [scenario=synthetic] [device=synthetic device]
--        [git_revision=synthetic] [time=2026-01-01T00:00:00Z]
local params = require "sfbench.params"
local report = require "sfbench.report"

local p = params.get({
  out = "", points = 100, samples = 1000, scale = 1.0, noise = 0.01, seed = 1, scenario = "synthetic",
  device = "synthetic device", git_revision = "synthetic", time = "2026-01-01T00:00:00Z",
})
if p.out == "" then params.usage_error("out=FILE is required") end
math.randomseed(math.tointeger(p.seed) or 1)

local function normal()
  return math.sqrt(-2 * math.log(1 - math.random())) * math.cos(2 * math.pi * math.random())
end

local rows, res = {}, {}
for i = 1, p.points do
  local median = 0.01 * 2 ^ ((i - 1) % 10)
  local samples = {}
  for j = 1, p.samples do samples[j] = median * p.scale * math.exp(p.noise * normal()) end
  rows[i] = { impl = i % 2 == 1 and "a" or "b", size = (i + 1) // 2, ms = median * p.scale }
  res[i] = { name = ("point %d"):format(i), samples = samples, row = i }
end

local doc = {
  scenario = p.scenario,
  context = { device = { name = p.device, backend = "cpu" }, sfbench_version = "synthetic",
    git_revision = p.git_revision, time = p.time },
  params = p,
  columns = { "impl", "size", "ms" },
  rows = rows,
  results = res,
  complete = true,
  interrupted = false,
}
report.write_text(p.out, report.encode(doc) .. "\n")
