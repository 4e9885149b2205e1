-- luacheck: allow defined top
local lu = require "luaunit"
local cjson = require "cjson"
local support = require "fake_sf"
local report = require "sfbench.report"
local sweep = require "sfbench.sweep"

local function read(path)
  local f = assert(io.open(path))
  local text = f:read("a")
  f:close()
  return text
end

local function count_tmp(dir)
  local n = 0
  for _, name in ipairs(support.listdir(dir)) do
    if name:match("%.tmp$") then n = n + 1 end
  end
  return n
end

TestTable = {}

function TestTable.test_markdown()
  local rows = {
    { impl = "flash", seq = 1024, ms = 0.123456 },
    { impl = "naive", seq = 512, ms = 12.5 },
    { impl = "x|y", seq = 64 },
  }
  local columns = { "impl", { key = "seq", title = "seq len" }, { key = "ms", title = "time (ms)", fmt = "%.2f" } }
  lu.assertEquals(report.table(rows, columns), table.concat({
    "| impl  | seq len | time (ms) |",
    "| ----- | ------: | --------: |",
    "| flash |    1024 |      0.12 |",
    "| naive |     512 |     12.50 |",
    "| x\\|y  |      64 |         — |",
  }, "\n"))
end

function TestTable.test_number_formats_and_default_columns()
  local rows = { { a = 1234567.0, b = true }, { a = 0.0001 }, { a = 250.0 }, { a = 3 },
    { a = 0 / 0 }, { a = math.huge }, { a = 0.5 }, { a = 0.0 } }
  lu.assertEquals(report.table(rows), table.concat({
    "|         a | b    |",
    "| --------: | ---- |",
    "| 1.235e+06 | true |",
    "| 1.000e-04 | —    |",
    "|       250 | —    |",
    "|         3 | —    |",
    "|       nan | —    |",
    "|       inf | —    |",
    "|     0.500 | —    |",
    "|         0 | —    |",
  }, "\n"))
end

function TestTable.test_no_rows()
  lu.assertEquals(report.table({}, { "x" }), "| x   |\n| --- |")
end

