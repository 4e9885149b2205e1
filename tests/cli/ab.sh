#!/bin/sh
# The ab scenario on the CPU backend (small shapes): each op's two default impls in alternating
# rounds print one compare table line and save rows a and b with every round's samples, the
# comparison on b's row; the saved result is something sfbench compare and export read. Mixing
# a kernel file with an impl name is a usage error; user kernels on the CPU backend an error
# that names the backend.
. "$SF_SRCDIR/tests/cli/lib.sh"

for op in ffn gemm attention; do
    out=$SCRATCH/$op
    run "$SFBENCH" --device cpu --output "$out" ab op=$op rounds=3 iters=4
    expect_rc 0 "ab op=$op"
    expect_stdout_has "| op " "ab op=$op: compare table"
    n=$(grep -c "^| $op " "$OUT_FILE")
    if [ "$n" -eq 1 ]; then pass "ab op=$op: one point"; else fail "ab op=$op: $n lines for the op"; show_last; fi
    expect_stderr_has "[3/3] b " "ab op=$op: rounds alternate, b last"
    json=$(files_in "$out" "ab-*.json" | head -n 1)
    check_json "$json" "ab op=$op: both sides' samples, the comparison on b's row" "
check(doc.scenario == 'ab' and #doc.rows == 2, 'rows')
local a, b = doc.rows[1], doc.rows[2]
check(a.side == 'a' and b.side == 'b' and a.op == '$op', 'sides')
check(a.samples == 12 and b.samples == 12, 'three rounds of four samples: ' .. tostring(a.samples))
check(#doc.results == 2 and #doc.results[2].samples == 12 and doc.results[2].row == 2, 'results')
check(a.verdict == nil and (b.verdict == 'same' or b.verdict == 'faster' or b.verdict == 'slower'), 'verdict')
check(b.ci_low <= b.ratio and b.ratio <= b.ci_high and b.p >= 0 and b.p <= 1, 'interval and p')
check(math.abs(b.ratio - b.ms / a.ms) < 1e-9, 'ratio of the medians')
-- declared, so that a p of exactly 1 is not taken for a parameter by compare and export
for _, k in ipairs({ 'ratio', 'ci_low', 'ci_high', 'p', 'verdict' }) do
  check(doc.column_kinds[k] == 'measurement', k .. ' declared a measurement')
end
"
done

json=$(files_in "$SCRATCH/ffn" "ab-*.json" | head -n 1)
run "$SFBENCH" compare "$json" "$json"
expect_rc 0 "compare of an ab result with itself"
n=$(grep -c '| same ' "$OUT_FILE")
if [ "$n" -eq 2 ]; then pass "compare of an ab result: both sides same"; else fail "compare of an ab result: $n same"; show_last; fi
run "$SFBENCH" export "$json" --long
expect_rc 0 "export --long of an ab result"
if head -n 1 "$OUT_FILE" | grep -q '^op,side,impl,model,dtype,act,tokens,sample,ms$'; then pass "ab --long header"
else fail "ab --long header: $(head -n 1 "$OUT_FILE")"; fi

run "$SFBENCH" --device cpu --output "$SCRATCH/mixed" ab a=old.cu b=fused
expect_rc 2 "a kernel file against an impl"
expect_one_line_error "a kernel file against an impl"
expect_stderr_has "a and b must both be .cu files" "a kernel file against an impl"

run "$SFBENCH" --device cpu --output "$SCRATCH/kernels" ab a=old.cu b=new.cu
expect_rc 1 "user kernels on the CPU backend"
expect_one_line_error "user kernels on the CPU backend"
expect_stderr_has "need the CUDA backend (running on cpu)" "user kernels on the CPU backend"

run "$SFBENCH" --device cpu --output "$SCRATCH/rounds" ab rounds=0
expect_rc 2 "rounds=0"
expect_stderr_has "bad value '0' for rounds" "rounds=0"

finish
