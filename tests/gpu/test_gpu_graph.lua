-- CUDA graphs on the GPU. sf.graph runs nothing while it captures, and each replay runs every
-- captured call in order: user kernels, our ops and cuBLASLt, on sfbench's capture stream or a
-- given one (work given no stream goes to the capturing one). bench.run{graph = true} times
-- replays and leaves what eager calls leave. A call that cannot be captured (a synchronization,
-- an allocation, the autotuning first call of a GEMM shape) is an error naming it, after which
-- nothing captured has run and the stream, the default stream and the next capture work.
-- Run with --device cuda.
-- luacheck: allow defined top
local lu = require "luaunit"
local sf = require "sfbench"
local bench = require "sfbench.bench"
local validate = require "sfbench.validate"
local testlib = require "testlib"
local error_of, contains, assert_same = testlib.error_of, testlib.contains, testlib.assert_same

local SOURCE = [[
extern "C" __global__ void add_one(float *y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] += 1.0f;
}
extern "C" __global__ void twice(float *y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] *= 2.0f;
}
]]
local N = 1000
local BLOCKS = (N + 255) // 256
local mod = sf.compile(SOURCE)
local add_one, twice = mod:kernel("add_one"), mod:kernel("twice")

local function expect_all(t, v, what)
  for i, x in ipairs(t:totable()) do
    if x ~= v then lu.fail(("%s: element %d is %s, expected %s"):format(what, i, tostring(x), tostring(v))) end
  end
end

TestGraph = {}

-- y = (y + 1)·2, three times a capture: 0 → 2 → 6 → 14 per replay, and 126 after the second
-- (the other order, ·2 then +1, gives 7 and 63)
function TestGraph.test_replays_run_the_calls_in_order()
  local y = sf.zeros({ N })
  local g = sf.graph(function()
    add_one:launch(BLOCKS, 256, { y, N })
    twice:launch(BLOCKS, 256, { y, N })
  end, 3)
  sf.sync()
  expect_all(y, 0, "after the capture, before any replay")
  lu.assertEquals(g:nodes(), 6)
  g:launch()
  sf.sync()
  expect_all(y, 14, "after one replay")
  g:launch()
  sf.sync()
  expect_all(y, 126, "after two replays")
end

function TestGraph.test_capture_on_a_given_stream()
  local s = sf.stream()
  local y = sf.zeros({ N })
  sf.sync()                                -- zeroed on the default stream, which s does not wait for
  local g = sf.graph(function()
    add_one:launch(BLOCKS, 256, { y, N }, { stream = s })   -- the capturing stream, named
    add_one:launch(BLOCKS, 256, { y, N })                   -- no stream: the capturing one too
  end, 2, s)
  lu.assertEquals(g:nodes(), 4)
  g:launch(s)
  s:sync()
  expect_all(y, 4, "one replay on the stream")
end

-- tensor methods run on the stream of work given none: the capturing one
function TestGraph.test_tensor_methods_captured()
  local y, z = sf.zeros({ N }), sf.zeros({ N })
  local g = sf.graph(function()
    y:fill(3)
    add_one:launch(BLOCKS, 256, { y, N })
    z:copy(y)
  end, 1)
  sf.sync()
  expect_all(y, 0, "y after the capture")
  expect_all(z, 0, "z after the capture")
  g:launch()
  sf.sync()
  expect_all(y, 4, "y after the replay")
  expect_all(z, 4, "z after the replay")
end

