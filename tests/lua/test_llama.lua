-- luacheck: allow defined top
-- The layer's stage list and the stages= subset (lua/sfbench/llama.lua), on the CPU backend.
local lu = require "luaunit"
local sf = require "sfbench"
local models = require "sfbench.models"
local llama = require "sfbench.llama"

TestLlamaStages = {}

local cfg = models.custom { name = "tiny", hidden = 64, layers = 1, heads = 2, kv_heads = 2, intermediate = 96 }

function TestLlamaStages.test_names()
  lu.assertEquals(llama.stage_names("baseline"),
    { "attn_norm", "qkv_proj", "rope", "attention", "o_proj", "residual", "ffn_norm", "ffn", "residual2" })
  lu.assertEquals(llama.stage_names("optimized"),
    { "attn_norm", "qkv_proj+rope", "attention", "o_proj+residual", "ffn_norm", "ffn+residual" })
  lu.assertEquals(llama.stage_names("optimized", "split"),
    { "attn_norm", "qkv_proj", "rope", "attention", "o_proj+residual", "ffn_norm", "ffn+residual" })
  local n = llama.stage_names("baseline")
  n[1] = "changed"                                     -- a copy: the layer's own list is untouched
  lu.assertEquals(llama.stage_names("baseline")[1], "attn_norm")
end

function TestLlamaStages.test_layers_run_every_named_stage()
  for _, c in ipairs({ { "baseline" }, { "optimized", "packed" }, { "optimized", "split" } }) do
    local L = llama.layer(cfg, { impl = c[1], qkv = c[2], seq = 5, dtype = "f32", device = "cpu" })
    local names = {}
    for i, s in ipairs(L.stages) do
      names[i] = s.name
      lu.assertIsFunction(s.fn, c[1] .. " " .. s.name)
    end
    lu.assertEquals(names, llama.stage_names(c[1], c[2]))
  end
end

function TestLlamaStages.test_check_stages()
  lu.assertNil(llama.check_stages("optimized", "packed", { "attention", "ffn+residual" }))
  lu.assertNil(llama.check_stages("baseline", nil, {}))
  lu.assertEquals(llama.check_stages("baseline", nil, { "attention", "qkv_proj+rope" }),
    "the baseline layer has no stage 'qkv_proj+rope' (its stages: attn_norm, qkv_proj, rope, attention, "
      .. "o_proj, residual, ffn_norm, ffn, residual2)")
end

function TestLlamaStages.test_subset_runs_only_those_stages()
  local full = llama.layer(cfg, { impl = "baseline", seq = 7, dtype = "f64", device = "cpu", seed = 3 })
  local all = llama.layer(cfg, { impl = "baseline", seq = 7, dtype = "f64", device = "cpu", weights = full.weights,
    stages = llama.stage_names("baseline") })
  local some = llama.layer(cfg, { impl = "baseline", seq = 7, dtype = "f64", device = "cpu", weights = full.weights,
    stages = { "ffn", "attn_norm" } })
  lu.assertEquals(#some.stages, 2)
  lu.assertEquals({ some.stages[1].name, some.stages[2].name }, { "attn_norm", "ffn" }) -- the layer's order
  local x = sf.randn({ 7, cfg.hidden }, "f64", { seed = 4, device = "cpu" })
  for _, L in ipairs({ full, all, some }) do
    L.input:copy(x)
    L.output:fill(0)
  end
  full.forward(); all.forward(); some.forward()
  lu.assertEquals(sf.compare(all.output, full.output).max_abs, 0)
  lu.assertTrue(sf.compare(full.output, x).max_abs > 0)
  lu.assertEquals(sf.compare(some.output, sf.zeros({ 7, cfg.hidden }, "f64", { device = "cpu" })).max_abs, 0,
    "without residual2 the output is never written")
  lu.assertEquals(#some.profile(1), 2)
  some.forward_all()                                   -- every stage, whatever the subset
  lu.assertEquals(sf.compare(some.output, full.output).max_abs, 0)
end

function TestLlamaStages.test_bad_stages()
  local ok, err = pcall(llama.layer, cfg, { impl = "optimized", seq = 4, device = "cpu", stages = { "rope" } })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "llama.layer: the optimized layer has no stage 'rope' (its stages: attn_norm, qkv_proj+rope")
  ok, err = pcall(llama.layer, cfg, { impl = "baseline", seq = 4, device = "cpu", stages = "ffn" })
  lu.assertFalse(ok)
  lu.assertStrContains(err, "llama.layer: stages must be a list of stage names")
end

os.exit(lu.LuaUnit.run())
