-- Charts as SVG text: two axes (linear, log-2 or log-10, or named categories; values in a base
-- unit shown with an SI prefix), a title, a legend, and layers of lines, markers, boxes,
-- horizontal intervals, reference lines and bands. Every mark is a <path> and the text needs
-- nothing else (no fonts, scripts or links), so it can be inlined in a page or stand alone.
local svg = {}

local FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"
local FONT_SIZE, TITLE_SIZE = 12, 14
-- Okabe–Ito: told apart with colour-blindness too; the markers differ as well
svg.COLORS = { "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000" }
local MARKERS = { "circle", "square", "triangle", "diamond", "down" }
local GRID, FRAME, TEXT, MUTED = "#e4e4e4", "#555555", "#222222", "#666666"

function svg.escape(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
    ["'"] = "&#39;" }))
end
local esc = svg.escape

-- an estimate of a label's width in px (no font metrics here)
local function text_width(s, size)
  return (utf8.len(s) or #s) * (size or FONT_SIZE) * 0.6
end

local function num(v)
  return (("%.2f"):format(v):gsub("%.?0+$", ""))
end

-- A tick label: the fewest digits that still tell the ticks of one axis apart.
local function tick_label(v, step)
  if v == 0 then return "0" end
  local a = math.abs(v)
  if step then
    local digits = math.max(0, -math.floor(math.log(step, 10) + 1e-9))
    return ("%." .. digits .. "f"):format(v)
  end
  if a >= 1 and a < 1e6 and v == math.floor(v) then return ("%d"):format(v) end
  if a >= 1e6 then return (("%.0e"):format(v):gsub("e%+0?", "e")) end
  return ("%.3g"):format(v)
end

local PREFIXES = { [-9] = "n", [-6] = "µ", [-3] = "m", [0] = "", [3] = "k", [6] = "M", [9] = "G", [12] = "T",
  [15] = "P" }

-- The SI prefix that shows the largest magnitude as 1 to 999, and its factor.
function svg.si_prefix(largest)
  if not largest or largest <= 0 then return "", 1 end
  local e = 3 * math.floor(math.log(largest, 10) / 3 + 1e-9)
  e = math.max(-9, math.min(15, e))
  return PREFIXES[e], 10.0 ^ e
end

-- v in a base unit as text with an SI prefix: format_si(7.1e14, "FLOP/s") -> "710 TFLOP/s"
function svg.format_si(v, unit)
  local prefix, factor = svg.si_prefix(math.abs(v))
  return ("%.3g %s%s"):format(v / factor, prefix, unit)
end

-- Linear ticks of 1, 2 or 5 times a power of ten, about n of them over [lo, hi].
function svg.linear_ticks(lo, hi, n)
  if hi <= lo then hi = lo + (lo == 0 and 1 or math.abs(lo) * 0.1) end
  local raw = (hi - lo) / (n or 5)
  local mag = 10.0 ^ math.floor(math.log(raw, 10))
  local step = mag * 10
  for _, m in ipairs({ 1, 2, 5 }) do
    if raw <= m * mag * (1 + 1e-9) then step = m * mag; break end
  end
  local first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
  local ticks = {}
  for i = first, last do ticks[#ticks + 1] = i * step end
  return ticks, step
end

-- Ticks at the powers of base in [lo, hi] (every k-th so that at most 9 remain); with
-- base 10 and under three decades, 2 and 5 times each power too.
function svg.log_ticks(lo, hi, base)
  local e0, e1 = math.floor(math.log(lo, base) + 1e-9), math.ceil(math.log(hi, base) - 1e-9)
  local every = math.max(1, math.ceil((e1 - e0 + 1) / 9))
  local ticks = {}
  for e = e0, e1 do
    if (e - e0) % every == 0 then
      local v = base ^ e
      if v >= lo * (1 - 1e-9) and v <= hi * (1 + 1e-9) then ticks[#ticks + 1] = v end
      if base == 10 and e1 - e0 <= 3 then
        for _, m in ipairs({ 2, 5 }) do
          if m * v >= lo and m * v <= hi then ticks[#ticks + 1] = m * v end
        end
      end
    end
  end
  table.sort(ticks)
  return ticks
end

-- ---- the chart: layers are recorded, then laid out and drawn by render() ----

local Chart = {}
Chart.__index = Chart

local function check_axis(a, name)
  if type(a) ~= "table" then error(("svg.chart: '%s' must be an axis table"):format(name), 3) end
  if a.log ~= nil and a.log ~= 2 and a.log ~= 10 then
    error(("svg.chart: %s.log must be 2 or 10"):format(name), 3)
  end
  if a.categories ~= nil and (type(a.categories) ~= "table" or a.log) then
    error(("svg.chart: %s.categories must be a list of names, on a linear axis"):format(name), 3)
  end
end

-- svg.chart{title=, width=, height=, x=AXIS, y=AXIS}; AXIS = {label=, unit=, si=true (an SI
-- prefix on unit), log=2|10, categories={names} (positions 1..n), min=, max=, zero=true (the
-- range includes 0)}.
function svg.chart(opts)
  if type(opts) ~= "table" then error("svg.chart: expected a table of options", 2) end
  check_axis(opts.x, "x")
  check_axis(opts.y, "y")
  return setmetatable({ title = opts.title, width = opts.width or 560, height = opts.height, x = opts.x,
    y = opts.y, layers = {}, legend = {}, series = 0 }, Chart)
end

-- The style of the next series (or of series opts.index): its colour and marker, and a legend
-- entry when labelled.
function Chart:style(label, opts)
  opts = opts or {}
  self.series = self.series + 1
  local k = opts.index or self.series
  local style = { color = opts.color or svg.COLORS[(k - 1) % #svg.COLORS + 1],
    marker = opts.marker == nil and MARKERS[(k - 1) % #MARKERS + 1] or opts.marker, dash = opts.dash }
  if label then self.legend[#self.legend + 1] = { label = label, style = style, kind = opts.kind or "line" } end
  return style
end

local function add(self, layer)
  self.layers[#self.layers + 1] = layer
  return self
end

-- chart:line(points, {label=, color=, marker=false|name, dash=true}): points {{x, y}, ...}
function Chart:line(points, opts)
  opts = opts or {}
  return add(self, { kind = "line", points = points, style = self:style(opts.label, opts), joined = true })
end

-- chart:markers(points, opts): markers alone
function Chart:markers(points, opts)
  opts = opts or {}
  opts.kind = "markers"
  return add(self, { kind = "line", points = points, style = self:style(opts.label, opts), joined = false })
end

-- chart:boxes(list, {label=, color=, width=}): list of {x= (a category), offset= (-0.5..0.5 of
-- a category), lo=, q1=, median=, q3=, hi=, outliers={values}} drawn as box-and-whisker marks,
-- across the categories of whichever axis has them (y: horizontal boxes)
function Chart:boxes(list, opts)
  opts = opts or {}
  opts.kind = "box"
  return add(self, { kind = "boxes", boxes = list, width = opts.width or 0.2, style = self:style(opts.label, opts),
    category_axis = self.y.categories and "y" or "x" })
end

-- chart:intervals(list, {label=, color=}): list of {y=, lo=, hi=, mid=}, horizontal whiskers with
-- a marker at mid (a forest plot)
function Chart:intervals(list, opts)
  opts = opts or {}
  opts.kind = "interval"
  return add(self, { kind = "intervals", items = list, style = self:style(opts.label, opts) })
end

-- chart:rule("x"|"y", value, {label=, color=, dash=true, at="start"}): a reference line across
-- the plot, its label at the end (right or top) or at the start
function Chart:rule(axis, value, opts)
  opts = opts or {}
  return add(self, { kind = "rule", axis = axis, value = value, label = opts.label, at = opts.at,
    style = { color = opts.color or MUTED, dash = opts.dash } })
end

-- chart:band("x"|"y", lo, hi, {label=, color=}): a shaded span across the plot
function Chart:band(axis, lo, hi, opts)
  opts = opts or {}
  local style = { color = opts.color or "#9e9e9e" }
  if opts.label then self.legend[#self.legend + 1] = { label = opts.label, style = style, kind = "band" } end
  return add(self, { kind = "band", axis = axis, lo = lo, hi = hi, style = style })
end

-- the values each layer puts on an axis ("x" or "y")
local function layer_values(layer, axis, out)
  if layer.kind == "line" then
    for _, p in ipairs(layer.points) do out[#out + 1] = p[axis == "x" and 1 or 2] end
  elseif layer.kind == "boxes" then
    for _, b in ipairs(layer.boxes) do
      if axis == layer.category_axis then out[#out + 1] = b.x
      else
        out[#out + 1] = b.lo; out[#out + 1] = b.hi
        for _, o in ipairs(b.outliers or {}) do out[#out + 1] = o end
      end
    end
  elseif layer.kind == "intervals" then
    for _, it in ipairs(layer.items) do
      if axis == "x" then out[#out + 1] = it.lo; out[#out + 1] = it.hi else out[#out + 1] = it.y end
    end
  elseif layer.axis == axis then
    if layer.kind == "rule" then out[#out + 1] = layer.value else out[#out + 1] = layer.lo; out[#out + 1] = layer.hi end
  end
end

-- An axis laid out: the scale factor of its unit, its domain, ticks and a value -> px function.
local function scale(spec, values, a, b)
  local s = { spec = spec, prefix = "", factor = 1 }
  if spec.categories then
    s.lo, s.hi = 0.5, #spec.categories + 0.5
    s.ticks = {}
    for i = 1, #spec.categories do s.ticks[i] = i end
    s.label_of = function(v) return tostring(spec.categories[v]) end
  else
    local lo, hi, largest = math.huge, -math.huge, 0
    for _, v in ipairs(values) do
      if v == v and math.abs(v) ~= math.huge and (not spec.log or v > 0) then
        lo, hi, largest = math.min(lo, v), math.max(hi, v), math.max(largest, math.abs(v))
      end
    end
    if spec.min then lo = spec.min end
    if spec.max then hi = spec.max end
    if lo > hi then lo, hi = spec.log and 1 or 0, spec.log and 10 or 1 end
    if spec.si then s.prefix, s.factor = svg.si_prefix(math.max(largest, math.abs(lo), math.abs(hi))) end
    lo, hi = lo / s.factor, hi / s.factor
    if spec.log then
      if hi / lo < spec.log then lo, hi = lo / math.sqrt(spec.log), hi * math.sqrt(spec.log) end
      -- a margin of a fifth of a step each side, so end markers sit inside the frame
      local pad = spec.log ^ 0.2
      s.lo, s.hi = spec.min and lo or lo / pad, spec.max and hi or hi * pad
      s.ticks = svg.log_ticks(s.lo, s.hi, spec.log)
      s.label_of = function(v) return tick_label(v) end
    else
      if spec.zero then lo, hi = math.min(lo, 0), math.max(hi, 0) end
      local ticks, step = svg.linear_ticks(lo, hi, 5)
      s.lo, s.hi = spec.min and lo or ticks[1], spec.max and hi or ticks[#ticks]
      s.ticks = {}
      for _, t in ipairs(ticks) do
        if t >= s.lo - step * 1e-6 and t <= s.hi + step * 1e-6 then s.ticks[#s.ticks + 1] = t end
      end
      s.label_of = function(v) return tick_label(v, step) end
    end
  end
  local f = spec.log and function(v) return math.log(v, spec.log) end or function(v) return v end
  local flo, fhi = f(s.lo), f(s.hi)
  s.pos = function(v)
    v = v / s.factor
    if spec.log and v <= 0 then v = s.lo end
    return a + (f(v) - flo) / (fhi - flo) * (b - a)
  end
  s.tick_pos = function(t) return a + (f(t) - flo) / (fhi - flo) * (b - a) end
  local unit = spec.unit and (s.prefix .. spec.unit) or nil
  s.title = (spec.label or "") .. (unit and unit ~= "" and (" (" .. unit .. ")") or "")
  if spec.log then s.title = s.title .. (", log" .. spec.log .. " scale") end
  return s
end

local function marker_path(kind, x, y, r)
  if kind == "circle" then
    return ("M%s %sa%s %s 0 1 0 %s 0a%s %s 0 1 0 %s 0"):format(num(x - r), num(y), num(r), num(r), num(2 * r),
      num(r), num(r), num(-2 * r))
  elseif kind == "square" then
    r = r * 0.9
    return ("M%s %sh%sv%sh%sz"):format(num(x - r), num(y - r), num(2 * r), num(2 * r), num(-2 * r))
  elseif kind == "triangle" then
    return ("M%s %sL%s %sL%s %sz"):format(num(x), num(y - r * 1.15), num(x + r), num(y + r * 0.85), num(x - r),
      num(y + r * 0.85))
  elseif kind == "down" then
    return ("M%s %sL%s %sL%s %sz"):format(num(x), num(y + r * 1.15), num(x + r), num(y - r * 0.85), num(x - r),
      num(y - r * 0.85))
  end
  return ("M%s %sL%s %sL%s %sL%s %sz"):format(num(x), num(y - r * 1.2), num(x + r), num(y), num(x), num(y + r * 1.2),
    num(x - r), num(y))
end

local function path(out, d, attrs)
  if d ~= "" then out[#out + 1] = ('<path d="%s" %s/>'):format(d, attrs) end
end

local function text(out, x, y, s, attrs)
  out[#out + 1] = ('<text x="%s" y="%s" %s>%s</text>'):format(num(x), num(y), attrs or "", esc(s))
end

local function dash_attr(style)
  return style.dash and ' stroke-dasharray="5 3"' or ""
end

-- A title's lines: broken after " · " or a space where it is wider than width.
local function wrap(s, width)
  local lines, line = {}, ""
  for word, sep in s:gmatch("(%S+)(%s*)") do
    local candidate = line .. word
    if line ~= "" and text_width(candidate, TITLE_SIZE) > width then
      lines[#lines + 1] = line:gsub("[%s·]+$", "")
      candidate = word
    end
    line = candidate .. sep
  end
  if line ~= "" then lines[#lines + 1] = line:gsub("%s+$", "") end
  return lines
end

-- Legend rows: entries placed left to right, wrapped to the width.
local function legend_layout(entries, width)
  local rows, x, placed = 0, nil, {}
  for _, e in ipairs(entries) do
    local w = 26 + text_width(e.label) + 14
    if not x or x + w > width - 12 then rows, x = rows + 1, 12 end
    placed[#placed + 1] = { entry = e, x = x, row = rows }
    x = x + w
  end
  return placed, rows
end

local function draw_swatch(out, e, x, y)
  local st = e.style
  if e.kind == "band" then
    path(out, ("M%s %sh18v10h-18z"):format(num(x), num(y - 5)), ('fill="%s" fill-opacity="0.25"'):format(st.color))
  elseif e.kind == "box" then
    path(out, ("M%s %sh18v10h-18zM%s %sh18"):format(num(x), num(y - 5), num(x), num(y)),
      ('fill="%s" fill-opacity="0.25" stroke="%s"'):format(st.color, st.color))
  else
    if e.kind ~= "markers" then
      path(out, ("M%s %sh20"):format(num(x - 1), num(y)), ('stroke="%s" stroke-width="2"%s'):format(st.color, dash_attr(st)))
    end
    if st.marker then path(out, marker_path(st.marker, x + 9, y, 3.5), ('fill="%s"'):format(st.color)) end
  end
end

function Chart:render()
  local W = self.width
  local xs, ys = {}, {}
  for _, layer in ipairs(self.layers) do
    layer_values(layer, "x", xs)
    layer_values(layer, "y", ys)
  end
  -- margins: the title and legend above, the tick labels and axis titles left and below
  local placed, legend_rows = legend_layout(self.legend, W)
  local title_lines = self.title and wrap(self.title, W - 24) or {}
  local title_h = #title_lines * 18 + (#title_lines > 0 and 4 or 0)
  local top = 10 + title_h + legend_rows * 18 + 8
  local left
  if self.y.categories then
    left = 12
    for _, c in ipairs(self.y.categories) do left = math.max(left, text_width(tostring(c)) + 18) end
  else
    left = 64
  end
  -- long category names widen the chart rather than squeeze the plot
  W = math.ceil(math.max(W, left + 400))
  local x0, x1 = left, W - 18
  -- category names wider than their slot are written at a slant
  local bottom, slant = 46, false
  if self.x.categories then
    local widest = 0
    for _, c in ipairs(self.x.categories) do widest = math.max(widest, text_width(tostring(c))) end
    if widest > (x1 - x0) / #self.x.categories - 6 then slant, bottom = true, 40 + widest * 0.5 end
  end
  local H = self.height or (self.y.categories and top + bottom + math.max(90, 22 * #self.y.categories) or 360)
  if slant and self.height then H = H + bottom - 46 end
  H = math.ceil(H)
  local y0, y1 = H - bottom, top
  -- categories on y read top down
  local sx = scale(self.x, xs, x0, x1)
  local sy = self.y.categories and scale(self.y, ys, y1, y0) or scale(self.y, ys, y0, y1)

  local out = {}
  out[#out + 1] = ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
    .. 'font-family="%s" font-size="%d" role="img">'):format(W, H, W, H, FONT, FONT_SIZE)
  if self.title then out[#out + 1] = "<title>" .. esc(self.title) .. "</title>" end
  path(out, ("M0 0H%dV%dH0z"):format(W, H), 'fill="#ffffff"')
  for i, line in ipairs(title_lines) do
    text(out, 12, 6 + 18 * i, line, ('font-size="%d" font-weight="600" fill="%s"'):format(TITLE_SIZE, TEXT))
  end
  for _, p in ipairs(placed) do
    local y = 10 + title_h + (p.row - 1) * 18 + 9
    draw_swatch(out, p.entry, p.x, y)
    text(out, p.x + 24, y + 4, p.entry.label, ('fill="%s"'):format(TEXT))
  end

  -- grid and ticks
  local grid, ticks = {}, {}
  for _, t in ipairs(sx.ticks) do
    local px = sx.tick_pos(t)
    if not self.x.categories then grid[#grid + 1] = ("M%s %sV%s"):format(num(px), num(y0), num(y1)) end
    ticks[#ticks + 1] = ("M%s %sv5"):format(num(px), num(y0))
    if slant then
      text(out, 0, 0, sx.label_of(t), ('text-anchor="end" fill="%s" transform="translate(%s %s) rotate(-30)"')
        :format(TEXT, num(px + 4), num(y0 + 14)))
    else
      text(out, px, y0 + 18, sx.label_of(t), ('text-anchor="middle" fill="%s"'):format(TEXT))
    end
  end
  for _, t in ipairs(sy.ticks) do
    local py = sy.tick_pos(t)
    if not self.y.categories then grid[#grid + 1] = ("M%s %sH%s"):format(num(x0), num(py), num(x1)) end
    ticks[#ticks + 1] = ("M%s %sh-5"):format(num(x0), num(py))
    text(out, x0 - 8, py + 4, sy.label_of(t), ('text-anchor="end" fill="%s"'):format(TEXT))
  end
  path(out, table.concat(grid), ('stroke="%s" fill="none"'):format(GRID))
  path(out, table.concat(ticks), ('stroke="%s" fill="none"'):format(FRAME))
  text(out, (x0 + x1) / 2, H - 10, sx.title, ('text-anchor="middle" fill="%s"'):format(TEXT))
  if not self.y.categories then
    text(out, 0, 0, sy.title, ('text-anchor="middle" fill="%s" transform="translate(16 %s) rotate(-90)"')
      :format(TEXT, num((y0 + y1) / 2)))
  end

  for _, layer in ipairs(self.layers) do
    local st = layer.style
    if layer.kind == "band" then
      local d
      if layer.axis == "x" then
        local a, b = sx.pos(layer.lo), sx.pos(layer.hi)
        d = ("M%s %sH%sV%sH%sz"):format(num(a), num(y0), num(b), num(y1), num(a))
      else
        local a, b = sy.pos(layer.lo), sy.pos(layer.hi)
        d = ("M%s %sV%sH%sV%sz"):format(num(x0), num(a), num(b), num(x1), num(a))
      end
      path(out, d, ('fill="%s" fill-opacity="0.18"'):format(st.color))
    elseif layer.kind == "rule" then
      local d, lx, ly, anchor
      if layer.axis == "x" then
        local px = sx.pos(layer.value)
        d, lx, ly, anchor = ("M%s %sV%s"):format(num(px), num(y0), num(y1)), px + 4,
          layer.at == "start" and y0 - 6 or y1 + 12, "start"
        -- near the right edge, the label goes left of the line
        if layer.label and px + 4 + text_width(layer.label) > W - 4 then lx, anchor = px - 4, "end" end
      else
        local py = sy.pos(layer.value)
        d, ly = ("M%s %sH%s"):format(num(x0), num(py), num(x1)), py - 5
        if layer.at == "start" then lx, anchor = x0 + 4, "start" else lx, anchor = x1 - 4, "end" end
      end
      path(out, d, ('class="rule" stroke="%s" stroke-width="1.5" fill="none"%s'):format(st.color, dash_attr(st)))
      if layer.label then text(out, lx, ly, layer.label, ('text-anchor="%s" fill="%s"'):format(anchor, st.color)) end
    elseif layer.kind == "line" then
      local d, marks = {}, {}
      for i, p in ipairs(layer.points) do
        local px, py = sx.pos(p[1]), sy.pos(p[2])
        d[#d + 1] = (i == 1 and "M" or "L") .. num(px) .. " " .. num(py)
        if st.marker then marks[#marks + 1] = marker_path(st.marker, px, py, 3.5) end
      end
      if layer.joined and #d > 1 then
        path(out, table.concat(d), ('class="series" stroke="%s" stroke-width="2" fill="none" stroke-linejoin="round"%s')
          :format(st.color, dash_attr(st)))
      end
      path(out, table.concat(marks), ('class="series" fill="%s"'):format(st.color))
    elseif layer.kind == "boxes" then
      -- c: along the category axis, v: along the value axis; xy(c, v) is the point in px
      local horizontal = layer.category_axis == "y"
      local sc, sv = horizontal and sy or sx, horizontal and sx or sy
      local function xy(c, v)
        if horizontal then return num(v), num(c) end
        return num(c), num(v)
      end
      local function seg(c0, v0, c1, v1)
        local ax, ay = xy(c0, v0)
        local bx, by = xy(c1, v1)
        return ("M%s %sL%s %s"):format(ax, ay, bx, by)
      end
      local frame, whiskers, dots = {}, {}, {}
      local seen = {}
      local slot = sc.pos(2) - sc.pos(1)
      for _, b in ipairs(layer.boxes) do
        local c = sc.pos(b.x) + (b.offset or 0) * slot
        local hw = layer.width * slot / 2
        local q1, q3, med, lo, hi = sv.pos(b.q1), sv.pos(b.q3), sv.pos(b.median), sv.pos(b.lo), sv.pos(b.hi)
        local ax, ay = xy(c - hw, q1)
        local bx, by = xy(c + hw, q3)
        frame[#frame + 1] = ("M%s %sH%sV%sH%sz"):format(ax, ay, bx, by, ax)
        whiskers[#whiskers + 1] = seg(c, q1, c, lo) .. seg(c, q3, c, hi) .. seg(c - hw / 2, lo, c + hw / 2, lo)
          .. seg(c - hw / 2, hi, c + hw / 2, hi) .. seg(c - hw, med, c + hw, med)
        for _, o in ipairs(b.outliers or {}) do
          -- one dot a pixel: thousands of samples stay a small path
          local v = sv.pos(o)
          local key = ("%d %d"):format(math.floor(c + 0.5), math.floor(v + 0.5))
          if not seen[key] then
            seen[key] = true
            local x, y = xy(c, v)
            dots[#dots + 1] = marker_path("circle", tonumber(x), tonumber(y), 1.6)
          end
        end
      end
      path(out, table.concat(frame), ('class="series" fill="%s" fill-opacity="0.25" stroke="%s" stroke-width="1.2"')
        :format(st.color, st.color))
      path(out, table.concat(whiskers), ('class="series" fill="none" stroke="%s" stroke-width="1.5"'):format(st.color))
      path(out, table.concat(dots), ('fill="%s" fill-opacity="0.6"'):format(st.color))
    elseif layer.kind == "intervals" then
      local lines, marks = {}, {}
      for _, it in ipairs(layer.items) do
        local py, a, b = sy.pos(it.y), sx.pos(it.lo), sx.pos(it.hi)
        lines[#lines + 1] = ("M%s %sH%sM%s %sv8M%s %sv8"):format(num(a), num(py), num(b), num(a), num(py - 4), num(b),
          num(py - 4))
        marks[#marks + 1] = marker_path(st.marker or "circle", sx.pos(it.mid), py, 4)
      end
      path(out, table.concat(lines), ('class="series" stroke="%s" stroke-width="1.8" fill="none"'):format(st.color))
      path(out, table.concat(marks), ('class="series" fill="%s"'):format(st.color))
    end
  end
  path(out, ("M%s %sH%sV%sH%sz"):format(num(x0), num(y1), num(x1), num(y0), num(x0)),
    ('class="frame" stroke="%s" fill="none"'):format(FRAME))
  out[#out + 1] = "</svg>"
  return table.concat(out, "\n")
end

return svg
