-- sfbench.result_files' views of a result: parameter and measurement columns, each row's
-- samples, point keys and the long form. (Reading and folders: tests/cli/report.sh,
-- tests/cli/compare.sh.)
-- luacheck: allow defined top
local lu = require "luaunit"
local testlib = require "testlib"
local result_files = require "sfbench.result_files"

-- the usage message of the error f(...) raises
local function usage_of(f, ...)
  local ok, err = pcall(f, ...)
  lu.assertFalse(ok, "expected an error")
  lu.assertIsTable(err, "not a usage error: " .. tostring(err))
  lu.assertNotStrContains(err.usage, "\n")
  return err.usage
end

TestViews = {}

local function doc(rows, extra)
  local d = { scenario = "s", context = {}, rows = rows }
  for k, v in pairs(extra or {}) do d[k] = v end
  return d
end

function TestViews.test_columns_guessed()
  local d = doc({ { impl = "a", seq = 512, causal = false, ms = 1.5, tflops = 10, stop = "iters", stage_ms = { 1 },
    mem = 2.0, scratch_mib = 64 }, { impl = "b", seq = 1024, causal = true, ms = 2, tflops = 11, stop = "timeout",
    mem = 2.5, scratch_mib = 64 } })
  local ps, ms = result_files.columns({ d })
  lu.assertEquals(ps, { "causal", "impl", "seq" })
  lu.assertEquals(ms, { "mem", "ms", "scratch_mib", "stage_ms", "stop", "tflops" })
end

function TestViews.test_columns_declared_and_ordered()
  -- batch is a measurement by name (bench.run's calls a sample); this scenario's is its batch size
  local d = doc({ { op = "x", batch = 4, tokens = 16, us = 1.5, std = 0.5 } },
    { columns = { "tokens", "op", "us" }, column_kinds = { batch = "parameter", std = "parameter" } })
  local ps, ms = result_files.columns({ d })
  lu.assertEquals(ps, { "tokens", "op", "batch", "std" })
  lu.assertEquals(ms, { "us" })
  ps, ms = result_files.columns({ d }, { "op" })
  lu.assertEquals(ps, { "op" })
  lu.assertEquals(ms, { "tokens", "us", "batch", "std" })
  testlib.contains(usage_of(result_files.columns, { d }, { "nope" }), "no row has a column 'nope'")
end

function TestViews.test_samples_by_link_or_position()
  local rows = { { impl = "a" }, { impl = "b" } }
  lu.assertEquals(result_files.samples(doc(rows, { results = { { samples = { 2 }, row = 2 } } })), { [2] = { 2 } })
  lu.assertEquals(result_files.samples(doc(rows, { results = { { samples = { 1 } }, { samples = { 2 } } } })),
    { { 1 }, { 2 } })
  -- a sample saved as "nan" is left out; a row with none left has no samples
  lu.assertEquals(result_files.samples(doc(rows, { results = { { samples = { 1, "nan", 2 }, row = 1 },
    { samples = { "nan" }, row = 2 } } })), { { 1, 2 } })
  -- neither linked nor one result a row: which is whose is unknown
  lu.assertEquals(result_files.samples(doc(rows, { results = { { samples = { 1 } } } })), {})
  lu.assertEquals(result_files.samples(doc(rows)), {})
end

function TestViews.test_points_and_long_form()
  local d = doc({ { impl = "a", seq = 512.0, ms = 1.5 }, { impl = "b", seq = 512, ms = 2.5 } },
    { results = { { samples = { 1.25, 1.75 }, row = 1 } } })
  local pts = result_files.points(d, { "seq", "impl" })
  lu.assertEquals(pts[1].label, "seq=512 impl=a")
  lu.assertEquals(pts[1].values, { seq = 512, impl = "a" })
  lu.assertEquals(pts[1].samples, { 1.25, 1.75 })
  lu.assertNil(pts[2].samples)
  local other = result_files.points(doc({ { impl = "a", seq = 512 } }), { "seq", "impl" })
  lu.assertEquals(other[1].key, pts[1].key) -- 512 and 512.0 are one point
  lu.assertNotEquals(pts[2].key, pts[1].key)
  lu.assertEquals(result_files.sample_rows(d, { "impl", "seq" }),
    { { impl = "a", seq = 512, sample = 1, ms = 1.25 }, { impl = "a", seq = 512, sample = 2, ms = 1.75 } })
end

TestRead = {}

-- a file cut anywhere, also inside a number, a keyword, a string or an escape in it (cjson writes
-- '/' as '\/'), reads as truncated JSON; a bad token or escape with text after it does not
function TestRead.test_truncated_anywhere()
  local text = '{"scenario": "s", "context": {"ok": true, "none": null, "cmd": "a\\/b \\u00b5s"}, "rows": [{"ms": 1.5e-3, "impl": "a"}]}'
  local path = os.tmpname()
  for n = 1, #text - 1 do
    local f = assert(io.open(path, "wb"))
    f:write(text:sub(1, n))
    f:close()
    lu.assertStrContains(usage_of(result_files.read, path), "truncated JSON", false, "cut at " .. n)
  end
  local f = assert(io.open(path, "wb"))
  f:write('{"scenario": "s", "rows": [tru]}')
  f:close()
  lu.assertStrContains(usage_of(result_files.read, path), "not valid JSON")
  f = assert(io.open(path, "wb"))
  f:write('{"scenario": "s\\q", "rows": []}')
  f:close()
  lu.assertStrContains(usage_of(result_files.read, path), "not valid JSON")
  os.remove(path)
end

return lu.LuaUnit.run()
