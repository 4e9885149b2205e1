#!/bin/sh
# sfbench report: a page from a CPU-backend sweep (its plots, context and table, nothing that
# fetches), one plot alone as SVG; gemv_sweep's rows, a row per impl, plotted a line an impl,
# and its bandwidth roofline; launch_overhead's graph_rows as a table and plots (and a count
# under n_rows is no table); a compare document's chart; every bad input is one line naming the
# file, exit 2, and nothing written; the README's plot is what the committed result gives.
# (tests/cli/report_browser.sh renders the page in a browser.)
. "$SF_SRCDIR/tests/cli/lib.sh"

results=$SCRATCH/results
"$SFBENCH" --device cpu --quiet --output "$results" gemm_sweep tokens=16,32 square=32 iters=5 </dev/null \
    >/dev/null 2>&1 || { echo "FAIL: gemm_sweep did not run"; exit 1; }

# ---- options ----
run "$SFBENCH" report --help
expect_rc 0 "--help"
expect_stdout_has "Usage: sfbench report RESULTS..." "--help"
expect_stdout_has "bandwidth roofline" "--help: memory-bound results"
expect_stdout_has "keys ending in _rows" "--help: other tables of rows"
run "$SFBENCH" report
expect_rc 2 "no results given"
expect_one_line_error "no results given"
run "$SFBENCH" report --bogus "$results"
expect_rc 2 "unknown option"
expect_stderr_has "unknown option '--bogus'" "unknown option"

# ---- a page ----
page=$SCRATCH/page/report.html
mkdir -p "$SCRATCH/page"
run "$SFBENCH" report "$results" -o "$page"
expect_rc 0 "report of a folder"
expect_stderr_has "written to $page" "report of a folder"
expect_no_tmp "$SCRATCH/page" "report of a folder"
for kind in flops spread roofline; do
    if has "$page" "data-kind=\"$kind\""; then pass "page has a $kind plot"; else fail "page has no $kind plot"; fi
done
for text in '<h2>gemm_sweep' '<h3>Context</h3>' '<h3>Rows</h3>' '<td>square</td>' 'shape=qkv' \
    'm, log2 scale' "Content-Security-Policy"; do
    if has "$page" "$text"; then pass "page has '$text'"; else fail "page lacks '$text'"; fi
done
# the axis's SI prefix follows the speed measured (a loaded machine's CPU GEMM can fall below 1 GFLOP/s)
if grep -E -q 'throughput \((|k|M|G|T|P)FLOP/s\)' "$page"; then pass "page has a throughput axis in FLOP/s"
else fail "page lacks a throughput axis in FLOP/s"; fi
# the plots come before the context and the table
plot_line=$(grep -n -m1 '<svg' "$page" | cut -d: -f1)
context_line=$(grep -n -m1 '<h3>Context' "$page" | cut -d: -f1)
if [ "${plot_line:-0}" -gt 0 ] && [ "$plot_line" -lt "${context_line:-0}" ]; then pass "plots before the context"
else fail "plots (line $plot_line) not before the context (line $context_line)"; fi
# nothing that a browser would fetch: no src, no link, no script, no url(), no @import, only #anchors
if grep -n -E -i '<(script|link|img|iframe|object)|src=|url\(|@import|href="[^#]' "$page" >"$SCRATCH/refs"; then
    fail "the page refers to something outside it"; sed -n '1,5s/^/    /p' "$SCRATCH/refs"
else pass "the page refers to nothing outside it"; fi

# ---- plots alone ----
run "$SFBENCH" report "$results" --list
expect_rc 0 "--list"
id=$(grep -m1 '\.roofline' "$OUT_FILE")
case $id in
gemm_sweep-*.roofline) pass "--list names the roofline ($id)" ;;
*) fail "--list gives no roofline"; show_last ;;
esac
run "$SFBENCH" report "$results" --svg "$id" -o "$SCRATCH/one.svg"
expect_rc 0 "--svg"
if head -c 40 "$SCRATCH/one.svg" | grep -q '^<svg xmlns="http://www.w3.org/2000/svg"'; then pass "--svg writes an SVG file"
else fail "--svg wrote no SVG file"; fi
run "$SFBENCH" report "$results" --svg nosuch.plot -o "$SCRATCH/none.svg"
expect_rc 2 "--svg of an unknown plot"
expect_stderr_has "no plot 'nosuch.plot'" "--svg of an unknown plot"
expect_files "$SCRATCH" "none.svg" 0 "--svg of an unknown plot"

# ---- gemv_sweep, a memory-bound sweep: a line an impl, their samples' spread, a bandwidth roofline ----
wide=$SCRATCH/wide
"$SFBENCH" --device cpu --quiet --output "$wide" gemv_sweep proj=qkv,o m=1,2 timeout=0.05 </dev/null \
    >/dev/null 2>&1 || { fail "gemv_sweep did not run"; finish; }
run "$SFBENCH" report "$wide" --list
expect_rc 0 "--list of gemv_sweep"
for kind in bytes speedup spread; do
    if grep -q "^gemv_sweep-[0-9-]*\.$kind\.proj=qkv\$" "$OUT_FILE"; then pass "gemv_sweep has a $kind plot"
    else fail "gemv_sweep has no $kind plot"; show_last; fi
