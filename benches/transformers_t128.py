#!/usr/bin/env python3
"""Same-sitting reference for the `model` criterion group: transformers 4.57 (eager, float32,
torch CPU) forward, and forward + head_mask.grad, on 32 examples of 128 random tokens, with the
model directory weights/minilm-cls. Median of 10 runs, examples/s."""
import statistics, time
import torch
from transformers import BertForSequenceClassification

torch.manual_seed(0)
model = BertForSequenceClassification.from_pretrained("weights/minilm-cls", attn_implementation="eager").eval()
L, H = model.config.num_hidden_layers, model.config.num_attention_heads
B, T = 32, 128
ids = torch.randint(1000, 21000, (B, T))
ids[:, 0], ids[:, -1] = 101, 102
labels = torch.arange(B) % 2

def fwd():
    with torch.no_grad():
        model(input_ids=ids)

def fwd_bwd():
    mask = torch.ones(L, B, H, 1, 1, requires_grad=True)
    logits = model(input_ids=ids, head_mask=mask).logits
    torch.nn.functional.cross_entropy(logits, labels, reduction="sum").backward()

for name, f in [("forward", fwd), ("forward + head_mask.grad", fwd_bwd)]:
    f()
    ts = []
    for _ in range(10):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    med = statistics.median(ts)
    print(f"transformers {name} B{B} T{T}: median {med*1e3:.0f} ms, {B/med:.1f} examples/s (torch threads {torch.get_num_threads()})")
