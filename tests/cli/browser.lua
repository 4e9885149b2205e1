-- Loads a page in headless Chromium, driven over the DevTools protocol on a pipe (two FIFOs), and
-- checks it: no console error, no uncaught exception, no request leaving file:, every SVG laid
-- out with paths that draw something (and some data), every label inside its SVG. Prints each
-- problem and fails when there is one; writes a full-page screenshot.
--   sfbench --device cpu tests/cli/browser.lua browser=chromium page=FILE.html screenshot=FILE.png dir=SCRATCH
local cjson = require "cjson"
local params = require "sfbench.params"

local p = params.get { browser = "chromium", page = "", screenshot = "", dir = "", width = 1400, timeout = 120 }
if p.page == "" or p.dir == "" then params.usage_error("browser.lua: page= and dir= are needed") end

local function sh_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local page = p.page:sub(1, 1) == "/" and p.page or (os.getenv("PWD") .. "/" .. p.page)
local to_browser, from_browser = p.dir .. "/cdp.in", p.dir .. "/cdp.out"
local log, pidfile = p.dir .. "/browser.log", p.dir .. "/browser.pid"
assert(os.execute(("rm -f %s %s && mkfifo %s %s"):format(sh_quote(to_browser), sh_quote(from_browser),
  sh_quote(to_browser), sh_quote(from_browser))))
-- the browser reads commands on fd 3 and answers on fd 4; opening a FIFO waits for the other end,
-- so both ends are opened in the same order here and there
assert(os.execute(("timeout %d %s --headless --no-sandbox --disable-gpu --no-first-run --no-default-browser-check "
  .. "--disable-extensions --hide-scrollbars --user-data-dir=%s --remote-debugging-pipe 3<%s 4>%s >%s 2>&1 & echo $! >%s")
  :format(p.timeout, sh_quote(p.browser), sh_quote(p.dir .. "/profile"), sh_quote(to_browser), sh_quote(from_browser),
    sh_quote(log), sh_quote(pidfile))))
local out = assert(io.open(to_browser, "wb"))
local inp = assert(io.open(from_browser, "rb"))

local next_id, events = 0, {}

