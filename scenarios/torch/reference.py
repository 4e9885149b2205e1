"""PyTorch counterparts of sfbench's scenarios, for same-machine, same-call comparisons.

    python3 scenarios/torch/reference.py gemm|attention|ffn|layer|decode|model|nccl|fp8err [--out FILE] [--sample-ms MS] [--warmup-ms MS]
                                         [--model 7b|13b|70b]                 (gemm, layer)
                                         [--seq N,...]                        (layer only)
                                         [--dtype bf16,f16,e4m3] [--tokens N,...] [--square N,...]   (gemm only)
                                         [--world N] [--dtype bf16,...] [--bytes 1K,...,4G]   (nccl only)

Times with CUDA events: median of `iters` after `warmup` runs, random inputs (never zeros), the
samples fed to the GPU as sfbench's bench.run feeds them (see time_ms).
Writes JSON rows like sfbench's results, so that doc/tables.lua can put them beside ours: saved as
torch_<what>-<stamp>.json in the folder of the sweep run in the same call (layer: torch_layer beside
layer_sweep, e.g. `layer`, and `layer --model 70b --seq 4096` beside
the 70B layer_sweep; nccl: torch_nccl beside nccl_sweep, the same --world as its --gpus).
"""
import argparse
import inspect
import json
import math
import os
import re
import statistics
import sys
import time

import torch


AHEAD_RATIO = 0.8        # bench.run's: queue samples one ahead when the host needs under this
AHEAD_SLACK_MS = 0.2     # bench.run's: ... and finishes queueing a sample this long before the GPU
PROBE_CALLS = 4          # bench.run's: calls timed to measure the host's pace
PROBE_HOLD_MS = 50       # the probe's calls wait behind a kernel sleeping this long
# the sweeps' own defaults on the GPU (bench.steady_defaults), so that a plain run beside a sweep
# measures the same steady state
SAMPLE_MS = 25.0         # --sample-ms: back-to-back calls per sample last at least this long
WARMUP_MS = 500.0        # --warmup-ms: back-to-back calls after the warm-up calls, before sampling


_sleep_cycles_per_ms = None


def sleep_cycles(ms):
    """torch.cuda._sleep's argument for about `ms` of GPU time (calibrated once)."""
    global _sleep_cycles_per_ms
    if _sleep_cycles_per_ms is None:
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        torch.cuda._sleep(10_000_000)
        stop.record()
        stop.synchronize()
        _sleep_cycles_per_ms = 10_000_000 / start.elapsed_time(stop)
    return int(ms * _sleep_cycles_per_ms)


