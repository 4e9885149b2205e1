#!/bin/sh
# sfbench compare over synthetic results (tests/gen_results.lua): identical inputs are "same"
# everywhere (exit 0), a copy with every sample x1.05 is "slower" (exit 1), points of one side
# only are listed apart, and so are scenarios with no point in common, --output writes the comparison as JSON; a different device or git
# revision is one warning (an error with --strict); every bad input is one line naming the file
# and the problem, exit 2, and no output file.
. "$SF_SRCDIR/tests/cli/lib.sh"

gen() {    # gen FILE key=value...: a synthetic result
    out=$1
    shift
    "$SFBENCH" --device cpu "$SF_SRCDIR/tests/gen_results.lua" out="$out" points=8 samples=200 "$@" </dev/null \
        || { fail "generating $out"; finish; }
}
gen "$SCRATCH/base.json"
gen "$SCRATCH/same.json"
gen "$SCRATCH/slow.json" scale=1.05
gen "$SCRATCH/fast.json" scale=0.95
gen "$SCRATCH/fewer.json" points=6
gen "$SCRATCH/h200.json" device="other device" git_revision=other
gen "$SCRATCH/other.json" scenario=other_scenario

# ---- verdicts and exit status ----

run "$SFBENCH" compare "$SCRATCH/base.json" "$SCRATCH/same.json"
expect_rc 0 "identical inputs"
n=$(grep -c '| same ' "$OUT_FILE")
if [ "$n" -eq 8 ]; then pass "identical inputs: 8 points, all same"; else fail "identical inputs: $n 'same' lines"; show_last; fi
expect_stdout_has "| impl | size |  base ms |   new ms | new/base | 95% CI      |   p | verdict |" "identical inputs: table header"
expect_stdout_has "0 slower, 0 faster" "identical inputs: summary"
expect_empty "$ERR_FILE" "identical inputs: stderr"

run "$SFBENCH" compare "$SCRATCH/base.json" "$SCRATCH/slow.json"
expect_rc 1 "samples x1.05"
n=$(grep -c '|    1.050 | .* | slower  |' "$OUT_FILE")
if [ "$n" -eq 8 ]; then pass "samples x1.05: 8 points slower, ratio 1.050"; else fail "samples x1.05: $n slower lines"; show_last; fi

run "$SFBENCH" compare "$SCRATCH/base.json" "$SCRATCH/slow.json" --threshold 0.1
expect_rc 0 "samples x1.05 under --threshold 0.1"
expect_stdout_has "0 slower, 0 faster" "--threshold 0.1"

run "$SFBENCH" compare "$SCRATCH/base.json" "$SCRATCH/fast.json"
expect_rc 0 "samples x0.95 (faster)"
expect_stdout_has "0 slower, 8 faster" "samples x0.95"

# ---- points on one side only ----

run "$SFBENCH" compare "$SCRATCH/base.json" "$SCRATCH/fewer.json"
expect_rc 0 "fewer points in new"
expect_stdout_has "Only in base (2):" "fewer points in new"
expect_stdout_has "| b    |    4 |" "fewer points in new: the missing point's parameters"

# a column that changes every run, taken for a parameter: nothing matches, which is an input
# error (a CI gate must not pass on nothing compared) that says how to name the parameters
sed 's/"impl":"\([ab]\)"/"impl":"\1","host":"other"/g' "$SCRATCH/same.json" >"$SCRATCH/host.json"
sed 's/"impl":"\([ab]\)"/"impl":"\1","host":"mine"/g' "$SCRATCH/base.json" >"$SCRATCH/host_base.json"
rm -f "$SCRATCH/host-cmp.json"
run "$SFBENCH" compare "$SCRATCH/host_base.json" "$SCRATCH/host.json" --output "$SCRATCH/host-cmp.json"
expect_rc 2 "a run-dependent column: no point in common"
expect_one_line_error "a run-dependent column"
expect_stderr_has "$SCRATCH/host_base.json and $SCRATCH/host.json: no point of synthetic in common on the parameter columns impl, size, host" \
    "a run-dependent column: both files and the problem"
expect_stderr_has "name the parameters with --params" "a run-dependent column: the way out"
expect_files "$SCRATCH" "host-cmp.json" 0 "a run-dependent column: no output file"

