-- Decoding on the CUDA backend: rope with per-row positions, kv_append and the KV cache module
-- (append, attend) against the same calls on the CPU backend, and what the kernel does with contents it
-- cannot refuse without a sync: a sequence longer than the cache or with a page outside the
-- pool gets NaN rows, the other sequences their right values, with one split and with several.
-- The seed is printed; SF_TEST_SEED=N replays it. Run with --device cuda.
-- luacheck: allow defined top
local lu = require "luaunit"
local sf = require "sfbench"
local kv_cache = require "sfbench.kv_cache"
local validate = require "sfbench.validate"

local CPU = { device = "cpu" }
local seed = tonumber(os.getenv("SF_TEST_SEED") or "") or validate.fresh_seed()
io.stderr:write(("test_gpu_decode: seed %d (SF_TEST_SEED=%d replays it)\n"):format(seed, seed))

local function check(got, want, what)
  local r = validate.check(got, want)
  lu.assertTrue(r.ok, what .. ": " .. validate.describe(r))
end

-- the same values, every one finite (sf.compare leaves NaN and Inf out of max_abs)
local function same(got, want, what)
  local r = sf.compare(got, want)
  lu.assertEquals({ r.max_abs, r.nan, r.inf, r.ref_nonfinite }, { 0, 0, 0, 0 }, what .. ": max_abs, NaN, Inf, ref non-finite")
end

function test_rope_positions_match_the_cpu()
  for _, dtype in ipairs({ "f16", "bf16" }) do
    local x = sf.randn({ 5, 3, 6, 128 }, dtype, { seed = seed })
    local positions = { 0, 17, 4095, 1, 100000 }
    local want = x:to("cpu", "f64")
    sf.ops.rope { x = want, positions = sf.from_table(positions, { 5 }, "i32", CPU) }
    sf.ops.rope { x = x, positions = sf.from_table(positions, { 5 }, "i32") }
    check(x, want, "rope " .. dtype)
  end
end

-- the same cache, steps and inputs on both backends (the CPU's out is the f64 reference
-- rounded to f16 once)
function test_cache_matches_the_cpu()
  for _, ps in ipairs({ false, 16 }) do
    local caches = {}
    for i, device in ipairs({ "cuda", "cpu" }) do
      caches[i] = kv_cache.new { batch = 3, capacity = 300, kv_heads = 8, head_dim = 128, dtype = "f16",
        page_size = ps or nil, shuffle = ps and seed or nil, device = device }
      caches[i]:extend({ 200, 17, 1 })
    end
    for step = 1, 3 do
      local T, s = step == 2 and 4 or 1, seed + 10 * step
      local outs = {}
      for i, device in ipairs({ "cuda", "cpu" }) do
        local function r(shape, n) return sf.randn(shape, "f16", { seed = s + n, device = device }) end
        caches[i]:step(T)
        caches[i]:append(1, r({ 3, T, 8, 128 }, 1), r({ 3, T, 8, 128 }, 2))
        outs[i] = validate.poison(sf.tensor({ 3, T, 64, 128 }, "f16", { device = device }))
        caches[i]:attend(1, r({ 3, T, 64, 128 }, 3), outs[i])
      end
      check(outs[1], outs[2], ("attend, page %s, step %d"):format(tostring(ps), step))
    end
  end
end