def time_ms(fn, warmup=10, iters=50, agree=None):
    """GPU time of fn, as sfbench's bench.run measures it: `warmup` calls, then back-to-back
    calls for WARMUP_MS (the load's steady clock), then samples of enough back-to-back calls to
    last SAMPLE_MS (bench.run's sample_time); returns the median ms per call and the feed.

    agree: for a collective fn run by several processes, a function giving the elementwise max
    over them of a list of numbers. Every process then takes the same decisions (batch, warm-up
    rounds), so all make the same calls, each sample is queued behind its own hold ("held", as
    bench.run's at world > 1) and each sample is the slowest process's.

    How samples are fed follows bench.run's "feed": where the host queues a sample in under
    AHEAD_RATIO of its GPU time and at least AHEAD_SLACK_MS before the GPU is done with it, each
    sample is queued while the one before runs, so the GPU never idles between samples (an idle
    gap lets a power-capped GPU clock up and flatters the next sample). Otherwise each sample is
    queued behind a spinning kernel (torch.cuda._sleep, sfbench's sf.hold) sized to outlast the
    host's queueing, so the host's pace is not in it."""
    together = agree is not None
    agree = agree or (lambda values: values)
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    stop.record()
    stop.synchronize()
    call_ms = max(agree([start.elapsed_time(stop)])[0], 1e-6)
    batch = max(1, min(256, math.ceil(SAMPLE_MS / call_ms)))
    # the probe, as bench.run's: a few calls queued behind a sleeping kernel, so that their events
    # time the GPU alone while the host's time to queue them is measured (call_ms above includes
    # the host's launch latency, which for a short call is most of it)
    probe = min(batch, PROBE_CALLS)
    torch.cuda._sleep(sleep_cycles(PROBE_HOLD_MS))
    t0 = time.perf_counter()
    start.record()
    for _ in range(probe):
        fn()
    stop.record()
    host_ms = (time.perf_counter() - t0) * 1000
    stop.synchronize()
    gpu_ms = start.elapsed_time(stop)
    queue_ms = host_ms / probe * batch
    until = time.perf_counter() + WARMUP_MS / 1000
    while agree([time.perf_counter() < until])[0]:
        for _ in range(batch):
            fn()
        torch.cuda.synchronize()
    events = [[torch.cuda.Event(enable_timing=True) for _ in range(2)] for _ in range(2)]

    def queue_sample(ev):
        ev[0].record()
        for _ in range(batch):
            fn()
        ev[1].record()

    times = []
    slack_ms = (gpu_ms - host_ms) * batch / probe
    feed = "ahead" if host_ms < AHEAD_RATIO * gpu_ms and slack_ms >= AHEAD_SLACK_MS and not together else "held"
    if feed == "ahead":
        queue_sample(events[0])
        for i in range(iters):
            queue_sample(events[(i + 1) % 2])
            ev = events[i % 2]
            ev[1].synchronize()
            times.append(ev[0].elapsed_time(ev[1]) / batch)
        torch.cuda.synchronize()
    else:
        hold = sleep_cycles(1.5 * agree([queue_ms])[0] + 0.1)
        for _ in range(iters):
            torch.cuda._sleep(hold)
            queue_sample(events[0])
            events[0][1].synchronize()
            times.append(events[0][0].elapsed_time(events[0][1]) / batch)
    return statistics.median(agree(times)), feed


GEMM_DTYPES = {"bf16": torch.bfloat16, "f16": torch.float16, "e4m3": torch.float8_e4m3fn}


def quantized(x):
    """x in e4m3 with its per-tensor f32 dequantization scale (amax / 448), as sfbench's quantize"""
    fmax = torch.finfo(torch.float8_e4m3fn).max
    scale = x.abs().amax().float() / fmax
    return (x / scale).clamp(-fmax, fmax).to(torch.float8_e4m3fn), scale


def gemm_rows(dtypes, model, tokens, squares):
    """torch.nn.functional.linear at gemm_sweep's shapes (s³ for each square size, and the model's
    projections for each count of tokens: qkv, o, gate_up, down); e4m3: torch._scaled_mm of x and W
    quantized once with per-tensor scales, written in bf16 (gemm_sweep dtype=e4m3's product), with
    its default accumulation and with use_fast_accum (gemm_sweep fast_accum=true's)"""
    rows = []
    for dtype_name in dtypes:
        dtype = GEMM_DTYPES[dtype_name]
        for m, n, k in [(s, s, s) for s in squares] + [mnk for t in tokens for mnk in projections(LLAMA2[model], t)]:
            if dtype == torch.float8_e4m3fn:
                a, a_scale = quantized(torch.randn(m, k, device="cuda"))
                w, w_scale = quantized(torch.randn(n, k, device="cuda") * 0.02)
                fns = [(impl, lambda fast=fast: torch._scaled_mm(a, w.t(), scale_a=a_scale, scale_b=w_scale,
                                                                 out_dtype=torch.bfloat16, use_fast_accum=fast))
                       for impl, fast in (("torch_scaled_mm", False), ("torch_scaled_mm_fast", True))]
            else:
                a = torch.randn(m, k, device="cuda", dtype=dtype)
                w = torch.randn(n, k, device="cuda", dtype=dtype) * 0.02
                fns = [("torch", lambda: torch.nn.functional.linear(a, w))]
            for impl, fn in fns:
                ms, feed = time_ms(fn)
                rows.append({"impl": impl, "dtype": dtype_name, "m": m, "n": n, "k": k, "ms": ms,
                             "tflops": 2 * m * n * k / ms / 1e9, "feed": feed})
    return rows