# a parameter column only one side has, with one value there (one a later version of a scenario
# added): the points match without it, and a line says so
run "$SFBENCH" compare "$SCRATCH/base.json" "$SCRATCH/host.json"
expect_rc 0 "a parameter only new has"
n=$(grep -c '| same ' "$OUT_FILE")
if [ "$n" -eq 8 ]; then pass "a parameter only new has: 8 points matched"; else fail "a parameter only new has: $n 'same' lines"; show_last; fi
expect_stdout_has 'Matched without the parameter host: only new'"'"'s rows have it, with the one value "other"' "a parameter only new has: said so"
run "$SFBENCH" compare "$SCRATCH/base.json" "$SCRATCH/host.json" --params impl,size
n=$(grep -c '| same ' "$OUT_FILE")
if [ "$n" -eq 8 ]; then pass "--params impl,size: 8 points matched"; else fail "--params: $n points"; show_last; fi

# results that kept no samples: every point matches, none can be compared, which is an input error
gen "$SCRATCH/bare1.json" points=4 samples=0
gen "$SCRATCH/bare2.json" points=4 samples=0
run "$SFBENCH" compare "$SCRATCH/bare1.json" "$SCRATCH/bare2.json" --output "$SCRATCH/bare-cmp.json"
expect_rc 2 "no kept samples"
expect_one_line_error "no kept samples"
expect_stderr_has "$SCRATCH/bare1.json and $SCRATCH/bare2.json: no matched point has kept samples on both sides" \
    "no kept samples: both files and the problem"
expect_files "$SCRATCH" "bare-cmp.json" 0 "no kept samples: no output file"

# ---- folders ----

mkdir -p "$SCRATCH/dir_base" "$SCRATCH/dir_new"
cp "$SCRATCH/base.json" "$SCRATCH/dir_base/synthetic-1.json"
cp "$SCRATCH/slow.json" "$SCRATCH/dir_new/synthetic-1.json"
run "$SFBENCH" compare "$SCRATCH/dir_base" "$SCRATCH/dir_new"
expect_rc 1 "folders"
expect_stdout_has "base: $SCRATCH/dir_base/synthetic-1.json" "folders: the file taken"

gen "$SCRATCH/dir_base/synthetic-0.json" time=2026-01-02T00:00:00Z
run "$SFBENCH" compare "$SCRATCH/dir_base" "$SCRATCH/dir_new"
expect_stdout_has "base: $SCRATCH/dir_base/synthetic-0.json" "folders: the newest result"
run "$SFBENCH" compare --all "$SCRATCH/dir_base" "$SCRATCH/dir_new" --output "$SCRATCH/all.json"
expect_rc 1 "--all"
expect_stdout_has "base: $SCRATCH/dir_base/synthetic-1.json, $SCRATCH/dir_base/synthetic-0.json" "--all: both runs, oldest first"
check_json "$SCRATCH/all.json" "--all: a point's samples pooled over the runs" "
local pt = doc.points[1]
check(pt.n_base == 400 and pt.n_new == 200, 'samples ' .. tostring(pt.n_base) .. ' and ' .. tostring(pt.n_new))
"

# a scenario with no point in common stops no other: folders of two scenarios, one of which has
# a run-dependent column, compare the other, list the unmatched one apart with the way out, and
# exit by the verdicts of what was compared
mkdir -p "$SCRATCH/mixed_base" "$SCRATCH/mixed_new"
cp "$SCRATCH/base.json" "$SCRATCH/mixed_base/synthetic-1.json"
gen "$SCRATCH/third-base.json" scenario=third
sed 's/"impl":"\([ab]\)"/"impl":"\1","host":"mine"/g' "$SCRATCH/third-base.json" >"$SCRATCH/mixed_base/third-1.json"
gen "$SCRATCH/third-new.json" scenario=third
sed 's/"impl":"\([ab]\)"/"impl":"\1","host":"other"/g' "$SCRATCH/third-new.json" >"$SCRATCH/mixed_new/third-1.json"
for new in slow same; do
    cp "$SCRATCH/$new.json" "$SCRATCH/mixed_new/synthetic-1.json"
    rm -f "$SCRATCH/mixed-cmp.json"
    run "$SFBENCH" compare "$SCRATCH/mixed_base" "$SCRATCH/mixed_new" --output "$SCRATCH/mixed-cmp.json"
    if [ "$new" = slow ]; then expect_rc 1 "a scenario unmatched, one slower"; else expect_rc 0 "a scenario unmatched, one same"; fi
    expect_empty "$ERR_FILE" "a scenario unmatched ($new): stderr"
    expect_stdout_has "## synthetic" "a scenario unmatched ($new): the matched one compared"
    expect_stdout_has "Scenarios with no point in common:" "a scenario unmatched ($new): apart"
    expect_stdout_has "- third (base: $SCRATCH/mixed_base/third-1.json; new: $SCRATCH/mixed_new/third-1.json): no point in common on the parameter columns impl, size, host (where one of them is a measurement, name the parameters with --params)" \
        "a scenario unmatched ($new): listed apart, with the way out"
