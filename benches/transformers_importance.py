#!/usr/bin/env python3
"""Same-machine reference for `headroom score`: per-example head-mask gradients with
transformers 4.57 (eager attention, float32, torch CPU), one forward + backward per batch of
32 sorted by length with a 5-D head mask [L,B,H,1,1], as headroom does.
Usage: python benches/transformers_importance.py MODEL_DIR DATA.tsv [N]"""
import csv, sys, time
import torch
from transformers import AutoTokenizer, BertForSequenceClassification

model_dir, data = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else None
with open(data, newline="") as f:
    rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[:n]
tok = AutoTokenizer.from_pretrained(model_dir)
model = BertForSequenceClassification.from_pretrained(model_dir, attn_implementation="eager").eval()
L, H = model.config.num_hidden_layers, model.config.num_attention_heads
enc = [tok(r["sentence"], truncation=True, max_length=512)["input_ids"] for r in rows]
labels = [int(r["label"]) for r in rows]
order = sorted(range(len(enc)), key=lambda i: -len(enc[i]))
imp = torch.zeros(L, H)
t0 = time.perf_counter()
for s in range(0, len(order), 32):
    idx = order[s:s + 32]
    T = max(len(enc[i]) for i in idx)
    ids = torch.zeros(len(idx), T, dtype=torch.long)
    am = torch.zeros(len(idx), T, dtype=torch.long)
    for r, i in enumerate(idx):
        ids[r, :len(enc[i])] = torch.tensor(enc[i])
        am[r, :len(enc[i])] = 1
    mask = torch.ones(L, len(idx), H, 1, 1, requires_grad=True)
    logits = model(input_ids=ids, attention_mask=am, head_mask=mask).logits
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([labels[i] for i in idx]), reduction="sum")
    loss.backward()
    imp += mask.grad[..., 0, 0].abs().sum(1)
dt = time.perf_counter() - t0
print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {len(enc)} examples, {sum(map(len, enc))} tokens")
print(f"transformers head_mask.grad: {dt:.2f} s, {len(enc) / dt:.1f} examples/s")
print("importance (first layer):", (imp / len(enc))[0, :6].tolist())