-- A CSV reader for the round trip: RFC 4180 quoting; a field reads back as a number where it
-- is one, as a boolean where it is true or false, as nothing where it is empty.
local function read_csv(text)
  local records, record, field, i, quoted = {}, {}, {}, 1, false
  local function value(s)
    if s == "" then return nil end
    if s == "true" or s == "false" then return s == "true" end
    return tonumber(s) or s
  end
  local function end_field()
    record[#record + 1] = table.concat(field)
    field = {}
  end
  while i <= #text do
    local ch = text:sub(i, i)
    if quoted then
      if ch == '"' and text:sub(i + 1, i + 1) == '"' then
        field[#field + 1] = '"'
        i = i + 1
      elseif ch == '"' then
        quoted = false
      else
        field[#field + 1] = ch
      end
    elseif ch == '"' then
      quoted = true
    elseif ch == "," then
      end_field()
    elseif ch == "\n" then
      end_field()
      records[#records + 1] = record
      record = {}
    else
      field[#field + 1] = ch
    end
    i = i + 1
  end
  if #field > 0 or #record > 0 then
    end_field()
    records[#records + 1] = record
  end
  local header, rows = records[1], {}
  for r = 2, #records do
    local row = {}
    for j, k in ipairs(header) do row[k] = value(records[r][j]) end
    rows[r - 1] = row
  end
  return rows, header
end

TestFormats = {}

function TestFormats.test_order()
  local rows = { { b = 1, a = 2, z = 3 }, { y = 1, a = 1 } }
  lu.assertEquals(report.order({ "z", { key = "b" } }, rows), { "z", "b", "a", "y" })
  lu.assertEquals(report.order(nil, rows), { "a", "b", "y", "z" })
end

function TestFormats.test_csv_fields()
  local rows = { { s = "plain", n = 3, f = 0.1 + 0.2, w = 512.0, b = true },
    { s = 'a, "quoted"\nline', f = 0 / 0, t = { 1, 2 } }, { s = " edge" } }
  lu.assertEquals(report.csv(rows, { "s", "n", "f", "w", "b", "t" }), table.concat({
    "s,n,f,w,b,t",
    "plain,3,0.3,512,true,",
    '"a, ""quoted""\nline",,nan,,,"[1,2]"',
    '" edge",,,,,',
  }, "\n"))
end

function TestFormats.test_csv_round_trips_the_rows()
  local dir = support.tmpdir()
  local restore = support.patch({ output_dir = dir })
  -- rows as a sweep makes them, saved and read back as a tool reads them
  local path = report.save("trip", { rows = {
    { impl = "flash, v2", seq = 4096, causal = false, ms = 0.16338440325621234, tflops = 565.18122307671,
      stop = "converged" },
    { impl = 'say "fast"', seq = 512, causal = true, ms = 1e-7, speedup = 12.5, stop = "iters" },
  } })
  restore()
  local doc = cjson.decode(read(path))
  support.rmtree(dir)
  local back, header = read_csv(report.format(doc.rows, nil, "csv"))
  lu.assertEquals(header, { "causal", "impl", "ms", "seq", "speedup", "stop", "tflops" })
  lu.assertEquals(back, doc.rows)
end

function TestFormats.test_json_and_md()
  local rows = { { a = 1, b = "x" } }
  lu.assertEquals(cjson.decode(report.format(rows, nil, "json")), rows)
  lu.assertEquals(report.format({}, nil, "json"), "[]")
  lu.assertEquals(report.format(rows, { "b" }, "md"), report.table(rows, { "b" }))
  lu.assertErrorMsgContains("report.format: unknown format 'xml'", report.format, rows, nil, "xml")
end

function TestFormats.test_print_follows_the_format_flag()
  local out = support.capture()
  local restore_io = support.patch({ stdout = out }, io)
  local restore = support.patch({ quiet = false, format = "csv" })
  report.print({ { ms = 1.5, impl = "a" } }, { "impl" })
  support.sf.format = "json"
  report.print({ { ms = 1.5 } })
  restore()
  restore_io()
  lu.assertEquals(out.text, 'impl,ms\na,1.5\n[{"ms":1.5}]\n')
end

TestSave = {}

function TestSave:setUp()
  self.dir = support.tmpdir()
  self.out = self.dir .. "/a/b"
  self.restore = support.patch({ output_dir = self.out, quiet = true })
end

function TestSave:tearDown()
  self.restore()
  support.rmtree(self.dir)
end

function TestSave:test_writes_valid_json()
  local path = report.save("unit", {
    params = { seq = { 1, 2 } },
    rows = { { x = 1, y = 0 / 0, z = -math.huge } },
    results = {},
    complete = true,
    interrupted = false,
  })
  lu.assertStrMatches(path, self.out:gsub("%p", "%%%0") .. "/unit%-%d%d%d%d%d%d%d%d%-%d%d%d%d%d%d%.json")
  local doc = cjson.decode(read(path))
  lu.assertEquals(doc.scenario, "unit")
  lu.assertEquals(doc.params, { seq = { 1, 2 } })
  lu.assertEquals(doc.rows, { { x = 1, y = "nan", z = "-inf" } })
  lu.assertEquals(doc.complete, true)
  lu.assertEquals(doc.context.sfbench_version, support.sf.version)
  lu.assertEquals(doc.context.device.backend, support.sf.device().backend)
  lu.assertStrMatches(doc.context.time, "%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ")
  lu.assertEquals(support.listdir(self.out), { path:match("[^/]+$") })
end

function TestSave:test_same_second_gets_suffix()
  local real_date = os.date
  local restore = support.patch({ date = function(fmt) return real_date(fmt, 1700000000) end }, os)
  local paths = { report.save("same", {}), report.save("same", {}), report.save("same", {}) }
  restore()
  local base = self.out .. "/same-" .. os.date("%Y%m%d-%H%M%S", 1700000000)
  lu.assertEquals(paths, { base .. ".json", base .. "-2.json", base .. "-3.json" })
  lu.assertEquals(count_tmp(self.out), 0)
end

function TestSave:test_failed_rename_leaves_nothing()
  local restore = support.patch({ rename = function() return nil, "boom\nsecond line" end }, os)
  local ok, err = pcall(report.save, "unit", {})
  restore()
  lu.assertFalse(ok)
  lu.assertStrContains(err, "report.save: cannot write '")
  lu.assertStrContains(err, "boom second line")
  lu.assertNotStrContains(err, "\n")
  lu.assertEquals(support.listdir(self.out), {})
end

function TestSave:test_directory_errors()
  local file = self.dir .. "/file"
  assert(io.open(file, "w")):close()
  support.sf.output_dir = file .. "/sub"
  lu.assertErrorMsgContains("report.save: cannot create directory '" .. file .. "'", report.save, "x", {})
  lu.assertErrorMsgContains("report.save: 'name' must be a file name", report.save, "../x", {})
  lu.assertErrorMsgContains("report.save: 'doc' must be a table", report.save, "x", 1)
end

function TestSave.test_context_extra()
  local ctx = report.context({ seed = 42 })
  lu.assertEquals(ctx.seed, 42)
  lu.assertEquals(ctx.command_line, support.sf.command_line)
end

TestSweep = {}

function TestSweep:setUp()
  self.dir = support.tmpdir()
  self.stderr, self.stdout = support.capture(), support.capture()
  self.restore_io = support.patch({ stderr = self.stderr, stdout = self.stdout }, io)
  self.restore = support.patch({ output_dir = self.dir, quiet = false, script_name = "unit_sweep",
    isatty = function() return false end })
  self.points = sweep.product({ seq = { 1, 2 }, impl = { "a", "b" } }, { "seq", "impl" })
end

function TestSweep:tearDown()
  self.restore()
  self.restore_io()
  support.rmtree(self.dir)
end

function TestSweep:test_complete_run()
  local r = sweep.run({
    params = { seq = { 1, 2 } },
    points = self.points,
    columns = { "seq", "impl", "ms" },
    measure = function(p)
      if p.impl == "b" and p.seq == 2 then return nil end
      return { seq = p.seq, impl = p.impl, ms = p.seq * 1.5 },
        { name = p.impl, samples = { 1 }, warnings = { "hot" } }
    end,
  })
  lu.assertEquals(#r.rows, 3)
  local doc = cjson.decode(read(r.path))
  lu.assertEquals(doc.scenario, "unit_sweep")
  lu.assertEquals(doc.complete, true)
  lu.assertEquals(doc.interrupted, false)
  lu.assertEquals(doc.rows[3], { seq = 2, impl = "a", ms = 3.0 })
  lu.assertEquals(#doc.results, 3)
  lu.assertEquals(doc.results[1].point, { seq = 1, impl = "a" })
  lu.assertStrContains(self.stderr.text,
    "[1/4] seq=1 impl=a\nsfbench: warning: a: hot\n[2/4] seq=1 impl=b\n")
  lu.assertStrContains(self.stderr.text, "sfbench: results saved to " .. r.path .. "\n")
  lu.assertStrContains(self.stdout.text, "| seq | impl |    ms |\n")
end

function TestSweep:test_measure_returns_several_rows()
  local r = sweep.run({
    points = { { seq = 1 }, { seq = 2 } },
    measure = function(p)
      return { { seq = p.seq, impl = "a" }, { seq = p.seq, impl = "b" } },
        { { name = "a", samples = { 1 } }, { name = "b", samples = { 2 } } }
    end,
  })
  lu.assertEquals(#r.rows, 4)
  lu.assertEquals(r.rows[4], { seq = 2, impl = "b" })
  local doc = cjson.decode(read(r.path))
  lu.assertEquals(#doc.results, 4)
  lu.assertEquals(doc.results[4].point, { seq = 2 })
  -- as many results as rows: each result names its row
  for i, res in ipairs(doc.results) do lu.assertEquals(res.row, i) end
  local ok, err = pcall(sweep.run, { points = { { seq = 1 } }, measure = function() return { { seq = 1 }, 7 } end })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "measure returned a list holding a number")
end

function TestSweep:test_interrupted_saves_partial_results()
  local ok, err = pcall(sweep.run, {
    points = self.points,
    measure = function(p)
      if p.seq == 2 then error("interrupted") end
      return { seq = p.seq, impl = p.impl }
    end,
  })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "interrupted")
  local files = support.listdir(self.dir)
  lu.assertEquals(#files, 1)
  local doc = cjson.decode(read(self.dir .. "/" .. files[1]))
  lu.assertEquals(doc.complete, false)
  lu.assertEquals(doc.interrupted, true)
  lu.assertNil(doc.error)
  lu.assertEquals(#doc.rows, 2)
  lu.assertStrContains(self.stdout.text, "| impl | seq |")
end

function TestSweep:test_error_saves_partial_results()
  local ok, err = pcall(sweep.run, {
    name = "failing",
    points = self.points,
    measure = function(p)
      if p.impl == "b" then error("kernel failed", 0) end
      return { seq = p.seq }
    end,
  })
  lu.assertFalse(ok)
  lu.assertEquals(err, "kernel failed")
  local files = support.listdir(self.dir)
  lu.assertStrMatches(files[1], "failing%-.*%.json")
  local doc = cjson.decode(read(self.dir .. "/" .. files[1]))
  lu.assertEquals(doc.complete, false)
  lu.assertEquals(doc.interrupted, false)
  lu.assertEquals(doc.error, "kernel failed")
  lu.assertEquals(doc.rows, { { seq = 1 } })
  lu.assertEquals(self.stdout.text, "")
end

function TestSweep:test_columns_and_row_links_saved()
  local r = sweep.run({
    points = { { seq = 1 }, { seq = 2 } },
    columns = { "seq", { key = "ms", fmt = "%.1f" } },
    column_kinds = { batch = "measurement" },
    measure = function(p)
      if p.seq == 1 then return { seq = 1, ms = 1, batch = 3 }, { samples = { 1 } } end
      -- two rows, one result: which row it belongs to is not said
      return { { seq = 2, ms = 2 }, { seq = 2, ms = 3 } }, { samples = { 2 } }
    end,
  })
  local doc = cjson.decode(read(r.path))
  lu.assertEquals(doc.columns, { "seq", "ms" })
  lu.assertEquals(doc.column_kinds, { batch = "measurement" })
  lu.assertEquals(doc.results[1].row, 1)
  lu.assertNil(doc.results[2].row)
  local ok, err = pcall(sweep.run, { points = {}, measure = function() end, column_kinds = { a = "axis" } })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "sweep.run: 'column_kinds' must map column names")
  ok, err = pcall(sweep.run, { points = {}, measure = function() end, column_kinds = "a" })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "sweep.run: 'column_kinds' must map column names")
end

function TestSweep:test_tty_bar_and_quiet()
  support.sf.isatty = function() return true end
  sweep.run({ points = { { n = 1 }, { n = 2 } }, measure = function() end })
  lu.assertStrContains(self.stderr.text, "\r\27[K[##########..........] 1/2 n=1")
  lu.assertStrContains(self.stderr.text, "\r\27[K[####################] 2/2 n=2\n")
  self.stderr.text, self.stdout.text = "", ""
  support.sf.quiet = true
  sweep.run({ points = { { n = 1 } }, measure = function() end })
  lu.assertEquals(self.stderr.text, "")
  lu.assertEquals(self.stdout.text, "")
end

return lu.LuaUnit.run()
