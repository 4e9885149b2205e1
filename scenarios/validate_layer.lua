-- The Llama-2 layer on scaled-down configs (hidden 256, 4 heads; 2 kv heads as 70B's GQA, and 4 as
-- 7B's MHA, where the optimized layer can also write q, k and v split): the optimized layer (each
-- QKV layout) and the baseline against the reference (the baseline order run on the CPU backend
-- in f64 from the same weights), part by part and whole. Each part runs on the same inputs for
-- every layer (the reference's values at that point, rounded to the dtype), with the residual
-- input zeroed, so that it is checked on its own: q and k after RoPE and v, the attention output,
-- the attention block's output before the residual, the FFN's output. The weights' std is
-- 1/sqrt(hidden), so that the scores are not all near zero and each branch carries a real share of
-- the layer's output (the share column: the branch's norm over the output's). Fresh seed each run
-- (seed=N replays).
-- The fp8 layer (every projection an FP8 GEMM over e4m3 weights and activations) is held to 1.5
-- times the error of a straightforward FP8 computation of the same inputs in relative L2, twice
-- in the worst row and max-abs (validate.plain_bounds):
-- every GEMM input quantized per token (per output channel for the weights), by the CPU
-- backend's reference ops in f32, so that its e4m3 roundings are the only ones that count. That
-- is the fp8 layer's own algorithm with h per token: what it checks is that the fused GPU kernels
-- add no error of their own, and that fixing h's scale ahead costs at most that much. Each part's and the whole layer's outputs, every measure on its own,
-- and none above validate.fp8_bounds of the part's e4m3 roundings (the `fp8` field below; the
-- whole layer's: every part's), which were the bounds before (2026-12-06). The attention between
-- its projections is 16-bit and keeps the 16-bit bounds. Twice: its FFN's h quantized per token,
-- and per tensor with the scale a calibration forward on the layer's input fixed (llama's
-- L.calibrate; the FFN's part then runs the reference's h2 under that scale), both against the
-- per-token plain computation.
-- Usage: sfbench validate_layer [seed=N] [seq=17,64] [dtype=f16,bf16]
local sf = require "sfbench"
local models = require "sfbench.models"
local llama = require "sfbench.llama"
local validate = require "sfbench.validate"
local params = require "sfbench.params"

local suite = validate.suite("validate_layer", { seq = { 17, 64 }, dtype = { "f16", "bf16" } })
local p, seed = suite.params, suite.seed
params.whole_numbers("seq", p.seq, 1, nil, "a sequence length, at least 1")
local configs = {
  models.custom { name = "mini-gqa", hidden = 256, layers = 1, heads = 4, kv_heads = 2, intermediate = 704 },
  models.custom { name = "mini-mha", hidden = 256, layers = 1, heads = 4, kv_heads = 4, intermediate = 704 },
}

-- each part: the layer tensors it reads (copied from the reference's), the residual input it
-- zeroes, and the tensors it writes that are checked
local PARTS = {
  { part = "qkv", inputs = { "h" }, outputs = { "q", "k", "v" }, fp8 = 2 },
  { part = "attention", inputs = { "q", "k", "v" }, outputs = { "attn" }, fp8 = 0 },
  { part = "o", inputs = { "attn" }, zero = "x", outputs = { "r" }, what = "attention block (before the residual)", fp8 = 2 },
  { part = "ffn", inputs = { "h2" }, zero = "r", outputs = { "out" }, what = "FFN (before the residual)", fp8 = 6 },
}
local LAYER_FP8 = 0
for _, pt in ipairs(PARTS) do LAYER_FP8 = LAYER_FP8 + pt.fp8 end

-- every part's outputs for layer l, each part run on `inputs` (copies on the CPU, in l's dtype)
local function run_parts(l, inputs)
  local got = {}
  for _, pt in ipairs(PARTS) do
    for _, name in ipairs(pt.inputs) do l.tensors[name]:copy(inputs[name]) end
    if pt.zero then l.tensors[pt.zero]:zero() end
    l.run_part(pt.part)
    for _, name in ipairs(pt.outputs) do got[pt.part .. "." .. name] = l.tensors[name]:to("cpu") end
  end
  return got
