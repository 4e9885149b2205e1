-- Did a change make a point faster or slower beyond noise? The statistics of `sfbench compare`
-- and of the ab scenario, over the kept samples (ms a call) of one point on each side, BASE and
-- NEW:
--  * the two medians and their ratio NEW/BASE (under 1: NEW is faster);
--  * a 95% confidence interval of that ratio, from order statistics: each median's standard
--    error is McKean and Schrader's (1984), the spread between the sorted samples of ranks
--    (n+1)/2 ∓ 2.576·√n/2 over 2·2.576, and the two combine on the log scale (the delta method:
--    independent log medians, their relative errors add in quadrature), so the interval is
--    ratio · exp(±1.96·√((se_b/m_b)² + (se_n/m_n)²)). Distribution-free as a median's order
--    statistics are, asymptotic in n (tens of samples do; bench.run keeps at least 10). Chosen
--    because it needs nothing but the sorted samples, which the medians and the U-test sort
--    anyway: O(n log n) a point, where a bootstrap of B resamples costs O(B·n) (10,000 samples
--    and 1,000 resamples: 10⁷ steps a point in Lua) and Hodges–Lehmann n_b·n_n pair differences.
--    Where a median falls in the gap of a bimodal distribution (few samples near it) the
--    interval is too narrow; the U test still holds its level there, and a verdict needs both;
--  * the two-sided Mann–Whitney U test's p-value, tie-corrected, by the normal approximation
--    with continuity correction (what SciPy's mannwhitneyu computes with method="asymptotic"),
--    the ranks found by merging the two sorted lists;
--  * a verdict: "faster" or "slower" when p < alpha and the interval lies wholly below
--    1 - threshold or wholly above 1 + threshold, else "same" (defaults 0.05 and 0.02).
-- compare.results matches the points of two sets of result files (sfbench.result_files) by
-- scenario and parameter columns; compare.table prints one scenario's comparison as
-- report.table does; compare.document is the `compare --output` document that report reads.
local params = require "sfbench.params"
local report = require "sfbench.report"
local result_files = require "sfbench.result_files"
local stats = require "sfbench.stats"

local compare = {}

compare.ALPHA = 0.05
compare.THRESHOLD = 0.02
compare.INTERVAL = "order statistics: McKean-Schrader standard errors of the medians, combined on the log scale"

local Z_SE = 2.5758293035489004 -- normal quantile 0.995, McKean and Schrader's
local Z_CI = 1.959963984540054  -- normal quantile 0.975: a 95% interval
local SQRT_PI = math.sqrt(math.pi)

-- The complementary error function, to about 1e-15 relative: below 2 one minus erf's series
-- (all terms positive, no cancellation); from 2 its continued fraction, by Lentz's method.
local function erfc(x)
  if x < 0 then return 2 - erfc(-x) end
  if x < 2 then
    local term, sum, k = x, x, 0
    repeat
      k = k + 1
      term = term * 2 * x * x / (2 * k + 1)
      sum = sum + term
    until term <= sum * 1e-17
    return 1 - 2 / SQRT_PI * math.exp(-x * x) * sum
  end
  -- erfc(x) = exp(-x²)/√π / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
  local tiny = 1e-300
  local f, c, d = x, x, 0
  for k = 1, 500 do
    local a = k / 2
    d = x + a * d
    d = d == 0 and tiny or d
    c = x + a / c
    c = c == 0 and tiny or c
    d = 1 / d
    local delta = c * d
    f = f * delta
    if math.abs(delta - 1) < 1e-16 then break end
  end
  return math.exp(-x * x) / SQRT_PI / f
end

local function sorted_copy(list)
  local s = table.move(list, 1, #list, 1, {})
  table.sort(s)
  return s
end

-- The U test over two ascending lists -> p, U of x.
local function mann_whitney_sorted(x, y)
  local n1, n2 = #x, #y
  local i, j, before, rank_sum, ties = 1, 1, 0, 0, 0
  while i <= n1 or j <= n2 do
    local v = (j > n2 or (i <= n1 and x[i] <= y[j])) and x[i] or y[j]
    local cx, cy = 0, 0
    while i <= n1 and x[i] == v do
      cx, i = cx + 1, i + 1
    end
    while j <= n2 and y[j] == v do
      cy, j = cy + 1, j + 1
    end
    local t = cx + cy
    rank_sum = rank_sum + cx * (before + (t + 1) / 2) -- the tied values share their mean rank
    ties = ties + (t * t * t - t)
    before = before + t
  end
  local u1 = rank_sum - n1 * (n1 + 1) / 2
  local n = n1 + n2
  local var = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
  if var <= 0 then return 1.0, u1 end -- every sample equal
  local z = (math.max(u1, n1 * n2 - u1) - n1 * n2 / 2 - 0.5) / math.sqrt(var)
  return math.min(1.0, erfc(z / math.sqrt(2))), u1
end

local function check_list(who, name, list)
  if type(list) ~= "table" or #list == 0 then
    error(("compare.%s: '%s' must be a non-empty list of numbers"):format(who, name), 3)
  end
end

-- compare.mann_whitney(x, y) -> p, U: the two-sided p-value and x's U statistic.
function compare.mann_whitney(x, y)
  check_list("mann_whitney", "x", x)
  check_list("mann_whitney", "y", y)
  return mann_whitney_sorted(sorted_copy(x), sorted_copy(y))
end

local function median_se(sorted)
  local n = #sorted
  local c = math.max(1, math.floor((n + 1) / 2 - Z_SE * math.sqrt(n / 4) + 0.5))
  return (sorted[n - c + 1] - sorted[c]) / (2 * Z_SE)
end

-- The interval of m_new/m_base over ascending lists; nan where a median is not positive.
local function ratio_interval_sorted(base, new, m_base, m_new)
  if not (m_base > 0 and m_new > 0) then return 0 / 0, 0 / 0 end
  local half = Z_CI * math.sqrt((median_se(base) / m_base) ^ 2 + (median_se(new) / m_new) ^ 2)
  local r = m_new / m_base
  return r * math.exp(-half), r * math.exp(half)
end

-- compare.ratio_interval(base, new) -> low, high: the 95% interval of median(new)/median(base).
function compare.ratio_interval(base, new)
  check_list("ratio_interval", "base", base)
  check_list("ratio_interval", "new", new)
  local b, n = sorted_copy(base), sorted_copy(new)
  return ratio_interval_sorted(b, n, stats.percentile(b, 0.5), stats.percentile(n, 0.5))
end

-- alpha and threshold from opts, checked (a bad one is the user's: a usage error)
local function levels(opts)
  local alpha, threshold = opts.alpha or compare.ALPHA, opts.threshold or compare.THRESHOLD
  if type(alpha) ~= "number" or not (alpha > 0 and alpha < 1) then
    params.usage_error(("alpha must be a number between 0 and 1, got %s"):format(tostring(alpha)))
  end
  if type(threshold) ~= "number" or not (threshold >= 0 and threshold < 1) then
    params.usage_error(("threshold must be a fraction from 0 up to 1 (0.02 is 2%%), got %s"):format(tostring(threshold)))
  end
  return alpha, threshold
end

-- compare.verdict(stat [, opts]) -> "faster", "slower" or "same" for a stat of compare.samples.
function compare.verdict(stat, opts)
  local alpha, threshold = levels(opts or {})
  if stat.p < alpha and stat.ci_high < 1 - threshold then return "faster" end
  if stat.p < alpha and stat.ci_low > 1 + threshold then return "slower" end
  return "same"
end

-- compare.samples(base, new [, {alpha =, threshold =}]) -> {n_base, n_new, base_ms, new_ms,
-- ratio, ci_low, ci_high, p, u, verdict}: one point's comparison (the lists are not modified).
function compare.samples(base, new, opts)
  check_list("samples", "base", base)
  check_list("samples", "new", new)
  local b, n = sorted_copy(base), sorted_copy(new)
  local mb, mn = stats.percentile(b, 0.5), stats.percentile(n, 0.5)
  local stat = { n_base = #b, n_new = #n, base_ms = mb, new_ms = mn, ratio = mn / mb }
  stat.ci_low, stat.ci_high = ratio_interval_sorted(b, n, mb, mn)
  stat.p, stat.u = mann_whitney_sorted(b, n)
  stat.verdict = compare.verdict(stat, opts)
  return stat
end

-- One side's points of a scenario, pooled over its files by key (with --all, a point's samples
-- from every run); two rows of one file with the same parameters cannot be told apart.
local function pool(entries, columns)
  local by_key, order = {}, {}
  for _, e in ipairs(entries) do
    local first = {}
    for _, pt in ipairs(result_files.points(e.doc, columns)) do
      if first[pt.key] then
        params.usage_error(("%s: rows %d and %d have the same parameters (%s); name the parameter columns with --params")
          :format(e.path, first[pt.key], pt.index, pt.label))
      end
      first[pt.key] = pt.index
      local p = by_key[pt.key]
      if not p then
        p = { key = pt.key, label = pt.label, values = pt.values, samples = {} }
        by_key[pt.key] = p
        order[#order + 1] = p
      end
      if pt.samples then table.move(pt.samples, 1, #pt.samples, #p.samples + 1, p.samples) end
    end
  end
  return by_key, order
end

local function context_values(entries, get)
  local seen, list = {}, {}
  for _, e in ipairs(entries) do
    local v = tostring(get(e.doc.context) or "unknown")
    if not seen[v] then
      seen[v] = true
      list[#list + 1] = v
    end
  end
  table.sort(list)
  return table.concat(list, ", ")
end

local CONTEXT = {
  { "device", function(c) return type(c.device) == "table" and c.device.name or nil end },
  { "sfbench version", function(c) return c.sfbench_version end },
  { "git revision", function(c) return c.git_revision end },
}

-- One line naming what differs between the sides' contexts, or nil.
local function mismatch(base, new)
  local parts = {}
  for _, f in ipairs(CONTEXT) do
    local b, n = context_values(base, f[2]), context_values(new, f[2])
    if b ~= n then parts[#parts + 1] = ("%s '%s' vs '%s'"):format(f[1], b, n) end
  end
  return #parts > 0 and "base and new differ: " .. table.concat(parts, ", ") or nil
end

local function paths(entries)
  local list = {}
  for i, e in ipairs(entries) do list[i] = e.path end
  return list
end

local function names(groups)
  local list = {}
  for i, g in ipairs(groups) do list[i] = g.scenario end
  return list
end

-- entries (result_files.load's) -> a list of {scenario =, entries =}, by scenario name
local function by_scenario(entries)
  local groups, list = {}, {}
  for _, e in ipairs(entries) do
    if not groups[e.scenario] then
      groups[e.scenario] = { scenario = e.scenario, entries = {} }
      list[#list + 1] = groups[e.scenario]
    end
    table.insert(groups[e.scenario].entries, e)
  end
  table.sort(list, function(a, b) return a.scenario < b.scenario end)
  return list
end

-- The distinct values the rows of a side hold in column c (nil left out), and whether every file
-- of the side has it in some row.
local function values_of(entries, c)
  local seen, list, in_every = {}, {}, true
  for _, e in ipairs(entries) do
    local has = false
    for _, pt in ipairs(result_files.points(e.doc, { c })) do
      if pt.values[c] ~= nil then
        has = true
        if not seen[pt.key] then
          seen[pt.key] = true
          list[#list + 1] = pt.values[c]
        end
      end
    end
    in_every = in_every and has
  end
  return list, in_every
end

-- whether each file's rows stay apart on these columns
local function rows_apart(entries, columns)
  for _, e in ipairs(entries) do
    local seen = {}
    for _, pt in ipairs(result_files.points(e.doc, columns)) do
      if seen[pt.key] then return false end
      seen[pt.key] = true
    end
  end
  return true
end

-- A parameter column that no row of one side has (one the scenario gained in a later version, as
-- model_sweep's gemm) tells none of that side's points apart. Where every file of the other side
-- has it, with one value, and the rows of each file stay apart without it, the points are matched
-- without it: -> the columns kept, and the columns set aside ({column, side, value}: the side that
-- has it, and its one value). A side that mixes files with and without it keeps it, and so do two
-- values of it, or rows told apart only by it.
local function one_sided(columns, base, new)
  local kept, aside = {}, {}
  for _, c in ipairs(columns) do
    local vb, b_every = values_of(base, c)
    local vn, n_every = values_of(new, c)
    if #vb == 0 and #vn == 1 and n_every then
      aside[#aside + 1] = { column = c, side = "new", value = vn[1] }
    elseif #vn == 0 and #vb == 1 and b_every then
      aside[#aside + 1] = { column = c, side = "base", value = vb[1] }
    else
      kept[#kept + 1] = c
    end
  end
  if #aside > 0 and not (rows_apart(base, kept) and rows_apart(new, kept)) then return columns, {} end
  return kept, aside
end

local function compare_scenario(name, base, new, opts)
  local docs = {}
  for _, side in ipairs({ base, new }) do
    for _, e in ipairs(side) do docs[#docs + 1] = e.doc end
  end
  local columns, aside = result_files.columns(docs, opts.params), {}
  if not opts.params then columns, aside = one_sided(columns, base, new) end
  local base_keys, base_order = pool(base, columns)
  local new_keys, new_order = pool(new, columns)
  local scn = { scenario = name, parameters = columns, set_aside = aside, base = paths(base), new = paths(new),
    points = {}, only_base = {}, only_new = {} }
  for _, b in ipairs(base_order) do
    local n = new_keys[b.key]
    if not n then
      scn.only_base[#scn.only_base + 1] = b.values
    else
      local point
      if #b.samples > 0 and #n.samples > 0 then
        point = compare.samples(b.samples, n.samples, opts)
      else
        point = { n_base = #b.samples, n_new = #n.samples, verdict = "no samples" }
      end
      point.params, point.label = b.values, b.label
      scn.points[#scn.points + 1] = point
    end
  end
  for _, n in ipairs(new_order) do
    if not base_keys[n.key] then scn.only_new[#scn.only_new + 1] = n.values end
  end
  return scn
end

local PARAMS_HINT = "where one of them is a measurement, name the parameters with --params"

-- the columns a scenario set aside, for a message: "" or "; gemm set aside (only new's rows have it)"
local function aside_text(scn)
  local parts = {}
  for _, a in ipairs(scn.set_aside) do parts[#parts + 1] = ("%s set aside (only %s's rows have it)"):format(a.column, a.side) end
  return #parts > 0 and "; " .. table.concat(parts, ", ") or ""
end

-- compare.results(base, new [, opts]) -> the comparison of two lists of result_files.load entries:
-- {scenarios = {{scenario, parameters, set_aside, base, new, points, only_base, only_new}},
-- unmatched_scenarios, only_base_scenarios, only_new_scenarios, mismatch, slower, faster, alpha,
-- threshold, interval}. Each point is compare.samples' table with params (the parameter values)
-- and label, or {verdict = "no samples"} where a side kept none; set_aside lists the parameter
-- columns left out of the match ({column, side, value}: only that side's rows have it, with that one
-- value; never where opts.params names the columns). A scenario of both sides with no
-- point in common is listed apart, in unmatched_scenarios (the same fields, no points, and hint:
-- why, and the way out); it stops no other scenario's comparison. opts: alpha, threshold, params
-- (a list of the parameter columns, instead of the declared or guessed ones). An error (a usage
-- error, naming both sides): results with no scenario in common, and nothing compared at all (no
-- matched point with kept samples on both sides, over every scenario: a CI gate must not pass on
-- nothing), saying where a scenario had no point in common.
function compare.results(base, new, opts)
  opts = opts or {}
  local alpha, threshold = levels(opts)
  local bg, ng = by_scenario(base), by_scenario(new)
  local new_by = {}
  for _, g in ipairs(ng) do new_by[g.scenario] = g end
  local cmp = { alpha = alpha, threshold = threshold, interval = compare.INTERVAL, scenarios = {},
    unmatched_scenarios = {}, only_base_scenarios = {}, only_new_scenarios = {}, slower = 0, faster = 0 }
  local used_base, used_new, common_base, common_new, matched = {}, {}, {}, {}, {}
  local compared = 0
  for _, g in ipairs(bg) do
    local other = new_by[g.scenario]
    if other then
      matched[g.scenario] = true
      table.move(g.entries, 1, #g.entries, #common_base + 1, common_base)
      table.move(other.entries, 1, #other.entries, #common_new + 1, common_new)
      local scn = compare_scenario(g.scenario, g.entries, other.entries, opts)
      if #scn.points == 0 then
        scn.hint = ("no point in common on the parameter columns %s%s (%s)"):format(table.concat(scn.parameters, ", "),
          aside_text(scn), PARAMS_HINT)
        cmp.unmatched_scenarios[#cmp.unmatched_scenarios + 1] = scn
      else
        table.move(g.entries, 1, #g.entries, #used_base + 1, used_base)
        table.move(other.entries, 1, #other.entries, #used_new + 1, used_new)
        for _, pt in ipairs(scn.points) do
          if pt.ratio then compared = compared + 1 end
          if pt.verdict == "slower" then cmp.slower = cmp.slower + 1 end
          if pt.verdict == "faster" then cmp.faster = cmp.faster + 1 end
        end
        cmp.scenarios[#cmp.scenarios + 1] = scn
      end
    else
      cmp.only_base_scenarios[#cmp.only_base_scenarios + 1] = g.scenario
    end
  end
  for _, g in ipairs(ng) do
    if not matched[g.scenario] then cmp.only_new_scenarios[#cmp.only_new_scenarios + 1] = g.scenario end
  end
  if #common_base == 0 then
    if #base == 1 and #new == 1 then
      params.usage_error(("%s is a result of %s but %s one of %s: two different scenarios"):format(base[1].path,
        base[1].scenario, new[1].path, new[1].scenario))
    end
    params.usage_error(("no scenario in common: base (%s) has %s; new (%s) has %s"):format(
      table.concat(paths(base), ", "), table.concat(names(bg), ", "), table.concat(paths(new), ", "),
      table.concat(names(ng), ", ")))
  end
  -- nothing compared is no verdict: a CI gate must not pass on it
  if compared == 0 then
    local why = {}
    for _, scn in ipairs(cmp.unmatched_scenarios) do
      why[#why + 1] = ("no point of %s in common on the parameter columns %s%s"):format(scn.scenario,
        table.concat(scn.parameters, ", "), aside_text(scn))
    end
    if #why > 0 then why[#why] = ("%s (%s)"):format(why[#why], PARAMS_HINT) end
    if #cmp.scenarios > 0 then why[#why + 1] = "no matched point has kept samples on both sides" end
    params.usage_error(("%s and %s: %s, nothing to compare"):format(table.concat(paths(common_base), ", "),
      table.concat(paths(common_new), ", "), table.concat(why, "; ")))
  end
  cmp.mismatch = mismatch(used_base, used_new)
  cmp.base_entries, cmp.new_entries = used_base, used_new
  return cmp
end

local function side_of(cmp, side)
  local entries = cmp[side .. "_entries"]
  return { path = table.concat(paths(entries), ", "),
    device = context_values(entries, CONTEXT[1][2]), sfbench_version = context_values(entries, CONTEXT[2][2]),
    git_revision = context_values(entries, CONTEXT[3][2]) }
end

-- a point as the compare document holds it: the scenario, the point without impl, and impl
local function placed(scenario, values)
  local point, impl = {}, nil
  for k, v in pairs(values) do
    if k == "impl" then impl = v else point[k] = v end
  end
  return { scenario = scenario, point = point, impl = impl }
end

-- compare.document(cmp) -> the `sfbench compare --output` document (what `sfbench report`
-- plots): base and new ({path, device, sfbench_version, git_revision}), alpha, threshold,
-- interval, points ({scenario, point, impl, base_median, new_median, ratio, ci_low, ci_high, p,
-- verdict, n_base, n_new}), only_base and only_new ({scenario, point, impl}), no_samples (the
-- matched points a side kept no samples of), set_aside ({scenario, column, side, value}: a
-- parameter column only one side's rows have, with one value, left out of the match),
-- unmatched_scenarios ({scenario, parameters}: the
-- scenarios of both sides with no point in common), only_base_scenarios, only_new_scenarios,
-- mismatch, slower, faster.
function compare.document(cmp)
  local doc = { base = side_of(cmp, "base"), new = side_of(cmp, "new"), alpha = cmp.alpha,
    threshold = cmp.threshold, interval = cmp.interval, points = {}, only_base = {}, only_new = {}, no_samples = {},
    set_aside = {}, unmatched_scenarios = {}, only_base_scenarios = cmp.only_base_scenarios,
    only_new_scenarios = cmp.only_new_scenarios, mismatch = cmp.mismatch, slower = cmp.slower, faster = cmp.faster }
  for i, scn in ipairs(cmp.unmatched_scenarios) do
    doc.unmatched_scenarios[i] = { scenario = scn.scenario, parameters = scn.parameters }
  end
  for _, list in ipairs({ cmp.scenarios, cmp.unmatched_scenarios }) do
    for _, scn in ipairs(list) do
      for _, a in ipairs(scn.set_aside) do
        doc.set_aside[#doc.set_aside + 1] = { scenario = scn.scenario, column = a.column, side = a.side, value = a.value }
      end
    end
  end
  for _, scn in ipairs(cmp.scenarios) do
    for _, pt in ipairs(scn.points) do
      local d = placed(scn.scenario, pt.params)
      if pt.ratio and pt.ci_low == pt.ci_low then
        for _, k in ipairs({ "ratio", "ci_low", "ci_high", "p", "verdict", "n_base", "n_new" }) do d[k] = pt[k] end
        d.base_median, d.new_median = pt.base_ms, pt.new_ms
        doc.points[#doc.points + 1] = d
      else
        doc.no_samples[#doc.no_samples + 1] = d
      end
    end
    for _, side in ipairs({ "only_base", "only_new" }) do
      for _, values in ipairs(scn[side]) do doc[side][#doc[side] + 1] = placed(scn.scenario, values) end
    end
  end
  return doc
end

local BASE, NEW, RATIO, CI, P, VERDICT = {}, {}, {}, {}, {}, {} -- keys no parameter column can take

-- compare.table(scn [, {base =, new =}]) -> one scenario's comparison as a markdown table:
-- its parameter columns, then the medians, the ratio, its interval, p and the verdict. The names
-- title the columns ("base ms", "new/base"; default base and new).
function compare.table(scn, titles)
  local b, n = (titles and titles.base) or "base", (titles and titles.new) or "new"
  local rows = {}
  for i, pt in ipairs(scn.points) do
    local row = {}
    for c, v in pairs(pt.params) do row[c] = v end
    row[BASE], row[NEW], row[RATIO], row[P], row[VERDICT] = pt.base_ms, pt.new_ms, pt.ratio, pt.p, pt.verdict
    if pt.ci_low and pt.ci_low == pt.ci_low then row[CI] = ("%.3f–%.3f"):format(pt.ci_low, pt.ci_high) end
    rows[i] = row
  end
  local columns = table.move(scn.parameters, 1, #scn.parameters, 1, {})
  for _, c in ipairs({ { key = BASE, title = b .. " ms", fmt = "%.4g" }, { key = NEW, title = n .. " ms", fmt = "%.4g" },
    { key = RATIO, title = n .. "/" .. b, fmt = "%.3f" }, { key = CI, title = "95% CI" },
    { key = P, title = "p", fmt = "%.3g" }, { key = VERDICT, title = "verdict" } }) do
    columns[#columns + 1] = c
  end
  return report.table(rows, columns)
end

return compare
