-- Generates the result tables of the docs from the committed reference runs under results/:
--   <!-- tables results/MACHINE --> ... <!-- /tables -->      every table of that folder
--                                                              (doc/results-MACHINE.md)
--   <!-- headline results/MACHINE --> ... <!-- /headline -->  one line a workload, ours against
--                                                              PyTorch in the same call (README.md)
--   sfbench doc/tables.lua            rewrite those sections of every page in pages=
--   sfbench doc/tables.lua check=true exit non-zero when a page is not what it would write
--   sfbench doc/tables.lua out=DIR    write the pages into DIR instead (tests/cli/tables.sh)
local sf = require "sfbench"
local cjson = require "cjson"
local lfs = require "lfs"
local params = require "sfbench.params"
local report = require "sfbench.report"

local p = params.get { check = false, root = sf.datadir, out = "",
  pages = { "README.md", "doc/results-h200.md", "doc/results-h100.md" } }

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
-- (torch_<what>-<stamp>.json beside it, from scenarios/torch/reference.py), whose columns are
-- shown only where that file exists
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

-- transformers' LlamaDecoderLayer (sdpa), eager and torch.compile'd, beside the optimized and fp8 layers
local function join_layer(rows, torch)
  local by = index(torch, function(r) return ("%s %d"):format(r.impl, r.seq) end)
  for _, r in ipairs(rows) do
    local eager, compiled = by[("transformers_sdpa %d"):format(r.seq)], by[("transformers_compile %d"):format(r.seq)]
    if r.impl == "optimized" or r.impl == "fp8" then
      if eager then r.hf_ms = eager.ms end
      if compiled then r.compile_ms, r.vs_compile = compiled.ms, compiled.ms / r.ms end
    end
  end
end
local LAYER_TORCH_COLUMNS = { { key = "hf_ms", title = "transformers ms", fmt = "%.3f" },
  { key = "compile_ms", title = "torch.compile ms", fmt = "%.3f" }, { key = "vs_compile", title = "× torch.compile", fmt = "%.3f" } }

-- SDPA decode (cuDNN and FlashAttention-2, in CUDA graphs) beside each one-token, contiguous point
local function join_decode(rows, torch)
  local by = index(torch, function(r) return ("%s %s %d %d"):format(r.impl, r.heads, r.batch, r.seq) end)
  for _, r in ipairs(rows) do
    if r.nq == 1 and r.page == 0 then
      local cudnn = by[("torch_sdpa_cudnn %s %d %d"):format(r.heads, r.batch, r.seq)]
      local fa2 = by[("torch_sdpa_flash %s %d %d"):format(r.heads, r.batch, r.seq)]
      if cudnn and cudnn.us then r.cudnn_us, r.vs_cudnn = cudnn.us, cudnn.us / r.us end
      if fa2 and fa2.us then r.fa2_us = fa2.us end
    end
  end
end

-- transformers' LlamaForCausalLM, eager and compiled (StaticCache, CUDA graphs), beside each point
local function join_model(rows, torch)
  local by = index(torch, function(r) return ("%s %s %d %d"):format(r.impl, r.phase, r.batch, r.tokens) end)
  for _, r in ipairs(rows) do
    local eager = by[("transformers_eager %s %d %d"):format(r.phase, r.batch, r.tokens)]
    local compiled = by[("transformers_static_compiled %s %d %d"):format(r.phase, r.batch, r.tokens)]
    if eager and r.model_ms then r.hf_ms = eager.ms end
    if compiled and r.model_ms then r.compiled_ms, r.vs_compiled = compiled.ms, compiled.ms / r.model_ms end
  end
end

-- a GEMM row beside PyTorch's of the same shape; an e4m3 row beside torch._scaled_mm with the
-- same accumulation (use_fast_accum or not)
local function join_gemm(rows, torch)
  local by = index(torch, function(r) return ("%s %s %d %d %d"):format(r.impl, r.dtype, r.m, r.n, r.k) end)
  for _, r in ipairs(rows) do
    local impl = r.dtype ~= "e4m3" and "torch" or r.fast_accum and "torch_scaled_mm_fast" or "torch_scaled_mm"
    local t = by[("%s %s %d %d %d"):format(impl, r.dtype, r.m, r.n, r.k)]
    if t then r.torch_ms, r.vs_torch = t.ms, t.ms / r.ms end
  end