end

local function norm(t) return sf.compare(sf.zeros(t:shape(), "f64", { device = "cpu" }), t).ref_norm end

for _, cfg in ipairs(configs) do
  for _, dtype in ipairs(p.dtype) do
    for _, seq in ipairs(p.seq) do
      local std = 1 / math.sqrt(cfg.hidden)
      local base = llama.layer(cfg, { impl = "baseline", seq = seq, dtype = dtype, seed = seed, std = std })
      local ref = llama.layer(cfg, { impl = "baseline", seq = seq, dtype = "f64", device = "cpu", weights = base.weights })
      local layers = { { name = "baseline", l = base } }
      for _, layout in ipairs(cfg.kv_heads == cfg.heads and { "packed", "split" } or { "packed" }) do
        layers[#layers + 1] = { name = "optimized (qkv " .. layout .. ")",
          l = llama.layer(cfg, { impl = "optimized", seq = seq, dtype = dtype, weights = base.weights, qkv = layout }) }
      end
      -- plain: the straightforward FP8 computation both fp8 layers' bounds come from (h per token)
      local plain = llama.layer(cfg, { impl = "fp8", seq = seq, dtype = "f32", device = "cpu", weights = base.weights })
      for _, static in ipairs({ false, true }) do
        layers[#layers + 1] = { name = static and "fp8 (h static)" or "fp8", static = static, fp8 = true,
          l = llama.layer(cfg, { impl = "fp8", seq = seq, dtype = dtype, weights = base.weights }) }
      end
      local x = sf.randn({ seq, cfg.hidden }, dtype, { seed = seed + seq })
      local function row(name, what, extra)
        local r = { config = cfg.name, dtype = dtype, seq = seq, layer = name, what = what }
        for k, v in pairs(extra or {}) do r[k] = v end
        return r
      end

      -- the whole layer; the plain computation's bounds, once for both fp8 layers
      ref.input:copy(x)
      ref.forward()
      plain.input:copy(x)
      plain.forward()
      local layer_bounds = validate.plain_bounds(plain.output, ref.output, validate.fp8_bounds(LAYER_FP8), dtype)
      for _, t in ipairs(layers) do
        t.l.input:copy(x)
        local fixed = t.static and t.l.calibrate()
        if t.static and not fixed then t.name = "fp8 (h per token: its FFN is cuBLASLt's)" end
        validate.poison(t.l.output)
        t.l.forward()
        suite.check(row(t.name, "layer output"), t.l.output, ref.output, t.fp8 and layer_bounds or nil)
      end

      -- part by part, from the reference's intermediate values rounded to the dtype
      local inputs = {}
      for _, pt in ipairs(PARTS) do
        for _, name in ipairs(pt.inputs) do inputs[name] = ref.tensors[name]:to(dtype):to("f64") end
      end
      local want, plain_got = run_parts(ref, inputs), run_parts(plain, inputs)
      local part_bounds = {}
      for _, pt in ipairs(PARTS) do
        for _, name in ipairs(pt.fp8 > 0 and pt.outputs or {}) do
          local key = pt.part .. "." .. name
          part_bounds[key] = validate.plain_bounds(plain_got[key], want[key], validate.fp8_bounds(pt.fp8), dtype)
        end
      end
      local out_norm = norm(ref.output)
      for _, t in ipairs(layers) do
        for _, pt in ipairs(PARTS) do
          for _, name in ipairs(pt.outputs) do validate.poison(t.l.tensors[name]) end
        end
        local got = run_parts(t.l, inputs)
        for _, pt in ipairs(PARTS) do
          for _, name in ipairs(pt.outputs) do
            local key = pt.part .. "." .. name
            local what = pt.what or (name == "attn" and "attention output" or name .. (name ~= "v" and " (after RoPE)" or ""))
            suite.check(row(t.name, what, pt.zero and { share = norm(want[key]) / out_norm } or nil), got[key], want[key],
              t.fp8 and part_bounds[key] or nil)
          end
        end
      end
    end
  end
end

suite.finish({ "config", "dtype", "seq", "layer", "what", { key = "share", fmt = "%.2f" } },
  { configs = configs })
