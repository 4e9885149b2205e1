-- The tensor-parallel Llama-2 layer (llama.layer's tp, Megatron's split) against the whole layer,
-- at TP = the world size: run it as `sfbench --gpus N validate_tp_layer` (N = 1, 2 or 4; CPU
-- ranks with --device cpu). Every rank draws the full layer's weights from one seed, builds its
-- shard of them (its heads, its share of the FFN) and the whole layer (the TP = 1 path), and runs
-- both on the same input; the shards' partial sums meet in the all-reduces. Each impl's TP output
-- is checked against the TP = 1 layer of the same impl and dtype, and against the reference (the
-- baseline layer in f64 on the CPU backend), after the attention block (r: the residual plus
-- the O projection's all-reduced sum) and at the layer's output, with validate_layer's bounds.
-- Configs: 7B scaled down by 8 (MHA: 4 heads of 128) and a GQA one (8 heads, 4 kv heads of 64),
-- so that TP 2 and 4 divide both. The weights' std is 1/sqrt(hidden), as in validate_layer. Fresh
-- seed each run (seed=N replays), the same on every rank.
-- Usage: sfbench --gpus N validate_tp_layer [seed=N] [seq=17,64] [dtype=f16,bf16] [chunks=3]
-- chunks: the optimized layer's blocks of rows (each block's all-reduce overlaps the next's GEMM).
local sf = require "sfbench"
local models = require "sfbench.models"
local llama = require "sfbench.llama"
local validate = require "sfbench.validate"
local params = require "sfbench.params"

local suite = validate.suite("validate_tp_layer", { seq = { 17, 64 }, dtype = { "f16", "bf16" }, chunks = 3 })
local p, seed = suite.params, suite.seed
params.whole_numbers("seq", p.seq, 1, nil, "a sequence length, at least 1")
params.whole_numbers("chunks", p.chunks, 1, nil, "a count of row blocks, at least 1")
local rank, world = sf.dist.rank(), sf.dist.world()
local configs = {
  models.scaled(models.get("7b"), 8),
  models.custom { name = "mini-gqa", hidden = 512, layers = 1, heads = 8, kv_heads = 4, intermediate = 1024 },
}
local tp = { rank = rank, world = world, chunks = p.chunks }

for _, cfg in ipairs(configs) do
  for _, dtype in ipairs(p.dtype) do
    for _, seq in ipairs(p.seq) do
      local std = 1 / math.sqrt(cfg.hidden)
      local ref = llama.layer(cfg, { impl = "baseline", seq = seq, dtype = "f64", device = "cpu", seed = seed, std = std })
      local x = sf.randn({ seq, cfg.hidden }, dtype, { seed = seed + seq })
      ref.input:copy(x)
      ref.forward()
      for _, impl in ipairs({ "baseline", "optimized" }) do
        local whole = llama.layer(cfg, { impl = impl, seq = seq, dtype = dtype, weights = ref.weights })
        local part = llama.layer(cfg, { impl = impl, seq = seq, dtype = dtype, weights = ref.weights, tp = tp })
        for _, l in ipairs({ whole, part }) do
          l.input:copy(x)
          validate.poison(l.tensors.r)
          validate.poison(l.output)
          l.forward()
        end
        for _, t in ipairs({ { "r", "attention block + residual" }, { "out", "layer output" } }) do
          local got = part.tensors[t[1]]
          local function row(against)
            return { config = cfg.name, dtype = dtype, seq = seq, impl = impl, tp = world, what = t[2], against = against }
          end
          suite.check(row("tp=1"), got, whole.tensors[t[1]])
          suite.check(row("reference"), got, ref.tensors[t[1]])
        end
      end
    end
  end
end

suite.finish({ "config", "dtype", "seq", "impl", "tp", "what", "against" }, { configs = configs })
