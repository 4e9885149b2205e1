#!/bin/sh
# Ranks without GPUs: `sfbench --gpus N --device cpu` (CPU ranks over shared memory) runs every
# collective right on every dtype; ranks a launcher started (Slurm's variables here) join the same
# way; a failing rank ends the others and leaves no rendezvous file; bad --gpus values, a world
# the environment gets wrong, and GPU ranks without GPUs are one-line errors.
. "$SF_SRCDIR/tests/cli/lib.sh"
COLL="$SF_SRCDIR/tests/cli/ranks_collectives.lua"
export TMPDIR="$SCRATCH/tmp"
mkdir -p "$TMPDIR"

for n in 1 2 3; do
    run "$SFBENCH" --gpus $n --device cpu "$COLL"
    expect_rc 0 "collectives on $n CPU rank(s)"
    got=$(grep -c "^ok rank" "$OUT_FILE")
    if [ "$got" -eq $n ]; then pass "every one of $n ranks checked its collectives"; else fail "$got of $n ranks reported"; show_last; fi
done
run "$SFBENCH" --gpus=2 --device=cpu "$COLL"
expect_rc 0 "--gpus=2 --device=cpu"

# a launcher's ranks: two processes with Slurm's variables, one rendezvous directory and tag
for r in 0 1; do
    SLURM_PROCID=$r SLURM_STEP_NUM_TASKS=2 SLURM_LOCALID=$r SLURM_JOB_ID=77 SFBENCH_DIST_DIR="$SCRATCH" \
        "$SFBENCH" --device cpu "$COLL" >"$SCRATCH/slurm$r.out" 2>&1 &
done
wait
if grep -q "^ok rank 0 of 2" "$SCRATCH/slurm0.out" && grep -q "^ok rank 1 of 2" "$SCRATCH/slurm1.out"; then
    pass "two ranks started with Slurm's variables exchange through SFBENCH_DIST_DIR"
else
    fail "Slurm-started ranks"; cat "$SCRATCH/slurm0.out" "$SCRATCH/slurm1.out"
fi
if [ -z "$(find "$SCRATCH" -maxdepth 1 -name 'sfbench-*')" ]; then pass "the rendezvous file is gone after the run"
else fail "rendezvous files left: $(find "$SCRATCH" -maxdepth 1 -name 'sfbench-*')"; fi

# the first rank to fail ends the others (they wait in a barrier) with its status
run "$SFBENCH" --gpus 3 --device cpu -e 'local sf = require "sfbench"
if sf.dist.rank() == 1 then error("rank one fails") end
sf.dist.barrier()'
expect_rc 1 "a failing rank"
expect_stderr_has "rank 1: (command line):2: rank one fails" "the error names its rank"
expect_stderr_has "failed (exit status 1): ending the other ranks" "the launcher says why the others end"
expect_stderr_has "rank 0: (command line):3: rank 1 ended without reaching this exchange" "the others name the rank that left"
if [ -z "$(ls -A "$TMPDIR")" ]; then pass "no rendezvous directory left after a failure"; else fail "left in TMPDIR: $(ls -A "$TMPDIR")"; fi

# rank 0 alone prints tables and progress; every rank's print() is its own
run "$SFBENCH" --gpus 2 --device cpu -e 'local sf = require "sfbench"; print("quiet=" .. tostring(sf.quiet) .. " rank=" .. sf.dist.rank())'
expect_rc 0 "sf.quiet on the ranks"
expect_stdout_has "quiet=false rank=0" "rank 0 is not quiet"
expect_stdout_has "quiet=true rank=1" "rank 1 is quiet"

