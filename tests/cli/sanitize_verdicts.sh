#!/bin/sh
# tests/gpu/sanitize.sh's verdicts, on any machine: a fake compute-sanitizer and a fake sfbench
# (one that passes the GPU probe) stand in for the real ones, and the fake tool answers one run
# (racecheck or memcheck of test_gpu_gemm) as MODE says, the others clean; it fails any run whose
# sfbench command line names no script. A run passes only when it is clean, or when racecheck's
# every hazard lies inside cuBLASLt's nvjet kernels and the run itself succeeded (a run whose
# other reports name no kernel runs again, and the second run's verdict stands); anything else
# fails the whole check.
. "$SF_SRCDIR/tests/cli/lib.sh"

fake=$SCRATCH/fake
mkdir -p "$fake"
printf '#!/bin/sh\nexit 0\n' >"$fake/sfbench"
cat >"$fake/compute-sanitizer" <<'EOF'
#!/bin/sh
# fake compute-sanitizer: $FAKE_MODE applies to the run whose arguments hold $FAKE_TOOL and test_gpu_gemm
echo "========= COMPUTE-SANITIZER"
case "$*" in *" -e "*) echo "========= ERROR SUMMARY: 3 errors"; exit 86 ;; esac
# the sfbench command line as sanitize.sh builds it: after --output DIR, a script that exists
script=$(printf '%s\n' "$@" | sed -n '/^--output$/{n;n;p;q;}')
case $script in
*.lua) [ -f "$script" ] ;;
*) false ;;
esac || { echo "fake compute-sanitizer: no script after --output DIR: $*"; exit 2; }
tool=$2
case "$*" in
*"${FAKE_WHAT:-test_gpu_gemm}"*) [ "$tool" = "$FAKE_TOOL" ] && mode=$FAKE_MODE ;;
esac
# the test one run of a test file asked for, as luaunit would answer it
[ -n "${SF_TEST_PATTERN:-}" ] && echo "$SF_TEST_PATTERN" >>"$FAKE_PATTERNS"
# FAKE_LOG: when each run started and ended (tool, test pattern, file), runs lasting 0.3 s
if [ -n "${FAKE_LOG:-}" ]; then
    for last; do :; done
    echo "start $tool ${SF_TEST_PATTERN:-} ${last##*/}" >>"$FAKE_LOG"
    sleep 0.3
    echo "end $tool ${SF_TEST_PATTERN:-} ${last##*/}" >>"$FAKE_LOG"
fi
case "${mode:-}" in
noran) echo "Ran 0 tests in 0.000 seconds, 0 successes, 0 failures, 14 non-selected" ;;
all) echo "Ran 12 tests in 0.000 seconds, 12 successes, 0 failures" ;;
*) echo "Ran 1 tests in 0.000 seconds, 1 success, 0 failures" ;;
esac
case "${mode:-clean}" in
nvjet)
    echo "========= Error: Race reported between Read access at nvjet_sm90_hsh_8x64_64x16+0xb00"
    echo "=========     and Write access at nvjet_sm90_hsh_8x64_64x16+0x2e20 [32 hazards]"
    echo "========= RACECHECK SUMMARY: 1 hazard displayed (1 error, 0 warnings)"
    exit 86 ;;
ours)
    echo "========= Error: Race reported between Read access at nvjet_sm90_hsh_8x64_64x16+0xb00"
    echo "=========     and Write access at nvjet_sm90_hsh_8x64_64x16+0x2e20 [32 hazards]"
    echo "========= Error: Race reported between Write access at gemm_epi_kernel+0x2850"
    echo "=========     and Read access at gemm_epi_kernel+0x2900 [4 hazards]"
    echo "========= RACECHECK SUMMARY: 2 hazards displayed (2 errors, 0 warnings)"
    exit 86 ;;
