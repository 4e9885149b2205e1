#!/bin/sh
# Every variant of the decode attention kernel (SFBENCH_DECODE_VARIANT) validated on the GPU,
# then timed over the same decode sweep, and a table of variant × point last. A tuning run, not
# part of `make check`: about a minute a variant on an H200.
# Usage: tests/gpu/decode_variants.sh OUTDIR [variant ...]   (from the build tree's top)
#   OUTDIR/<variant>/  that variant's validate_decode and decode_sweep results
#   OUTDIR/decode_variants.json  the closing table
# SFBENCH (default src/sfbench) and SF_SRCDIR (default .) as make check sets them; SWEEP
# overrides the sweep's arguments.
out="${1:?usage: decode_variants.sh OUTDIR [variant ...]}"
shift
variants="${*:-base ring ring48 mma}"
SFBENCH="${SFBENCH:-$PWD/src/sfbench}"
SF_SRCDIR="${SF_SRCDIR:-.}"
SWEEP="${SWEEP:-batch=1,8,32 seq=4096,16384 heads=32/32,64/8 page=0,16 iters=10 warmup_ms=200}"
export SFBENCH SF_SRCDIR
mkdir -p "$out" || exit 1

failed=""
for v in $variants; do
    mkdir -p "$out/$v"
    ok=yes
    SFBENCH_DECODE_VARIANT=$v "$SFBENCH" --device cuda --quiet --output "$out/$v" \
        "$SF_SRCDIR/scenarios/validate_decode.lua" >"$out/$v/validate.log" 2>&1 || ok=no
    SFBENCH_DECODE_VARIANT=$v SF_TEST_OUT="$out/$v" \
        sh "$SF_SRCDIR/tests/run-lua.sh" "$SF_SRCDIR/tests/gpu/test_gpu_decode.lua" >"$out/$v/test_gpu_decode.log" 2>&1 || ok=no
    if [ $ok = yes ]; then
        echo "PASS: $v (validate_decode, test_gpu_decode)"
    else
        echo "FAIL: $v: see $out/$v/validate.log and test_gpu_decode.log"
        tail -n 5 "$out/$v/validate.log" "$out/$v/test_gpu_decode.log"
        failed="$failed,$v"
    fi
done

for v in $variants; do
    case ",$failed," in *",$v,"*) continue ;; esac
    echo "timing: $v"
    # shellcheck disable=SC2086 # SWEEP is a list of key=value words
    SFBENCH_DECODE_VARIANT=$v "$SFBENCH" --device cuda --output "$out/$v" \
        "$SF_SRCDIR/scenarios/decode_sweep.lua" $SWEEP >"$out/$v/sweep.log" 2>&1 ||
        { echo "FAIL: the sweep of $v: see $out/$v/sweep.log"; tail -5 "$out/$v/sweep.log"; failed="$failed,$v"; }
done

list=$(echo "$variants" | tr -s ' ' ',')
"$SFBENCH" --device cpu "$SF_SRCDIR/tests/gpu/decode_variants.lua" dir="$out" variants="$list" failed="${failed#,}"
[ -z "$failed" ]