# an ordinary sweep at world 2 shares its points out and rank 0 saves one result with every row,
# in the order of the world-1 run, and which rank measured each
run "$SFBENCH" --device cpu --quiet --output "$SCRATCH/w1" gemm_sweep iters=2
expect_rc 0 "gemm_sweep at world 1"
run "$SFBENCH" --gpus 2 --device cpu --quiet --output "$SCRATCH/w2" gemm_sweep iters=2
expect_rc 0 "gemm_sweep shared over 2 CPU ranks"
expect_files "$SCRATCH/w2" "gemm_sweep-*.json" 1 "one result file from two ranks"
W1=$(files_in "$SCRATCH/w1" "gemm_sweep-*.json") W2=$(files_in "$SCRATCH/w2" "gemm_sweep-*.json")
check_json "$W2" "the merged rows match the world-1 run's, each with its rank" "
local f = assert(io.open('$W1')); local one = cjson.decode(f:read('a')); f:close()
check(#doc.rows == #one.rows, #doc.rows .. ' rows, world 1 had ' .. #one.rows)
for i, r in ipairs(doc.rows) do
  for _, k in ipairs({ 'dtype', 'shape', 'm', 'n', 'k' }) do
    check(r[k] == one.rows[i][k], 'row ' .. i .. ' ' .. k .. ': ' .. tostring(r[k]) .. ' vs ' .. tostring(one.rows[i][k]))
  end
  check(doc.row_ranks[i] == (i - 1) % 2, 'row ' .. i .. ' measured by rank ' .. tostring(doc.row_ranks[i]))
end
check(#doc.ranks == 2 and doc.ranks[1].rank == 0 and doc.ranks[2].rank == 1, 'the ranks described')
check(doc.complete == true and one.row_ranks == nil and one.ranks == nil, 'complete; world 1 records no ranks')
for _, res in ipairs(doc.results) do check(res.ranks == nil, 'a shared-out point is measured by one rank alone') end"

# a rank that fails in a shared-out sweep: the others finish, rank 0 saves what was measured,
# with the failing rank's error, and the exit status is the failure's
cat >"$SCRATCH/fails.lua" <<'LUA'
local sf = require "sfbench"
local sweep = require "sfbench.sweep"
sweep.run{ name = "fails", points = { { p = 1 }, { p = 2 }, { p = 3 }, { p = 4 } }, measure = function(point)
  if point.p == 4 then error("point 4 fails") end
  return { p = point.p, rank = sf.dist.rank() }
end }
LUA
run "$SFBENCH" --gpus 2 --device cpu --output "$SCRATCH/fails" "$SCRATCH/fails.lua"
expect_rc 1 "a failing point on rank 1"
expect_stderr_has "point 4 fails" "the point's error is shown"
F=$(files_in "$SCRATCH/fails" "fails-*.json")
check_json "$F" "rank 0 saved the other points with the error" "
check(doc.complete == false, 'marked incomplete')
check(doc.error:find('rank 1: ', 1, true) and doc.error:find('point 4 fails', 1, true), 'error: ' .. tostring(doc.error))
check(#doc.rows == 3 and doc.rows[1].p == 1 and doc.rows[2].p == 2 and doc.rows[3].p == 3, 'rows 1 to 3 kept')
check(doc.rows[2].rank == 1 and doc.row_ranks[2] == 1, 'point 2 by rank 1')"

# a collective sweep (distributed): every rank in every point, a sample the slowest rank's
cat >"$SCRATCH/coll.lua" <<'LUA'
local sf = require "sfbench"
local bench = require "sfbench.bench"
local sweep = require "sfbench.sweep"
sweep.run{ name = "coll", distributed = true, points = { { n = 64 }, { n = 4096 } }, measure = function(point)
  local x = sf.zeros({ point.n }, "f32")
  local r = bench.run{ fn = function() sf.ops.all_reduce{ x = x } end, iters = 5, warmup_time = 0.01 }
  return { n = point.n, samples = r.stats.n }, r
end }
LUA
run "$SFBENCH" --gpus 2 --device cpu --output "$SCRATCH/coll" "$SCRATCH/coll.lua"
expect_rc 0 "a distributed sweep of all_reduce"
C=$(files_in "$SCRATCH/coll" "coll-*.json")
check_json "$C" "one result, every point on both ranks" "
check(#doc.rows == 2 and doc.row_ranks == nil and #doc.ranks == 2, 'two rows, two ranks described')
for _, res in ipairs(doc.results) do check(res.ranks == 2 and #res.samples == 5 and res.feed ~= 'ahead', 'result of ' .. tostring(res.ranks) .. ' ranks, feed ' .. res.feed) end"

# a rank that ends while the others wait for it in an exchange: an error, not a hang
run timeout 60 "$SFBENCH" --gpus 2 --device cpu -e 'local sf = require "sfbench"
if sf.dist.rank() == 1 then return end
sf.dist.barrier()'
expect_rc 1 "a rank that leaves before a barrier"
expect_stderr_has "rank 0: (command line):3: rank 1 ended without reaching this exchange" "the waiting rank says why"

# a usage error on one rank of a shared-out sweep is a usage error of the run (exit 2)
cat >"$SCRATCH/usage.lua" <<'LUA'
local sf = require "sfbench"
local params = require "sfbench.params"
local sweep = require "sfbench.sweep"
sweep.run{ name = "usage", points = { { p = 1 }, { p = 2 } }, measure = function(point)
  if point.p == 2 then params.usage_error("p=2 is not allowed") end
  return { p = point.p }
end }
LUA
run "$SFBENCH" --gpus 2 --device cpu --output "$SCRATCH/usage" "$SCRATCH/usage.lua"
expect_rc 2 "a usage error on rank 1"
expect_stderr_has "sfbench: rank 0: rank 1: p=2 is not allowed" "rank 0 names the rank it came from"

# SIGTERM to the launcher ends the ranks and removes the rendezvous directory
"$SFBENCH" --gpus 2 --device cpu -e 'local sf = require "sfbench"
while true do sf.dist.barrier() end' >/dev/null 2>&1 &
launcher=$!
sleep 2
kill -TERM $launcher
wait $launcher
rc=$?
sleep 1
if [ $rc -eq 143 ] && [ -z "$(ls -A "$TMPDIR")" ] && ! pgrep -P $launcher >/dev/null; then
    pass "SIGTERM to the launcher: exit 143, the ranks gone, no rendezvous directory left"
else
    fail "SIGTERM to the launcher: exit $rc, left in TMPDIR: $(ls -A "$TMPDIR")"
fi

# bad input
run "$SFBENCH" --gpus 2 --device cuda:1 -e 'print(1)'
expect_rc 2 "--gpus with --device cuda:K"
expect_stderr_has "--gpus 2 puts rank r on cuda:r: drop --device cuda:1" "the error says why"
for v in 0 -1 x 1025 2.5 ""; do
    run "$SFBENCH" --gpus "$v" --device cpu -e 'print(1)'
    expect_rc 2 "--gpus '$v'"
    expect_one_line_error "--gpus '$v'"
done
run "$SFBENCH" --gpus 2 --device cpu
expect_rc 2 "--gpus without a script"
if "$SFBENCH" --device cuda -e '' >/dev/null 2>&1; then
    echo "ok: (a GPU is present: the no-GPU error is not checked)"
else
    run "$SFBENCH" --gpus 2 -e 'print(1)'
    expect_rc 2 "--gpus 2 without GPUs"
    expect_stderr_has "--gpus 2: 0 CUDA devices here (--device cpu runs CPU ranks)" "GPU ranks without GPUs"
fi
run env OMPI_COMM_WORLD_RANK=5 OMPI_COMM_WORLD_SIZE=2 "$SFBENCH" --device cpu -e 'print(1)'
expect_rc 2 "a rank outside the world"
expect_stderr_has "Open MPI says rank 5 of a world of 2" "the error names the launcher and the numbers"
run env PMI_RANK=x PMI_SIZE=2 "$SFBENCH" --device cpu -e 'print(1)'
expect_rc 2 "malformed PMI variables"
expect_stderr_has "PMI's rank variables are malformed: PMI_RANK=x PMI_SIZE=2" "the error shows the variables"
run env SLURM_PROCID=0 SLURM_STEP_NUM_TASKS=2 "$SFBENCH" --gpus 2 --device cpu -e 'print(1)'
expect_rc 2 "--gpus inside a launcher's world"
expect_stderr_has "--gpus 2 inside a launcher's world of 2 (Slurm)" "the error names the launcher"

# a collective that does not fit the world: one line naming the argument
run "$SFBENCH" --gpus 2 --device cpu -e 'local sf = require "sfbench"
sf.ops.reduce_scatter{x = sf.zeros({3, 2}, "f32"), out = sf.zeros({1, 2}, "f32")}'
expect_rc 1 "reduce_scatter of 3 rows over 2 ranks"
expect_stderr_has "reduce_scatter: 'x' has 3 rows: a reduce_scatter over 2 ranks needs a multiple of 2" "the error names x"
run "$SFBENCH" --gpus 2 --device cpu -e 'local sf = require "sfbench"
sf.ops.all_gather{x = sf.zeros({3, 2}, "f32"), out = sf.zeros({3, 2}, "f32")}'
expect_rc 1 "all_gather into too small an out"
expect_stderr_has "all_gather: 'out'" "the error names out"
run "$SFBENCH" --gpus 2 --device cpu -e 'local sf = require "sfbench"
sf.ops.broadcast{x = sf.zeros({3}, "f32"), root = 2}'
expect_rc 1 "broadcast from a rank outside the world"
expect_stderr_has "broadcast: 'root' is 2: the ranks are 0 to 1" "the error names root"
finish
