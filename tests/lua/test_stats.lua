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

function TestStats.test_rejects_bad_input()
  lu.assertErrorMsgContains("non-empty list", stats.summary, {})
  lu.assertErrorMsgContains("non-empty list", stats.summary, nil)
  lu.assertErrorMsgContains("sample 2 is x, not a number", stats.summary, { 1, "x" })
  lu.assertErrorMsgContains("sample 1 is", stats.summary, { 0 / 0 })
end

os.exit(lu.LuaUnit.run())
