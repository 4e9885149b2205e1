-- User kernels through NVRTC on the CUDA backend: compiling from a string and from a file,
-- launching with tensor, integer and float arguments, the errors of compile, lookup, argument
-- packing and launch (each leaving the device usable), launch_many, attributes, shared memory,
-- streams and event timing. Run with --device cuda.
-- luacheck: allow defined top
local lu = require "luaunit"
local sf = require "sfbench"
local testlib = require "testlib"
local error_of, contains = testlib.error_of, testlib.contains

local SOURCE = [[
extern "C" __global__ void axpy(float *y, const float *x, float alpha, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] += alpha * x[i];
}
extern "C" __global__ void add_one(float *y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] += 1.0f;
}
extern "C" __global__ void scale64(double *y, double s, long long n) {
  long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i < n) y[i] *= s;
}
extern "C" __global__ void index2d(int *out, int width) {
  int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  out[y * width + x] = y * 1000 + x;
}
extern "C" __global__ void reverse_block(float *y) {
  extern __shared__ float buf[];
  int t = threadIdx.x;
  buf[t] = y[blockIdx.x * blockDim.x + t];
  __syncthreads();
  y[blockIdx.x * blockDim.x + t] = buf[blockDim.x - 1 - t];
}
extern "C" __global__ void static_smem(float *y) {
  __shared__ float tile[256];
  tile[threadIdx.x] = (float)threadIdx.x;
  __syncthreads();
  y[threadIdx.x] = tile[255 - threadIdx.x];
}
extern "C" __global__ void spin(float *y, int iters) {
  float v = y[threadIdx.x];
  for (int i = 0; i < iters; i++) v = v * 0.999f + 0.001f;
  y[threadIdx.x] = v;
}
]]

local module

local function mod()
  module = module or sf.compile(SOURCE)
  return module
end

local function seq(n, start, step)
  local t = {}
  for i = 1, n do t[i] = (start or 1) + (i - 1) * (step or 1) end
  return t
end

-- ---------------------------------------------------------------------------------------------

TestCompile = {}

function TestCompile.test_from_string()
  local m = mod()
  local n = 1000
  local x = sf.from_table(seq(n), { n })
  local y = sf.from_table(seq(n, 0, 10), { n })
  m:launch("axpy", (n + 255) // 256, 256, { y, x, 0.5, n })
  local want = {}
  for i = 1, n do want[i] = (i - 1) * 10 + 0.5 * i end
  lu.assertEquals(y:totable(), want)
  -- the n argument limits the work: only the first 3 elements change
  local y2 = sf.zeros({ 8 })
  m:launch("axpy", 1, 32, { y2, sf.from_table(seq(8), { 8 }), 2.0, 3 })
  lu.assertEquals(y2:totable(), { 2, 4, 6, 0, 0, 0, 0, 0 })
end

function TestCompile.test_from_file()
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write([[
extern "C" __global__ void fill_iota(int *out, int n, int offset) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = i + offset;
}
]])
  f:close()
  local ok, m = pcall(sf.compile, path)
  os.remove(path)
  lu.assertTrue(ok, tostring(m))
  local out = sf.zeros({ 300 }, "i32")
  m:launch("fill_iota", 2, 256, { out, 300, 7 })
  lu.assertEquals(out:totable(), seq(300, 7))
  -- a path ending in .cu that does not exist is an error naming it
  contains(error_of(sf.compile, "/nonexistent/dir/kernel.cu"), "cannot open", "/nonexistent/dir/kernel.cu")
end

function TestCompile.test_compile_error_shows_log()
  local msg = error_of(sf.compile, [[
extern "C" __global__ void broken(float *y) {
  y[0] = undefined_thing;
}
]])
  contains(msg, "compile:", "error", "undefined_thing")
  -- options are passed through: a macro defined on the command line
  local m = sf.compile([[
extern "C" __global__ void k(float *y) { y[0] = VALUE; }
]], { options = { "-DVALUE=42.5f" } })
  local y = sf.zeros({ 1 })
  m:launch("k", 1, 1, { y })
  lu.assertEquals(y:totable(), { 42.5 })
  contains(error_of(sf.compile, "extern \"C\" __global__ void k() {}\n", { options = "x" }), "options")
end

function TestCompile.test_unknown_kernel()
  local m = mod()
  contains(error_of(m.kernel, m, "no_such_kernel"), "no kernel 'no_such_kernel'")
  contains(error_of(m.launch, m, "no_such_kernel", 1, 1, {}), "no_such_kernel")
  -- the module still works
  local y = sf.zeros({ 4 })
  m:launch("add_one", 1, 4, { y, 4 })
  lu.assertEquals(y:totable(), { 1, 1, 1, 1 })
end

-- ---------------------------------------------------------------------------------------------

TestLaunch = {}

