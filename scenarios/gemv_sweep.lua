-- The decode projections: each Linear layer of a Llama-2 model (QKV, O, gate+up, down, lm_head)
-- at M = B rows from 1 to 64, where it is bound by reading its weights once, through cuBLASLt,
-- our GEMV (gemm impl gemv) and, where it applies, our Hopper GEMM, a row each: median µs and
-- TB/s of weights read, and what impl fastest keeps for the shape (the faster of them on its
-- first call; the decode layer's projections make the same choice). Calls cycle over enough
-- copies of the weights to be four times the L2 (64 at most), so every call reads them from DRAM.
-- splits: the GEMV's k splits; 0 lets the op choose, and a list of counts times the GEMV once
-- for each (a row's "asked" column; "splits" is the count it ran, after rounding to whole chunks).
-- Usage: sfbench gemv_sweep [model=7b|13b|70b] [m=1,2,4,8,16,32,64] [proj=qkv,o,gate_up,down,lm_head]
--        [dtype=f16] [splits=0] [iters=N] [sample_ms=5] [warmup_ms=100] [timeout=2]
local sf = require "sfbench"
local params = require "sfbench.params"
local models = require "sfbench.models"
local bench = require "sfbench.bench"
local sweep = require "sfbench.sweep"

local dev = sf.device()
local gpu = dev.backend == "cuda"
local PROJS = { "qkv", "o", "gate_up", "down", "lm_head" }
local p = params.get(bench.steady_defaults {
  model = "7b",
  m = gpu and { 1, 2, 4, 8, 16, 32, 64 } or { 1, 5 },
  proj = PROJS,
  dtype = "f16",
  splits = { 0 },
  timeout = gpu and 2 or 1,        -- these three shorter than bench.steady_defaults' on the GPU
  sample_ms = gpu and 5 or 0.2,
  warmup_ms = gpu and 100 or 0,
}, { model = models.names(), dtype = { "f16", "bf16" }, proj = PROJS })
local steady = bench.steady(p)
params.split_counts("splits", p.splits, sf.limits.gemv_splits)
params.whole_numbers("m", p.m, 1, sf.limits.gemv_rows, ("rows (the decode batch), 1 to %d"):format(sf.limits.gemv_rows))
local cfg = models.get(p.model)
if not gpu then
  cfg = models.scaled(cfg, 32)
  io.stderr:write("gemv_sweep: on the CPU backend gemm runs its reference; the timings only exercise the sweep\n")
end

-- {n, k} of each projection's weight [n, k]
local d, hd = cfg.hidden, cfg.head_dim
local shapes = {
  qkv = { (cfg.heads + 2 * cfg.kv_heads) * hd, d }, o = { d, cfg.heads * hd }, gate_up = { 2 * cfg.intermediate, d },
  down = { d, cfg.intermediate }, lm_head = { cfg.vocab, d },
}
-- the rows of a point: {impl, splits asked}, the GEMV's once for each count
local impls = { { "cublaslt" } }
for _, n in ipairs(p.splits) do impls[#impls + 1] = { "gemv", n } end
if dev.hopper_kernels then impls[#impls + 1] = { "hopper" } end

sweep.run {
  params = p,
  points = sweep.product({ proj = p.proj, m = p.m }, { "proj", "m" }),
  context_extra = { model = cfg },
  columns = { "proj", "m", "n", "k", { key = "mb", title = "weights MB", fmt = "%.1f" }, "impl",
    { key = "us", title = "µs", fmt = "%.2f" }, { key = "tbs", title = "TB/s", fmt = "%.2f" },
    { key = "splits_asked", title = "asked" }, "splits",
    { key = "fastest", title = "fastest keeps" } },
  -- what fastest keeps comes of a timing on the first call: an outcome, not a parameter to match
  column_kinds = { fastest = "measurement", splits = "measurement" },
  measure = function(pt)
    local n, k = table.unpack(shapes[pt.proj])
    local m = pt.m
    local bytes = n * k * sf.tensor({ 1 }, p.dtype, { device = "cpu" }):nbytes()
    local sets = bench.dram_copies(bytes)
    local ws = {}
    for i = 1, sets do ws[i] = sf.randn({ n, k }, p.dtype, { seed = i, std = 0.02 }) end
    local x = sf.randn({ m, k }, p.dtype, { seed = 99 })
    local c = sf.tensor({ m, n }, p.dtype)
    local fastest = sf.ops.gemm { a = x, b = ws[1], c = c, transb = true, impl = "fastest" }
    local rows, rs = {}, {}
    for _, row in ipairs(impls) do
      local impl, asked = row[1], row[2]
      local call = { a = x, b = ws[1], c = c, transb = true, impl = impl, splits = asked ~= 0 and asked or nil }
      -- the Hopper GEMM takes n and k in multiples of 64 only: elsewhere it has no row
      local ok, _, splits = true, nil, nil
      if impl == "hopper" then ok = pcall(sf.ops.gemm, call) else _, splits = sf.ops.gemm(call) end
      if ok then
        local i = 0
        local r = bench.run({ name = ("%s m=%d %s%s"):format(pt.proj, m, impl, (asked or 0) > 0 and " splits " .. asked or ""), bytes = bytes, fn = function()
          i = i % sets + 1
          call.b = ws[i]
          sf.ops.gemm(call)
        end }, steady)
        rows[#rows + 1] = { proj = pt.proj, m = m, n = n, k = k, mb = bytes / 1e6, dtype = p.dtype, impl = impl,
          us = r.stats.median * 1e3, tbs = bytes / (r.stats.median / 1e3) / 1e12,
          splits_asked = asked, splits = impl == "gemv" and splits or nil, fastest = fastest }
        rs[#rs + 1] = r
      end
    end
    ws, x, c = nil, nil, nil -- luacheck: ignore (unreachable now: the collection below frees them)
    collectgarbage()
    return rows, rs
  end,
}