def rowwise_quantized(x):
    """x in e4m3 with a f32 dequantization scale per row (amax / 448 of each), as sfbench's quantize
    with a scale of shape [rows]"""
    fmax = torch.finfo(torch.float8_e4m3fn).max
    scale = x.abs().amax(dim=-1, keepdim=True).float() / fmax
    return (x / scale).clamp(-fmax, fmax).to(torch.float8_e4m3fn), scale


def errors(out, ref):
    """out's error against the fp64 ref, as sfbench's validate.check measures it: relative L2 of the
    whole, of the worst row (last dimension), and the largest absolute error over ref's largest"""
    d = out.double() - ref
    return {"rel_l2": (d.norm() / ref.norm()).item(),
            "row_rel_l2": (d.norm(dim=-1) / ref.norm(dim=-1)).max().item(),
            "max_abs_ratio": (d.abs().max() / ref.abs().max()).item()}


def fp8err_rows():
    """The error against fp64 of a straightforward FP8 computation on 16-bit inputs, the base of
    sfbench's FP8 validation bounds (issue: at most 1.5x it). GEMM: torch._scaled_mm, bf16 out, of x
    (std 1) and W (std 0.02) quantized per tensor, and per row and per output channel (the fp8
    layer's scales), at the Llama-2-7B projections' (n, k) for 1024 tokens. Attention: Q, K and V
    rounded to e4m3 per tensor, QK^T in fp32, an fp32 softmax, P (each row over its max, in (0, 1])
    rounded to e4m3 for P.V, as FA3 does; against fp64 attention of the f16 inputs."""
    rows = []
    torch.manual_seed(0)
    for name, (m, n, k) in zip(("qkv", "o", "gate_up", "down"), projections(LLAMA2["7b"], 1024)):
        x = torch.randn(m, k, device="cuda", dtype=torch.float16)
        w = (torch.randn(n, k, device="cuda") * 0.02).half()
        ref = x.double() @ w.double().t()
        for scales, quant in (("tensor", quantized), ("row", rowwise_quantized)):
            a, sa = quant(x)
            b, sb = quant(w)
            sa, sb = (sa, sb) if scales == "tensor" else (sa.reshape(m, 1), sb.reshape(1, n))
            out = torch._scaled_mm(a, b.t(), scale_a=sa, scale_b=sb, out_dtype=torch.bfloat16)
            rows.append({"what": "gemm", "shape": name, "scales": scales, "m": m, "n": n, "k": k,
                         **errors(out, ref)})
    fmax = torch.finfo(torch.float8_e4m3fn).max
    h, d = 8, 128
    for causal in (False, True):
        for n in (1024, 4096):
            q, k, v = (torch.randn(h, n, d, device="cuda", dtype=torch.float16) for _ in range(3))
            mask = torch.ones(n, n, device="cuda", dtype=torch.bool).tril() if causal else None
            s64 = (q.double() @ k.double().transpose(1, 2)) / math.sqrt(d)
            if causal:
                s64 = s64.masked_fill(~mask, float("-inf"))
            ref = torch.softmax(s64, dim=-1) @ v.double()
            (q8, sq), (k8, sk), (v8, sv) = (quantized(t) for t in (q, k, v))
            s = (q8.float() @ k8.float().transpose(1, 2)) * (sq * sk / math.sqrt(d))
            if causal:
                s = s.masked_fill(~mask, float("-inf"))
            p = torch.exp(s - s.amax(dim=-1, keepdim=True))
            p8 = p.clamp(max=fmax).to(torch.float8_e4m3fn).float()
            out = (p8 @ v8.float()) * sv / p.sum(dim=-1, keepdim=True)
            rows.append({"what": "attention", "causal": causal, "heads": h, "n": n, "d": d, **errors(out, ref)})
    return rows


