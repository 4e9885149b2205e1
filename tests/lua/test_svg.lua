-- luacheck: allow defined top
local lu = require "luaunit"
local testlib = require "testlib"
local svg = require "sfbench.svg"

-- the numbers of the first <path> whose attributes include attr
local function path_numbers(text, attr)
  for d, attrs in text:gmatch('<path d="([^"]*)" ([^>]*)/>') do
    if attrs:find(attr, 1, true) then
      local out = {}
      for n in d:gmatch("-?[%d.]+") do out[#out + 1] = tonumber(n) end
      return out, d
    end
  end
  lu.fail("no path with " .. attr)
end

TestTicks = {}

function TestTicks.test_linear()
  local ticks, step = svg.linear_ticks(0, 10, 5)
  lu.assertEquals(ticks, { 0, 2, 4, 6, 8, 10 })
  lu.assertEquals(step, 2)
  ticks, step = svg.linear_ticks(0.13, 0.87, 5)
  lu.assertAlmostEquals(step, 0.2, 1e-12)
  lu.assertAlmostEquals(ticks[1], 0, 1e-12)
  lu.assertAlmostEquals(ticks[#ticks], 1, 1e-12)
end

function TestTicks.test_log2_powers()
  lu.assertEquals(svg.log_ticks(512, 16384, 2), { 512, 1024, 2048, 4096, 8192, 16384 })
  local many = svg.log_ticks(1, 2 ^ 20, 2)
  lu.assertTrue(#many <= 9)
  for _, t in ipairs(many) do
    local e = math.log(t, 2)
    lu.assertEquals(e, math.floor(e))
  end
end

function TestTicks.test_log10_with_2_and_5_over_few_decades()
  lu.assertEquals(svg.log_ticks(10, 1000, 10), { 10, 20, 50, 100, 200, 500, 1000 })
  lu.assertEquals(svg.log_ticks(1, 1e6, 10), { 1, 10, 100, 1000, 1e4, 1e5, 1e6 })
end

function TestTicks.test_si()
  local p, f = svg.si_prefix(6.8e14)
  lu.assertEquals(p, "T")
  lu.assertEquals(f, 1e12)
  p, f = svg.si_prefix(1.6e-4)
  lu.assertEquals(p, "µ")
  lu.assertEquals(f, 1e-6)
  lu.assertEquals(svg.format_si(2 * 3201e6 * 6016 / 8, "B/s"), "4.81 TB/s")
  lu.assertEquals(svg.format_si(0.25, "s"), "250 ms")
end

function TestTicks.test_escape()
  lu.assertEquals(svg.escape([[<a href="x">&'</a>]]), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;")
end

TestChart = {}

function TestChart.test_line_maps_to_the_frame()
  local c = svg.chart { title = "t <1>", x = { label = "tokens", log = 2 }, y = { label = "time", unit = "s", si = true,
    min = 0, max = 0.01 } }
  c:line({ { 512, 0.005 }, { 1024, 0.01 } }, { label = "fused & co" })
  local text = c:render()
  lu.assertStrContains(text, "<title>t &lt;1&gt;</title>")
  lu.assertStrContains(text, ">fused &amp; co</text>")
  lu.assertStrContains(text, ">time (ms)</text>")          -- 0.01 s shown in ms
  lu.assertStrContains(text, ">tokens, log2 scale</text>")
  lu.assertNotStrContains(text, 'd=""')
  local frame = path_numbers(text, 'class="frame"')
  local n = path_numbers(text, 'class="series" stroke=')
  -- frame: M x0 y1 H x1 V y0 H x0 z; the line: from (x(512), middle) to (x(1024), top)
  local x0, y1, x1, y0 = frame[#frame - 4], frame[#frame - 3], frame[#frame - 2], frame[#frame - 1]
  lu.assertTrue(n[1] > x0 and n[3] < x1 and n[1] < n[3])
  lu.assertAlmostEquals(n[2], (y0 + y1) / 2, 0.01)
  lu.assertAlmostEquals(n[4], y1, 0.01)
end

function TestChart.test_categories_on_y_read_top_down()
  local c = svg.chart { x = { label = "bandwidth", unit = "B/s", si = true, zero = true }, y = { categories = { "a", "b" } } }
  c:markers({ { 1e9, 1 }, { 2e9, 2 } }, { label = "ops", marker = "square" })
  local n = path_numbers(c:render(), 'class="series" fill=')
  -- two squares: M x y h.. v.. h.. z each; the first (category a) above the second
  lu.assertEquals(#n, 10)
  lu.assertTrue(n[2] < n[7])
  lu.assertTrue(n[1] < n[6])
end

function TestChart.test_boxes_and_rules()
  local c = svg.chart { x = { label = "n", categories = { "1", "2" } }, y = { label = "dev", unit = "%", min = -10, max = 10 } }
  c:boxes({ { x = 1, lo = -5, q1 = -1, median = 0, q3 = 2, hi = 6, outliers = { 9, 9 } } }, { label = "impl" })
  c:rule("y", 0, { label = "median" })
  local text = c:render()
  local box = path_numbers(text, 'class="series" fill="#0072B2" fill-opacity="0.25"')
  -- M x q1 H x V q3: q3 (2 %) is above q1 (-1 %)
  lu.assertTrue(box[4] < box[2])
  lu.assertStrContains(text, 'class="rule"')
  lu.assertStrContains(text, ">median</text>")
  -- the two equal outliers are one dot
  local _, dots = path_numbers(text, 'fill-opacity="0.6"')
  local count = select(2, dots:gsub("M", ""))
  lu.assertEquals(count, 1)
end

function TestChart.test_bad_axes()
  testlib.contains(testlib.error_of(svg.chart, { x = { log = 3 }, y = {} }), "x.log must be 2 or 10")
  testlib.contains(testlib.error_of(svg.chart, { x = {}, y = { log = 2, categories = { "a" } } }), "y.categories")
  testlib.contains(testlib.error_of(svg.chart, { x = {} }), "'y' must be an axis table")
end

return lu.LuaUnit.run()
