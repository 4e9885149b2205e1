#!/bin/sh
# --profile: listed by --help, seen by scripts as sf.profile, and adding exactly one call of each
# measured case (after its warm-up) to what bench.run runs. On the CPU backend the profiler hooks
# do nothing; tests/gpu/nvtx.sh checks what a profiler sees.
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

finish