unnamed_once | unnamed | unnamed_ours)
    # a report naming no kernel (as racecheck printed once over validate_gemv); unnamed_once
    # prints it on the first run only (FAKE_STATE marks that run)
    if [ "$mode" != unnamed_once ] || [ ! -e "$FAKE_STATE" ]; then
        : >"$FAKE_STATE"
        echo "========= Error: Race reported between Read access at "
        echo "=========     and Write access at  [32 hazards]"
    fi
    [ "$mode" = unnamed_ours ] && echo "========= Error: Race reported between Write access at gemm_epi_kernel+0x2850" &&
        echo "=========     and Read access at gemm_epi_kernel+0x2900 [4 hazards]"
    echo "========= Error: Race reported between Read access at nvjet_sm90_tst_72x64_64x12+0xa60"
    echo "=========     and Write access at nvjet_sm90_tst_72x64_64x12+0x3b30 [32 hazards]"
    echo "========= RACECHECK SUMMARY: 2 hazards displayed (2 errors, 0 warnings)"
    exit 86 ;;
apperr)
    echo "========= Error: Race reported between Read access at nvjet_sm90_hsh_8x64_64x16+0xb00"
    echo "=========     and Write access at nvjet_sm90_hsh_8x64_64x16+0x2e20 [32 hazards]"
    echo "========= Target application returned an error"
    echo "========= RACECHECK SUMMARY: 1 hazard displayed (1 error, 0 warnings)"
    exit 86 ;;
died)
    echo "========= Error: process didn't terminate successfully"
    echo "========= Target application returned an error"
    echo "========= RACECHECK SUMMARY: 0 hazards displayed (0 errors, 0 warnings)"
    exit 1 ;;
invalid)
    echo "========= Invalid __global__ read of size 4 bytes"
    echo "========= ERROR SUMMARY: 1 error"
    exit 86 ;;
esac
[ "$tool" = racecheck ] && echo "========= RACECHECK SUMMARY: 0 hazards displayed (0 errors, 0 warnings)" ||
    echo "========= ERROR SUMMARY: 0 errors"
exit 0
EOF
chmod +x "$fake/sfbench" "$fake/compute-sanitizer"

# sanitize_with TOOL MODE [TOOLS]: sanitize.sh with the fakes, MODE applied to TOOL's run of
# test_gpu_gemm (of FAKE_WHAT, when set), SF_SANITIZE_TOOLS set to TOOLS when given; the fake
# tool writes each SF_TEST_PATTERN it is given to FAKE_PATTERNS
sanitize_with() {
    : >"$SCRATCH/patterns"
    rm -f "$SCRATCH/state"
    run env FAKE_TOOL="$1" FAKE_MODE="$2" FAKE_STATE="$SCRATCH/state" SF_SANITIZE_TOOLS="${3:-}" COMPUTE_SANITIZER="$fake/compute-sanitizer" \
        FAKE_PATTERNS="$SCRATCH/patterns" FAKE_WHAT="${FAKE_WHAT:-}" FAKE_LOG="${FAKE_LOG:-}" \
        SF_SANITIZE_RACE_JOBS="${SF_SANITIZE_RACE_JOBS:-1}" \
        SFBENCH="$fake/sfbench" SF_TEST_OUT="$SCRATCH/out-$1-$2$(echo "${3:+-$3}" | tr ' :' '__')" \
        sh "$SF_SRCDIR/tests/gpu/sanitize.sh"
}

sanitize_with racecheck clean
expect_rc 0 "every run clean"
runs=$(grep -c '^ok: ' "$OUT_FILE")
listed=$(wc -l <"$SCRATCH/out-racecheck-clean/gpu-sanitize/runs" | tr -d ' ')
if [ "$runs" -eq "$listed" ] && [ "$runs" -ge 20 ]; then pass "a verdict for each of the $listed runs listed"
else fail "$runs ok lines for $listed runs listed"; show_last; fi
expect_stdout_has "ok: memcheck test_gpu_gemm: ========= ERROR SUMMARY: 0 errors" "every run clean"
if grep -q '^ok: ' "$OUT_FILE" && ! grep '^ok: ' "$OUT_FILE" | grep -qvE '; [0-9]+ s$'; then
    pass "each verdict ends with the run's time"
else fail "a verdict without the run's time"; show_last; fi

sanitize_with racecheck nvjet
expect_rc 0 "racecheck's hazards inside cuBLASLt's kernels alone"
expect_stdout_has "ok: racecheck test_gpu_gemm: ========= RACECHECK SUMMARY: 1 hazard displayed (1 error, 0 warnings), 2 reports inside cuBLASLt's nvjet kernels, none in ours" \
    "racecheck's hazards inside cuBLASLt's kernels alone"