-- sequence 2 is bad (too long, or a page outside the pool): NaN there, right values elsewhere
local function check_bad_marked(bad)
  local B, H, Hkv, D, ps, per = 3, 8, 2, 128, 16, 4
  local k = sf.randn({ B * per, ps, Hkv, D }, "f16", { seed = seed + 1 })
  local v = sf.randn({ B * per, ps, Hkv, D }, "f16", { seed = seed + 2 })
  local q = sf.randn({ B, 1, H, D }, "f16", { seed = seed + 3 })
  local bt, lens = {}, { 50, 40, 64 }
  for i = 1, B * per do bt[i] = i - 1 end
  if bad == "length" then lens[2] = per * ps + 1 else bt[per + 2] = B * per end
  local args = { q = q, k = k, v = v, seqlens = sf.from_table(lens, { B }, "i32"),
    block_table = sf.from_table(bt, { B, per }, "i32") }
  -- the CPU reference of the good sequences (it refuses the bad one)
  local want = sf.tensor({ B, 1, H, D }, "f64", CPU)
  local good = { 1, 3 }
  for _, b in ipairs(good) do
    local one = sf.tensor({ 1, 1, H, D }, "f64", CPU)
    sf.ops.decode_attention { q = q:slice(1, b, 1):to("cpu", "f64"), k = k:to("cpu", "f64"), v = v:to("cpu", "f64"),
      seqlens = sf.from_table({ lens[b] }, { 1 }, "i32", CPU),
      block_table = sf.from_table({ table.unpack(bt, (b - 1) * per + 1, b * per) }, { 1, per }, "i32", CPU), out = one }
    want:slice(1, b, 1):copy(one)
  end
  for _, splits in ipairs({ 1, 5 }) do
    local out = validate.poison(sf.tensor({ B, 1, H, D }, "f16"))
    local lse = validate.poison(sf.tensor({ B, H, 1 }, "f32"))
    args.out, args.lse, args.splits = out, lse, splits
    sf.ops.decode_attention(args)
    for _, b in ipairs(good) do
      check(out:slice(1, b, 1), want:slice(1, b, 1), ("%s, splits %d, sequence %d"):format(bad, splits, b))
    end
    local marked = sf.compare(out:slice(1, 2, 1), sf.zeros({ 1, 1, H, D }, "f16"))
    lu.assertEquals(marked.nan, H * D, ("%s, splits %d: sequence 2 not marked"):format(bad, splits))
    lu.assertEquals(sf.compare(lse:slice(1, 2, 1), sf.zeros({ 1, H, 1 })).nan, H)
  end
end

