#!/bin/sh
# Every scenario in scenarios/ runs on the CPU backend with its defaults (the small CPU shapes),
# exits 0 and writes one JSON result that parses and says it is complete, and whose reported
# times and rates follow from its samples (tests/cli/sweep_checks.lua); attention_sweep runs once
# more with causal attention, gemm_sweep and ffn_sweep with e4m3 inputs (ffn_sweep with each
# fp8_h), layer_sweep with the fp8 layer, gemv_sweep with forced split counts, decode_sweep with
# its pages in order. A scenario that accepts `timeout` gets timeout=0.2 to keep the run
# short; the accepted parameters are read from the scenario itself (its answer to an unknown
# key), so new scenarios need no edit here. SF_SCENARIOS="name ..." runs only those scenarios.
. "$SF_SRCDIR/tests/cli/lib.sh"

# out_dir NAME [key=value ...]: the folder check_scenario writes scenario NAME's result to when it
# runs with those parameters
out_dir() (
    name=$1
    shift
    echo "$SCRATCH/$name$(echo "$*" | tr -c 'a-z0-9\n' '_')"
)

# check_scenario SCRIPT [key=value ...]
check_scenario() {
    script=$1
    shift
    name=$(basename "$script" .lua)
    label="$name${*:+ $*}"
    out=$(out_dir "$name" "$@")

    # which parameters does it accept? (params.get lists them when given an unknown one)
    "$SFBENCH" --device cpu --quiet --output "$SCRATCH/probe-$name" "$script" sfbench_probe_key=1 \
        </dev/null >/dev/null 2>"$SCRATCH/probe.err"
    accepted=$(sed -n "s/.*unknown parameter 'sfbench_probe_key' (accepted: \([^)]*\)).*/\1/p" "$SCRATCH/probe.err" | head -n 1)
    overrides=
    case ", $accepted," in
    *", timeout,"*) overrides="timeout=0.2" ;;
    esac

    # shellcheck disable=SC2086  # $overrides is empty or one word
    run "$SFBENCH" --device cpu --output "$out" "$script" $overrides "$@"
    expect_rc 0 "$label ${overrides:-(defaults)}"
    expect_files "$out" "*.json" 1 "$label"
    expect_no_tmp "$out" "$label"
    json=$(files_in "$out" "*.json" | head -n 1)
    [ -n "$json" ] || return 0
    case $(basename "$json") in
    "$name"-*.json) pass "$label: file named after the scenario" ;;
    *) fail "$label: result file $(basename "$json")" ;;
    esac
    check_json "$json" "$label: JSON parses and is complete" "
check(type(doc) == 'table', 'not an object')
check(doc.scenario == '$name', 'scenario is ' .. tostring(doc.scenario))
check(doc.complete == true, 'complete is ' .. tostring(doc.complete))
check(doc.interrupted ~= true, 'interrupted')
check(doc.error == nil, 'error: ' .. tostring(doc.error))
check(type(doc.context) == 'table' and type(doc.context.device) == 'table'
  and doc.context.device.backend == 'cpu', 'context.device.backend')
check(type(doc.rows) == 'table' and #doc.rows >= 1, 'no rows')
"
    check_json "$json" "$label: times are the samples' medians; rates follow the FLOP or byte formula" "
dofile(os.getenv('SF_SRCDIR') .. '/tests/cli/sweep_checks.lua')(doc, check)
"
}

wanted() {
    [ -z "${SF_SCENARIOS:-}" ] && return 0
    case " $SF_SCENARIOS " in *" $1 "*) return 0 ;; esac
    return 1
}

found=0
for script in "$SF_SRCDIR"/scenarios/*.lua; do
    [ -f "$script" ] || continue
    found=$((found + 1))
    wanted "$(basename "$script" .lua)" && check_scenario "$script"
done
if wanted attention_sweep; then check_scenario "$SF_SRCDIR/scenarios/attention_sweep.lua" causal=false,true; fi
if wanted gemm_sweep; then check_scenario "$SF_SRCDIR/scenarios/gemm_sweep.lua" dtype=e4m3; fi
if wanted ffn_sweep; then
    # how each FP8 impl quantized h, in its rows: the fused FFN as asked (static by default), the
    # unfused one per token
    for h in "" static dynamic; do
        check_scenario "$SF_SRCDIR/scenarios/ffn_sweep.lua" dtype=e4m3 ${h:+fp8_h=$h}
        json=$(files_in "$(out_dir ffn_sweep dtype=e4m3 ${h:+fp8_h=$h})" "*.json" | head -n 1)
        check_json "$json" "ffn_sweep dtype=e4m3 ${h:-(fp8_h by default)}: the rows say how h was quantized" "
for _, r in ipairs(doc.rows) do
  local want = r.impl == 'fused' and '${h:-static}' or 'dynamic'
  check(r.fp8_h == want, r.impl .. ': fp8_h ' .. tostring(r.fp8_h) .. ', expected ' .. want)
end
"
    done
fi
if wanted layer_sweep; then check_scenario "$SF_SRCDIR/scenarios/layer_sweep.lua" impl=fp8; fi
if wanted gemv_sweep; then check_scenario "$SF_SRCDIR/scenarios/gemv_sweep.lua" splits=0,3 m=1 proj=o,down; fi
if wanted decode_sweep; then
    check_scenario "$SF_SRCDIR/scenarios/decode_sweep.lua" page_order=ordered
    json=$(files_in "$(out_dir decode_sweep page_order=ordered)" "*.json" | head -n 1)
    check_json "$json" "decode_sweep page_order=ordered: the result records the order" "
check(doc.params.page_order == 'ordered', 'page_order ' .. tostring(doc.params.page_order))
"
fi
if [ "$found" -ge 2 ]; then pass "$found scenarios found"; else fail "only $found scenario(s) in $SF_SRCDIR/scenarios"; fi

finish
