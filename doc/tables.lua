-- Generates README.md's result tables from the committed reference runs under results/: each
-- section between <!-- tables results/MACHINE --> and <!-- /tables --> is rewritten from that folder.
--   sfbench doc/tables.lua            rewrite every such section
--   sfbench doc/tables.lua check=true exit non-zero when README.md is not what it would write
local sf = require "sfbench"
local cjson = require "cjson"
local lfs = require "lfs"
local params = require "sfbench.params"
local report = require "sfbench.report"

local p = params.get { check = false, readme = sf.datadir .. "/README.md", root = sf.datadir }

local function load(path)
  local f = assert(io.open(path))
  local doc = cjson.decode(f:read("a"))
  f:close()
  return doc
end

-- newest committed result of each scenario in dir (file names sort by time stamp), also one
-- folder down ("gqa/attention_sweep": the same scenario run with other parameters)
local function scan(dir, prefix, newest)
  for name in lfs.dir(dir) do
    local scenario = name:match("^(.-)%-%d%d%d%d%d%d%d%d%-%d%d%d%d%d%d%.json$")
    if scenario then
      scenario = prefix .. scenario
      if not newest[scenario] or prefix .. name > newest[scenario] then newest[scenario] = prefix .. name end
    elseif prefix == "" and name:sub(1, 1) ~= "." and lfs.attributes(dir .. "/" .. name, "mode") == "directory" then
      scan(dir .. "/" .. name, name .. "/", newest)
    end
  end
  return newest
end

-- how each scenario is shown: columns, and a join with the PyTorch run of the same device call
-- (torch_<what>-<stamp>.json beside it, from scenarios/torch/reference.py)
local function index(rows, key)
  local by = {}
  for _, r in ipairs(rows) do by[key(r)] = r end
  return by
end

local ATTENTION_COLUMNS = { "seq", "causal", "impl", { key = "ms", fmt = "%.4f" }, { key = "tflops", title = "TFLOP/s", fmt = "%.1f" },
  { key = "speedup", title = "× naive", fmt = "%.2f" }, { key = "scratch_mib", title = "extra MiB", fmt = "%.0f" } }
local FFN_COLUMNS = { "act", "tokens", "impl", { key = "ms", fmt = "%.4f" }, { key = "tflops", title = "TFLOP/s", fmt = "%.1f" },
  { key = "speedup", title = "× unfused", fmt = "%.3f" }, { key = "intermediate_mib", title = "intermediates MiB", fmt = "%.0f" },
  { key = "saved_mib", title = "saved MiB", fmt = "%.0f" } }
local LAYER_COLUMNS = { "seq", "impl", { key = "ms", fmt = "%.3f" }, { key = "speedup", title = "× baseline", fmt = "%.2f" },
  { key = "tflops", title = "TFLOP/s", fmt = "%.1f" }, { key = "peak_mib", title = "peak MiB", fmt = "%.0f" },
  { key = "stages", title = "stages (ms)" } }