-- kv_append: the GPU against the CPU backend's reference, and bit for bit against what it fuses
-- (the GPU's rope on q, rope on a copy of k, and the copies into the cache), on a packed QKV
-- buffer [B, T, H + 2Hkv, D]: contiguous and paged (pages of 4, so steps cross pages), with and
-- without q, head dims 128 (16-byte vectors) and 36 (element by element)
local function append_case(dtype, D, page, with_q)
  local B, T, H, Hkv, cap = 3, 3, 8, 2, 16
  local positions = { 0, 13, 6 }
  local qkv = sf.randn({ B, T, H + 2 * Hkv, D }, dtype, { seed = seed + D })
  local function views(t) return t:slice(3, 1, H), t:slice(3, H + 1, Hkv), t:slice(3, H + Hkv + 1, Hkv) end
  local function cache(device)
    local o = { device = device }
    if not page then return sf.zeros({ B, cap, Hkv, D }, dtype, o), sf.zeros({ B, cap, Hkv, D }, dtype, o) end
    local pool = B * cap // page
    return sf.zeros({ pool, page, Hkv, D }, dtype, o), sf.zeros({ pool, page, Hkv, D }, dtype, o)
  end
  local bt
  if page then -- sequence b's pages in reverse order of the pool
    local per, ids = cap // page, {}
    for i = 1, B * per do ids[i] = B * per - i end
    bt = ids
  end
  local function run(device, composed)
    local o = { device = device }
    local buf = device == "cpu" and qkv:to("cpu", "f64") or qkv:to(dtype)
    local q, k, v = views(buf)
    local kc, vc = cache(device)
    local dt = device == "cpu" and "f64" or dtype
    if device == "cpu" then kc, vc = kc:to("f64"), vc:to("f64") end
    local pos = sf.from_table(positions, { B }, "i32", o)
    local block_table = bt and sf.from_table(bt, { B, cap // page }, "i32", o)
    if not composed then
      sf.ops.kv_append { k = k, v = v, k_cache = kc, v_cache = vc, positions = pos, block_table = block_table,
        q = with_q and q or nil }
      return kc, vc, q, buf
    end
    local kt = k:to(dt)
    sf.ops.rope { x = kt, positions = pos }
    if with_q then sf.ops.rope { x = q, positions = pos } end
    for b = 1, B do
      for t = 0, T - 1 do
        local p, dst_k, dst_v = positions[b] + t, nil, nil
        if page then
          local pg = bt[(b - 1) * (cap // page) + p // page + 1]
          dst_k, dst_v = kc:slice(1, pg + 1, 1):slice(2, p % page + 1, 1), vc:slice(1, pg + 1, 1):slice(2, p % page + 1, 1)
        else
          dst_k, dst_v = kc:slice(1, b, 1):slice(2, p + 1, 1), vc:slice(1, b, 1):slice(2, p + 1, 1)
        end
        dst_k:copy(kt:slice(1, b, 1):slice(2, t + 1, 1))
        dst_v:copy(v:slice(1, b, 1):slice(2, t + 1, 1))
      end
    end
    return kc, vc, q, buf
  end
  local what = ("kv_append %s D %d page %s%s"):format(dtype, D, tostring(page), with_q and " with q" or "")
  local kc, vc, q, buf = run("cuda")
  local ckc, cvc, cq = run("cpu")
  check(kc, ckc, what .. ": k_cache against the CPU")
  same(vc, cvc, what .. ": v_cache is v")
  if with_q then check(q, cq, what .. ": q against the CPU") end
  local _, k, v = views(buf)
  local _, k0, v0 = views(qkv)
  same(k, k0, what .. ": k left as it was")
  same(v, v0, what .. ": v left as it was")
  local xkc, xvc, xq = run("cuda", true)
  same(kc, xkc, what .. ": k_cache as rope then copy")
  same(vc, xvc, what .. ": v_cache as the copy")
  if with_q then same(q, xq, what .. ": q as rope") end
end

function test_kv_append_matches_the_cpu_and_what_it_fuses()
  for _, dtype in ipairs({ "f16", "bf16" }) do
    for _, D in ipairs({ 128, 36 }) do
      for _, page in ipairs({ false, 4 }) do
        for _, with_q in ipairs({ true, false }) do append_case(dtype, D, page or nil, with_q) end
      end
    end
  end
end

-- a row the GPU cannot write (past the cache, or on a page outside the pool) is left alone; the
-- other rows are written, K turned as rope turns it (a write outside the caches themselves is
-- memcheck's to see: tests/gpu/sanitize.sh)
function test_kv_append_skips_rows_outside_the_cache()
  local B, T, Hkv, D, cap = 2, 2, 2, 128, 8
  local k, v = sf.randn({ B, T, Hkv, D }, "f16", { seed = seed + 1 }), sf.randn({ B, T, Hkv, D }, "f16", { seed = seed + 2 })
  local positions = sf.from_table({ 7, 3 }, { 2 }, "i32")
  local kt = k:to("f16")
  sf.ops.rope { x = kt, positions = positions }
  for _, page in ipairs({ false, 4 }) do
    local shape = page and { 4, page, Hkv, D } or { B, cap, Hkv, D }
    local kc, vc = sf.zeros(shape, "f16"), sf.zeros(shape, "f16")
    local want_k, want_v = sf.zeros(shape, "f16"), sf.zeros(shape, "f16")
    -- sequence 1 at rows 7 and 8, 8 past the cache; paged, sequence 2's second page, 4, is outside the pool
    local args = { k = k, v = v, k_cache = kc, v_cache = vc, positions = positions }
    local pages = { { 0, 1 }, { 2, 4 } }
    if page then args.block_table = sf.from_table({ 0, 1, 2, 4 }, { B, 2 }, "i32") end
    sf.ops.kv_append(args)
    local function row(t, b, p)
      if not page then return t:slice(1, b, 1):slice(2, p + 1, 1) end
      local pg = pages[b][p // page + 1]
      return t:slice(1, pg + 1, 1):slice(2, p % page + 1, 1)
    end
    local written = page and { { 1, 7, 1 }, { 2, 3, 1 } } or { { 1, 7, 1 }, { 2, 3, 1 }, { 2, 4, 2 } }
    for _, w in ipairs(written) do
      local b, p, t = table.unpack(w)
      row(want_k, b, p):copy(kt:slice(1, b, 1):slice(2, t, 1))
      row(want_v, b, p):copy(v:slice(1, b, 1):slice(2, t, 1))
    end
    local what = page and "paged" or "contiguous"
    same(kc, want_k, what .. ": k_cache holds the rows inside it, and only those")
    same(vc, want_v, what .. ": v_cache holds the rows inside it, and only those")
  end
end

function test_too_long_is_marked() check_bad_marked("length") end
function test_page_outside_the_pool_is_marked() check_bad_marked("page") end

return lu.LuaUnit.run()