-- rmsnorm at T = 1 and a decode GEMM through cuBLASLt replay what they compute eagerly
function TestGraph.test_ops_replay_their_eager_results()
  local H = 4096
  local x = sf.randn({ 1, H }, "bf16", { seed = 1 })
  local w = sf.randn({ H }, "bf16", { seed = 2, mean = 1, std = 0.1 })
  local W = sf.randn({ H, H }, "bf16", { seed = 3, std = 0.02 })
  local h, y = sf.tensor({ 1, H }, "bf16"), sf.tensor({ 1, H }, "bf16")
  local function calls()
    sf.ops.rmsnorm { x = x, weight = w, out = h }
    sf.ops.gemm { a = h, b = W, c = y, transb = true }
  end
  calls()                                  -- eagerly first: cuBLASLt autotunes the shape here
  local want_h, want_y = h:to("cpu"), y:to("cpu")
  local ref_y = sf.tensor({ 1, H }, "f64", { device = "cpu" })
  sf.ops.gemm { a = want_h:to("cpu", "f64"), b = W:to("cpu", "f64"), c = ref_y, transb = true }
  validate.poison(h)
  validate.poison(y)
  local g = sf.graph(calls, 2)
  sf.sync()
  local v = h:to("cpu", "f32"):get(1, 1)
  lu.assertTrue(v ~= v, "h still poisoned after the capture")
  g:launch()
  sf.sync()
  assert_same(h, want_h, "rmsnorm replayed")
  local r = validate.check(y, ref_y)
  lu.assertTrue(r.ok, "gemm replayed: " .. validate.describe(r))
  r = sf.compare(y, want_y)
  lu.assertTrue(r.nan + r.inf == 0 and r.rel_l2 <= 1e-3, ("gemm replayed against eager: rel_l2 %.3g, %d NaN, %d Inf"):format(r.rel_l2, r.nan, r.inf))
end

