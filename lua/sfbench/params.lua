-- Scenario parameters: defaults in the script, overrides from the command line (sf.args).
local sf = require "sfbench"

local params = {}

local BOOLEANS = {
  ["true"] = true, ["1"] = true, yes = true, on = true,
  ["false"] = false, ["0"] = false, no = false, off = false,
}

-- CLI mistakes are the user's, not the script's: no file:line in these messages.
-- A command-line mistake: the host prints it as one line (no traceback) and exits 2.
-- tostring() gives the message, so pcall users see an ordinary error text.
local USAGE = { __tostring = function(e) return e.usage end }
local function usage_error(msg)
  error(setmetatable({ usage = msg }, USAGE), 0)
end
params.usage_error = usage_error

local function bad(raw, key, expected)
  usage_error(("bad value '%s' for %s: expected %s"):format(raw, key, expected))
end

local PARSERS = {
  number = function(raw, key)
    local v = tonumber(raw)
    if v == nil then bad(raw, key, "a number") end
    -- a whole value written as a float ("1e3", "4096.0") is the integer, so counts and sizes
    -- written that way pass params.whole_numbers
    return math.tointeger(v) or v
  end,
  boolean = function(raw, key)
    local v = BOOLEANS[raw:lower()]
    if v == nil then bad(raw, key, "a boolean (true/false, 1/0, yes/no, on/off)") end
    return v
  end,
  string = function(raw)
    return raw
  end,
}

-- The parser for a default value; a list is parsed by the type of its first element.
local function parser_for(key, default)
  local kind = type(default)
  if kind == "table" then
    local first = default[1]
    if first == nil then first = "" end          -- an empty list takes strings
    local element = PARSERS[type(first)]
    if not element then
      error(("params.get: list default for '%s' must hold numbers, booleans or strings"):format(key), 3)
    end
    return function(raw)
      local list = {}
      for item in (raw .. ","):gmatch("([^,]*),") do
        item = item:match("^%s*(.-)%s*$")
        if item == "" then bad(raw, key, "a comma-separated list") end
        list[#list + 1] = element(item, key)
      end
      return list
    end
  end
  if not PARSERS[kind] then
    error(("params.get: default for '%s' must be a number, boolean, string or list"):format(key), 3)
  end
  return function(raw)
    return PARSERS[kind](raw, key)
  end
end

local function check_choice(key, value, allowed)
  for _, a in ipairs(allowed) do
    if a == value then return end
  end
  local names = {}
  for i, a in ipairs(allowed) do
    names[i] = tostring(a)
  end
  usage_error(("bad value '%s' for %s: expected one of %s"):format(tostring(value), key,
    table.concat(names, ", ")))
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do
    keys[#keys + 1] = tostring(k)
  end
  table.sort(keys)
  return keys
end

-- A parameter of whole numbers from lo to hi (hi nil: no bound), one number or a list (as its
-- default is), none listed twice (its rows could not be told apart): a usage error naming `key`
-- and what is `expected` otherwise. Returns the value.
function params.whole_numbers(key, value, lo, hi, expected)
  local seen = {}
  for _, n in ipairs(type(value) == "table" and value or { value }) do
    if math.type(n) ~= "integer" or n < lo or (hi and n > hi) then bad(n, key, expected) end
    if seen[n] then usage_error(("%s: %d is listed twice"):format(key, n)) end
    seen[n] = true
  end
  return value
end

-- A list parameter of split counts (decode_sweep's and gemv_sweep's `splits`): each 0 (the op's
-- choice) or a count up to `max` (the op's limit), none twice (two rows of one count could not be
-- told apart); a usage error naming `key` otherwise. Returns the list.
function params.split_counts(key, list, max)
  return params.whole_numbers(key, list, 0, max, ("0 (the op's choice) or a count of splits up to %d"):format(max))
end

-- A page size parameter (decode_sweep's list, model_sweep's one number): each 0 (a contiguous
-- cache) or a power of two, the sizes kv_cache and the ops take; a usage error naming `key`
-- otherwise. Returns the value.
function params.page_sizes(key, value)
  for _, n in ipairs(type(value) == "table" and value or { value }) do
    if math.type(n) ~= "integer" or n < 0 or n & (n - 1) ~= 0 then
      bad(n, key, "0 (a contiguous cache) or a page size that is a power of two")
    end
  end
  return value
end

function params.get(spec, choices)
  if type(spec) ~= "table" then
    error("params.get: expected a table of parameter defaults", 2)
  end
  choices = choices or {}
  for key, allowed in pairs(choices) do
    if spec[key] == nil or type(allowed) ~= "table" then
      error(("params.get: choices for '%s' must be a list, for a parameter in the spec"):format(key), 2)
    end
  end
  local unknown = {}
  for key in pairs(sf.args) do
    if spec[key] == nil then unknown[#unknown + 1] = key end
  end
  if #unknown > 0 then
    table.sort(unknown)
    local accepted = sorted_keys(spec)
    usage_error(("unknown parameter '%s' (accepted: %s)"):format(unknown[1],
      #accepted > 0 and table.concat(accepted, ", ") or "none"))
  end
  local values = {}
  for key, default in pairs(spec) do
    local parse = parser_for(key, default)
    local raw, value = sf.args[key], default
    if raw ~= nil then
      value = parse(raw)
      sf.used_args[key] = true
    elseif type(default) == "table" then
      value = table.move(default, 1, #default, 1, {})
    end
    if choices[key] then
      if type(value) == "table" then
        for _, v in ipairs(value) do check_choice(key, v, choices[key]) end
      else
        check_choice(key, value, choices[key])
      end
    end
    values[key] = value
  end
  return values
end

return params
