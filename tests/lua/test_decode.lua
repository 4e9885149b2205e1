-- Decoding on the CPU backend: rope with per-row positions, the KV cache module (append with
-- RoPE at each row's own position, contiguous and paged, lengths that differ), attend against
-- attention over the same keys, and every bad input of decode_attention and the cache: a clear
-- error before anything is written. Run inside sfbench (tests/run-lua.sh).
-- luacheck: allow defined top
local lu = require "luaunit"
local sf = require "sfbench"
local testlib = require "testlib"
local kv_cache = require "sfbench.kv_cache"
local validate = require "sfbench.validate"
local error_of, contains, override = testlib.error_of, testlib.contains, testlib.override

local seed = validate.fresh_seed()
io.stderr:write(("test_decode: seed %d\n"):format(seed))
local draws = 0
local function randn(shape, dtype)
  draws = draws + 1
  return sf.randn(shape, dtype or "f32", { seed = seed + 7919 * draws })
end

-- got within f64's accumulation of want, all finite: compare leaves NaN and Inf in got, and
-- elements whose want is not finite, out of rel_l2, so each count must be zero as well
local function assert_same(got, want, what)
  local r = testlib.assert_finite(sf.compare(got, want), what)
  lu.assertTrue(r.rel_l2 <= 1e-12, ("%s: rel_l2 %g"):format(what, r.rel_l2))
end

-- ---- rope with positions -------------------------------------------------------------------

function test_rope_positions_turn_each_row_at_its_own_place()
  local x = randn({ 3, 2, 4, 16 }, "f64")
  local positions = { 5, 0, 1234 }
  local got = x:to("f64")
  sf.ops.rope { x = got, positions = sf.from_table(positions, { 3 }, "i32") }
  for b = 1, 3 do
    local want = x:slice(1, b, 1):to("f64")
    sf.ops.rope { x = want, pos_offset = positions[b] }
    assert_same(got:slice(1, b, 1):to("f64"), want, "row " .. b)
  end
end

function test_rope_positions_errors()
  local x = randn({ 2, 1, 1, 8 })
  contains(error_of(sf.ops.rope, { x = x, positions = sf.zeros({ 2 }, "i32"), pos_offset = 3 }), "not both")
  contains(error_of(sf.ops.rope, { x = x, positions = sf.zeros({ 3 }, "i32") }), "positions", "[3]", "[2]")
  contains(error_of(sf.ops.rope, { x = x, positions = sf.zeros({ 2 }, "f32") }), "positions", "i32")
  contains(error_of(sf.ops.rope, { x = x, positions = sf.from_table({ 0, -1 }, { 2 }, "i32") }), "positions[2] is -1")
  contains(error_of(sf.ops.rope, { x = x, positions = sf.from_table({ 0, 1 << 24 }, { 2 }, "i32") }), "2^24")
end

-- ---- the KV cache --------------------------------------------------------------------------

-- row t of sequence b of a cache layer, as [1, 1, Hkv, D]
local function cached_row(c, layer, which, b, t)
  local store = c[which][layer]
  if c.page_size then
    local page = c.table[b][t // c.page_size + 1]
    return store:slice(1, page + 1, 1):slice(2, t % c.page_size + 1, 1)
  end
  return store:slice(1, b, 1):slice(2, t + 1, 1)
end

-- append with q: k, v and q are heads of one packed buffer [B, T, H + 2Hkv, D], as a decode
-- step's QKV projection writes them; K lands in the cache turned, q turns in place, both at each
-- row's position (rope with pos_offset, a sequence at a time), and k and v are left as they were
local function check_append(page_size)
  local B, H, Hkv, D, T = 3, 4, 2, 16, 2
  local c = kv_cache.new { batch = B, capacity = 40, kv_heads = Hkv, head_dim = D, layers = 2, dtype = "f64",
    page_size = page_size, shuffle = page_size and seed or nil }
  c:extend({ 3, 17, 0 })
  local before = c:step(T)
  lu.assertEquals(before, { 3, 17, 0 })
  lu.assertEquals(c.lengths, { 3 + T, 17 + T, T })
  lu.assertEquals(c.seqlens:totable(), { 3 + T, 17 + T, T })
  local qkv = randn({ B, T, H + 2 * Hkv, D }, "f64")
  local q, k, v = qkv:slice(3, 1, H), qkv:slice(3, H + 1, Hkv), qkv:slice(3, H + Hkv + 1, Hkv)
  local q0, k0, v0 = q:to("f64"), k:to("f64"), v:to("f64")
  c:append(2, k, v, q)
  assert_same(k, k0, "k left as it was")
  assert_same(v, v0, "v left as it was")
  for b = 1, B do
    local want, want_q = k0:slice(1, b, 1):to("f64"), q0:slice(1, b, 1):to("f64")
    sf.ops.rope { x = want, pos_offset = before[b] }
    sf.ops.rope { x = want_q, pos_offset = before[b] }
    assert_same(q:slice(1, b, 1), want_q, ("q b%d"):format(b))
    for t = 0, T - 1 do
      assert_same(cached_row(c, 2, "k", b, before[b] + t), want:slice(2, t + 1, 1), ("k b%d t%d"):format(b, t))
      assert_same(cached_row(c, 2, "v", b, before[b] + t), v0:slice(1, b, 1):slice(2, t + 1, 1), ("v b%d t%d"):format(b, t))
    end
  end
  -- layer 1 was not written
  lu.assertEquals(sf.compare(c.k[1], sf.zeros(c.k[1]:shape(), "f64")).max_abs, 0)
  if page_size then
    local bt = c.block_table:totable()
    for b = 1, B do
      for j = 1, c.pages_per_seq do
        lu.assertEquals(bt[(b - 1) * c.pages_per_seq + j], c.table[b][j] or -1)
      end
    end
  end
  return c
end

-- ---- kv_append, the op under cache:append ----------------------------------------------------

-- the op's arguments: B = 2 sequences of T = 3 new tokens, 2 kv heads of 8, a contiguous cache of
-- 10 rows (or, with page, a pool of 6 pages of `page` rows and a block table of 3 pages each)
local function append_args(over, page)
  local a = { k = randn({ 2, 3, 2, 8 }), v = randn({ 2, 3, 2, 8 }), positions = sf.from_table({ 7, 0 }, { 2 }, "i32") }
  if page then
    a.k_cache, a.v_cache = sf.zeros({ 6, page, 2, 8 }), sf.zeros({ 6, page, 2, 8 })
    a.block_table = sf.from_table({ 5, 0, 2, 4, 1, 3 }, { 2, 3 }, "i32")
  else
    a.k_cache, a.v_cache = sf.zeros({ 2, 10, 2, 8 }), sf.zeros({ 2, 10, 2, 8 })
  end
  for key, val in pairs(over or {}) do a[key] = val end
  if over and over.drop then a[over.drop], a.drop = nil, nil end
  return a
end

-- refused with every fragment in the message, and nothing written: both caches and q as they were
local function expect_append_refused(over, page, ...)
  local a = append_args(over, page)
  local kc, vc, q = a.k_cache:to("f64"), a.v_cache:to("f64"), a.q and a.q:to("f64")
  contains(error_of(sf.ops.kv_append, a), "kv_append:", ...)
  lu.assertEquals(sf.compare(a.k_cache, kc).max_abs, 0, "k_cache untouched")
  lu.assertEquals(sf.compare(a.v_cache, vc).max_abs, 0, "v_cache untouched")
  if q then lu.assertEquals(sf.compare(a.q, q).max_abs, 0, "q untouched") end
end

function test_kv_append_rows_outside_the_cache()
  expect_append_refused({ positions = sf.from_table({ 8, 0 }, { 2 }, "i32") }, nil,
    "positions[1] is 8: token 3 goes to row 10, outside the cache's 10 rows a sequence")
  expect_append_refused({ positions = sf.from_table({ 0, -1 }, { 2 }, "i32"), q = randn({ 2, 3, 4, 8 }) }, nil,
    "positions[2] is -1: token 1 goes to row -1")
  -- paged: 3 pages of 4 rows a sequence; sequence 2's third page is 6, the pool has 0..5
  expect_append_refused({ block_table = sf.from_table({ 5, 0, 2, 4, 1, 6 }, { 2, 3 }, "i32"),
    positions = sf.from_table({ 0, 7 }, { 2 }, "i32") }, 4, "block_table[2][3] is 6, outside the page pool (pages 0..5)")
  expect_append_refused({ positions = sf.from_table({ 10, 0 }, { 2 }, "i32") }, 4, "outside the cache's 12 rows")
  -- pages past the rows written are not read
  local a = append_args({ block_table = sf.from_table({ 5, -1, -1, 4, 1, 99 }, { 2, 3 }, "i32"),
    positions = sf.from_table({ 1, 4 }, { 2 }, "i32") }, 4)
  sf.ops.kv_append(a)
end

function test_kv_append_shapes_dtypes_and_layout()
  expect_append_refused({ v = randn({ 2, 3, 1, 8 }) }, nil, "'v' has shape [2, 3, 1, 8]")
  expect_append_refused({ k_cache = sf.zeros({ 2, 10, 1, 8 }), v_cache = sf.zeros({ 2, 10, 1, 8 }) }, nil,
    "'k_cache' holds 1 heads of 8", "'k' has 2 of 8")
  expect_append_refused({ k_cache = sf.zeros({ 2, 10, 2, 4 }), v_cache = sf.zeros({ 2, 10, 2, 4 }) }, nil,
    "'k_cache' holds 2 heads of 4")
  expect_append_refused({ v_cache = sf.zeros({ 2, 9, 2, 8 }) }, nil, "'v_cache' has shape [2, 9, 2, 8]")
  expect_append_refused({ k_cache = sf.zeros({ 3, 10, 2, 8 }), v_cache = sf.zeros({ 3, 10, 2, 8 }) }, nil,
    "the contiguous cache 'k_cache' holds 3 sequences (dimension 1), 'k' 2")
  expect_append_refused({ k_cache = sf.zeros({ 6, 6, 2, 8 }), v_cache = sf.zeros({ 6, 6, 2, 8 }) }, 6, "page size 6",
    "power of two")
  expect_append_refused({ block_table = sf.zeros({ 3, 3 }, "i32") }, 4, "'block_table' must be [B = 2")
  expect_append_refused({ k_cache = sf.zeros({ 2, 10, 2, 8 }, "f64") }, nil, "'k_cache' has dtype f64")
  expect_append_refused({ positions = sf.zeros({ 2 }, "f32") }, nil, "'positions'", "i32")
  expect_append_refused({ positions = sf.zeros({ 3 }, "i32") }, nil, "'positions' has shape [3]")
  expect_append_refused({ q = randn({ 2, 2, 4, 8 }) }, nil, "'q' must be [B = 2, T = 3, heads, D = 8]")
  expect_append_refused({ q = randn({ 2, 3, 4, 8 }, "f64") }, nil, "'q' has dtype f64")
  expect_append_refused({ k = randn({ 2, 3, 2, 7 }), v = randn({ 2, 3, 2, 7 }) }, nil, "head dim (7", "even")
  expect_append_refused({ theta = -1 }, nil, "'theta'")
  local kc = sf.zeros({ 2, 20, 2, 8 })
  expect_append_refused({ k_cache = kc:slice(2, 1, 10), v_cache = sf.zeros({ 2, 10, 2, 8 }) }, nil,
    "'k_cache' must be a contiguous")
  local both = sf.zeros({ 2, 10, 2, 8 })
  expect_append_refused({ k_cache = both, v_cache = both }, nil, "'k_cache' overlaps 'v_cache'")
  expect_append_refused({ k_cache = both, v = both:slice(2, 1, 3) }, nil, "'k_cache' overlaps 'v'")
  expect_append_refused({ v_cache = both, k = both:slice(2, 4, 3) }, nil, "'v_cache' overlaps 'k'")
  -- q, k and v may be heads of one buffer, but not share one
  local qkv = randn({ 2, 3, 6, 8 })
  local k = qkv:slice(3, 2, 2)
  expect_append_refused({ k = k, q = k }, nil, "'q' overlaps 'k': they must be separate memory, or separate heads")
  expect_append_refused({ k = k, q = qkv:slice(3, 1, 2) }, nil, "'q' overlaps 'k'")
  expect_append_refused({ k = qkv:slice(3, 1, 2), v = qkv:slice(3, 5, 2), q = qkv:slice(3, 3, 3) }, nil,
    "'q' overlaps 'v'")
  -- fp32 positions in the angle: a cache of more than 2^24 rows a sequence is refused (a pool of
  -- one page of 32 rows, block tables 2^19 + 1 pages wide)
  local wide = sf.zeros({ 2, (1 << 19) + 1 }, "i32")
  expect_append_refused({ k_cache = sf.zeros({ 1, 32, 2, 8 }), v_cache = sf.zeros({ 1, 32, 2, 8 }), block_table = wide },
    32, "holds 16777248 rows", "2^24")
  wide = nil
  collectgarbage()
end

function test_append_contiguous() check_append(nil) end
function test_append_paged_16() check_append(16) end
function test_append_paged_across_pages() check_append(4) end -- sequence 2's step crosses a page

-- attend over the cache = attention over each sequence's keys gathered contiguously
local function check_attend(page_size)
  local B, H, Hkv, D, Nq = 2, 4, 2, 16, 3
  local c = kv_cache.new { batch = B, capacity = 64, kv_heads = Hkv, head_dim = D, dtype = "f64",
    page_size = page_size, shuffle = page_size and seed or nil }
  c:extend({ 20, 5 })
  c:step(Nq)
  c:append(1, randn({ B, Nq, Hkv, D }, "f64"), randn({ B, Nq, Hkv, D }, "f64"))
  local q = randn({ B, Nq, H, D }, "f64")
  local out = validate.poison(sf.tensor({ B, Nq, H, D }, "f64"))
  lu.assertEquals({ c:attend(1, q, out) }, { 1, "reference" })   -- one split, and the loop that ran
  for b = 1, B do
    local n = c.lengths[b]
    local kb, vb = sf.tensor({ 1, n, Hkv, D }, "f64"), sf.tensor({ 1, n, Hkv, D }, "f64")
    for t = 0, n - 1 do
      kb:slice(2, t + 1, 1):copy(cached_row(c, 1, "k", b, t))
      vb:slice(2, t + 1, 1):copy(cached_row(c, 1, "v", b, t))
    end
    local want = sf.tensor({ 1, Nq, H, D }, "f64")
    sf.ops.attention { q = q:slice(1, b, 1), k = kb, v = vb, out = want, causal = true }
    assert_same(out:slice(1, b, 1), want, "sequence " .. b)
  end
end

function test_attend_contiguous() check_attend(nil) end
function test_attend_paged() check_attend(8) end

function test_cache_refuses_past_capacity_and_changes_nothing()
  for _, ps in ipairs({ false, 16 }) do
    local c = kv_cache.new { batch = 2, capacity = 32, kv_heads = 1, head_dim = 8, dtype = "f32", page_size = ps or nil }
    c:extend({ 30, 2 })
    local bt = ps and c.block_table:totable()
    contains(error_of(c.step, c, 3), "sequence 1 of length 30", "capacity of 32")
    lu.assertEquals(c.lengths, { 30, 2 })
    lu.assertEquals(c.seqlens:totable(), { 30, 2 })
    if ps then lu.assertEquals(c.block_table:totable(), bt) end
    contains(error_of(c.append, c, 1, sf.tensor({ 2, 3, 1, 8 }), sf.tensor({ 2, 3, 1, 8 })), "follows step")
  end
end

function test_cache_pool_exhausted()
  local c = kv_cache.new { batch = 2, capacity = 64, kv_heads = 1, head_dim = 8, dtype = "f32", page_size = 16, pages = 3 }
  c:extend({ 16, 16 })
  contains(error_of(c.extend, c, { 17, 0 }), "2 more page(s)", "1 free of 3")
  lu.assertEquals(c.lengths, { 16, 16 })
end

function test_cache_checks_shapes()
  contains(error_of(kv_cache.new, { batch = 1, capacity = 8, kv_heads = 1, head_dim = 8, page_size = 48 }),
    "page size 48", "power of two")
  contains(error_of(kv_cache.new, { batch = 1, capacity = 8, kv_heads = 1, head_dim = 8, bogus = 1 }), "bogus")
  local c = kv_cache.new { batch = 2, capacity = 8, kv_heads = 2, head_dim = 8, dtype = "f32" }
  c:step(1)
  contains(error_of(c.append, c, 1, sf.tensor({ 2, 1, 4, 8 }), sf.tensor({ 2, 1, 2, 8 })), "'k' is [2, 1, 4, 8]", "kv heads=2")
  contains(error_of(c.append, c, 1, sf.tensor({ 2, 1, 2, 8 }), sf.tensor({ 2, 1, 2, 4 })), "'v'", "head dim=8")
  contains(error_of(c.append, c, 1, sf.tensor({ 2, 1, 2, 8 }, "f16"), sf.tensor({ 2, 1, 2, 8 })), "f16", "f32")
  contains(error_of(c.append, c, 2, sf.tensor({ 2, 1, 2, 8 }), sf.tensor({ 2, 1, 2, 8 })), "layer 2")
  contains(error_of(c.attend, c, 1, sf.tensor({ 2, 1, 3, 8 }), sf.tensor({ 2, 1, 3, 8 })), "'q' is [2, 1, 3, 8]")
  contains(error_of(c.attend, c, 1, sf.tensor({ 2, 1, 4, 16 }), sf.tensor({ 2, 1, 4, 16 })), "head dim=8")
end

-- ---- decode_attention's bad input ----------------------------------------------------------

-- valid arguments: B 2, Nq 2, H 4, Hkv 2, D 8, paged (page 4, 6 pages) unless contiguous
local function decode_args(over, contiguous)
  local a = { q = randn({ 2, 2, 4, 8 }), seqlens = sf.from_table({ 7, 3 }, { 2 }, "i32"),
    out = validate.poison(sf.tensor({ 2, 2, 4, 8 })) }
  if contiguous then
    a.k, a.v = randn({ 2, 10, 2, 8 }), randn({ 2, 10, 2, 8 })
  else
    a.k, a.v = randn({ 6, 4, 2, 8 }), randn({ 6, 4, 2, 8 })
    a.block_table = sf.from_table({ 5, 0, 2, 4, 1, 3 }, { 2, 3 }, "i32")
  end
  return override(a, over)
end

local function expect_refused(over, contiguous, ...)
  local a = decode_args(over, contiguous)
  contains(error_of(sf.ops.decode_attention, a), "decode_attention", ...)
  local r = sf.compare(a.out, sf.zeros(a.out:shape()))
  lu.assertEquals(r.nan, a.out:numel(), "out was written before the error")
end

function test_decode_valid_arguments_run()
  for _, contiguous in ipairs({ false, true }) do
    local a = decode_args({}, contiguous)
    lu.assertEquals(sf.ops.decode_attention(a), 1)
    lu.assertEquals(sf.compare(a.out, sf.zeros(a.out:shape())).nan, 0)
  end
end

function test_decode_seqlens_longer_than_the_cache()
  expect_refused({ seqlens = sf.from_table({ 7, 13 }, { 2 }, "i32") }, false, "seqlens[2] is 13", "longer than the cache (12")
  expect_refused({ seqlens = sf.from_table({ 11, 3 }, { 2 }, "i32") }, true, "seqlens[1] is 11", "(10 keys")
  expect_refused({ seqlens = sf.from_table({ -1, 3 }, { 2 }, "i32") }, true, "seqlens[1] is -1")
  expect_refused({ max_seqlen = 5 }, false, "seqlens[1] is 7, above max_seqlen 5")
  expect_refused({ max_seqlen = 13 }, false, "'max_seqlen' is 13")
end

function test_decode_block_table_outside_the_pool()
  expect_refused({ block_table = sf.from_table({ 5, 6, 2, 4, 1, 3 }, { 2, 3 }, "i32") }, false,
    "block_table[1][2] is 6", "outside the page pool (pages 0..5)")
  expect_refused({ block_table = sf.from_table({ 5, 0, 2, -3, 1, 3 }, { 2, 3 }, "i32") }, false, "block_table[2][1] is -3")
  -- entries past a sequence's length are not read
  local a = decode_args({ block_table = sf.from_table({ 5, 0, -1, 4, -1, 99 }, { 2, 3 }, "i32") })
  sf.ops.decode_attention(a)
  lu.assertEquals(sf.compare(a.out, sf.zeros(a.out:shape())).nan, 0)
  expect_refused({ block_table = sf.zeros({ 3, 3 }, "i32") }, false, "'block_table' must be [B = 2")
  expect_refused({ block_table = sf.zeros({ 2, 3 }, "f32") }, false, "'block_table'", "i32")
end

function test_decode_heads_and_head_dims_must_match_the_cache()
  expect_refused({ q = randn({ 2, 2, 3, 8 }), out = sf.tensor({ 2, 2, 3, 8 }):fill(0 / 0) }, false,
    "kv heads (2", "query heads (3)")
  expect_refused({ q = randn({ 2, 2, 4, 16 }), out = sf.tensor({ 2, 2, 4, 16 }):fill(0 / 0) }, false,
    "head dim of 'q' (16)", "cache's (8")
  expect_refused({ v = randn({ 6, 4, 1, 8 }) }, false, "'v' has shape [6, 4, 1, 8]")
  expect_refused({ k = randn({ 3, 10, 2, 8 }), v = randn({ 3, 10, 2, 8 }) }, true, "holds 3 sequences")
end

function test_decode_unsupported_page_size()
  expect_refused({ k = randn({ 6, 6, 2, 8 }), v = randn({ 6, 6, 2, 8 }) }, false, "page size 6", "power of two")
end

function test_decode_other_arguments()
  -- sf.limits, what the scenarios check their parameters against, is what the op takes
  local nq = sf.limits.decode_queries + 1
  expect_refused({ q = randn({ 2, nq, 4, 8 }), out = sf.tensor({ 2, nq, 4, 8 }):fill(0 / 0) }, false,
    ("1 to %d"):format(nq - 1))
  expect_refused({ splits = sf.limits.decode_splits + 1 }, false, ("to %d"):format(sf.limits.decode_splits))
  expect_refused({ seqlens = sf.from_table({ 7, 3 }, { 2 }, "f32") }, false, "'seqlens'", "i32")
  expect_refused({ seqlens = sf.zeros({ 3 }, "i32") }, false, "'seqlens' has shape [3]")
  expect_refused({ splits = -1 }, false, "'splits' is -1")
  expect_refused({ scale = -1 }, false, "'scale'")
  expect_refused({ lse = sf.tensor({ 2, 2, 4 }) }, false, "'lse' has shape")
  expect_refused({ k = randn({ 6, 4, 2, 8 }, "f64") }, false, "'k' has dtype f64")
end

return lu.LuaUnit.run()