function TestGraph.test_bench_run_graph_mode()
  local H = 4096
  local x = sf.randn({ 1, H }, "f16", { seed = 4 })
  local w = sf.randn({ H }, "f16", { seed = 5, mean = 1, std = 0.1 })
  local out = sf.tensor({ 1, H }, "f16")
  local fn = function() sf.ops.rmsnorm { x = x, weight = w, out = out } end
  fn()
  local want = out:to("cpu")
  validate.poison(out)
  local r = bench.run { name = "rmsnorm T=1", fn = fn, graph = true, iters = 20, warmup_time = 0.01 }
  lu.assertTrue(r.graph)
  lu.assertEquals(#r.samples, 20)
  lu.assertTrue(r.batch >= 1 and r.batch <= 4096, "calls per replay " .. r.batch)
  for _, ms in ipairs(r.samples) do lu.assertTrue(ms > 0, "sample " .. ms) end
  assert_same(out, want, "rmsnorm after graph-mode timing")
  -- on a given stream too
  local s = sf.stream()
  local rs = bench.run { fn = function() sf.ops.rmsnorm { x = x, weight = w, out = out, stream = s } end,
    graph = true, stream = s, iters = 5, warmup_time = 0 }
  lu.assertEquals(#rs.samples, 5)
  s:sync()
  assert_same(out, want, "rmsnorm after graph-mode timing on a stream")
end

-- after a failed capture: nothing captured ran, and the stream, the default stream and a new
-- capture on the same stream all work
local function usable_after_failure(y, s, what)
  sf.sync()
  expect_all(y, 0, what .. ": nothing captured ran")
  add_one:launch(BLOCKS, 256, { y, N }, { stream = s })
  s:sync()
  expect_all(y, 1, what .. ": a launch on the stream")
  add_one:launch(BLOCKS, 256, { y, N })
  sf.sync()
  expect_all(y, 2, what .. ": a launch on the default stream")
  local g = sf.graph(function() add_one:launch(BLOCKS, 256, { y, N }) end, 3, s)
  g:launch(s)
  s:sync()
  expect_all(y, 5, what .. ": a capture on the same stream")
  g = sf.graph(function() add_one:launch(BLOCKS, 256, { y, N }) end, 1)
  g:launch()
  sf.sync()
  expect_all(y, 6, what .. ": a capture on sfbench's stream")
end

function TestGraph.test_sync_refused()
  local s, y = sf.stream(), sf.zeros({ N })
  local err = error_of(sf.graph, function()
    add_one:launch(BLOCKS, 256, { y, N })
    sf.sync()
  end, 2, s)
  contains(err, "graph: sync cannot be captured into a CUDA graph", "cudaDeviceSynchronize")
  usable_after_failure(y, s, "sf.sync")
end

function TestGraph.test_stream_sync_and_compare_refused()
  local s, y = sf.stream(), sf.zeros({ N })
  contains(error_of(sf.graph, function()
    add_one:launch(BLOCKS, 256, { y, N })
    s:sync()
  end, 1, s), "graph: sync cannot be captured", "cudaStreamSynchronize")
  contains(error_of(sf.graph, function()
    add_one:launch(BLOCKS, 256, { y, N })
    sf.compare(y, y)
  end, 1, s), "graph: compare cannot be captured")
  usable_after_failure(y, s, "s:sync, sf.compare")
end

function TestGraph.test_allocation_refused()
  local s, y = sf.stream(), sf.zeros({ N })
  local before = sf.memory().in_use
  local err = error_of(sf.graph, function()
    add_one:launch(BLOCKS, 256, { y, N })
    local t <close> = sf.tensor({ 4 })
  end, 1, s)
  contains(err, "graph: tensor cannot be captured", "cannot allocate a tensor during a CUDA graph capture")
  lu.assertEquals(sf.memory().in_use, before)
  usable_after_failure(y, s, "sf.tensor")
end

-- A collection during a capture (the collector runs at whatever allocation it chooses, a captured
-- function's included) finalizes what it finds, and an event closed in a captured function is
-- destroyed: each cudaFree or destroy waits for the capture's end, as such a call during a capture
-- breaks it or waits on it. The capture and its replays work, and the memory comes back once the
-- capture has ended. (The collector is stopped meanwhile so that the garbage is still there when
-- the capture begins; an explicit collection runs anyway. The device's free memory is the whole
-- GPU's: the margin is for other processes allocating meanwhile.)
function TestGraph.test_releases_wait_for_the_capture()
  local y = sf.zeros({ N })
  collectgarbage("stop")
  local function garbage()
    local t, e = sf.zeros({ 64 << 20 }), sf.event()      -- 256 MiB
    e:record()
    local _, _, _ = sf.stream(), sf.compile(SOURCE), sf.graph(function() twice:launch(BLOCKS, 256, { t, N }) end, 1)
  end
  local ok, g, before = pcall(function()
    garbage()
    local closed = sf.event()
    sf.sync()
    local mem = sf.memory()
    return sf.graph(function()
      collectgarbage()
      add_one:launch(BLOCKS, 256, { y, N })
      do local _ <close> = closed end
    end, 1), mem
  end)
  collectgarbage("restart")
  lu.assertTrue(ok, g)
  local after = sf.memory()
  lu.assertTrue(after.in_use <= before.in_use - (256 << 20), ("in use: %d MiB, %d MiB before the capture")
    :format(after.in_use >> 20, before.in_use >> 20))
  lu.assertTrue(after.free >= before.free + (128 << 20), ("free memory rose by %d MiB over the capture, expected 256")
    :format((after.free - before.free) >> 20))
  g:launch()
  g:launch()
  sf.sync()
  expect_all(y, 2, "two replays of a capture that released on the way")
end

-- t:free() in a captured function is refused: the captured work may read the tensor at every
-- replay. The tensor is still there after, and the stream works as before.
function TestGraph.test_free_refused()
  local s, y, t = sf.stream(), sf.zeros({ N }), sf.zeros({ N })
  contains(error_of(sf.graph, function()
    add_one:launch(BLOCKS, 256, { y, N })
    t:free()
  end, 1, s), "graph: free cannot be captured", "tensor:free: cannot free a tensor during a CUDA graph capture")
  lu.assertFalse(t:is_freed())
  usable_after_failure(y, s, "t:free")
end

-- cuBLASLt times its candidates on the first call of a shape (events, a wait): not capturable;
-- once that call has run the shape captures, and bench.run makes that call before capturing
function TestGraph.test_autotuning_first_call()
  local s, y = sf.stream(), sf.zeros({ N })
  local a, b = sf.randn({ 8, 512 }, "bf16", { seed = 6 }), sf.randn({ 768, 512 }, "bf16", { seed = 7 })
  local c = sf.tensor({ 8, 768 }, "bf16")
  local function gemm() sf.ops.gemm { a = a, b = b, c = c, transb = true } end
  local err = error_of(sf.graph, function()
    add_one:launch(BLOCKS, 256, { y, N })
    gemm()
  end, 1, s)
  contains(err, "graph: gemm cannot be captured")
  usable_after_failure(y, s, "an autotuning gemm")
  local ref = sf.tensor({ 8, 768 }, "f64", { device = "cpu" })
  sf.ops.gemm { a = a:to("cpu", "f64"), b = b:to("cpu", "f64"), c = ref, transb = true }
  gemm()
  lu.assertTrue(validate.check(c, ref).ok, "eager gemm after the failed capture")
  validate.poison(c)
  local g = sf.graph(gemm, 1)
  g:launch()
  sf.sync()
  lu.assertTrue(validate.check(c, ref).ok, "the shape captured after its first call")
  -- a shape never run before: bench.run{graph = true} calls it once before capturing
  local a2, b2 = sf.randn({ 4, 1024 }, "bf16", { seed = 8 }), sf.randn({ 768, 1024 }, "bf16", { seed = 9 })
  local c2 = sf.tensor({ 4, 768 }, "bf16")
  local ref2 = sf.tensor({ 4, 768 }, "f64", { device = "cpu" })
  sf.ops.gemm { a = a2:to("cpu", "f64"), b = b2:to("cpu", "f64"), c = ref2, transb = true }
  local r = bench.run { fn = function() sf.ops.gemm { a = a2, b = b2, c = c2, transb = true } end, graph = true,
    warmup = 0, batch = 4, iters = 3 }
  lu.assertEquals(#r.samples, 3)
  lu.assertTrue(validate.check(c2, ref2).ok, "the new shape timed in graph mode")
end

function TestGraph.test_empty_and_nested_captures_refused()
  local other, y = sf.stream(), sf.zeros({ N })
  sf.sync()                                -- zeroed on the default stream, which other does not wait for
  contains(error_of(sf.graph, function() end, 3), "graph: the function queued no work on the capturing stream")
  -- work on another stream runs at once and is not captured
  contains(error_of(sf.graph, function() add_one:launch(BLOCKS, 256, { y, N }, { stream = other }) end, 1),
    "queued no work")
  other:sync()
  expect_all(y, 1, "the launch on the other stream ran")
  contains(error_of(sf.graph, function()
    sf.graph(function() add_one:launch(BLOCKS, 256, { y, N }) end, 1)
  end, 1), "graph: a capture is already in progress")
  sf.sync()
  expect_all(y, 1, "the outer capture ran nothing")
  local g = sf.graph(function() add_one:launch(BLOCKS, 256, { y, N }) end, 2)
  g:launch()
  sf.sync()
  expect_all(y, 3, "a capture after the refused ones")
  contains(error_of(sf.graph, function() add_one:launch(BLOCKS, 256, { y, N }) end, 0), "at least 1")
end

-- A failed capture names no op after it: a CUDA error raised outside any op later names sfbench,
-- not graph. That error: waiting for an event last recorded during a capture (cudaErrorCapturedEvent).
function TestGraph.test_failure_leaves_no_op_named()
  local y, e = sf.zeros({ N }), sf.event()
  sf.graph(function()
    add_one:launch(BLOCKS, 256, { y, N })
    e:record()                             -- on the capturing stream
  end, 1)
  local function blamed()
    local err = error_of(e.synchronize, e)
    contains(err, "CUDA error in cudaEventSynchronize")
    return err:match("(%w+): CUDA error")
  end
  lu.assertEquals(blamed(), "sfbench", "after a capture")
  contains(error_of(sf.graph, function() end, 1), "graph: the function queued no work")
  lu.assertEquals(blamed(), "sfbench", "after a capture of no work")
  contains(error_of(sf.graph, function()
    add_one:launch(BLOCKS, 256, { y, N })
    sf.sync()
  end, 1), "graph: sync cannot be captured")
  lu.assertEquals(blamed(), "sfbench", "after a capture that synchronized")
end

return lu.LuaUnit.run()