done
if grep -q '^gemv_sweep-[0-9-]*\.roofline$' "$OUT_FILE"; then pass "gemv_sweep has a bandwidth roofline"
else fail "gemv_sweep has no bandwidth roofline"; show_last; fi
id=$(grep -m1 '\.bytes\.proj=qkv$' "$OUT_FILE")
run "$SFBENCH" report "$wide" --svg "$id" -o "$SCRATCH/gemv.svg"
for impl in cublaslt gemv; do
    if has "$SCRATCH/gemv.svg" ">$impl</text>"; then pass "gemv_sweep's bandwidth plot has a line for $impl"
    else fail "gemv_sweep's bandwidth plot has no line for $impl"; fi
done

# ---- another table of rows: launch_overhead's graph_rows, and the spread of their samples ----
run "$SFBENCH" report "$SF_SRCDIR/results/h200/launch_overhead-20261204-194215.json" -o "$SCRATCH/launch.html"
expect_rc 0 "report of launch_overhead"
for text in '<h3>graph_rows</h3>' '<td>stream, hold=false</td>' 'id="launch_overhead-20261204-194215.graph_rows.time"' \
    'id="launch_overhead-20261204-194215.graph_rows.spread"' '>kernel=empty kernel · launch=graph</text>'; do
    if has "$SCRATCH/launch.html" "$text"; then pass "launch_overhead page has '$text'"
    else fail "launch_overhead page lacks '$text'"; fi
done

# a number under a key ending in _rows (a count of rows) is no table: the page is made all the same
echo '{"scenario": "memory_ops", "context": {}, "n_rows": 2, "rows": [{"op": "add", "us": 10, "tbs": 2},
  {"op": "rmsnorm", "us": 12, "tbs": 1.5}]}' >"$SCRATCH/counted.json"
run "$SFBENCH" report "$SCRATCH/counted.json" -o "$SCRATCH/counted.html"
expect_rc 0 "report of a result with a count under n_rows"
if has "$SCRATCH/counted.html" '<td>rmsnorm</td>'; then pass "a result with a count under n_rows has its table"
else fail "a result with a count under n_rows has no table"; fi

# ---- a compare document ----
run "$SFBENCH" report "$SF_SRCDIR/tests/cli/report-compare.json" -o "$SCRATCH/compare.html"
expect_rc 0 "report of a compare document"
for text in 'data-kind="compare"' '>ffn_sweep: new ÷ base time, with its 95% interval</title>' 'act=swiglu · tokens=4096 · fused' \
    '<h3>Only in base</h3>' '<td>slower</td>' '<li>layer_sweep (parameter columns: impl, model, seq)</li>' \
    '<h3>Scenarios only in base</h3><p>attention_sweep</p>' \
    "<li>gemm_sweep · fast_accum: only new's rows have it, with the one value false</li>"; do
    if has "$SCRATCH/compare.html" "$text"; then pass "compare page has '$text'"; else fail "compare page lacks '$text'"; fi
done

# ---- bad input: one line naming the file, exit 2, nothing written ----
bad=$SCRATCH/bad
mkdir -p "$bad/empty"
good=$(files_in "$results" "*.json" | head -n 1)
echo '{"hello": "world"}' >"$bad/other.json"
head -c 300 "$good" >"$bad/truncated.json"
echo 'not json at all' >"$bad/text.json"
echo '{"scenario": "x", "context": {}, "rows": [1, 2]}' >"$bad/rows.json"
echo '{"points": [{"ratio": 1, "ci_low": "a", "ci_high": 1}]}' >"$bad/compare.json"
check_bad() {  # check_bad WHAT TEXT INPUT...
    what=$1 text=$2
    shift 2
    run "$SFBENCH" report "$@" -o "$SCRATCH/out/bad.html"
    expect_rc 2 "$what"
    expect_one_line_error "$what"
    expect_stderr_has "$text" "$what"
    expect_files "$SCRATCH/out" "bad.html*" 0 "$what: nothing written"
}
mkdir -p "$SCRATCH/out"
check_bad "not a result" "$bad/other.json: not an sfbench result" "$bad/other.json"
check_bad "truncated JSON" "$bad/truncated.json: truncated JSON" "$bad/truncated.json"
check_bad "not JSON" "$bad/text.json: not valid JSON" "$bad/text.json"
check_bad "rows not objects" "$bad/rows.json: not an sfbench result (rows[1] is not an object)" "$bad/rows.json"
check_bad "bad compare document" "$bad/compare.json: not an sfbench compare document (points[1].ci_low is not a number)" \
    "$bad/compare.json"
check_bad "a folder with no results" "$bad/empty: a folder with no results" "$bad/empty"
check_bad "a missing file" "$bad/missing.json: no such file or folder" "$bad/missing.json"
check_bad "a good file and a bad one" "$bad/truncated.json: truncated JSON" "$good" "$bad/truncated.json"
cp "$bad/other.json" "$bad/empty/x.json"
check_bad "a folder holding a file that is not a result" "$bad/empty/x.json: not an sfbench result" "$bad/empty"

# ---- the README's plot is the committed H200 result's ----
# (regenerate it with the command below, from the source tree)
run "$SFBENCH" report "$SF_SRCDIR/results/h200/ffn_sweep-20261204-193648.json" \
    --svg 'ffn_sweep-20261204-193648.flops.act=swiglu' -o "$SCRATCH/readme.svg"
expect_rc 0 "the README's plot"
if cmp -s "$SCRATCH/readme.svg" "$SF_SRCDIR/doc/img/ffn_sweep-h200.svg"; then pass "doc/img/ffn_sweep-h200.svg is up to date"
else
    fail "doc/img/ffn_sweep-h200.svg differs from what the committed result gives (run: sfbench report \
results/h200/ffn_sweep-20261204-193648.json --svg 'ffn_sweep-20261204-193648.flops.act=swiglu' \
-o doc/img/ffn_sweep-h200.svg)"
fi

finish
