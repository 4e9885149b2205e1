-- Validation policy (doc/API.md, Validation): compare an output with a reference, dtype-aware bounds,
-- NaN/Inf never pass, outputs poisoned before the call, a fresh seed each run.
local sf = require "sfbench"

local validate = {}

-- relative L2 bounds per output dtype
validate.bounds = { f64 = 1e-12, f32 = 1e-5, tf32 = 1e-3, f16 = 2e-3, bf16 = 1.6e-2 }

-- A seed that differs between runs (printed by the caller so a failure can be replayed).
function validate.fresh_seed()
  local frac = sf.now() % 1
  return (os.time() * 1000003 + math.floor(frac * 1e6)) % 2147483647
end

-- Fill with NaN so that an element the op does not write fails the check.
function validate.poison(t)
  return t:fill(0 / 0)
end

-- check(out, ref [, {bound=, max_abs=}]) -> result table with ok and the metrics.
-- The bound defaults to the one of out's dtype.
function validate.check(out, ref, opts)
  opts = opts or {}
  local r = sf.compare(out, ref)
  r.bound = opts.bound or validate.bounds[out:dtype()] or 0
  r.ok = r.nan == 0 and r.inf == 0 and r.ref_nonfinite == 0 and r.rel_l2 <= r.bound
    and (opts.max_abs == nil or r.max_abs <= opts.max_abs)
  return r
end

-- One line for a table of checks.
function validate.describe(r)
  local bad = {}
  if r.nan > 0 then bad[#bad + 1] = r.nan .. " NaN" end
  if r.inf > 0 then bad[#bad + 1] = r.inf .. " Inf" end
  if r.ref_nonfinite > 0 then bad[#bad + 1] = r.ref_nonfinite .. " non-finite in the reference" end
  local s = ("rel_l2 %.3g (bound %.3g), max_abs %.3g"):format(r.rel_l2, r.bound, r.max_abs)
  if #bad > 0 then s = s .. ", " .. table.concat(bad, ", ") end
  return (r.ok and "ok: " or "FAIL: ") .. s
end

return validate
