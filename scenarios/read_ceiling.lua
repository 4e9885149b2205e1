-- What a plain streaming read reaches at the sizes a decode step reads: a user kernel (compiled
-- at run time) that reads a buffer once in 16-byte non-coherent loads, `unroll` of them in flight a
-- thread, `ctas` CTAs of 256 threads an SM striding over the buffer, timed as gemv_sweep times the
-- projections (back-to-back calls in the steady state, cycling over copies four times the L2, so
-- that every call reads from DRAM). A kernel that reads each byte once, as the GEMV and decode
-- attention do, is up against the fastest row of its size here: the TB/s of `mib` MiB read alone.
-- (The decode step's projections read 32 to 172 MiB, its attention 16 MiB to 1 GiB.)
-- On the CPU backend there are no user kernels: it times a tensor copy of the same bytes
-- instead, which exercises the sweep only.
-- Usage: sfbench read_ceiling [mib=16,32,64,96,128,172,256,512] [ctas=2,4,8] [unroll=4,8]
--        [iters=N] [sample_ms=5] [warmup_ms=100] [timeout=2]
local sf = require "sfbench"
local params = require "sfbench.params"
local bench = require "sfbench.bench"
local sweep = require "sfbench.sweep"

local dev = sf.device()
local gpu = dev.backend == "cuda"
local p = params.get(bench.steady_defaults {
  mib = gpu and { 16, 32, 64, 96, 128, 172, 256, 512 } or { 1, 2 },
  ctas = gpu and { 2, 4, 8 } or { 1 },
  unroll = gpu and { 4, 8 } or { 1 },
  timeout = gpu and 2 or 1,        -- these three as gemv_sweep's
  sample_ms = gpu and 5 or 0.2,
  warmup_ms = gpu and 100 or 0,
})
local steady = bench.steady(p)
params.whole_numbers("mib", p.mib, 1, nil, "a size in MiB, at least 1")
params.whole_numbers("ctas", p.ctas, 1, 8, "CTAs of 256 threads an SM, 1 to 8")
params.whole_numbers("unroll", p.unroll, 1, 16, "16-byte loads in flight a thread, 1 to 16")
if not gpu then
  io.stderr:write("read_ceiling: on the CPU backend there are no user kernels; a tensor copy stands in, and the timings only exercise the sweep\n")
end

-- the read: thread t of CTA c reads vectors i = (c·256·UNROLL + t) + 256·u (u < UNROLL) of each
-- stride of gridDim·256·UNROLL vectors; the xor of what it read goes out only when it is a value
-- random data all but never gives, so that the loads cannot be dropped
local SOURCE = [[
extern "C" __global__ void __launch_bounds__(256) read_once(const uint4 *p, long long n, unsigned *out)
{
    unsigned acc = 0;
    const long long stride = (long long)gridDim.x * 256 * UNROLL;
    for (long long i = (long long)blockIdx.x * 256 * UNROLL + threadIdx.x; i < n; i += stride) {
        uint4 v[UNROLL];
#pragma unroll
        for (int u = 0; u < UNROLL; u++) {
            const long long j = i + 256LL * u;
            if (j < n)
                asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
                             : "=r"(v[u].x), "=r"(v[u].y), "=r"(v[u].z), "=r"(v[u].w) : "l"(p + j));
            else
                v[u] = make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < UNROLL; u++) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
    }
    if (acc == 0x9e3779b9u) out[blockIdx.x] = acc;
}
]]
local kernels = {}
local function kernel(unroll)
  if not kernels[unroll] then
    kernels[unroll] = sf.compile(SOURCE, { options = { "-DUNROLL=" .. unroll } }):kernel("read_once")
  end
  return kernels[unroll]
end

sweep.run {
  params = p,
  points = sweep.product({ mib = p.mib, ctas = p.ctas, unroll = p.unroll }, { "mib", "ctas", "unroll" }),
  columns = { "mib", "ctas", "unroll", { key = "us", title = "µs", fmt = "%.2f" }, { key = "tbs", title = "TB/s", fmt = "%.2f" } },
  measure = function(pt)
    local bytes = pt.mib * 1024 * 1024
    local sets = bench.dram_copies(bytes)
    local bufs = {}
    for i = 1, sets do bufs[i] = sf.randn({ bytes // 2 }, "f16", { seed = i }) end
    local i = 0
    local fn
    if gpu then
      local grid = dev.sm_count * pt.ctas
      local k, out = kernel(pt.unroll), sf.tensor({ grid }, "i32")
      fn = function()
        i = i % sets + 1
        k:launch(grid, 256, { bufs[i], bytes // 16, out })
      end
    else
      local dst = sf.tensor({ bytes // 2 }, "f16")
      fn = function()
        i = i % sets + 1
        dst:copy(bufs[i])
      end
    end
    local r = bench.run({ name = ("%d MiB, %d CTAs an SM, unroll %d"):format(pt.mib, pt.ctas, pt.unroll),
      bytes = bytes, fn = fn }, steady)
    bufs = nil -- luacheck: ignore (unreachable now: the collection below frees them)
    collectgarbage()
    return { mib = pt.mib, ctas = pt.ctas, unroll = pt.unroll, bytes = bytes, copies = sets,
      us = r.stats.median * 1e3, tbs = bytes / (r.stats.median / 1e3) / 1e12 }, r
  end,
}
