-- The harness's side of several ranks (sf.dist): decisions every rank takes alike, and Lua values
-- passed between ranks exactly (integers stay integers, NaN stays NaN).
local sf = require "sfbench"

local dist = {}

-- Whether the ranks measure apart (a sweep sharing its points out: sweep.run sets it while its
-- ranks measure), rather than together (every rank in every measurement, as collectives are)
dist.apart = false

-- The largest of each number over the ranks, where the ranks measure together: every rank gets
-- the same list back, so that choices made from it (a batch size, when to stop sampling) are the
-- same on every rank and their collectives pair up. At world 1, or apart, the list itself.
function dist.agree(list)
  if sf.dist.world() == 1 or dist.apart then return list end
  return sf.dist.max(list)
end

-- Whether bench.run's samples are taken together with the other ranks
function dist.together()
  return sf.dist.world() > 1 and not dist.apart
end

-- Lua source that rebuilds v (nil, booleans, numbers, strings and tables of them); %q writes
-- integers and floats (hexadecimal, NaN and infinities included) so that they load back as they
-- were.
local function serialize(v, out)
  local t = type(v)
  if t == "table" then
    out[#out + 1] = "{"
    for k, x in pairs(v) do
      out[#out + 1] = "["
      serialize(k, out)
      out[#out + 1] = "]="
      serialize(x, out)
      out[#out + 1] = ","
    end
    out[#out + 1] = "}"
  elseif t == "number" or t == "string" or t == "boolean" or t == "nil" then
    out[#out + 1] = ("%q"):format(v)
  else
    error(("dist: cannot pass a %s between ranks"):format(t), 0)
  end
  return out
end

function dist.serialize(v)
  return table.concat(serialize(v, {}))
end

function dist.deserialize(s)
  local f, err = load("return " .. s, "=(a rank's value)", "t", {})
  if not f then error("dist: a rank sent a value that does not load: " .. err, 0) end
  return f()
end

-- Every rank's value v, on every rank: {rank 0's, rank 1's, ...}.
function dist.gather(v)
  local out = {}
  for r, s in ipairs(sf.dist.gather(dist.serialize(v))) do out[r] = dist.deserialize(s) end
  return out
end

-- What results record of the device each rank ran on.
function dist.describe()
  local d, info = sf.device(), sf.dist.info()
  return { rank = info.rank, host = info.host, device = d.name, index = d.index, pci_bus_id = d.pci_bus_id,
    backend = d.backend }
end

return dist
