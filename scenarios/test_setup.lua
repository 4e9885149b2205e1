-- Checks an install: the device, allocation, an op validated against the CPU reference,
-- user-kernel compilation (CUDA), and timing that agrees with the host clock.
-- Usage: sfbench test_setup [size=N]
local sf = require "sfbench"
local params = require "sfbench.params"
local report = require "sfbench.report"
local validate = require "sfbench.validate"

local dev = sf.device()
local p = params.get { size = dev.backend == "cuda" and 2048 or 96 }
params.whole_numbers("size", p.size, 1, nil, "a matrix size, at least 1")
local n = p.size
local checks = {}
local function record(name, ok, detail)
  checks[#checks + 1] = { check = name, ok = ok and "ok" or "FAIL", detail = detail }
end

record("device", true, ("%s (%s)%s"):format(dev.name, dev.backend,
  dev.cc and (", cc %s, %d SMs, %.1f GiB"):format(dev.cc, dev.sm_count, dev.mem_total / 2 ^ 30) or ""))

-- allocation: a tensor round-trips values, and an impossible one fails cleanly
local t = sf.from_table({ 1.5, -2, 3.25, 4 }, { 2, 2 }, "f32")
local back = t:totable()
record("allocate", back[1] == 1.5 and back[4] == 4, "4 values round-trip through " .. dev.backend)
local ok, err = pcall(sf.tensor, { dev.mem_total // 2 + 1, 4 }, "f32")
record("out of memory", not ok and tostring(err):find("out of") ~= nil, ok and "allocation succeeded" or tostring(err))

-- an op against the CPU reference: a GEMM in bf16 (f32 on the CPU backend)
local dtype = dev.backend == "cuda" and "bf16" or "f32"
local seed = validate.fresh_seed()
local a = sf.randn({ n, n }, dtype, { seed = seed })
local b = sf.randn({ n, n }, dtype, { seed = seed + 1 })
local c = sf.tensor({ n, n }, dtype)
validate.poison(c)
sf.ops.gemm { a = a, b = b, c = c }
local m = math.min(n, 128)            -- the reference on a slice keeps the CPU work small
local ref = sf.tensor({ m, n }, "f64", { device = "cpu" })
sf.ops.gemm { a = a:slice(1, 1, m):to("cpu", "f64"), b = b:to("cpu", "f64"), c = ref }
local r = validate.check(c:slice(1, 1, m), ref)
record("gemm vs reference", r.ok, ("%s %dx%dx%d, seed %d: %s"):format(dtype, n, n, n, seed, validate.describe(r)))

-- user kernels (NVRTC)
if dev.backend == "cuda" then
  local mod = sf.compile [[
extern "C" __global__ void axpy(float *y, const float *x, float alpha, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] += alpha * x[i];
}]]
  local x, y = sf.from_table({ 1, 2, 3 }, { 3 }), sf.from_table({ 10, 20, 30 }, { 3 })
  mod:launch("axpy", 1, 32, { y, x, 2.0, 3 })
  local v = y:totable()
  record("compile + launch", v[1] == 12 and v[2] == 24 and v[3] == 36, "NVRTC axpy gives " .. table.concat(v, ", "))
end

-- timing: events agree with the host clock over a long enough run
local e0, e1 = sf.event(), sf.event()
sf.sync()
local h0 = sf.now()
e0:record()
for _ = 1, 5 do sf.ops.gemm { a = a, b = b, c = c } end
e1:record()
local ev_ms = sf.elapsed(e0, e1)
local host_ms = (sf.now() - h0) * 1e3
record("timing", ev_ms > 0 and ev_ms <= host_ms * 1.05 + 0.05 and ev_ms >= host_ms * 0.5,
  ("events %.3f ms, host clock %.3f ms"):format(ev_ms, host_ms))
sf.flush_l2()
record("L2 flush", true, dev.l2_bytes and ("%d MiB written"):format(dev.l2_bytes // 2 ^ 20) or "host buffer written")

report.print(checks, { "check", "ok", "detail" })
local failed = 0
for _, ch in ipairs(checks) do if ch.ok ~= "ok" then failed = failed + 1 end end
local path = report.save("test_setup", { params = p, rows = checks, complete = true })
if not sf.quiet then print("results: " .. path) end
if failed > 0 then error(("%d check(s) failed"):format(failed), 0) end