local VIEWS = {
  { scenario = "gemm_sweep", title = "cuBLASLt GEMM on Llama-2 projection shapes",
    torch = "torch_gemm",
    join = function(rows, torch)
      local by = index(torch, function(r) return ("%s %d %d %d"):format(r.dtype, r.m, r.n, r.k) end)
      for _, r in ipairs(rows) do
        local t = by[("%s %d %d %d"):format(r.dtype, r.m, r.n, r.k)]
        if t then r.torch_ms, r.vs_torch = t.ms, t.ms / r.ms end
      end
    end,
    columns = { "dtype", "shape", "m", "n", "k", { key = "ms", fmt = "%.4f" }, { key = "tflops", title = "TFLOP/s", fmt = "%.1f" },
      { key = "torch_ms", title = "PyTorch ms", fmt = "%.4f" }, { key = "vs_torch", title = "PyTorch/sfbench", fmt = "%.3f" } } },
  { scenario = "attention_sweep", title = "Attention, Llama-2-7B heads (H=32, D=128), B=1, fp16",
    torch = "torch_attention",
    join = function(rows, torch)
      local by = index(torch, function(r) return ("%s %d %s"):format(r.impl, r.seq, r.causal) end)
      for _, r in ipairs(rows) do
        local eager = by[("torch_eager %d %s"):format(r.seq, r.causal)]
        local fa2 = by[("torch_sdpa_flash %d %s"):format(r.seq, r.causal)]
        local cudnn = by[("torch_sdpa_cudnn %d %s"):format(r.seq, r.causal)]
        if eager and r.impl ~= "naive" then r.vs_eager = eager.ms / r.ms end
        if fa2 and r.impl ~= "naive" then r.sdpa_tflops = fa2.tflops end
        if cudnn and r.impl ~= "naive" then r.cudnn_tflops = cudnn.tflops end
        if eager and r.impl == "naive" then r.eager_ms, r.eager_mib = eager.ms, eager.extra_mib end
      end
    end,
    columns = { "seq", "causal", "impl", { key = "ms", fmt = "%.4f" }, { key = "tflops", title = "TFLOP/s", fmt = "%.1f" },
      { key = "speedup", title = "× naive", fmt = "%.2f" }, { key = "scratch_mib", title = "extra MiB", fmt = "%.0f" },
      { key = "eager_ms", title = "PyTorch eager ms", fmt = "%.3f" }, { key = "eager_mib", title = "eager MiB", fmt = "%.0f" },
      { key = "vs_eager", title = "× PyTorch eager", fmt = "%.1f" }, { key = "sdpa_tflops", title = "SDPA FA2 TFLOP/s", fmt = "%.1f" },
      { key = "cudnn_tflops", title = "SDPA cuDNN TFLOP/s", fmt = "%.1f" } } },
  { scenario = "ffn_sweep", title = "FFN, Llama-2-7B (hidden 4096, intermediate 11008), fp16",
    torch = "torch_ffn",
    join = function(rows, torch)
      local by = index(torch, function(r) return ("%s %d"):format(r.act, r.tokens) end)
      for _, r in ipairs(rows) do
        local t = by[("%s %d"):format(r.act, r.tokens)]
        if t and r.impl == "fused" then r.torch_ms, r.vs_torch = t.ms, t.ms / r.ms end
      end
    end,
    columns = { "act", "tokens", "impl", { key = "ms", fmt = "%.4f" }, { key = "tflops", title = "TFLOP/s", fmt = "%.1f" },
      { key = "speedup", title = "× unfused", fmt = "%.3f" }, { key = "intermediate_mib", title = "intermediates MiB", fmt = "%.0f" },
      { key = "saved_mib", title = "saved MiB", fmt = "%.0f" }, { key = "torch_ms", title = "PyTorch eager ms", fmt = "%.4f" },
      { key = "vs_torch", title = "× PyTorch", fmt = "%.3f" } } },
  { scenario = "gqa/attention_sweep", title = "Attention, Llama-2-70B heads (64 q / 8 kv heads, GQA), B=1, fp16",
    columns = ATTENTION_COLUMNS },
  { scenario = "bf16/ffn_sweep", title = "FFN, Llama-2-7B, bf16", columns = FFN_COLUMNS },
  { scenario = "repeat/ffn_sweep", title = "The same fp16 FFN sweep, run again right after (run-to-run spread)",
    columns = FFN_COLUMNS },
  { scenario = "70b/ffn_sweep", title = "FFN, Llama-2-70B (hidden 8192, intermediate 28672), fp16", columns = FFN_COLUMNS },
  { scenario = "layer_sweep", title = "One Llama-2-7B decoder layer, B=1, fp16, causal", columns = LAYER_COLUMNS },
  { scenario = "repeat/layer_sweep", title = "The same Llama-2-7B layer sweep, run again right after (run-to-run spread)",
    columns = LAYER_COLUMNS },
  { scenario = "70b/layer_sweep", title = "One Llama-2-70B decoder layer (GQA), B=1, fp16, causal", columns = LAYER_COLUMNS },
  { scenario = "gemms/layer_sweep",
    title = "The optimized Llama-2-7B layer's GEMM stages alone (qkv_proj+rope, o_proj+residual, ffn+residual)",
    columns = LAYER_COLUMNS },
  { scenario = "memory_ops", title = "Memory-bound ops at the 4096-token Llama-2-7B shapes (bytes read + written)",
    columns = { "dtype", "op", "mode", { key = "us", title = "median µs", fmt = "%.2f" }, { key = "tbs", title = "TB/s", fmt = "%.2f" } } },
  { scenario = "launch_overhead", title = "Launch overhead: an empty kernel 10,000 times",
    columns = { "variant", { key = "us_per_launch", title = "µs/launch", fmt = "%.3f" }, { key = "ratio", title = "× C loop", fmt = "%.2f" } } },
  { scenario = "timing_stability", title = "Repeatability: a ~5 µs kernel measured 5 times in a row",
    columns = { "run", { key = "median_us", title = "median µs", fmt = "%.3f" }, { key = "gbs", title = "GB/s", fmt = "%.0f" },
      "samples", "stop" } },
}

-- the generated section for one results folder (relative to the source tree, e.g. results/h100)
local function section(folder)
  local dir = p.root .. "/" .. folder
  if lfs.attributes(dir, "mode") ~= "directory" then error(("%s: no results folder %s"):format(p.readme, folder), 0) end
  local newest = scan(dir, "", {})
  local out = { "<!-- tables " .. folder .. " -->",
    "<!-- generated by `sfbench doc/tables.lua` from " .. folder .. "/; do not edit by hand -->" }
  for _, view in ipairs(VIEWS) do
    local file = newest[view.scenario]
    if file then
      local doc = load(dir .. "/" .. file)
      local rows = doc.rows
      if view.torch and newest[view.torch] then view.join(rows, load(dir .. "/" .. newest[view.torch]).rows) end
      local dev = doc.context and doc.context.device or {}
      out[#out + 1] = ""
      out[#out + 1] = "### " .. view.title
      out[#out + 1] = ""
      out[#out + 1] = ("%s, %s, `%s` (`%s/%s`)"):format(dev.name or "?", (doc.context.time or "?"):sub(1, 10),
        doc.context.command_line or "?", folder, file)
      out[#out + 1] = ""
      out[#out + 1] = report.table(rows, view.columns)
    end
  end
  out[#out + 1] = "<!-- /tables -->"
  return table.concat(out, "\n")
end

local f = assert(io.open(p.readme))
local text = f:read("a")
f:close()
local sections = 0
local updated = text:gsub("<!%-%- tables ([%w_./-]+) %-%->.-<!%-%- /tables %-%->", function(folder)
  sections = sections + 1
  return section(folder)
end)
if sections == 0 then error(p.readme .. ": no <!-- tables results/MACHINE --> ... <!-- /tables --> section", 0) end
if p.check then
  if not report.write_text(p.readme, updated, true) then
    error(p.readme .. ": tables are stale; run sfbench doc/tables.lua", 0)
  end
  print("README tables match the committed results")
else
  report.write_text(p.readme, updated)
  print(("rewrote %d table sections of %s"):format(sections, p.readme))
end
