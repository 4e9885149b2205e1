-- luacheck: allow defined top
local lu = require "luaunit"
local figures = require "sfbench.figures"
local roofline = require "sfbench.roofline"
local html_report = require "sfbench.html_report"
local testlib = require "testlib"

-- a sweep's result like ffn_sweep's: the point {tokens, act}, two impls a point
local function ffn_entry()
  local rows, results = {}, {}
  for _, act in ipairs({ "gelu", "swiglu" }) do
    for _, T in ipairs({ 512, 1024, 2048 }) do
      for i, impl in ipairs({ "unfused", "fused" }) do
        local ms = T / 512 * (i == 1 and 2 or 1)            -- fused twice as fast
        rows[#rows + 1] = { act = act, tokens = T, impl = impl, dtype = "f16", hidden = 4096, intermediate = 11008,
          ms = ms, tflops = 100 * i, noise = 0.01, stop = "iters", intermediate_mib = 3 }
        results[#results + 1] = { name = act .. " " .. impl, point = { tokens = T, act = act }, tflops = 100 * i,
          samples = { ms * 0.99, ms, ms * 1.01, ms * 1.5 }, stats = { median = ms } }
      end
    end
  end
  local doc = { scenario = "ffn_sweep", rows = rows, results = results, params = { impl = { "unfused", "fused" } },
    context = { device = { name = "GPU X", mem_clock_max_mhz = 1000, mem_bus_width = 4096 } } }
  return { name = "ffn_sweep-1", scenario = "ffn_sweep", kind = "result", path = "x.json", doc = doc }
end

-- a result like gemv_sweep's: a row an impl of each point {proj, m}, bytes and no FLOPs
local function gemv_entry()
  local rows, results = {}, {}
  for _, proj in ipairs({ "qkv", "o" }) do
    for _, m in ipairs({ 1, 2, 4 }) do
      for i, impl in ipairs({ "cublaslt", "gemv" }) do
        local ms = 0.01 * m / i
        rows[#rows + 1] = { proj = proj, m = m, n = 512, k = 256, mb = 0.26, dtype = "f16", impl = impl, us = ms * 1e3,
          tbs = 262144 / (ms * 1e-3) / 1e12, fastest = "gemv" }
        results[#results + 1] = { name = proj .. " " .. impl, point = { proj = proj, m = m }, row = #rows,
          gbs = 262144 / (ms * 1e-3) / 1e9, samples = { ms, ms * 1.01, ms * 0.99 }, stats = { median = ms } }
      end
    end
  end
  local doc = { scenario = "gemv_sweep", rows = rows, results = results, params = { m = { 1, 2, 4 } },
    column_kinds = { fastest = "measurement" },
    context = { device = { name = "GPU X", mem_clock_max_mhz = 1000, mem_bus_width = 4096 } } }
  return { name = "gemv_sweep-1", scenario = "gemv_sweep", kind = "result", path = "g.json", doc = doc }
end

