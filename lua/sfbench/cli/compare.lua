-- sfbench compare BASE NEW: each point's medians, their ratio with a 95% interval, the
-- Mann–Whitney p-value and a verdict, as markdown tables (sfbench.compare holds the statistics);
-- the exit status says whether any point got slower, so CI can gate on it.
local compare = require "sfbench.compare"
local getopt = require "sfbench.getopt"
local params = require "sfbench.params"
local report = require "sfbench.report"
local lfs = require "lfs"
local result_files = require "sfbench.result_files"

local HELP = [[
Usage: sfbench compare BASE NEW [options]
Compare two sets of sfbench results point by point: is NEW faster or slower than BASE beyond noise?

  BASE, NEW          result files (JSON, as sweeps save them), or folders: the newest result of
                     each scenario in the folder
  --all              with folders, every result of each scenario (a point's samples pooled)
  --alpha A          significance level of the Mann-Whitney U test (default 0.05)
  --threshold T      the smallest change that counts, as a fraction (default 0.02, 2%)
  --params A,B,...   the parameter columns that identify a point (default: those the scenario
                     declares, else every column that is not a measurement)
  --output FILE      also write the comparison as JSON
  --strict           a different device, sfbench version or git revision is an error, not a warning
  -h, --help         show this help

Points are matched by scenario and parameter columns. For each: the medians of the kept samples,
NEW/BASE, its 95% interval (order statistics), the two-sided tie-corrected U-test p-value, and a
verdict: faster or slower when p < alpha and the interval lies wholly outside 1 +- threshold,
else same. Points found on one side only are listed apart, and so are scenarios of both sides
with no point in common (where a parameter column is a measurement, name them with --params). A
parameter column that no row of one side has, and every file of the other side has with one value,
is left out of the match where the rows stay apart without it, and said so.
Exit status: 0 nothing slower; 1 some point slower; 2 a usage or input error (one line, and no
--output file): a bad option or value, a missing file, one that is not an sfbench result or not
valid JSON, a folder with no results, two rows of a file with the same parameters, two results of
different scenarios given as a pair, no scenario in common, nothing compared (no matched point
with kept samples on both sides, in any scenario), a different context under --strict.
]]

local SPEC = {
  all = { kind = "flag" }, alpha = { kind = "number" }, threshold = { kind = "number" },
  params = { kind = "string" }, output = { kind = "string" }, strict = { kind = "flag" } }

local function list_of(s)
  local out = {}
  for item in s:gmatch("[^,]+") do out[#out + 1] = item:match("^%s*(.-)%s*$") end
  return out
end

-- The points of one side only, under a title: a table of their parameters.
local function apart(title, values, columns)
  if #values == 0 then return nil end
  return ("%s (%d):\n%s"):format(title, #values, report.table(values, columns))
end

local function text_of(cmp)
  local parts = {}
  for _, scn in ipairs(cmp.scenarios) do
    parts[#parts + 1] = ("## %s\n\nbase: %s\nnew:  %s\n\n%s"):format(scn.scenario, table.concat(scn.base, ", "),
      table.concat(scn.new, ", "), compare.table(scn))
    for _, a in ipairs(scn.set_aside) do
      parts[#parts + 1] = ("Matched without the parameter %s: only %s's rows have it, with the one value %s "
        .. "(--params names the columns otherwise)"):format(a.column, a.side, report.encode(a.value))
    end
    parts[#parts + 1] = apart("Only in base", scn.only_base, scn.parameters)
    parts[#parts + 1] = apart("Only in new", scn.only_new, scn.parameters)
  end
  if #cmp.unmatched_scenarios > 0 then
    local lines = { "Scenarios with no point in common:" }
    for _, scn in ipairs(cmp.unmatched_scenarios) do
      lines[#lines + 1] = ("- %s (base: %s; new: %s): %s"):format(scn.scenario, table.concat(scn.base, ", "),
        table.concat(scn.new, ", "), scn.hint)
    end
    parts[#parts + 1] = table.concat(lines, "\n")
  end
  if #cmp.only_base_scenarios > 0 then
    parts[#parts + 1] = "Scenarios only in base: " .. table.concat(cmp.only_base_scenarios, ", ")
  end
  if #cmp.only_new_scenarios > 0 then
    parts[#parts + 1] = "Scenarios only in new: " .. table.concat(cmp.only_new_scenarios, ", ")
  end
  parts[#parts + 1] = ("%d slower, %d faster (alpha %g, threshold %g)"):format(cmp.slower, cmp.faster, cmp.alpha,
    cmp.threshold)
  return table.concat(parts, "\n\n")
end

-- The sweep results of a file or folder: a folder's other documents (PyTorch reference rows,
-- compare output) are passed over, but a file given must be a result with samples to compare.
local function sweep_results(path, all)
  local out = {}
  for _, e in ipairs(result_files.load({ path }, { all = all })) do
    if e.kind == "result" then
      out[#out + 1] = e
    elseif lfs.attributes(path, "mode") ~= "directory" then
      params.usage_error(("%s: a %s document, not an sfbench result"):format(path,
        e.kind == "torch" and "PyTorch reference" or e.kind))
    end
  end
  if #out == 0 then params.usage_error(("%s: a folder with no sfbench results (only other documents)"):format(path)) end
  return out
end

return function(argv)
  local opts, args = getopt.parse("compare", argv, SPEC, HELP)
  if not opts then return 0 end
  if #args ~= 2 then
    params.usage_error(("compare: expected BASE and NEW, got %d argument(s) (see sfbench compare --help)"):format(#args))
  end
  local base, new = sweep_results(args[1], opts.all), sweep_results(args[2], opts.all)
  local cmp = compare.results(base, new, { alpha = opts.alpha, threshold = opts.threshold,
    params = opts.params and list_of(opts.params) })
  if cmp.mismatch then
    if opts.strict then params.usage_error(cmp.mismatch .. " (--strict)") end
    io.stderr:write("sfbench: warning: ", cmp.mismatch, "\n")
  end
  if opts.output then report.write_text(opts.output, report.encode(compare.document(cmp)) .. "\n") end
  io.stdout:write(text_of(cmp), "\n")
  return cmp.slower > 0 and 1 or 0
end