end
local GEMM_TORCH_COLUMNS = { { key = "torch_ms", title = "PyTorch ms", fmt = "%.4f" },
  { key = "vs_torch", title = "PyTorch/sfbench", fmt = "%.3f" } }

local VIEWS = {
  { scenario = "gemm_sweep", title = "cuBLASLt GEMM on Llama-2 projection shapes",
    torch = "torch_gemm", join = join_gemm,
    columns = { "dtype", "shape", "m", "n", "k", { key = "ms", fmt = "%.4f" }, { key = "tflops", title = "TFLOP/s", fmt = "%.1f" } },
    torch_columns = GEMM_TORCH_COLUMNS },
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
    columns = ATTENTION_COLUMNS,
    torch_columns = { { key = "eager_ms", title = "PyTorch eager ms", fmt = "%.3f" }, { key = "eager_mib", title = "eager MiB", fmt = "%.0f" },
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
    columns = FFN_COLUMNS,
    torch_columns = { { key = "torch_ms", title = "PyTorch eager ms", fmt = "%.4f" }, { key = "vs_torch", title = "× PyTorch", fmt = "%.3f" } } },
  { scenario = "gqa/attention_sweep", title = "Attention, Llama-2-70B heads (64 q / 8 kv heads, GQA), B=1, fp16",
    columns = ATTENTION_COLUMNS },
  { scenario = "bf16/ffn_sweep", title = "FFN, Llama-2-7B, bf16", columns = FFN_COLUMNS },
  { scenario = "repeat/ffn_sweep", title = "The same fp16 FFN sweep, run again right after (run-to-run spread)",
    columns = FFN_COLUMNS },
  { scenario = "70b/ffn_sweep", title = "FFN, Llama-2-70B (hidden 8192, intermediate 28672), fp16", columns = FFN_COLUMNS },
  { scenario = "layer_sweep", title = "One Llama-2-7B decoder layer, B=1, fp16, causal", columns = LAYER_COLUMNS,
    torch = "torch_layer", join = join_layer, torch_columns = LAYER_TORCH_COLUMNS },
  { scenario = "repeat/layer_sweep", title = "The same Llama-2-7B layer sweep, run again right after (run-to-run spread)",
    columns = LAYER_COLUMNS },
  { scenario = "70b/layer_sweep", title = "One Llama-2-70B decoder layer (GQA), B=1, fp16, causal", columns = LAYER_COLUMNS,
    torch = "70b/torch_layer", join = join_layer, torch_columns = LAYER_TORCH_COLUMNS },
  { scenario = "gemms/layer_sweep",
    title = "The optimized Llama-2-7B layer's GEMM stages alone (qkv_proj+rope, o_proj+residual, ffn+residual)",
    columns = LAYER_COLUMNS },
  { scenario = "fp8/gemm_sweep", title = "FP8: e4m3 GEMM into bf16, cuBLASLt and ours, beside torch._scaled_mm where the same call ran it",
    torch = "fp8/torch_gemm", join = join_gemm, torch_columns = GEMM_TORCH_COLUMNS,
    columns = { "dtype", "impl", "fast_accum", "shape", "m", "n", "k", { key = "ms", fmt = "%.4f" },
      { key = "tflops", title = "TFLOP/s", fmt = "%.1f" } } },
  { scenario = "fp8/attention_sweep", title = "FP8: e4m3 attention, Llama-2-7B heads, B=1 (FLOPs counted as the 16-bit ones)",
    columns = ATTENTION_COLUMNS },
  { scenario = "fp8-f16/attention_sweep", title = "FP8: the f16 flash attention of the same build, for comparison",
    columns = ATTENTION_COLUMNS },
  -- files from before ffn_sweep's fp8_h quantized h per token, as fp8_h=dynamic does
  { scenario = "fp8/ffn_sweep", title = "FP8: e4m3 SwiGLU FFN, Llama-2-7B (fp8_h: h's scale fixed ahead, or per token)",
    missing = { fp8_h = "dynamic" }, columns = { "act", "tokens", "impl", "fp8_h", table.unpack(FFN_COLUMNS, 4) } },
  { scenario = "fp8-f16/ffn_sweep", title = "FP8: the f16 fused SwiGLU FFN of the same call, for comparison",
    columns = FFN_COLUMNS },
  { scenario = "fp8/layer_sweep", title = "FP8: one Llama-2-7B layer, optimized (fp16) and fp8 (h's scale calibrated, fixed)",
    columns = LAYER_COLUMNS, torch = "fp8/torch_layer", join = join_layer, torch_columns = LAYER_TORCH_COLUMNS },
  { scenario = "fp8-dynamic/layer_sweep", title = "FP8: the fp8 layer with h quantized per token (fp8_h=dynamic)",
    columns = LAYER_COLUMNS },
  { scenario = "memory_ops", title = "Memory-bound ops at the 4096-token Llama-2-7B shapes (bytes read + written)",
    columns = { "dtype", "op", "mode", { key = "us", title = "median µs", fmt = "%.2f" }, { key = "tbs", title = "TB/s", fmt = "%.2f" } } },
  { scenario = "read-ceiling/read_ceiling",
    title = "What a plain streaming read reaches (a user kernel of 16-byte loads, read_ceiling): the ceiling of a kernel that reads its bytes once",
    columns = { "mib", "ctas", "unroll", { key = "us", title = "µs", fmt = "%.2f" }, { key = "tbs", title = "TB/s", fmt = "%.2f" } } },
  { scenario = "launch_overhead", title = "Launch overhead: an empty kernel 10,000 times",
    columns = { "variant", { key = "us_per_launch", title = "µs/launch", fmt = "%.3f" }, { key = "ratio", title = "× C loop", fmt = "%.2f" } } },
  { scenario = "decode_sweep", title = "Decode attention over a KV cache, D = 128, fp16 (µs, TB/s of K and V read)",
    torch = "torch_decode", join = join_decode,
    columns = { "heads", "nq", "page", "batch", "seq", "launch", "splits", { key = "mb", title = "K+V MB", fmt = "%.1f" },
      { key = "us", title = "µs", fmt = "%.2f" }, { key = "tbs", title = "TB/s", fmt = "%.2f" },
      { key = "floor_us", title = "floor µs", fmt = "%.2f" }, { key = "of_floor", title = "× floor", fmt = "%.2f" } },
    torch_columns = { { key = "cudnn_us", title = "SDPA cuDNN µs", fmt = "%.2f" }, { key = "fa2_us", title = "SDPA FA2 µs", fmt = "%.2f" },
      { key = "vs_cudnn", title = "cuDNN ÷ sfbench", fmt = "%.3f" } } },
  { scenario = "decode-splits/decode_sweep",
    title = "Decode attention at forced split counts (asked; 0: the op's choice), CUDA graphs, D = 128, fp16",
    torch = "decode-splits/torch_decode", join = join_decode,
    columns = { "heads", "batch", "seq", { key = "splits_asked", title = "asked" }, "splits",
      { key = "us", title = "µs", fmt = "%.2f" }, { key = "tbs", title = "TB/s", fmt = "%.2f" },
      { key = "of_floor", title = "× floor", fmt = "%.2f" } },
    torch_columns = { { key = "cudnn_us", title = "SDPA cuDNN µs", fmt = "%.2f" }, { key = "vs_cudnn", title = "cuDNN ÷ sfbench", fmt = "%.3f" } } },
  { scenario = "decode-splits-paged/decode_sweep",
    title = "Paged decode attention (pages of 16) at forced split counts (asked; 0: the rule at fc37b56, one CTA an SM), CUDA graphs, D = 128, fp16",
    columns = { "heads", "batch", "seq", { key = "splits_asked", title = "asked" }, "splits",
      { key = "us", title = "µs", fmt = "%.2f" }, { key = "tbs", title = "TB/s", fmt = "%.2f" },
      { key = "of_floor", title = "× floor", fmt = "%.2f" } } },
  { scenario = "gemv-splits/gemv_sweep",
    title = "Decode projections of Llama-2-7B at forced GEMV split counts (asked; 0: the op's choice)",
    columns = { "proj", "m", "impl", { key = "splits_asked", title = "asked" }, "splits", { key = "us", title = "µs", fmt = "%.2f" },
      { key = "tbs", title = "TB/s", fmt = "%.2f" } } },
  { scenario = "gemv_sweep", title = "Decode projections of Llama-2-7B at M rows (µs, TB/s of weights read)",
    columns = { "proj", "m", "impl", { key = "us", title = "µs", fmt = "%.2f" }, { key = "tbs", title = "TB/s", fmt = "%.2f" },
      "splits", { key = "fastest", title = "fastest keeps" } } },
  { scenario = "model_sweep", title = "The whole Llama-2-7B: time to first token and the decode step, fp16",
    torch = "torch_model", join = join_model,
    columns = { "phase", "launch", "batch", { key = "tokens", title = "prompt/context" }, { key = "ms", fmt = "%.3f" },
      { key = "model_ms", title = "model ms", fmt = "%.3f" }, { key = "tok_s", title = "tokens/s", fmt = "%.1f" },
      { key = "floor_ms", title = "floor ms", fmt = "%.3f" }, { key = "of_floor", title = "× floor", fmt = "%.2f" }, "note" },
    torch_columns = { { key = "hf_ms", title = "transformers eager ms", fmt = "%.3f" },
      { key = "compiled_ms", title = "compiled ms", fmt = "%.3f" }, { key = "vs_compiled", title = "× compiled", fmt = "%.3f" } } },
  { scenario = "nccl_sweep", title = "Collectives over NCCL by message size (nccl-tests' algbw and busbw)",
    torch = "torch_nccl",
    join = function(rows, torch)
      local key = function(r) return ("%s %s %d %d"):format(r.op, r.dtype, r.bytes, r.world) end
      local by = index(torch, key)
      for _, r in ipairs(rows) do
        local t = by[key(r)]
        if t and t.us and r.us then r.torch_busbw, r.vs_torch = t.busbw, t.us / r.us end
      end
    end,
    columns = { "op", "dtype", { key = "bytes", fmt = "%.0f" }, "world", { key = "us", title = "µs", fmt = "%.2f" },
      { key = "algbw", title = "algbw GB/s", fmt = "%.2f" }, { key = "busbw", title = "busbw GB/s", fmt = "%.2f" }, "note" },
    torch_columns = { { key = "torch_busbw", title = "PyTorch busbw GB/s", fmt = "%.2f" },
      { key = "vs_torch", title = "PyTorch ÷ sfbench", fmt = "%.3f" } } },
  { scenario = "timing_stability", title = "Repeatability: a ~3 µs kernel measured 5 times in a row",
    columns = { "run", { key = "median_us", title = "median µs", fmt = "%.3f" }, { key = "gbs", title = "GB/s", fmt = "%.0f" },
      "samples", "stop" } },
}

