-- A KV cache over tensors, for decoding: per layer K and V of B sequences whose lengths differ,
-- either contiguous [B, capacity, Hkv, D] or paged as vLLM lays it out (a pool of pages
-- [pages, page_size, Hkv, D] per layer and a block table [B, pages per sequence] giving each
-- sequence's pages in order). The lengths and the block table live on the host too, so every
-- request is checked before anything is launched; the device copies are what the ops read.
--
--   local cache = kv_cache.new{batch=, capacity=, kv_heads=, head_dim=, layers=1, dtype="f16",
--                              page_size=nil, pages=nil, shuffle=nil, theta=10000, device=nil}
--   cache:extend(counts)          -- counts[b] more tokens in sequence b (a prompt already there)
--   cache:step(T)                 -- a decode step: T more tokens in every sequence
--   cache:append(layer, k, v [, q]) -- the step's K and V [B, T, Hkv, D] written into the cache,
--                                 -- K turned by RoPE at each row's own position on the way (k
--                                 -- itself unchanged), q [B, T, H, D] turned in place there too
--   cache:store(layer, k, v)      -- K and V written without the RoPE (K already turned, as a prefill's)
--   cache:reset()                 -- every sequence empty again, its pages back in the pool
--   cache:attend(layer, q, out [, opts]) -- decode_attention over the cache (opts: lse, scale, splits, causal)
local sf = require "sfbench"

local kv_cache = {}
local Cache = {}
Cache.__index = Cache

local function check_int(v, name, low)
  if math.type(v) ~= "integer" or v < low then
    error(("kv_cache: '%s' must be an integer >= %d, got %s"):format(name, low, tostring(v)), 3)
  end
  return v
end

-- new{...}: see the top of the file. pages (paged) defaults to what B full sequences need;
-- shuffle = seed hands pages out in a random order instead of 0, 1, 2, ...
function kv_cache.new(opts)
  local known = { batch = 1, capacity = 1, kv_heads = 1, head_dim = 1, layers = 1, dtype = 1, page_size = 1,
    pages = 1, shuffle = 1, theta = 1, device = 1 }
  for k in pairs(opts) do
    if not known[k] then error(("kv_cache.new: unknown option '%s'"):format(tostring(k)), 2) end
  end
  local c = setmetatable({}, Cache)
  c.batch = check_int(opts.batch, "batch", 1)
  c.capacity = check_int(opts.capacity, "capacity", 1)
  c.kv_heads = check_int(opts.kv_heads, "kv_heads", 1)
  c.head_dim = check_int(opts.head_dim, "head_dim", 2)
  c.layers = check_int(opts.layers or 1, "layers", 1)
  c.dtype = opts.dtype or "f16"
  c.theta = opts.theta or 10000
  c.device = opts.device
  local dev = { device = c.device }
  local Hkv, D = c.kv_heads, c.head_dim
  c.k, c.v = {}, {}
  if opts.page_size then
    local ps = check_int(opts.page_size, "page_size", 1)
    if ps & (ps - 1) ~= 0 then
      error(("kv_cache.new: page size %d is not supported: it must be a power of two"):format(ps), 2)
    end
    c.page_size = ps
    c.pages_per_seq = (c.capacity + ps - 1) // ps
    c.capacity = c.pages_per_seq * ps -- whole pages
    c.n_pages = check_int(opts.pages or c.batch * c.pages_per_seq, "pages", 1)
    for l = 1, c.layers do
      c.k[l] = sf.zeros({ c.n_pages, ps, Hkv, D }, c.dtype, dev)
      c.v[l] = sf.zeros({ c.n_pages, ps, Hkv, D }, c.dtype, dev)
    end
    c.free = {}
    for p = c.n_pages - 1, 0, -1 do c.free[#c.free + 1] = p end -- popped from the end: 0 first
    if opts.shuffle then
      local order = sf.rand({ c.n_pages }, "f32", { seed = opts.shuffle, device = "cpu" }):totable()
      table.sort(c.free, function(a, b) return order[a + 1] < order[b + 1] or (order[a + 1] == order[b + 1] and a < b) end)
    end
    c.table = {}
    for b = 1, c.batch do c.table[b] = {} end
    c.block_table = sf.zeros({ c.batch, c.pages_per_seq }, "i32", dev)
  else
    for l = 1, c.layers do
      c.k[l] = sf.zeros({ c.batch, c.capacity, Hkv, D }, c.dtype, dev)
      c.v[l] = sf.zeros({ c.batch, c.capacity, Hkv, D }, c.dtype, dev)
    end
  end
  c.lengths = {}
  for b = 1, c.batch do c.lengths[b] = 0 end
  c.seqlens = sf.zeros({ c.batch }, "i32", dev)
  c.positions = sf.zeros({ c.batch }, "i32", dev) -- first position of the current step's tokens
  return c
end

local function upload(dst, values, shape)
  dst:copy(sf.from_table(values, shape, "i32", { device = "cpu" }))
end

-- counts[b] (or counts, for every sequence) more tokens: checked whole before anything
-- changes, pages taken from the pool, lengths and block table uploaded. Returns the lengths
-- the sequences had before (the new tokens' first positions).
function Cache:extend(counts)
  local B, want = self.batch, {}
  for b = 1, B do
    local n = type(counts) == "table" and counts[b] or counts
    if math.type(n) ~= "integer" or n < 0 then
      error(("kv_cache: the count of sequence %d must be an integer >= 0, got %s"):format(b, tostring(n)), 2)
    end
    if self.lengths[b] + n > self.capacity then
      error(("kv_cache: appending %d token(s) to sequence %d of length %d passes the cache's capacity of %d")
        :format(n, b, self.lengths[b], self.capacity), 2)
    end
    want[b] = n
  end
  if self.page_size then
    local need = 0
    for b = 1, B do
      need = need + (self.lengths[b] + want[b] + self.page_size - 1) // self.page_size - #self.table[b]
    end
    if need > #self.free then
      error(("kv_cache: the step needs %d more page(s), the pool has %d free of %d"):format(need, #self.free, self.n_pages), 2)
    end
  end
  local before, flat = {}, {}
  for b = 1, B do
    before[b] = self.lengths[b]
    self.lengths[b] = self.lengths[b] + want[b]
    if self.page_size then
      local row = self.table[b]
      while #row * self.page_size < self.lengths[b] do row[#row + 1] = table.remove(self.free) end
      for j = 1, self.pages_per_seq do flat[#flat + 1] = row[j] or -1 end
    end
  end
  upload(self.seqlens, self.lengths, { B })
  upload(self.positions, before, { B })
  if self.page_size then upload(self.block_table, flat, { B, self.pages_per_seq }) end
  self.step_tokens = nil
  return before
end

-- A decode (or prefill) step of T tokens in every sequence; append then takes [B, T, ...].
function Cache:step(T)
  T = T or 1
  if math.type(T) ~= "integer" or T < 1 then error("kv_cache: a step adds T >= 1 tokens, got " .. tostring(T), 2) end
  local before = self:extend(T)
  self.step_tokens, self.step_first = T, before
  return before
end

local function check_layer(self, layer)
  if math.type(layer) ~= "integer" or layer < 1 or layer > self.layers then
    error(("kv_cache: layer %s is not one of 1..%d"):format(tostring(layer), self.layers), 3)
  end
end

-- [B, T, Hkv, D] of the cache's dtype, or an error naming what does not match
local function check_rows(self, name, t, T)
  local s = t:shape()
  local want = { self.batch, T, self.kv_heads, self.head_dim }
  if #s ~= 4 or s[1] ~= want[1] or s[2] ~= want[2] or s[3] ~= want[3] or s[4] ~= want[4] then
    error(("kv_cache: '%s' is [%s]; the cache takes [B=%d, T=%d, kv heads=%d, head dim=%d]")
      :format(name, table.concat(s, ", "), table.unpack(want)), 3)
  end
  if t:dtype() ~= self.dtype then
    error(("kv_cache: '%s' is %s, the cache %s"):format(name, t:dtype(), self.dtype), 3)
  end
end

-- every sequence empty: lengths uploaded, every page back in the pool
function Cache:reset()
  local B = self.batch
  if self.page_size then
    for b = 1, B do
      local row = self.table[b]
      for j = #row, 1, -1 do self.free[#self.free + 1] = row[j] end
      self.table[b] = {}
    end
  end
  for b = 1, B do self.lengths[b] = 0 end
  self:extend(0)
end

local function step_rows(self, layer, k, v, what)
  check_layer(self, layer)
  local T = self.step_tokens
  if not T then error(("kv_cache: %s follows step(T), which says how many tokens it adds"):format(what), 3) end
  check_rows(self, "k", k, T)
  check_rows(self, "v", v, T)
  return T
end

-- The current step's K and V of one layer, K already turned by RoPE: both copied into the cache
-- rows of the step (one copy each where every sequence's rows start at the same position of a
-- contiguous cache).
function Cache:store(layer, k, v)
  local T = step_rows(self, layer, k, v, "store")
  local kc, vc = self.k[layer], self.v[layer]
  local same = not self.page_size
  for b = 2, self.batch do same = same and self.step_first[b] == self.step_first[1] end
  if same then
    kc:slice(2, self.step_first[1] + 1, T):copy(k)
    vc:slice(2, self.step_first[1] + 1, T):copy(v)
    return
  end
  for b = 1, self.batch do
    local first = self.step_first[b] -- 0-based position of the step's first token
    local kb, vb = k:slice(1, b, 1), v:slice(1, b, 1)
    if self.page_size then
      local t = 0
      while t < T do
        local pos = first + t
        local page, off = self.table[b][pos // self.page_size + 1], pos % self.page_size
        local run = math.min(T - t, self.page_size - off)
        kc:slice(1, page + 1, 1):slice(2, off + 1, run):copy(kb:slice(2, t + 1, run))
        vc:slice(1, page + 1, 1):slice(2, off + 1, run):copy(vb:slice(2, t + 1, run))
        t = t + run
      end
    else
      kc:slice(1, b, 1):slice(2, first + 1, T):copy(kb)
      vc:slice(1, b, 1):slice(2, first + 1, T):copy(vb)
    end
  end
end

-- The current step's K and V of one layer into the cache, K turned by RoPE on the way (token t
-- of sequence b at position lengths_before[b] + t), and q, if given, turned in place at the same
-- positions: one kv_append op, whatever the layout.
function Cache:append(layer, k, v, q)
  step_rows(self, layer, k, v, "append")
  sf.ops.kv_append { k = k, v = v, k_cache = self.k[layer], v_cache = self.v[layer], positions = self.positions,
    block_table = self.block_table, q = q, theta = self.theta }
end

-- decode_attention of q [B, Nq, H, D] over one layer's cache into out; opts: lse, scale,
-- splits, causal (default true). Returns the op's number of KV splits.
function Cache:attend(layer, q, out, opts)
  check_layer(self, layer)
  opts = opts or {}
  local s = q:shape()
  if #s ~= 4 or s[1] ~= self.batch or s[4] ~= self.head_dim or s[3] % self.kv_heads ~= 0 then
    error(("kv_cache: 'q' is [%s]; the cache takes [B=%d, Nq, heads (a multiple of %d kv heads), head dim=%d]")
      :format(table.concat(s, ", "), self.batch, self.kv_heads, self.head_dim), 2)
  end
  local max_len = 0
  for b = 1, self.batch do max_len = math.max(max_len, self.lengths[b]) end
  return sf.ops.decode_attention { q = q, k = self.k[layer], v = self.v[layer], seqlens = self.seqlens,
    block_table = self.block_table, out = out, lse = opts.lse, scale = opts.scale, splits = opts.splits,
    causal = opts.causal, max_seqlen = max_len > 0 and max_len or nil }
end

-- K and V bytes one layer's attention reads at the current lengths
function Cache:bytes_read()
  local n = 0
  for b = 1, self.batch do n = n + self.lengths[b] end
  local elem = self.k[1]:nbytes() // self.k[1]:numel()
  return 2 * n * self.kv_heads * self.head_dim * elem
end

return kv_cache
