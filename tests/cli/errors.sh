#!/bin/sh
# The command line's errors: each bad invocation gets the right exit status, a message naming
# the problem (one line where the issue asks for one), and leaves no result file behind.
. "$SF_SRCDIR/tests/cli/lib.sh"

out=$SCRATCH/results
mkdir -p "$out"
# sfbench on the CPU backend, writing results (if any) under $out
sfb() {
    "$SFBENCH" --device cpu --output "$out" "$@"
}

# ---- scripts that cannot run ----

run sfb "$SCRATCH/nosuch_script_xyz.lua"
expect_rc 2 "missing script"
expect_one_line_error "missing script"
expect_stderr_has "nosuch_script_xyz.lua" "missing script"
expect_stderr_has "cannot open" "missing script"

run sfb nosuch_scenario_xyz
expect_rc 2 "missing scenario name"
expect_one_line_error "missing scenario name"
expect_stderr_has "nosuch_scenario_xyz" "missing scenario name"

# a folder is not a script: one named like a scenario (an --output folder called test_setup)
# leaves the scenario found, and one given as a path is an error naming it
mkdir -p "$SCRATCH/cwd/test_setup" "$SCRATCH/folder.lua"
run sh -c "cd '$SCRATCH/cwd' && '$SFBENCH' --device cpu --quiet --output '$out' test_setup"
expect_rc 0 "a folder named like a scenario does not hide it"
run sfb "$SCRATCH/folder.lua"
expect_rc 2 "a folder as the script"
expect_one_line_error "a folder as the script"
expect_stderr_has "cannot open script" "a folder as the script"
rm -f "$out"/*.json

printf 'local x = 1\nx = = 2\n' >"$SCRATCH/syntax.lua"
run sfb "$SCRATCH/syntax.lua"
expect_rc 1 "syntax error"
expect_one_line_error "syntax error"
expect_stderr_has "syntax.lua:2:" "syntax error"

printf 'local function f()\n  error("boom")\nend\nf()\n' >"$SCRATCH/runtime.lua"
run sfb "$SCRATCH/runtime.lua"
expect_rc 1 "runtime error"
expect_one_line_error "runtime error"
expect_stderr_has "runtime.lua:2: boom" "runtime error"
expect_empty "$OUT_FILE" "runtime error: stdout"
run sfb --traceback "$SCRATCH/runtime.lua"
expect_rc 1 "runtime error, --traceback"
expect_stderr_has "runtime.lua:2: boom" "runtime error, --traceback"
expect_stderr_has "stack traceback" "runtime error, --traceback"
expect_stderr_has "runtime.lua:4:" "runtime error, --traceback (the caller in the traceback)"

# an error object that is not a string
printf 'error({})\n' >"$SCRATCH/table_error.lua"
run sfb "$SCRATCH/table_error.lua"
expect_rc 1 "non-string error"
expect_stderr_has "table" "non-string error"

# ---- -e ----

run sfb -e 'error("kaboom")'
expect_rc 1 "-e runtime error"
expect_stderr_has "(command line):1: kaboom" "-e runtime error"
expect_one_line_error "-e runtime error"

run sfb -e 'x ='
expect_rc 1 "-e syntax error"
expect_one_line_error "-e syntax error"
expect_stderr_has "(command line):1:" "-e syntax error"

run sfb -e 'print(1 + 2)'
expect_rc 0 "-e success"
if [ "$(cat "$OUT_FILE")" = "3" ]; then pass "-e prints 3"; else fail "-e printed '$(cat "$OUT_FILE")'"; fi
expect_empty "$ERR_FILE" "-e success: stderr"

run sfb -e 'return 3'
expect_rc 3 "a script's returned integer is the exit status"

# ---- options ----

run sfb --bogus "$SCRATCH/runtime.lua"
expect_rc 2 "unknown option"
expect_one_line_error "unknown option"
expect_stderr_has "--bogus" "unknown option"

run "$SFBENCH" -x
expect_rc 2 "unknown short option"
expect_one_line_error "unknown short option"
expect_stderr_has "-x" "unknown short option"

for opt in --device --output -e; do
    run "$SFBENCH" "$opt"
    expect_rc 2 "$opt without its value"
    expect_one_line_error "$opt without its value"
    expect_stderr_has "$opt" "$opt without its value"
    expect_stderr_has "needs a value" "$opt without its value"
done

run "$SFBENCH" --device bogus -e ''
expect_rc 2 "--device bogus"
expect_one_line_error "--device bogus"
expect_stderr_has "bogus" "--device bogus"

run "$SFBENCH" --device=bogus -e ''
expect_rc 2 "--device=bogus"
expect_stderr_has "bogus" "--device=bogus"

run "$SFBENCH" --device cpu -e 'assert(require("sfbench").device().backend == "cpu")'
expect_rc 0 "--device cpu"

# --device cuda: a clear error on a machine without a (usable) GPU
if "$SFBENCH" --device cuda -e '' >/dev/null 2>&1; then
    run "$SFBENCH" --device cuda -e 'assert(require("sfbench").device().backend == "cuda")'
    expect_rc 0 "--device cuda with a GPU"
else
    run "$SFBENCH" --device cuda -e ''
    expect_rc 2 "--device cuda without a GPU"
    expect_one_line_error "--device cuda without a GPU"
    if grep -q -i -e cuda -e gpu "$ERR_FILE"; then pass "--device cuda without a GPU: names CUDA"
    else fail "--device cuda without a GPU: the message does not say CUDA"; show_last; fi
fi

run "$SFBENCH"
expect_rc 2 "no script"
expect_stderr_has "Usage: sfbench" "no script"

# a script and -e: one of them runs, so both are a mistake (either order)
run sfb "$SCRATCH/runtime.lua" -e 'print(1)'
expect_rc 2 "a script and -e"
expect_one_line_error "a script and -e"
expect_stderr_has "runtime.lua" "a script and -e"
expect_stderr_has "-e" "a script and -e"
run sfb -e 'print(1)' "$SCRATCH/runtime.lua"
expect_rc 2 "-e and a script"
expect_one_line_error "-e and a script"
expect_stderr_has "runtime.lua" "-e and a script"

run sfb -e 'print(1)' -e 'print(2)'
expect_rc 2 "-e twice"
expect_one_line_error "-e twice"
expect_stderr_has "print(2)" "-e twice"

run sfb "$SCRATCH/runtime.lua" "$SCRATCH/syntax.lua"
expect_rc 2 "two scripts"
expect_one_line_error "two scripts"
expect_stderr_has "syntax.lua" "two scripts"

# ---- key=value parameters ----

run sfb -e '' =5
expect_rc 2 "a parameter without a key"
expect_one_line_error "a parameter without a key"
expect_stderr_has "=5" "a parameter without a key"

# a scenario that reads its parameters: an unknown key is named, in one line
run sfb gemm_sweep bogus_key=1
expect_rc 2 "unknown scenario key"
expect_stderr_has "bogus_key" "unknown scenario key"
expect_one_line_error "unknown scenario key"

# values of the wrong type
run sfb gemm_sweep tokens=abc
expect_rc 2 "bad list value"
expect_stderr_has "abc" "bad list value"
expect_stderr_has "tokens" "bad list value"
expect_one_line_error "bad list value"

run sfb gemm_sweep timeout=soon
expect_rc 2 "bad number value"
expect_stderr_has "timeout" "bad number value"
expect_one_line_error "bad number value"

run sfb gemm_sweep cold=maybe
expect_rc 2 "bad boolean value"
expect_stderr_has "cold" "bad boolean value"
expect_one_line_error "bad boolean value"

run sfb gemm_sweep model=8b
expect_rc 2 "value not among the choices"
expect_stderr_has "8b" "value not among the choices"
expect_one_line_error "value not among the choices"

# the steady-state and length parameters the sweeps check before they start (after the CPU
# backend's one-line note, where a sweep prints one, or a validate scenario's seed)
for case in "gemm_sweep sample_ms=0:sample_ms" "ffn_sweep warmup_ms=-1:warmup_ms" "gemm_sweep timeout=0:timeout" \
    "memory_ops timeout=0:timeout" "timing_stability timeout=-1:timeout" "launch_overhead timeout=0:timeout" \
    "attention_sweep seq=100000:100000" "layer_sweep seq=100000:allow_long" "layer_sweep stages=bogus:bogus" \
    "decode_sweep launch=graph:needs the CUDA backend" "model_sweep launch=stream,graph:needs the CUDA backend" \
    "ffn_sweep dtype=e4m3 act=gelu:act=swiglu alone" "ffn_sweep fp8_h=static:fp8_h is for dtype=e4m3" \
    "gemv_sweep splits=2,2:listed twice" \
    "gemv_sweep splits=-1:bad value '-1' for splits" "decode_sweep splits=2,2:listed twice" \
    "gemv_sweep splits=65:bad value '65' for splits" "decode_sweep splits=5000:bad value '5000' for splits" \
    "decode_sweep page_order=sorted:page_order" "validate_layer seq=0:for seq" "validate_gemv seed=2.5:for seed" \
    "validate_tp_layer chunks=0:for chunks" "memory_ops dtype=xyz:for dtype" "ffn_sweep act=relu:for act" \
    "ffn_sweep impl=magic:for impl"; do
    args=${case%%:*}
    # shellcheck disable=SC2086  # two words: the scenario and its parameter
    run sfb $args
    expect_rc 2 "$args"
    expect_empty "$OUT_FILE" "$args: stdout"
    expect_stderr_has "${case##*:}" "$args"
done

# values a sweep cannot run, caught before anything runs (the CPU note included): one line,
# naming the parameter
for case in "decode_sweep heads=4/3:for heads" "decode_sweep heads=0/4:for heads" \
    "decode_sweep page=-1:for page" "decode_sweep page=12:power of two" "decode_sweep nq=9:for nq" \
    "decode_sweep nq=0:for nq" "model_sweep page=12:power of two" "model_sweep page=-1:for page" \
    "layer_sweep fp8_h=dynamic:fp8_h is for impl=fp8" "attention_sweep impl=flash3:for impl" \
    "gemm_sweep dtype=e5m2:for dtype" "read_ceiling ctas=9:for ctas" "read_ceiling unroll=17:for unroll" \
    "read_ceiling mib=0.5:for mib" "read_ceiling mib=16,16:listed twice" "gemm_sweep iters=2.5:for iters" \
    "ffn_sweep iters=-3:for iters" "gemm_sweep tokens=0:for tokens" "gemm_sweep square=0:for square" \
    "gemm_sweep tokens=16,16:listed twice" "ffn_sweep tokens=2.5:for tokens" "attention_sweep seq=0:for seq" \
    "attention_sweep batch=0:for batch" "gemv_sweep m=0:for m" "gemv_sweep m=65:for m" "layer_sweep seq=-4:for seq" \
    "layer_sweep profile_iters=0:for profile_iters" "model_sweep batch=0:for batch" "model_sweep prompt=0:for prompt" \
    "model_sweep context=-1:for context" "model_sweep gemm=gemv batch=65:for batch" "decode_sweep seq=0:for seq" \
    "decode_sweep batch=0:for batch" \
    "decode_sweep head_dim=1:for head_dim" "tp_layer_sweep batch=0:for batch" "ab tokens=0:for tokens" \
    "ab block=2000:for block" "launch_overhead launches=0:for launches" "memory_ops hidden=100:for hidden" \
    "test_setup size=0:for size" "timing_stability runs=0:for runs" "timing_stability batch=xyz:for batch"; do
    args=${case%%:*}
    # shellcheck disable=SC2086  # two words: the scenario and its parameter
    run sfb $args
    expect_rc 2 "$args"
    expect_one_line_error "$args"
    expect_stderr_has "${case##*:}" "$args"
done

# a script that reads no parameters
run sfb -e 'local x = 1' foo=1
expect_rc 2 "key for a script without parameters"
expect_one_line_error "key for a script without parameters"
expect_stderr_has "foo" "key for a script without parameters"

# a key the script never reads, though it loads sfbench
run sfb -e 'local sf = require "sfbench"' unread_key=2
expect_rc 2 "key the script never reads"
expect_one_line_error "key the script never reads"
expect_stderr_has "unread_key" "key the script never reads"

# ---- help, version, list ----

for opt in --help -h; do
    run "$SFBENCH" "$opt"
    expect_rc 0 "$opt"
    expect_stdout_has "Usage: sfbench" "$opt"
    expect_stdout_has "--device" "$opt"
    expect_stdout_has "--output" "$opt"
    expect_stdout_has "--list" "$opt"
    expect_stdout_has "-e CODE" "$opt"
    expect_empty "$ERR_FILE" "$opt: stderr"
done

version=$(sed -n 's/^AC_INIT(\[sfbench\], \[\([^]]*\)\].*/\1/p' "$SF_SRCDIR/configure.ac")
for opt in --version -V; do
    run "$SFBENCH" "$opt"
    expect_rc 0 "$opt"
    if [ "$(cat "$OUT_FILE")" = "sfbench $version" ]; then pass "$opt prints 'sfbench $version'"
    else fail "$opt printed '$(cat "$OUT_FILE")', expected 'sfbench $version'"; fi
    expect_empty "$ERR_FILE" "$opt: stderr"
done

run "$SFBENCH" --list
expect_rc 0 "--list"
if grep -q '^gemm' "$OUT_FILE"; then pass "--list names gemm"; else fail "--list does not name gemm"; show_last; fi
for arg in a b c transa transb alpha beta bias epilogue tf32 stream; do
    if grep -q "^ *$arg  *[a-z]" "$OUT_FILE"; then pass "--list shows gemm's argument $arg"
    else fail "--list does not show gemm's argument $arg"; show_last; fi
done
expect_stdout_has "required" "--list"
expect_stdout_has "default false" "--list"

# ---- nothing half-written ----

expect_no_tmp "$out" "after the failed runs"
expect_files "$out" "*.json" 0 "after the failed runs"

finish