def attention_rows():
    """eager (transformers' eager_attention_forward), SDPA's FlashAttention-2 backend and SDPA's
    cuDNN backend (FlashAttention-3 class on Hopper), Llama-2-7B heads"""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
    rows = []
    h, d = 32, 128
    for causal in (False, True):
        for n in (512, 1024, 2048, 4096, 8192):
            q, k, v = (torch.randn(1, h, n, d, device="cuda", dtype=torch.float16) for _ in range(3))
            mask = torch.full((n, n), float("-inf"), device="cuda", dtype=torch.float16).triu(1) if causal else None

            def eager():
                w = torch.matmul(q, k.transpose(2, 3)) * d ** -0.5
                if mask is not None:
                    w = w + mask
                w = torch.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
                return torch.matmul(w, v)

            def flash():
                with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

            def cudnn():
                with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

            flops = 4 * h * n * n * d * (0.5 if causal else 1)
            for impl, fn in (("torch_eager", eager), ("torch_sdpa_flash", flash), ("torch_sdpa_cudnn", cudnn)):
                if impl == "torch_eager" and n > 4096:
                    continue                       # 8192: 20 GiB of intermediates, and minutes of nothing new
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
                ms, feed = time_ms(fn)
                extra = (torch.cuda.max_memory_allocated() - base) / 2 ** 20
                rows.append({"impl": impl, "seq": n, "causal": causal, "ms": ms, "tflops": flops / ms / 1e9,
                             "extra_mib": extra, "feed": feed})
    return rows


def ffn_rows():
    """PyTorch eager GELU MLP and SwiGLU at Llama-2-7B's shape"""
    import torch.nn.functional as F
    rows = []
    hidden, inter = 4096, 11008
    w1, w2, w3 = (torch.randn(*s, device="cuda", dtype=torch.float16) * 0.02
                  for s in ((inter, hidden), (hidden, inter), (inter, hidden)))
    for t in (512, 1024, 2048, 4096, 16384):
        x = torch.randn(t, hidden, device="cuda", dtype=torch.float16)
        gelu = lambda: F.linear(F.gelu(F.linear(x, w1), approximate="tanh"), w2)
        swiglu = lambda: F.linear(F.silu(F.linear(x, w1)) * F.linear(x, w3), w2)
        for act, fn, gemms in (("gelu", gelu, 2), ("swiglu", swiglu, 3)):
            ms, feed = time_ms(fn)
            rows.append({"impl": "torch_eager", "act": act, "tokens": t, "ms": ms,
                         "tflops": gemms * 2 * t * hidden * inter / ms / 1e9, "feed": feed})
    return rows


# Llama-2 shapes, as lua/sfbench/models.lua has them
LLAMA2 = {
    "7b": {"hidden": 4096, "heads": 32, "kv_heads": 32, "intermediate": 11008},
    "13b": {"hidden": 5120, "heads": 40, "kv_heads": 40, "intermediate": 13824},
    "70b": {"hidden": 8192, "heads": 64, "kv_heads": 8, "intermediate": 28672},
}


def projections(shape, t):
    """(m, n, k) of the layer's GEMMs for t tokens (gemm_sweep's shapes): qkv, o, gate_up, down"""
    h, kv = shape["hidden"], shape["kv_heads"] * shape["hidden"] // shape["heads"]
    return [(t, h + 2 * kv, h), (t, h, h), (t, 2 * shape["intermediate"], h), (t, h, shape["intermediate"])]


def layer_flops(shape, seq):
    """sfbench.llama's llama.flops for B = 1: the projections, the FFN, causal attention (half)"""
    d, h, hkv, inter = shape["hidden"], shape["heads"], shape["kv_heads"], shape["intermediate"]
    hd = d // h
    return 2 * seq * d * (h + 2 * hkv) * hd + 2 * seq * d * h * hd + 3 * 2 * seq * d * inter + 4 * h * seq * seq * hd / 2


