#!/bin/sh
# nccl_sweep on 1, 2 and 3 CPU ranks: one result saved (by rank 0), a row a point (op × dtype ×
# size), sizes rounded down to whole blocks, a point that does not fit memory left out with a
# note on every rank, µs the samples' median and algbw and busbw nccl-tests' formulas
# (tests/cli/sweep_checks.lua); bad parameters are one-line usage errors.
. "$SF_SRCDIR/tests/cli/lib.sh"

# sweep N ARGS...: nccl_sweep on N CPU ranks into a fresh folder; $json is its one result
sweep() {
    world=$1
    shift
    out=$SCRATCH/out$world-$(echo "$*" | tr -c 'a-zA-Z0-9\n' '_')
    run "$SFBENCH" --gpus "$world" --device cpu --output "$out" nccl_sweep timeout=0.2 "$@"
    expect_rc 0 "world $world: $*"
    expect_files "$out" "*.json" 1 "world $world: $*"
    json=$(files_in "$out" "*.json" | head -n 1)
}

# expect_rows N WHAT LUA: the result's rows are N, the formulas hold, and the Lua check holds
expect_rows() {
    check_json "$json" "$2" "
check(doc.complete == true and doc.context.world == $world, 'complete at world $world')
check(#doc.rows == $1, #doc.rows .. ' rows, expected $1')
dofile(os.getenv('SF_SRCDIR') .. '/tests/cli/sweep_checks.lua')(doc, check)
local function rows(pred) local k = 0 for _, r in ipairs(doc.rows) do if pred(r) then k = k + 1 end end return k end
$3"
}

sweep 1 bytes=1K,3K dtype=f32,bf16
expect_stderr_has "at world 1 the collectives are the identity" "world 1: the note says what the collectives do"
expect_rows 16 "world 1: 4 ops × 2 dtypes × 2 sizes, busbw 0, broadcast left out" "
check(rows(function(r) return r.busbw == 0 end) == 12, 'busbw is not 0 on every timed row at world 1')
check(rows(function(r) return r.op == 'broadcast' and r.us == nil and r.note:find('does nothing') end) == 4,
  'broadcast is not left out at world 1')"

sweep 1 bytes=2K,64T op=all_reduce,reduce_scatter
expect_rows 4 "world 1: a size no rank can hold is left out with a note, the rest is timed" "
check(rows(function(r) return r.bytes == 2 ^ 46 and r.us == nil and r.note:find('GiB a rank') end) == 2,
  'the 64T points are not left out with a note')
check(rows(function(r) return r.bytes == 2048 and r.us end) == 2, 'the 2K points are not timed')"

# several CPU ranks: rank 0 alone prints and saves, every point timed on every rank; busbw's
# factor depends on the world (sweep_checks); at world 3 a size is rounded down to 3 equal blocks
for w in 2 3; do
    sweep $w bytes=1K,6K
    tables=$(grep -c '^| op ' "$OUT_FILE")
    if [ "$tables" -eq 1 ]; then pass "world $w: one table printed"; else fail "world $w: $tables tables printed"; show_last; fi
    expect_rows 8 "world $w: 4 ops × 2 sizes, all timed, busbw by each op's factor" "
check(rows(function(r) return r.us ~= nil end) == 8, 'not every point was timed')
local split = function(r) return r.op == 'all_gather' or r.op == 'reduce_scatter' end
check(rows(function(r) return split(r) and r.bytes == ($w == 3 and 1020 or 1024) end) == 2, 'split sizes not rounded to $w blocks')
check(rows(function(r) return not split(r) and r.bytes == 1024 end) == 2, 'all_reduce and broadcast sizes changed')"
done
sweep 2 bytes=2K,64T
expect_rows 8 "world 2: the points no rank can hold are left out on every rank" "
check(rows(function(r) return r.bytes == 2 ^ 46 and r.us == nil and r.note:find('GiB a rank') end) == 4,
  'the 64T points are not left out with a note')"

# bad parameters: one line, exit 2, before anything runs
for args in "op=all_to_all" "bytes=0" "bytes=1.5K" "bytes=-4K" "bytes=64KiB" "bytes=1K,x" "bytes=2048P" "bytes=1025T" \
    "dtype=i32" "dtype=f32 bytes=2" "sample_ms=0"; do
    # shellcheck disable=SC2086  # $args is several words
    run "$SFBENCH" --device cpu --output "$SCRATCH/bad" nccl_sweep $args
    expect_rc 2 "nccl_sweep $args"
    expect_one_line_error "nccl_sweep $args"
done
expect_files "$SCRATCH/bad" "*.json" 0 "bad parameters"
run "$SFBENCH" --device cpu --output "$SCRATCH/bad" nccl_sweep dtype=f32 bytes=2
expect_stderr_has "bytes=2: all_reduce of f32 over 1 rank(s) needs at least 4 bytes" "a size under one element names it"

finish
