-- sfbench.results: result files read and checked (each bad input one message naming the file),
-- folders (the newest of each scenario, or all), parameter and measurement columns, each row's
-- samples, point keys and the long form.
-- luacheck: allow defined top
local lu = require "luaunit"
local cjson = require "cjson"
local support = require "fake_sf"
local testlib = require "testlib"
local results = require "sfbench.results"

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

local function result(scenario, time, extra)
  local d = { scenario = scenario, context = { time = time }, rows = { { impl = "a", ms = 1.5 } },
    results = { { samples = { 1, 2 }, row = 1 } } }
  for k, v in pairs(extra or {}) do d[k] = v end
  return cjson.encode(d)
end

-- the usage message of the error f(...) raises
local function usage_of(f, ...)
  local ok, err = pcall(f, ...)
  lu.assertFalse(ok, "expected an error")
  lu.assertIsTable(err, "not a usage error: " .. tostring(err))
  lu.assertNotStrContains(err.usage, "\n")
  return err.usage
end

TestRead = {}

function TestRead:setUp()
  self.dir = support.tmpdir()
end

function TestRead:tearDown()
  support.rmtree(self.dir)
end

function TestRead:test_a_result()
  local path = write(self.dir .. "/r.json", result("s", "t"))
  local doc = results.read(path)
  lu.assertEquals(doc.scenario, "s")
  lu.assertEquals(doc.rows, { { impl = "a", ms = 1.5 } })
end