done
expect_stdout_has "0 slower, 0 faster" "a scenario unmatched: the summary counts the matched one"
check_json "$SCRATCH/mixed-cmp.json" "a scenario unmatched: --output" "
check(#doc.points == 8, 'points ' .. #doc.points)
check(#doc.unmatched_scenarios == 1 and doc.unmatched_scenarios[1].scenario == 'third', 'unmatched_scenarios')
check(table.concat(doc.unmatched_scenarios[1].parameters, ',') == 'impl,size,host', 'its parameter columns')
check(doc.base.path == '$SCRATCH/mixed_base/synthetic-1.json', 'the compared files ' .. doc.base.path)
"
# ... but where no scenario had a point in common, nothing was compared: an error naming them all
cp "$SCRATCH/host.json" "$SCRATCH/mixed_new/synthetic-1.json"
cp "$SCRATCH/host_base.json" "$SCRATCH/mixed_base/synthetic-1.json"
run "$SFBENCH" compare "$SCRATCH/mixed_base" "$SCRATCH/mixed_new"
expect_rc 2 "every scenario unmatched"
expect_one_line_error "every scenario unmatched"
expect_stderr_has "no point of synthetic in common on the parameter columns impl, size, host; no point of third in common on the parameter columns impl, size, host (where one of them is a measurement, name the parameters with --params), nothing to compare" \
    "every scenario unmatched: each scenario, the way out"

# ---- --output ----

run "$SFBENCH" compare "$SCRATCH/base.json" "$SCRATCH/slow.json" --output "$SCRATCH/cmp.json"
expect_rc 1 "--output"
check_json "$SCRATCH/cmp.json" "--output JSON" "
check(doc.slower == 8 and doc.faster == 0, 'slower ' .. tostring(doc.slower))
check(doc.alpha == 0.05 and doc.threshold == 0.02, 'levels')
check(doc.base.path == '$SCRATCH/base.json' and doc.new.device == 'synthetic device', 'sides')
check(#doc.points == 8, 'points')
local pt = doc.points[1]
check(pt.scenario == 'synthetic' and pt.impl == 'a' and pt.point.size == 1, 'point')
check(pt.verdict == 'slower' and math.abs(pt.ratio - 1.05) < 1e-9, 'ratio ' .. tostring(pt.ratio))
check(pt.ci_low > 1.02 and pt.ci_high > pt.ci_low and pt.p < 0.05, 'interval and p')
check(pt.n_base == 200 and pt.n_new == 200 and pt.base_median > 0, 'sample counts, medians')
"
run "$SFBENCH" report "$SCRATCH/cmp.json" -o "$SCRATCH/cmp.html"
expect_rc 0 "sfbench report reads the --output document"
expect_no_tmp "$SCRATCH" "--output"

# ---- context mismatch ----

run "$SFBENCH" compare "$SCRATCH/base.json" "$SCRATCH/h200.json"
expect_rc 0 "another device"
expect_stderr_lines 1 "another device: one warning"
expect_stdout_has "0 slower" "another device: still compared"
expect_stderr_has "warning: base and new differ: device 'synthetic device' vs 'other device', git revision 'synthetic' vs 'other'" \
    "another device"

rm -f "$SCRATCH/strict.json"
run "$SFBENCH" compare --strict "$SCRATCH/base.json" "$SCRATCH/h200.json" --output "$SCRATCH/strict.json"
expect_rc 2 "--strict"
expect_one_line_error "--strict"
expect_stderr_has "device 'synthetic device' vs 'other device'" "--strict"
expect_files "$SCRATCH" "strict.json" 0 "--strict: no output file"

# ---- bad input: one line naming the file, exit 2, no output file ----

bad_input() {    # bad_input WHAT TEXT BASE NEW
    rm -f "$SCRATCH/out.json"
    run "$SFBENCH" compare "$3" "$4" --output "$SCRATCH/out.json"
    expect_rc 2 "$1"
    expect_one_line_error "$1"
    expect_stderr_has "$2" "$1"
    expect_files "$SCRATCH" "out.json" 0 "$1: no output file"
}
echo '{"torch": "2.1", "rows": [{"ms": 1}]}' >"$SCRATCH/torch.json"
echo '{"name": "not a result"}' >"$SCRATCH/unrelated.json"
head -c 3000 "$SCRATCH/base.json" >"$SCRATCH/truncated.json"
mkdir -p "$SCRATCH/empty_dir"
bad_input "not an sfbench result" "$SCRATCH/unrelated.json: not an sfbench result" "$SCRATCH/unrelated.json" "$SCRATCH/base.json"
bad_input "PyTorch reference rows" "$SCRATCH/torch.json: a PyTorch reference document, not an sfbench result" \
    "$SCRATCH/torch.json" "$SCRATCH/base.json"
bad_input "truncated JSON" "$SCRATCH/truncated.json: truncated JSON" "$SCRATCH/base.json" "$SCRATCH/truncated.json"
bad_input "folder with no results" "$SCRATCH/empty_dir: a folder with no results" "$SCRATCH/empty_dir" "$SCRATCH/base.json"
mkdir -p "$SCRATCH/torch_dir"
cp "$SCRATCH/torch.json" "$SCRATCH/torch_dir/torch_ffn-1.json"
bad_input "folder of other documents" "$SCRATCH/torch_dir: a folder with no sfbench results" "$SCRATCH/base.json" \
    "$SCRATCH/torch_dir"
bad_input "two different scenarios" \
    "$SCRATCH/base.json is a result of synthetic but $SCRATCH/other.json one of other_scenario" \
    "$SCRATCH/base.json" "$SCRATCH/other.json"
mkdir -p "$SCRATCH/dir_other"
cp "$SCRATCH/other.json" "$SCRATCH/dir_other/other_scenario-1.json"
gen "$SCRATCH/dir_other/third-1.json" scenario=third
bad_input "folders with no scenario in common" \
    "no scenario in common: base ($SCRATCH/dir_base/synthetic-0.json) has synthetic; new ($SCRATCH/dir_other/other_scenario-1.json, $SCRATCH/dir_other/third-1.json) has other_scenario, third" \
    "$SCRATCH/dir_base" "$SCRATCH/dir_other"
bad_input "missing file" "$SCRATCH/nothing.json: no such file" "$SCRATCH/base.json" "$SCRATCH/nothing.json"

# ---- usage errors ----

usage_error() {    # usage_error WHAT TEXT ARGS...
    what=$1 text=$2
    shift 2
    run "$SFBENCH" compare "$@"
    expect_rc 2 "$what"
    expect_one_line_error "$what"
    expect_stderr_has "$text" "$what"
}
usage_error "non-numeric threshold" "bad value 'abc' for --threshold: expected a number" \
    "$SCRATCH/base.json" "$SCRATCH/same.json" --threshold abc
usage_error "threshold out of range" "threshold must be a fraction" "$SCRATCH/base.json" "$SCRATCH/same.json" --threshold 2
usage_error "alpha out of range" "alpha must be a number between 0 and 1" "$SCRATCH/base.json" "$SCRATCH/same.json" --alpha 0
usage_error "unknown option" "compare: unknown option '--colour'" "$SCRATCH/base.json" "$SCRATCH/same.json" --colour
usage_error "one argument" "compare: expected BASE and NEW, got 1" "$SCRATCH/base.json"
usage_error "unknown --params column" "no row has a column 'nope'" "$SCRATCH/base.json" "$SCRATCH/same.json" --params nope

run "$SFBENCH" compare --help
expect_rc 0 "--help"
expect_stdout_has "Usage: sfbench compare BASE NEW" "--help"

finish
