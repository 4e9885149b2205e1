-- luacheck: allow defined top
local lu = require "luaunit"
local models = require "sfbench.models"

TestModels = {}

local function common(fields)
  fields.max_positions, fields.vocab, fields.norm_eps, fields.rope_theta = 4096, 32000, 1e-5, 10000.0
  return fields
end

function TestModels.test_llama2_shapes()
  lu.assertEquals(models.get("7b"), common({ name = "llama2-7b", hidden = 4096, layers = 32,
    heads = 32, kv_heads = 32, head_dim = 128, intermediate = 11008 }))
  lu.assertEquals(models.get("13b"), common({ name = "llama2-13b", hidden = 5120, layers = 40,
    heads = 40, kv_heads = 40, head_dim = 128, intermediate = 13824 }))
  lu.assertEquals(models.get("70b"), common({ name = "llama2-70b", hidden = 8192, layers = 80,
    heads = 64, kv_heads = 8, head_dim = 128, intermediate = 28672 }))
end

function TestModels.test_aliases_and_copies()
  lu.assertEquals(models.get("llama2-13b"), models.get("13b"))
  lu.assertEquals(models.get("Llama-2-70B"), models.get("70b"))
  local a = models.get("7b")
  a.hidden = 1
  lu.assertEquals(models.get("7b").hidden, 4096)
  lu.assertEquals(models.names(), { "7b", "13b", "70b" })
end

function TestModels.test_unknown_model()
  lu.assertErrorMsgContains("models.get: unknown model 'llama3-8b' (known: 7b, 13b, 70b)",
    models.get, "llama3-8b")
  lu.assertErrorMsgContains("unknown model 'nil'", models.get, nil)
end

function TestModels.test_custom()
  local m = models.custom({ name = "tiny", hidden = 256, layers = 2, heads = 8, kv_heads = 2,
    intermediate = 688.0, vocab = 1000 })
  lu.assertEquals(m, { name = "tiny", hidden = 256, layers = 2, heads = 8, kv_heads = 2,
    head_dim = 32, intermediate = 688, max_positions = 4096, vocab = 1000, norm_eps = 1e-5,
    rope_theta = 10000.0 })
  lu.assertEquals(math.type(m.intermediate), "integer")
  lu.assertEquals(models.custom({ hidden = 64, layers = 1, heads = 4, intermediate = 128 }).kv_heads, 4)
  lu.assertEquals(models.custom(models.get("70b")), models.get("70b"))
end

function TestModels.test_custom_errors()
  local base = { hidden = 256, layers = 2, heads = 8, intermediate = 512 }
  local function with(k, v)
    local t = {}
    for key, value in pairs(base) do t[key] = value end
    t[k] = v
    return t
  end
  lu.assertErrorMsgContains("models.custom: heads (6) must divide hidden (256)",
    models.custom, with("heads", 6))
  lu.assertErrorMsgContains("models.custom: kv_heads (3) must divide heads (8)",
    models.custom, with("kv_heads", 3))
  lu.assertErrorMsgContains("models.custom: 'layers' must be a positive integer, got 1.5",
    models.custom, with("layers", 1.5))
  lu.assertErrorMsgContains("'hidden' must be a positive integer, got 0", models.custom, with("hidden", 0))
  lu.assertErrorMsgContains("'intermediate' must be a positive integer, got nil",
    models.custom, with("intermediate", nil))
  lu.assertErrorMsgContains("'norm_eps' must be a positive number", models.custom, with("norm_eps", -1))
  lu.assertErrorMsgContains("head_dim (16) must equal hidden / heads (32)",
    models.custom, with("head_dim", 16))
  lu.assertErrorMsgContains("models.custom: unknown field 'hiden'", models.custom, with("hiden", 1))
end

return lu.LuaUnit.run()
