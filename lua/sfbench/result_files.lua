-- The result files a tool is given: each file is read and checked to be a document sfbench
-- wrote (a sweep's result, a `compare --output` document, or the rows of the PyTorch
-- reference script); a folder gives the newest result of each scenario in it, or every one.
-- A problem is a usage error (exit 2) of one line naming the file. Then the views of a result
-- that the tools share: which columns are a point's parameters and which its measurements,
-- each row's kept samples, point keys, and one row per sample.
local cjson = require "cjson"
local lfs = require "lfs"
local params = require "sfbench.params"
local report = require "sfbench.report"

local result_files = {}

local json = cjson.new()

local function problem(path, msg)
  params.usage_error(("%s: %s"):format(path, msg))
end

-- result_files.is_list_of_tables(v): true, or false and the index of the first element that is not a table
local function is_list_of_tables(v)
  if type(v) ~= "table" then return false end
  for i, x in ipairs(v) do
    if type(x) ~= "table" then return false, i end
  end
  return next(v) == nil or v[1] ~= nil
end
result_files.is_list_of_tables = is_list_of_tables

-- What a decoded document is ("result", "compare" or "torch"), or nil and why not.
local function kind_of(doc)
  if type(doc) ~= "table" then return nil, "not an sfbench result (not a JSON object)" end
  if doc.points ~= nil then
    local ok, bad = is_list_of_tables(doc.points)
    if not ok then return nil, ("not an sfbench compare document (points[%s] is not an object)"):format(bad or 1) end
    for i, p in ipairs(doc.points) do
      for _, k in ipairs({ "ratio", "ci_low", "ci_high" }) do
        if type(p[k]) ~= "number" then
          return nil, ("not an sfbench compare document (points[%d].%s is not a number)"):format(i, k)
        end
      end
    end
    return "compare"
  end
  if doc.rows == nil then return nil, "not an sfbench result (no rows)" end
  local ok, bad = is_list_of_tables(doc.rows)
  if not ok then return nil, ("not an sfbench result (rows[%s] is not an object)"):format(bad or 1) end
  if type(doc.scenario) == "string" and type(doc.context) == "table" then
    if doc.results ~= nil then
      local rok, rbad = is_list_of_tables(doc.results)
      if not rok then return nil, ("not an sfbench result (results[%s] is not an object)"):format(rbad or 1) end
      for i, r in ipairs(doc.results) do
        if r.samples ~= nil and type(r.samples) ~= "table" then
          return nil, ("not an sfbench result (results[%d].samples is not a list)"):format(i)
        end
      end
    end
    return "result"
  end
  if type(doc.torch) == "string" then return "torch" end
  return nil, "not an sfbench result (no scenario and context)"
end

local function stem(path)
  return (path:match("([^/]+)$"):gsub("%.json$", ""))
end

-- One file: {path, name (file name without .json), kind, scenario, time, doc}.
function result_files.read(path)
  local f, err = io.open(path, "rb")
  if not f then problem(path, "cannot open: " .. tostring(err):gsub("^[^:]*: ", "")) end
  local text = f:read("a")
  f:close()
  if not text then problem(path, "cannot read") end
  if text:match("^%s*$") then problem(path, "empty file, not an sfbench result") end
  local ok, doc = pcall(json.decode, text)
  if not ok then
    local msg = tostring(doc)
    -- the end of the text, or a token (a number, true, false, null) or a string's escape ("\/",
    -- "\u00b5") cut short by it
    local at = tonumber(msg:match("at character (%d+)"))
    local rest = at and msg:find("invalid", 1, true) and text:sub(at)
    local cut_token = rest and (rest:match("^[%w%.%+%-]+$") or rest:match("^\\u?%x*$"))
    if msg:find("T_END", 1, true) or msg:find("unexpected end of string", 1, true) or cut_token then
      problem(path, "truncated JSON (the text ends inside the document)")
    end
    problem(path, "not valid JSON (" .. msg .. ")")
  end
  local kind, why = kind_of(doc)
  if not kind then problem(path, why) end
  local name = stem(path)
  local scenario = doc.scenario or (kind == "compare" and "compare") or name:match("^(.-)%-%d+%-%d+") or name
  local time = type(doc.context) == "table" and doc.context.time or nil
  return { path = path, name = name, kind = kind, scenario = scenario, time = type(time) == "string" and time or name,
    doc = doc }
end

