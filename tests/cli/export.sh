#!/bin/sh
# sfbench export and `sfbench --format`: a CPU gemm sweep printed as CSV is the CSV that export
# makes of the result it saved; JSON and markdown; the long form has a line per kept sample;
# --output; bad input (one line naming the file, exit 2, no output file) and usage errors.
. "$SF_SRCDIR/tests/cli/lib.sh"

out=$SCRATCH/sweep
run "$SFBENCH" --device cpu --output "$out" --format csv "$SF_SRCDIR/scenarios/gemm_sweep.lua" timeout=0.2 tokens=16
expect_rc 0 "gemm_sweep --format csv"
cp "$OUT_FILE" "$SCRATCH/sweep.csv"
json=$(files_in "$out" "*.json" | head -n 1)
if head -n 1 "$SCRATCH/sweep.csv" | grep -q '^dtype,impl,ran,shape,m,n,k,ms,tflops,noise,samples,stop$'; then
    pass "--format csv: header in the scenario's column order"
else fail "--format csv header: $(head -n 1 "$SCRATCH/sweep.csv")"; fi

run "$SFBENCH" export "$json"
expect_rc 0 "export (csv by default)"
if cmp -s "$OUT_FILE" "$SCRATCH/sweep.csv"; then pass "export's CSV is the sweep's --format csv output"
else fail "export's CSV differs from the sweep's"; diff "$SCRATCH/sweep.csv" "$OUT_FILE" | sed 's/^/    /'; fi
rows=$(($(line_count "$OUT_FILE") - 1))
if [ "$rows" -eq 5 ]; then pass "export: 5 rows"; else fail "export: $rows rows"; fi

run "$SFBENCH" export "$json" --format json --output "$SCRATCH/rows.json"
expect_rc 0 "export --format json --output"
expect_empty "$OUT_FILE" "export --output: stdout"
check_json "$SCRATCH/rows.json" "export --format json: the rows" "
check(#doc == 5, 'rows: ' .. #doc)
check(doc[1].shape == 'square' and doc[1].m == 64 and type(doc[1].ms) == 'number', 'first row')
"
run "$SFBENCH" --device cpu --quiet --output "$SCRATCH/q" "$SF_SRCDIR/scenarios/gemm_sweep.lua" timeout=0.2 tokens=16 --format json
expect_rc 0 "--format json with --quiet"
expect_empty "$OUT_FILE" "--quiet prints nothing in any format"

run "$SFBENCH" export "$json" --format md
expect_rc 0 "export --format md"
expect_stdout_has "| dtype | impl     | ran       | shape   |" "export --format md"

run "$SFBENCH" export "$json" --long
expect_rc 0 "export --long"
if head -n 1 "$OUT_FILE" | grep -q '^dtype,impl,ran,shape,m,n,k,sample,ms$'; then pass "--long: parameters, sample, ms"
else fail "--long header: $(head -n 1 "$OUT_FILE")"; fi
cp "$OUT_FILE" "$SCRATCH/long.csv"
check_json "$json" "--long: a line per kept sample" "
local n = 0
for _, r in ipairs(doc.results) do n = n + #r.samples end
local lines = 0
for _ in io.open('$SCRATCH/long.csv'):lines() do lines = lines + 1 end
check(lines == n + 1, lines .. ' lines for ' .. n .. ' samples')
"

# ---- bad input and usage errors: one line, exit 2, no output file ----

bad() {    # bad WHAT TEXT ARGS...
    what=$1 text=$2
    shift 2
    rm -f "$SCRATCH/out.csv"
    run "$SFBENCH" export "$@" --output "$SCRATCH/out.csv"
    expect_rc 2 "$what"
    expect_one_line_error "$what"
    expect_stderr_has "$text" "$what"
    expect_files "$SCRATCH" "out.csv" 0 "$what: no output file"
    expect_no_tmp "$SCRATCH" "$what"
}
head -c 200 "$json" >"$SCRATCH/truncated.json"
echo '{"name": "not a result"}' >"$SCRATCH/unrelated.json"
cp "$SF_SRCDIR/tests/cli/report-compare.json" "$SCRATCH/compare.json"
echo '{"scenario": "s", "context": {}, "rows": [{"a": 1}]}' >"$SCRATCH/bare.json"
bad "truncated JSON" "$SCRATCH/truncated.json: truncated JSON" "$SCRATCH/truncated.json"
bad "not an sfbench result" "$SCRATCH/unrelated.json: not an sfbench result" "$SCRATCH/unrelated.json"
bad "a compare document" "$SCRATCH/compare.json: a compare document, which has no rows" "$SCRATCH/compare.json"
bad "long form without samples" "$SCRATCH/bare.json: no kept samples" "$SCRATCH/bare.json" --long
bad "unknown format" "export: unknown format 'xml' (expected md, csv, json)" "$json" --format xml
bad "no file" "export: expected one result FILE, got 0"

run "$SFBENCH" --device cpu --format xml "$SF_SRCDIR/scenarios/gemm_sweep.lua"
expect_rc 2 "sweep --format xml"
expect_one_line_error "sweep --format xml"
expect_stderr_has "unknown format 'xml' for --format" "sweep --format xml"

run "$SFBENCH" export --help
expect_rc 0 "export --help"
expect_stdout_has "Usage: sfbench export FILE" "export --help"

finish
