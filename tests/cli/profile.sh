#!/bin/sh
# --profile: listed by --help, seen by scripts as sf.profile, and adding exactly one call of each
# measured case (after its warm-up) to what bench.run runs. The NVTX ranges of ab, a scenario
# that is not a sweep: the scenario, inside it the point, inside that each case (sf.nvtx_push and
# pop swapped for a recorder). On the CPU backend the profiler hooks do nothing; tests/gpu/nvtx.sh
# checks what a profiler sees.
. "$SF_SRCDIR/tests/cli/lib.sh"

run "$SFBENCH" --help
expect_rc 0 "--help"
expect_stdout_has "--profile" "--help lists --profile"

count_calls='
local sf = require "sfbench"
local calls = 0
require("sfbench.bench").run { fn = function() calls = calls + 1 end, iters = 2, warmup = 1, warmup_time = 0,
  batch = 1, hold = false }
print(tostring(sf.profile) .. " " .. calls)'

run "$SFBENCH" --device cpu -e "$count_calls"
expect_rc 0 "without --profile"
expect_stdout_has "false 3" "without --profile: a warm-up call and two samples"

run "$SFBENCH" --device cpu --profile -e "$count_calls"
expect_rc 0 "with --profile"
expect_stdout_has "true 4" "with --profile: one more call, between the warm-up and the samples"

run "$SFBENCH" --device cpu --profile --output "$SCRATCH/out" gemm_sweep timeout=0.2 tokens=16 square=64
expect_rc 0 "a sweep under --profile"

# Lua that runs the scenario SCENARIO, printing each NVTX range it opens, indented by depth, then
# the depth left open
ranges='
local sf = require "sfbench"
local depth, log = 0, {}
sf.nvtx_push = function(name) log[#log + 1] = ("  "):rep(depth) .. name; depth = depth + 1 end
sf.nvtx_pop = function() depth = depth - 1 end
dofile(sf.datadir .. "/scenarios/" .. SCENARIO .. ".lua")
print(table.concat(log, "\n"))
print("open: " .. depth)'

run "$SFBENCH" --device cpu -q --output "$SCRATCH/ab" -e "SCENARIO = 'ab' $ranges" op=gemm rounds=2 iters=2
expect_rc 0 "ab's ranges"
cat >"$SCRATCH/ab-ranges" <<'EOF'
ab
  op=gemm a=cublaslt b=hopper dtype=f16 m=64 n=64 k=64
    a cublaslt
    b hopper
    a cublaslt
    b hopper
open: 0
EOF
if cmp -s "$SCRATCH/ab-ranges" "$OUT_FILE"; then pass "ab: the scenario's range, the point's, each round's cases"
else fail "ab: NVTX ranges"; diff "$SCRATCH/ab-ranges" "$OUT_FILE" | sed 's/^/    /'; fi

finish