local function receive()
  local buf = {}
  while true do
    local c = inp:read(1)
    if c == nil then error("the browser closed its pipe (its output: " .. log .. ")", 0) end
    if c == "\0" then break end
    buf[#buf + 1] = c
  end
  return cjson.decode(table.concat(buf))
end

-- sends a command and waits for its answer, keeping the events that arrive meanwhile
local function call(method, args, session)
  next_id = next_id + 1
  local msg = { id = next_id, method = method, params = args or {} }
  if session then msg.sessionId = session end
  out:write(cjson.encode(msg), "\0")
  out:flush()
  while true do
    local m = receive()
    if m.id == next_id then
      if m.error then error(("%s: %s"):format(method, cjson.encode(m.error)), 0) end
      return m.result
    end
    if m.method then events[#events + 1] = m end
  end
end

local function wait_event(method)
  for i, e in ipairs(events) do
    if e.method == method then table.remove(events, i); return e end
  end
  while true do
    local m = receive()
    if m.method == method then return m end
    if m.method then events[#events + 1] = m end
  end
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64_decode(s)
  local value = {}
  for i = 1, #B64 do value[B64:byte(i)] = i - 1 end
  local parts = {}
  for i = 1, #s, 4 do
    local a, b, c, d = s:byte(i, i + 3)
    local n = value[a] << 18 | value[b] << 12 | (value[c] or 0) << 6 | (value[d] or 0)
    local bytes = string.char(n >> 16 & 255, n >> 8 & 255, n & 255)
    if d == 61 then bytes = bytes:sub(1, c == 61 and 1 or 2) end
    parts[#parts + 1] = bytes
  end
  return table.concat(parts)
end

local CHECK = [[
(() => {
  const problems = [];
  const svgs = Array.from(document.querySelectorAll('svg'));
  svgs.forEach((s, i) => {
    const name = (s.closest('figure') || {}).id || ('svg ' + (i + 1));
    const box = s.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) problems.push(name + ': not laid out');
    const paths = Array.from(s.querySelectorAll('path'));
    if (paths.length === 0) problems.push(name + ': no path');
    paths.forEach((p, j) => {
      const b = p.getBBox();
      if ((p.getAttribute('d') || '').trim() === '' || (b.width === 0 && b.height === 0))
        problems.push(name + ': path ' + (j + 1) + ' draws nothing');
    });
    if (s.querySelectorAll('path.series').length === 0) problems.push(name + ': no data drawn');
    s.querySelectorAll('text').forEach(t => {
      const r = t.getBoundingClientRect();
      if (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1 || r.bottom > box.bottom + 1)
        problems.push(name + ': label "' + t.textContent + '" sticks out of the plot');
    });
  });
  const kinds = {};
  document.querySelectorAll('figure[data-kind]').forEach(f => { kinds[f.dataset.kind] = (kinds[f.dataset.kind] || 0) + 1; });
  return { svgs: svgs.length, problems: problems, kinds: kinds, height: document.documentElement.scrollHeight };
})()
]]

local problems = {}
local ok, err = pcall(function()
  local target = call("Target.createTarget", { url = "about:blank" })
  local session = call("Target.attachToTarget", { targetId = target.targetId, flatten = true }).sessionId
  for _, domain in ipairs({ "Page", "Runtime", "Log", "Network" }) do call(domain .. ".enable", {}, session) end
  call("Emulation.setDeviceMetricsOverride", { width = p.width, height = 900, deviceScaleFactor = 1, mobile = false },
    session)
  call("Page.navigate", { url = "file://" .. page }, session)
  wait_event("Page.loadEventFired")
  local r = call("Runtime.evaluate", { expression = CHECK, returnByValue = true }, session).result.value
  for _, e in ipairs(events) do
    local a = e.params
    if e.method == "Runtime.consoleAPICalled" and (a.type == "error" or a.type == "assert") then
      local parts = {}
      for _, arg in ipairs(a.args or {}) do parts[#parts + 1] = tostring(arg.value or arg.description) end
      problems[#problems + 1] = "console error: " .. table.concat(parts, " ")
    elseif e.method == "Runtime.exceptionThrown" then
      problems[#problems + 1] = "exception: " .. tostring(a.exceptionDetails.exception and
        a.exceptionDetails.exception.description or a.exceptionDetails.text)
    elseif e.method == "Log.entryAdded" and a.entry.level == "error" then
      problems[#problems + 1] = "console error: " .. tostring(a.entry.text) .. " " .. tostring(a.entry.url or "")
    elseif e.method == "Network.requestWillBeSent" and not a.request.url:match("^file:") and
        not a.request.url:match("^data:") and not a.request.url:match("^about:") then
      problems[#problems + 1] = "fetch from outside the file: " .. a.request.url
    end
  end
  for _, prob in ipairs(r.problems) do problems[#problems + 1] = prob end
  local kinds = {}
  for k, n in pairs(r.kinds) do kinds[#kinds + 1] = ("%s=%d"):format(k, n) end
  table.sort(kinds)
  print(("svgs=%d %s"):format(r.svgs, table.concat(kinds, " ")))
  if p.screenshot ~= "" then
    call("Emulation.setDeviceMetricsOverride", { width = p.width, height = math.min(r.height, 16000),
      deviceScaleFactor = 1, mobile = false }, session)
    local shot = call("Page.captureScreenshot", { format = "png" }, session)
    local f = assert(io.open(p.screenshot, "wb"))
    f:write(base64_decode(shot.data))
    f:close()
  end
  call("Browser.close", {})
end)
out:close()
inp:close()
if not ok then
  local f = io.open(pidfile)
  local pid = f and f:read("n")
  if f then f:close() end
  if pid then os.execute(("kill %d 2>/dev/null"):format(pid)) end
  error(err, 0)
end
for _, prob in ipairs(problems) do print("problem: " .. prob) end
if #problems > 0 then error(("%d problem(s) in %s"):format(#problems, p.page), 0) end