-- The *.json files of a folder (not hidden ones: a sweep's half-written files start with '.').
local function json_files(dir)
  local files = {}
  for entry in lfs.dir(dir) do
    local path = dir:gsub("/+$", "") .. "/" .. entry
    if entry:match("^[^.].*%.json$") and lfs.attributes(path, "mode") == "file" then files[#files + 1] = path end
  end
  table.sort(files)
  return files
end

-- result_files.load(paths [, {all = true}]) -> list of read() entries, in the order given; a
-- folder's in order of scenario then time.
function result_files.load(paths, opts)
  local all = opts and opts.all
  local out = {}
  for _, path in ipairs(paths) do
    local mode = lfs.attributes(path, "mode")
    if mode == nil then problem(path, "no such file or folder") end
    if mode == "directory" then
      local files = json_files(path)
      if #files == 0 then problem(path, "a folder with no results (no *.json file in it)") end
      local entries, newest = {}, {}
      for _, file in ipairs(files) do
        local e = result_files.read(file)
        local best = newest[e.scenario]
        if all then entries[#entries + 1] = e
        elseif not best or e.time > best.time then newest[e.scenario] = e end
      end
      if not all then
        for _, e in pairs(newest) do entries[#entries + 1] = e end
      end
      table.sort(entries, function(a, b)
        if a.scenario ~= b.scenario then return a.scenario < b.scenario end
        return a.time < b.time
      end)
      for _, e in ipairs(entries) do out[#out + 1] = e end
    else
      out[#out + 1] = result_files.read(path)
    end
  end
  return out
end

-- ---- views of a result's rows ----

-- Row columns that are measurements whatever their values (what bench.run and the sweeps report).
local MEASUREMENTS = {}
for _, k in ipairs({ "ms", "us", "median_us", "us_per_launch", "min", "max", "ratio", "tflops", "gbs", "tbs",
  "noise", "stop", "samples", "speedup", "feed", "stages", "stage_ms", "batch" }) do
  MEASUREMENTS[k] = true
end

-- result_files.is_measurement(name): a column of that name is a measurement, not a parameter.
function result_files.is_measurement(k)
  return MEASUREMENTS[k] or k:match("_mib$") or k:match("_ms$") or k:match("_us$") or k:match("_pct$") or false
end

-- result_files.columns(docs [, chosen]) -> parameters, measurements: the column names of the
-- rows of all docs (one scenario's), each list in the order the first doc shows its columns (the
-- `columns` sweep.run saves), then by name. chosen (a list of names) gives the parameters
-- outright. Otherwise a column is what the docs' column_kinds declare it, else a measurement when
-- is_measurement says so or some row holds a table or a number with a fraction there, else a
-- parameter (strings, booleans, counts and sizes: the point's coordinates).
function result_files.columns(docs, chosen)
  local seen, measured, declared, rows = {}, {}, {}, {}
  for _, doc in ipairs(docs) do
    for k, kind in pairs(type(doc.column_kinds) == "table" and doc.column_kinds or {}) do
      declared[k] = declared[k] or kind
    end
    for _, row in ipairs(doc.rows) do
      rows[#rows + 1] = row
      for k, v in pairs(row) do
        seen[k] = true
        if type(v) == "table" or (type(v) == "number" and v ~= math.floor(v)) then measured[k] = true end
      end
    end
  end
  local is_param = {}
  if chosen then
    for _, k in ipairs(chosen) do
      if not seen[k] then params.usage_error(("no row has a column '%s'"):format(k)) end
      is_param[k] = true
    end
  else
    for k in pairs(seen) do
      if declared[k] == "parameter" or declared[k] == "measurement" then
        is_param[k] = declared[k] == "parameter"
      else
        is_param[k] = not (type(k) ~= "string" or result_files.is_measurement(k) or measured[k])
      end
    end
  end
  local ps, ms = {}, {}
  for _, k in ipairs(report.order(docs[1] and docs[1].columns, rows)) do
    if seen[k] then
      local list = is_param[k] and ps or ms
      list[#list + 1] = k
    end
  end
  return ps, ms
end

-- result_files.samples(doc) -> row index -> that row's kept samples (ms a call; a sample saved as
-- "nan" left out), for the rows that have them: through each result's `row` (sweep.run records
-- it), or, in files from before it did, by position where there are as many results as rows.
function result_files.samples(doc)
  local list, by_row, linked = doc.results or {}, {}, false
  for _, r in ipairs(list) do
    linked = linked or r.row ~= nil
  end
  for i, r in ipairs(list) do
    local row = math.tointeger(linked and r.row or (#list == #doc.rows and i) or nil)
    local numbers = {}
    for _, x in ipairs(type(r.samples) == "table" and r.samples or {}) do
      if type(x) == "number" then numbers[#numbers + 1] = x end
    end
    if row and doc.rows[row] and #numbers > 0 then by_row[row] = numbers end
  end
  return by_row
end

local function show(v)
  if type(v) == "table" then return json.encode(v) end
  if math.type(v) == "float" then return ("%.14g"):format(v) end
  return tostring(v)
end

-- result_files.points(doc, parameters) -> a list, one per row: {key =, label =, values =, row =,
-- samples =, index =}. key is the same string for the same parameter values in any file (a
-- count read back from JSON as 512.0 and one measured as 512 alike); label is "a=1 b=x";
-- values holds the parameter columns alone; samples is nil where the row has none.
function result_files.points(doc, parameters)
  local samples, out = result_files.samples(doc), {}
  for i, row in ipairs(doc.rows) do
    local values, keys, labels = {}, {}, {}
    for j, c in ipairs(parameters) do
      local v = row[c]
      values[c] = v
      keys[j] = v == nil and "null" or json.encode(v)
      labels[j] = c .. "=" .. (v == nil and "—" or show(v))
    end
    out[i] = { key = table.concat(keys, ","), label = table.concat(labels, " "), values = values, row = row,
      samples = samples[i], index = i }
  end
  return out
end

-- result_files.sample_rows(doc, parameters) -> the long form: for each row with kept samples,
-- one row per sample holding the parameter columns, `sample` (1, 2, ...) and `ms`.
function result_files.sample_rows(doc, parameters)
  local out = {}
  for _, p in ipairs(result_files.points(doc, parameters)) do
    for k, x in ipairs(p.samples or {}) do
      local r = { sample = k, ms = x }
      for c, v in pairs(p.values) do r[c] = v end
      out[#out + 1] = r
    end
  end
  return out
end

return result_files
