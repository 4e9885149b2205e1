-- sfbench.compare: the U test and the interval against figures computed once by SciPy, the
-- verdicts, and the matching of two sets of results by scenario and parameter columns.
-- luacheck: allow defined top
local lu = require "luaunit"
local testlib = require "testlib"
local compare = require "sfbench.compare"
local stats = require "sfbench.stats"

local function stats_median(list)
  return stats.summary(list).median
end

local function seq(n, start, step)
  local t = {}
  for i = 1, n do t[i] = start + (i - 1) * step end
  return t
end

-- Fixed samples and what SciPy 1.17 gives for them, from (SETS as below, in Python lists):
--   python3 -c '
--   import numpy as np; from scipy.stats import mannwhitneyu, norm
--   def se(s):
--       s = np.sort(s); k = len(s)
--       c = max(1, int(np.floor((k + 1) / 2 - norm.ppf(0.995) * np.sqrt(k / 4) + 0.5)))
--       return (s[k - c] - s[c - 1]) / (2 * norm.ppf(0.995))
--   def ci(b, n):
--       mb, mn = np.median(b), np.median(n); h = norm.ppf(0.975) * np.hypot(se(b) / mb, se(n) / mn)
--       return mn / mb * np.exp(-h), mn / mb * np.exp(h)
--   for x, y in SETS:
--       r = mannwhitneyu(x, y, method="asymptotic"); print(repr(r.pvalue), r.statistic, ci(x, y))'
-- (p: two-sided, tie-corrected, continuity-corrected; U: x's statistic; the interval of
-- median(y)/median(x) as compare.lua defines it, computed independently with numpy).
local SETS = {
  ties = { x = { 1.1, 2.2, 2.2, 3.0, 4.5, 5.0, 5.0, 6.1, 7.0, 8.2 },
    y = { 2.2, 3.0, 3.3, 4.0, 5.0, 6.1, 7.5, 8.0, 9.1, 9.9, 10.5 },
    p = 0.16831794091027774, u = 35, lo = 0.6293842943680619, hi = 2.620333380826043 },
  timings = { x = { 0.512, 0.498, 0.505, 0.521, 0.493, 0.517, 0.509, 0.501, 0.526, 0.496, 0.514, 0.503 },
    y = { 0.519, 0.507, 0.531, 0.524, 0.511, 0.535, 0.502, 0.528, 0.515, 0.538, 0.522, 0.509 },
    p = 0.020893509209675275, u = 31.5, lo = 0.9985166027487147, hi = 1.055529215795392 },
  -- x = [1.00 + 0.01 * i for i in range(20)], y = [1.30 + 0.01 * i for i in range(20)]
  disjoint = { x = seq(20, 1.00, 0.01), y = seq(20, 1.30, 0.01),
    p = 6.795615128173358e-08, u = 0, lo = 1.2135538929941037, hi = 1.3373993539974718 },
  -- x = [1 + 0.001 * i for i in range(60)], y = [2 + 0.001 * i for i in range(60)]
  far = { x = seq(60, 1, 0.001), y = seq(60, 2, 0.001),
    p = 3.5565709749847226e-21, u = 0, lo = 1.9558854564301016, hi = 1.9869273690499307 },
  heavy_ties = { x = { 1, 2, 2, 3, 1, 1, 2, 3, 3, 2, 1, 2, 2, 3, 1 },
    y = { 2, 3, 3, 2, 3, 1, 3, 3, 2, 3, 2, 3, 3, 1, 2, 3, 3 },
    p = 0.056493865183104494, u = 80, lo = 1.0044422690905483, hi = 2.240049099125643 },
  -- z = 0 exactly (erfc(0))
  one_each = { x = { 1.0 }, y = { 2.0 }, p = 1.0, u = 0, lo = 2.0, hi = 2.0 },
  identical = { x = { 3.0, 1.0, 2.0, 5.0, 4.0 }, y = { 3.0, 1.0, 2.0, 5.0, 4.0 },
    p = 1.0, u = 12.5, lo = 0.4880247968674009, hi = 2.0490762076413622 },
}