-- README's headline: one line a workload, ours against what a PyTorch user would run instead,
-- both timed in the same call; a line whose files are missing is left out
local HEADLINES = {
  { scenario = "gemm_sweep", torch = "torch_gemm", what = "GEMM, bf16, 8192³", ours = "cuBLASLt, autotuned",
    theirs = "`torch.nn.functional.linear`",
    pick = function(r) return r.dtype == "bf16" and r.shape == "square" end,
    match = function(t, r) return t.dtype == r.dtype and t.m == r.m and t.n == r.n and t.k == r.k end },
  { scenario = "attention_sweep", torch = "torch_attention", what = "attention, 7B heads, N = 4096", ours = "flash",
    theirs = "SDPA, cuDNN backend",
    pick = function(r) return r.impl == "flash" and r.seq == 4096 and r.causal == false end,
    match = function(t) return t.impl == "torch_sdpa_cudnn" and t.seq == 4096 and t.causal == false end },
  { scenario = "ffn_sweep", torch = "torch_ffn", what = "SwiGLU FFN, 7B, T = 4096", ours = "fused",
    theirs = "eager",
    pick = function(r) return r.act == "swiglu" and r.impl == "fused" and r.tokens == 4096 end,
    match = function(t) return t.act == "swiglu" and t.tokens == 4096 end },
  { scenario = "layer_sweep", torch = "torch_layer", what = "Llama-2-7B layer, N = 512", ours = "optimized",
    theirs = "`LlamaDecoderLayer`, `torch.compile`",
    pick = function(r) return r.impl == "optimized" and r.seq == 512 end,
    match = function(t) return t.impl == "transformers_compile" and t.seq == 512 end },
  { scenario = "layer_sweep", torch = "torch_layer", what = "Llama-2-7B layer, N = 4096", ours = "optimized",
    theirs = "`LlamaDecoderLayer`, `torch.compile`",
    pick = function(r) return r.impl == "optimized" and r.seq == 4096 end,
    match = function(t) return t.impl == "transformers_compile" and t.seq == 4096 end },
  { scenario = "decode_sweep", torch = "torch_decode", what = "decode attention, 7B heads, B = 1, N = 4096",
    ours = "split-KV, CUDA graph", theirs = "SDPA, cuDNN backend, CUDA graph",
    pick = function(r) return r.heads == "32/32" and r.batch == 1 and r.seq == 4096 and r.page == 0 and r.nq == 1
      and r.launch == "graph" end,
    match = function(t) return t.impl == "torch_sdpa_cudnn" and t.heads == "32/32" and t.batch == 1 and t.seq == 4096 end,
    ms = function(r) return r.us and r.us / 1e3 end },
  { scenario = "model_sweep", torch = "torch_model", what = "Llama-2-7B decode step, B = 1, context 4096",
    ours = "CUDA graph", theirs = "transformers, StaticCache, `torch.compile`",
    pick = function(r) return r.phase == "decode" and r.launch == "graph" and r.batch == 1 and r.tokens == 4096 end,
    match = function(t) return t.impl == "transformers_static_compiled" and t.batch == 1 and t.tokens == 4096 end,
    ms = function(r) return r.model_ms or r.ms end },
}