def layer_rows(model, seqs):
    """transformers' LlamaDecoderLayer with attn_implementation="sdpa", eager and torch.compile'd,
    at layer_sweep's shapes: B = 1, fp16, random weights (std 0.02 as sfbench.llama's, the norm
    weights about 1), causal (no mask: transformers' sdpa path then asks SDPA for is_causal). The
    rotary cos/sin come from transformers' LlamaRotaryEmbedding, once per length and outside the
    timed call, as LlamaModel computes them once for all of its layers; a transformers whose layer
    takes no position_embeddings turns position_ids into cos/sin inside the layer instead."""
    try:
        import transformers
        from transformers import LlamaConfig
        from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding
    except ImportError as e:
        sys.exit(f"reference.py layer: needs transformers' LlamaDecoderLayer ({e})")
    shape = LLAMA2[model]
    config = LlamaConfig(hidden_size=shape["hidden"], intermediate_size=shape["intermediate"],
                         num_attention_heads=shape["heads"], num_key_value_heads=shape["kv_heads"],
                         num_hidden_layers=1, max_position_embeddings=4096, rms_norm_eps=1e-5,
                         rope_theta=10000.0, attn_implementation="sdpa")
    if getattr(config, "_attn_implementation", None) != "sdpa":
        sys.exit(f"reference.py layer: transformers {transformers.__version__} did not take "
                 f"attn_implementation=\"sdpa\" (its config says {getattr(config, '_attn_implementation', None)!r})")
    with torch.device("cuda"):
        layer = LlamaDecoderLayer(config, layer_idx=0)
    layer = layer.to(torch.float16).eval()
    with torch.no_grad():
        for p in layer.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.02)
            else:
                p.normal_(1.0, 0.1)
    takes_embeddings = "position_embeddings" in inspect.signature(layer.forward).parameters
    rotary = None
    if takes_embeddings:
        try:
            rotary = LlamaRotaryEmbedding(config=config).to("cuda")
        except TypeError as e:
            sys.exit(f"reference.py layer: transformers {transformers.__version__}'s LlamaRotaryEmbedding "
                     f"does not take config= ({e})")
    compiled = torch.compile(layer, dynamic=False)   # one graph a length, as a fixed-shape prefill
    rows = []
    with torch.no_grad():
        for n in seqs:
            x = torch.randn(1, n, shape["hidden"], device="cuda", dtype=torch.float16)
            positions = torch.arange(n, device="cuda").unsqueeze(0)
            kwargs = {"attention_mask": None, "position_ids": positions, "use_cache": False}
            if rotary is not None:
                kwargs["position_embeddings"] = rotary(x, positions)
            for impl, module in (("transformers_sdpa", layer), ("transformers_compile", compiled)):
                ms, feed = time_ms(lambda: module(x, **kwargs))
                rows.append({"impl": impl, "model": model, "seq": n, "batch": 1, "dtype": "f16", "ms": ms,
                             "tflops": layer_flops(shape, n) / ms / 1e9, "feed": feed,
                             "transformers": transformers.__version__})
    return rows


def graph_ms(fn):
    """time_ms of fn captured once in a CUDA graph (after warm-up calls on a side stream, as
    capture needs): the GPU time without the host's launches"""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return time_ms(graph.replay)


def decode_rows():
    """SDPA of one new token over a KV cache (the shapes of decode_sweep: B, N, H/Hkv, D 128),
    FlashAttention-2 and cuDNN backends, timed inside CUDA graphs; a graph cycles over enough
    caches to be four times the L2 (64 at most, as decode_sweep), so that every call reads its K
    and V from DRAM"""
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
    l2 = getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 << 20)
    rows = []
    d = 128
    for h, hkv in ((32, 32), (64, 8)):
        for b in (1, 8, 32, 64):
            for n in (1024, 4096, 16384):
                nbytes = 2 * b * n * hkv * d * 2
                sets = min(64, max(1, math.ceil(4 * l2 / nbytes)))  # sfbench's bench.dram_copies
                q = torch.randn(b, h, 1, d, device="cuda", dtype=torch.float16)
                ks = [torch.randn(b, hkv, n, d, device="cuda", dtype=torch.float16) for _ in range(sets)]
                vs = [torch.randn(b, hkv, n, d, device="cuda", dtype=torch.float16) for _ in range(sets)]
                gqa = {"enable_gqa": True} if hkv != h else {}
                for impl, backend in (("torch_sdpa_flash", SDPBackend.FLASH_ATTENTION),
                                      ("torch_sdpa_cudnn", SDPBackend.CUDNN_ATTENTION)):
                    def fn(backend=backend):
                        with sdpa_kernel(backend):
                            for k, v in zip(ks, vs):
                                F.scaled_dot_product_attention(q, k, v, **gqa)
                    row = {"impl": impl, "heads": f"{h}/{hkv}", "batch": b, "seq": n, "mb": nbytes / 1e6}
                    try:
                        ms, feed = graph_ms(fn)
                    except RuntimeError as e:          # a backend without this shape (GQA, say)
                        row["error"] = str(e).splitlines()[0][:200]
                        rows.append(row)
                        continue
                    us = ms / sets * 1e3
                    rows.append(dict(row, us=us, tbs=nbytes / us / 1e6, sets=sets, feed=feed))
                del ks, vs
                torch.cuda.empty_cache()
    return rows


