#!/bin/sh
# tests/gpu/sanitize.sh's verdicts, on any machine: a fake compute-sanitizer and a fake sfbench
# (one that passes the GPU probe) stand in for the real ones, and the fake tool answers one run
# (racecheck or memcheck of test_gpu_gemm) as MODE says, the others clean. A run passes only
# when it is clean, or when racecheck's every hazard lies inside cuBLASLt's nvjet kernels and
# the run itself succeeded; anything else fails the whole check.
. "$SF_SRCDIR/tests/cli/lib.sh"

fake=$SCRATCH/fake
mkdir -p "$fake"
printf '#!/bin/sh\nexit 0\n' >"$fake/sfbench"
cat >"$fake/compute-sanitizer" <<'EOF'
#!/bin/sh
# fake compute-sanitizer: $FAKE_MODE applies to the run whose arguments hold $FAKE_TOOL and test_gpu_gemm
echo "========= COMPUTE-SANITIZER"
case "$*" in *" -e "*) echo "========= ERROR SUMMARY: 3 errors"; exit 86 ;; esac
tool=$2
case "$*" in
*test_gpu_gemm*) [ "$tool" = "$FAKE_TOOL" ] && mode=$FAKE_MODE ;;
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
# test_gpu_gemm, SF_SANITIZE_TOOLS set to TOOLS when given
sanitize_with() {
    run env FAKE_TOOL="$1" FAKE_MODE="$2" SF_SANITIZE_TOOLS="${3:-}" COMPUTE_SANITIZER="$fake/compute-sanitizer" \
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
