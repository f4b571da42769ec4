#!/usr/bin/env python3
"""Same-machine reference for `headroom forward`: transformers' BertModel forward (eager
attention, float32, torch CPU threads = all cores) over a sentence TSV, batch 32 sorted by
length like headroom, pooled output only.
Usage: python benches/transformers_forward.py MODEL_DIR DATA.tsv [HEAD_MASK.json]"""
import csv, json, sys, time
import torch
from transformers import AutoTokenizer, BertModel

model_dir, data = sys.argv[1], sys.argv[2]
mask = torch.tensor(json.load(open(sys.argv[3]))) if len(sys.argv) > 3 else None
with open(data, newline="") as f:
    rows = [r["sentence"] for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]
tok = AutoTokenizer.from_pretrained(model_dir)
model = BertModel.from_pretrained(model_dir, attn_implementation="eager").eval()
enc = [tok(s, truncation=True, max_length=512)["input_ids"] for s in rows]
order = sorted(range(len(enc)), key=lambda i: -len(enc[i]))
print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {len(rows)} examples, "
      f"{sum(map(len, enc))} tokens")
with torch.no_grad():
    t0 = time.perf_counter()
    for s in range(0, len(order), 32):
        idx = order[s:s + 32]
        T = max(len(enc[i]) for i in idx)
        ids = torch.zeros(len(idx), T, dtype=torch.long)
        am = torch.zeros(len(idx), T, dtype=torch.long)
        for r, i in enumerate(idx):
            ids[r, :len(enc[i])] = torch.tensor(enc[i])
            am[r, :len(enc[i])] = 1
        model(input_ids=ids, attention_mask=am, head_mask=mask)
    dt = time.perf_counter() - t0
print(f"transformers forward: {dt:.2f} s, {sum(map(len, enc)) / dt:.0f} tokens/s")