def model_rows():
    """transformers' LlamaForCausalLM at Llama-2-7B's shape, random weights, fp16: the prefill of
    one prompt up to the last token's logits (time to first token), the decode step eager over a
    DynamicCache, and over a StaticCache under torch.compile(mode="reduce-overhead") (CUDA
    graphs). Caches are filled with random K and V up to the context; every timed step writes the
    same position (the eager DynamicCache is cropped back after each step), so the context stays
    put, as in model_sweep."""
    from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM, StaticCache
    layers, kv_heads, head_dim, vocab = 32, 32, 128, 32000
    cfg = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=layers, num_attention_heads=32,
                      num_key_value_heads=kv_heads, vocab_size=vocab, max_position_embeddings=16384 + 64,
                      rms_norm_eps=1e-5)
    with torch.device("cuda"):
        model = LlamaForCausalLM._from_config(cfg, torch_dtype=torch.float16).eval()
    forward_args = inspect.signature(model.forward).parameters
    keep = next(({k: 1} for k in ("logits_to_keep", "num_logits_to_keep") if k in forward_args), {})

    def random_kv(b, n):
        return [(torch.randn(b, kv_heads, n, head_dim, device="cuda", dtype=torch.float16),
                 torch.randn(b, kv_heads, n, head_dim, device="cuda", dtype=torch.float16)) for _ in range(layers)]

    rows = []
    with torch.inference_mode():
        for p in (512, 1024, 2048, 4096):
            ids = torch.randint(0, vocab, (1, p), device="cuda")
            ms, feed = time_ms(lambda: model(input_ids=ids, use_cache=False, **keep), warmup=3, iters=10)
            rows.append({"impl": "transformers_eager", "phase": "prefill", "batch": 1, "tokens": p, "ms": ms,
                         "tok_s": p / ms * 1e3, "feed": feed})
        for b, n in ((1, 1024), (1, 4096), (8, 4096), (32, 1024)):
            cache = DynamicCache()
            for layer, (k, v) in enumerate(random_kv(b, n)):
                cache.update(k, v, layer)
            tok = torch.randint(0, vocab, (b, 1), device="cuda")

            def step():
                model(input_ids=tok, past_key_values=cache, use_cache=True)
                cache.crop(n)
            ms, feed = time_ms(step, warmup=3, iters=10)
            rows.append({"impl": "transformers_eager", "phase": "decode", "batch": b, "tokens": n, "ms": ms,
                         "tok_s": b / ms * 1e3, "feed": feed})
            del cache
            torch.cuda.empty_cache()
        for b, n in ((1, 4096),):
            try:
                cache = StaticCache(config=cfg, max_batch_size=b, max_cache_len=n + 8, device="cuda",
                                    dtype=torch.float16)
            except TypeError:                      # newer transformers: sized by the first update
                cache = StaticCache(config=cfg, max_cache_len=n + 8)
            filled = torch.arange(n, device="cuda")
            for layer, (k, v) in enumerate(random_kv(b, n)):
                cache.update(k, v, layer, {"cache_position": filled})
            tok = torch.randint(0, vocab, (b, 1), device="cuda")
            pos = torch.tensor([n], device="cuda")
            # newer transformers write a static layer at its own count of tokens seen (a tensor,
            # cumulative_length), not at cache_position: each step takes the count back by its one
            # token (one multi-tensor kernel), so every step writes position n and the cache
            # never overflows its n + 8 rows
            counts = [layer.cumulative_length for layer in getattr(cache, "layers", [])
                      if isinstance(getattr(layer, "cumulative_length", None), torch.Tensor)]
            compiled = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)

            def static_step():
                compiled(input_ids=tok, past_key_values=cache, cache_position=pos, use_cache=True)
                if counts:
                    torch._foreach_sub_(counts, 1)
            row = {"impl": "transformers_static_compiled", "phase": "decode", "batch": b, "tokens": n}
            try:
                ms, feed = time_ms(static_step, warmup=5, iters=20)
            except RuntimeError as e:              # the rows above are kept
                rows.append(dict(row, error=str(e).splitlines()[0][:200]))
                break
            rows.append(dict(row, ms=ms, tok_s=b / ms * 1e3, feed=feed))
    return rows


