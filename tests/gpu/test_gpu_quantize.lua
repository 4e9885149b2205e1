-- FP8 on the CUDA backend (run with --device cuda; tests/run-lua.sh skips it without a GPU):
-- e4m3/e5m2 conversions, quantize and dequantize (per tensor and per row, every input dtype) and
-- pack_gate_up of every element size, each against the same call on the CPU backend, bit for
-- bit: both divide in f32 and round once, to nearest even, saturating (kernels/quantize.h).
-- luacheck: allow defined top
local lu = require "luaunit"
local sf = require "sfbench"
local testlib = require "testlib"

local CPU = { device = "cpu" }

-- random values over a wide range: normal draws times powers of two, and the edges of both formats
local function values(n, seed)
  local x = sf.randn({ n }, "f64", { seed = seed, device = "cpu" }):totable()
  local s = sf.rand({ n }, "f64", { seed = seed + 1, low = -20, high = 20, device = "cpu" }):totable()
  for i = 1, n do x[i] = x[i] * 2 ^ math.floor(s[i]) end
  local edges = { 448, 464, 465, -480, 57344, 61440, 2 ^ -9, 2 ^ -10, 2 ^ -16, 2 ^ -17, 0, 1 / 0, -1 / 0 }
  for i, v in ipairs(edges) do x[i] = v end
  return x
end

function test_conversions_match_the_cpu()
  local x = values(4096, 11)
  for _, dt in ipairs({ "e4m3", "e5m2" }) do
    for _, from in ipairs({ "f64", "f32", "f16", "bf16" }) do
      local cpu = sf.from_table(x, { #x }, from, CPU)
      local gpu = sf.from_table(x, { #x }, from)
      testlib.assert_same(gpu:to(dt), cpu:to(dt), ("%s to %s"):format(from, dt))
      -- and back: every fp8 value is exact in the wider dtypes
      testlib.assert_same(gpu:to(dt):to("f32"), cpu:to(dt):to("f32"), ("%s to %s and back"):format(from, dt))
    end
  end
end

function test_quantize_and_dequantize_match_the_cpu()
  for _, xdt in ipairs({ "f32", "f16", "bf16" }) do
    for _, dt in ipairs({ "e4m3", "e5m2" }) do
      for _, per_row in ipairs({ false, true }) do
        local shape, sshape = { 37, 300 }, { per_row and 37 or 1 }
        local x = sf.randn(shape, xdt, { seed = 5 })
        local what = ("%s to %s, %s"):format(xdt, dt, per_row and "per row" or "per tensor")
        local q, s = sf.tensor(shape, dt), sf.tensor(sshape, "f32")
        local qc, sc = sf.tensor(shape, dt, CPU), sf.tensor(sshape, "f32", CPU)
        sf.ops.quantize { x = x, out = q, scale = s }
        sf.ops.quantize { x = x:to("cpu"), out = qc, scale = sc }
        testlib.assert_same(s, sc, what .. ": scale")
        testlib.assert_same(q, qc, what .. ": values")
        local back, backc = sf.tensor(shape, xdt):fill(0 / 0), sf.tensor(shape, xdt, CPU)
        sf.ops.dequantize { x = q, scale = s, out = back }
        sf.ops.dequantize { x = qc, scale = sc, out = backc }
        testlib.assert_same(back, backc, what .. ": dequantized")
      end
    end
  end
end

-- a strided x (a slice of wider rows) and a 3-D one with a per-row scale of its two leading dims
function test_quantize_strided_and_3d()
  local wide = sf.randn({ 16, 96 }, "bf16", { seed = 9 })
  local q, s = sf.tensor({ 16, 64 }, "e4m3"), sf.tensor({ 16 }, "f32")
  sf.ops.quantize { x = wide:slice(2, 17, 64), out = q, scale = s }
  local qc, sc = sf.tensor({ 16, 64 }, "e4m3", CPU), sf.tensor({ 16 }, "f32", CPU)
  sf.ops.quantize { x = wide:to("cpu"):slice(2, 17, 64), out = qc, scale = sc }
  testlib.assert_same(q, qc, "a slice")
  testlib.assert_same(s, sc, "a slice's scales")
  local x3 = sf.randn({ 3, 5, 40 }, "f16", { seed = 10 })
  local q3, s3 = sf.tensor({ 3, 5, 40 }, "e5m2"), sf.tensor({ 3, 5 }, "f32")
  local q3c, s3c = sf.tensor({ 3, 5, 40 }, "e5m2", CPU), sf.tensor({ 3, 5 }, "f32", CPU)
  sf.ops.quantize { x = x3, out = q3, scale = s3 }
  sf.ops.quantize { x = x3:to("cpu"), out = q3c, scale = s3c }
  testlib.assert_same(q3, q3c, "3-D")
  testlib.assert_same(s3, s3c, "3-D scales")
end

-- pack_gate_up moves rows of any element size: 1, 2, 4 and 8 bytes, aligned rows and not
function test_pack_gate_up_of_every_element_size()
  for _, dt in ipairs({ "e4m3", "f16", "f32", "f64" }) do
    for _, H in ipairs({ 64, 3 }) do
      local w1, w3 = sf.randn({ 16, H }, dt, { seed = 1 }), sf.randn({ 16, H }, dt, { seed = 2 })
      local out, outc = sf.tensor({ 32, H }, dt):fill(0 / 0), sf.tensor({ 32, H }, dt, CPU)
      sf.ops.pack_gate_up { w1 = w1, w3 = w3, out = out }
      sf.ops.pack_gate_up { w1 = w1:to("cpu"), w3 = w3:to("cpu"), out = outc }
      testlib.assert_same(out, outc, ("%s, H = %d"):format(dt, H))
    end
  end
end

os.exit(lu.LuaUnit.run())
