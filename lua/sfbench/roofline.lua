-- What a roofline needs: a device's peaks, and each point's arithmetic intensity.
-- Peaks: the best FLOP/s and the best B/s measured on a device among the results at hand (a
-- gemm_sweep's square GEMM and memory_ops' streaming ops are the measurements of them), and the
-- DRAM bandwidth its memory clock and bus width give (two transfers a clock).
-- Intensity: FLOPs over the bytes a call must move at least (its inputs and outputs once),
-- known for the GEMM-shaped scenarios from their rows; or FLOP/s over B/s where a point
-- declared both.
local roofline = {}

local ELEMENT_BYTES = { f16 = 2, bf16 = 2, f32 = 4, f64 = 8, i32 = 4 }

local function positive(...)
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) ~= "number" or v <= 0 then return false end
  end
  return true
end

-- bytes moved at least by one call of a row's point, per scenario (nil where a field is missing)
local function gemm_bytes(r)
  local es = ELEMENT_BYTES[r.dtype]
  if not (es and positive(r.m, r.n, r.k)) then return nil end
  return es * (r.m * r.k + r.n * r.k + r.m * r.n)
end

local function ffn_bytes(r)
  local es = ELEMENT_BYTES[r.dtype]
  if not (es and positive(r.tokens, r.hidden, r.intermediate)) then return nil end
  local weights = r.act == "swiglu" and 3 or 2
  return es * (2 * r.tokens * r.hidden + weights * r.hidden * r.intermediate)
end

local function attention_bytes(r)
  local es = ELEMENT_BYTES[r.dtype]
  if not (es and positive(r.seq, r.heads, r.kv_heads, r.head_dim)) then return nil end
  return es * (r.batch or 1) * r.seq * r.head_dim * (2 * r.heads + 2 * r.kv_heads)
end

roofline.traffic = {
  gemm_sweep = gemm_bytes, torch_gemm = gemm_bytes,
  ffn_sweep = ffn_bytes,
  attention_sweep = attention_bytes,
}

-- FLOP/byte of a point: from flops_s and bytes_s when both were measured, else from the
-- scenario's traffic and the point's FLOPs (flops_s × time).
function roofline.intensity(scenario, row, m)
  if m.flops_s and m.bytes_s and m.bytes_s > 0 then return m.flops_s / m.bytes_s end
  local traffic = roofline.traffic[scenario]
  local bytes = traffic and traffic(row)
  if not (bytes and m.flops_s and m.time_s) then return nil end
  return m.flops_s * m.time_s / bytes
end

-- DRAM bandwidth of a device record, B/s (nil where the record lacks the memory clock or bus)
function roofline.dram_bandwidth(device)
  if type(device) ~= "table" or not positive(device.mem_clock_max_mhz, device.mem_bus_width) then return nil end
  return 2 * device.mem_clock_max_mhz * 1e6 * device.mem_bus_width / 8
end

-- Peaks by device name from measured points {device=, flops_s=, bytes_s=, where=}:
-- {[name] = {flops_s=, flops_where=, bytes_s=, bytes_where=, dram=}}; devices maps a name to its
-- record (for the DRAM figure).
function roofline.peaks(points, devices)
  local peaks = {}
  for name, dev in pairs(devices) do peaks[name] = { dram = roofline.dram_bandwidth(dev) } end
  for _, p in ipairs(points) do
    local pk = peaks[p.device]
    if not pk then
      pk = {}
      peaks[p.device] = pk
    end
    if p.flops_s and p.flops_s > (pk.flops_s or 0) then pk.flops_s, pk.flops_where = p.flops_s, p.where end
    if p.bytes_s and p.bytes_s > (pk.bytes_s or 0) then pk.bytes_s, pk.bytes_where = p.bytes_s, p.where end
  end
  return peaks
end

return roofline
