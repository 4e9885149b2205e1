-- Model shapes: the Llama-2 family, and checked custom configurations.
local models = {}

local NAMES = { "7b", "13b", "70b" }

local LLAMA2 = {
  ["7b"] = { hidden = 4096, layers = 32, heads = 32, kv_heads = 32, intermediate = 11008 },
  ["13b"] = { hidden = 5120, layers = 40, heads = 40, kv_heads = 40, intermediate = 13824 },
  ["70b"] = { hidden = 8192, layers = 80, heads = 64, kv_heads = 8, intermediate = 28672 },
}

local DEFAULTS = { name = "custom", max_positions = 4096, vocab = 32000, norm_eps = 1e-5,
  rope_theta = 10000.0 }

local INTEGER_FIELDS = { "hidden", "layers", "heads", "kv_heads", "intermediate",
  "max_positions", "vocab" }

local FIELDS = { name = true, head_dim = true, norm_eps = true, rope_theta = true }
for _, k in ipairs(INTEGER_FIELDS) do FIELDS[k] = true end

function models.custom(fields)
  if type(fields) ~= "table" then
    error("models.custom: expected a table of fields", 2)
  end
  local cfg = {}
  for k, v in pairs(DEFAULTS) do cfg[k] = v end
  for k, v in pairs(fields) do
    if not FIELDS[k] then
      error(("models.custom: unknown field '%s'"):format(tostring(k)), 2)
    end
    cfg[k] = v
  end
  cfg.kv_heads = cfg.kv_heads or cfg.heads
  if type(cfg.name) ~= "string" then
    error("models.custom: 'name' must be a string", 2)
  end
  for _, k in ipairs(INTEGER_FIELDS) do
    local v = cfg[k]
    local i = type(v) == "number" and math.tointeger(v)
    if not i or i <= 0 then
      error(("models.custom: '%s' must be a positive integer, got %s"):format(k, tostring(v)), 2)
    end
    cfg[k] = i
  end
  for _, k in ipairs({ "norm_eps", "rope_theta" }) do
    local v = cfg[k]
    if type(v) ~= "number" or v ~= v or v <= 0 then
      error(("models.custom: '%s' must be a positive number, got %s"):format(k, tostring(v)), 2)
    end
  end
  if cfg.hidden % cfg.heads ~= 0 then
    error(("models.custom: heads (%d) must divide hidden (%d)"):format(cfg.heads, cfg.hidden), 2)
  end
  if cfg.heads % cfg.kv_heads ~= 0 then
    error(("models.custom: kv_heads (%d) must divide heads (%d)"):format(cfg.kv_heads, cfg.heads), 2)
  end
  local head_dim = cfg.hidden // cfg.heads
  if cfg.head_dim ~= nil and cfg.head_dim ~= head_dim then
    error(("models.custom: head_dim (%s) must equal hidden / heads (%d)")
      :format(tostring(cfg.head_dim), head_dim), 2)
  end
  cfg.head_dim = head_dim
  return cfg
end

-- "7b", "13b", "70b", also as "llama2-7b" or "llama-2-7b"; a fresh table each call.
function models.get(name)
  local key = type(name) == "string" and name:lower():gsub("^llama%-?2%-", "") or nil
  local shape = LLAMA2[key]
  if not shape then
    error(("models.get: unknown model '%s' (known: %s)"):format(tostring(name),
      table.concat(NAMES, ", ")), 2)
  end
  local fields = { name = "llama2-" .. key }
  for k, v in pairs(shape) do fields[k] = v end
  return models.custom(fields)
end

-- The same model shrunk by an integer factor (hidden, heads, kv heads and intermediate divided,
-- head_dim kept where the heads allow): CPU-backend runs keep the shapes' proportions.
function models.scaled(cfg, factor)
  local heads = math.max(1, cfg.heads // factor)
  local kv_heads = math.max(1, cfg.kv_heads // factor)
  while heads % kv_heads ~= 0 do kv_heads = kv_heads - 1 end
  return models.custom { name = ("%s/%d"):format(cfg.name, factor), hidden = heads * cfg.head_dim,
    layers = cfg.layers, heads = heads, kv_heads = kv_heads,
    intermediate = math.max(1, cfg.intermediate // factor), max_positions = cfg.max_positions,
    vocab = cfg.vocab, norm_eps = cfg.norm_eps, rope_theta = cfg.rope_theta }
end

function models.names()
  return table.move(NAMES, 1, #NAMES, 1, {})
end

return models
