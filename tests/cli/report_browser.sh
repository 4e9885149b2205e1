#!/bin/sh
# sfbench report in a real browser: a page made from small CPU-backend sweeps (a GEMM sweep, an
# FFN sweep with two impls, the memory-bound ops, gemv_sweep's rows of every impl), the committed
# H200 launch_overhead (its graph_rows) and a compare document loads in headless
# Chromium with no console error and no fetch, and every SVG draws its paths and keeps its labels
# inside (tests/cli/browser.lua checks that, over the DevTools protocol). The screenshot is left in
# tests/out/report-screenshot.png. First, the checker is shown to catch each problem on a page
# made to have them. Skipped (77) where Chromium is absent.
. "$SF_SRCDIR/tests/cli/lib.sh"

browser=
for b in "${CHROMIUM:-}" chromium chromium-browser google-chrome; do
    if [ -n "$b" ] && command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
if [ -z "$browser" ]; then
    echo "SKIP: no Chromium (apt-get install chromium)"
    cleanup_scratch
    exit 77
fi

check_page() {  # check_page PAGE SCREENSHOT: runs the checker, fills $RC, $OUT_FILE, $ERR_FILE
    mkdir -p "$SCRATCH/browser"
    run "$SFBENCH" --device cpu "$SF_SRCDIR/tests/cli/browser.lua" browser="$browser" page="$1" screenshot="$2" \
        dir="$SCRATCH/browser"
}

# ---- the checker sees what it must see ----
cat >"$SCRATCH/broken.html" <<'EOF'
<!DOCTYPE html><html><head><meta charset="utf-8"><title>broken</title></head><body>
<script>console.error("made to fail");</script>
<img src="http://127.0.0.1:9/fetched.png" alt="">
<figure id="empty-path"><svg width="100" height="50"><path d="" stroke="black"/></svg></figure>
<figure id="outside"><svg width="100" height="50"><path class="series" d="M0 0L10 10" stroke="black"/>
<text x="90" y="20">a label far too long for its plot</text></svg></figure>
</body></html>
EOF
check_page "$SCRATCH/broken.html" ""
expect_rc 1 "a broken page fails the check"
for text in "console error: made to fail" "fetch from outside the file: http://127.0.0.1:9/fetched.png" \
    "empty-path: path 1 draws nothing" "empty-path: no data drawn" \
    'outside: label "a label far too long for its plot" sticks out of the plot'; do
    expect_stdout_has "$text" "the checker"
done

# ---- the report of CPU-backend sweeps ----
results=$SCRATCH/results
for sweep in "gemm_sweep tokens=16,32 square=32 iters=5" "ffn_sweep tokens=16,32 act=swiglu iters=3" \
    "memory_ops timeout=0.05" "gemv_sweep proj=qkv,o m=1,2 timeout=0.05"; do
    # shellcheck disable=SC2086  # the sweep and its parameters are words
    if ! "$SFBENCH" --device cpu --quiet --output "$results" $sweep </dev/null >"$SCRATCH/sweep.log" 2>&1; then
        fail "$sweep did not run"; sed 's/^/    /' "$SCRATCH/sweep.log"
    fi
done
page=$SCRATCH/report.html
run "$SFBENCH" report "$results" "$SF_SRCDIR/tests/cli/report-compare.json" \
    "$SF_SRCDIR/results/h200/launch_overhead-20261204-194215.json" -o "$page"
expect_rc 0 "report"
shot=$SF_TEST_OUT/report-screenshot.png
rm -f "$shot"
check_page "$page" "$shot"
expect_rc 0 "the page loads with no console error, and every SVG draws"
# one line: svgs=N and the count of each kind of plot
for kind in bytes compare flops roofline speedup spread; do
    if grep -q -E "^svgs=[0-9]+ .*\b$kind=[1-9]" "$OUT_FILE"; then pass "the page shows $kind plots"
    else fail "the page shows no $kind plot"; show_last; fi
done
if [ -s "$shot" ] && [ "$(head -c 8 "$shot" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; then
    pass "screenshot written to $shot"
else fail "no PNG screenshot at $shot"; fi

finish
