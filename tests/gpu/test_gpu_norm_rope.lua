-- rmsnorm, add_rmsnorm, rope, linear_rope and add on the CUDA backend against the CPU references, on fresh
-- random inputs (the seed is printed; SF_TEST_SEED=N replays it), outputs poisoned with NaN,
-- odd token counts (1, 17, 1000, 4097), row lengths that take each kernel path (16-byte vectors
-- at 1, 2 or 4 per thread, scalar), strided and misaligned views; the norms' e4m3 output with
-- each row's scale too. Two references each:
--  - f64 on the CPU: the bound is validate.bounds' relative L2 (f16 2e-3, bf16 1.6e-2);
--  - the same dtype on the CPU (the op's exact definition, double math rounded once): the GPU's
--    fp32 math may differ from it only by rare one-ulp roundings, so the bound is 16× tighter.
--    It catches semantic slips (say, normalising the unrounded residual sum) that hide under
--    the first bound.
-- Run with --device cuda.
-- luacheck: allow defined top
local lu = require "luaunit"
local sf = require "sfbench"
local testlib = require "testlib"
local error_of, contains, assert_same = testlib.error_of, testlib.contains, testlib.assert_same
local validate = require "sfbench.validate"

local CPU = { device = "cpu" }
local DTYPES = { "f16", "bf16" }
local TIGHT = 16

local seed = tonumber(os.getenv("SF_TEST_SEED") or "") or validate.fresh_seed()
io.stderr:write(("test_gpu_norm_rope: seed %d (SF_TEST_SEED=%d replays it)\n"):format(seed, seed))
local draws = 0
local function next_seed()
  draws = draws + 1
  return seed + 7919 * draws
end

local function randn(shape, dtype, std)
  return sf.randn(shape, dtype, { seed = next_seed(), std = std or 1 })
end

local function cpu(t, dtype)
  return t:to("cpu", dtype or t:dtype())
end

-- got (on the GPU) against the f64 reference and the same-dtype one
local function check(got, ref64, ref_same, what)
  local dt = got:dtype()
  local r = validate.check(got, ref64)
  local detail = ("%s [seed %d]: %s"):format(what, seed, validate.describe(r))
  lu.assertTrue(r.ok, detail)
  lu.assertTrue(r.ref_norm > 0, detail)
  if ref_same then
    local bound = validate.bounds[dt] / TIGHT
    local rs = sf.compare(got, ref_same)
    lu.assertTrue(rs.rel_l2 <= bound, ("%s [seed %d]: against the %s CPU reference rel_l2 %.3g (bound %.3g), max_abs %.3g")
      :format(what, seed, dt, rs.rel_l2, bound, rs.max_abs))
  end
end

-- ---------------------------------------------------------------------------------------------

-- {T, H}: the odd token counts at Llama-2-7B's hidden size, and row lengths for each kernel
-- path: 128 (one vector per thread, 16 threads), 4104 (4 per thread, a partial warp), 5120
-- (13B), 8192 (70B), 33 (scalar: not a multiple of 8), 40000 (scalar: too long for registers)
local NORM_SHAPES = { { 1, 4096 }, { 17, 4096 }, { 1000, 4096 }, { 4097, 4096 }, { 17, 128 }, { 1000, 4104 },
  { 17, 5120 }, { 4097, 1024 }, { 17, 8192 }, { 17, 33 }, { 5, 40000 } }

-- Far outside what a norm of these inputs can reach: marks out's buffer around its window.
local SENTINEL = -30000

-- x [T, H] and out [T, H] (NaN), dense or windows of wider buffers; returns x, out and out's buffer
local function norm_operands(dt, T, H, layout)
  if layout == "dense" then return randn({ T, H }, dt), sf.tensor({ T, H }, dt):fill(0 / 0) end
  -- "aligned": windows at column 9 of rows 8 elements longer (16-byte aligned, row stride % 8 = 0);
  -- "misaligned": at column 2 of rows 3 longer (2-byte offset, odd row stride): the scalar path
  local pad, col = 8, 9
  if layout == "misaligned" then pad, col = 3, 2 end
  local xb = randn({ T, H + pad }, dt)
  local ob = sf.tensor({ T, H + pad }, dt):fill(SENTINEL)
  local out = ob:slice(2, col, H):fill(0 / 0)
  return xb:slice(2, col, H), out, ob
end

TestRmsnorm = {}

function TestRmsnorm.test_against_cpu()
  for _, dt in ipairs(DTYPES) do
    for _, s in ipairs(NORM_SHAPES) do
      local T, H = s[1], s[2]
      local x, out = norm_operands(dt, T, H, "dense")
      local w = randn({ H }, dt, 0.5)
      sf.ops.rmsnorm { x = x, weight = w, out = out }
      local r64 = sf.tensor({ T, H }, "f64", CPU)
      sf.ops.rmsnorm { x = cpu(x, "f64"), weight = cpu(w, "f64"), out = r64 }
      local rs = sf.tensor({ T, H }, dt, CPU)
      sf.ops.rmsnorm { x = cpu(x), weight = cpu(w), out = rs }
      check(out, r64, rs, ("rmsnorm %s T=%d H=%d"):format(dt, T, H))
    end
  end
end

-- e4m3 codes a and b (tables of values) differing only where one fp32 rounding of the value
-- before quantizing crossed a rounding boundary: by at most one step of e4m3, in at most one
-- element in a thousand; returns the count that differ
local function assert_e4m3_close(a, b, what)
  local diff = 0
  for i = 1, #a do
    if a[i] ~= b[i] then
      diff = diff + 1
      local m = math.max(math.abs(a[i]), math.abs(b[i]))
      local step = m >= 2 ^ -6 and 2 ^ (math.floor(math.log(m, 2)) - 3) or 2 ^ -9 -- e4m3's spacing at m
      lu.assertTrue(math.abs(a[i] - b[i]) <= step, ("%s: element %d is %g against %g"):format(what, i, a[i], b[i]))
    end
  end
  lu.assertTrue(diff <= #a // 1000 + 1, ("%s: %d of %d elements differ"):format(what, diff, #a))
  return diff
end

-- the GPU's row scales against the CPU's: no NaN, and within 2^-20 of the largest (fp32's rounding)
local function assert_scales_close(scale, scale_cpu, what)
  local r = sf.compare(scale, scale_cpu)
  lu.assertEquals(r.nan, 0, what .. ": scales")
  lu.assertTrue(r.max_abs <= 2 ^ -20 * sf.compare(sf.zeros(scale_cpu:shape(), "f32", CPU), scale_cpu).max_abs,
    what .. ": scales")
end

-- out_scale: rmsnorm and add_rmsnorm writing e4m3 with each row's scale, against the CPU's of
-- the same inputs (double math): the scales to fp32's rounding, the codes as assert_e4m3_close
-- says; the vector path (H a multiple of 8: 1 or 2 vectors a thread, 2 with 1024 threads at 16384) and
-- the scalar one (33, 16392 past the vector path's 2048 vectors, 40000, a misaligned window)
function TestRmsnorm.test_e4m3_out_against_cpu()
  for _, dt in ipairs(DTYPES) do
    for _, s in ipairs({ { 17, 4096 }, { 1000, 4104 }, { 1, 128 }, { 3, 16384 }, { 17, 33 }, { 3, 16392 }, { 5, 40000 } }) do
      for _, fused in ipairs({ false, true }) do
        local T, H = s[1], s[2]
        local x, w = randn({ T, H }, dt), randn({ H }, dt, 0.5)
        local res = fused and randn({ T, H }, dt) or nil
        local res_cpu = res and cpu(res)
        local op = fused and sf.ops.add_rmsnorm or sf.ops.rmsnorm
        local q, scale = sf.tensor({ T, H }, "e4m3"):fill(0 / 0), sf.tensor({ T }, "f32"):fill(0 / 0)
        op { x = x, residual = res, weight = w, out = q, out_scale = scale }
        local q_cpu, scale_cpu = sf.tensor({ T, H }, "e4m3", CPU), sf.tensor({ T }, "f32", CPU)
        op { x = cpu(x), residual = res_cpu, weight = cpu(w), out = q_cpu, out_scale = scale_cpu }
        local what = ("%s %s T=%d H=%d e4m3 out [seed %d]"):format(fused and "add_rmsnorm" or "rmsnorm", dt, T, H, seed)
        assert_scales_close(scale, scale_cpu, what)
        assert_e4m3_close(q:totable(), q_cpu:totable(), what)
        if fused then assert_same(cpu(res), res_cpu, what .. ": the residual") end
      end
    end
    -- a window of a wider e4m3 buffer at an odd column: the scalar kernel
    local T, H = 17, 4096
    local x, w = randn({ T, H }, dt), randn({ H }, dt, 0.5)
    local qb = sf.tensor({ T, H + 3 }, "e4m3"):fill(0 / 0)
    local q, scale = qb:slice(2, 2, H), sf.tensor({ T }, "f32"):fill(0 / 0)
    sf.ops.rmsnorm { x = x, weight = w, out = q, out_scale = scale }
    local q_cpu, scale_cpu = sf.tensor({ T, H }, "e4m3", CPU), sf.tensor({ T }, "f32", CPU)
    sf.ops.rmsnorm { x = cpu(x), weight = cpu(w), out = q_cpu, out_scale = scale_cpu }
    assert_e4m3_close(q:to("cpu"):totable(), q_cpu:totable(), dt .. " e4m3 out, misaligned window")
    assert_scales_close(scale, scale_cpu, dt .. " e4m3 out, misaligned window")
    lu.assertEquals(sf.compare(qb:slice(2, 1, 1), qb:slice(2, 1, 1)).nan, T, "the column before the window was written")
    lu.assertEquals(sf.compare(qb:slice(2, H + 2, 2), qb:slice(2, H + 2, 2)).nan, 2 * T, "the columns after the window were written")
  end
end

function TestRmsnorm.test_views_in_place_and_eps()
  for _, dt in ipairs(DTYPES) do
    for _, layout in ipairs({ "aligned", "misaligned" }) do
      for _, s in ipairs({ { 17, 4096 }, { 1000, 256 }, { 1, 4096 } }) do
        local T, H = s[1], s[2]
        local x, out, ob = norm_operands(dt, T, H, layout)
        local w = randn({ H }, dt, 0.5)
        sf.ops.rmsnorm { x = x, weight = w, out = out, eps = 1e-6 }
        local r64 = sf.tensor({ T, H }, "f64", CPU)
        sf.ops.rmsnorm { x = cpu(x, "f64"), weight = cpu(w, "f64"), out = r64, eps = 1e-6 }
        local rs = sf.tensor({ T, H }, dt, CPU)
        sf.ops.rmsnorm { x = cpu(x), weight = cpu(w), out = rs, eps = 1e-6 }
        local what = ("rmsnorm %s %s T=%d H=%d"):format(dt, layout, T, H)
        check(out, r64, rs, what)
        -- nothing outside the window was written
        local total = ob:to("cpu", "f64"):totable()
        local kept, written = total[1], 0 -- column 1 is outside both windows
        for _, v in ipairs(total) do if v ~= kept then written = written + 1 end end
        lu.assertTrue(math.abs(kept - SENTINEL) < 200, what .. ": column 1 was written")
        lu.assertEquals(written, T * H, what .. ": writes outside out")
        -- in place on the view
        local before = cpu(x, "f64")
        sf.ops.rmsnorm { x = x, weight = w, out = x, eps = 1e-6 }
        local r2 = sf.tensor({ T, H }, "f64", CPU)
        sf.ops.rmsnorm { x = before, weight = cpu(w, "f64"), out = r2, eps = 1e-6 }
        check(x, r2, nil, what .. " in place")
      end
    end
  end
  -- a large eps dominates: out ≈ x·w/sqrt(eps)
  local x = randn({ 3, 64 }, "f16", 0.01)
  local out = sf.tensor({ 3, 64 }, "f16"):fill(0 / 0)
  local w = randn({ 64 }, "f16")
  sf.ops.rmsnorm { x = x, weight = w, out = out, eps = 4 }
  local r64 = sf.tensor({ 3, 64 }, "f64", CPU)
  sf.ops.rmsnorm { x = cpu(x, "f64"), weight = cpu(w, "f64"), out = r64, eps = 4 }
  check(out, r64, nil, "rmsnorm f16 eps 4")
end

TestAddRmsnorm = {}

function TestAddRmsnorm.test_against_cpu()
  for _, dt in ipairs(DTYPES) do
    for _, s in ipairs(NORM_SHAPES) do
      local T, H = s[1], s[2]
      local x, out = norm_operands(dt, T, H, "dense")
      local res = randn({ T, H }, dt, 4)
      local w = randn({ H }, dt, 0.5)
      local res64, res_same = cpu(res, "f64"), cpu(res)
      sf.ops.add_rmsnorm { x = x, residual = res, weight = w, out = out }
      local r64 = sf.tensor({ T, H }, "f64", CPU)
      sf.ops.add_rmsnorm { x = cpu(x, "f64"), residual = res64, weight = cpu(w, "f64"), out = r64 }
      local rs = sf.tensor({ T, H }, dt, CPU)
      sf.ops.add_rmsnorm { x = cpu(x), residual = res_same, weight = cpu(w), out = rs }
      local what = ("add_rmsnorm %s T=%d H=%d"):format(dt, T, H)
      check(out, r64, rs, what .. " out")
      check(res, res64, res_same, what .. " residual")
    end
  end
end

function TestAddRmsnorm.test_same_bits_as_add_then_rmsnorm()
  for _, dt in ipairs(DTYPES) do
    for _, s in ipairs({ { 17, 4096 }, { 1000, 5120 }, { 4097, 33 } }) do
      local T, H = s[1], s[2]
      local x, w = randn({ T, H }, dt), randn({ H }, dt)
      local r1 = randn({ T, H }, dt)
      local r2 = r1:to(dt)
      local fused, unfused = sf.tensor({ T, H }, dt):fill(0 / 0), sf.tensor({ T, H }, dt):fill(0 / 0)
      sf.ops.add_rmsnorm { x = x, residual = r1, weight = w, out = fused }
      sf.ops.add { a = x, b = r2, out = r2 }
      sf.ops.rmsnorm { x = r2, weight = w, out = unfused }
      local what = ("%s T=%d H=%d"):format(dt, T, H)
      assert_same(r1, r2, what .. ": residual")
      assert_same(fused, unfused, what .. ": out")
    end
  end
end

function TestAddRmsnorm.test_views_and_out_is_x()
  for _, dt in ipairs(DTYPES) do
    for _, layout in ipairs({ "aligned", "misaligned" }) do
      local T, H = 17, 4096
      local x, _, _ = norm_operands(dt, T, H, layout)
      local rb = randn({ T, H + 16 }, dt)
      local res = layout == "aligned" and rb:slice(2, 9, H) or rb:slice(2, 4, H)
      local w = randn({ H }, dt, 0.5)
      local x64, res64 = cpu(x, "f64"), cpu(res, "f64")
      sf.ops.add_rmsnorm { x = x, residual = res, weight = w, out = x }
      local r64 = sf.tensor({ T, H }, "f64", CPU)
      sf.ops.add_rmsnorm { x = x64, residual = res64, weight = cpu(w, "f64"), out = r64 }
      check(x, r64, nil, ("add_rmsnorm %s %s, out = x"):format(dt, layout))
      check(res, res64, nil, ("add_rmsnorm %s %s residual"):format(dt, layout))
    end
  end
end

TestRope = {}

-- {B, N, Hq, Hkv, D}: a packed QKV [B, N, Hq + 2Hkv, D] whose q and k heads are rotated through
-- one view; D = 6, 2 and 24 (half not a multiple of 8) take the scalar path
local ROPE_SHAPES = { { 1, 1, 32, 32, 128 }, { 1, 17, 32, 32, 128 }, { 2, 1000, 8, 2, 128 }, { 1, 4097, 8, 8, 64 },
  { 1, 4096, 32, 32, 128 }, { 3, 17, 4, 1, 6 }, { 1, 33, 3, 1, 80 }, { 1, 17, 2, 2, 2 }, { 2, 19, 5, 5, 24 } }

local function rope_case(dt, s, pos_offset, theta, what)
  local B, N, Hq, Hkv, D = table.unpack(s)
  local Ht = Hq + 2 * Hkv
  local qkv = randn({ B, N, Ht, D }, dt)
  local qk, v = qkv:slice(3, 1, Hq + Hkv), qkv:slice(3, Hq + Hkv + 1, Hkv)
  local v_before = cpu(v)
  local r64, rs = cpu(qk, "f64"), cpu(qk)
  sf.ops.rope { x = qk, pos_offset = pos_offset, theta = theta }
  sf.ops.rope { x = r64, pos_offset = pos_offset, theta = theta }
  sf.ops.rope { x = rs, pos_offset = pos_offset, theta = theta }
  what = ("rope %s B=%d N=%d heads %d+%d of %d D=%d pos_offset=%d%s"):format(dt, B, N, Hq, Hkv, Ht, D, pos_offset,
    what or "")
  check(qk, r64, rs, what)
  assert_same(v, v_before, what .. ": v heads must be untouched")
end

function TestRope.test_packed_qkv_against_cpu()
  for _, dt in ipairs(DTYPES) do
    for i, s in ipairs(ROPE_SHAPES) do
      -- prefill from 0; decode-like offsets; and offsets near 10^6, where even the slowest pair
      -- turns by ~100 rad, so an element left unrotated is a large error
      rope_case(dt, s, 0)
      rope_case(dt, s, (seed + i) % 3000 + 1)
      if s[2] < 4096 then rope_case(dt, s, 900000 + (seed + 13 * i) % 100000) end
    end
  end
end

function TestRope.test_theta_and_views()
  for _, dt in ipairs(DTYPES) do
    rope_case(dt, { 1, 17, 32, 8, 128 }, 5, 500000, " theta 5e5")
    rope_case(dt, { 1, 17, 4, 4, 128 }, 5, 1e6, " theta 1e6")
    -- the k heads alone: the view starts inside the row (16-byte aligned when D·Hq·2 is)
    local qkv = randn({ 1, 1000, 12, 64 }, dt)
    local k = qkv:slice(3, 5, 4)
    local r64, rs = cpu(k, "f64"), cpu(k)
    sf.ops.rope { x = k, pos_offset = 77 }
    sf.ops.rope { x = r64, pos_offset = 77 }
    sf.ops.rope { x = rs, pos_offset = 77 }
    check(k, r64, rs, dt .. " rope on the k heads alone")
    -- a misaligned base (one element into a buffer): the scalar path with D = 64
    local flat = randn({ 1 + 17 * 6 * 64 }, dt)
    local x = flat:slice(1, 2, 17 * 6 * 64):view({ 1, 17, 6, 64 })
    r64, rs = cpu(x, "f64"), cpu(x)
    sf.ops.rope { x = x, pos_offset = 4000 }
    sf.ops.rope { x = r64, pos_offset = 4000 }
    sf.ops.rope { x = rs, pos_offset = 4000 }
    check(x, r64, rs, dt .. " rope misaligned")
    -- a dense 4-D tensor (no view), on a stream
    local st = sf.stream()
    local y = randn({ 2, 17, 3, 128 }, dt)
    r64 = cpu(y, "f64")
    sf.ops.rope { x = y, pos_offset = 9, stream = st }
    st:sync()
    sf.ops.rope { x = r64, pos_offset = 9 }
    check(y, r64, nil, dt .. " rope dense on a stream")
  end
end

TestAdd = {}

function TestAdd.test_against_cpu()
  for _, dt in ipairs(DTYPES) do
    for _, shape in ipairs({ { 1, 4096 }, { 17, 4096 }, { 1000, 4096 }, { 4097, 4096 }, { 4097, 33 }, { 3, 5, 7 }, { 1 } }) do
      local a, b = randn(shape, dt), randn(shape, dt)
      local numel = 1
      for _, n in ipairs(shape) do numel = numel * n end
      -- one element can cancel exactly (b = -a: about one seed in a thousand in bf16), and a zero
      -- reference compares nothing
      if numel == 1 and a:to("cpu", "f64"):totable()[1] + b:to("cpu", "f64"):totable()[1] == 0 then b:fill(0.5) end
      local out = sf.tensor(shape, dt):fill(0 / 0)
      sf.ops.add { a = a, b = b, out = out }
      local r64 = sf.tensor(shape, "f64", CPU)
      sf.ops.add { a = cpu(a, "f64"), b = cpu(b, "f64"), out = r64 }
      local rs = sf.tensor(shape, dt, CPU)
      sf.ops.add { a = cpu(a), b = cpu(b), out = rs }
      local what = ("add %s %d elements"):format(dt, numel)
      check(out, r64, rs, what)
      -- in place, both ways: a = a + b (the same as out), then b = b + out
      local b64, out64 = cpu(b, "f64"), cpu(out, "f64")
      sf.ops.add { a = a, b = b, out = a }
      assert_same(a, out, what .. ": out = a")
      sf.ops.add { a = b, b = out, out = b }
      sf.ops.add { a = b64, b = out64, out = r64 }
      check(b, r64, nil, what .. ": out = b")
    end
  end
end

function TestAdd.test_views()
  for _, dt in ipairs(DTYPES) do
    -- column windows (aligned and not), a 3-D window, and a misaligned flat slice
    local cases = {
      function() return randn({ 1000, 4104 }, dt):slice(2, 9, 4096), randn({ 1000, 4096 }, dt),
          sf.tensor({ 1000, 4112 }, dt):slice(2, 17, 4096) end,
      function() return randn({ 17, 4099 }, dt):slice(2, 2, 4096), randn({ 17, 4097 }, dt):slice(2, 2, 4096),
          sf.tensor({ 17, 4096 }, dt) end,
      function() return randn({ 4, 6, 40 }, dt):slice(2, 2, 4), randn({ 4, 4, 40 }, dt),
          sf.tensor({ 5, 4, 40 }, dt):slice(1, 2, 4) end,
      function() return randn({ 1001 }, dt):slice(1, 2, 1000), randn({ 1000 }, dt), sf.tensor({ 1000 }, dt) end,
      -- one column of a matrix: [4097, 1] with a row stride of 8
      function() return randn({ 4097, 8 }, dt):slice(2, 3, 1), randn({ 4097, 1 }, dt), sf.tensor({ 4097, 1 }, dt) end,
    }
    for i, make in ipairs(cases) do
      local a, b, out = make()
      out:fill(0 / 0)
      sf.ops.add { a = a, b = b, out = out }
      local r64 = sf.tensor(a:shape(), "f64", CPU)
      sf.ops.add { a = cpu(a, "f64"), b = cpu(b, "f64"), out = r64 }
      check(out, r64, nil, ("add %s view case %d"):format(dt, i))
    end
  end
end

TestLinearRope = {}

local HOPPER = sf.device().hopper_kernels

-- {B, N, heads, rope_heads, K, D}: Llama-2-7B's QKV projection at 33 tokens; GQA layouts; odd token
-- counts; a rotated/plain boundary inside a 256-wide tile (3 of 4 heads; 101 of 132); 132 heads
-- at 256 rows, where the 256-wide tile fills the machine in one wave (the layer's long sequences
-- run it), in one sequence and in two; D = 64, which only the unfused form takes
local LINEAR_ROPE_SHAPES = { { 1, 33, 96, 64, 4096, 128 }, { 1, 1, 12, 8, 256, 128 }, { 1, 17, 12, 10, 256, 128 },
  { 2, 500, 8, 6, 192, 128 }, { 1, 4097, 4, 3, 128, 128 }, { 3, 100, 15, 10, 64, 128 }, { 1, 256, 132, 101, 64, 128 },
  { 2, 128, 132, 101, 64, 128 }, { 1, 17, 6, 4, 128, 64 } }

-- each of impls against one f64 CPU reference
local function linear_rope_case(dt, s, impls, pos_offset)
  local B, N, Ht, rh, K, D = table.unpack(s)
  local x, w = randn({ B * N, K }, dt), randn({ Ht * D, K }, dt, 1 / math.sqrt(K))
  local r64 = sf.tensor({ B, N, Ht, D }, "f64", CPU)
  sf.ops.linear_rope { x = cpu(x, "f64"), w = cpu(w, "f64"), out = r64, rope_heads = rh, pos_offset = pos_offset }
  for _, impl in ipairs(impls) do
    local out = sf.tensor({ B, N, Ht, D }, dt):fill(0 / 0)
    sf.ops.linear_rope { x = x, w = w, out = out, rope_heads = rh, pos_offset = pos_offset, impl = impl }
    check(out, r64, nil, ("linear_rope %s %s B=%d N=%d heads %d of %d K=%d D=%d pos_offset=%d"):format(impl, dt, B, N,
      rh, Ht, K, D, pos_offset))
  end
end

function TestLinearRope.test_impls_against_cpu()
  for _, dt in ipairs(DTYPES) do
    for i, s in ipairs(LINEAR_ROPE_SHAPES) do
      local impls = (HOPPER and s[6] == 128) and { "unfused", "fused", "fastest" } or { "unfused", "fastest" }
      -- positions from 0, and from offsets near 10^6 (a row rotated by the wrong position is far off)
      for _, pos_offset in ipairs({ 0, 900000 + (seed + 7 * i) % 100000 }) do
        linear_rope_case(dt, s, impls, pos_offset)
      end
    end
  end
end

function TestLinearRope.test_fused_limits()
  local x, w = randn({ 17, 128 }, "f16"), randn({ 6 * 64, 128 }, "f16")
  local args = { x = x, w = w, out = sf.tensor({ 1, 17, 6, 64 }, "f16"), rope_heads = 4, impl = "fused" }
  contains(error_of(sf.ops.linear_rope, args), "linear_rope:", "impl 'fused'",
    HOPPER and "needs a head dim of 128" or "")
  if HOPPER then
    contains(error_of(sf.ops.linear_rope, { x = randn({ 17, 96 }, "f16"), w = randn({ 256, 96 }, "f16"),
      out = sf.tensor({ 1, 17, 2, 128 }, "f16"), rope_heads = 1, impl = "fused" }), "needs K, the inner dimension")
  end
  contains(error_of(sf.ops.linear_rope, { x = sf.tensor({ 17, 128 }, "f32"), w = sf.tensor({ 256, 128 }, "f32"),
    out = sf.tensor({ 1, 17, 2, 128 }, "f32"), rope_heads = 1 }), "'x' has dtype f32 (expected f16, bf16, e4m3)")
  -- K = 96 and D = 64 still run through fastest (unfused)
  linear_rope_case("bf16", { 1, 17, 2, 1, 96, 128 }, { "fastest" }, 3)
  -- an output one element into its buffer: contiguous, but not 16-byte aligned for the TMA store
  local flat = sf.tensor({ 1 + 17 * 2 * 128 }, "f16")
  local out = flat:slice(1, 2, 17 * 2 * 128):view({ 1, 17, 2, 128 })
  local xa, wa = randn({ 17, 128 }, "f16"), randn({ 256, 128 }, "f16", 1 / math.sqrt(128))
  if HOPPER then
    contains(error_of(sf.ops.linear_rope, { x = xa, w = wa, out = out, rope_heads = 1, impl = "fused" }),
      "needs x, w and out 16-byte aligned")
  end
  out:fill(0 / 0)
  sf.ops.linear_rope { x = xa, w = wa, out = out, rope_heads = 1, pos_offset = 11 }
  local r64 = sf.tensor({ 1, 17, 2, 128 }, "f64", CPU)
  sf.ops.linear_rope { x = cpu(xa, "f64"), w = cpu(wa, "f64"), out = r64, rope_heads = 1, pos_offset = 11 }
  check(out, r64, nil, "linear_rope fastest, misaligned out")
end

-- ---------------------------------------------------------------------------------------------

TestErrors = {}

function TestErrors.test_cuda_dtypes()
  local x32 = sf.tensor({ 4, 8 }, "f32")
  contains(error_of(sf.ops.rmsnorm, { x = x32, weight = sf.tensor({ 8 }, "f32"), out = sf.tensor({ 4, 8 }, "f32") }),
    "rmsnorm:", "'x' has dtype f32 (expected f16, bf16)")
  contains(error_of(sf.ops.add_rmsnorm, { x = x32, residual = sf.tensor({ 4, 8 }, "f32"), weight = sf.tensor({ 8 }, "f32"),
    out = sf.tensor({ 4, 8 }, "f32") }), "add_rmsnorm:", "'x' has dtype f32 (expected f16, bf16)")
  contains(error_of(sf.ops.rope, { x = sf.tensor({ 1, 2, 2, 8 }, "f64") }), "rope:", "'x' has dtype f64 (expected f16, bf16)")
  contains(error_of(sf.ops.add, { a = x32, b = x32, out = x32 }), "add:", "'a' has dtype f32 (expected f16, bf16)")
end

function TestErrors.test_mixed_devices()
  local x, w, out = sf.tensor({ 4, 8 }, "bf16"), sf.tensor({ 8 }, "bf16"), sf.tensor({ 4, 8 }, "bf16")
  local wc = sf.tensor({ 8 }, "bf16", CPU)
  contains(error_of(sf.ops.rmsnorm, { x = x, weight = wc, out = out }), "rmsnorm:", "'weight' is on cpu", "'x' is on cuda",
    "one device")
  contains(error_of(sf.ops.add_rmsnorm, { x = x, residual = sf.tensor({ 4, 8 }, "bf16", CPU), weight = w, out = out }),
    "add_rmsnorm:", "'residual' is on cpu", "'x' is on cuda")
  contains(error_of(sf.ops.rmsnorm, { x = x, weight = w, out = sf.tensor({ 4, 8 }, "bf16", CPU) }), "'out' is on cpu")
  contains(error_of(sf.ops.add, { a = x, b = sf.tensor({ 4, 8 }, "bf16", CPU), out = out }), "add:", "'b' is on cpu",
    "'a' is on cuda")
end

function TestErrors.test_errors_then_right_results()
  local x = randn({ 17, 4096 }, "bf16")
  local out = sf.tensor({ 17, 4096 }, "bf16"):fill(3)
  contains(error_of(sf.ops.rmsnorm, { x = x, weight = sf.tensor({ 4095 }, "bf16"), out = out }), "'weight' has shape")
  contains(error_of(sf.ops.rope, { x = sf.tensor({ 1, 2, 2, 8 }, "bf16"), pos_offset = -2 }), "'pos_offset' must be >= 0")
  assert_same(out, sf.tensor({ 17, 4096 }, "f64", CPU):fill(3), "an error wrote out")
  local w = randn({ 4096 }, "bf16")
  sf.ops.rmsnorm { x = x, weight = w, out = out }
  local r64 = sf.tensor({ 17, 4096 }, "f64", CPU)
  sf.ops.rmsnorm { x = cpu(x, "f64"), weight = cpu(w, "f64"), out = r64 }
  check(out, r64, nil, "rmsnorm after errors")
end

return lu.LuaUnit.run()
