-- The numbers a sweep's result file reports, recomputed from the file itself: each row's time is
-- the median of its own samples (worked out here, not taken from the stats), and its TFLOP/s or
-- TB/s is the scenario's FLOP or byte formula, written out again here, over that median.
-- Called by tests/cli/scenarios.sh through check_json: returns function(doc, check).
local REL = 1e-9

local function median(xs)
  local s = table.move(xs, 1, #xs, 1, {})
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end

local function close(a, b) return type(a) == "number" and type(b) == "number" and math.abs(a - b) <= REL * math.abs(b) end

-- a Llama-2 layer's FLOPs over a row's batch and seq (the model in the result's context)
local function layer_flops(r, doc)
  local m = doc.context.model
  local T, d, hd = r.batch * r.seq, m.hidden, m.head_dim
  return 2 * T * d * (m.heads + 2 * m.kv_heads) * hd      -- the q, k and v projections
    + 2 * T * d * m.heads * hd                               -- the output projection
    + 3 * 2 * T * d * m.intermediate                       -- gate, up and down
    + 4 * r.batch * m.heads * r.seq * r.seq * hd / 2       -- causal attention: half the scores
end

-- per scenario: the FLOPs (or bytes) of a row, the key of its rate, the rate of `amount` in `ms`,
-- and the row's median in ms (a scenario with no rate has its medians checked alone)
local FORMULAS = {
  gemm_sweep = { rate = "tflops", amount = function(r) return 2 * r.m * r.n * r.k end },
  attention_sweep = { rate = "tflops",
    amount = function(r) return 4 * r.batch * r.heads * r.seq * r.seq * r.head_dim * (r.causal and 0.5 or 1) end },
  ffn_sweep = { rate = "tflops",
    amount = function(r) return 2 * r.tokens * r.hidden * r.intermediate * (r.act == "swiglu" and 3 or 2) end },
  -- and each row's peak memory holds at least the layer's projection weights (2 bytes an element,
  -- 1 in the fp8 layer)
  layer_sweep = { rate = "tflops", amount = layer_flops, extra = function(doc, check)
    local m = doc.context.model
    local d = m.hidden
    local elems = d * (m.heads + 2 * m.kv_heads) * m.head_dim + d * m.heads * m.head_dim + 3 * d * m.intermediate
    for i, row in ipairs(doc.rows) do
      local bytes = elems * (row.impl == "fp8" and 1 or 2)
      check(type(row.peak_mib) == "number" and row.peak_mib * 2 ^ 20 >= bytes,
        ("row %d: peak %s MiB, less than the %s impl's %.1f MiB of weights"):format(i, tostring(row.peak_mib),
          row.impl, bytes / 2 ^ 20))
    end
  end },
  -- TFLOP/s per GPU: the layer's FLOPs shared over TP ranks
  tp_layer_sweep = { rate = "tflops", amount = function(r, doc) return layer_flops(r, doc) / r.tp end },
  memory_ops = { rate = "tbs", ms = function(r) return r.us / 1e3 end, amount = function(r)
    local T, H, es = r.tokens, r.hidden, 2
    local per_op = { rmsnorm = 2 * T * H * es + H * es, add_rmsnorm = 4 * T * H * es + H * es,
      ["rope (q+k of packed qkv)"] = 2 * T * 2 * (H // 128) * 128 * es, add = 3 * T * H * es }
    return assert(per_op[r.op], "unknown op " .. tostring(r.op))
  end, scale = 1e12 },
  ab = {},                                                   -- times only: no rate to check
  -- a row an impl: the weight matrix (n·k, 2 bytes) read once; the GEMV's rows of a point are one
  -- for each split count asked, in the order asked (the layout only: on the CPU backend the
  -- reference runs whatever is asked, and validate_gemv checks forced splits on the GPU)
  gemv_sweep = { rate = "tbs", ms = function(r) return r.us / 1e3 end, amount = function(r) return r.n * r.k * 2 end,
    scale = 1e12, extra = function(doc, check)
      local asked = {}
      for _, row in ipairs(doc.rows) do
        if row.impl == "gemv" then
          local key = row.proj .. " m=" .. row.m
          asked[key] = asked[key] or {}
          table.insert(asked[key], row.splits_asked)
        end
      end
      local want = table.concat(doc.params.splits, ",")
      for key, got in pairs(asked) do
        check(table.concat(got, ",") == want, ("%s: gemv rows for splits %s, asked %s"):format(key, table.concat(got, ","), want))
      end
      check(next(asked) ~= nil, "no gemv rows")
    end },
  -- the measured layers' time is the median; tokens/s is the batch (decode) or the prompt
  -- (prefill) over the whole model's time, and the floor the whole model's bytes over the peak
  model_sweep = { check = function(doc, check)
    local peak = doc.context.peak_bytes_per_s
    local timed = 0
    for i, row in ipairs(doc.rows) do
      if row.ms then
        timed = timed + 1
        local want = median(doc.results[timed].samples)
        check(close(row.ms, want), ("row %d: %s ms, the median of its samples is %s"):format(i, tostring(row.ms), want))
        local tok = (row.phase == "decode" and row.batch or row.tokens) * 1e3 / row.model_ms
        check(close(row.tok_s, tok), ("row %d: %s tokens/s, the formula gives %s"):format(i, tostring(row.tok_s), tok))
        check(row.model_ms >= row.ms * (1 - 1e-12) or row.layers == row.model_layers,
          ("row %d: the whole model (%s ms) is faster than the layers measured (%s ms)"):format(i, row.model_ms, row.ms))
        if row.floor_ms then
          check(close(row.floor_ms, row.bytes_model / peak * 1e3), ("row %d: floor %s ms, bytes over the peak give %s")
            :format(i, tostring(row.floor_ms), row.bytes_model / peak * 1e3))
        end
      end
    end
    check(timed == #doc.results, ("%d timed rows, %d results"):format(timed, #doc.results))
  end },
  -- each run's median is that of its samples, its GB/s the copy's bytes (read and written) over
  -- it, and the spread the largest deviation of a median from their mean
  timing_stability = { check = function(doc, check)
    local n = doc.params.mib * 2 ^ 20 // 4
    check(type(doc.results) == "table" and #doc.results == #doc.rows and #doc.rows == doc.params.runs,
      ("%d rows, %d timed results, %s runs"):format(#doc.rows, doc.results and #doc.results or 0, tostring(doc.params.runs)))
    local medians, sum = {}, 0
    for i, row in ipairs(doc.rows) do
      local res = doc.results[i]
      check(res.row == i, ("result %d is for row %s"):format(i, tostring(res.row)))
      local want = median(res.samples)
      medians[i], sum = want, sum + want
      check(row.samples == #res.samples, ("row %d: %s samples, %d kept"):format(i, tostring(row.samples), #res.samples))
      check(close(row.median_us, want * 1e3), ("row %d: %s µs, the median of its samples is %s"):format(i,
        tostring(row.median_us), want * 1e3))
      local gbs = 2 * n * 4 / (want * 1e-3) / 1e9
      check(close(row.gbs, gbs), ("row %d: %s GB/s, the formula gives %s"):format(i, tostring(row.gbs), gbs))
    end
    local mean, dev = sum / #medians, 0
    for _, m in ipairs(medians) do dev = math.max(dev, math.abs(m - mean)) end
    check(close(doc.spread.max_dev_pct, 100 * dev / mean), ("spread %s%%, the medians give %s%%"):format(
      tostring(doc.spread.max_dev_pct), 100 * dev / mean))
  end },
  -- each timed row's µs is the median of its samples, algbw its bytes over that (GB/s), busbw
  -- algbw times nccl-tests' factor for the op at the world size n; a row left out has a note
  nccl_sweep = { check = function(doc, check)
    local factor = { all_reduce = function(n) return 2 * (n - 1) / n end, all_gather = function(n) return (n - 1) / n end,
      reduce_scatter = function(n) return (n - 1) / n end, broadcast = function() return 1 end }
    local timed = 0
    for i, row in ipairs(doc.rows) do
      check(row.world == doc.context.world, ("row %d: world %s, the run's is %s"):format(i, tostring(row.world),
        tostring(doc.context.world)))
      if row.us then
        timed = timed + 1
        local res = doc.results[timed]
        check(res.row == i, ("result %d is for row %s, not row %d"):format(timed, tostring(res.row), i))
        local us = median(res.samples) * 1e3
        check(close(row.us, us), ("row %d: %s µs, the median of its samples is %s"):format(i, tostring(row.us), us))
        local algbw = row.bytes / (us * 1e-6) / 1e9
        check(close(row.algbw, algbw), ("row %d: algbw %s, the formula gives %s"):format(i, tostring(row.algbw), algbw))
        local busbw = algbw * factor[row.op](row.world)
        check(close(row.busbw, busbw), ("row %d: %s busbw %s at world %d, the formula gives %s"):format(i, row.op,
          tostring(row.busbw), row.world, busbw))
      else
        check(type(row.note) == "string" and row.note:find("^left out"), ("row %d: no time and no note"):format(i))
      end
    end
    check(timed == #(doc.results or {}), ("%d timed rows, %d results"):format(timed, #(doc.results or {})))
  end },
  read_ceiling = { rate = "tbs", ms = function(r) return r.us / 1e3 end, amount = function(r) return r.mib * 2 ^ 20 end,
    scale = 1e12 },
  decode_sweep = { rate = "tbs", ms = function(r) return r.us / 1e3 end, amount = function(r)
    local hkv = assert(tonumber(r.heads:match("/(%d+)$")), "heads " .. tostring(r.heads))
    return 2 * r.batch * r.seq * hkv * r.head_dim * 2        -- K and V of every cached row, 2 bytes
  end, scale = 1e12 },
}

-- a parameter the sweep was run over (doc.params) that its rows carry must be one of the columns
-- that identify a point for `sfbench compare`, unless the scenario declares the row's column a
-- measurement (gemv_sweep's splits: the count run, where the parameter is the count asked):
-- batch, say, reads as a measurement by its name (bench.run's calls a sample) unless declared
local function params_identify_points(doc, check)
  local identifying = {}
  for _, k in ipairs((require "sfbench.result_files").columns({ doc })) do identifying[k] = true end
  local declared = type(doc.column_kinds) == "table" and doc.column_kinds or {}
  for k in pairs(type(doc.params) == "table" and doc.params or {}) do
    local in_rows = false
    for _, row in ipairs(doc.rows) do in_rows = in_rows or row[k] ~= nil end
    check(not in_rows or identifying[k] or declared[k] == "measurement",
      ("parameter '%s' is a column of the rows but not one that identifies a point for compare"):format(k))
  end
end

return function(doc, check)
  params_identify_points(doc, check)
  local f = FORMULAS[doc.scenario]
  if f and f.check then return f.check(doc, check) end
  if not f then
    check(doc.results == nil, doc.scenario .. ": timed results but no formula to check them against")
    return
  end
  check(type(doc.results) == "table" and #doc.results == #doc.rows,
    ("%d rows, %d timed results"):format(#doc.rows, doc.results and #doc.results or 0))
  for i, row in ipairs(doc.rows) do
    local res = doc.results[i]
    local ms = f.ms and f.ms(row) or row.ms
    local want = median(res.samples)
    check(close(ms, want), ("row %d: %s ms, the median of its samples is %s"):format(i, tostring(ms), want))
    if f.rate and not (doc.scenario == "layer_sweep" and #doc.params.stages > 0) then
      local rate = (f.amount(row, doc) / (want * 1e-3)) / (f.scale or 1e12)
      check(close(row[f.rate], rate), ("row %d: %s %s, the formula gives %s"):format(i, f.rate, tostring(row[f.rate]), rate))
    end
  end
  if f.extra then f.extra(doc, check) end
end
