-- The plots of one result file. Its rows become points: parameters, time, FLOP/s, B/s and the
-- samples of the paired bench result. The sweep's axis is the numeric parameter that varies
-- (seq, tokens, m, n or k first); one line per impl (or per the parameter with the most values);
-- the other varying parameters make panels. Per panel: throughput (or time) against the axis,
-- the speedup over the baseline impl, the samples' spread, and a roofline; memory-bound points
-- get one bandwidth roofline over all panels. A result with no axis (memory_ops) gets the same
-- as dot charts over its points. A compare document gets each
-- point's time ratio with its interval.
local svg = require "sfbench.svg"
local stats = require "sfbench.stats"
local roofline = require "sfbench.roofline"
local report = require "sfbench.report"
local result_files = require "sfbench.result_files"

local figures = {}

-- row columns that are measurements, not parameters of the point
local is_measurement = result_files.is_measurement
-- a row's time column and its factor to seconds, in order of preference
local TIME_COLUMNS = { { "ms", 1e-3 }, { "us", 1e-6 }, { "median_us", 1e-6 }, { "us_per_launch", 1e-6 } }
local AXIS_PREFERENCE = { "seq", "tokens", "m", "n", "k" }

local function is_param_value(v)
  local t = type(v)
  return t == "string" or t == "boolean" or t == "number"
end

-- does the bench result belong to the row (every point field the row has agrees)?
local function agrees(result, row)
  if type(result.point) ~= "table" then return true end
  for k, v in pairs(result.point) do
    if row[k] ~= nil and row[k] ~= v then return false end
  end
  return true
end

