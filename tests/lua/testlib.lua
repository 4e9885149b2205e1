-- Helpers shared by the Lua tests (CPU and GPU): the error a call raises, what a message must
-- mention, and f32 rounding done by the C library (independently of sfbench).
local lu = require "luaunit"

local testlib = {}

-- SF_TEST_PATTERN=P runs only the tests whose names (TestClass.test_name, or test_name) match the
-- Lua pattern P, as luaunit's -p does: e.g. one test of a file at a time under a tool whose memory
-- grows with the run (tests/gpu/sanitize.sh's racecheck). Every test file that requires this module
-- and calls lu.LuaUnit.run() honours it.
local pattern = os.getenv("SF_TEST_PATTERN")
if pattern and pattern ~= "" then
  local run = lu.LuaUnit.run
  function lu.LuaUnit.run(...)
    return run("-p", pattern, ...)
  end
end

-- The error a call raises, as a string; fails the test when it does not raise.
function testlib.error_of(f, ...)
  local ok, err = pcall(f, ...)
  lu.assertFalse(ok, "expected an error, the call succeeded")
  return tostring(err)
end

-- Fails unless msg contains every one of the given plain substrings.
function testlib.contains(msg, ...)
  for _, part in ipairs({ ... }) do
    if not msg:find(part, 1, true) then
      lu.fail(("error message %q does not mention %q"):format(msg, part))
    end
  end
end

-- The value make() returns, after an error left the block of the to-be-closed variable holding
-- it (its __close has run)
function testlib.closed_by_error(make)
  local kept
  local ok = pcall(function()
    local v <close> = make()
    kept = v
    error("stop")
  end)
  lu.assertFalse(ok)
  return kept
end

-- The table t with the entries of over put in (an entry false removes the key): an op's valid
-- arguments with one thing changed. t is modified and returned.
function testlib.override(t, over)
  for k, v in pairs(over or {}) do
    if v == false then t[k] = nil else t[k] = v end
  end
  return t
end

-- Fails unless a compare result r counts no NaN or Inf in the output and no non-finite element
-- in the reference: compare leaves all of them out of rel_l2, max_abs and ref_norm, so a check
-- of those alone passes an output left NaN, or one against a reference left NaN. Returns r.
function testlib.assert_finite(r, what)
  lu.assertEquals(r.nan + r.inf + r.ref_nonfinite, 0,
    ("%s%d NaN, %d Inf, %d non-finite in the reference"):format(what and what .. ": " or "", r.nan, r.inf, r.ref_nonfinite))
  return r
end

-- Fails unless tensors a and b hold the same values, bit for bit, all finite: NaN or Inf in a,
-- and NaN or Inf in b (compare leaves such elements out of max_abs), fail it
function testlib.assert_same(a, b, what)
  local r = testlib.assert_finite(require("sfbench").compare(a, b), what)
  lu.assertEquals(r.max_abs, 0, what)
end

-- The mean and standard deviation of a list of numbers
function testlib.mean_std(v)
  local s, s2 = 0, 0
  for _, x in ipairs(v) do
    s = s + x
    s2 = s2 + x * x
  end
  local m = s / #v
  return m, math.sqrt(s2 / #v - m * m)
end

-- Skips the calling test where our Hopper kernels do not run (another GPU, or a build without
-- sm_90a), so that it reports a skip rather than a pass
function testlib.skip_unless_hopper()
  if not require("sfbench").device().hopper_kernels then
    lu.skip("needs our Hopper kernels: a Hopper GPU and an sm_90a build")
  end
end

-- x rounded to the nearest f32
function testlib.f32(x)
  return (string.unpack("f", string.pack("f", x)))
end

-- n token ids in 0..vocab-1 from seed (a model's prompt)
function testlib.token_ids(n, vocab, seed)
  local u = require("sfbench").rand({ n }, "f64", { seed = seed, device = "cpu" }):totable()
  local t = {}
  for i = 1, n do t[i] = math.floor(u[i] * vocab) end
  return t
end

return testlib
