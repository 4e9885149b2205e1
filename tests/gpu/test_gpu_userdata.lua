-- Modules, kernels, events, streams and graphs on the CUDA backend as values: what tostring says
-- of them, and __close, which unloads a module (its kernels cannot be launched after) and
-- destroys an event, a stream or a graph, after which every use is an error naming it. Run with
-- --device cuda.
-- luacheck: allow defined top
local lu = require "luaunit"
local sf = require "sfbench"
local testlib = require "testlib"
local error_of, contains = testlib.error_of, testlib.contains

local SOURCE = [[
extern "C" __global__ void add_one(float *y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] += 1.0f;
}
]]

TestModule = {}

function TestModule.test_tostring()
  local m = sf.compile(SOURCE)
  lu.assertEquals(tostring(m), "module(kernel.cu)")
  lu.assertEquals(tostring(m:kernel("add_one")), "kernel(add_one, 2 parameters, kernel.cu)")
end

function TestModule.test_close()
  local y = sf.zeros({ 8 })
  local kept, k
  do
    local m <close> = sf.compile(SOURCE)
    k = m:kernel("add_one")
    k:launch(1, 32, { y, 8 })
    kept = m
  end
  lu.assertEquals(y:totable(), { 1, 1, 1, 1, 1, 1, 1, 1 })
  lu.assertEquals(tostring(kept), "module(kernel.cu, unloaded)")
  lu.assertEquals(tostring(k), "kernel(add_one, 2 parameters, kernel.cu unloaded)")
  contains(error_of(kept.kernel, kept, "add_one"), "module has been unloaded")
  contains(error_of(kept.launch, kept, "add_one", 1, 32, { y, 8 }), "module has been unloaded")
  contains(error_of(k.launch, k, 1, 32, { y, 8 }), "the kernel's module has been unloaded")
  contains(error_of(k.launch_many, k, 2, 1, 32, { y, 8 }), "the kernel's module has been unloaded")
  contains(error_of(k.attributes, k), "the kernel's module has been unloaded")
  lu.assertEquals(y:totable(), { 1, 1, 1, 1, 1, 1, 1, 1 }, "nothing ran after the unload")
  do local m <close> = kept end
  -- a new module works as before
  sf.compile(SOURCE):launch("add_one", 1, 32, { y, 8 })
  lu.assertEquals(y:get(1), 2)
end

TestEvent = {}

function TestEvent.test_tostring_and_close()
  local e = sf.event()
  lu.assertEquals(tostring(e), "event(cuda)")
  e:record()
  lu.assertEquals(tostring(e), "event(cuda, recorded)")
  local other = sf.event():record()
  do local c <close> = e end
  lu.assertEquals(tostring(e), "event(cuda, destroyed)")
  contains(error_of(e.record, e), "event has been destroyed")
  contains(error_of(e.synchronize, e), "event has been destroyed")
  contains(error_of(sf.elapsed, other, e), "event has been destroyed")
end

TestStream = {}

function TestStream.test_tostring_and_close()
  local s = sf.stream()
  lu.assertEquals(tostring(s), "stream(cuda)")
  local y = sf.zeros({ 1024 }, "f16")          -- add takes 16-bit tensors on the GPU
  sf.ops.add { a = y, b = y, out = y, stream = s }
  do local c <close> = s end
  lu.assertEquals(tostring(s), "stream(cuda, destroyed)")
  contains(error_of(s.sync, s), "stream has been destroyed")
  contains(error_of(sf.event().record, sf.event(), s), "stream has been destroyed")
  contains(error_of(sf.ops.add, { a = y, b = y, out = y, stream = s }), "stream has been destroyed")
  sf.sync()
end

TestGraph = {}

function TestGraph.test_tostring_and_close()
  local k = sf.compile(SOURCE):kernel("add_one")
  local y = sf.zeros({ 8 })
  sf.sync()                                -- zeroed on the default stream, before the replay there
  local kept
  do
    local g <close> = sf.graph(function() k:launch(1, 32, { y, 8 }) end, 2)
    lu.assertEquals(tostring(g), "graph(2 nodes)")
    g:launch()
    kept = g
  end
  sf.sync()
  lu.assertEquals(y:totable(), { 2, 2, 2, 2, 2, 2, 2, 2 }, "the replay queued before the close ran")
  lu.assertEquals(tostring(kept), "graph(2 nodes, destroyed)")
  contains(error_of(kept.launch, kept), "graph has been destroyed")
  contains(error_of(kept.nodes, kept), "graph has been destroyed")
  -- closed on an error too
  kept = testlib.closed_by_error(function() return sf.graph(function() k:launch(1, 32, { y, 8 }) end, 1) end)
  lu.assertEquals(tostring(kept), "graph(1 node, destroyed)")
  -- a destroyed graph closes again without complaint
  do local g <close> = kept end
  sf.sync()
  lu.assertEquals(y:totable(), { 2, 2, 2, 2, 2, 2, 2, 2 }, "nothing ran after the close")
end

return lu.LuaUnit.run()
