#!/usr/bin/env python3
"""Generate the head-gate gradient goldens (Michel et al. 2019 head importance).

Run by hand from the repository root (CI never runs Python), after
make_goldens.py has produced the fixtures it reads:

    /tmp/goldenv/bin/python tests/goldens/make_grad_goldens.py

Requires torch, transformers==4.57.1, safetensors, numpy. No network access.
This script only READS the existing fixtures / goldens; it writes exactly:

  tests/goldens/tiny-bert-grad.safetensors
  tests/goldens/minilm-grad.safetensors

(see tests/goldens/README.md). The few helpers shared with make_goldens.py are
copied here, because importing that script would re-run it and rewrite every
other golden file.
"""

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import load_file, save_file
from transformers import BertForSequenceClassification, BertTokenizerFast

assert transformers.__version__ == "4.57.1", transformers.__version__

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLD = os.path.join(ROOT, "tests", "goldens")
FIX = os.path.join(ROOT, "tests", "fixtures")
MINILM = os.path.join(ROOT, "weights", "all-MiniLM-L6-v2")
TINY = os.path.join(FIX, "tiny-bert")

print(f"python {sys.version.split()[0]}  torch {torch.__version__}  "
      f"transformers {transformers.__version__}  numpy {np.__version__}")

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

with open(os.path.join(GOLD, "sentences.tsv"), encoding="utf-8") as f:
    lines = f.read().split("\n")
assert lines[0] == "sentence", lines[0]
SENTENCES = [s for s in lines[1:] if s]
assert len(SENTENCES) == 6, SENTENCES

TINY_LABELS = [0, 1, 2, 2, 1, 0]
MINILM_LABELS = [0, 1, 1, 0, 1, 0]


# --------------------------------------------------------------------------
# helpers (copied from make_goldens.py where shared)
# --------------------------------------------------------------------------
def encode(tok, texts):
    enc = tok(
        texts,
        padding="longest",
        truncation=False,
        return_token_type_ids=True,
        return_attention_mask=True,
        return_tensors="pt",
    )
    ids = enc["input_ids"].to(torch.int64)
    tt = enc["token_type_ids"].to(torch.int64)
    am = enc["attention_mask"].to(torch.int64)
    # 'longest' padding really happened (no fixed padding to 128 leaked in)
    assert int(am.sum(1).max()) == ids.shape[1], (am.sum(1), ids.shape)
    return ids, tt, am


def save(path, tensors):
    for k, v in tensors.items():
        assert v.dtype in (torch.float32, torch.int64), (k, v.dtype)
    save_file({k: v.detach().contiguous() for k, v in sorted(tensors.items())}, path)


def gates_to_5d(gates):
    # [N, L, Hh] -> [L, N, Hh, 1, 1]
    return gates.permute(1, 0, 2)[:, :, :, None, None].contiguous()


def from_5d(g5):
    # [L, N, Hh, 1, 1] -> [N, L, Hh]
    return g5[:, :, :, 0, 0].permute(1, 0, 2).contiguous()


def make_grad_gates(gen, n, layers, heads):
    """Fractional gates, uniform in [0.2, 1], with a few exact zeros."""
    g = 0.2 + 0.8 * torch.rand((n, layers, heads), generator=gen, dtype=torch.float32)
    zero = torch.rand((n, layers, heads), generator=gen) < 0.1
    g[zero] = 0.0
    g[0, 0, 0] = 0.0  # at least one exact zero, deterministic position
    g[-1, -1, -1] = 0.0
    return g.contiguous()


def entropy(p):
    """-sum p log p over the last dim, with 0 log 0 = 0 (as bertology does)."""
    plogp = p * torch.log(p)
    plogp[p == 0] = 0
    return -plogp.sum(dim=-1)


def freeze(model):
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    assert model.config._attn_implementation == "eager"
    return model


def forward(model, ids, tt, am, head_mask, **kw):
    return model(input_ids=ids, token_type_ids=tt, attention_mask=am, head_mask=head_mask, **kw)