NCCL_DTYPES = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32, "f64": torch.float64}
NCCL_BYTES = ",".join(f"{1 << e % 10}{'KMG'[e // 10 - 1]}" for e in range(10, 33, 2))   # nccl_sweep's: 1K, 4K, ..., 4G


def parse_bytes(text):
    """nccl_sweep's bytes=: comma-separated sizes, K, M, G and T the powers of 1024"""
    sizes = []
    for item in text.split(","):
        m = re.fullmatch(r"([1-9][0-9]*)([KMGT]?)", item.strip().upper())
        if not m:
            raise ValueError(f"bad size {item!r}")
        sizes.append(int(m.group(1)) << 10 * " KMGT".index(m.group(2) or " "))
    return sizes


def nccl_worker(rank, world, init, out, settings):
    """rank `rank` (cuda:rank) of nccl_sweep's points through torch.distributed: all_reduce (in
    place, torch's only form), all_gather_into_tensor, reduce_scatter_tensor and broadcast from
    rank 0, each message size S as nccl_sweep counts and rounds it; rank 0 writes the rows to out"""
    global SAMPLE_MS, WARMUP_MS
    import torch.distributed as dist
    SAMPLE_MS, WARMUP_MS = settings["sample_ms"], settings["warmup_ms"]   # a spawned process starts afresh
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", init_method=init, rank=rank, world_size=world)

    def agree(values):
        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device="cuda")
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return t.tolist()

    factor = {"all_reduce": 2 * (world - 1) / world, "all_gather": (world - 1) / world,
              "reduce_scatter": (world - 1) / world, "broadcast": 1}
    rows = []
    for op in factor:
        blocks = world if op in ("all_gather", "reduce_scatter") else 1
        for name in settings["dtypes"]:
            dtype = NCCL_DTYPES[name]
            es = torch.empty(0, dtype=dtype).element_size()
            for size in settings["bytes"]:
                c = size // (es * blocks)                    # elements a block
                if c == 0 or (op == "broadcast" and world == 1):
                    continue                                 # as nccl_sweep: an error, a no-op
                nbytes = c * es * blocks
                row = {"impl": "torch_nccl", "op": op, "dtype": name, "bytes": nbytes, "world": world}
                held = nbytes + (nbytes // world if blocks > 1 else 0)
                if agree([held >= torch.cuda.mem_get_info()[0]])[0]:
                    rows.append(dict(row, note=f"left out: its buffers take {held / 2 ** 30:.2f} GiB a rank"))
                    continue
                x = torch.randn(c * (world if op == "reduce_scatter" else 1), device="cuda", dtype=dtype)
                y = torch.empty(c * (world if op == "all_gather" else 1), device="cuda", dtype=dtype)
                fn = {"all_reduce": lambda: dist.all_reduce(x),
                      "all_gather": lambda: dist.all_gather_into_tensor(y, x),
                      "reduce_scatter": lambda: dist.reduce_scatter_tensor(y, x),
                      "broadcast": lambda: dist.broadcast(x, src=0)}[op]
                ms, feed = time_ms(fn, agree=agree)
                algbw = nbytes / ms / 1e6
                rows.append(dict(row, us=ms * 1e3, algbw=algbw, busbw=algbw * factor[op], feed=feed))
                del x, y
                torch.cuda.empty_cache()
    if rank == 0:
        with open(out, "w") as f:
            json.dump(rows, f)
    dist.destroy_process_group()


def nccl_rows(world, settings):
    """nccl_worker on `world` GPUs, one process each, meeting at a file:// rendezvous"""
    import tempfile
    import torch.multiprocessing as mp
    # NVLink multicast (NVLS) off before any NCCL starts, as sfbench keeps it in every rank
    os.environ.update(NCCL_NVLS_ENABLE="0", TORCH_SYMM_MEM_DISABLE_MULTICAST="1", NVSHMEM_DISABLE_NVLS="1")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rows.json")
        mp.spawn(nccl_worker, args=(world, "file://" + os.path.join(tmp, "rendezvous"), out, settings), nprocs=world)
        with open(out) as f:
            return json.load(f)


def counts(ap, option, text):
    """the positive integers of a comma-separated option, or argparse's error naming it"""
    try:
        values = [int(s) for s in text.split(",")]
    except ValueError:
        ap.error(f"{option}: expected comma-separated integers, got {text!r}")
    if any(n < 1 for n in values):
        ap.error(f"{option}: expected positive integers, got {text!r}")
    return values


def main():
    global SAMPLE_MS, WARMUP_MS
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["gemm", "attention", "ffn", "layer", "decode", "model", "nccl", "fp8err"])
    ap.add_argument("--out")
    ap.add_argument("--sample-ms", type=float, default=SAMPLE_MS,
                    help="back-to-back calls per sample last at least this long (sfbench's sample_ms)")
    ap.add_argument("--warmup-ms", type=float, default=WARMUP_MS,
                    help="back-to-back calls before sampling (sfbench's warmup_ms)")
    ap.add_argument("--model", choices=sorted(LLAMA2), default="7b",
                    help="gemm, layer: the Llama-2 shape (the sweep's model)")
    ap.add_argument("--seq", default="512,1024,2048,4096",
                    help="layer: comma-separated sequence lengths (layer_sweep's seq)")
    ap.add_argument("--tokens", default="512,2048,4096",
                    help="gemm: comma-separated token counts (gemm_sweep's tokens, and its default)")
    ap.add_argument("--square", default="8192", help="gemm: comma-separated sizes of square products (gemm_sweep's square)")
    ap.add_argument("--dtype", help="comma-separated dtypes (the sweep's dtype): gemm of " + ", ".join(GEMM_DTYPES)
                    + " (default bf16,f16), nccl of " + ", ".join(NCCL_DTYPES) + " (default bf16)")
    ap.add_argument("--world", type=int, help="nccl: GPUs, one process each (default: every visible GPU)")
    ap.add_argument("--bytes", default=NCCL_BYTES, help="nccl: comma-separated message sizes (nccl_sweep's bytes)")
    args = ap.parse_args()
    allowed = NCCL_DTYPES if args.what == "nccl" else GEMM_DTYPES
    dtypes = (args.dtype or ("bf16" if args.what == "nccl" else "bf16,f16")).split(",")
    if any(d not in allowed for d in dtypes):
        ap.error(f"--dtype: expected comma-separated dtypes of {', '.join(allowed)}, got {args.dtype!r}")
    SAMPLE_MS, WARMUP_MS = args.sample_ms, args.warmup_ms
    if args.what == "nccl":
        world = args.world or torch.cuda.device_count()
        if not 1 <= world <= torch.cuda.device_count():
            ap.error(f"--world: {world} GPUs asked, {torch.cuda.device_count()} visible")
        try:
            sizes = parse_bytes(args.bytes)
        except ValueError as e:
            ap.error(f"--bytes: {e}")
        rows = nccl_rows(world, {"sample_ms": SAMPLE_MS, "warmup_ms": WARMUP_MS, "dtypes": dtypes, "bytes": sizes})
    elif args.what == "layer":
        rows = layer_rows(args.model, counts(ap, "--seq", args.seq))
    elif args.what == "gemm":
        rows = gemm_rows(dtypes, args.model, counts(ap, "--tokens", args.tokens), counts(ap, "--square", args.square))
    else:
        rows = {"attention": attention_rows, "ffn": ffn_rows, "decode": decode_rows,
                "model": model_rows, "fp8err": fp8err_rows}[args.what]()
    doc = {"torch": torch.__version__, "device": torch.cuda.get_device_name(), "sample_ms": SAMPLE_MS,
           "warmup_ms": WARMUP_MS, "rows": rows}
    for r in rows:
        print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))
    if args.out:                                   # whole or not at all
        with open(args.out + ".part", "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(args.out + ".part", args.out)


if __name__ == "__main__":
    main()
