-- Results out: markdown tables on stdout, JSON documents under sf.output_dir.
local sf = require "sfbench"
local cjson = require "cjson"
local lfs = require "lfs"

local report = {}

-- A private instance: settings here do not leak into other users of cjson.
local json = cjson.new()
json.encode_sparse_array(true)

local function format_number(v)
  if v ~= v then return "nan" end
  if v == math.huge then return "inf" end
  if v == -math.huge then return "-inf" end
  if math.type(v) == "integer" then return tostring(v) end
  local a = math.abs(v)
  if a == 0 then return "0" end
  if a >= 1e6 or a < 1e-3 then return ("%.3e"):format(v) end
  -- whole numbers read back from JSON are floats: show counts and sizes as integers
  if v == math.floor(v) then return ("%d"):format(v) end
  if a >= 100 then return ("%.1f"):format(v) end
  return ("%.3f"):format(v)
end

-- a number as the tables show it: integers whole, 3 decimals below 100, exponents at the extremes
report.format_number = format_number

local function cell(v, fmt)
  if v == nil then return "—" end
  local s
  if type(v) == "number" then
    s = (fmt and v == v and math.abs(v) ~= math.huge) and fmt:format(v) or format_number(v)
  else
    s = tostring(v)
  end
  return (s:gsub("|", "\\|"))
end

