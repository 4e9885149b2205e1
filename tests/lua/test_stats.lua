-- luacheck: allow defined top
local lu = require "luaunit"
local stats = require "sfbench.stats"

local EPS = 1e-12

TestStats = {}

function TestStats.test_odd_count()
  local s = stats.summary({ 5, 1, 3 })
  lu.assertEquals(s.n, 3)
  lu.assertEquals(s.median, 3)
  lu.assertEquals(s.mean, 3)
  lu.assertEquals(s.std, 2)
  lu.assertEquals(s.min, 1)
  lu.assertEquals(s.max, 5)
  lu.assertEquals(s.p25, 2)
  lu.assertEquals(s.p75, 4)
  lu.assertAlmostEquals(s.p95, 4.8, EPS)
  lu.assertAlmostEquals(s.p99, 4.96, EPS)
  lu.assertAlmostEquals(s.noise, 2 / 3, EPS)
  lu.assertAlmostEquals(s.iqr_noise, 2 / 3, EPS)
end

function TestStats.test_even_count()
  local s = stats.summary({ 4, 1, 3, 2 })
  lu.assertEquals(s.n, 4)
  lu.assertEquals(s.median, 2.5)
  lu.assertEquals(s.mean, 2.5)
  lu.assertAlmostEquals(s.std, math.sqrt(5 / 3), EPS)
  lu.assertEquals(s.p25, 1.75)
  lu.assertEquals(s.p75, 3.25)
  lu.assertAlmostEquals(s.p95, 3.85, EPS)
  lu.assertAlmostEquals(s.p99, 3.97, EPS)
  lu.assertAlmostEquals(s.noise, math.sqrt(5 / 3) / 2.5, EPS)
  lu.assertAlmostEquals(s.iqr_noise, 0.6, EPS)
end

function TestStats.test_single_sample()
  lu.assertEquals(stats.summary({ 7 }), {
    n = 1, median = 7, mean = 7, std = 0, min = 7, max = 7,
    p25 = 7, p75 = 7, p95 = 7, p99 = 7, noise = 0, iqr_noise = 0,
  })
end

function TestStats.test_hundred_and_one()
  local xs = {}
  for i = 101, 1, -1 do xs[#xs + 1] = i end
  local s = stats.summary(xs)
  lu.assertEquals(s.median, 51)
  lu.assertEquals(s.p25, 26)
  lu.assertEquals(s.p75, 76)
  lu.assertAlmostEquals(s.p95, 96, EPS)
  lu.assertAlmostEquals(s.p99, 100, EPS)
  lu.assertEquals(xs[1], 101) -- the input is not sorted in place
end

-- skewed samples, as timings are (a few slow outliers): the median is not the mean, nor the
-- middle of the range, and the percentiles follow the ranks, not the values
function TestStats.test_skewed_odd()
  local s = stats.summary({ 1.0, 1.2, 100, 1.1, 1.3, 1.0, 40 })
  lu.assertEquals(s.n, 7)
  lu.assertEquals(s.median, 1.2)
  lu.assertAlmostEquals(s.mean, 145.6 / 7, EPS)
  lu.assertEquals(s.min, 1.0)
  lu.assertEquals(s.max, 100)
  lu.assertAlmostEquals(s.p25, 1.05, EPS)
  lu.assertAlmostEquals(s.p75, 20.65, EPS)
  lu.assertAlmostEquals(s.p95, 82, 1e-9)
  lu.assertAlmostEquals(s.p99, 96.4, 1e-9)
  lu.assertAlmostEquals(s.iqr_noise, (20.65 - 1.05) / 1.2, EPS)
end

function TestStats.test_skewed_even()
  local s = stats.summary({ 2, 9, 3, 1, 3, 50 })
  lu.assertEquals(s.median, 3)
  lu.assertAlmostEquals(s.mean, 68 / 6, EPS)
  lu.assertEquals(s.p25, 2.25)
  lu.assertEquals(s.p75, 7.5)
  local sq = 0
  for _, x in ipairs({ 2, 9, 3, 1, 3, 50 }) do sq = sq + (x - 68 / 6) ^ 2 end
  lu.assertAlmostEquals(s.std, math.sqrt(sq / 5), EPS)
  lu.assertAlmostEquals(s.noise, math.sqrt(sq / 5) / (68 / 6), EPS)
end

-- a slow tail on one side only: the median stays with the bulk
function TestStats.test_long_tail()
  local xs = {}
  for i = 1, 90 do xs[#xs + 1] = 10 + (i % 3) * 0.1 end
  for i = 1, 11 do xs[#xs + 1] = 50 + i end
  local s = stats.summary(xs)
  lu.assertAlmostEquals(s.median, 10.1, EPS)
  lu.assertTrue(s.mean > 14, "the tail pulls the mean")
  lu.assertEquals(s.max, 61)
  lu.assertEquals(s.p99, 60)
end

function TestStats.test_rejects_bad_input()
  lu.assertErrorMsgContains("non-empty list", stats.summary, {})
  lu.assertErrorMsgContains("non-empty list", stats.summary, nil)
  lu.assertErrorMsgContains("sample 2 is x, not a number", stats.summary, { 1, "x" })
  lu.assertErrorMsgContains("sample 1 is", stats.summary, { 0 / 0 })
end

return lu.LuaUnit.run()
