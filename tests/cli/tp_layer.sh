#!/bin/sh
# The tensor-parallel layer on CPU ranks: validate_tp_layer checks TP = the world against the whole
# layer at 1 and 2 ranks (the sharding and the all-reduces: a wrong shard fails it), rank 0 alone
# saving its result; tp_layer_sweep writes one result with a row per impl and point, TP = the
# world; a tp= that is not the world, and a model whose heads do not split, are usage errors.
. "$SF_SRCDIR/tests/cli/lib.sh"
export TMPDIR="$SCRATCH/tmp"
mkdir -p "$TMPDIR"

for n in 1 2; do
    run "$SFBENCH" --gpus $n --device cpu --output "$SCRATCH/v$n" validate_tp_layer seq=17
    expect_rc 0 "validate_tp_layer on $n CPU rank(s)"
    expect_stdout_has "32 checks, 0 failed" "validate_tp_layer on $n rank(s): every check in bounds"
    expect_files "$SCRATCH/v$n" "*.json" 1 "validate_tp_layer on $n rank(s)"
done

for n in 1 2; do
    run "$SFBENCH" --gpus $n --device cpu --output "$SCRATCH/s$n" tp_layer_sweep seq=16,24
    expect_rc 0 "tp_layer_sweep on $n CPU rank(s)"
    expect_files "$SCRATCH/s$n" "*.json" 1 "tp_layer_sweep on $n rank(s)"
    json=$(files_in "$SCRATCH/s$n" "*.json" | head -n 1)
    [ -n "$json" ] && check_json "$json" "tp_layer_sweep on $n rank(s): a row per impl and seq, tp $n" "
check(#doc.rows == 4, #doc.rows .. ' rows')
local want = { { 'baseline', 16 }, { 'optimized', 16 }, { 'baseline', 24 }, { 'optimized', 24 } }
for i, row in ipairs(doc.rows) do
  check(row.impl == want[i][1] and row.seq == want[i][2], 'row ' .. i .. ': ' .. tostring(row.impl) .. ' ' .. tostring(row.seq))
  check(row.tp == $n and row.model == 'llama2-7b/16', 'row ' .. i .. ': tp ' .. tostring(row.tp))
  check(row.ms > 0 and row.comm_ms >= 0 and row.comm_pct >= 0 and row.comm_pct <= 100, 'row ' .. i .. ': times')
  local comm = 0
  for _, st in ipairs(row.stage_ms) do
    if st.stage:match('all_reduce') then comm = comm + st.ms end
  end
  check(math.abs(comm - row.comm_ms) < 1e-9, 'row ' .. i .. ': comm_ms is the all-reduce stages')
end
"
done

run "$SFBENCH" --gpus 2 --device cpu tp_layer_sweep tp=4
expect_rc 2 "tp= other than the world"
expect_stderr_has "tp=4, but this world has 2 rank(s): run it with --gpus 4" "the error says how to run it"
run "$SFBENCH" --gpus 2 --device cpu tp_layer_sweep model=70b
expect_rc 2 "70B scaled for the CPU over 2 ranks"
expect_stderr_has "llama2-70b/16's 1 kv heads do not split over 2 ranks" "the error names what does not divide"
finish
