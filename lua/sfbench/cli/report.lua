-- sfbench report RESULTS... [-o FILE] [--all] [--svg ID | --list]: one self-contained HTML page
-- of plots and tables from result files; or one of its plots alone, as an SVG file.
local getopt = require "sfbench.getopt"
local params = require "sfbench.params"
local report = require "sfbench.report"
local result_files = require "sfbench.result_files"
local html_report = require "sfbench.html_report"

local HELP = [[
Usage: sfbench report RESULTS... [-o FILE] [--all]
       sfbench report RESULTS... --list
       sfbench report RESULTS... --svg ID [-o FILE]
Writes one self-contained HTML page (inline CSS and SVG; nothing is fetched when it is viewed):
per result, its plots (throughput or time against the sweep's axis, one line per impl; the
speedup over the baseline impl; the spread of each point's samples; a roofline against the
device's best measured peaks; for memory-bound results, which declared bytes and no FLOPs, a
bandwidth roofline: attained B/s against the bytes a call moves, under the DRAM peak), then its
context and its table. A result's other tables of rows (keys ending in _rows, as
launch_overhead's graph_rows) get the same plots and a table of their own. `sfbench compare
--output` documents give each point's time ratio with its interval.

  RESULTS          result files, or folders: the newest result of each scenario in a folder
  -o, --output F   the file to write (default report.html; with --svg, ID.svg)
  --all            every result in a folder, not only the newest of each scenario
  --list           print the ID of every plot, one a line, and write nothing
  --svg ID         write the plot ID alone, as an SVG file
  -h, --help       this text
A file that is not a result, or a folder with none, is an error naming it (exit 2); nothing is
written then.
]]

local function usage(msg)
  params.usage_error(msg .. " (sfbench report --help)")
end

local SPEC = { output = { kind = "string", short = "o" }, svg = { kind = "string" }, all = { kind = "flag" },
  list = { kind = "flag" } }

return function(argv)
  local o, inputs = getopt.parse("report", argv, SPEC, HELP)
  if not o then return 0 end
  o.inputs = inputs
  if #o.inputs == 0 then usage("report: no result files given") end
  if o.list and o.svg then usage("report: --list and --svg do not go together") end
  if o.output == "" then usage("report: the output file name is empty") end
  local entries = result_files.load(o.inputs, { all = o.all })
  if o.list or o.svg then
    local ids = {}
    for _, list in ipairs(html_report.figures(entries)) do
      for _, f in ipairs(list) do
        if o.list then io.stdout:write(f.id, "\n") end
        ids[#ids + 1] = f.id
        if f.id == o.svg then
          local path = o.output or (f.id:gsub("[^%w_.=-]", "-") .. ".svg")
          report.write_text(path, f.svg .. "\n")
          return 0
        end
      end
    end
    if o.svg then
      usage(("report: no plot '%s' in these results (%d plots; --list names them)"):format(o.svg, #ids))
    end
    return 0
  end
  local path = o.output or "report.html"
  local text = html_report.render(entries, os.date("!%Y-%m-%dT%H:%M:%SZ"))
  report.write_text(path, text)
  io.stderr:write(("sfbench: report of %d result file(s) written to %s\n"):format(#entries, path))
  return 0
end
