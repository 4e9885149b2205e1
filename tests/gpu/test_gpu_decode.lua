-- Decoding on the CUDA backend: rope with per-row positions and the KV cache module (append,
-- attend) against the same calls on the CPU backend, and what the kernel does with contents it
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

function test_too_long_is_marked() check_bad_marked("length") end
function test_page_outside_the_pool_is_marked() check_bad_marked("page") end

return lu.LuaUnit.run()
