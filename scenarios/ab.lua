-- A/B in one process: two implementations of one call timed in alternating rounds (A B A B ...),
-- each round each in the steady state that the sweeps time (bench.steady: back-to-back calls for
-- warmup_ms, then samples of back-to-back calls lasting at least sample_ms). Each side's samples
-- of all rounds are pooled and compared as `sfbench compare` does (sfbench.compare: medians,
-- B/A with its 95% interval, the Mann–Whitney p-value, a verdict); the compare table is printed
-- and the result saved (rows a and b with their samples; b's row holds the comparison).
-- Alternating rounds in one process, rather than one process after the other, spread the GPU's
-- drift (clocks, temperature, other tenants) over both sides.
-- Usage: sfbench ab [op=ffn|gemm|attention] [a=IMPL] [b=IMPL] [rounds=6] [iters=N] [sample_ms=25]
--        [warmup_ms=500] [timeout=2] [alpha=0.05] [threshold=0.02] and the op's shape:
--          ffn: model=7b dtype=f16 act=gelu tokens=4096 (a, b default unfused, fused)
--          gemm: dtype=f16 m=4096 n=4096 k=4096 (cublaslt, hopper)
--          attention: model=7b dtype=f16 seq=4096 causal=false (naive, flash)
--        sfbench ab a=old.cu b=new.cu [kernel=kernel] [elements=16777216] [block=256]: two user
--          kernels (CUDA), each file's extern "C" __global__ void KERNEL(float *out,
--          const float *in, int n) over n elements, grid = ceil(n / block)
local sf = require "sfbench"
local params = require "sfbench.params"
local models = require "sfbench.models"
local bench = require "sfbench.bench"
local compare = require "sfbench.compare"
local llama = require "sfbench.llama"
local profile = require "sfbench.profile"
local report = require "sfbench.report"
local stats = require "sfbench.stats"

local gpu = sf.device().backend == "cuda"
local p = params.get(bench.steady_defaults {
  op = "ffn",
  a = "",                          -- "": the op's first default impl; a .cu file: a user kernel
  b = "",
  rounds = gpu and 6 or 2,         -- A then B, this many times
  timeout = gpu and 2 or 0.2,      -- seconds a side a round, at most (iters: samples a side a round)
  alpha = compare.ALPHA,
  threshold = compare.THRESHOLD,
  model = "7b",
  dtype = "f16",
  act = "gelu",
  tokens = gpu and 4096 or 16,
  m = gpu and 4096 or 64,
  n = gpu and 4096 or 64,
  k = gpu and 4096 or 64,
  seq = gpu and 4096 or 64,
  causal = false,
  kernel = "kernel",
  elements = gpu and 1 << 24 or 1 << 12,
  block = 256,
}, { op = { "ffn", "gemm", "attention" }, model = models.names(), dtype = { "f16", "bf16" }, act = { "gelu", "swiglu" } })
local steady = bench.steady(p) -- checks iters, timeout, sample_ms and warmup_ms
params.whole_numbers("rounds", p.rounds, 1, nil, "a count of rounds, at least 1")
for _, size in ipairs { { "tokens", "a token count" }, { "m", "a GEMM size" }, { "n", "a GEMM size" },
  { "k", "a GEMM size" }, { "seq", "a sequence length" }, { "elements", "an element count" } } do
  params.whole_numbers(size[1], p[size[1]], 1, nil, size[2] .. ", at least 1")
end
params.whole_numbers("block", p.block, 1, 1024, "threads a block, 1 to 1024")
local cfg = models.get(p.model)
if not gpu then cfg = models.scaled(cfg, 16) end

