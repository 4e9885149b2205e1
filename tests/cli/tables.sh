#!/bin/sh
# The generated tables (README.md's headline, doc/results-*.md) are what doc/tables.lua makes of
# the committed results/ folders (no hand edits, no stale figures): regenerate into a folder and
# compare. Then, on a made-up results folder, that a PyTorch run beside a sweep joins its rows.
: "${SFBENCH:?run through make check}"
tmp="$SF_TEST_OUT/tables.$$"
mkdir -p "$tmp"
if ! "$SFBENCH" --device cpu "$SF_SRCDIR/doc/tables.lua" root="$SF_SRCDIR" out="$tmp" >/dev/null; then
    echo "FAIL: doc/tables.lua did not run"
    exit 1
fi
for page in README.md doc/results-h200.md doc/results-h100.md; do
    if ! cmp -s "$tmp/$(basename "$page")" "$SF_SRCDIR/$page"; then
        echo "FAIL: $page tables differ from the committed results (run: sfbench doc/tables.lua)"
        diff "$SF_SRCDIR/$page" "$tmp/$(basename "$page")" | head -20
        exit 1
    fi
done

# a layer_sweep and the torch_layer of the same call: the layer table gains transformers' and
# torch.compile's columns, and the headline its layer lines
fake="$tmp/root"
mkdir -p "$fake/results/x"

# expect_page WHAT WANT...: doc/tables.lua fills $fake/page.md from $fake's results, and the page
# holds every WANT line
expect_page() {
    what=$1
    shift
    if ! "$SFBENCH" --device cpu "$SF_SRCDIR/doc/tables.lua" root="$fake" pages=page.md >/dev/null; then
        echo "FAIL: doc/tables.lua did not run on the made-up $what results"
        exit 1
    fi
    for want in "$@"; do
        if ! grep -qF -- "$want" "$fake/page.md"; then
            echo "FAIL: the generated $what page lacks: $want"
            cat "$fake/page.md"
            exit 1
        fi
    done
}
cat >"$fake/results/x/layer_sweep-20260101-000000.json" <<'JSON'
{"scenario": "layer_sweep", "context": {"device": {"name": "Test GPU"}, "time": "2026-01-01T00:00:00Z",
 "command_line": "sfbench layer_sweep seq=512,4096"},
 "rows": [{"seq": 512, "impl": "baseline", "ms": 0.5}, {"seq": 512, "impl": "optimized", "ms": 0.4, "speedup": 1.25},
          {"seq": 4096, "impl": "baseline", "ms": 7.0}, {"seq": 4096, "impl": "optimized", "ms": 3.0, "speedup": 2.33}]}
JSON
cat >"$fake/results/x/torch_layer-20260101-000000.json" <<'JSON'
{"torch": "9.9", "rows": [{"impl": "transformers_sdpa", "seq": 512, "ms": 0.6}, {"impl": "transformers_compile", "seq": 512, "ms": 0.44},
                          {"impl": "transformers_sdpa", "seq": 4096, "ms": 4.0}, {"impl": "transformers_compile", "seq": 4096, "ms": 3.3}]}
JSON
printf '# t\n<!-- headline results/x -->\n<!-- /headline -->\n<!-- tables results/x -->\n<!-- /tables -->\n' >"$fake/page.md"
expect_page layer '| 4096 | optimized | 3.000 |' '|           4.000 |            3.300 |           1.100 |' \
    '| Llama-2-7B layer, N = 512  | optimized | 0.400 |' '| 0.440 |             1.100 |' \
    'PyTorch 9.9: `results/x/torch_layer-20260101-000000.json`'
# decode: a decode_sweep and a model_sweep with the torch_decode and torch_model of their call: the
# cuDNN and compiled-transformers columns, and the headline's decode lines (graph rows against graphs)
cat >"$fake/results/x/decode_sweep-20260101-000000.json" <<'JSON'
{"scenario": "decode_sweep", "context": {"device": {"name": "Test GPU"}, "time": "2026-01-01T00:00:00Z",
 "command_line": "sfbench decode_sweep"},
 "rows": [{"heads": "32/32", "nq": 1, "page": 0, "batch": 1, "seq": 4096, "launch": "stream", "splits": 8, "mb": 67.1, "us": 25.0, "tbs": 2.68},
          {"heads": "32/32", "nq": 1, "page": 0, "batch": 1, "seq": 4096, "launch": "graph", "splits": 8, "mb": 67.1, "us": 20.0, "tbs": 3.36},
          {"heads": "32/32", "nq": 1, "page": 16, "batch": 1, "seq": 4096, "launch": "graph", "splits": 8, "mb": 67.1, "us": 21.0, "tbs": 3.2}]}
