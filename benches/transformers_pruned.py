#!/usr/bin/env python3
"""Same-sitting reference for `headroom bench`: transformers 4.57 (eager, float32, torch CPU)
forward of a model directory on 32 examples of 128 random tokens, (a) with head_mask gating
the pruned heads to 0 (no work saved) and (b) after prune_heads (physically smaller), at each
fraction of heads pruned per layer. The heads are chosen at random per layer; the median of
N runs (default 7). Run by hand:

    /tmp/goldenv/bin/python benches/transformers_pruned.py weights/all-MiniLM-L6-v2
"""
import json, random, statistics, sys, time

import torch
from transformers import BertModel

path = sys.argv[1] if len(sys.argv) > 1 else "weights/all-MiniLM-L6-v2"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 7
torch.manual_seed(0)
B, T = 32, 128
ids = torch.randint(1000, 21000, (B, T))
ids[:, 0], ids[:, -1] = 101, 102


def median_ms(f):
    f()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3


rows = []
for frac in [0.0, 0.25, 0.5, 0.75, 0.9]:
    model = BertModel.from_pretrained(path, attn_implementation="eager").eval()
    L, H = model.config.num_hidden_layers, model.config.num_attention_heads
    k = round(frac * H)
    rng = random.Random(0)
    pruned = {l: sorted(rng.sample(range(H), k)) for l in range(L)}
    mask = torch.ones(L, H)
    for l, hs in pruned.items():
        mask[l, hs] = 0.0
    with torch.no_grad():
        masked = median_ms(lambda: model(input_ids=ids, head_mask=mask))
        model.prune_heads({l: hs for l, hs in pruned.items() if hs})
        physical = median_ms(lambda: model(input_ids=ids))
    rows.append({"fraction": frac, "heads_kept": L * (H - k), "head_mask_ms": masked, "prune_heads_ms": physical})
    print(json.dumps(rows[-1]), flush=True)
base = rows[0]["head_mask_ms"]
for r in rows:
    r["head_mask_speedup"] = base / r["head_mask_ms"]
    r["prune_heads_speedup"] = base / r["prune_heads_ms"]
print(json.dumps({"model": path, "batch": B, "seq": T, "torch_threads": torch.get_num_threads(), "rows": rows}, indent=1))
