-- A chain of dependent ops, all ours and deterministic (fixed impls; the GEMV's k splits are
-- added in split order), each reading what the one before it wrote, repeated: with programmatic
-- dependent launch a kernel may start before the previous one ends, so a load placed before its
-- grid_dep_wait() would read stale data. The decode projections' GEMV launches without it, between
-- kernels that use it (a norm before, the add after). tests/gpu/pdl.sh runs this with
-- SFBENCH_PDL=1 and =0 and wants the same bits.
local sf = require "sfbench"
local T, d, H, hd = 200, 512, 4, 128                     -- T not a multiple of the 128-row tiles
local function randn(shape, seed, std) return sf.randn(shape, "f16", { seed = seed, std = std }) end
local x = randn({ T, d }, 11, 1)
local wn = sf.randn({ d }, "f16", { seed = 12, mean = 1, std = 0.1 })
local wqkv = randn({ 3 * H * hd, d }, 13, 0.04)
local wo = randn({ d, H * hd }, 14, 0.04)
local wd = randn({ d, d }, 15, 0.04)
local h = sf.tensor({ T, d }, "f16")
local qkv4 = sf.tensor({ 1, T, 3 * H, hd }, "f16")
local q4, k4, v4 = qkv4:slice(3, 1, H), qkv4:slice(3, H + 1, H), qkv4:slice(3, 2 * H + 1, H)
local attn = sf.tensor({ T, H * hd }, "f16")
local attn4 = attn:view({ 1, T, H, hd })
for _ = 1, 30 do
  sf.ops.rmsnorm { x = x, weight = wn, out = h, eps = 1e-5 }
  sf.ops.linear_rope { x = h, w = wqkv, out = qkv4, rope_heads = 2 * H, impl = "fused" }
  sf.ops.rope { x = v4, pos_offset = 7 }                  -- a third pass over the packed buffer
  sf.ops.attention { q = q4, k = k4, v = v4, out = attn4, causal = true, impl = "hopper" }
  sf.ops.gemm { a = attn, b = wo, c = x, beta = 1, transb = true, impl = "hopper" } -- x += attn·woᵀ
  sf.ops.add { a = x, b = h, out = x }
  -- a decode step's projection on the first 8 rows: x8 += rmsnorm(x8)·wdᵀ, then x8 += h8
  local x8, h8 = x:slice(1, 1, 8), h:slice(1, 1, 8)
  sf.ops.rmsnorm { x = x8, weight = wn, out = h8, eps = 1e-5 }
  sf.ops.gemm { a = h8, b = wd, c = x8, beta = 1, transb = true, impl = "gemv" }
  sf.ops.add { a = x8, b = h8, out = x8 }
end
-- FNV-1a over the exact values (%a), and one value to show the run did something
local hash = 2166136261
for _, v in ipairs(x:to("cpu", "f32"):totable()) do
  for c in string.format("%a", v):gmatch(".") do hash = ((hash ~ c:byte()) * 16777619) & 0xffffffff end
end
print(("%08x %s"):format(hash, string.format("%.6g", x:get(T, d))))