local function find(rows, pred, arg)
  for _, r in ipairs(rows) do
    if pred(r, arg) then return r end
  end
end

local function results_dir(page, folder)
  local dir = p.root .. "/" .. folder
  if lfs.attributes(dir, "mode") ~= "directory" then error(("%s: no results folder %s"):format(page, folder), 0) end
  return dir, scan(dir, "", {})
end

-- where a table's figures come from: machine, day, the command, the files
local function provenance(doc, folder, file, torch_doc, torch_file)
  local dev = doc.context and doc.context.device or {}
  local line = ("%s, %s, `%s` (`%s/%s`"):format(dev.name or "?", (doc.context.time or "?"):sub(1, 10),
    doc.context.command_line or "?", folder, file)
  if torch_doc then
    line = line .. ("; PyTorch %s: `%s/%s`"):format(torch_doc.torch or "?", folder, torch_file)
  end
  return line .. ")"
end

-- every table of one results folder (relative to the source tree, e.g. results/h100)
local function tables(page, folder)
  local dir, newest = results_dir(page, folder)
  local out = { "<!-- tables " .. folder .. " -->",
    "<!-- generated by `sfbench doc/tables.lua` from " .. folder .. "/; do not edit by hand -->" }
  for _, view in ipairs(VIEWS) do
    local file = newest[view.scenario]
    if file then
      local doc = load(dir .. "/" .. file)
      local rows, columns = doc.rows, view.columns
      for _, r in ipairs(rows) do
        for k, v in pairs(view.missing or {}) do
          if r[k] == nil then r[k] = v end
        end
      end
      local torch_file = view.torch and newest[view.torch]
      local torch_doc = torch_file and load(dir .. "/" .. torch_file)
      if torch_doc then
        view.join(rows, torch_doc.rows)
        columns = table.move(view.torch_columns, 1, #view.torch_columns, #columns + 1, table.move(columns, 1, #columns, 1, {}))
      end
      out[#out + 1] = ""
      out[#out + 1] = "### " .. view.title
      out[#out + 1] = ""
      out[#out + 1] = provenance(doc, folder, file, torch_doc, torch_file)
      out[#out + 1] = ""
      out[#out + 1] = report.table(rows, columns)
    end
  end
  out[#out + 1] = "<!-- /tables -->"
  return table.concat(out, "\n")
end

-- the headline table of one results folder, and under it the files and commands of its lines
local function headline(page, folder)
  local dir, newest = results_dir(page, folder)
  local rows, sources, seen = {}, {}, {}
  for _, h in ipairs(HEADLINES) do
    local file, torch_file = newest[h.scenario], newest[h.torch]
    if file and torch_file then
      local doc, torch_doc = load(dir .. "/" .. file), load(dir .. "/" .. torch_file)
      local r = find(doc.rows, h.pick)
      local t = r and find(torch_doc.rows, h.match, r)
      local ms = h.ms or function(row) return row.ms end
      if t and ms(t) then
        rows[#rows + 1] = { what = h.what, ours = h.ours, ms = ms(r), theirs = h.theirs, torch_ms = ms(t),
          ratio = ms(t) / ms(r) }
        if not seen[file] then
          seen[file] = true
          sources[#sources + 1] = "- " .. provenance(doc, folder, file, torch_doc, torch_file)
        end
      end
    end
  end
  local out = { "<!-- headline " .. folder .. " -->",
    "<!-- generated by `sfbench doc/tables.lua` from " .. folder .. "/; do not edit by hand -->", "" }
  if #rows == 0 then
    out[#out + 1] = ("No result in %s/ has a PyTorch run beside it yet."):format(folder)
  else
    out[#out + 1] = report.table(rows, { { key = "what", title = "workload" }, { key = "ours", title = "sfbench" },
      { key = "ms", title = "ms", fmt = "%.3f" }, { key = "theirs", title = "PyTorch, same call" },
      { key = "torch_ms", title = "ms", fmt = "%.3f" }, { key = "ratio", title = "PyTorch ÷ sfbench", fmt = "%.3f" } })
    out[#out + 1] = ""
    out[#out + 1] = table.concat(sources, "\n")
  end
  out[#out + 1] = "<!-- /headline -->"
  return table.concat(out, "\n")
end

local KINDS = { tables = tables, headline = headline }

local rewritten = 0
for _, page in ipairs(p.pages) do
  local path = p.root .. "/" .. page
  local f = assert(io.open(path))
  local text = f:read("a")
  f:close()
  local sections = 0
  local updated = text:gsub("<!%-%- (%l+) ([%w_./-]+) %-%->.-<!%-%- /%1 %-%->", function(kind, folder)
    if not KINDS[kind] then return nil end
    sections = sections + 1
    return KINDS[kind](page, folder)
  end)
  if sections == 0 then
    error(page .. ": no <!-- tables results/MACHINE --> or <!-- headline results/MACHINE --> section", 0)
  end
  if p.check then
    if not report.write_text(path, updated, true) then
      error(page .. ": tables are stale; run sfbench doc/tables.lua", 0)
    end
  else
    report.write_text(p.out ~= "" and p.out .. "/" .. page:match("[^/]+$") or path, updated)
    rewritten = rewritten + sections
  end
end
if p.check then
  print("the tables match the committed results")
else
  print(("rewrote %d sections of %s"):format(rewritten, table.concat(p.pages, ", ")))
end
