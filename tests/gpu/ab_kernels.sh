#!/bin/sh
# The ab scenario over two user kernels given as files: a plain copy against the same copy with
# a long dependent loop per element. The loop's kernel is the slower beyond any noise, so the
# verdict must be "slower", and the saved result holds both sides' samples.
# Skips (77) where there is no CUDA device.
. "$SF_SRCDIR/tests/cli/lib.sh"
. "$SF_SRCDIR/tests/gpu/require-gpu.sh"

cat >"$SCRATCH/copy.cu" <<'EOF'
extern "C" __global__ void kernel(float *out, const float *in, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = in[i];
}
EOF
cat >"$SCRATCH/loop.cu" <<'EOF'
extern "C" __global__ void kernel(float *out, const float *in, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float v = in[i];
  for (int k = 0; k < 2000; k++) v = v * 0.999f + 0.001f;
  out[i] = v;
}
EOF

run "$SFBENCH" --device cuda --output "$SCRATCH/out" ab a="$SCRATCH/copy.cu" b="$SCRATCH/loop.cu" rounds=2 \
    timeout=0.5 warmup_ms=50 sample_ms=5
expect_rc 0 "ab over two kernel files"
expect_stdout_has "| kernel |" "ab: the op is the user kernel"
expect_stdout_has "| slower  |" "ab: the looping kernel is slower"
expect_files "$SCRATCH/out" "ab-*.json" 1 "ab: result saved"
json=$(files_in "$SCRATCH/out" "ab-*.json" | head -n 1)
[ -n "$json" ] && check_json "$json" "ab result: both sides' samples, the comparison on row b" "
check(#doc.rows == 2 and doc.rows[1].side == 'a' and doc.rows[2].side == 'b', 'rows')
check(doc.rows[2].verdict == 'slower' and doc.rows[2].ratio > 1.5, 'row b: ' .. tostring(doc.rows[2].ratio))
check(#doc.results == 2 and #doc.results[1].samples >= 2 and doc.results[2].row == 2, 'results')
"
finish
