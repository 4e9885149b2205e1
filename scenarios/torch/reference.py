"""PyTorch counterparts of sfbench's scenarios, for same-machine, same-call comparisons.

    python3 scenarios/torch/reference.py gemm [--out FILE]

Times with CUDA events: median of `iters` after `warmup` runs, random inputs (never zeros).
Writes JSON rows like sfbench's results so the README generator can put them side by side.
"""
import argparse
import json
import statistics

import torch


def time_ms(fn, warmup=10, iters=50):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def gemm_rows():
    rows = []
    for dtype_name, dtype in (("bf16", torch.bfloat16), ("f16", torch.float16)):
        for m, n, k in ((8192, 8192, 8192), (4096, 12288, 4096), (4096, 22016, 4096), (4096, 4096, 11008)):
            a = torch.randn(m, k, device="cuda", dtype=dtype)
            w = torch.randn(n, k, device="cuda", dtype=dtype) * 0.02
            ms = time_ms(lambda: torch.nn.functional.linear(a, w))
            rows.append({"impl": "torch", "dtype": dtype_name, "m": m, "n": n, "k": k, "ms": ms,
                         "tflops": 2 * m * n * k / ms / 1e9})
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["gemm"])
    ap.add_argument("--out")
    args = ap.parse_args()
    rows = {"gemm": gemm_rows}[args.what]()
    doc = {"torch": torch.__version__, "device": torch.cuda.get_device_name(), "rows": rows}
    for r in rows:
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