function TestLaunch.test_argument_errors()
  local k = mod():kernel("axpy")
  local y, x = sf.zeros({ 4 }), sf.zeros({ 4 })
  contains(error_of(k.launch, k, 1, 32, { y }), "'axpy' takes 4 arguments, 1 given")
  contains(error_of(k.launch, k, 1, 32, { y, x, 1.0, 4, 5 }), "takes 4 arguments, 5 given")
  contains(error_of(k.launch, k, 1, 32), "takes 4 arguments, 0 given")
  contains(error_of(k.launch, k, 1, 32, { y, "x", 1.0, 4 }), "argument 2", "string")
  contains(error_of(k.launch, k, 1, 32, { y, x, y, 4 }), "argument 3", "tensor")
  contains(error_of(k.launch, k, 1, 32, { y, sf.zeros({ 4 }, "f32", { device = "cpu" }), 1.0, 4 }),
    "argument 2", "cpu tensor")
  local freed = sf.zeros({ 4 })
  freed:free()
  contains(error_of(k.launch, k, 1, 32, { freed, x, 1.0, 4 }), "argument 1", "freed")
  contains(error_of(k.launch, k, 0, 32, { y, x, 1.0, 4 }), "grid must be positive")
  contains(error_of(k.launch, k, 1, { 32, 0 }, { y, x, 1.0, 4 }), "block[2]")
  contains(error_of(k.launch, k, 1, { 1, 1, 1, 1 }, { y, x, 1.0, 4 }), "block has 1 to 3 dimensions")
  contains(error_of(k.launch, k, "x", 32, { y, x, 1.0, 4 }), "grid must be an integer or a table")
  -- after all that the kernel still runs
  k:launch(1, 32, { y, sf.from_table({ 1, 2, 3, 4 }, { 4 }), 3.0, 4 })
  lu.assertEquals(y:totable(), { 3, 6, 9, 12 })
end

function TestLaunch.test_view_arguments()
  -- a slice passes the address of its first element
  local y = sf.zeros({ 10 })
  mod():launch("add_one", 1, 32, { y:slice(1, 4, 3), 3 })
  lu.assertEquals(y:totable(), { 0, 0, 0, 1, 1, 1, 0, 0, 0, 0 })
  local m2 = sf.zeros({ 4, 8 })
  mod():launch("add_one", 1, 32, { m2:slice(1, 3, 1), 8 })
  lu.assertEquals(m2:slice(1, 3, 1):totable(), { 1, 1, 1, 1, 1, 1, 1, 1 })
  lu.assertEquals(m2:slice(1, 2, 1):totable(), { 0, 0, 0, 0, 0, 0, 0, 0 })
end

function TestLaunch.test_number_types()
  local m = mod()
  -- f64 and i64 parameters, inferred from an 8-byte parameter and the value's subtype
  local y = sf.from_table({ 1, 2, 3 }, { 3 }, "f64")
  m:launch("scale64", 1, 32, { y, 0.25, 3 })
  lu.assertEquals(y:totable(), { 0.25, 0.5, 0.75 })
  -- a signature makes an integer literal a float
  local k = m:kernel("axpy", { sig = "ptr, ptr, f32, i32" })
  local y2 = sf.zeros({ 2 })
  k:launch(1, 32, { y2, sf.from_table({ 1, 2 }, { 2 }), 2, 2 })
  lu.assertEquals(y2:totable(), { 2, 4 })
  contains(error_of(m.kernel, m, "axpy", { sig = "ptr, ptr, f64, i32" }), "parameter 3 is 4 bytes")
  contains(error_of(m.kernel, m, "axpy", { sig = "ptr, ptr, f32" }), "sig names 3 of its 4 parameters")
  contains(error_of(m.kernel, m, "axpy", { sig = "ptr, ptr, f32, i32, i32" }), "more than its 4 parameters")
  contains(error_of(m.kernel, m, "axpy", { sig = "ptr, ptr, half, i32" }), "unknown parameter type 'half'")
end

function TestLaunch.test_grid_and_block_tables()
  local out = sf.zeros({ 8, 16 }, "i32")
  mod():launch("index2d", { 2, 2 }, { 8, 4 }, { out, 16 })
  local v, want = out:totable(), {}
  for y = 0, 7 do
    for x = 0, 15 do want[y * 16 + x + 1] = y * 1000 + x end
  end
  lu.assertEquals(v, want)
end

function TestLaunch.test_shared_memory()
  local m = mod()
  local y = sf.from_table(seq(256, 0), { 256 })
  m:launch("reverse_block", 2, 128, { y }, { shared = 128 * 4 })
  local want = {}
  for b = 0, 1 do
    for t = 0, 127 do want[b * 128 + t + 1] = b * 128 + 127 - t end
  end
  lu.assertEquals(y:totable(), want)
  -- more than the default 48 KiB of dynamic shared memory is opted into
  local big = 64 * 1024
  if (sf.device().smem_per_block_optin or 0) >= big then
    local z = sf.from_table(seq(64, 0), { 64 })
    m:launch("reverse_block", 1, 64, { z }, { shared = big })
    lu.assertEquals(z:totable(), seq(64, 63, -1))
  end
  -- asking for more than the device has is a clean error
  local too_much = (sf.device().smem_per_block_optin or 0) + 1024 * 1024
  contains(error_of(m.launch, m, "reverse_block", 1, 64, { y }, { shared = too_much }), "reverse_block", "shared")
  m:launch("add_one", 1, 32, { y, 1 })
  lu.assertEquals(y:get(1), want[1] + 1)