function TestRead:test_bad_inputs_name_file_and_problem()
  local full = result("s", "t")
  local cases = {
    { "truncated", full:sub(1, #full // 2), "not valid JSON (truncated?)" },
    { "empty", "", "empty, not an sfbench result" },
    { "array", "[1, 2]", "not an sfbench result: a JSON array, not a result object" },
    { "number", "3", "not an sfbench result: a JSON number" },
    { "torch", '{"torch": "2.1", "rows": [{"ms": 1}]}', "not an sfbench result: no 'scenario' name" },
    { "nocontext", '{"scenario": "s", "rows": []}', "no 'context' object" },
    { "norows", '{"scenario": "s", "context": {}}', "no 'rows' list" },
    { "badrow", '{"scenario": "s", "context": {}, "rows": [3]}', "row 1 is not an object" },
    { "badsample", '{"scenario": "s", "context": {}, "rows": [{}], "results": [{"samples": [1, "x"]}]}',
      "result 1: sample 2 is not a number" },
    { "badlink", '{"scenario": "s", "context": {}, "rows": [{}], "results": [{"row": 2}]}',
      "result 1: 'row' is not the index of a row" },
    { "twolinks", '{"scenario": "s", "context": {}, "rows": [{}], "results": [{"row": 1}, {"row": 1}]}',
      "results 1 and 2 both belong to row 1" },
    { "kinds", '{"scenario": "s", "context": {}, "rows": [], "column_kinds": {"a": "axis"}}',
      "'column_kinds' must map column names" },
  }
  for _, c in ipairs(cases) do
    local path = write(self.dir .. "/" .. c[1] .. ".json", c[2])
    testlib.contains(usage_of(results.read, path), path .. ": ", c[3])
  end
  testlib.contains(usage_of(results.read, self.dir .. "/missing.json"), self.dir .. "/missing.json: no such file")
  testlib.contains(usage_of(results.read, self.dir), self.dir .. ": a folder, not a result file")
end

function TestRead:test_folder_newest_of_each_scenario()
  write(self.dir .. "/s-1.json", result("s", "2026-01-01T00:00:00Z"))
  write(self.dir .. "/s-2.json", result("s", "2026-01-02T00:00:00Z"))
  write(self.dir .. "/t-1.json", result("t", "2026-01-01T00:00:00Z"))
  write(self.dir .. "/torch_ffn-1.json", '{"torch": "2.1", "rows": []}') -- another tool's: passed over
  write(self.dir .. "/.s-3.json.tmp", "{") -- half-written: not a .json
  write(self.dir .. "/notes.txt", "x")
  local function names(entries)
    local t = {}
    for i, e in ipairs(entries) do t[i] = e.path:match("[^/]+$") end
    return t
  end
  lu.assertEquals(names(results.load({ self.dir })), { "s-2.json", "t-1.json" })
  lu.assertEquals(names(results.load({ self.dir .. "/" }, { all = true })), { "s-1.json", "s-2.json", "t-1.json" })
  lu.assertEquals(names(results.load({ self.dir .. "/t-1.json", self.dir .. "/s-1.json" })), { "t-1.json", "s-1.json" })
  local groups = results.by_scenario(results.load({ self.dir }, { all = true }))
  lu.assertEquals(#groups, 2)
  lu.assertEquals(groups[1].scenario, "s")
  lu.assertEquals(#groups[1].entries, 2)
  -- a damaged result in the folder is an error, not skipped
  write(self.dir .. "/u-1.json", '{"scenario": "u", "rows": [')
  testlib.contains(usage_of(results.load, { self.dir }), self.dir .. "/u-1.json: not valid JSON")
end

function TestRead:test_folder_without_results()
  write(self.dir .. "/torch.json", '{"rows": []}')
  testlib.contains(usage_of(results.load, { self.dir }), self.dir .. ": no sfbench results in this folder",
    "1 JSON file(s)")
end

TestViews = {}

local function doc(rows, extra)
  local d = { scenario = "s", context = {}, rows = rows }
  for k, v in pairs(extra or {}) do d[k] = v end
  return d
end

function TestViews.test_columns_guessed()
  local d = doc({ { impl = "a", seq = 512, causal = false, ms = 1.5, tflops = 10, stop = "iters", stage_ms = { 1 },
    mib = 2.0 }, { impl = "b", seq = 1024, causal = true, ms = 2, tflops = 11, stop = "timeout", mib = 2.5 } })
  local ps, ms = results.columns({ d })
  lu.assertEquals(ps, { "causal", "impl", "seq" })
  lu.assertEquals(ms, { "mib", "ms", "stage_ms", "stop", "tflops" })
end

function TestViews.test_columns_declared_and_ordered()
  local d = doc({ { op = "x", batch = 4, tokens = 16, us = 1.5, std = 0.5 } },
    { columns = { "tokens", "op", "us" }, column_kinds = { batch = "measurement", std = "parameter" } })
  local ps, ms = results.columns({ d })
  lu.assertEquals(ps, { "tokens", "op", "std" })
  lu.assertEquals(ms, { "us", "batch" })
  ps, ms = results.columns({ d }, { "op" })
  lu.assertEquals(ps, { "op" })
  lu.assertEquals(ms, { "tokens", "us", "batch", "std" })
  testlib.contains(usage_of(results.columns, { d }, { "nope" }), "no row has a column 'nope'")
end

function TestViews.test_samples_by_link_or_position()
  local rows = { { impl = "a" }, { impl = "b" } }
  lu.assertEquals(results.samples(doc(rows, { results = { { samples = { 2 }, row = 2 } } })), { [2] = { 2 } })
  lu.assertEquals(results.samples(doc(rows, { results = { { samples = { 1 } }, { samples = { 2 } } } })),
    { { 1 }, { 2 } })
  -- neither linked nor one result a row: which is whose is unknown
  lu.assertEquals(results.samples(doc(rows, { results = { { samples = { 1 } } } })), {})
  lu.assertEquals(results.samples(doc(rows)), {})
end

function TestViews.test_points_and_long_form()
  local d = doc({ { impl = "a", seq = 512.0, ms = 1.5 }, { impl = "b", seq = 512, ms = 2.5 } },
    { results = { { samples = { 1.25, 1.75 }, row = 1 } } })
  local pts = results.points(d, { "seq", "impl" })
  lu.assertEquals(pts[1].label, "seq=512 impl=a")
  lu.assertEquals(pts[1].values, { seq = 512, impl = "a" })
  lu.assertEquals(pts[1].samples, { 1.25, 1.75 })
  lu.assertNil(pts[2].samples)
  local other = results.points(doc({ { impl = "a", seq = 512 } }), { "seq", "impl" })
  lu.assertEquals(other[1].key, pts[1].key) -- 512 and 512.0 are one point
  lu.assertNotEquals(pts[2].key, pts[1].key)
  lu.assertEquals(results.sample_rows(d, { "impl", "seq" }),
    { { impl = "a", seq = 512, sample = 1, ms = 1.25 }, { impl = "a", seq = 512, sample = 2, ms = 1.75 } })
end

os.exit(lu.LuaUnit.run())