for case in "racecheck ours:a hazard in a kernel of ours beside cuBLASLt's" \
    "racecheck apperr:cuBLASLt's hazards, and the test itself failed" \
    "racecheck died:the process ended without finishing" \
    "memcheck invalid:an invalid read under memcheck"; do
    tool_mode=${case%%:*}
    what=${case#*:}
    # shellcheck disable=SC2086  # two words: the tool and the mode
    sanitize_with $tool_mode
    expect_rc 1 "$what"
    expect_stdout_has "FAIL: ${tool_mode% *} test_gpu_gemm" "$what"
done
sanitize_with racecheck died
expect_stdout_has "the process was ended from outside" "a killed run says it may have run out of memory"

# a report naming no kernel: the run runs again, its first log kept, and the second run's verdict
# stands; beside a hazard named in a kernel of ours it fails at once
first_log=$SCRATCH/out-racecheck-unnamed_once/gpu-sanitize/racecheck-test_gpu_gemm.first.log
sanitize_with racecheck unnamed_once
expect_rc 0 "a report naming no kernel, not there on the second run"
expect_stdout_has "ok: racecheck test_gpu_gemm: ========= RACECHECK SUMMARY: 2 hazards displayed (2 errors, 0 warnings), 2 reports inside cuBLASLt's nvjet kernels, none in ours, on a second run: the first had 2 report lines naming no kernel ($first_log)" \
    "a report naming no kernel, not there on the second run"
if grep -q 'Read access at $' "$first_log" 2>/dev/null; then pass "the first run's log kept"
else fail "the first run's log kept ($first_log)"; fi
sanitize_with racecheck unnamed
expect_rc 1 "a report naming no kernel, on both runs"
expect_stdout_has "(a second run; the first had 2 report lines naming no kernel" "a report naming no kernel, on both runs"
sanitize_with racecheck unnamed_ours
expect_rc 1 "a report naming no kernel beside a hazard in a kernel of ours"
if [ ! -e "$SCRATCH/out-racecheck-unnamed_ours/gpu-sanitize/racecheck-test_gpu_gemm.first.log" ]; then
    pass "a hazard of ours named: no second run"
else fail "a hazard of ours named, and the run ran again"; fi

# SF_TEST_PATTERN, as sanitize.sh sets it, runs that test alone (testlib), here on the CPU backend
real_sfbench=$SFBENCH
run env SF_TEST_PATTERN='^TestStatistics%.test_inputs_untouched$' LUA_PATH="$SF_SRCDIR/tests/lua/?.lua;${LUA_PATH:-;}" \
    "$real_sfbench" --device cpu --output "$SCRATCH" "$SF_SRCDIR/tests/lua/test_compare.lua"
expect_rc 0 "SF_TEST_PATTERN naming one test"
expect_stdout_has "Ran 1 tests" "SF_TEST_PATTERN naming one test"

# racecheck over test_gpu_norm_rope runs one test at a time, each named to luaunit as a pattern
sanitize_with racecheck clean "racecheck:test_gpu_norm_rope"
expect_rc 0 "racecheck over test_gpu_norm_rope, one test at a time"
tests_in_file=$(grep -cE '^function Test[A-Za-z]*\.test' "$SF_SRCDIR/tests/gpu/test_gpu_norm_rope.lua")
if [ "$(grep -c '^ok: racecheck test_gpu_norm_rope:Test[A-Za-z]*\.test' "$OUT_FILE")" -eq "$tests_in_file" ] &&
    [ "$(grep -c '^ok: ' "$OUT_FILE")" -eq "$tests_in_file" ] && [ "$tests_in_file" -ge 10 ]; then
    pass "one racecheck run for each of test_gpu_norm_rope's $tests_in_file tests, and no other run"
else fail "racecheck over test_gpu_norm_rope, one test at a time"; show_last; fi
if grep -qxF '^TestLinearRope%.test_impls_against_cpu$' "$SCRATCH/patterns" &&
    [ "$(wc -l <"$SCRATCH/patterns")" -eq "$tests_in_file" ]; then
    pass "each of those runs names its test alone to luaunit"
else fail "the patterns given to luaunit: $(head -3 "$SCRATCH/patterns")"; fi
sanitize_with memcheck clean "memcheck:test_gpu_norm_rope"
if [ "$(grep -c '^ok: ' "$OUT_FILE")" -eq 1 ] && [ ! -s "$SCRATCH/patterns" ]; then
    pass "memcheck still runs test_gpu_norm_rope whole"
else fail "memcheck over test_gpu_norm_rope"; show_last; fi
FAKE_WHAT=test_gpu_quantize
sanitize_with racecheck noran "racecheck:test_gpu_quantize"
expect_rc 1 "a test of a file that ran no test"
expect_stdout_has "not the one test test_fp8_ffn alone: Ran 0 tests" "a test of a file that ran no test"
sanitize_with racecheck all "racecheck:test_gpu_quantize"
expect_rc 1 "a test of a file that ran every test (the pattern ignored)"
expect_stdout_has "alone: Ran 12 tests" "a test of a file that ran every test (the pattern ignored)"
FAKE_WHAT=

# the racecheck runs that take most of the machine's memory (race_alone) run last, one at a time:
# three racecheck runs at a time beside the memcheck lane, and each of those three starts after
# every other run has ended and ends before the next starts
FAKE_LOG=$SCRATCH/timeline SF_SANITIZE_RACE_JOBS=3
: >"$FAKE_LOG"
sanitize_with racecheck clean
expect_rc 0 "the runs that run alone"
alone_re='test_impls_against_cpu[$]|test_fp8_gemm_hopper[$]|test_against_cpu_reference[$]'
if [ "$(grep -cE "^start racecheck .*($alone_re)" "$FAKE_LOG")" -eq 3 ] && awk -v re="$alone_re" '
    $1 == "start" && $0 ~ re { if (open) bad = 1; a = 1; open = $0; next }
    $1 == "start" { if (a) bad = 1; others++ ; open_other++; next }
    $1 == "end" && $0 ~ re { if ("start" substr($0, 4) != open) bad = 1; open = ""; next }
    $1 == "end" { if (a) bad = 1; open_other-- }
    END { exit bad || open_other || others < 20 }' "$FAKE_LOG"; then
    pass "three runs alone, after all the others, one at a time"
else fail "the runs that run alone: $(grep -nE "$alone_re" "$FAKE_LOG" | head -6 | tr '\n' ' ')"; fi
if [ "$(grep -c '^start racecheck' "$FAKE_LOG")" -ge 10 ] && awk '
    $2 != "racecheck" { next }
    $1 == "start" { n++; if (n > max) max = n } $1 == "end" { n-- } END { exit max < 3 }' "$FAKE_LOG"; then
    pass "the other racecheck runs three at a time"
else fail "the other racecheck runs never ran three at a time"; fi
FAKE_LOG='' SF_SANITIZE_RACE_JOBS=''

# SF_SANITIZE_TOOLS: the runs of the tools named alone (a whole run split in two)
sanitize_with racecheck clean racecheck
expect_rc 0 "racecheck's runs alone"
if [ "$(grep -c '^ok: racecheck ' "$OUT_FILE")" -ge 10 ] && ! grep -qE '^ok: (memcheck|initcheck) ' "$OUT_FILE"; then
    pass "racecheck's runs alone: $(grep -c '^ok: racecheck ' "$OUT_FILE") runs, all racecheck"
else fail "racecheck's runs alone"; show_last; fi
sanitize_with racecheck clean "memcheck initcheck"
expect_rc 0 "memcheck's and initcheck's runs alone"
if ! grep -q '^ok: racecheck ' "$OUT_FILE" && grep -q '^ok: memcheck test_fuzz' "$OUT_FILE"; then
    pass "memcheck's and initcheck's runs alone: no racecheck run"
else fail "memcheck's and initcheck's runs alone"; show_last; fi
sanitize_with racecheck clean "racecheck:test_gpu_gemm memcheck:test_fuzz"
expect_rc 0 "two runs named"
if [ "$(grep -c '^ok: ' "$OUT_FILE")" -eq 2 ] && grep -q '^ok: racecheck test_gpu_gemm:' "$OUT_FILE" &&
    grep -q '^ok: memcheck test_fuzz:' "$OUT_FILE"; then pass "two runs named: those two alone"
else fail "two runs named"; show_last; fi
sanitize_with racecheck clean synccheck
expect_rc 1 "a tool it does not run"
expect_stdout_has "SF_SANITIZE_TOOLS names 'synccheck'" "a tool it does not run"

finish
