-- Test support. Under the sfbench host the real module is used; under plain lua5.4 a fake one
-- stands in. Tests swap fields of that module for their own duration (patch), so they behave
-- the same under both.
local lfs = require "lfs"

local support = {}

if not package.loaded.sfbench and not package.preload.sfbench then
  package.preload.sfbench = function()
    local function host_event()
      return { record = function(ev) ev.t = os.clock() end }
    end
    return {
      args = {}, used_args = {}, version = "0.0-test", command_line = "lua5.4 test",
      output_dir = "results", quiet = true, script_name = "test",
      device = function() return { backend = "cpu", name = "fake cpu", index = 0 } end,
      clocks = function() return nil end,
      sync = function() end,
      now = os.clock,
      event = host_event,
      elapsed = function(a, b) return (b.t - a.t) * 1000 end,
      flush_l2 = function() end,
      isatty = function() return false end,
      interrupted = function() return false end,
      nvtx_push = function() end,
      nvtx_pop = function() end,
      profiler_start = function() end,
      profiler_stop = function() end,
    }
  end
end

support.sf = require "sfbench"

-- Set fields of a table (the sfbench module unless given); returns a function restoring them.
function support.patch(fields, target)
  target = target or support.sf
  local saved = {}
  for k, v in pairs(fields) do
    saved[k] = { target[k] }
    target[k] = v
  end
  return function()
    for k, old in pairs(saved) do target[k] = old[1] end
  end
end

-- A simulated device clock in milliseconds: fn advances it, events read it.
function support.sim_clock()
  local clock = { ms = 0, flushes = 0, syncs = 0, holds = 0 }
  function clock.advance(ms) clock.ms = clock.ms + ms end
  clock.fields = {
    now = function() return clock.ms / 1000 end,
    event = function() return { record = function(ev) ev.ms = clock.ms end } end,
    elapsed = function(a, b) return b.ms - a.ms end,
    sync = function() clock.syncs = clock.syncs + 1 end,
    flush_l2 = function() clock.flushes = clock.flushes + 1 end,
    clocks = function() return nil end,
    hold = function() clock.holds = clock.holds + 1 end,
    release = function() return true end,
  }
  return clock
end

-- An object with write() collecting everything written, to stand in for io.stdout/io.stderr.
function support.capture()
  local sink = { text = "" }
  function sink.write(self, ...)
    self.text = self.text .. table.concat({ ... })
    return self
  end
  return sink
end

function support.tmpdir()
  local path = os.tmpname()
  os.remove(path)
  assert(lfs.mkdir(path))
  return path
end

function support.listdir(path)
  local names = {}
  for name in lfs.dir(path) do
    if name ~= "." and name ~= ".." then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

function support.rmtree(path)
  for _, name in ipairs(support.listdir(path)) do
    local p = path .. "/" .. name
    if lfs.attributes(p, "mode") == "directory" then support.rmtree(p) else os.remove(p) end
  end
  lfs.rmdir(path)
end

return support
