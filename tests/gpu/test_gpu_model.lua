-- luacheck: allow defined top
-- The whole model on the GPU (f16, bf16) against the same model in f64 on the CPU backend: the
-- prefill's logits and those of decode steps after it, contiguous and paged caches, GQA, batch 3;
-- the embedding op's NaN rows for tokens outside the table; the FFN from the packed w13 alone
-- (the model's default, the reference's too) and, with ffn "unfused", from w1 and w3, which only
-- then the model keeps. Run with --device cuda.
local lu = require "luaunit"
local sf = require "sfbench"
local models = require "sfbench.models"
local llama = require "sfbench.llama"
local testlib = require "testlib"

local BOUND = { f16 = 2e-3, bf16 = 1.6e-2 }

TestGpuModel = {}

local cfg = models.custom { name = "mini-gqa", hidden = 256, layers = 2, heads = 2, kv_heads = 1, intermediate = 512,
  vocab = 1000, max_positions = 256 }

local function ids(n, s) return testlib.token_ids(n, cfg.vocab, s) end

-- got within BOUND of want, all finite: compare leaves NaN and Inf in got, and elements whose
-- want is not finite, out of rel_l2, so each count must be zero as well
local function check(got, want, dt, what)
  local r = testlib.assert_finite(sf.compare(got, want), dt .. " " .. what)
  lu.assertTrue(r.rel_l2 <= BOUND[dt] and r.ref_norm > 0,
    ("%s %s: rel_l2 %.3g (bound %.3g)"):format(dt, what, r.rel_l2, BOUND[dt]))
end

function TestGpuModel.test_against_cpu_reference()
  for _, c in ipairs({ { "f16", false }, { "f16", 16 }, { "bf16", false }, { "bf16", 16 }, { "f16", false, "unfused" } }) do
    local dt, page_size, ffn = c[1], c[2], c[3]
    local B, P = 3, 37
    local M = llama.model(cfg, { batch = B, capacity = 64, dtype = dt, seed = 11, page_size = page_size or nil,
      ffn = ffn })
    lu.assertEquals(M.weights[1].w1 ~= nil, ffn == "unfused", "w1 kept")
    local R = llama.model(cfg, { batch = B, capacity = 64, dtype = "f64", device = "cpu", weights_from = M,
      page_size = page_size or nil })
    local what = (page_size and "paged" or "contiguous") .. (ffn and " " .. ffn or "")
    local prompt = ids(B * P, 13)
    M.logits:fill(0 / 0)
    check(M.prefill(P, prompt), R.prefill(P, prompt), dt, what .. " prefill")
    for step = 1, 3 do
      local t = ids(B, 20 + step)
      M.logits:fill(0 / 0)
      check(M.decode(t), R.decode(t), dt, ("%s decode step %d"):format(what, step))
    end
  end
end

-- the GPU's unfused FFN runs the gate and up GEMMs apart: w13 alone is refused, before any launch
function TestGpuModel.test_unfused_ffn_needs_w1_and_w3()
  local x, w2, out = sf.randn({ 3, 64 }, "f16"), sf.randn({ 64, 128 }, "f16"), sf.tensor({ 3, 64 }, "f16")
  local w13 = sf.randn({ 256, 64 }, "f16")
  testlib.contains(testlib.error_of(sf.ops.ffn, { x = x, w13 = w13, w2 = w2, out = out, act = "swiglu", impl = "unfused" }),
    "ffn:", "impl 'unfused' needs 'w1' and 'w3'")
end

function TestGpuModel.test_embedding_bad_token_is_nan()
  local tbl = sf.randn({ 10, 24 }, "f16", { seed = 3 })
  local out = sf.tensor({ 3, 24 }, "f16"):fill(0)
  sf.ops.embedding { table = tbl, tokens = sf.from_table({ 2, 10, 9 }, { 3 }, "i32"), out = out }
  local got, want = out:to("cpu", "f32"):totable(), tbl:to("cpu", "f32"):totable()
  for j = 1, 24 do
    lu.assertEquals(got[j], want[2 * 24 + j])
    lu.assertTrue(got[24 + j] ~= got[24 + j], "token 10 of 10 rows: NaN")
    lu.assertEquals(got[48 + j], want[9 * 24 + j])
  end
end

return lu.LuaUnit.run()
