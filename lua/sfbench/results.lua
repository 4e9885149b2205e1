-- Result files in: the JSON documents that report.save writes, read back and checked, chosen
-- from folders, and the views of them that the tools (compare, export, report) work on: which
-- columns are a point's parameters and which its measurements, each row's kept samples, and one
-- row per sample. A bad input is a usage error (sfbench.params) whose one line names the file
-- and the problem, so a tool exits 2.
local cjson = require "cjson"
local lfs = require "lfs"
local params = require "sfbench.params"
local report = require "sfbench.report"

local results = {}

local json = cjson.new()

local function bad(path, problem)
  params.usage_error(("%s: %s"):format(path, problem))
end

local function is_list(v)
  return type(v) == "table" and (next(v) == nil or v[1] ~= nil)
end

-- What keeps doc from being an sfbench result, or nil when it is one.
local function problem_of(doc)
  if type(doc) ~= "table" or (next(doc) ~= nil and doc[1] ~= nil) then
    return "a JSON " .. (type(doc) == "table" and "array" or type(doc)) .. ", not a result object"
  end
  if type(doc.scenario) ~= "string" then return "no 'scenario' name" end
  if type(doc.context) ~= "table" then return "no 'context' object" end
  if not is_list(doc.rows) then return "no 'rows' list" end
  for i, row in ipairs(doc.rows) do
    if type(row) ~= "table" or row[1] ~= nil then return ("row %d is not an object"):format(i) end
  end
  for k, kind in pairs(doc.column_kinds or {}) do
    if type(k) ~= "string" or (kind ~= "parameter" and kind ~= "measurement") then
      return "'column_kinds' must map column names to \"parameter\" or \"measurement\""
    end
  end
  if doc.results == nil then return nil end
  if not is_list(doc.results) then return "'results' is not a list" end
  local owner = {}
  for i, r in ipairs(doc.results) do
    if type(r) ~= "table" then return ("result %d is not an object"):format(i) end
    if r.samples ~= nil then
      if not is_list(r.samples) then return ("result %d: 'samples' is not a list"):format(i) end
      for j, x in ipairs(r.samples) do
        if type(x) ~= "number" then return ("result %d: sample %d is not a number"):format(i, j) end
      end
    end
    if r.row ~= nil then
      if math.type(r.row) == nil or r.row ~= math.floor(r.row) or not doc.rows[r.row] then
        return ("result %d: 'row' is not the index of a row"):format(i)
      end
      if owner[r.row] then return ("results %d and %d both belong to row %d"):format(owner[r.row], i, r.row) end
      owner[r.row] = i
    end
  end
end

local function decode(path)
  local mode = lfs.attributes(path, "mode")
  if mode == nil then bad(path, "no such file") end
  if mode == "directory" then bad(path, "a folder, not a result file") end
  local f, err = io.open(path, "rb")
  if not f then bad(path, "cannot read it: " .. tostring(err)) end
  local text = f:read("a")
  f:close()
  if not text:find("%S") then bad(path, "empty, not an sfbench result") end
  local ok, doc = pcall(json.decode, text)
  if not ok then bad(path, "not valid JSON (truncated?): " .. tostring(doc):gsub("\n", " ")) end
  return doc
end

-- results.read(path) -> the document of one result file; an error naming the file when it is
-- missing, not JSON (e.g. truncated) or not an sfbench result.
function results.read(path)
  local doc = decode(path)
  local problem = problem_of(doc)
  if problem then bad(path, "not an sfbench result: " .. problem) end
  return doc
end

local function time_of(e)
  local t = e.doc.context.time
  return type(t) == "string" and t or ""
end

local function newer(a, b)
  local ta, tb = time_of(a), time_of(b)
  if ta ~= tb then return ta > tb end
  return a.path > b.path
end