end

function TestLaunch.test_bad_launch_then_next_works()
  local m = mod()
  local k = m:kernel("add_one")
  local y = sf.zeros({ 64 })
  local msg = error_of(k.launch, k, 1, 4096, { y, 64 })
  contains(msg, "launch:", "'add_one'", "4096")
  msg = error_of(k.launch, k, 1, { 1024, 1024 }, { y, 64 })
  contains(msg, "'add_one'")
  -- no sticky error: the next launch, a copy and an op all work
  k:launch(1, 64, { y, 64 })
  sf.sync()
  lu.assertEquals(y:totable()[64], 1)
  local c = sf.tensor({ 2, 2 })
  sf.ops.gemm { a = sf.from_table({ 1, 2, 3, 4 }, { 2, 2 }), b = sf.from_table({ 1, 0, 0, 1 }, { 2, 2 }), c = c }
  lu.assertEquals(c:totable(), { 1, 2, 3, 4 })
end

function TestLaunch.test_launch_many()
  local k = mod():kernel("add_one")
  local y = sf.zeros({ 100 })
  k:launch_many(25, 1, 128, { y, 100 })
  local v = y:totable()
  lu.assertEquals(v[1], 25)
  lu.assertEquals(v[100], 25)
  k:launch_many(0, 1, 128, { y, 100 })
  lu.assertEquals(y:get(1), 25)
  contains(error_of(k.launch_many, k, 3, 1, 128, { y }), "takes 2 arguments, 1 given")
  lu.assertEquals(y:get(1), 25, "a failed launch_many launches nothing")
end

function TestLaunch.test_hold_and_release()
  local k = mod():kernel("add_one")
  local y = sf.zeros({ 100 })
  sf.hold()
  contains(error_of(sf.hold), "already held")
  k:launch_many(50, 1, 128, { y, 100 })
  lu.assertTrue(sf.release(), "released before the guard fired")
  lu.assertEquals(y:get(1), 50)
  lu.assertEquals(y:get(100), 50)
  lu.assertTrue(sf.release(), "a release with nothing held is a no-op")
end

function TestLaunch.test_attributes()
  local m = mod()
  local a = m:kernel("axpy"):attributes()
  lu.assertEquals(a.params, 4)
  lu.assertEquals(math.type(a.registers), "integer")
  lu.assertTrue(a.registers > 0 and a.registers <= 255)
  lu.assertEquals(a.static_shared, 0)
  lu.assertTrue(a.local_bytes >= 0)
  lu.assertTrue(a.max_threads >= 32 and a.max_threads <= 1024)
  local s = m:kernel("static_smem"):attributes()
  lu.assertEquals(s.static_shared, 256 * 4)
  lu.assertEquals(s.params, 1)
  lu.assertEquals(m:kernel("scale64"):attributes().params, 3)
  local y = sf.zeros({ 256 })
  m:launch("static_smem", 1, 256, { y })
  lu.assertEquals(y:get(1), 255)
  lu.assertEquals(y:get(256), 0)
end

function TestLaunch.test_streams_and_events()
  local m = mod()
  local s = sf.stream()
  local y = sf.zeros({ 256 })
  local e0, e1 = sf.event(), sf.event()
  e0:record(s)
  for _ = 1, 20 do m:launch("spin", 1, 256, { y, 20000 }, { stream = s }) end
  e1:record(s)
  local ms = sf.elapsed(e0, e1)
  lu.assertEquals(type(ms), "number")
  lu.assertTrue(ms > 0, "elapsed " .. ms)
  s:sync()
  lu.assertTrue(y:get(1) > 0)
  -- the default stream
  local d0, d1 = sf.event(), sf.event()
  d0:record()
  m:kernel("spin"):launch_many(10, 1, 256, { y, 20000 })
  d1:record()
  d1:synchronize()
  lu.assertTrue(sf.elapsed(d0, d1) > 0)
  sf.flush_l2()
  sf.flush_l2(s)
  s:sync()
end

-- ev:wait orders the default stream's work after another stream's: the copy on the default
-- stream reads what the long spin on s wrote, not y's value before it
function TestLaunch.test_event_wait()
  local m = mod()
  local s, y, z = sf.stream(), sf.zeros({ 256 }), sf.zeros({ 256 })
  local done = sf.event()
  sf.sync()
  m:kernel("spin"):launch_many(50, 1, 256, { y, 20000 }, { stream = s })
  done:record(s)
  done:wait()
  z:copy(y)
  sf.sync()
  lu.assertTrue(z:get(1) > 0, "the copy ran before the spin ended")
  lu.assertEquals(z:get(1), y:get(1))
end

return lu.LuaUnit.run()