-- Each op: its default impls, the parameters of its shape, and make() -> impl -> the call.
local OPS = {
  ffn = {
    impls = { "unfused", "fused" }, shape = { "model", "dtype", "act", "tokens" },
    make = function()
      local w = llama.ffn_weights(cfg, p.act, p.dtype)
      local x, out = sf.randn({ p.tokens, cfg.hidden }, p.dtype), sf.tensor({ p.tokens, cfg.hidden }, p.dtype)
      return function(impl)
        local args = { x = x, w1 = w.w1, w2 = w.w2, w3 = w.w3, w13 = w.w13, out = out, act = p.act, impl = impl }
        return function() sf.ops.ffn(args) end
      end
    end,
  },
  gemm = {
    impls = { "cublaslt", "hopper" }, shape = { "dtype", "m", "n", "k" },
    make = function()
      local x, w = sf.randn({ p.m, p.k }, p.dtype), sf.randn({ p.n, p.k }, p.dtype, { std = 0.02 })
      local y = sf.tensor({ p.m, p.n }, p.dtype)
      return function(impl)
        local args = { a = x, b = w, c = y, transb = true, impl = impl }
        return function() sf.ops.gemm(args) end
      end
    end,
  },
  attention = {
    impls = { "naive", "flash" }, shape = { "model", "dtype", "seq", "causal" },
    make = function()
      local H, Hkv, D, N = cfg.heads, cfg.kv_heads, cfg.head_dim, p.seq
      local q, k, v = sf.randn({ 1, N, H, D }, p.dtype), sf.randn({ 1, N, Hkv, D }, p.dtype), sf.randn({ 1, N, Hkv, D }, p.dtype)
      local out = sf.tensor({ 1, N, H, D }, p.dtype)
      return function(impl)
        local args = { q = q, k = k, v = v, out = out, causal = p.causal, impl = impl }
        return function() sf.ops.attention(args) end
      end
    end,
  },
  kernel = {
    shape = { "kernel", "elements", "block" },
    make = function()
      if not gpu then
        error(("ab: a=%s b=%s are user kernels, which need the CUDA backend (running on %s)")
          :format(p.a, p.b, sf.device().backend), 0)
      end
      local x, out = sf.randn({ p.elements }, "f32"), sf.tensor({ p.elements }, "f32")
      local grid = (p.elements + p.block - 1) // p.block
      return function(file)
        local k = sf.compile(file):kernel(p.kernel)
        return function() k:launch(grid, p.block, { out, x, p.elements }) end
      end
    end,
  },
}

local user = p.a:match("%.cu$") or p.b:match("%.cu$")
if user and not (p.a:match("%.cu$") and p.b:match("%.cu$")) then
  params.usage_error("a and b must both be .cu files (two user kernels) or both impl names")
end
local op_name = user and "kernel" or p.op
local op = OPS[op_name]
local names = { a = p.a ~= "" and p.a or op.impls[1], b = p.b ~= "" and p.b or op.impls[2] }
-- the point: the op, both sides and the op's shape
local shape, shown = { op = op_name, a = names.a, b = names.b }, { "op", "a", "b" }
for _, k in ipairs(op.shape) do
  shape[k] = p[k]
  shown[#shown + 1] = k
end
-- NVTX ranges as a sweep's: the scenario, inside it the point (ncu: "ab/op=gemm a=cublaslt .../")
local _ <close> = profile.range("ab")
local call_of = op.make()
local cases = {}
for i, side in ipairs({ "a", "b" }) do
  cases[i] = { side = side, name = ("%s %s"):format(side, names[side]), fn = call_of(names[side]), samples = {},
    warnings = {} }
end

do
  local label = {}
  for i, k in ipairs(shown) do label[i] = ("%s=%s"):format(k, tostring(shape[k])) end
  local _ <close> = profile.range(table.concat(label, " "))
  for round = 1, p.rounds do
    for _, case in ipairs(cases) do
      if not sf.quiet then io.stderr:write(("[%d/%d] %s\n"):format(round, p.rounds, case.name)) end
      local r = bench.run({ name = case.name, fn = case.fn }, steady)
      table.move(r.samples, 1, #r.samples, #case.samples + 1, case.samples)
      for _, w in ipairs(r.warnings) do
        case.warnings[#case.warnings + 1] = ("round %d: %s"):format(round, w)
        if not sf.quiet then io.stderr:write("sfbench: warning: ", case.name, ": round ", round, ": ", w, "\n") end
      end
    end
  end
end

local stat = compare.samples(cases[1].samples, cases[2].samples, { alpha = p.alpha, threshold = p.threshold })
stat.params = shape

local rows, res = {}, {}
for i, case in ipairs(cases) do
  local s = stats.summary(case.samples)
  local row = { op = op_name, side = case.side, impl = names[case.side], ms = s.median, noise = s.noise, samples = s.n }
  for _, k in ipairs(op.shape) do row[k] = p[k] end
  rows[i] = row
  res[i] = { name = case.name, samples = case.samples, stats = s, warnings = case.warnings, row = i }
end
for _, k in ipairs({ "ratio", "ci_low", "ci_high", "p", "verdict" }) do rows[2][k] = stat[k] end

local columns = { "op", "side", "impl" }
for _, k in ipairs(op.shape) do columns[#columns + 1] = k end
for _, k in ipairs({ "ms", "noise", "samples", "ratio", "ci_low", "ci_high", "p", "verdict" }) do
  columns[#columns + 1] = k
end
local path = report.save("ab", { params = p, context = report.context({ model = cfg }), columns = columns,
  column_kinds = { verdict = "measurement", p = "measurement", ratio = "measurement", ci_low = "measurement",
    ci_high = "measurement" }, rows = rows, results = res, complete = true, interrupted = false })

if not sf.quiet then
  io.stdout:write(compare.table({ parameters = shown, points = { stat } }, { base = "a", new = "b" }), "\n")
  io.stderr:write(("sfbench: %d rounds, %d + %d samples; results saved to %s\n"):format(p.rounds, #cases[1].samples,
    #cases[2].samples, path))
end
