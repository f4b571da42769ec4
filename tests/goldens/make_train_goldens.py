#!/usr/bin/env python3
"""Generate the fine-tuning goldens: every parameter gradient of a mean cross-entropy loss
(dropout off), and the parameters after one clipped AdamW step, for the tiny sequence- and
token-classification fixtures.

Run by hand from the repository root (CI never runs Python):

    /tmp/goldenv/bin/python tests/goldens/make_train_goldens.py

Requires torch, transformers==4.57.1, safetensors, numpy. Reads the fixtures and
tests/goldens/sentences.tsv; writes exactly:

  tests/goldens/tiny-bert-train.safetensors
  tests/goldens/tiny-bert-tok-train.safetensors
  tests/goldens/tiny-bert-tok-score.safetensors  (head importance from tests/goldens/tok.conll)

Each holds input_ids / token_type_ids / attention_mask / labels, loss, `grad.<name>` for every
parameter (the word table only at the rows the batch uses, listed in `word_rows`; the position
table only at its first T rows), and `after.<name>` for a few parameters after one AdamW step
(lr 1e-2, weight decay 0.5 except biases and LayerNorm weights, clipping at norm 0.5).
"""

import os
import sys

import numpy as np
import torch
import transformers
from safetensors.torch import save_file
from transformers import (BertForSequenceClassification, BertForTokenClassification,
                          BertTokenizerFast)

assert transformers.__version__ == "4.57.1", transformers.__version__

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLD = os.path.join(ROOT, "tests", "goldens")
FIX = os.path.join(ROOT, "tests", "fixtures")

print(f"python {sys.version.split()[0]}  torch {torch.__version__}  "
      f"transformers {transformers.__version__}  numpy {np.__version__}")
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

with open(os.path.join(GOLD, "sentences.tsv"), encoding="utf-8") as f:
    lines = f.read().split("\n")
assert lines[0] == "sentence", lines[0]
SENTENCES = [s for s in lines[1:] if s]
assert len(SENTENCES) == 6, SENTENCES

LR, WD, CLIP = 1e-2, 0.5, 0.5
AFTER = [
    "classifier.weight",
    "bert.encoder.layer.1.attention.self.key.weight",
    "bert.encoder.layer.0.output.LayerNorm.weight",
    "bert.encoder.layer.0.intermediate.dense.bias",
    "bert.embeddings.word_embeddings.weight",
]


def golden(name, cls, token_labels):
    path = os.path.join(FIX, name)
    tok = BertTokenizerFast.from_pretrained(path)
    model = cls.from_pretrained(path, attn_implementation="eager")
    model.eval()  # dropout off: the Rust side runs with dropout 0
    enc = tok(SENTENCES, padding="longest", truncation=False, return_token_type_ids=True,
              return_attention_mask=True, return_tensors="pt")
    ids, tt, am = enc["input_ids"], enc["token_type_ids"], enc["attention_mask"]
    b, t = ids.shape
    n = model.config.num_labels
    if token_labels:
        labels = torch.full((b, t), -100, dtype=torch.int64)
        for i in range(b):
            real = int(am[i].sum())
            for j in range(1, real - 1):  # [CLS] and [SEP] ignored
                if (i + j) % 4 != 3:      # and some words' later sub-tokens
                    labels[i, j] = (3 * i + j) % n
    else:
        labels = torch.tensor([(2 * i + 1) % n for i in range(b)], dtype=torch.int64)
    out = model(input_ids=ids, token_type_ids=tt, attention_mask=am)
    logits = out.logits.reshape(-1, n)
    loss = torch.nn.functional.cross_entropy(logits, labels.reshape(-1), ignore_index=-100)
    loss.backward()
    used = torch.unique(ids.reshape(-1)[am.reshape(-1) > 0])
    g = {
        "input_ids": ids.to(torch.int64), "token_type_ids": tt.to(torch.int64),
        "attention_mask": am.to(torch.int64), "labels": labels,
        "loss": loss.detach().reshape(1), "word_rows": used.to(torch.int64),
    }
    for pname, p in model.named_parameters():
        grad = p.grad.detach().clone()
        if pname.endswith("word_embeddings.weight"):
            grad = grad[used]
        if pname.endswith("position_embeddings.weight"):
            grad = grad[:t]
        g["grad." + pname] = grad
    # one clipped AdamW step, decay grouped as the HF Trainer does
    torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
    decay = [p for n_, p in model.named_parameters()
             if not (n_.endswith(".bias") or "LayerNorm" in n_)]
    no_decay = [p for n_, p in model.named_parameters()
                if n_.endswith(".bias") or "LayerNorm" in n_]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD},
                             {"params": no_decay, "weight_decay": 0.0}], lr=LR)
    opt.step()
    params = dict(model.named_parameters())
    for pname in AFTER:
        if pname in params:
            v = params[pname].detach().clone()
            if pname.endswith("word_embeddings.weight"):
                v = v[used]
            g["after." + pname] = v
    dst = os.path.join(GOLD, f"{name}-train.safetensors")
    save_file({k: v.contiguous() for k, v in sorted(g.items())}, dst)
    print(f"{dst}: loss {loss.item():.6f}, {len(g)} tensors")


golden("tiny-bert", BertForSequenceClassification, False)
golden("tiny-bert-tok", BertForTokenClassification, True)


def token_score_golden():
    """Per-example head importance (mean over sentences of |d loss_x / d xi|, loss_x summed
    over the sentence's first sub-tokens) and bertology entropy for the token classifier on
    tests/goldens/tok.conll: what `headroom score` computes from CoNLL."""
    path = os.path.join(FIX, "tiny-bert-tok")
    tok = BertTokenizerFast.from_pretrained(path)
    model = BertForTokenClassification.from_pretrained(path, attn_implementation="eager").eval()
    label2id = model.config.label2id
    sents, cur = [], []
    with open(os.path.join(GOLD, "tok.conll"), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                if cur:
                    sents.append(cur)
                cur = []
                continue
            w, t = line.split("\t")
            cur.append((w, t))
    if cur:
        sents.append(cur)
    L, H = model.config.num_hidden_layers, model.config.num_attention_heads
    imp = torch.zeros(L, H)
    ent = torch.zeros(L, H)
    tokens = 0
    for s in sents:  # one sentence per pass: per-example gradients
        enc = tok([w for w, _ in s], is_split_into_words=True, return_tensors="pt")
        labels = torch.full(enc["input_ids"].shape, -100, dtype=torch.long)
        seen = set()
        for j, wid in enumerate(enc.word_ids()):
            if wid is not None and wid not in seen:
                seen.add(wid)
                labels[0, j] = label2id[s[wid][1]]
        mask = torch.ones(L, H, requires_grad=True)
        out = model(**enc, head_mask=mask, output_attentions=True)
        n = model.config.num_labels
        loss = torch.nn.functional.cross_entropy(out.logits.reshape(-1, n), labels.reshape(-1),
                                                 ignore_index=-100, reduction="sum")
        loss.backward()
        imp += mask.grad.abs()
        for l, a in enumerate(out.attentions):
            p = a.detach()[0]
            ent[l] += (-(p * torch.log(p.clamp_min(1e-30))).sum(-1)).sum(-1)
        tokens += enc["input_ids"].shape[1]
    imp /= len(sents)
    ent /= tokens
    dst = os.path.join(GOLD, "tiny-bert-tok-score.safetensors")
    save_file({"importance_example": imp.contiguous(), "attn_entropy": ent.contiguous()}, dst)
    print(f"{dst}: {len(sents)} sentences")


token_score_golden()
