-- FP8 operands as the ops take them, made with the quantize and pack_vt ops on the tensor's own
-- device (kernels/quantize.h and kernels/attention.h have the conventions).
local sf = require "sfbench"

local fp8 = {}

-- fp8.quantized(x [, per_row]) -> x8, scale: x in e4m3 with its f32 dequantization scale, one for
-- the tensor ([1]) or, per_row, one a row of its last dimension (x's shape without it)
function fp8.quantized(x, per_row)
  local shape, device = x:shape(), x:device()
  local sshape = { 1 }
  if per_row then sshape = table.move(shape, 1, #shape - 1, 1, {}) end
  local x8, scale = sf.tensor(shape, "e4m3", { device = device }), sf.tensor(sshape, "f32", { device = device })
  sf.ops.quantize { x = x, out = x8, scale = scale }
  return x8, scale
end

-- fp8.packed_vt(v8) -> vt: e4m3 values [B, N, Hkv, D] laid out as FP8 attention's vt
-- [B, Hkv, D, N rounded up to 16] by pack_vt (filled with NaN first: an element pack_vt did not
-- write would show)
function fp8.packed_vt(v8)
  local B, N, Hkv, D = table.unpack(v8:shape())
  local vt = sf.tensor({ B, Hkv, D, (N + 15) // 16 * 16 }, "e4m3", { device = v8:device() }):fill(0 / 0)
  sf.ops.pack_vt { v = v8, out = vt }
  return vt
end

return fp8