local function measurements(row, result)
  local m = {}
  if result and type(result.stats) == "table" and type(result.stats.median) == "number" then
    m.time_s = result.stats.median * 1e-3
  else
    for _, c in ipairs(TIME_COLUMNS) do
      if type(row[c[1]]) == "number" then m.time_s = row[c[1]] * c[2]; break end
    end
  end
  local tflops = result and result.tflops or row.tflops
  if type(tflops) == "number" then m.flops_s = tflops * 1e12 end
  local gbs = result and result.gbs or row.gbs
  if type(gbs) == "number" then m.bytes_s = gbs * 1e9
  elseif type(row.tbs) == "number" then m.bytes_s = row.tbs * 1e12 end
  if result and type(result.samples) == "table" and #result.samples > 0 then
    local numbers = {}
    for _, x in ipairs(result.samples) do
      if type(x) == "number" then numbers[#numbers + 1] = x end   -- a sample saved as "nan" is left out
    end
    if #numbers > 0 then m.samples = numbers end
  end
  return m
end

-- The points of a result file: {params = {k = v}, row =, m = measurements}, and the parameter
-- names (those of the bench result's point, the row's other strings; without bench results,
-- every column that is not a measurement), a column the result declares (column_kinds) as it says.
function figures.points(entry)
  local doc = entry.doc
  local rows, results = doc.rows, doc.results or {}
  local declared = type(doc.column_kinds) == "table" and doc.column_kinds or {}
  local function is_measured(k)
    if declared[k] then return declared[k] == "measurement" end
    return is_measurement(k)
  end
  local paired = #results == #rows
  local points, names, seen = {}, {}, {}
  local function name(k)
    if not seen[k] then seen[k] = true; names[#names + 1] = k end
  end
  for i, row in ipairs(rows) do
    local result = paired and agrees(results[i], row) and results[i] or nil
    local p = {}
    if result and type(result.point) == "table" then
      for k, v in pairs(result.point) do
        if is_param_value(v) then p[k] = v end
      end
      for k, v in pairs(row) do
        if p[k] == nil and (type(v) == "string" or type(v) == "boolean") and not is_measured(k) then p[k] = v end
      end
    else
      for k, v in pairs(row) do
        if is_param_value(v) and not is_measured(k) then p[k] = v end
      end
    end
    for k in pairs(p) do name(k) end
    points[#points + 1] = { params = p, row = row, m = measurements(row, result) }
  end
  table.sort(names, function(a, b)
    if (a == "impl") ~= (b == "impl") then return b == "impl" end   -- impl last in labels
    return a < b
  end)
  return points, names
end

local function distinct(points, k)
  local seen, list = {}, {}
  for _, p in ipairs(points) do
    local v = p.params[k]
    local key = tostring(v)
    if v ~= nil and not seen[key] then seen[key] = true; list[#list + 1] = v end
  end
  return list
end

-- a parameter's value as labels show it (JSON numbers read back as floats: 512, not 512.0)
local function value_text(v)
  return type(v) == "number" and report.format_number(v) or tostring(v)
end

local function label(params, keys, bare)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = params[k]
    if v ~= nil then parts[#parts + 1] = (bare == k) and value_text(v) or (k .. "=" .. value_text(v)) end
  end
  return table.concat(parts, " · ")
end

-- The layout of a result's points: axis (or nil), series key, panel keys.
function figures.layout(points, names)
  local varying, numeric = {}, {}
  for _, k in ipairs(names) do
    local values = distinct(points, k)
    if #values > 1 then
      varying[#varying + 1] = k
      local all_positive = true
      for _, p in ipairs(points) do
        local v = p.params[k]
        if type(v) ~= "number" or v <= 0 then all_positive = false end
      end
      numeric[k] = all_positive
    end
  end
  local axis
  for _, k in ipairs(AXIS_PREFERENCE) do
    if numeric[k] then axis = k; break end
  end
  if not axis then
    for _, k in ipairs(varying) do
      if numeric[k] then axis = k; break end
    end
  end
  -- groups: the other varying strings; numbers too where the strings leave points that collide
  local function groups(with_numbers)
    local g = {}
    for _, k in ipairs(varying) do
      if k ~= axis and (with_numbers or not numeric[k]) then g[#g + 1] = k end
    end
    return g
  end
  local keys = groups(false)
  if axis then
    local taken = {}
    for _, p in ipairs(points) do
      local key = label(p.params, keys) .. "|" .. tostring(p.params[axis])
      if taken[key] then keys = groups(true); break end
      taken[key] = true
    end
  end
  local series
  for _, k in ipairs(keys) do
    if k == "impl" then series = k end
  end
  if not series and axis then
    local most = 1
    for _, k in ipairs(keys) do
      local n = #distinct(points, k)
      if n > most then series, most = k, n end
    end
  end
  -- without an axis every point is a category of one chart
  local panels = {}
  for _, k in ipairs(axis and keys or {}) do
    if k ~= series then panels[#panels + 1] = k end
  end
  return { axis = axis, series = series, panels = panels, varying = varying }
end

local function slug(s)
  return (s:gsub("[^%w_.=-]+", "-"))
end

-- the impl the speedup is against: the first in the sweep's impl parameter, else the first seen
local function baseline_impl(doc, points)
  local listed = type(doc.params) == "table" and doc.params.impl
  local present = {}
  for _, v in ipairs(distinct(points, "impl")) do present[v] = true end
  if type(listed) == "table" then
    for _, v in ipairs(listed) do
      if present[v] then return v end
    end
  end
  return distinct(points, "impl")[1]
end

-- box-plot figures of samples relative to their median, in percent
local function spread(samples)
  local s = stats.summary(samples)
  local med = s.median ~= 0 and s.median or 1
  local q1, q3 = (s.p25 / med - 1) * 100, (s.p75 / med - 1) * 100
  local fence_lo, fence_hi = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
  local lo, hi, outliers = q1, q3, {}
  for _, x in ipairs(samples) do
    local v = (x / med - 1) * 100
    if v < fence_lo or v > fence_hi then outliers[#outliers + 1] = v
    else lo, hi = math.min(lo, v), math.max(hi, v) end
  end
  return { q1 = q1, median = 0, q3 = q3, lo = lo, hi = hi, outliers = outliers }
end

local function peak_rules(chart, axis, pk, kind)
  if not pk then return end
  if kind == "flops" and pk.flops_s then
    chart:rule(axis, pk.flops_s, { label = "best measured " .. svg.format_si(pk.flops_s, "FLOP/s"), dash = true })
  elseif kind == "bytes" then
    if pk.bytes_s then
      chart:rule(axis, pk.bytes_s, { label = "best measured " .. svg.format_si(pk.bytes_s, "B/s"), dash = true })
    end
    if pk.dram then
      chart:rule(axis, pk.dram, { label = "DRAM peak " .. svg.format_si(pk.dram, "B/s"), color = "#b00020", dash = true })
    end
  end
end

local METRICS = {
  flops = { field = "flops_s", label = "throughput", unit = "FLOP/s", title = "FLOP/s" },
  bytes = { field = "bytes_s", label = "bandwidth", unit = "B/s", title = "bandwidth" },
  time = { field = "time_s", label = "time per call", unit = "s", title = "time" },
}

-- the metrics a set of points declares: FLOP/s and B/s where measured, else time
local function metrics_of(points)
  local has = {}
  for _, p in ipairs(points) do
    for k, m in pairs(METRICS) do
      if p.m[m.field] then has[k] = true end
    end
  end
  local list = {}
  if has.flops then list[#list + 1] = "flops" end
  if has.bytes then list[#list + 1] = "bytes" end
  if #list == 0 and has.time then list[1] = "time" end
  return list
end

-- The charts of one result file: a list of {id=, kind=, title=, svg=}.
function figures.of_result(entry, peaks)
  local doc = entry.doc
  local points, names = figures.points(entry)
  if #points == 0 then return {} end
  local lay = figures.layout(points, names)
  local device = figures.device_name(entry)
  local pk = peaks and peaks[device]
  -- the peak bandwidth the scenario measured against, where its context records one
  -- (decode_sweep's: the device's, or its peak_tbs parameter)
  local recorded = type(doc.context) == "table" and doc.context.peak_bytes_per_s
  if type(recorded) == "number" and recorded > 0 then pk = setmetatable({ dram = recorded }, { __index = pk }) end
  local head = entry.scenario .. " on " .. device
  local out = {}
  local function add(kind, panel, title, chart)
    local id = entry.name .. "." .. kind .. (panel ~= "" and ("." .. slug(panel)) or "")
    out[#out + 1] = { id = id, kind = kind, title = title, svg = chart:render() }
  end

  -- panels in order of first appearance
  local panel_order, by_panel = {}, {}
  for _, p in ipairs(points) do
    local key = label(p.params, lay.panels)
    if not by_panel[key] then by_panel[key] = {}; panel_order[#panel_order + 1] = key end
    table.insert(by_panel[key], p)
  end

  for _, panel in ipairs(panel_order) do
    local pts = by_panel[panel]
    local suffix = panel ~= "" and (" · " .. panel) or ""
    local series_order, by_series = {}, {}
    for _, p in ipairs(pts) do
      local key = lay.series and label(p.params, { lay.series }, "impl") or ""
      if not by_series[key] then by_series[key] = {}; series_order[#series_order + 1] = key end
      table.insert(by_series[key], p)
    end
    local function by_x(list)
      local sorted = table.move(list, 1, #list, 1, {})
      table.sort(sorted, function(a, b) return a.params[lay.axis] < b.params[lay.axis] end)
      return sorted
    end
    local categories, category_of = {}, {}
    if lay.axis then
      for _, v in ipairs(distinct(pts, lay.axis)) do categories[#categories + 1] = v end
      table.sort(categories)
    else
      local others = {}
      for _, k in ipairs(lay.varying) do
        if k ~= lay.series then others[#others + 1] = k end
      end
      for _, p in ipairs(pts) do
        local name = label(p.params, others)
        if name == "" then name = entry.scenario end
        if not category_of[name] then categories[#categories + 1] = name; category_of[name] = #categories end
        p.category = category_of[name]
      end
    end
    for i, v in ipairs(categories) do category_of[v] = i end

    for _, kind in ipairs(metrics_of(pts)) do
      local metric = METRICS[kind]
      local title = ("%s: %s%s"):format(head, metric.title, suffix)
      local chart
      if lay.axis then
        chart = svg.chart { title = title, x = { label = lay.axis, log = 2 },
          y = { label = metric.label, unit = metric.unit, si = true, zero = kind ~= "time", log = kind == "time" and 10 or nil } }
        for _, key in ipairs(series_order) do
          local line = {}
          for _, p in ipairs(by_x(by_series[key])) do
            if p.m[metric.field] then line[#line + 1] = { p.params[lay.axis], p.m[metric.field] } end
          end
          if #line > 0 then chart:line(line, { label = key ~= "" and key or metric.title }) end
        end
        peak_rules(chart, "y", pk, kind)
      else
        chart = svg.chart { title = title, x = { label = metric.label, unit = metric.unit, si = true, zero = true },
          y = { categories = categories } }
        for _, key in ipairs(series_order) do
          local dots = {}
          for _, p in ipairs(by_series[key]) do
            if p.m[metric.field] then dots[#dots + 1] = { p.m[metric.field], p.category } end
          end
          if #dots > 0 then chart:markers(dots, { label = key ~= "" and key or metric.title }) end
        end
        peak_rules(chart, "x", pk, kind)
      end
      add(kind, panel, title, chart)
    end

    -- speedup over the baseline impl, at each axis value
    if lay.axis and lay.series == "impl" then
      local base = baseline_impl(doc, pts)
      local base_time = {}
      for _, p in ipairs(pts) do
        if p.params.impl == base and p.m.time_s then base_time[p.params[lay.axis]] = p.m.time_s end
      end
      local title = ("%s: speedup over %s%s"):format(head, base, suffix)
      local chart = svg.chart { title = title, x = { label = lay.axis, log = 2 },
        y = { label = base .. " time ÷ time", unit = "×", zero = true } }
      local drawn = false
      for _, key in ipairs(series_order) do
        if key ~= tostring(base) then
          local line = {}
          for _, p in ipairs(by_x(by_series[key])) do
            local b = base_time[p.params[lay.axis]]
            if b and p.m.time_s then line[#line + 1] = { p.params[lay.axis], b / p.m.time_s } end
          end
          if #line > 0 then chart:line(line, { label = key }); drawn = true end
        else
          chart:style(nil)   -- the baseline keeps its colour from the other charts
        end
      end
      if drawn then
        chart:rule("y", 1, { label = base .. " (1×)", at = "start" })
        add("speedup", panel, title, chart)
      end
    end

    -- the samples of each point, relative to its median
    local any_samples = false
    for _, p in ipairs(pts) do any_samples = any_samples or p.m.samples ~= nil end
    if any_samples then
      local title = ("%s: spread of the samples%s"):format(head, suffix)
      local names_x = {}
      for i, v in ipairs(categories) do names_x[i] = value_text(v) end
      -- the scale spans the whiskers; outliers beyond are drawn at its edge
      local boxes_of, lo, hi = {}, 0, 0
      for si, key in ipairs(series_order) do
        local list = {}
        for _, p in ipairs(by_series[key]) do
          if p.m.samples then
            local b = spread(p.m.samples)
            b.x = lay.axis and category_of[p.params[lay.axis]] or p.category
            b.offset = #series_order > 1 and ((si - (#series_order + 1) / 2) / (#series_order + 1)) or 0
            lo, hi = math.min(lo, b.lo), math.max(hi, b.hi)
            list[#list + 1] = b
          end
        end
        boxes_of[si] = list
      end
      local margin = math.max((hi - lo) * 0.3, 0.5)
      lo, hi = lo - margin, hi + margin
      local values = { label = "sample − median", unit = "% of median", min = lo, max = hi }
      local chart = lay.axis and svg.chart { title = title, x = { label = lay.axis, categories = names_x }, y = values }
        or svg.chart { title = title, x = values, y = { categories = names_x } }
      for si, key in ipairs(series_order) do
        for _, b in ipairs(boxes_of[si]) do
          for i, o in ipairs(b.outliers) do b.outliers[i] = math.max(lo, math.min(hi, o)) end
        end
        chart:boxes(boxes_of[si], { label = key ~= "" and key or "samples",
          width = 0.7 / math.max(1, #series_order) })
      end
      add("spread", panel, title, chart)
    end

    -- roofline: attained FLOP/s against intensity, under min(peak FLOP/s, B/s × intensity)
    if pk and pk.flops_s then
      local series_points, lo_ai, hi_ai = {}, math.huge, 0
      for si, key in ipairs(series_order) do
        local list = {}
        for _, p in ipairs(by_series[key]) do
          local ai = p.m.flops_s and roofline.intensity(entry.scenario, p.row, p.m)
          if ai and ai > 0 then
            list[#list + 1] = { ai, p.m.flops_s }
            lo_ai, hi_ai = math.min(lo_ai, ai), math.max(hi_ai, ai)
          end
        end
        series_points[si] = list
      end
      if hi_ai > 0 then
        local bw = pk.bytes_s or pk.dram
        if bw then
          local ridge = pk.flops_s / bw
          lo_ai, hi_ai = math.min(lo_ai, ridge), math.max(hi_ai, ridge)
        end
        lo_ai, hi_ai = lo_ai / 4, hi_ai * 4
        local title = ("%s: roofline%s"):format(head, suffix)
        local chart = svg.chart { title = title,
          x = { label = "arithmetic intensity", unit = "FLOP/byte", log = 10, min = lo_ai, max = hi_ai },
          y = { label = "attained", unit = "FLOP/s", si = true, log = 10 } }
        local roof_label = bw and ("roof: %s, %s"):format(svg.format_si(pk.flops_s, "FLOP/s"),
          svg.format_si(bw, "B/s") .. (pk.bytes_s and "" or " (DRAM peak)")) or
          ("roof: %s (no bandwidth measured on this device)"):format(svg.format_si(pk.flops_s, "FLOP/s"))
        if bw then
          local ridge = pk.flops_s / bw
          chart:line({ { lo_ai, bw * lo_ai }, { ridge, pk.flops_s }, { hi_ai, pk.flops_s } },
            { label = roof_label, color = "#444444", marker = false })
        else
          chart:line({ { lo_ai, pk.flops_s }, { hi_ai, pk.flops_s } }, { label = roof_label, color = "#444444", marker = false })
        end
        if pk.bytes_s and pk.dram then
          local ridge = pk.flops_s / pk.dram
          chart:line({ { lo_ai, pk.dram * lo_ai }, { ridge, pk.flops_s } },
            { label = "DRAM peak " .. svg.format_si(pk.dram, "B/s"), color = "#b00020", marker = false, dash = true })
        end
        for si, key in ipairs(series_order) do
          if #series_points[si] > 0 then
            chart:markers(series_points[si], { label = key ~= "" and key or entry.scenario, index = si })
          end
        end
        add("roofline", panel, title, chart)
      end
    end
  end

  -- memory-bound points (B/s, no FLOP/s), all panels in one chart: attained B/s against the bytes
  -- a call moves (B/s × time: what the row declared), under the device's DRAM peak and its best
  -- measured B/s. The lines are the layout's; without an axis, the parameter with the most values.
  if pk and (pk.dram or pk.bytes_s) then
    local key = lay.series
    if not key then
      local most = 1
      for _, k in ipairs(lay.varying) do
        local n = #distinct(points, k)
        if n > most then key, most = k, n end
      end
    end
    local order, by_key = {}, {}
    for _, p in ipairs(points) do
      if p.m.bytes_s and p.m.time_s and not p.m.flops_s then
        local name = key and label(p.params, { key }, "impl") or ""
        if not by_key[name] then by_key[name] = {}; order[#order + 1] = name end
        table.insert(by_key[name], { p.m.bytes_s * p.m.time_s, p.m.bytes_s })
      end
    end
    if #order > 0 then
      local title = ("%s: bandwidth roofline"):format(head)
      local chart = svg.chart { title = title, x = { label = "bytes moved per call", unit = "B", si = true, log = 2 },
        y = { label = "attained bandwidth", unit = "B/s", si = true, zero = true } }
      for i, name in ipairs(order) do
        chart:markers(by_key[name], { label = name ~= "" and name or entry.scenario, index = i })
      end
      peak_rules(chart, "y", pk, "bytes")
      add("roofline", "", title, chart)
    end
  end

  for _, key in ipairs(figures.tables(doc)) do
    local more = figures.of_result(figures.table_entry(entry, key), peaks)
    table.move(more, 1, #more, #out + 1, out)
  end
  return out
end

-- The names of a result's other tables of rows, beside `rows` (launch_overhead's graph_rows), sorted:
-- a key ending in _rows whose value is a non-empty list of tables (a count such as n_rows is not one).
function figures.tables(doc)
  local keys = {}
  for k, v in pairs(doc) do
    if type(k) == "string" and k ~= "rows" and k:match("_rows$") and result_files.is_list_of_tables(v) and v[1] ~= nil then
      keys[#keys + 1] = k
    end
  end
  table.sort(keys)
  return keys
end

-- Another table of a result as an entry of its own: its rows, with the result's bench results
-- (their samples, where they pair with these rows), context and declared column kinds (the
-- result's column_kinds name the columns of all its tables).
function figures.table_entry(entry, key)
  local doc = entry.doc
  return { name = entry.name .. "." .. key, scenario = entry.scenario .. " " .. key, kind = entry.kind, path = entry.path,
    doc = { scenario = doc.scenario, rows = doc[key], results = doc.results, context = doc.context, params = doc.params,
      column_kinds = doc.column_kinds } }
end

-- the device a result was measured on, by name
function figures.device_name(entry)
  local doc = entry.doc
  if type(doc.context) == "table" and type(doc.context.device) == "table" then
    return tostring(doc.context.device.name)
  end
  if type(doc.device) == "string" then return doc.device end
  return "unknown device"
end

-- The measured throughputs of a result file, for the peaks of its device.
function figures.measured(entry)
  local list = {}
  local points = figures.points(entry)
  local device = figures.device_name(entry)
  for _, p in ipairs(points) do
    if p.m.flops_s or p.m.bytes_s then
      local where = entry.scenario
      local names = {}
      for k in pairs(p.params) do names[#names + 1] = k end
      table.sort(names)
      local l = label(p.params, names)
      list[#list + 1] = { device = device, flops_s = p.m.flops_s, bytes_s = p.m.bytes_s,
        where = l ~= "" and (where .. " " .. l) or where }
    end
  end
  return list
end

-- A compare document's charts: per scenario, each (point, impl)'s time ratio new/base with its
-- interval, coloured by verdict, against 1 and the 1 ± threshold band.
function figures.of_compare(entry)
  local doc = entry.doc
  local order, by_scenario = {}, {}
  for _, p in ipairs(doc.points) do
    local s = tostring(p.scenario or "?")
    if not by_scenario[s] then by_scenario[s] = {}; order[#order + 1] = s end
    table.insert(by_scenario[s], p)
  end
  local threshold = type(doc.threshold) == "number" and doc.threshold or nil
  local out = {}
  local COLORS = { faster = "#009E73", slower = "#D55E00", same = "#666666" }
  for _, s in ipairs(order) do
    local list = by_scenario[s]
    local categories, groups, group_order = {}, {}, {}
    for i, p in ipairs(list) do
      categories[i] = figures.compare_label(p)
      local v = tostring(p.verdict or "same")
      if not groups[v] then groups[v] = {}; group_order[#group_order + 1] = v end
      table.insert(groups[v], { y = i, lo = p.ci_low, hi = p.ci_high, mid = p.ratio })
    end
    local title = ("%s: new ÷ base time, with its 95%% interval"):format(s)
    local chart = svg.chart { title = title,
      x = { label = "time ratio new ÷ base, below 1 is faster" },
      y = { categories = categories } }
    if threshold then
      chart:band("x", 1 - threshold, 1 + threshold, { label = ("1 ± %g%%: same"):format(threshold * 100) })
    end
    chart:rule("x", 1, { label = "1" })
    for _, v in ipairs(group_order) do
      chart:intervals(groups[v], { label = v, color = COLORS[v] })
    end
    out[#out + 1] = { id = entry.name .. ".compare." .. slug(s), kind = "compare", title = title, svg = chart:render() }
  end
  return out
end

-- "act=gelu · tokens=512 · fused": a compared point and its impl (JSON nulls left out)
function figures.compare_label(p)
  local names, parts = {}, {}
  if type(p.point) == "table" then
    for k, v in pairs(p.point) do
      if is_param_value(v) then names[#names + 1] = k end
    end
    table.sort(names)
    for _, k in ipairs(names) do parts[#parts + 1] = k .. "=" .. value_text(p.point[k]) end
  end
  if is_param_value(p.impl) then parts[#parts + 1] = value_text(p.impl) end
  return #parts > 0 and table.concat(parts, " · ") or "point"
end

return figures
