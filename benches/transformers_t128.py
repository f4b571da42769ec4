#!/usr/bin/env python3
"""Same-sitting reference for the `model` criterion group: transformers 4.57 (eager, float32,
torch CPU) forward, forward + head_mask.grad, and one fine-tuning step (train mode, dropout,
backward, clipping, AdamW), on 32 examples of 128 random tokens, with the model directory
weights/minilm-cls (or the directory given as the first argument). Median of 10 runs."""
import statistics, sys, time
import torch
from transformers import BertForSequenceClassification
from torch_gpu import steps  # the same three steps, timed on the GPU there

torch.manual_seed(0)
path = sys.argv[1] if len(sys.argv) > 1 else "weights/minilm-cls"
model = BertForSequenceClassification.from_pretrained(path, attn_implementation="eager").eval()
B, T = 32, 128
ids = torch.randint(1000, 21000, (B, T))
ids[:, 0], ids[:, -1] = 101, 102
labels = torch.arange(B) % 2

s = steps(model, ids, labels)
for name, f in [("forward", s["forward"]), ("forward + head_mask.grad", s["forward_gate_backward"]),
                ("train step", s["train_step"])]:
    f()
    ts = []
    for _ in range(10):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    med = statistics.median(ts)
    print(f"transformers {name} B{B} T{T}: median {med*1e3:.0f} ms, {B/med:.1f} examples/s (torch threads {torch.get_num_threads()})")
