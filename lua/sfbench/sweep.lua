-- Parameter sweeps: the points to measure, a progress line, and results saved even on Ctrl-C.
local sf = require "sfbench"
local report = require "sfbench.report"
local profile = require "sfbench.profile"
local dist = require "sfbench.dist"

local sweep = {}

local BAR_WIDTH = 20

-- Axis order of the points sweep.product made, so progress labels follow the nesting order.
local axis_order = setmetatable({}, { __mode = "k" })

function sweep.product(axes, order)
  if type(axes) ~= "table" then
    error("sweep.product: 'axes' must be a table of axis name -> list of values", 2)
  end
  if order == nil then
    order = {}
    for name in pairs(axes) do order[#order + 1] = name end
    table.sort(order)
  elseif type(order) ~= "table" then
    error("sweep.product: 'order' must be a list of axis names", 2)
  end
  local listed = {}
  for _, name in ipairs(order) do
    if type(axes[name]) ~= "table" then
      error(("sweep.product: axis '%s' must be a list of values"):format(tostring(name)), 2)
    end
    if listed[name] then
      error(("sweep.product: axis '%s' appears twice in 'order'"):format(tostring(name)), 2)
    end
    listed[name] = true
  end
  for name in pairs(axes) do
    if not listed[name] then
      error(("sweep.product: axis '%s' is missing from 'order'"):format(tostring(name)), 2)
    end
  end
  local points = { {} }
  for _, name in ipairs(order) do
    local extended = {}
    for _, point in ipairs(points) do
      for _, value in ipairs(axes[name]) do
        local p = { [name] = value }
        for k, v in pairs(point) do p[k] = v end
        extended[#extended + 1] = p
      end
    end
    points = extended
  end
  local names = table.move(order, 1, #order, 1, {})
  for _, p in ipairs(points) do axis_order[p] = names end
  return points
end

local function label(point)
  local names = axis_order[point]
  if not names then
    names = {}
    for k in pairs(point) do names[#names + 1] = tostring(k) end
    table.sort(names)
  end
  local parts = {}
  for i, k in ipairs(names) do
    parts[i] = ("%s=%s"):format(k, tostring(point[k]))
  end
  return table.concat(parts, " ")
end

-- Stderr output of one sweep: a redrawn bar on a terminal, a line a point otherwise.
local function progress_writer()
  if sf.quiet then
    local nothing = function() end
    return { point = nothing, warning = nothing, note = nothing, finish = nothing }
  end
  local tty = sf.isatty(2)
  local err = io.stderr
  return {
    point = function(i, n, point)
      if tty then
        local filled = BAR_WIDTH * i // n
        err:write("\r\27[K[", ("#"):rep(filled), ("."):rep(BAR_WIDTH - filled), "] ",
          ("%d/%d %s"):format(i, n, label(point)))
      else
        err:write(("[%d/%d] %s\n"):format(i, n, label(point)))
      end
    end,
    warning = function(name, message)
      err:write(tty and "\r\27[K" or "", "sfbench: warning: ", name and name .. ": " or "",
        message, "\n")
    end,
    note = function(message)
      err:write("sfbench: ", message, "\n")
    end,
    finish = function()
      if tty then err:write("\n") end
    end,
  }
end

function sweep.run(opts)
  if type(opts) ~= "table" then
    error("sweep.run: expected a table of options", 2)
  end
  local name, points, measure = opts.name or sf.script_name, opts.points, opts.measure
  if type(name) ~= "string" then error("sweep.run: 'name' must be a string", 2) end
  if type(points) ~= "table" then error("sweep.run: 'points' must be a list of points", 2) end
  if type(measure) ~= "function" then error("sweep.run: 'measure' must be a function", 2) end
  if opts.distributed ~= nil and type(opts.distributed) ~= "boolean" then
    error("sweep.run: 'distributed' must be a boolean", 2)
  end
  -- which columns are the point's parameters and which measurements, where the tools' guess
  -- (sfbench.result_files.columns) would be wrong
  local kinds = opts.column_kinds
  local kinds_ok = kinds == nil or type(kinds) == "table"
  for k, kind in pairs(kinds_ok and kinds or {}) do
    kinds_ok = kinds_ok and type(k) == "string" and (kind == "parameter" or kind == "measurement")
  end
  if not kinds_ok then
    error("sweep.run: 'column_kinds' must map column names to \"parameter\" or \"measurement\"", 2)
  end
  local context = report.context(opts.context_extra)
  local out = progress_writer()
  local world, rank = sf.dist.world(), sf.dist.rank()
  -- several ranks: a collective scenario (distributed) runs every point on every rank; any other
  -- sweep shares its points out, point i to rank (i - 1) % world, and the ranks merge them after
  local distributed, shard = world > 1 and opts.distributed, world > 1 and not opts.distributed
  -- described before anything runs: a rank that fails inside a collective point must not leave
  -- the others waiting in an exchange
  local ranks = distributed and dist.gather(dist.describe()) or nil
  -- measure(point) returns a row, a list of rows (the cases of one point, e.g. each impl) or nil
  -- to skip the point, and optionally one bench result or a list
  local records = {}
  local function warn(res)
    for _, r in ipairs(res == nil and {} or res.samples and { res } or res) do
      for _, w in ipairs(r.warnings or {}) do out.warning(r.name, w) end
    end
  end
  dist.apart = shard
  local ok, err = pcall(function()
    -- NVTX ranges: the sweep's name, and inside it each point's label (ncu: "name/label/")
    local _ <close> = profile.range(name)
    for i, point in ipairs(points) do
      if not shard or (i - 1) % world == rank then
        out.point(i, #points, point)
        local row, res
        do
          local _ <close> = profile.range(label(point))
          row, res = measure(point)
        end
        local list = {}
        if row ~= nil then
          if type(row) ~= "table" then
            error(("sweep.run: measure returned a %s, not a row table"):format(type(row)), 0)
          end
          for _, r in ipairs(row[1] ~= nil and row or { row }) do
            if type(r) ~= "table" then
              error(("sweep.run: measure returned a list holding a %s, not a row table"):format(type(r)), 0)
            end
            list[#list + 1] = r
          end
        end
        warn(res)
        records[#records + 1] = { i = i, rank = rank, rows = list, res = res }
      end
    end
  end)
  dist.apart = false
  if shard then
    -- an error passes as its message, and whether it was a usage error ({usage = ...}: exit 2)
    local usage = not ok and type(err) == "table" and err.usage or nil
    local mine = { records = records, ok = ok, err = not ok and (usage or tostring(err)) or nil, usage = usage ~= nil,
      device = dist.describe() }
    records, ranks = {}, {}
    for r, got in ipairs(dist.gather(mine)) do
      ranks[r] = got.device
      table.move(got.records, 1, #got.records, #records + 1, records)
      if not got.ok and ok then
        ok, err = false, r - 1 ~= rank and ("rank %d: %s"):format(r - 1, got.err) or got.err
        if got.usage then err = { usage = err } end
      end
    end
    table.sort(records, function(a, b) return a.i < b.i end)
    for _, rec in ipairs(records) do
      if rec.rank ~= rank then warn(rec.res) end
    end
  end
  -- the rows in point order; where a point has as many results as rows, the i-th result is the
  -- i-th row's: its `row` is that row's index in the document's rows, so a tool finds each
  -- row's kept samples
  local rows, results, row_ranks = {}, {}, {}
  for _, rec in ipairs(records) do
    local first_row = #rows + 1
    for _, r in ipairs(rec.rows) do
      rows[#rows + 1] = r
      row_ranks[#rows] = rec.rank
    end
    if rec.res ~= nil then
      local list = rec.res.samples and { rec.res } or rec.res
      for i, r in ipairs(list) do
        r.point = r.point or points[rec.i]
        if #list == #rec.rows then r.row = first_row + i - 1 end
        r.rank = world > 1 and rec.rank or nil
        results[#results + 1] = r
      end
    end
  end
  out.finish()
  local shown = {}
  for i, c in ipairs(opts.columns or {}) do shown[i] = type(c) == "table" and c.key or c end
  local doc = {
    scenario = name,
    context = context,
    params = opts.params,
    columns = #shown > 0 and shown or nil,
    column_kinds = opts.column_kinds,
    rows = rows,
    results = #results > 0 and results or nil,
    ranks = ranks,
    row_ranks = shard and row_ranks or nil,
    complete = ok,
    interrupted = false,
  }
  if rank ~= 0 then   -- rank 0 saves and prints
    if ok then return { rows = rows } end
    -- a shared-out sweep's ranks leave only once rank 0 has saved (a failed rank's exit ends
    -- the others)
    if shard then sf.dist.barrier() end
    error(err, 0)
  end
  if ok then
    local path = report.save(name, doc)
    report.print(rows, opts.columns)
    out.note("results saved to " .. path)
    return { rows = rows, path = path }
  end
  local message = type(err) == "table" and err.usage or tostring(err)
  doc.interrupted = message:find("interrupted", 1, true) ~= nil
  if not doc.interrupted then doc.error = message end
  -- A failed save must not hide the error that stopped the sweep.
  local saved, path = pcall(report.save, name, doc)
  if shard then sf.dist.barrier() end
  if doc.interrupted then report.print(rows, opts.columns) end
  out.note((saved and "partial results saved to " or "partial results not saved: ") .. tostring(path))
  error(err, 0)
end

return sweep