local function assert_close(got, want, rel, what)
  local err = math.abs(got - want) / math.max(math.abs(want), 1e-300)
  if not (err <= rel) then lu.fail(("%s: %.17g, expected %.17g"):format(what, got, want)) end
end

TestStatistics = {}

-- both ways round: the p-value is two-sided, y's U is n_x·n_y minus x's
function TestStatistics.test_mann_whitney_matches_scipy()
  for name, s in pairs(SETS) do
    local p, u = compare.mann_whitney(s.x, s.y)
    local p_swapped, u_y = compare.mann_whitney(s.y, s.x)
    assert_close(p, s.p, 1e-12, name .. " p")
    assert_close(p_swapped, s.p, 1e-12, name .. " p, sides swapped")
    lu.assertEquals(u, s.u, name .. " U")
    lu.assertEquals(u_y, #s.x * #s.y - s.u, name .. " U of y")
  end
end

function TestStatistics.test_interval_matches_reference()
  for name, s in pairs(SETS) do
    local lo, hi = compare.ratio_interval(s.x, s.y)
    assert_close(lo, s.lo, 1e-12, name .. " low")
    assert_close(hi, s.hi, 1e-12, name .. " high")
  end
end

function TestStatistics.test_inputs_untouched()
  local x, y = { 3, 1, 2 }, { 6, 4, 5 }
  compare.samples(x, y)
  lu.assertEquals(x, { 3, 1, 2 })
  lu.assertEquals(y, { 6, 4, 5 })
end

function TestStatistics.test_bad_lists()
  testlib.contains(testlib.error_of(compare.mann_whitney, {}, { 1 }), "compare.mann_whitney: 'x' must be a non-empty list")
  testlib.contains(testlib.error_of(compare.samples, { 1 }, nil), "compare.samples: 'new' must be a non-empty list")
end

-- 200 samples spread over 5%, in a scrambled order
local function spread(scale)
  local t = {}
  for i = 1, 200 do t[i] = (1 + 0.001 * ((i * 37) % 50)) * scale end
  return t
end

TestVerdict = {}

function TestVerdict.test_identical_is_same()
  local s = compare.samples(spread(1), spread(1))
  lu.assertEquals(s.verdict, "same")
  lu.assertEquals(s.ratio, 1)
  lu.assertEquals(s.p, 1)
  lu.assertTrue(s.ci_low < 1 and s.ci_high > 1)
end

function TestVerdict.test_five_percent_both_ways()
  local slower = compare.samples(spread(1), spread(1.05))
  lu.assertEquals(slower.verdict, "slower")
  assert_close(slower.ratio, 1.05, 1e-12, "ratio")
  lu.assertTrue(slower.ci_low > 1.02, "interval above 1 + threshold")
  local faster = compare.samples(spread(1), spread(0.95))
  lu.assertEquals(faster.verdict, "faster")
  lu.assertTrue(faster.ci_high < 0.98)
  lu.assertEquals(slower.n_base, 200)
  lu.assertEquals(slower.n_new, 200)
end

function TestVerdict.test_threshold_and_alpha()
  -- 1% slower: significant, but inside the 2% threshold; slower once the threshold is 0.5%
  local small = compare.samples(spread(1), spread(1.01))
  lu.assertTrue(small.p < 0.05)
  lu.assertEquals(small.verdict, "same")
  lu.assertEquals(compare.samples(spread(1), spread(1.01), { threshold = 0.005 }).verdict, "slower")
  -- the U test must agree too: at a level below its p-value a clear 5% is still "same"
  local p = compare.samples(spread(1), spread(1.05)).p
  lu.assertEquals(compare.samples(spread(1), spread(1.05), { alpha = p / 2 }).verdict, "same")
  lu.assertEquals(compare.verdict({ p = 0.01, ci_low = 1.03, ci_high = 1.04 }), "slower")
  lu.assertEquals(compare.verdict({ p = 0.06, ci_low = 1.03, ci_high = 1.04 }), "same")
  lu.assertEquals(compare.verdict({ p = 0.01, ci_low = 1.01, ci_high = 1.04 }), "same")
  lu.assertEquals(compare.verdict({ p = 0.01, ci_low = 0.9, ci_high = 0.97 }), "faster")
end

function TestVerdict.test_bad_levels_are_usage_errors()
  for _, opts in ipairs({ { alpha = 0 }, { alpha = 1.5 }, { alpha = "x" }, { threshold = -0.1 }, { threshold = 1 } }) do
    local ok, err = pcall(compare.samples, { 1 }, { 2 }, opts)
    lu.assertFalse(ok)
    lu.assertIsTable(err)
    testlib.contains(err.usage, next(opts))
  end
end

-- ---- matching two sets of results ----

local function doc(scenario, rows, samples, context)
  local results = {}
  for i, s in ipairs(samples or {}) do results[i] = { samples = s, row = i } end
  return { scenario = scenario, rows = rows, results = #results > 0 and results or nil,
    context = context or { device = { name = "dev" }, sfbench_version = "1", git_revision = "r1" } }
end

-- as result_files.load gives them
local function entry(path, d)
  return { path = path, name = path, kind = "result", scenario = d.scenario, time = "t", doc = d }
end

local ROWS = {
  { impl = "a", seq = 512, ms = 1.5 }, { impl = "b", seq = 512, ms = 1.25 }, { impl = "a", seq = 1024, ms = 3.5 },
}

TestMatch = {}

function TestMatch.test_points_matched_by_parameters()
  local base = doc("s", ROWS, { spread(1), spread(2), spread(3) })
  -- new: the rows in another order, seq read back from JSON as a float, one point gone, one new
  local new = doc("s", { { impl = "a", seq = 1024.0, ms = 3.7 }, { impl = "a", seq = 512.0, ms = 1.6 },
    { impl = "c", seq = 512, ms = 1.1 } }, { spread(3 * 1.05), spread(1), spread(1) })
  local cmp = compare.results({ entry("base.json", base) }, { entry("new.json", new) })
  lu.assertEquals(#cmp.scenarios, 1)
  local scn = cmp.scenarios[1]
  lu.assertEquals(scn.scenario, "s")
  lu.assertEquals(scn.parameters, { "impl", "seq" })
  lu.assertEquals(scn.base, { "base.json" })
  lu.assertEquals(#scn.points, 2)
  lu.assertEquals(scn.points[1].label, "impl=a seq=512")
  lu.assertEquals(scn.points[1].verdict, "same")
  lu.assertEquals(scn.points[2].params, { impl = "a", seq = 1024 })
  lu.assertEquals(scn.points[2].verdict, "slower")
  lu.assertEquals(scn.only_base, { { impl = "b", seq = 512 } })
  lu.assertEquals(scn.only_new, { { impl = "c", seq = 512 } })
  lu.assertEquals(cmp.slower, 1)
  lu.assertEquals(cmp.faster, 0)
  lu.assertNil(cmp.mismatch)
  local text = compare.table(scn)
  testlib.contains(text, "| impl |  seq | base ms | new ms | new/base | 95% CI      |        p | verdict |",
    "| a    | 1024 |   3.074 |  3.227 |    1.050 | 1.045–1.055 | 4.76e-67 | slower  |")
end

function TestMatch.test_document_for_report()
  local base = doc("s", ROWS, { spread(1), spread(2) })
  local new = doc("s", { ROWS[1], ROWS[3] }, { spread(1.05), spread(3) })
  local d = compare.document(compare.results({ entry("base.json", base) }, { entry("new.json", new) }))
  lu.assertEquals(d.base, { path = "base.json", device = "dev", sfbench_version = "1", git_revision = "r1" })
  lu.assertEquals(#d.points, 1)
  local p = d.points[1]
  lu.assertEquals({ p.scenario, p.point, p.impl, p.verdict, p.n_base }, { "s", { seq = 512 }, "a", "slower", 200 })
  lu.assertEquals({ p.base_median, p.new_median }, { stats_median(spread(1)), stats_median(spread(1.05)) })
  lu.assertTrue(p.ci_low < p.ratio and p.ratio < p.ci_high)
  lu.assertEquals(d.only_base, { { scenario = "s", point = { seq = 512 }, impl = "b" } })
  lu.assertEquals(d.no_samples, { { scenario = "s", point = { seq = 1024 }, impl = "a" } }) -- base kept none
  lu.assertEquals(d.slower, 1)
end

function TestMatch.test_pooled_over_files_and_rows_without_samples()
  local one = doc("s", { { impl = "a", ms = 1.5 } }, { { 1, 2, 3 } })
  local two = doc("s", { { impl = "a", ms = 1.5 } }, { { 4, 5 } })
  local bare = doc("s", { { impl = "a", ms = 1.5 } })
  local cmp = compare.results({ entry("1", one), entry("2", two) }, { entry("3", one) })
  lu.assertEquals(cmp.scenarios[1].points[1].n_base, 5)
  lu.assertEquals(cmp.scenarios[1].points[1].base_ms, 3)
  -- a matched point a side kept no samples of has no verdict; with no other point, nothing is
  -- compared, which is an error (the Lua API's rule is the CLI's)
  local two_points = doc("s", { { impl = "a", ms = 1.5 }, { impl = "b", ms = 1 } }, { {}, { 1, 2, 3 } })
  local some = compare.results({ entry("1", doc("s", { { impl = "a", ms = 1.5 }, { impl = "b", ms = 1 } },
    { { 1, 2, 3 }, { 1, 2, 3 } })) }, { entry("4", two_points) })
  lu.assertEquals(some.scenarios[1].points[1].verdict, "no samples")
  lu.assertEquals(some.scenarios[1].points[2].verdict, "same")
  lu.assertEquals(some.slower, 0)
  local ok, err = pcall(compare.results, { entry("1", one) }, { entry("4", bare) })
  lu.assertFalse(ok)
  lu.assertEquals(err.usage, "1 and 4: no matched point has kept samples on both sides, nothing to compare")
end

function TestMatch.test_scenarios_on_one_side()
  local sampled = { spread(1), spread(2), spread(3) }
  local cmp = compare.results({ entry("1", doc("s", ROWS, sampled)), entry("2", doc("t", ROWS)) },
    { entry("3", doc("s", ROWS, sampled)), entry("4", doc("u", ROWS)) })
  lu.assertEquals(#cmp.scenarios, 1)
  lu.assertEquals(cmp.only_base_scenarios, { "t" })
  lu.assertEquals(cmp.only_new_scenarios, { "u" })
end

function TestMatch.test_two_different_scenarios_are_an_error()
  local ok, err = pcall(compare.results, { entry("a.json", doc("s", ROWS)) }, { entry("b.json", doc("t", ROWS)) })
  lu.assertFalse(ok)
  testlib.contains(err.usage, "a.json is a result of s", "b.json one of t", "two different scenarios")
  ok, err = pcall(compare.results, { entry("a", doc("s", ROWS)), entry("b", doc("t", ROWS)) },
    { entry("c", doc("u", ROWS)) })
  lu.assertFalse(ok)
  testlib.contains(err.usage, "no scenario in common: base (a, b) has s, t; new (c) has u")
end

function TestMatch.test_same_parameters_twice_in_a_file()
  local d = doc("s", { { impl = "a", ms = 1.5 }, { impl = "a", ms = 1.7 } })
  local ok, err = pcall(compare.results, { entry("dup.json", d) }, { entry("n", doc("s", { { impl = "a", ms = 1 } })) })
  lu.assertFalse(ok)
  testlib.contains(err.usage, "dup.json: rows 1 and 2 have the same parameters (impl=a)", "--params")
end

function TestMatch.test_chosen_parameters()
  -- host differs between the runs: a parameter by the guess, so nothing matches, which is an
  -- error naming both files (nothing compared must not read as nothing slower)
  local base = doc("s", { { impl = "a", host = "x", ms = 1.5 } }, { spread(1) })
  local new = doc("s", { { impl = "a", host = "y", ms = 1.5 } }, { spread(1) })
  local ok, err = pcall(compare.results, { entry("1", base) }, { entry("2", new) })
  lu.assertFalse(ok)
  testlib.contains(err.usage, "1 and 2: no point of s in common on the parameter columns host, impl",
    "name the parameters with --params")
  local cmp = compare.results({ entry("1", base) }, { entry("2", new) }, { params = { "impl" } })
  lu.assertEquals(#cmp.scenarios[1].points, 1)
  lu.assertEquals(cmp.scenarios[1].parameters, { "impl" })
end

-- a parameter column only one side's rows have (one a later version of the scenario added) is
-- set aside where that side holds one value of it, and said so; with two values, or named by
-- --params, it stays in the match
function TestMatch.test_a_parameter_one_side_lacks()
  local old = doc("s", { { seq = 512, ms = 1.5 }, { seq = 1024, ms = 3 } }, { spread(1), spread(2) })
  local added = doc("s", { { seq = 512, gemm = "fastest", ms = 1.5 }, { seq = 1024, gemm = "fastest", ms = 3 } },
    { spread(1.05), spread(2) })
  local cmp = compare.results({ entry("1", old) }, { entry("2", added) })
  local scn = cmp.scenarios[1]
  lu.assertEquals(scn.parameters, { "seq" })
  lu.assertEquals(scn.set_aside, { { column = "gemm", side = "new", value = "fastest" } })
  lu.assertEquals({ #scn.points, scn.points[1].verdict, scn.points[2].verdict }, { 2, "slower", "same" })
  lu.assertEquals(compare.document(cmp).set_aside, { { scenario = "s", column = "gemm", side = "new", value = "fastest" } })
  -- the other way round: base has it
  cmp = compare.results({ entry("2", added) }, { entry("1", old) })
  lu.assertEquals(cmp.scenarios[1].set_aside, { { column = "gemm", side = "base", value = "fastest" } })
  -- two values of it: it tells points apart, so nothing matches
  local two = doc("s", { { seq = 512, gemm = "fastest", ms = 1.5 }, { seq = 512, gemm = "gemv", ms = 3 } },
    { spread(1), spread(2) })
  local ok, err = pcall(compare.results, { entry("1", old) }, { entry("3", two) })
  lu.assertFalse(ok)
  testlib.contains(err.usage, "no point of s in common on the parameter columns gemm, seq")
  -- named by --params, it is kept as asked
  ok, err = pcall(compare.results, { entry("1", old) }, { entry("2", added) }, { params = { "seq", "gemm" } })
  lu.assertFalse(ok)
  testlib.contains(err.usage, "no point of s in common on the parameter columns gemm, seq")
  -- rows told apart by it alone (a value on some rows, none on others): kept, and each point
  -- matched as before
  local some = doc("s", { { seq = 512, ms = 1.5 }, { seq = 512, variant = "x", ms = 1.5 } }, { spread(1), spread(1) })
  cmp = compare.results({ entry("1", old) }, { entry("4", some) })
  lu.assertEquals(cmp.scenarios[1].set_aside, {})
  lu.assertEquals({ #cmp.scenarios[1].points, #cmp.scenarios[1].only_new }, { 1, 1 })
  -- a side mixing files with and without it (--all over versions): kept, so the runs are not pooled
  cmp = compare.results({ entry("1", old) }, { entry("5", old), entry("2", added) })
  lu.assertEquals(cmp.scenarios[1].set_aside, {})
  lu.assertEquals(cmp.scenarios[1].points[1].n_new, #spread(1))
  -- rows without it on the side that has it (a point left out), the others with one value: set aside
  local left_out = doc("s", { { seq = 512, gemm = "fastest", ms = 1.5 }, { seq = 1024, note = "left out" } },
    { spread(1), {} })
  cmp = compare.results({ entry("1", old) }, { entry("6", left_out) })
  lu.assertEquals(cmp.scenarios[1].set_aside[1], { column = "gemm", side = "new", value = "fastest" })
  lu.assertEquals(cmp.scenarios[1].points[1].verdict, "same")
  -- no point in common even so: the error says what was set aside
  local elsewhere = doc("s", { { seq = 4096, gemm = "fastest", ms = 1.5 } }, { spread(1) })
  ok, err = pcall(compare.results, { entry("1", old) }, { entry("7", elsewhere) })
  lu.assertFalse(ok)
  testlib.contains(err.usage, "no point of s in common on the parameter columns seq; gemm set aside (only new's rows have it)")
end

-- a scenario of both sides with no point in common is listed apart, with the way out, and stops
-- no other scenario's comparison; the files it was in are not those compared
function TestMatch.test_a_scenario_with_no_point_in_common()
  local s_base = doc("s", ROWS, { spread(1), spread(2), spread(3) })
  local s_new = doc("s", ROWS, { spread(1.05), spread(2), spread(3) })
  local other = { device = { name = "other dev" }, sfbench_version = "1", git_revision = "r1" }
  local t_base = doc("t", { { impl = "a", host = "x", ms = 1.5 } }, { spread(1) })
  local t_new = doc("t", { { impl = "a", host = "y", ms = 1.5 } }, { spread(1) }, other)
  local cmp = compare.results({ entry("s1", s_base), entry("t1", t_base) }, { entry("s2", s_new), entry("t2", t_new) })
  lu.assertEquals(#cmp.scenarios, 1)
  lu.assertEquals(cmp.scenarios[1].scenario, "s")
  lu.assertEquals(cmp.slower, 1)
  lu.assertEquals(#cmp.unmatched_scenarios, 1)
  local t = cmp.unmatched_scenarios[1]
  lu.assertEquals({ t.scenario, t.parameters, t.base, t.new, #t.points }, { "t", { "host", "impl" }, { "t1" }, { "t2" }, 0 })
  lu.assertEquals(t.only_base, { { impl = "a", host = "x" } })
  lu.assertEquals(t.hint, "no point in common on the parameter columns host, impl (where one of them is a measurement, "
    .. "name the parameters with --params)")
  lu.assertNil(cmp.mismatch)                      -- t2's other device was not compared
  local d = compare.document(cmp)
  lu.assertEquals(d.unmatched_scenarios, { { scenario = "t", parameters = { "host", "impl" } } })
  lu.assertEquals(d.base.path, "s1")
  lu.assertEquals(#d.points, 3)
end

-- nothing compared over all the scenarios is an error naming both sides, each scenario with no
-- point in common, the way out, and the matched points that kept no samples
function TestMatch.test_nothing_compared_in_any_scenario()
  local t_base = doc("t", { { impl = "a", host = "x", ms = 1.5 } }, { spread(1) })
  local t_new = doc("t", { { impl = "a", host = "y", ms = 1.5 } }, { spread(1) })
  local ok, err = pcall(compare.results, { entry("s1", doc("s", ROWS)), entry("t1", t_base) },
    { entry("s2", doc("s", ROWS)), entry("t2", t_new) })
  lu.assertFalse(ok)
  lu.assertEquals(err.usage, "s1, t1 and s2, t2: no point of t in common on the parameter columns host, impl (where one "
    .. "of them is a measurement, name the parameters with --params); no matched point has kept samples on both sides, "
    .. "nothing to compare")
end

function TestMatch.test_context_mismatch_names_both()
  local other = { device = { name = "other dev" }, sfbench_version = "1", git_revision = "r2" }
  local sampled = { spread(1), spread(2), spread(3) }
  local cmp = compare.results({ entry("1", doc("s", ROWS, sampled)) }, { entry("2", doc("s", ROWS, sampled, other)) })
  lu.assertEquals(cmp.mismatch, "base and new differ: device 'dev' vs 'other dev', git revision 'r1' vs 'r2'")
end

return lu.LuaUnit.run()
