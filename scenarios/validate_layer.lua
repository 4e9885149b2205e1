-- The Llama-2 layer on scaled-down configs (hidden 256, 4 heads; 2 kv heads as 70B's GQA, and 4 as
-- 7B's MHA, where the optimized layer can also write q, k and v split): the optimized layer (each
-- QKV layout) against the baseline and both against the reference (the baseline order run on the
-- CPU backend in f64 from the same weights and input). Fresh seed each run (seed=N replays).
-- Usage: sfbench validate_layer [seed=N] [seq=17,64] [dtype=f16,bf16]
local sf = require "sfbench"
local params = require "sfbench.params"
local models = require "sfbench.models"
local llama = require "sfbench.llama"
local report = require "sfbench.report"
local validate = require "sfbench.validate"

local p = params.get { seed = 0, seq = { 17, 64 }, dtype = { "f16", "bf16" } }
local seed = p.seed ~= 0 and p.seed or validate.fresh_seed()
io.stderr:write(("validate_layer: seed %d\n"):format(seed))
local configs = {
  models.custom { name = "mini-gqa", hidden = 256, layers = 1, heads = 4, kv_heads = 2, intermediate = 704 },
  models.custom { name = "mini-mha", hidden = 256, layers = 1, heads = 4, kv_heads = 4, intermediate = 704 },
}

local rows, failures = {}, 0
for _, cfg in ipairs(configs) do
for _, dtype in ipairs(p.dtype) do
  for _, seq in ipairs(p.seq) do
    local base = llama.layer(cfg, { impl = "baseline", seq = seq, dtype = dtype, seed = seed })
    local ref = llama.layer(cfg, { impl = "baseline", seq = seq, dtype = "f64", device = "cpu", weights = base.weights })
    local layouts = cfg.kv_heads == cfg.heads and { "packed", "split" } or { "packed" }
    local opts = {}
    for i, layout in ipairs(layouts) do
      opts[i] = llama.layer(cfg, { impl = "optimized", seq = seq, dtype = dtype, weights = base.weights, qkv = layout })
    end
    local x = sf.randn({ seq, cfg.hidden }, dtype, { seed = seed + seq })
    for _, l in ipairs({ base, ref, table.unpack(opts) }) do l.input:copy(x) end
    validate.poison(base.output)
    ref.forward()
    base.forward()
    local checks = { { what = "baseline vs reference", r = validate.check(base.output, ref.output) } }
    for i, opt in ipairs(opts) do
      validate.poison(opt.output)
      opt.forward()
      local name = "optimized (qkv " .. layouts[i] .. ")"
      checks[#checks + 1] = { what = name .. " vs reference", r = validate.check(opt.output, ref.output) }
      checks[#checks + 1] = { what = name .. " vs baseline", r = validate.check(opt.output, base.output) }
    end
    for _, c in ipairs(checks) do
      if not c.r.ok then failures = failures + 1 end
      rows[#rows + 1] = { config = cfg.name, dtype = dtype, seq = seq, what = c.what, rel_l2 = c.r.rel_l2,
        max_abs = c.r.max_abs, bound = c.r.bound, ok = c.r.ok and "ok" or "FAIL" }
    end
  end
end
end
report.print(rows, { "config", "dtype", "seq", "what", { key = "rel_l2", fmt = "%.2e" }, { key = "max_abs", fmt = "%.2e" },
  { key = "bound", fmt = "%.1e" }, "ok" })
local path = report.save("validate_layer", { params = p, seed = seed, configs = configs, rows = rows, complete = true })
if not sf.quiet then print(("%d checks, %d failed, seed %d; results: %s"):format(#rows, failures, seed, path)) end
if failures > 0 then error(("%d layer check(s) out of bounds (seed %d)"):format(failures, seed), 0) end