-- report.order(columns, rows): every key of the rows, those of `columns` (keys or {key=}
-- tables, as report.table takes) first in their order, then the rest sorted.
function report.order(columns, rows)
  local keys, seen = {}, {}
  local function add(k)
    if not seen[k] then
      seen[k] = true
      keys[#keys + 1] = k
    end
  end
  for _, c in ipairs(columns or {}) do add(type(c) == "table" and c.key or c) end
  local rest = {}
  for _, row in ipairs(rows) do
    for k in pairs(row) do
      if not seen[k] then
        seen[k] = true
        rest[#rest + 1] = k
      end
    end
  end
  table.sort(rest, function(a, b) return tostring(a) < tostring(b) end)
  return table.move(rest, 1, #rest, #keys + 1, keys)
end

-- Columns as {key=, title=, fmt=}; plain strings and a missing list (every key, sorted) allowed.
local function normalize_columns(rows, columns)
  if columns == nil then columns = report.order(nil, rows) end
  local out = {}
  for i, c in ipairs(columns) do
    if type(c) == "string" then c = { key = c } end
    if type(c) ~= "table" or c.key == nil then
      error(("report.table: column %d must be a key or a table with 'key'"):format(i), 3)
    end
    out[i] = { key = c.key, title = c.title or tostring(c.key), fmt = c.fmt }
  end
  return out
end

local function width(s)
  return utf8.len(s) or #s
end

function report.table(rows, columns)
  if type(rows) ~= "table" then
    error("report.table: 'rows' must be a list of tables", 2)
  end
  local cols = normalize_columns(rows, columns)
  local cells, widths, numeric = {}, {}, {}
  for j, c in ipairs(cols) do
    widths[j] = math.max(3, width(c.title))
    for i, row in ipairs(rows) do
      local v = row[c.key]
      -- right-aligned when every present value is a number
      if v ~= nil then numeric[j] = numeric[j] ~= false and type(v) == "number" end
      cells[i] = cells[i] or {}
      cells[i][j] = cell(v, c.fmt)
      widths[j] = math.max(widths[j], width(cells[i][j]))
    end
  end
  local function line(values, right)
    local parts = {}
    for j, v in ipairs(values) do
      local pad = (" "):rep(widths[j] - width(v))
      parts[j] = (right and numeric[j]) and pad .. v or v .. pad
    end
    return "| " .. table.concat(parts, " | ") .. " |"
  end
  local titles, rule = {}, {}
  for j, c in ipairs(cols) do
    titles[j] = c.title
    rule[j] = numeric[j] and ("-"):rep(widths[j] - 1) .. ":" or ("-"):rep(widths[j])
  end
  local lines = { line(titles, true), line(rule, false) }
  for i = 1, #rows do
    lines[#lines + 1] = line(cells[i] or {}, true)
  end
  return table.concat(lines, "\n")
end

-- A CSV field: numbers at the precision of the result files (cjson's 14 digits, so a value
-- read back from a file prints as the file holds it), a table as its JSON text, a missing value
-- empty; quoted when it holds a comma, a quote, a line break or edge spaces.
local function csv_field(v)
  local s
  if v == nil then return "" end
  if math.type(v) == "float" then
    s = v ~= v and "nan" or v == math.huge and "inf" or v == -math.huge and "-inf" or ("%.14g"):format(v)
  elseif type(v) == "table" then
    s = report.encode(v)
  else
    s = tostring(v)
  end
  if s:find('[,"\r\n]') or s:find("^%s") or s:find("%s$") then
    s = '"' .. s:gsub('"', '""') .. '"'
  end
  return s
end

-- report.csv(rows, keys): a header line of the keys, then a line per row.
function report.csv(rows, keys)
  local lines, header = {}, {}
  for j, k in ipairs(keys) do header[j] = csv_field(tostring(k)) end
  lines[1] = table.concat(header, ",")
  for i, row in ipairs(rows) do
    local fields = {}
    for j, k in ipairs(keys) do fields[j] = csv_field(row[k]) end
    lines[i + 1] = table.concat(fields, ",")
  end
  return table.concat(lines, "\n")
end

report.FORMATS = { "md", "csv", "json" }

-- report.format(rows, columns, format): the rows as text. "md" is report.table with the given
-- columns; "csv" and "json" hold every key of every row (in report.order), raw values, for a
-- spreadsheet or a script.
function report.format(rows, columns, format)
  if format == "md" then return report.table(rows, columns) end
  if format == "csv" then return report.csv(rows, report.order(columns, rows)) end
  if format == "json" then return #rows == 0 and "[]" or report.encode(rows) end
  error(("report.format: unknown format '%s' (expected md, csv or json)"):format(tostring(format)), 2)
end

-- The table of a scenario on stdout, in the format of `sfbench --format` (md by default).
function report.print(rows, columns)
  if not sf.quiet then
    io.stdout:write(report.format(rows, columns, sf.format or "md"), "\n")
  end
end

local function hostname()
  local f = io.open("/proc/sys/kernel/hostname", "r")
  if not f then return nil end
  local name = f:read("l")
  f:close()
  return name
end

function report.context(extra)
  if extra ~= nil and type(extra) ~= "table" then
    error("report.context: 'extra' must be a table", 2)
  end
  local ctx = {
    device = sf.device(),
    clocks = sf.clocks(),
    sfbench_version = sf.version,
    git_revision = sf.git_revision,
    command_line = sf.command_line,
    time = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    hostname = hostname(),
  }
  for k, v in pairs(extra or {}) do
    ctx[k] = v
  end
  return ctx
end

-- A copy that JSON can hold: nan/inf become strings, functions and userdata their tostring.
local function sanitize(v, active)
  local kind = type(v)
  if kind == "number" then
    if v ~= v then return "nan" end
    if v == math.huge or v == -math.huge then return v > 0 and "inf" or "-inf" end
    return v
  end
  if kind == "string" or kind == "boolean" then return v end
  if kind ~= "table" then return tostring(v) end
  if active[v] then error("report.save: the document contains a cycle", 0) end
  active[v] = true
  local out = {}
  for k, x in pairs(v) do
    local key = (type(k) == "string" or math.type(k) == "integer") and k or tostring(k)
    out[key] = sanitize(x, active)
  end
  active[v] = nil
  return out
end

-- report.encode(doc): the JSON text of a document, made JSON-safe as report.save does.
function report.encode(doc)
  local encoded, text = pcall(json.encode, sanitize(doc, {}))
  if not encoded then
    error("report: cannot encode the document: " .. tostring(text), 0)
  end
  return text
end

local function make_dirs(dir)
  local path = dir:sub(1, 1) == "/" and "/" or ""
  for part in dir:gmatch("[^/]+") do
    path = path .. part
    if lfs.attributes(path, "mode") ~= "directory" then
      local ok, err = lfs.mkdir(path)
      if not ok and lfs.attributes(path, "mode") ~= "directory" then
        error(("report.save: cannot create directory '%s': %s"):format(path, err), 0)
      end
    end
    path = path .. "/"
  end
end

-- Write to tmp, then rename over path, so a reader never sees half a file.
local function write_atomically(tmp, path, text, who)
  local f, err = io.open(tmp, "w")
  local ok = f ~= nil
  if ok then
    ok, err = f:write(text)
    if ok then ok, err = f:flush() end
    local closed, close_err = f:close()
    if ok and not closed then ok, err = false, close_err end
  end
  if ok then ok, err = os.rename(tmp, path) end
  if not ok then
    os.remove(tmp)
    error(("%s: cannot write '%s': %s"):format(who, path, (tostring(err):gsub("\n", " "))), 0)
  end
end

-- report.write_text(path, text [, check]): replaces the file with text, atomically (a temporary
-- file, then a rename). With check, writes nothing and returns whether the file already holds
-- exactly text. For generated files that are committed (README tables, kernels/wgmma.cuh).
function report.write_text(path, text, check)
  if check then
    local f = io.open(path)
    local old = f and f:read("a")
    if f then f:close() end
    return old == text
  end
  write_atomically(path .. ".tmp", path, text, "report.write_text")
  return true
end

function report.save(name, doc)
  if type(name) ~= "string" or not name:match("^[%w_][%w_.-]*$") then
    error("report.save: 'name' must be a file name of letters, digits, '_', '-' and '.'", 2)
  end
  if type(doc) ~= "table" then
    error("report.save: 'doc' must be a table", 2)
  end
  local clean = {}
  for k, v in pairs(doc) do clean[k] = v end
  clean.scenario = clean.scenario or name
  clean.context = clean.context or report.context()
  local text = report.encode(clean)
  local dir = sf.output_dir or "results"
  make_dirs(dir)
  local base = ("%s-%s"):format(name, os.date("%Y%m%d-%H%M%S"))
  local file, k = base .. ".json", 1
  while lfs.attributes(dir .. "/" .. file) do
    k = k + 1
    file = ("%s-%d.json"):format(base, k)
  end
  local path = dir .. "/" .. file
  write_atomically(dir .. "/." .. file .. ".tmp", path, text .. "\n", "report.save")
  return path
end

return report