def grad_goldens(name, model, tok, labels_list, gates_seed, ref_golden):
    L, Hh = model.config.num_hidden_layers, model.config.num_attention_heads
    ids, tt, am = encode(tok, SENTENCES)
    N, T = ids.shape
    labels = torch.tensor(labels_list, dtype=torch.int64)
    assert labels.shape == (N,) and int(labels.max()) < model.config.num_labels
    lens = am.sum(1).tolist()
    print(f"[{name}] tokens per sentence: {lens}  T={T}  L={L}  Hh={Hh}")

    # the model is the one the forward goldens were made with
    ref = load_file(ref_golden)
    assert torch.equal(ref["input_ids"], ids) and torch.equal(ref["attention_mask"], am)
    with torch.no_grad():
        lg = forward(model, ids, tt, am, None).logits
    d_ref = (lg - ref["logits"]).abs().max().item()
    print(f"[{name}] max|logits - golden logits| = {d_ref:.3g}")
    assert d_ref < 1e-5, d_ref

    # ---- per example, batch of 1, unpadded, 2-D head_mask ----------------
    grad_example = torch.zeros(N, L, Hh)
    loss_example = torch.zeros(N)
    for i, s in enumerate(SENTENCES):
        ei, et, ea = encode(tok, [s])
        assert ei.shape[1] == lens[i] and torch.equal(ei[0], ids[i, : lens[i]])
        hm = torch.ones(L, Hh, requires_grad=True)
        logits = forward(model, ei, et, ea, hm).logits
        loss = F.cross_entropy(logits, labels[i : i + 1])
        loss.backward()
        grad_example[i] = hm.grad
        loss_example[i] = loss.detach()

    # ---- whole padded batch, 5-D head_mask of ones -----------------------
    hm5 = torch.ones(L, N, Hh, 1, 1, requires_grad=True)
    out = forward(model, ids, tt, am, hm5, output_attentions=True)
    loss_vec = F.cross_entropy(out.logits, labels, reduction="none")
    loss_vec.sum().backward()
    grad_batched = from_5d(hm5.grad)
    loss_vec = loss_vec.detach().contiguous()

    scale = grad_example.abs().max().item()
    d_grad = (grad_batched - grad_example).abs().max().item()
    d_loss = (loss_vec - loss_example).abs().max().item()
    print(f"[{name}] max|grad_example| = {scale:.6g}  max|grad_batched| = "
          f"{grad_batched.abs().max().item():.6g}")
    print(f"[{name}] max|grad_batched - grad_example| = {d_grad:.3g} "
          f"(rel {d_grad / scale:.3g})   max|loss batched - single| = {d_loss:.3g}")
    assert d_grad <= 1e-4 * scale, (d_grad, scale)
    assert d_loss <= 1e-5 * max(1.0, loss_vec.abs().max().item()), d_loss
    assert (grad_example != 0).all(), "a head with an exactly-zero gradient"

    # ---- attention entropy at head_mask = ones (bertology) ---------------
    qmask = am.to(torch.float32)  # [N, T], real query tokens
    ent = torch.zeros(L, Hh, dtype=torch.float64)
    for layer, att in enumerate(out.attentions):  # [N, Hh, T, T]
        assert att.shape == (N, Hh, T, T)
        e = entropy(att.detach().double())  # [N, Hh, T]
        ent[layer] = (e * qmask.double()[:, None, :]).sum(-1).sum(0)
    ent = (ent / qmask.sum().double()).float()
    assert torch.isfinite(ent).all() and (ent > 0).all()

    # ---- fractional gates (batched, 5-D) ---------------------------------
    gates = make_grad_gates(torch.Generator().manual_seed(gates_seed), N, L, Hh)
    g5 = gates_to_5d(gates).requires_grad_(True)
    logits_g = forward(model, ids, tt, am, g5).logits
    F.cross_entropy(logits_g, labels, reduction="sum").backward()
    grad_gates = from_5d(g5.grad)
    nz = int((gates == 0).sum())
    print(f"[{name}] gates: {nz} exact zeros of {gates.numel()}  "
          f"max|grad_gates| = {grad_gates.abs().max().item():.6g}  "
          f"max|grad_gates[gates==0]| = {grad_gates[gates == 0].abs().max().item():.6g}")
    assert torch.isfinite(grad_gates).all()

    # spot-check one example of the gated gradient alone, unpadded
    i = 1
    gi = gates[i].clone().requires_grad_(True)
    ei, et, ea = encode(tok, [SENTENCES[i]])
    F.cross_entropy(forward(model, ei, et, ea, gi).logits, labels[i : i + 1]).backward()
    d_gi = (gi.grad - grad_gates[i]).abs().max().item()
    assert d_gi <= 1e-4 * grad_gates.abs().max().item(), d_gi

    importance = grad_example.abs().mean(0)
    print(f"[{name}] loss = {[round(x, 4) for x in loss_vec.tolist()]}")
    print(f"[{name}] importance max {importance.max().item():.6g} min {importance.min().item():.6g}; "
          f"entropy min {ent.min().item():.4f} max {ent.max().item():.4f}")

    return {
        "input_ids": ids,
        "attention_mask": am,
        "labels": labels,
        "loss": loss_vec,
        "grad_example": grad_example.contiguous(),
        "grad_batched": grad_batched,
        "gates": gates,
        "grad_gates": grad_gates,
        "importance": importance.contiguous(),
        "entropy": ent.contiguous(),
    }


