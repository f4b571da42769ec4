#!/usr/bin/env python3
"""Goldens of the in-batch contrastive objective (issue 14): sentence-transformers'
MultipleNegativesRankingLoss, written out in PyTorch over transformers 4.57's encoder.

Run by hand from the repository root (CI never runs Python):

    /root/tvenv/bin/python tests/goldens/make_contrastive_goldens.py

Requires torch, transformers==4.57.1, safetensors; no network. For tiny-bert
(tests/fixtures/tiny-bert) and the default model (weights/all-MiniLM-L6-v2, from
weights/fetch.sh), over the three pairs of pairs.tsv (eager attention), it writes
tests/goldens/<name>-contrastive.safetensors:
  first_ids, first_mask, second_ids, second_mask   each side tokenised alone, padded together
  gates [2B, L, H]          per-sequence fractional gates (the first sentences' rows, then the
                            second ones'), one of them exactly 0
  loss_rows [B]             cross-entropy of each first sentence towards its partner over
                            20 x cosine with every second sentence (mean pooling, L2
                            normalisation), under the gates
  loss_cols [B]             the same for each second sentence over the first ones
  grad_gates [2B, L, H]     d(sum of loss_rows)/d gates
  grad_gates_sym [2B, L, H] d((sum of loss_rows + sum of loss_cols) / 2)/d gates
"""

import csv
import os
import sys

import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import save_file
from transformers import AutoModel, AutoTokenizer

assert transformers.__version__ == "4.57.1", transformers.__version__

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLD = os.path.join(ROOT, "tests", "goldens")
SCALE = 20.0
print(f"python {sys.version.split()[0]}  torch {torch.__version__}  "
      f"transformers {transformers.__version__}")


def read_pairs():
    with open(os.path.join(GOLD, "pairs.tsv"), newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["sentence"] for r in rows], [r["sentence2"] for r in rows]


def golden(name, model_dir):
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    first, second = read_pairs()
    b = len(first)
    a_enc = tok(first, padding="longest", return_tensors="pt")
    b_enc = tok(second, padding="longest", return_tensors="pt")
    c = model.config
    g = torch.Generator().manual_seed(11)
    gates = 0.3 + 0.7 * torch.rand(2 * b, c.num_hidden_layers, c.num_attention_heads, generator=g)
    gates[1, 0, 1] = 0.0

    def unit(enc, gate_rows):
        # per-example head_mask: [N, L, H] -> [L, N, H, 1, 1]
        hm = gate_rows.permute(1, 0, 2)[:, :, :, None, None]
        states = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                       head_mask=hm).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        return F.normalize((states * m).sum(1) / m.sum(1).clamp(min=1e-9), p=2, dim=1)

    out = {
        "first_ids": a_enc["input_ids"], "first_mask": a_enc["attention_mask"],
        "second_ids": b_enc["input_ids"], "second_mask": b_enc["attention_mask"],
        "gates": gates.clone(),
    }
    target = torch.arange(b)
    for key, symmetric in [("grad_gates", False), ("grad_gates_sym", True)]:
        gm = gates.clone().requires_grad_(True)
        s = SCALE * unit(a_enc, gm[:b]) @ unit(b_enc, gm[b:]).T
        rows = F.cross_entropy(s, target, reduction="none")
        cols = F.cross_entropy(s.T, target, reduction="none")
        loss = 0.5 * (rows.sum() + cols.sum()) if symmetric else rows.sum()
        loss.backward()
        out[key] = gm.grad.detach().clone()
        out["loss_rows"], out["loss_cols"] = rows.detach(), cols.detach()
    path = os.path.join(GOLD, f"{name}-contrastive.safetensors")
    save_file({k: v.contiguous() for k, v in out.items()}, path)
    print(f"[{name}] {path}: loss_rows {out['loss_rows'].tolist()}, "
          f"|grad| max {out['grad_gates'].abs().max():.3g}")


golden("tiny-bert", os.path.join(ROOT, "tests", "fixtures", "tiny-bert"))
golden("minilm", os.path.join(ROOT, "weights", "all-MiniLM-L6-v2"))
