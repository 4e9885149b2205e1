-- The options of a tool over result files (`sfbench TOOL ARGS...`, lua/sfbench/cli): GNU-style
-- `--name value`, `--name=value` and `-x` for a flag, the rest positional (all of it after
-- `--`). A mistake is a usage error (sfbench.params): one line, exit 2.
local params = require "sfbench.params"

local getopt = {}

local HELP = { kind = "flag" } -- -h, --help: every tool's

-- getopt.parse(tool, argv, spec, help) -> options, positionals; or nil after printing help on
-- stdout, where -h or --help comes before any mistake. spec maps each long name to {kind = "flag"|"string"|"number",
-- short = "x"}; a flag is true when given, a number must read as one. Messages name the tool
-- and point at its --help.
function getopt.parse(tool, argv, spec, help)
  local function usage(msg)
    params.usage_error(("%s: %s (see sfbench %s --help)"):format(tool, msg, tool))
  end
  local by_short = { h = "help" }
  for name, o in pairs(spec) do
    if o.short then by_short[o.short] = name end
  end
  local opts, positional, i, rest = {}, {}, 1, false
  while i <= #argv do
    local a = argv[i]
    if rest or a == "-" or a:sub(1, 1) ~= "-" then
      positional[#positional + 1] = a
    elseif a == "--" then
      rest = true
    else
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:match("^%-%-(.+)$") or by_short[a:sub(2)]
      local o = name == "help" and HELP or spec[name]
      if not o then usage(("unknown option '%s'"):format(a)) end
      if o == HELP then -- at once: whatever follows is not checked
        io.stdout:write(help)
        return nil
      end
      if o.kind == "flag" then
        if value then usage(("option --%s takes no value"):format(name)) end
        value = true
      elseif not value then
        i = i + 1
        value = argv[i]
        if value == nil then usage(("option --%s needs a value"):format(name)) end
      end
      if o.kind == "number" then
        local n = tonumber(value)
        if not n then usage(("bad value '%s' for --%s: expected a number"):format(value, name)) end
        value = n
      end
      opts[name] = value
    end
    i = i + 1
  end
  return opts, positional
end

return getopt
