-- sfbench report RESULTS... [-o FILE] [--all] [--svg ID | --list]: one self-contained HTML page
-- of plots and tables from result files; or one of its plots alone, as an SVG file.
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
device's best measured peaks), then its context and its table. `sfbench compare --output`
documents give each point's time ratio with its interval.

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

local function parse(argv)
  local o = { inputs = {} }
  local i, only_inputs = 1, false
  while i <= #argv do
    local a = argv[i]
    local function value()
      i = i + 1
      if argv[i] == nil then usage("option " .. a .. " needs a value") end
      return argv[i]
    end
    if only_inputs or a:sub(1, 1) ~= "-" or a == "-" then o.inputs[#o.inputs + 1] = a
    elseif a == "--" then only_inputs = true
    elseif a == "-h" or a == "--help" then o.help = true
    elseif a == "-o" or a == "--output" then o.output = value()
    elseif a:match("^%-%-output=") then o.output = a:sub(10)
    elseif a == "--svg" then o.svg = value()
    elseif a:match("^%-%-svg=") then o.svg = a:sub(7)
    elseif a == "--all" then o.all = true
    elseif a == "--list" then o.list = true
    else usage(("unknown option '%s'"):format(a)) end
    i = i + 1
  end
  return o
end

return function(argv)
  local o = parse(argv)
  if o.help then
    io.stdout:write(HELP)
    return 0
  end
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
