#!/usr/bin/env python3
"""Same-sitting PyTorch reference for scripts/gpu-bench.sh, on whatever device torch sees
(CUDA when there is one, else the CPU): random BertForSequenceClassification models of the
shapes `headroom bench` and the criterion benches use (minilm: 6 layers x 12 heads, hidden 384;
base: 12 x 12, 768), 32 examples of 128 random tokens, float32 with TF32 off (the arithmetic
headroom's WGSL kernels do). Times, each the median of N runs after warm-up, synchronised:
  - forward, eager attention (transformers 4.57, the path `head_mask` lives on);
  - forward, SDPA attention (PyTorch's fused scaled_dot_product_attention);
  - forward + head_mask.grad with per-example gates [L,B,H,1,1] (eager; what `headroom score`
    computes);
  - one fine-tuning step (train mode, dropout, backward, clipping, AdamW; eager);
  - the kernels of the criterion benches: y = x.W^T + b at M = 4096 and BERT-base's (K, N), and
    SDPA attention forward (and forward + backward) at B 32, T 128, 12 heads, d 64.
Usage: torch_gpu.py [--shapes minilm,base] [--iters N] [--out FILE.json]"""
import argparse, json, statistics, sys, time

import torch
import transformers
from transformers import BertConfig, BertForSequenceClassification

SHAPES = {
    "minilm": dict(num_hidden_layers=6, num_attention_heads=12, hidden_size=384, intermediate_size=1536),
    "base": dict(num_hidden_layers=12, num_attention_heads=12, hidden_size=768, intermediate_size=3072),
}


def timer(dev):
    if dev.type == "cuda":
        def run(f):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record(); f(); end.record(); torch.cuda.synchronize()
            return start.elapsed_time(end) / 1e3
    else:
        def run(f):
            t0 = time.perf_counter(); f(); return time.perf_counter() - t0
    return run


def median_time(f, dev, iters):
    run = timer(dev)
    for _ in range(3):
        run(f)
    return statistics.median(run(f) for _ in range(iters))


def steps(model, ids, labels):
    """The three timed steps of a BertForSequenceClassification on a batch: forward (no grad),
    forward + per-example head-mask gradient ([L, B, H, 1, 1], eager attention only), and one
    fine-tuning step (train mode, backward, clipping, AdamW). benches/transformers_t128.py
    times the same steps on the CPU."""
    cfg = model.config
    L, H, B = cfg.num_hidden_layers, cfg.num_attention_heads, ids.shape[0]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0)

    def forward():
        with torch.no_grad():
            model(input_ids=ids)

    def forward_gate_backward():
        mask = torch.ones(L, B, H, 1, 1, device=ids.device, requires_grad=True)
        logits = model(input_ids=ids, head_mask=mask).logits
        torch.nn.functional.cross_entropy(logits, labels, reduction="sum").backward()
        model.zero_grad(set_to_none=True)

    def train_step():
        model.train()
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        model.eval()

    return {"forward": forward, "forward_gate_backward": forward_gate_backward, "train_step": train_step}


def kernels(report, dev, iters):
    """The criterion benches' matmul and attention shapes, for a same-device reference."""
    g = torch.Generator(device=dev).manual_seed(0)
    m = 4096
    for k, n in ((768, 768), (768, 3072), (3072, 768)):
        x = torch.rand(m, k, device=dev, generator=g) - 0.5
        w = torch.rand(n, k, device=dev, generator=g) - 0.5
        b = torch.rand(n, device=dev, generator=g) - 0.5
        s = median_time(lambda: torch.nn.functional.linear(x, w, b), dev, iters)
        row = {"case": f"matmul_M{m}_K{k}_N{n}", "median_ms": s * 1e3, "gflops": 2 * m * n * k / s / 1e9}
        report["results"].append(row)
        print(f"torch {row['case']:32} {s * 1e3:9.3f} ms  {row['gflops']:9.0f} GFLOP/s", flush=True)
    B, H, T, d = 32, 12, 128, 64
    q, k_, v = ((torch.rand(B, H, T, d, device=dev, generator=g) - 0.5).requires_grad_() for _ in range(3))
    sdpa = torch.nn.functional.scaled_dot_product_attention
    fl = 4 * B * H * T * T * d

    def fwd():
        with torch.no_grad():
            sdpa(q, k_, v)

    def fwd_bwd():
        sdpa(q, k_, v).sum().backward()

    for case, f, flops in (("attention_B32_T128_H12_d64", fwd, fl), ("attention_fwd_bwd_B32_T128_H12_d64", fwd_bwd, 3.5 * fl)):
        s = median_time(f, dev, iters)
        row = {"case": case, "median_ms": s * 1e3, "gflops": flops / s / 1e9}
        report["results"].append(row)
        print(f"torch {case:32} {s * 1e3:9.3f} ms  {row['gflops']:9.0f} GFLOP/s", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="minilm,base")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    B, T = a.batch, a.seq
    report = {
        "torch": torch.__version__, "transformers": transformers.__version__,
        "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        "dtype": "float32", "tf32": False, "batch": B, "seq": T, "iters": a.iters, "results": [],
    }
    kernels(report, dev, a.iters)
    for shape in a.shapes.split(","):
        ids = torch.randint(1000, 21000, (B, T), device=dev)
        ids[:, 0], ids[:, -1] = 101, 102
        labels = torch.arange(B, device=dev) % 2
        models = {}
        for impl in ("eager", "sdpa"):
            torch.manual_seed(1)
            cfg = BertConfig(vocab_size=30522, num_labels=2, attn_implementation=impl, **SHAPES[shape])
            models[impl] = BertForSequenceClassification(cfg).to(dev).eval()
        models["sdpa"].load_state_dict(models["eager"].state_dict())
        # the two attention paths compute the same function
        with torch.no_grad():
            diff = (models["eager"](input_ids=ids).logits - models["sdpa"](input_ids=ids).logits).abs().max().item()
        eager = models["eager"]

        eager_steps = steps(eager, ids, labels)
        cases = [("forward", "eager", eager_steps["forward"]),
                 ("forward", "sdpa", steps(models["sdpa"], ids, labels)["forward"]),
                 ("forward_gate_backward", "eager", eager_steps["forward_gate_backward"]),
                 ("train_step", "eager", eager_steps["train_step"])]
        for name, impl, f in cases:
            s = median_time(f, dev, a.iters)
            row = {"shape": shape, "case": name, "attention": impl, "median_ms": s * 1e3,
                   "examples_per_s": B / s, "eager_sdpa_max_logit_diff": diff}
            report["results"].append(row)
            print(f"torch {shape:6} {name:22} {impl:5}  {s * 1e3:9.2f} ms  {B / s:9.1f} ex/s", flush=True)
        del models, eager, eager_steps
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    text = json.dumps(report, indent=1)
    if a.out:
        with open(a.out + ".tmp", "w") as f:
            f.write(text)
        import os
        os.replace(a.out + ".tmp", a.out)
    else:
        print(text)


if __name__ == "__main__":
    sys.exit(main())
