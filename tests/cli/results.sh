#!/bin/sh
# The result files: a gemm sweep on the CPU backend writes one JSON document whose fields are
# checked after parsing (inside sfbench, with cjson); a sweep interrupted with SIGINT after its
# first point exits 130 and still saves the points it measured; a sweep whose measure fails
# saves its partial results with the error. No half-written (.tmp) file is ever left.
. "$SF_SRCDIR/tests/cli/lib.sh"

# ---- a complete sweep ----

out=$SCRATCH/complete
run "$SFBENCH" --device cpu --output "$out" "$SF_SRCDIR/scenarios/gemm_sweep.lua" timeout=0.2 tokens=16
expect_rc 0 "gemm_sweep"
expect_files "$out" "*.json" 1 "gemm_sweep"
expect_no_tmp "$out" "gemm_sweep"
json=$(files_in "$out" "*.json" | head -n 1)
expect_stdout_has "| dtype" "gemm_sweep table"
expect_stdout_has "| square" "gemm_sweep table"
expect_stderr_has "[1/5] " "gemm_sweep progress"
expect_stderr_has "[5/5] " "gemm_sweep progress"
expect_stderr_has "results saved to $json" "gemm_sweep"
case $(basename "$json") in
gemm_sweep-[0-9]*-[0-9]*.json) pass "file name gemm_sweep-<timestamp>.json" ;;
*) fail "file name $(basename "$json")" ;;
esac

version=$("$SFBENCH" --version | sed 's/^sfbench //')
check_json "$json" "gemm_sweep JSON fields" "
check(doc.scenario == 'gemm_sweep', 'scenario is ' .. tostring(doc.scenario))
check(doc.complete == true, 'complete is not true')
check(doc.interrupted == false, 'interrupted is not false')
check(doc.error == nil, 'error is set')
local ctx = doc.context
check(type(ctx) == 'table', 'no context')
check(type(ctx.device) == 'table' and ctx.device.backend == 'cpu', 'context.device.backend is not cpu')
check(type(ctx.device.name) == 'string', 'context.device.name')
check(ctx.sfbench_version == '$version', 'context.sfbench_version is ' .. tostring(ctx.sfbench_version))
check(type(ctx.command_line) == 'string' and ctx.command_line:find('timeout=0.2', 1, true)
  and ctx.command_line:find('tokens=16', 1, true), 'context.command_line: ' .. tostring(ctx.command_line))
check(type(ctx.time) == 'string' and ctx.time:match('^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$'), 'context.time')
check(type(ctx.model) == 'table' and ctx.model.hidden == 256 and ctx.model.intermediate == 688,
  'context.model is not the 7b model scaled by 16')