# --------------------------------------------------------------------------
# (a) tiny-bert (3 labels)
# --------------------------------------------------------------------------
tok_t = BertTokenizerFast.from_pretrained(TINY)
m_tiny = freeze(BertForSequenceClassification.from_pretrained(
    TINY, attn_implementation="eager", dtype=torch.float32))
assert m_tiny.config.num_labels == 3
t = grad_goldens("tiny-bert", m_tiny, tok_t, TINY_LABELS, 7,
                 os.path.join(GOLD, "tiny-bert.safetensors"))
save(os.path.join(GOLD, "tiny-bert-grad.safetensors"), t)

# --------------------------------------------------------------------------
# (b) MiniLM + the committed classifier head (as in make_goldens.py)
# --------------------------------------------------------------------------
torch.manual_seed(0)
m_mini, info = BertForSequenceClassification.from_pretrained(
    MINILM,
    num_labels=2,
    id2label={0: "negative", 1: "positive"},
    label2id={"negative": 0, "positive": 1},
    attn_implementation="eager",
    dtype=torch.float32,
    output_loading_info=True,
)
assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"], info["missing_keys"]
cls = load_file(os.path.join(GOLD, "minilm-classifier.safetensors"))
assert sorted(cls) == ["classifier.bias", "classifier.weight"]
with torch.no_grad():
    m_mini.classifier.weight.copy_(cls["classifier.weight"])
    m_mini.classifier.bias.copy_(cls["classifier.bias"])
m_mini = freeze(m_mini)
tok_m = BertTokenizerFast.from_pretrained(MINILM)
tm = grad_goldens("minilm", m_mini, tok_m, MINILM_LABELS, 8,
                  os.path.join(GOLD, "minilm.safetensors"))
save(os.path.join(GOLD, "minilm-grad.safetensors"), tm)

# --------------------------------------------------------------------------
# load back and list
# --------------------------------------------------------------------------
for fname in ["tiny-bert-grad", "minilm-grad"]:
    p = os.path.join(GOLD, fname + ".safetensors")
    d = load_file(p)
    print(f"{fname}.safetensors ({os.path.getsize(p)} bytes)")
    for k in sorted(d):
        print(f"    {k:16s} {str(d[k].dtype):14s} {list(d[k].shape)}")
print("done")