-- The results in a folder (not its subfolders): every one, or the newest of each scenario. JSON
-- files that are not sfbench results (another tool's) are passed over; one that is not JSON at
-- all is an error, as a damaged result must not silently give way to an older one.
local function from_folder(dir, all)
  local names = {}
  for name in lfs.dir(dir) do
    if name:match("%.json$") and name:sub(1, 1) ~= "." then names[#names + 1] = name end
  end
  table.sort(names)
  local newest, found = {}, {}
  for _, name in ipairs(names) do
    local path = (dir:gsub("/+$", "")) .. "/" .. name
    if lfs.attributes(path, "mode") == "file" then
      local doc = decode(path)
      if not problem_of(doc) then
        local e = { path = path, doc = doc }
        local best = newest[doc.scenario]
        if all then
          found[#found + 1] = e
        elseif not best or newer(e, best) then
          newest[doc.scenario] = e
        end
      end
    end
  end
  if not all then
    for _, e in pairs(newest) do found[#found + 1] = e end
  end
  if #found == 0 then
    bad(dir, ("no sfbench results in this folder (%d JSON file(s), none a result)"):format(#names))
  end
  table.sort(found, function(a, b)
    if a.doc.scenario ~= b.doc.scenario then return a.doc.scenario < b.doc.scenario end
    return newer(b, a)
  end)
  return found
end

-- results.load(paths [, {all = bool}]) -> a list of {path =, doc =}: each path a result file, or
-- a folder giving the newest result of each scenario in it (every result with all); ordered by
-- scenario, then oldest first.
function results.load(paths, opts)
  local all = opts and opts.all
  local out = {}
  for _, path in ipairs(paths) do
    if lfs.attributes(path, "mode") == "directory" then
      for _, e in ipairs(from_folder(path, all)) do out[#out + 1] = e end
    else
      out[#out + 1] = { path = path, doc = results.read(path) }
    end
  end
  return out
end

-- results.by_scenario(entries) -> a list of {scenario =, entries =}, by scenario name.
function results.by_scenario(entries)
  local groups, list = {}, {}
  for _, e in ipairs(entries) do
    local name = e.doc.scenario
    if not groups[name] then
      groups[name] = { scenario = name, entries = {} }
      list[#list + 1] = groups[name]
    end
    table.insert(groups[name].entries, e)
  end
  table.sort(list, function(a, b) return a.scenario < b.scenario end)
  return list
end

-- What bench.run and the sweeps report of a measurement, whatever its values look like.
results.MEASUREMENTS = { ms = true, us = true, tflops = true, gbs = true, tbs = true, noise = true,
  speedup = true, stop = true, samples = true, feed = true }

-- results.columns(docs [, chosen]) -> parameters, measurements: the column names of the rows of
-- all docs (one scenario's), each list in the order the first doc shows its columns (the
-- `columns` that sweep.run saves), then by name. chosen (a list of names) gives the parameters
-- outright. Otherwise a column is what the docs' column_kinds declare it, else a measurement when
-- results.MEASUREMENTS names it or some row holds a table or a number with a fraction there, else
-- a parameter (strings, booleans, counts and sizes: the point's coordinates).
function results.columns(docs, chosen)
  local seen, measured, declared = {}, {}, {}
  for _, doc in ipairs(docs) do
    for k, kind in pairs(doc.column_kinds or {}) do declared[k] = declared[k] or kind end
    for _, row in ipairs(doc.rows) do
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
      local kind = declared[k]
      if kind then
        is_param[k] = kind == "parameter"
      else
        is_param[k] = not (results.MEASUREMENTS[k] or measured[k])
      end
    end
  end
  local rows = {}
  for _, doc in ipairs(docs) do table.move(doc.rows, 1, #doc.rows, #rows + 1, rows) end
  local ps, ms = {}, {}
  for _, k in ipairs(report.order(docs[1] and docs[1].columns, rows)) do
    if seen[k] then
      local list = is_param[k] and ps or ms
      list[#list + 1] = k
    end
  end
  return ps, ms
end

-- results.samples(doc) -> row index -> that row's kept samples (ms a call), for the rows that
-- have them: through each result's `row` (sweep.run records it), or, in files from before it
-- did, by position where there are as many results as rows.
function results.samples(doc)
  local list, by_row, linked = doc.results or {}, {}, false
  for _, r in ipairs(list) do
    linked = linked or r.row ~= nil
  end
  for i, r in ipairs(list) do
    local row = linked and r.row or (not linked and #list == #doc.rows and i) or nil
    if row and r.samples and #r.samples > 0 then by_row[math.tointeger(row)] = r.samples end
  end
  return by_row
end

local function show(v)
  if type(v) == "table" then return json.encode(v) end
  if math.type(v) == "float" then return ("%.14g"):format(v) end
  return tostring(v)
end

-- results.points(doc, parameters) -> a list, one per row: {key =, label =, values =, row =,
-- samples =, index =}. key is the same string for the same parameter values in any file (a
-- count read back from JSON as 512.0 and one measured as 512 alike); label is "a=1 b=x";
-- values holds the parameter columns alone; samples is nil where the row has none.
function results.points(doc, parameters)
  local samples, out = results.samples(doc), {}
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

-- results.sample_rows(doc, parameters) -> the long form: for each row with kept samples, one
-- row per sample holding the parameter columns, `sample` (1, 2, ...) and `ms`.
function results.sample_rows(doc, parameters)
  local out = {}
  for _, p in ipairs(results.points(doc, parameters)) do
    for k, x in ipairs(p.samples or {}) do
      local r = { sample = k, ms = x }
      for c, v in pairs(p.values) do r[c] = v end
      out[#out + 1] = r
    end
  end
  return out
end

return results
