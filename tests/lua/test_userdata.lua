-- Events and streams on the CPU backend as values: what tostring says of them, and __close,
-- which destroys one (a to-be-closed variable, on leaving its block or on an error), after
-- which every use is an error naming it; and the metatable of every userdata type, the CUDA
-- build's modules, kernels and graphs included (tests/gpu/test_gpu_userdata.lua uses those).
-- Run inside sfbench (tests/run-lua.sh).
-- luacheck: allow defined top
local lu = require "luaunit"
local sf = require "sfbench"
local testlib = require "testlib"
local error_of, contains = testlib.error_of, testlib.contains

TestEvent = {}

function TestEvent.test_tostring()
  local e = sf.event()
  lu.assertEquals(tostring(e), "event(cpu)")
  e:record()
  lu.assertEquals(tostring(e), "event(cpu, recorded)")
end

function TestEvent.test_close()
  local kept, other = nil, sf.event()
  other:record()
  do
    local e <close> = sf.event()
    e:record()
    kept = e
  end
  lu.assertEquals(tostring(kept), "event(cpu, destroyed)")
  contains(error_of(kept.record, kept), "event has been destroyed")
  contains(error_of(kept.synchronize, kept), "event has been destroyed")
  contains(error_of(sf.elapsed, other, kept), "event has been destroyed")
  contains(error_of(sf.elapsed, kept, other), "event has been destroyed")
  -- closed on an error too
  kept = testlib.closed_by_error(sf.event)
  lu.assertEquals(tostring(kept), "event(cpu, destroyed)")
  -- a destroyed event closes again without complaint
  do local e <close> = kept end
end

TestStream = {}

function TestStream.test_tostring()
  lu.assertEquals(tostring(sf.stream()), "stream(cpu)")
end

function TestStream.test_close()
  local kept
  do
    local s <close> = sf.stream()
    s:sync()
    kept = s
  end
  lu.assertEquals(tostring(kept), "stream(cpu, destroyed)")
  contains(error_of(kept.sync, kept), "stream has been destroyed")
  contains(error_of(sf.event().record, sf.event(), kept), "stream has been destroyed")
  contains(error_of(sf.flush_l2, kept), "stream has been destroyed")
  local x = sf.zeros({ 4 })
  contains(error_of(sf.ops.add, { a = x, b = x, out = x, stream = kept }), "stream has been destroyed")
  do local s <close> = kept end
end

-- each type's metatable, registered under its name: __tostring, the methods as __index, and
-- __close beside __gc where the value holds a resource (a kernel holds none: its module does)
TestTypes = {}

function TestTypes.test_metatables()
  local want = { "event", "stream", "tensor" }
  if sf.cublas_version then                -- built with CUDA
    want = { "event", "graph", "kernel", "module", "stream", "tensor" }
  end
  local found = {}
  for name, mt in pairs(debug.getregistry()) do
    local short = type(name) == "string" and name:match("^sfbench%.(.+)$")
    if short then
      found[#found + 1] = short
      lu.assertEquals(mt.__name, name)
      lu.assertIsFunction(mt.__tostring, name .. ": __tostring")
      lu.assertIsTable(mt.__index, name .. ": methods")
      if short ~= "kernel" then
        lu.assertIsFunction(mt.__gc, name .. ": __gc")
        lu.assertIsFunction(mt.__close, name .. ": __close")
      end
    end
  end
  table.sort(found)
  lu.assertEquals(found, want)
end

return lu.LuaUnit.run()
