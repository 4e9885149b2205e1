-- decode_attention alone over batch, context length, heads (H/Hkv), page size and query tokens:
-- median µs, TB/s of K and V read (every sequence at the full length N), and each row's floor,
-- the bytes over the peak DRAM bandwidth. Calls cycle over enough caches to be four times the
-- L2 (bench.dram_copies: 64 at most, which is under four times the L2 where a cache is under a
-- sixteenth of it), so every call reads its cache from DRAM. The caches are kv_cache modules,
-- pages handed out in a random order (page_order=ordered: in order, so that the bytes lie where a
-- contiguous cache's do).
-- Each point is timed stream-launched and, on the GPU, as CUDA-graph replays too (launch=graph:
-- bench.run{graph = true}, how a server runs a decode step and how PyTorch's reference times
-- SDPA), a row each, over the same caches.
-- Usage: sfbench decode_sweep [batch=1,8,32,64] [seq=1024,4096,16384] [heads=32/32,64/8]
--        [page=0,16] (0: contiguous, else a power of two) [page_order=random|ordered] [nq=1] (1..8)
--        [splits=0] [launch=stream,graph] [head_dim=128]
--        [dtype=f16] [peak_tbs=0] [iters=N] [sample_ms=25] [warmup_ms=500]
-- splits: KV splits a sequence is cut into; 0 lets the op choose (from B·Hkv against what the
-- GPU runs at once), a list of counts times each one too (a row's "asked" column; "splits" is
-- the count that ran, which the CPU backend's reference, one pass, leaves at 1).
-- SFBENCH_DECODE_VARIANT picks the kernel variant (kernels/decode_attention.cu); the rows
-- say which ran. peak_tbs 0 takes the peak from the device (2 × memory clock × bus width); where the device
-- does not report them, as on the CPU backend, rows have no floor.
local sf = require "sfbench"
local params = require "sfbench.params"
local bench = require "sfbench.bench"
local sweep = require "sfbench.sweep"
local kv_cache = require "sfbench.kv_cache"

local dev = sf.device()
local gpu = dev.backend == "cuda"
local p = params.get(bench.steady_defaults {
  batch = gpu and { 1, 8, 32, 64 } or { 1, 3 },
  seq = gpu and { 1024, 4096, 16384 } or { 64, 99 },
  heads = gpu and { "32/32", "64/8" } or { "4/4", "8/2" },
  page = { 0, 16 },
  page_order = "random",
  nq = { 1 },
  splits = { 0 },
  launch = gpu and { "stream", "graph" } or { "stream" },
  head_dim = gpu and 128 or 64,
  dtype = "f16",
  peak_tbs = 0,
}, { dtype = { "f16", "bf16" }, launch = { "stream", "graph" }, page_order = { "random", "ordered" } })
local steady = bench.steady(p)
bench.launches(p.launch)
-- every value checked before anything runs: a mistake is a usage error, not a failed point
local heads = {}
for _, spec in ipairs(p.heads) do
  local H, Hkv = tostring(spec):match("^(%d+)/(%d+)$")
  H, Hkv = tonumber(H), tonumber(Hkv)
  if not H or H < 1 or Hkv < 1 or H % Hkv ~= 0 then
    params.usage_error(("bad value '%s' for heads: expected H/Hkv with Hkv dividing H, e.g. 64/8"):format(tostring(spec)))
  end
  heads[spec] = { H, Hkv }
end
params.whole_numbers("batch", p.batch, 1, nil, "a batch size, at least 1")
params.whole_numbers("seq", p.seq, 1, nil, "a sequence length, at least 1")
params.whole_numbers("head_dim", p.head_dim, 2, nil, "a head dim, at least 2")
if gpu and p.head_dim ~= 64 and p.head_dim ~= 128 then  -- the GPU kernel's two (op decode_attention)
  params.usage_error(("bad value '%s' for head_dim: the GPU kernel takes 64 or 128"):format(tostring(p.head_dim)))
end
params.page_sizes("page", p.page)
params.whole_numbers("nq", p.nq, 1, sf.limits.decode_queries,
  ("1 to %d query tokens a sequence"):format(sf.limits.decode_queries))
params.split_counts("splits", p.splits, sf.limits.decode_splits)
if not gpu then
  io.stderr:write("decode_sweep: on the CPU backend the op runs its reference; the timings only exercise the sweep\n")
end

local peak, peak_from = bench.peak_dram(p.peak_tbs)

local D = p.head_dim
sweep.run {
  params = p,
  points = sweep.product({ batch = p.batch, seq = p.seq, heads = p.heads, page = p.page, nq = p.nq, splits = p.splits },
    { "heads", "nq", "page", "batch", "seq", "splits" }),
  context_extra = { peak_bytes_per_s = peak, peak_from = peak_from },
  -- batch: the batch size (by name, bench.run's calls a sample); splits: the count the op ran (the
  -- one asked is splits_asked), an outcome for compare, not a coordinate
  column_kinds = { batch = "parameter", splits = "measurement" },
  columns = { "variant", "launch", "heads", "nq", "page", "batch", "seq", { key = "splits_asked", title = "asked" }, "splits", { key = "mb", title = "K+V MB", fmt = "%.1f" },
    { key = "us", title = "median µs", fmt = "%.2f" }, { key = "tbs", title = "TB/s", fmt = "%.2f" },
    { key = "floor_us", title = "floor µs", fmt = "%.2f" }, { key = "of_floor", title = "× floor", fmt = "%.2f" } },
  measure = function(pt)
    local H, Hkv = table.unpack(heads[pt.heads])
    local B, N = pt.batch, pt.seq
    local caches, n_sets = {}, 1
    local function make(i)
      local c = kv_cache.new { batch = B, capacity = N, kv_heads = Hkv, head_dim = D, dtype = p.dtype,
        page_size = pt.page > 0 and pt.page or nil, shuffle = pt.page > 0 and p.page_order == "random" and i or nil }
      c:extend(N)
      c.k[1]:randn {}
      c.v[1]:randn {}
      return c
    end
    caches[1] = make(1)
    local bytes = caches[1]:bytes_read()
    n_sets = bench.dram_copies(bytes)
    for i = 2, n_sets do caches[i] = make(i) end
    local q = sf.randn({ B, pt.nq, H, D }, p.dtype)
    local out = sf.tensor({ B, pt.nq, H, D }, p.dtype)
    local opts = { splits = pt.splits > 0 and pt.splits or nil }
    local splits, variant = caches[1]:attend(1, q, out, opts)
    -- each launch mode (a row each) over the same caches
    local rows, res = {}, {}
    for _, launch in ipairs(p.launch) do
      local k = 0
      local r = bench.run({
        name = ("B=%d N=%d %s page %d nq %d splits %d %s"):format(B, N, pt.heads, pt.page, pt.nq, splits, launch),
        fn = function() k = k % n_sets + 1; caches[k]:attend(1, q, out, opts) end,
        bytes = bytes,
        graph = launch == "graph",
      }, steady)
      local sec = r.stats.median / 1e3
      local row = { variant = variant, launch = launch, heads = pt.heads, nq = pt.nq, page = pt.page, batch = B, seq = N,
        head_dim = D, dtype = p.dtype, splits_asked = pt.splits, splits = splits, sets = n_sets, bytes = bytes, mb = bytes / 1e6, us = sec * 1e6,
        tbs = bytes / sec / 1e12, noise = r.stats.noise, stop = r.stop_reason }
      if peak then
        row.floor_us = bytes / peak * 1e6
        row.of_floor = row.us / row.floor_us
      end
      rows[#rows + 1], res[#res + 1] = row, r
    end
    caches = nil
    q:free(); out:free()
    collectgarbage()
    return rows, res
  end,
}