local p = doc.params
check(type(p) == 'table', 'no params')
check(p.timeout == 0.2, 'params.timeout is ' .. tostring(p.timeout))
check(#p.tokens == 1 and p.tokens[1] == 16, 'params.tokens')
check(#p.dtype == 1 and p.dtype[1] == 'f32', 'params.dtype')
check(#p.square == 1 and p.square[1] == 64, 'params.square')
check(p.model == '7b', 'params.model')
check(p.cold == false, 'params.cold')
local want = {
  { 'square', 64, 64, 64 }, { 'qkv', 16, 768, 256 }, { 'o', 16, 256, 256 },
  { 'gate_up', 16, 1376, 256 }, { 'down', 16, 256, 688 },
}
check(type(doc.rows) == 'table' and #doc.rows == #want, 'rows: ' .. #(doc.rows or {}) .. ', expected 5')
local stops = { converged = true, timeout = true, max_samples = true, iters = true }
for i, w in ipairs(want) do
  local r = doc.rows[i]
  local where = 'row ' .. i .. ': '
  check(r.shape == w[1] and r.m == w[2] and r.n == w[3] and r.k == w[4],
    where .. tostring(r.shape) .. ' ' .. tostring(r.m) .. 'x' .. tostring(r.n) .. 'x' .. tostring(r.k))
  check(r.dtype == 'f32', where .. 'dtype')
  check(type(r.ms) == 'number' and r.ms > 0, where .. 'ms')
  check(type(r.tflops) == 'number' and r.tflops > 0, where .. 'tflops')
  check(math.abs(r.tflops - 2 * w[2] * w[3] * w[4] / r.ms / 1e9) <= 1e-9 * r.tflops, where .. 'tflops from ms')
  check(type(r.noise) == 'number' and r.noise >= 0, where .. 'noise')
  check(type(r.samples) == 'number' and r.samples >= 1 and r.samples == math.floor(r.samples), where .. 'samples')
  check(stops[r.stop], where .. 'stop is ' .. tostring(r.stop))
end
check(type(doc.results) == 'table' and #doc.results == #want, 'results')
for i, res in ipairs(doc.results) do
  check(#res.samples == doc.rows[i].samples, 'results ' .. i .. ': samples kept')
  check(res.stats.median == doc.rows[i].ms, 'results ' .. i .. ': median')
  check(res.point.shape == want[i][1], 'results ' .. i .. ': point')
end
"

# --quiet: no table, no progress, still a file
out=$SCRATCH/quiet
run "$SFBENCH" --device cpu --quiet --output "$out" gemm_sweep timeout=0.05 tokens=16 square=32 iters=2
expect_rc 0 "gemm_sweep --quiet"
expect_empty "$OUT_FILE" "gemm_sweep --quiet: stdout"
expect_empty "$ERR_FILE" "gemm_sweep --quiet: stderr"
expect_files "$out" "*.json" 1 "gemm_sweep --quiet"
json=$(files_in "$out" "*.json" | head -n 1)
check_json "$json" "gemm_sweep iters=2 JSON" "
check(#doc.rows == 5, 'rows')
for _, r in ipairs(doc.rows) do check(r.samples == 2 and r.stop == 'iters', 'iters=2 gives 2 samples') end
check(doc.rows[1].m == 32, 'square=32')
"

# ---- an interrupted sweep ----

out=$SCRATCH/interrupted
mkdir -p "$out"
"$SFBENCH" --device cpu --output "$out" gemm_sweep timeout=2 tokens=16,32,48 \
    </dev/null >"$SCRATCH/int.out" 2>"$SCRATCH/int.err" &
pid=$!
# wait until the first point is done: the progress line of the second one is printed
tries=0
while ! grep -q '^\[2/13\]' "$SCRATCH/int.err" 2>/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -gt 1200 ] || ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
done
if grep -q '^\[2/13\]' "$SCRATCH/int.err"; then
    kill -INT "$pid"
    wait "$pid"
    RC=$?
    OUT_FILE=$SCRATCH/int.out
    ERR_FILE=$SCRATCH/int.err
    expect_rc 130 "interrupted sweep"
    expect_stderr_has "partial results saved to" "interrupted sweep"
    expect_stderr_has "interrupted" "interrupted sweep"
    expect_files "$out" "*.json" 1 "interrupted sweep"
    expect_no_tmp "$out" "interrupted sweep"
    json=$(files_in "$out" "*.json" | head -n 1)
    OUT_FILE=$SCRATCH/stdout
    ERR_FILE=$SCRATCH/stderr
    check_json "$json" "interrupted sweep JSON" "
check(doc.scenario == 'gemm_sweep', 'scenario')
check(doc.interrupted == true, 'interrupted is not true')
check(doc.complete == false, 'complete is not false')
check(doc.error == nil, 'an interruption is not an error')
check(type(doc.rows) == 'table' and #doc.rows >= 1 and #doc.rows < 13, 'rows: ' .. #(doc.rows or {}))
check(doc.rows[1].shape == 'square' and doc.rows[1].ms > 0, 'first row')
check(doc.context.device.backend == 'cpu', 'context')
check(doc.params.timeout == 2 and #doc.params.tokens == 3, 'params')
"
else
    kill "$pid" 2>/dev/null
    wait "$pid"
    fail "interrupted sweep: the second point never started"
    sed 's/^/    /' "$SCRATCH/int.err"
fi

# ---- a sweep whose measure fails ----

out=$SCRATCH/failing
cat >"$SCRATCH/failing_sweep.lua" <<'EOF'
local sweep = require "sfbench.sweep"
sweep.run {
  name = "failing_sweep",
  params = { n = 3 },
  points = { { i = 1 }, { i = 2 }, { i = 3 } },
  measure = function(p)
    if p.i == 3 then error("measure broke at point 3") end
    return { i = p.i, twice = 2 * p.i }
  end,
}
EOF
run "$SFBENCH" --device cpu --output "$out" "$SCRATCH/failing_sweep.lua"
expect_rc 1 "failing sweep"
expect_stderr_has "measure broke at point 3" "failing sweep"
expect_stderr_has "partial results saved to" "failing sweep"
expect_files "$out" "*.json" 1 "failing sweep"
expect_no_tmp "$out" "failing sweep"
json=$(files_in "$out" "*.json" | head -n 1)
case $(basename "$json") in
failing_sweep-*.json) pass "failing sweep: named after the sweep" ;;
*) fail "failing sweep: file $(basename "$json")" ;;
esac
check_json "$json" "failing sweep JSON" "
check(doc.scenario == 'failing_sweep', 'scenario')
check(doc.complete == false and doc.interrupted == false, 'complete/interrupted')
check(type(doc.error) == 'string' and doc.error:find('measure broke at point 3', 1, true), 'error')
check(#doc.rows == 2 and doc.rows[1].twice == 2 and doc.rows[2].twice == 4, 'the two rows measured')
check(doc.params.n == 3, 'params')
"

# ---- an output directory that cannot be written ----

blocker=$SCRATCH/not_a_dir
: >"$blocker"
run "$SFBENCH" --device cpu --output "$blocker/sub" gemm_sweep timeout=0.05 tokens=16 square=16 iters=1
expect_rc 1 "unwritable output directory"
expect_stderr_has "not_a_dir" "unwritable output directory"

finish
