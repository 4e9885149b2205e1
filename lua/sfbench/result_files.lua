-- The result files a tool is given: each file is read and checked to be a document sfbench
-- wrote (a sweep's result, a `compare --output` document, or the rows of the PyTorch
-- reference script); a folder gives the newest result of each scenario in it, or every one.
-- A problem is a usage error (exit 2) of one line naming the file.
local cjson = require "cjson"
local lfs = require "lfs"
local params = require "sfbench.params"

local result_files = {}

local json = cjson.new()

local function problem(path, msg)
  params.usage_error(("%s: %s"):format(path, msg))
end

local function is_list_of_tables(v)
  if type(v) ~= "table" then return false end
  for i, x in ipairs(v) do
    if type(x) ~= "table" then return false, i end
  end
  return next(v) == nil or v[1] ~= nil
end

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
    if msg:find("T_END", 1, true) or msg:find("unexpected end of string", 1, true) then
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

return result_files