JSON
cat >"$fake/results/x/torch_decode-20260101-000000.json" <<'JSON'
{"torch": "9.9", "rows": [{"impl": "torch_sdpa_cudnn", "heads": "32/32", "batch": 1, "seq": 4096, "us": 22.0},
                          {"impl": "torch_sdpa_flash", "heads": "32/32", "batch": 1, "seq": 4096, "us": 27.5}]}
JSON
cat >"$fake/results/x/model_sweep-20260101-000000.json" <<'JSON'
{"scenario": "model_sweep", "context": {"device": {"name": "Test GPU"}, "time": "2026-01-01T00:00:00Z",
 "command_line": "sfbench model_sweep"},
 "rows": [{"phase": "decode", "launch": "stream", "batch": 1, "tokens": 4096, "ms": 5.2, "model_ms": 5.2, "tok_s": 192.3},
          {"phase": "decode", "launch": "graph", "batch": 1, "tokens": 4096, "ms": 4.5, "model_ms": 4.5, "tok_s": 222.2}]}
JSON
cat >"$fake/results/x/torch_model-20260101-000000.json" <<'JSON'
{"torch": "9.9", "rows": [{"impl": "transformers_eager", "phase": "decode", "batch": 1, "tokens": 4096, "ms": 63.0},
                          {"impl": "transformers_static_compiled", "phase": "decode", "batch": 1, "tokens": 4096, "ms": 5.4}]}
JSON
printf '# t\n<!-- headline results/x -->\n<!-- /headline -->\n<!-- tables results/x -->\n<!-- /tables -->\n' >"$fake/page.md"
expect_page decode '| 32/32 |   1 |    0 |     1 | 4096 | graph  |      8 |   67.1 | 20.00 | 3.36 |' \
    '|         22.00 |       27.50 |           1.100 |' \
    '| 32/32 |   1 |   16 |     1 | 4096 | graph  |      8 |   67.1 | 21.00 | 3.20 | —        | —       |             — |' \
    '| decode | graph  |     1 |           4096 | 4.500 |    4.500 |    222.2 |' '|                63.000 |       5.400 |      1.200 |' \
    '| decode attention, 7B heads, B = 1, N = 4096 | split-KV, CUDA graph | 0.020 |' '| 0.022 |' \
    '| Llama-2-7B decode step, B = 1, context 4096 | CUDA graph           | 4.500 |' '| 5.400 |             1.200 |'
# nccl_sweep and the torch_nccl of the same call: PyTorch's busbw beside each timed point of the same
# op, dtype, size and world, none beside a point left out
cat >"$fake/results/x/nccl_sweep-20260101-000000.json" <<'JSON'
{"scenario": "nccl_sweep", "context": {"device": {"name": "Test GPU"}, "time": "2026-01-01T00:00:00Z",
 "command_line": "sfbench --gpus 2 nccl_sweep"},
 "rows": [{"op": "all_reduce", "dtype": "bf16", "bytes": 1048576, "world": 2, "us": 20.0, "algbw": 52.43, "busbw": 52.43},
          {"op": "all_gather", "dtype": "bf16", "bytes": 1048576, "world": 2, "us": 10.0, "algbw": 104.86, "busbw": 52.43},
          {"op": "all_gather", "dtype": "bf16", "bytes": 4294967296, "world": 2, "note": "left out"}]}
JSON
cat >"$fake/results/x/torch_nccl-20260101-000000.json" <<'JSON'
{"torch": "9.9", "rows": [{"impl": "torch_nccl", "op": "all_reduce", "dtype": "bf16", "bytes": 1048576, "world": 2, "us": 25.0, "busbw": 41.94},
                          {"impl": "torch_nccl", "op": "all_gather", "dtype": "bf16", "bytes": 1048576, "world": 4, "us": 30.0, "busbw": 26.2},
                          {"impl": "torch_nccl", "op": "all_gather", "dtype": "bf16", "bytes": 4294967296, "world": 2, "us": 9e4, "busbw": 23.9}]}
JSON
printf '# t\n<!-- tables results/x -->\n<!-- /tables -->\n' >"$fake/page.md"
expect_page nccl '| all_reduce | bf16  |    1048576 |     2 | 20.00 |      52.43 |      52.43 | —        |              41.94 |             1.250 |' \
    '| all_gather | bf16  |    1048576 |     2 | 10.00 |     104.86 |      52.43 | —        |                  — |                 — |' \
    '| all_gather | bf16  | 4294967296 |     2 |     — |          — |          — | left out |                  — |                 — |'
rm -rf "$tmp"
echo "PASS: the tables match the committed results, and PyTorch runs join their sweeps"