local function kinds(list)
  local out = {}
  for _, f in ipairs(list) do out[#out + 1] = f.id end
  return out
end

TestLayout = {}

function TestLayout.test_samples_saved_as_nan_are_left_out()
  local e = ffn_entry()
  e.doc.results[1].samples = { 1, "nan", 3 }
  e.doc.results[2].samples = { "nan" }
  local points = figures.points(e)
  lu.assertEquals(points[1].m.samples, { 1, 3 })
  lu.assertNil(points[2].m.samples)
end

function TestLayout.test_axis_series_panels()
  local points, names = figures.points(ffn_entry())
  lu.assertEquals(#points, 12)
  lu.assertEquals(names, { "act", "dtype", "tokens", "impl" })   -- the point, the row's strings; impl last
  local lay = figures.layout(points, names)
  lu.assertEquals(lay.axis, "tokens")
  lu.assertEquals(lay.series, "impl")
  lu.assertEquals(lay.panels, { "act" })
  lu.assertEquals(points[1].m.time_s, 2e-3)
  lu.assertEquals(points[1].m.flops_s, 100e12)
  lu.assertEquals(#points[1].m.samples, 4)
end

function TestLayout.test_gemm_shapes_are_lines_and_m_the_axis()
  local rows = {}
  for _, dtype in ipairs({ "bf16", "f16" }) do
    rows[#rows + 1] = { dtype = dtype, shape = "square", m = 64, n = 64, k = 64, ms = 1, tflops = 1 }
    for _, T in ipairs({ 16, 32 }) do
      rows[#rows + 1] = { dtype = dtype, shape = "qkv", m = T, n = 768, k = 256, ms = 1, tflops = 1 }
      rows[#rows + 1] = { dtype = dtype, shape = "o", m = T, n = 256, k = 256, ms = 1, tflops = 1 }
    end
  end
  local points, names = figures.points({ doc = { rows = rows } })
  local lay = figures.layout(points, names)
  lu.assertEquals(lay.axis, "m")
  lu.assertEquals(lay.series, "shape")
  lu.assertEquals(lay.panels, { "dtype" })
end

function TestLayout.test_no_axis_gives_categories()
  local rows = {}
  for _, op in ipairs({ "rmsnorm", "add" }) do
    for _, mode in ipairs({ "rotate", "cold" }) do
      rows[#rows + 1] = { op = op, mode = mode, tokens = 4096, us = 10, tbs = 2, batch = op == "add" and 7 or 3 }
    end
  end
  local points, names = figures.points({ doc = { rows = rows } })
  lu.assertEquals(names, { "mode", "op", "tokens" })      -- batch is a measurement
  local lay = figures.layout(points, names)
  lu.assertNil(lay.axis)
  lu.assertEquals(lay.panels, {})
  lu.assertEquals(points[1].m.bytes_s, 2e12)
  lu.assertAlmostEquals(points[1].m.time_s, 1e-5, 1e-18)
end

-- memory-bound rows (gemv_sweep's): a point a row, the impl a line, the bytes a rate
function TestLayout.test_memory_bound_rows()
  local points, names = figures.points(gemv_entry())
  lu.assertEquals(#points, 12)
  lu.assertEquals(names, { "dtype", "m", "proj", "impl" })   -- not the rows' fastest, a declared measurement
  lu.assertEquals(points[2].params, { proj = "qkv", m = 1, impl = "gemv", dtype = "f16" })
  lu.assertEquals(points[2].m.time_s, 0.005e-3)
  lu.assertAlmostEquals(points[2].m.bytes_s, 262144 / 0.005e-3, 1)
  lu.assertEquals(#points[2].m.samples, 3)
  local lay = figures.layout(points, names)
  lu.assertEquals({ lay.axis, lay.series, lay.panels }, { "m", "impl", { "proj" } })
end

TestFigures = {}

function TestFigures.test_the_charts_of_memory_bound_rows()
  local list = html_report.figures({ gemv_entry() })[1]
  lu.assertEquals(kinds(list), {
    "gemv_sweep-1.bytes.proj=qkv", "gemv_sweep-1.speedup.proj=qkv", "gemv_sweep-1.spread.proj=qkv",
    "gemv_sweep-1.bytes.proj=o", "gemv_sweep-1.speedup.proj=o", "gemv_sweep-1.spread.proj=o",
    "gemv_sweep-1.roofline" })
  lu.assertStrContains(list[1].svg, ">cublaslt</text>")
  lu.assertStrContains(list[1].svg, ">gemv</text>")
end

function TestFigures.test_the_charts_of_a_sweep()
  local e = ffn_entry()
  local list = html_report.figures({ e })[1]
  lu.assertEquals(kinds(list), {
    "ffn_sweep-1.flops.act=gelu", "ffn_sweep-1.speedup.act=gelu", "ffn_sweep-1.spread.act=gelu",
    "ffn_sweep-1.roofline.act=gelu",
    "ffn_sweep-1.flops.act=swiglu", "ffn_sweep-1.speedup.act=swiglu", "ffn_sweep-1.spread.act=swiglu",
    "ffn_sweep-1.roofline.act=swiglu" })
  -- the speedup line of fused over unfused is 2 at every point: one horizontal line
  local speedup = list[2].svg
  lu.assertStrContains(speedup, ">fused</text>")
  lu.assertNotStrContains(speedup, ">unfused</text>")     -- the baseline is the rule, not a line
  local d = speedup:match('<path d="([^"]*)" class="series" stroke=')
  local ys = {}
  for y in d:gmatch("[ML][%d.]+ ([%d.]+)") do ys[#ys + 1] = y end
  lu.assertEquals(#ys, 3)
  lu.assertEquals(ys[1], ys[2])
  lu.assertEquals(ys[2], ys[3])
  -- the roofline's roof: the best measured FLOP/s of the device and its DRAM bandwidth
  lu.assertStrContains(list[4].svg, "roof: 200 TFLOP/s, 1.02 TB/s (DRAM peak)")
end

-- memory-bound points (bytes, no FLOPs): attained B/s against the bytes a call moves, all panels
-- in one chart, under the peak bandwidth the result's context records, else the device's
function TestFigures.test_bandwidth_roofline_of_memory_bound_points()
  local e = gemv_entry()
  e.doc.context.peak_bytes_per_s = 3e12
  local list = html_report.figures({ e })[1]
  local roof = list[#list]
  lu.assertEquals(roof.id, "gemv_sweep-1.roofline")
  lu.assertEquals(roof.title, "gemv_sweep on GPU X: bandwidth roofline")
  testlib.contains(roof.svg, "bytes moved per call (kB), log2 scale", "attained bandwidth (TB/s)", ">DRAM peak 3 TB/s</text>",
    ">best measured 52.4 GB/s</text>", ">cublaslt</text>", ">gemv</text>")
  -- 12 points, at the 262 kB a call moves
  local marks = 0
  for d in roof.svg:gmatch('<path d="([^"]*)" class="series" fill=') do
    for _ in d:gmatch("M") do marks = marks + 1 end
  end
  lu.assertEquals(marks, 12)
  lu.assertStrContains(html_report.figures({ gemv_entry() })[1][7].svg, ">DRAM peak 1.02 TB/s</text>")
  -- no axis (memory_ops): a marker series a value of the parameter with the most values
  local rows = {}
  for _, op in ipairs({ "rmsnorm", "add", "rope" }) do
    for _, mode in ipairs({ "rotate", "cold" }) do rows[#rows + 1] = { op = op, mode = mode, us = 10, tbs = 2 } end
  end
  local ops = { name = "memory_ops-1", scenario = "memory_ops", kind = "result", path = "m.json",
    doc = { scenario = "memory_ops", rows = rows, context = { device = { name = "GPU X" } } } }
  roof = html_report.figures({ ops })[1][2]
  lu.assertEquals(roof.id, "memory_ops-1.roofline")
  testlib.contains(roof.svg, ">op=rmsnorm</text>", ">op=rope</text>", ">best measured 2 TB/s</text>")
  -- a sweep of FLOPs has the FLOP roofline alone
  for _, f in ipairs(html_report.figures({ ffn_entry() })[1]) do lu.assertNotEquals(f.id, "ffn_sweep-1.roofline") end
end

-- a result's other table of rows (launch_overhead's graph_rows, paired with the bench results):
-- its plots, its samples' spread, and its table on the page
function TestFigures.test_another_table_of_rows()
  local graph_rows, results = {}, {}
  for _, kernel in ipairs({ "empty kernel", "rmsnorm T=1" }) do
    for i, launch in ipairs({ "stream", "graph" }) do
      local us = i == 1 and 2 or 1
      graph_rows[#graph_rows + 1] = { kernel = kernel, launch = launch, us_per_call = us, vs_graph = us, feed = "held" }
      results[#results + 1] = { name = kernel .. ", " .. launch, point = { kernel = kernel, launch = launch },
        samples = { us * 1e-3, us * 1.1e-3, us * 0.9e-3 }, stats = { median = us * 1e-3 } }
    end
  end
  local doc = { scenario = "launch_overhead", rows = { { variant = "C loop", us_per_launch = 4 } },
    graph_rows = graph_rows, results = results, context = { device = { name = "GPU X" } } }
  local e = { name = "lo-1", scenario = "launch_overhead", kind = "result", path = "lo.json", doc = doc }
  local list = html_report.figures({ e })[1]
  lu.assertEquals(kinds(list), { "lo-1.time", "lo-1.graph_rows.time", "lo-1.graph_rows.spread" })
  testlib.contains(list[2].svg, "launch_overhead graph_rows on GPU X: time", ">kernel=rmsnorm T=1 · launch=graph</text>")
  local page = html_report.render({ e })
  testlib.contains(page, "<h3>graph_rows</h3>", "<th>kernel</th>\n<th>launch</th>", "<td>rmsnorm T=1</td>")
end

-- a key ending in _rows that holds no list of rows (a count, a string, an empty list) is not a table
function TestFigures.test_a_count_named_rows_is_not_a_table()
  local rows = { { op = "add", us = 10, tbs = 2 }, { op = "rmsnorm", us = 12, tbs = 1.5 } }
  local doc = { scenario = "memory_ops", n_rows = 3, name_rows = "x", empty_rows = {}, mixed_rows = { { a = 1 }, 2 },
    extra_rows = { { op = "add", us = 1, tbs = 3 } }, rows = rows, context = { device = { name = "GPU X" } } }
  lu.assertEquals(figures.tables(doc), { "extra_rows" })
  local e = { name = "m-1", scenario = "memory_ops", kind = "result", path = "m.json", doc = doc }
  lu.assertEquals(kinds(html_report.figures({ e })[1]),
    { "m-1.bytes", "m-1.roofline", "m-1.extra_rows.bytes", "m-1.extra_rows.roofline" })
  testlib.contains(html_report.render({ e }), "<h3>extra_rows</h3>")
end

-- the result's declared column kinds hold in its other tables too: a string declared a
-- measurement labels no point there, as it labels none in rows
function TestFigures.test_another_table_keeps_the_declared_kinds()
  local graph_rows = {
    { kernel = "empty", launch = "stream", us_per_call = 2, note = "warm" },
    { kernel = "empty", launch = "graph", us_per_call = 1, note = "cold" } }
  local results = {}
  for i, r in ipairs(graph_rows) do
    results[i] = { name = r.launch, point = { kernel = r.kernel, launch = r.launch }, samples = { 1e-3, 2e-3 } }
  end
  local doc = { scenario = "launch_overhead", rows = { { variant = "C loop", us_per_launch = 4, note = "warm" } },
    graph_rows = graph_rows, results = results, column_kinds = { note = "measurement" },
    context = { device = { name = "GPU X" } } }
  local e = { name = "lo-1", scenario = "launch_overhead", kind = "result", path = "lo.json", doc = doc }
  local sub = figures.table_entry(e, "graph_rows")
  local points, names = figures.points(sub)
  lu.assertEquals(names, { "kernel", "launch" })
  lu.assertEquals(points[2].params, { kernel = "empty", launch = "graph" })
  lu.assertEquals(sub.doc.column_kinds, { note = "measurement" })
  lu.assertEquals(select(2, figures.points(e)), { "variant" })
end

function TestFigures.test_compare_chart()
  local doc = { threshold = 0.02, points = {
    { scenario = "s", point = { n = 1024 }, impl = "a", ratio = 0.9, ci_low = 0.88, ci_high = 0.93, verdict = "faster" },
    { scenario = "s", point = { n = 2048 }, impl = "a", ratio = 1.0, ci_low = 0.99, ci_high = 1.01, verdict = "same" },
    { scenario = "t", point = { m = 1 }, ratio = 1.1, ci_low = 1.05, ci_high = 1.15, verdict = "slower" } } }
  local list = figures.of_compare({ name = "cmp", doc = doc })
  lu.assertEquals(kinds(list), { "cmp.compare.s", "cmp.compare.t" })
  lu.assertStrContains(list[1].svg, ">n=1024 · a</text>")
  lu.assertStrContains(list[1].svg, ">1 ± 2%: same</text>")
  lu.assertStrContains(list[2].svg, ">slower</text>")
end

TestRoofline = {}

function TestRoofline.test_intensity_of_a_gemm()
  local row = { dtype = "bf16", m = 4096, n = 4096, k = 4096 }
  local flops = 2 * 4096 ^ 3
  local t = 0.2e-3
  local ai = roofline.intensity("gemm_sweep", row, { flops_s = flops / t, time_s = t })
  lu.assertAlmostEquals(ai, flops / (2 * 3 * 4096 * 4096), 1e-9)
  -- a point that declared both throughputs needs no traffic model
  lu.assertEquals(roofline.intensity("anything", {}, { flops_s = 10, bytes_s = 4 }), 2.5)
  lu.assertNil(roofline.intensity("layer_sweep", row, { flops_s = 1, time_s = 1 }))
end

function TestRoofline.test_peaks()
  local h200 = { mem_clock_max_mhz = 3201, mem_bus_width = 6016 }
  lu.assertAlmostEquals(roofline.dram_bandwidth(h200), 4.814304e12, 1)
  lu.assertNil(roofline.dram_bandwidth({ name = "cpu" }))
  local peaks = roofline.peaks({
    { device = "A", flops_s = 5, where = "x" }, { device = "A", flops_s = 7, where = "y" },
    { device = "A", bytes_s = 3, where = "z" }, { device = "B", flops_s = 1, where = "w" } }, { A = h200 })
  lu.assertEquals(peaks.A.flops_s, 7)
  lu.assertEquals(peaks.A.flops_where, "y")
  lu.assertEquals(peaks.A.bytes_s, 3)
  lu.assertAlmostEquals(peaks.A.dram, 4.814304e12, 1)
  lu.assertEquals(peaks.B.flops_s, 1)
  lu.assertNil(peaks.B.dram)
end

return lu.LuaUnit.run()
