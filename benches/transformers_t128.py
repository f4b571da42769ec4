#!/usr/bin/env python3
"""Same-sitting reference for the `model` criterion group: transformers 4.57 (eager, float32,
torch CPU) forward, forward + head_mask.grad, and one fine-tuning step (train mode, dropout,
backward, clipping, AdamW), on 32 examples of 128 random tokens, with the model directory
weights/minilm-cls (or the directory given as the first argument). Median of 10 runs."""
import statistics, sys, time
import torch
from transformers import BertForSequenceClassification

torch.manual_seed(0)
path = sys.argv[1] if len(sys.argv) > 1 else "weights/minilm-cls"
model = BertForSequenceClassification.from_pretrained(path, attn_implementation="eager").eval()
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

opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0)

def train_step():
    model.train()
    loss = model(input_ids=ids, labels=labels).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad()
    model.eval()

for name, f in [("forward", fwd), ("forward + head_mask.grad", fwd_bwd), ("train step", train_step)]:
    f()
    ts = []
    for _ in range(10):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    med = statistics.median(ts)
    print(f"transformers {name} B{B} T{T}: median {med*1e3:.0f} ms, {B/med:.1f} examples/s (torch threads {torch.get_num_threads()})")
