-- The table decode_variants.sh prints last: for every point of the decode sweeps it ran, the
-- median µs and TB/s of K+V read of each variant, the fastest marked, and whether the variant
-- passed the validation (a variant that failed has no timings). Writes the table as
-- decode_variants.json into dir.
-- Usage: sfbench tests/gpu/decode_variants.lua dir=DIR variants=base,ring,... failed=ring48,...
local cjson = require "cjson"
local lfs = require "lfs"
local sf = require "sfbench"
local params = require "sfbench.params"
local report = require "sfbench.report"

local p = params.get { dir = "", variants = { "base" }, failed = "" }
if p.dir == "" then params.usage_error("dir=DIR: the folder decode_variants.sh wrote") end
local failed = {}
for v in p.failed:gmatch("[^,]+") do failed[v] = true end

-- the newest decode_sweep result under dir/variant
local function rows_of(variant)
  local dir, best, best_t = p.dir .. "/" .. variant, nil, -1
  if lfs.attributes(dir, "mode") ~= "directory" then return {} end
  for f in lfs.dir(dir) do
    if f:match("^decode_sweep.*%.json$") then
      local t = lfs.attributes(dir .. "/" .. f, "modification")
      if t > best_t then best, best_t = dir .. "/" .. f, t end
    end
  end
  if not best then return {} end
  local fh = assert(io.open(best))
  local doc = cjson.decode(fh:read("a"))
  fh:close()
  return doc.rows or {}
end

local points, order = {}, {}
for _, v in ipairs(p.variants) do
  for _, r in ipairs(failed[v] and {} or rows_of(v)) do
    local launch = r.launch or "stream"
    local key = ("%s B=%d N=%d page=%d nq=%d %s"):format(r.heads, r.batch, r.seq, r.page, r.nq, launch)
    if not points[key] then
      points[key] = { heads = r.heads, batch = r.batch, seq = r.seq, page = r.page, nq = r.nq, launch = launch,
        floor_us = r.floor_us }
      order[#order + 1] = key
    end
    points[key][v] = r
  end
end

local rows, columns = {}, { "heads", "batch", "seq", "page", "launch", { key = "floor_us", title = "floor µs", fmt = "%.1f" } }
for _, v in ipairs(p.variants) do columns[#columns + 1] = { key = v, title = v .. (failed[v] and " (FAILED)" or "") } end
columns[#columns + 1] = "best"
for _, key in ipairs(order) do
  local pt = points[key]
  local row = { heads = pt.heads, batch = pt.batch, seq = pt.seq, page = pt.page, launch = pt.launch, floor_us = pt.floor_us }
  local best, best_us = nil, math.huge
  for _, v in ipairs(p.variants) do
    local r = pt[v]
    if r then
      row[v] = ("%.1f µs %.2f TB/s s%d"):format(r.us, r.tbs, r.splits)
      row[v .. "_us"], row[v .. "_tbs"], row[v .. "_splits"] = r.us, r.tbs, r.splits
      if r.us < best_us then best, best_us = v, r.us end
    else
      row[v] = "-"
    end
  end
  row.best = best or "-"
  rows[#rows + 1] = row
end
print("decode attention variants: median µs, TB/s of K+V read, sN = splits")
report.print(rows, columns)
local doc = { params = p, variants = p.variants, failed = p.failed, rows = rows, complete = true }
local fh = assert(io.open(p.dir .. "/decode_variants.json", "w"))
fh:write(cjson.encode(doc))
fh:close()
if not sf.quiet then print(("written: %s/decode_variants.json"):format(p.dir)) end
