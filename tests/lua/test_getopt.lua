-- sfbench.getopt: the option forms of the result-file tools and their usage errors.
-- luacheck: allow defined top
local lu = require "luaunit"
local support = require "fake_sf"
local testlib = require "testlib"
local getopt = require "sfbench.getopt"

local SPEC = { all = { kind = "flag" }, alpha = { kind = "number" }, output = { kind = "string" },
  verbose = { kind = "flag", short = "v" } }

TestGetopt = {}

function TestGetopt.test_forms()
  local opts, args = getopt.parse("t", { "a.json", "--alpha", "0.01", "--all", "--output=o.json", "b", "-" }, SPEC)
  lu.assertEquals(opts, { alpha = 0.01, all = true, output = "o.json" })
  lu.assertEquals(args, { "a.json", "b", "-" })
  opts, args = getopt.parse("t", { "-v", "--", "--all", "-x" }, SPEC)
  lu.assertEquals(opts, { verbose = true })
  lu.assertEquals(args, { "--all", "-x" })
  opts = getopt.parse("t", { "--alpha=-1e-3" }, SPEC)
  lu.assertEquals(opts.alpha, -1e-3)
end

function TestGetopt.test_help()
  for _, flag in ipairs({ "-h", "--help" }) do
    local out = support.capture()
    local restore = support.patch({ stdout = out }, io)
    local opts, args = getopt.parse("t", { "a", flag, "--nope" }, SPEC, "Usage: t\n")
    restore()
    lu.assertNil(opts)
    lu.assertNil(args)
    lu.assertEquals(out.text, "Usage: t\n")
  end
end

function TestGetopt.test_mistakes_are_usage_errors()
  local cases = {
    { { "--nope" }, "t: unknown option '--nope' (see sfbench t --help)" },
    { { "-x" }, "t: unknown option '-x'" },
    { { "--alpha" }, "t: option --alpha needs a value" },
    { { "--alpha", "abc" }, "t: bad value 'abc' for --alpha: expected a number" },
    { { "--all=yes" }, "t: option --all takes no value" },
  }
  for _, c in ipairs(cases) do
    local ok, err = pcall(getopt.parse, "t", c[1], SPEC)
    lu.assertFalse(ok)
    lu.assertIsTable(err)
    testlib.contains(err.usage, c[2])
  end
end

return lu.LuaUnit.run()
