#!/usr/bin/env python3
"""The error FP8 attention adds by rounding P, estimated off the GPU (NumPy and ml_dtypes, not
dependencies of the build: python3 kernels/fp8_attention_error.py [SEED] [REPEATS]).

For validate_attention's GPU shapes of head dim 128, causal and not, with bf16 inputs drawn N(0, 1):
  - plain: Q, K and V quantized to e4m3 per tensor (amax / 448), then exact attention;
  - kernel-like: the same, P (exp(s - row max), in (0, 1]) also rounded to e4m3 for P.V while the
    row sum keeps P unrounded, the output rounded to bf16, as the Hopper FP8 kernel does (it
    rounds P against the running max of its KV blocks, not the row's final max);
both against fp64 attention of the bf16 inputs. Prints each case's three measures (relative L2,
worst row, max-abs over the largest |ref|, as sfbench.validate computes them) and the ratio of
kernel-like to plain, which validate.plain_bounds holds to 1.5."""
import sys

import ml_dtypes
import numpy as np

E4M3, BF16 = ml_dtypes.float8_e4m3fn, ml_dtypes.bfloat16
# validate_attention's GPU cases of head dim 128 (B, Nq, Nk, H, Hkv, D)
CASES = [(1, 1, 1, 4, 4, 128), (1, 1000, 1000, 8, 8, 128), (1, 4097, 4097, 2, 1, 128), (2, 256, 256, 8, 8, 128),
         (1, 1024, 1024, 64, 8, 128), (1, 17, 300, 4, 2, 128), (1, 300, 100, 4, 2, 128)]


def e4m3(x):
    s = np.abs(x).max() / 448.0
    return (x / s).astype(E4M3).astype(np.float64) * s


def attention(q, k, v, causal, round_p=False):
    B, Nq, H, D = q.shape
    Nk, Hkv = k.shape[1], k.shape[2]
    out = np.zeros(q.shape)
    for b in range(B):
        for h in range(H):
            kh = h // (H // Hkv)
            s = q[b, :, h] @ k[b, :, kh].T / np.sqrt(D)
            if causal:  # bottom-right: query i sees keys up to i + Nk - Nq
                s = np.where(np.arange(Nk)[None, :] > np.arange(Nq)[:, None] + (Nk - Nq), -np.inf, s)
            m = s.max(axis=1, keepdims=True)
            m = np.where(np.isfinite(m), m, 0)
            p = np.exp(s - m)
            total = p.sum(axis=1, keepdims=True)
            pv = (p.astype(E4M3).astype(np.float64) if round_p else p) @ v[b, :, kh]
            out[b, :, h] = np.where(total > 0, pv / np.where(total > 0, total, 1), 0)
    return out


def measures(out, ref):
    d, rows = out - ref, ref.shape[-1]
    rn = np.linalg.norm(ref.reshape(-1, rows), axis=1)
    dn = np.linalg.norm(d.reshape(-1, rows), axis=1)
    worst = np.max(np.where(rn > 0, dn / np.where(rn > 0, rn, 1), dn))
    return np.array([np.linalg.norm(d) / np.linalg.norm(ref), worst, np.abs(d).max() / np.abs(ref).max()])


def main():
    rng = np.random.default_rng(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
    ratios = []
    for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 4):
        for B, Nq, Nk, H, Hkv, D in CASES:
            for causal in (False, True):
                q, k, v = (rng.standard_normal(s).astype(BF16).astype(np.float64)
                           for s in ((B, Nq, H, D), (B, Nk, Hkv, D), (B, Nk, Hkv, D)))
                ref = attention(q, k, v, causal)
                q8, k8, v8 = e4m3(q), e4m3(k), e4m3(v)
                plain = measures(attention(q8, k8, v8, causal), ref)
                kernel = measures(attention(q8, k8, v8, causal, round_p=True).astype(BF16).astype(np.float64), ref)
                ratios.append(kernel / plain)
                print((B, Nq, Nk, H, Hkv, D), "causal" if causal else "", "plain", np.round(plain, 4),
                      "kernel-like", np.round(kernel, 4), "ratio", np.round(kernel / plain, 3), flush=True)
    r = np.array(ratios)
    print("ratio (relative L2, worst row, max-abs): worst", np.round(r.max(axis=0), 3), "median",
          np.round(np.median(r, axis=0), 3), "over", len(r), "cases")


if __name__ == "__main__":
    main()
