-- sfbench.dist at world 1 (the multi-rank paths run in tests/cli/ranks.sh): values passed
-- between ranks come back exactly, agree is the identity, a sweep neither shards nor records ranks.
local lu = require "luaunit"
local sf = require "sfbench"
local dist = require "sfbench.dist"

TestDist = {}

function TestDist:test_serialize_round_trip()
  local v = { 1, 2.5, -0.0, math.huge, -math.huge, 1 / 3, math.maxinteger, math.mininteger, "a\"b\n\0c",
    true, false, { nested = { 7, "x" }, [10] = "sparse" }, n = 4096 }
  local back = dist.deserialize(dist.serialize(v))
  for i = 1, 11 do
    lu.assertEquals(back[i], v[i], "element " .. i)
    lu.assertEquals(math.type(back[i]), math.type(v[i]), "element " .. i .. "'s number type")
  end
  lu.assertEquals(back[12], v[12])
  lu.assertEquals(math.type(back.n), "integer")
  local nan = dist.deserialize(dist.serialize({ 0 / 0 }))[1]
  lu.assertTrue(nan ~= nan, "NaN stays NaN")
end

function TestDist:test_serialize_refuses_functions()
  lu.assertErrorMsgContains("cannot pass a function between ranks", dist.serialize, { f = print })
end

function TestDist:test_deserialize_names_bad_text()
  lu.assertErrorMsgContains("does not load", dist.deserialize, "{1,")
end

function TestDist:test_world_one()
  lu.assertEquals(sf.dist.world(), 1)
  lu.assertEquals(sf.dist.rank(), 0)
  lu.assertEquals(sf.dist.backend(), "none")
  local list = { 3, 1 }
  lu.assertIs(dist.agree(list), list)
  lu.assertFalse(dist.together())
  lu.assertEquals(sf.dist.max({ 2, -1 }), { 2, -1 })
  lu.assertEquals(sf.dist.gather("x"), { "x" })
  lu.assertEquals(dist.gather({ a = 1 }), { { a = 1 } })
  lu.assertErrorMsgContains("not a number", sf.dist.max, { "x" })
  sf.dist.barrier()
end

function TestDist:test_describe()
  local d = dist.describe()
  lu.assertEquals(d.rank, 0)
  lu.assertEquals(d.backend, sf.device().backend)
  lu.assertIsString(d.device)
end

return lu.LuaUnit.run()
