-- Summary statistics of a list of samples (timings in ms, but any numbers work).
local stats = {}

-- stats.percentile(sorted, p): the value at fraction p (0..1) of an ascending list,
-- interpolating linearly between ranks (the median is p = 0.5).
local function percentile(sorted, p)
  local pos = 1 + p * (#sorted - 1)
  local lo = math.floor(pos)
  local frac = pos - lo
  if frac == 0 then
    return sorted[lo]
  end
  return sorted[lo] + frac * (sorted[lo + 1] - sorted[lo])
end

stats.percentile = percentile

function stats.summary(samples)
  if type(samples) ~= "table" or #samples == 0 then
    error("stats.summary: expected a non-empty list of numbers", 2)
  end
  local n, sorted, sum = #samples, {}, 0
  for i = 1, n do
    local x = samples[i]
    if type(x) ~= "number" or x ~= x then
      error(("stats.summary: sample %d is %s, not a number"):format(i, tostring(x)), 2)
    end
    sorted[i] = x
    sum = sum + x
  end
  table.sort(sorted)
  local mean = sum / n
  local squares = 0
  for i = 1, n do
    squares = squares + (sorted[i] - mean) ^ 2
  end
  local std = n > 1 and math.sqrt(squares / (n - 1)) or 0.0
  local median = percentile(sorted, 0.5)
  local p25, p75 = percentile(sorted, 0.25), percentile(sorted, 0.75)
  return {
    n = n,
    median = median,
    mean = mean,
    std = std,
    min = sorted[1],
    max = sorted[n],
    p25 = p25,
    p75 = p75,
    p95 = percentile(sorted, 0.95),
    p99 = percentile(sorted, 0.99),
    noise = mean ~= 0 and std / mean or 0.0,
    iqr_noise = median ~= 0 and (p75 - p25) / median or 0.0,
  }
end

return stats
