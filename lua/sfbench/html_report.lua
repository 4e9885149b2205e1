-- One HTML page of result files: per file its plots (sfbench.figures), then its context and its
-- table. Everything is inline (CSS, SVG) and a Content-Security-Policy forbids any fetch, so the
-- page reads the same offline.
local svg = require "sfbench.svg"
local figures = require "sfbench.figures"
local roofline = require "sfbench.roofline"
local report = require "sfbench.report"

local html_report = {}

local esc = svg.escape

local CSS = [[
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0 auto;
  max-width: 1800px; padding: 16px 24px; color: #222; background: #fafafa; }
h1 { font-size: 22px; margin: 8px 0; }
h2 { font-size: 18px; margin: 32px 0 4px; padding-top: 12px; border-top: 2px solid #ccc; }
h2 small, .meta { color: #666; font-weight: normal; font-size: 13px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; background: #fff; border: 1px solid #ddd; }
figcaption { font-size: 11px; color: #888; padding: 0 8px 4px; }
table { border-collapse: collapse; font-size: 12px; background: #fff; }
th, td { border: 1px solid #ddd; padding: 2px 8px; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f0f0f0; }
.scroll { overflow-x: auto; max-width: 100%; }
.warn { color: #8a4b00; }
ul.inputs { font-size: 13px; }
]]

local function cell(v)
  if v == nil or type(v) == "userdata" then return "<td>—</td>" end   -- userdata: a JSON null
  if type(v) == "number" then return '<td class="n">' .. esc(report.format_number(v)) .. "</td>" end
  if type(v) == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = type(x) == "table" and "…" or tostring(x) end
    return "<td>" .. esc(table.concat(parts, ", ")) .. "</td>"
  end
  return "<td>" .. esc(tostring(v)) .. "</td>"
end

-- a nested value as one line: {a = 1, b = {c = 2}} -> "a=1, b={c=2}"
local function flat(v)
  if type(v) == "number" then return report.format_number(v) end
  if type(v) ~= "table" then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do
    parts[#parts + 1] = math.type(k) == "integer" and flat(v[k]) or (tostring(k) .. "=" .. flat(v[k]))
  end
  return (#v > 0 and "[" or "{") .. table.concat(parts, ", ") .. (#v > 0 and "]" or "}")
end

local function key_value_table(out, pairs_list)
  out[#out + 1] = '<table class="context">'
  for _, kv in ipairs(pairs_list) do
    local v = kv[2]
    if type(v) == "table" then v = flat(v):gsub("^[{%[](.*)[}%]]$", "%1") else v = flat(v) end
    out[#out + 1] = ("<tr><th>%s</th><td>%s</td></tr>"):format(esc(kv[1]), esc(v))
  end
  out[#out + 1] = "</table>"
end

local function sorted_pairs(t, first)
  local list, keys = {}, {}
  for k in pairs(t) do keys[#keys + 1] = k end
  local rank = {}
  for i, k in ipairs(first or {}) do rank[k] = i end
  table.sort(keys, function(a, b)
    local ra, rb = rank[a] or math.huge, rank[b] or math.huge
    if ra ~= rb then return ra < rb end
    return tostring(a) < tostring(b)
  end)
  for _, k in ipairs(keys) do list[#list + 1] = { tostring(k), t[k] } end
  return list
end

local function rows_table(out, rows, first)
  local seen, cols = {}, {}
  for _, k in ipairs(first) do
    seen[k] = true
    cols[#cols + 1] = k
  end
  local rest = {}
  for _, row in ipairs(rows) do
    for k, v in pairs(row) do
      if not seen[k] and (type(v) ~= "table" or (v[1] ~= nil and type(v[1]) ~= "table")) then
        seen[k] = true
        rest[#rest + 1] = k
      end
    end
  end
  table.sort(rest)
  table.move(rest, 1, #rest, #cols + 1, cols)
  out[#out + 1] = '<div class="scroll"><table class="rows"><tr>'
  for _, k in ipairs(cols) do out[#out + 1] = "<th>" .. esc(k) .. "</th>" end
  out[#out + 1] = "</tr>"
  for _, row in ipairs(rows) do
    local cells = {}
    for i, k in ipairs(cols) do cells[i] = cell(row[k]) end
    out[#out + 1] = "<tr>" .. table.concat(cells) .. "</tr>"
  end
  out[#out + 1] = "</table></div>"
end

local function figures_block(out, list)
  if #list == 0 then return end
  out[#out + 1] = '<div class="figures">'
  for _, f in ipairs(list) do
    out[#out + 1] = ('<figure id="%s" data-kind="%s">'):format(esc(f.id), esc(f.kind))
    out[#out + 1] = f.svg
    out[#out + 1] = ("<figcaption>%s</figcaption></figure>"):format(esc(f.id))
  end
  out[#out + 1] = "</div>"
end

local function warnings_block(out, doc)
  local seen, list = {}, {}
  for _, r in ipairs(doc.results or {}) do
    for _, w in ipairs(type(r.warnings) == "table" and r.warnings or {}) do
      local key = tostring(r.name) .. ": " .. tostring(w)
      if not seen[key] then seen[key] = true; list[#list + 1] = key end
    end
  end
  if doc.error then list[#list + 1] = "the sweep stopped on an error: " .. tostring(doc.error) end
  if doc.interrupted then list[#list + 1] = "the sweep was interrupted: these are the points measured before" end
  if #list == 0 then return end
  out[#out + 1] = ('<details><summary class="warn">%d warning(s)</summary><ul class="warn">'):format(#list)
  for _, w in ipairs(list) do out[#out + 1] = "<li>" .. esc(w) .. "</li>" end
  out[#out + 1] = "</ul></details>"
end

local function result_section(out, entry, id, plots)
  local doc = entry.doc
  out[#out + 1] = ('<section id="%s"><h2>%s <small>%s · %s</small></h2>'):format(id, esc(entry.scenario),
    esc(figures.device_name(entry)), esc(entry.path))
  figures_block(out, plots)
  if #doc.rows == 0 then out[#out + 1] = "<p>No rows: the sweep measured no point.</p>" end
  out[#out + 1] = "<h3>Context</h3>"
  local ctx = {}
  if type(doc.context) == "table" then
    for _, kv in ipairs(sorted_pairs(doc.context, { "device", "clocks", "sfbench_version", "git_revision",
      "command_line", "time", "hostname", "model" })) do
      ctx[#ctx + 1] = kv
    end
  else
    for _, kv in ipairs(sorted_pairs(doc)) do
      if kv[1] ~= "rows" then ctx[#ctx + 1] = kv end
    end
  end
  if type(doc.params) == "table" then ctx[#ctx + 1] = { "params", doc.params } end
  if doc.complete ~= nil then ctx[#ctx + 1] = { "complete", doc.complete } end
  key_value_table(out, ctx)
  warnings_block(out, doc)
  if #doc.rows > 0 then
    out[#out + 1] = "<h3>Rows</h3>"
    local _, names = figures.points(entry)
    rows_table(out, doc.rows, names)
  end
  for _, key in ipairs(figures.tables(doc)) do
    out[#out + 1] = "<h3>" .. esc(key) .. "</h3>"
    local _, names = figures.points(figures.table_entry(entry, key))
    rows_table(out, doc[key], names)
  end
  out[#out + 1] = "</section>"
end

local function compare_section(out, entry, id, plots)
  local doc = entry.doc
  out[#out + 1] = ('<section id="%s"><h2>compare <small>%s</small></h2>'):format(id, esc(entry.path))
  figures_block(out, plots)
  local ctx = {}
  for _, side in ipairs({ "base", "new" }) do
    if doc[side] ~= nil then ctx[#ctx + 1] = { side, doc[side] } end
  end
  for _, k in ipairs({ "alpha", "threshold", "interval" }) do
    if doc[k] ~= nil then ctx[#ctx + 1] = { k, doc[k] } end
  end
  if #ctx > 0 then
    out[#out + 1] = "<h3>Context</h3>"
    key_value_table(out, ctx)
  end
  out[#out + 1] = "<h3>Points</h3>"
  local rows = {}
  for i, p in ipairs(doc.points) do
    rows[i] = { scenario = p.scenario, point = figures.compare_label(p), base_median = p.base_median,
      new_median = p.new_median, ratio = p.ratio, ci_low = p.ci_low, ci_high = p.ci_high, p = p.p, verdict = p.verdict }
  end
  rows_table(out, rows, { "scenario", "point", "base_median", "new_median", "ratio", "ci_low", "ci_high", "p", "verdict" })
  for _, side in ipairs({ "only_base", "only_new" }) do
    local list = type(doc[side]) == "table" and doc[side] or {}
    if #list > 0 then
      out[#out + 1] = ("<h3>Only in %s</h3><ul>"):format(side == "only_base" and "base" or "new")
      for _, p in ipairs(list) do
        out[#out + 1] = ("<li>%s · %s</li>"):format(esc(tostring(p.scenario)), esc(figures.compare_label(p)))
      end
      out[#out + 1] = "</ul>"
    end
  end
  local aside = type(doc.set_aside) == "table" and doc.set_aside or {}
  if #aside > 0 then
    out[#out + 1] = "<h3>Parameters left out of the match</h3><ul>"
    for _, a in ipairs(aside) do
      out[#out + 1] = ("<li>%s · %s: only %s's rows have it, with the one value %s</li>"):format(esc(tostring(a.scenario)),
        esc(tostring(a.column)), esc(tostring(a.side)), esc(report.encode(a.value)))
    end
    out[#out + 1] = "</ul>"
  end
  -- scenarios compared on neither side's points: none in common on the parameter columns, or the
  -- scenario on one side only
  local unmatched = type(doc.unmatched_scenarios) == "table" and doc.unmatched_scenarios or {}
  if #unmatched > 0 then
    out[#out + 1] = "<h3>Scenarios with no point in common</h3><ul>"
    for _, scn in ipairs(unmatched) do
      local cols = type(scn.parameters) == "table" and table.concat(scn.parameters, ", ") or ""
      out[#out + 1] = ("<li>%s (parameter columns: %s)</li>"):format(esc(tostring(scn.scenario)), esc(cols))
    end
    out[#out + 1] = "</ul>"
  end
  for _, side in ipairs({ "base", "new" }) do
    local list = doc[("only_%s_scenarios"):format(side)]
    if type(list) == "table" and #list > 0 then
      out[#out + 1] = ("<h3>Scenarios only in %s</h3><p>%s</p>"):format(side, esc(table.concat(list, ", ")))
    end
  end
  out[#out + 1] = "</section>"
end

-- The peaks of each device among all the files of the report.
local function device_peaks(entries)
  local measured, devices = {}, {}
  for _, e in ipairs(entries) do
    if e.kind ~= "compare" then
      for _, m in ipairs(figures.measured(e)) do measured[#measured + 1] = m end
      local ctx = e.doc.context
      if type(ctx) == "table" and type(ctx.device) == "table" then devices[figures.device_name(e)] = ctx.device end
    end
  end
  return roofline.peaks(measured, devices)
end

-- Every figure of the entries (result_files.load's), in page order.
function html_report.figures(entries)
  local peaks = device_peaks(entries)
  local all = {}
  for i, e in ipairs(entries) do
    all[i] = e.kind == "compare" and figures.of_compare(e) or figures.of_result(e, peaks)
  end
  return all
end

-- html_report.render(entries) -> the page's text
function html_report.render(entries, generated)
  local plots = html_report.figures(entries)
  local out = { "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
    [[<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">]],
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    "<title>sfbench report</title><style>" .. CSS .. "</style></head><body>",
    "<h1>sfbench report</h1>",
    ('<p class="meta">%d result file(s)%s</p><ul class="inputs">'):format(#entries,
      generated and (", written " .. esc(generated)) or "") }
  for i, e in ipairs(entries) do
    out[#out + 1] = ('<li><a href="#r%d">%s</a> — %s</li>'):format(i, esc(e.scenario), esc(e.path))
  end
  out[#out + 1] = "</ul>"
  for i, e in ipairs(entries) do
    if e.kind == "compare" then compare_section(out, e, "r" .. i, plots[i])
    else result_section(out, e, "r" .. i, plots[i]) end
  end
  out[#out + 1] = "</body></html>\n"
  return table.concat(out, "\n")
end

return html_report
