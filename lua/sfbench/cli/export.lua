-- sfbench export FILE: a result's rows, or its kept samples one a line (the long form), as CSV,
-- a markdown table or JSON, for a spreadsheet or a script.
local getopt = require "sfbench.getopt"
local params = require "sfbench.params"
local report = require "sfbench.report"
local result_files = require "sfbench.result_files"

local HELP = [[
Usage: sfbench export FILE [--format csv|md|json] [--long] [--output OUT]
Write the rows of an sfbench result file (JSON, as sweeps save them, or the PyTorch reference
rows) in another format.

  --format F     csv (default), md (a markdown table) or json (a list of objects)
  --long         one line per kept sample instead of per row: the row's parameter columns,
                 sample (1, 2, ...) and ms (that sample's time a call)
  --output OUT   write to OUT (replaced whole, never half-written) instead of stdout
  -h, --help     show this help

Columns come in the order the scenario shows them, then the rest by name. CSV numbers have the
result file's precision, a missing value is an empty field, a list or object its JSON text.
A sweep prints its own rows in these formats with `sfbench --format F SCENARIO`.
Exit status: 0 written, 2 a usage or input error.
]]

local SPEC = {
  format = { kind = "string" }, long = { kind = "flag" }, output = { kind = "string" } }

return function(argv)
  local opts, args = getopt.parse("export", argv, SPEC, HELP)
  if not opts then return 0 end
  local format = opts.format or "csv"
  local known = false
  for _, f in ipairs(report.FORMATS) do known = known or f == format end
  if not known then
    params.usage_error(("export: unknown format '%s' (expected %s)"):format(format, table.concat(report.FORMATS, ", ")))
  end
  if #args ~= 1 then
    params.usage_error(("export: expected one result FILE, got %d argument(s) (see sfbench export --help)"):format(#args))
  end
  local entry = result_files.read(args[1])
  if entry.kind == "compare" then
    params.usage_error(("%s: a compare document, which has no rows to export"):format(args[1]))
  end
  local doc = entry.doc
  local rows, order = doc.rows, doc.columns
  if opts.long then
    local parameters = result_files.columns({ doc })
    rows = result_files.sample_rows(doc, parameters)
    if #rows == 0 then params.usage_error(("%s: no kept samples, so no long form"):format(args[1])) end
    order = table.move(parameters, 1, #parameters, 1, {})
    order[#order + 1] = "sample"
    order[#order + 1] = "ms"
  end
  local text = report.format(rows, report.order(order, rows), format) .. "\n"
  if opts.output then
    report.write_text(opts.output, text)
  else
    io.stdout:write(text)
  end
  return 0
end
