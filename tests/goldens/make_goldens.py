#!/usr/bin/env python3
"""Generate the golden files and tiny fixture models used by the Rust tests.

Run by hand from the repository root (CI never runs Python):

    /tmp/goldenv/bin/python tests/goldens/make_goldens.py

Requires torch, transformers==4.57.1, safetensors, numpy. No network access is
needed: every model / tokenizer is loaded from a local path.

Outputs (see tests/goldens/README.md for the full description):
  tests/goldens/sentences.tsv, tests/goldens/pairs.tsv
  tests/fixtures/tiny-bert/        BertForSequenceClassification, f32
  tests/fixtures/tiny-bert-f16/    same weights cast to float16
  tests/fixtures/tiny-bert-tok/    BertForTokenClassification, f32
  tests/goldens/tiny-bert.safetensors
  tests/goldens/tiny-bert-f16.safetensors
  tests/goldens/tiny-bert-tok.safetensors
  tests/goldens/minilm.safetensors
  tests/goldens/minilm-classifier.safetensors
"""

import os
import shutil
import sys
import tempfile

import numpy as np
import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertTokenizerFast,
)

assert transformers.__version__ == "4.57.1", transformers.__version__

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLD = os.path.join(ROOT, "tests", "goldens")
FIX = os.path.join(ROOT, "tests", "fixtures")
MINILM = os.path.join(ROOT, "weights", "all-MiniLM-L6-v2")

print(f"python {sys.version.split()[0]}  torch {torch.__version__}  "
      f"transformers {transformers.__version__}  numpy {np.__version__}")

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
torch.set_grad_enabled(False)

# --------------------------------------------------------------------------
# 1. Input text
# --------------------------------------------------------------------------
SENTENCES = [
    "Hello",
    "The café on 5th Avenue opened at 7:30 AM, serving $4.50 espresso.",
    "Unbelievably, the tokenizer splits uncommon words!",
    "I didn't like it.",
    # 46 words, but <= 62 word pieces even with the 3000-entry tiny vocab
    # (tiny-bert has max_position_embeddings=64).
    "In 2023 the new research team from the city spent more than ten months "
    "working on their language model, and they found that almost a third of "
    "the heads could be taken out with very little change in what the model "
    "would say about each word.",
    "What a GREAT movie — truly the best of 2024?!",
]
PAIRS = [
    ("The weather was fine.", "How long will it take to get there by train?"),
    ("Hello", "He said it was the best film of the year, but I did not agree at all."),
    ("The café on 5th Avenue opened at 7:30 AM, serving $4.50 espresso.", "I didn't like it."),
]

os.makedirs(GOLD, exist_ok=True)
os.makedirs(FIX, exist_ok=True)
for s in SENTENCES + [x for p in PAIRS for x in p]:
    assert "\t" not in s and "\n" not in s and '"' not in s
with open(os.path.join(GOLD, "sentences.tsv"), "w", encoding="utf-8", newline="\n") as f:
    f.write("sentence\n")
    for s in SENTENCES:
        f.write(s + "\n")
with open(os.path.join(GOLD, "pairs.tsv"), "w", encoding="utf-8", newline="\n") as f:
    f.write("sentence\tsentence2\n")
    for a, b in PAIRS:
        f.write(f"{a}\t{b}\n")


def encode(tok, texts, texts2=None):
    enc = tok(
        texts,
        texts2,
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


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def randomize_biases_and_ln(model, gen):
    """Give every bias and LayerNorm param a non-trivial random value."""
    for name, p in model.named_parameters():
        if "LayerNorm.weight" in name:
            p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
        elif name.endswith(".bias"):
            p.copy_(0.1 * torch.randn(p.shape, generator=gen))


def run(model, ids, tt, am, head_mask=None):
    """Returns (logits, pooled or None, last_hidden_state), all float32."""
    out = model(input_ids=ids, token_type_ids=tt, attention_mask=am, head_mask=head_mask)
    base = model.bert(input_ids=ids, token_type_ids=tt, attention_mask=am, head_mask=head_mask)
    pooled = base.pooler_output
    return (
        out.logits.float().contiguous(),
        None if pooled is None else pooled.float().contiguous(),
        base.last_hidden_state.float().contiguous(),
    )


def make_gates(gen, n, layers, heads):
    g = torch.rand((n, layers, heads), generator=gen, dtype=torch.float32)
    zero = torch.rand((n, layers, heads), generator=gen) < 0.15
    g[zero] = 0.0
    g[0, 0, 0] = 0.0  # at least one exact zero, deterministic position
    g[-1, -1, -1] = 1.0
    return g.contiguous()


def gates_to_5d(gates):
    # [N, L, Hh] -> [L, N, Hh, 1, 1]
    return gates.permute(1, 0, 2)[:, :, :, None, None].contiguous()


def golden_outputs(model, ids, tt, am, head_mask, gates):
    L, Hh = model.config.num_hidden_layers, model.config.num_attention_heads
    assert head_mask.shape == (L, Hh)
    assert gates.shape == (ids.shape[0], L, Hh)
    t = {"input_ids": ids, "token_type_ids": tt, "attention_mask": am}

    logits, pooled, lhs = run(model, ids, tt, am)
    t["logits"], t["last_hidden_state"] = logits, lhs

    logits_hm, pooled_hm, lhs_hm = run(model, ids, tt, am, head_mask=head_mask)
    t["head_mask"] = head_mask.float().contiguous()
    t["logits_hm"], t["last_hidden_state_hm"] = logits_hm, lhs_hm

    # the 5-D route ([L, N, Hh, 1, 1]) must equal the 2-D route exactly
    hm5 = head_mask[:, None, :, None, None].expand(L, ids.shape[0], Hh, 1, 1).contiguous()
    l5, p5, h5 = run(model, ids, tt, am, head_mask=hm5)
    assert torch.equal(l5, logits_hm) and torch.equal(h5, lhs_hm), "5-D head_mask differs from 2-D"
    if pooled is not None:
        assert torch.equal(p5, pooled_hm)

    logits_g, pooled_g, lhs_g = run(model, ids, tt, am, head_mask=gates_to_5d(gates))
    t["gates"] = gates.float().contiguous()
    t["logits_gates"], t["last_hidden_state_gates"] = logits_g, lhs_g

    # per-example gates really are per-example: row i with gates[i] broadcast to
    # the whole batch gives the same row i.
    i = 1
    gi = gates[i][:, None, :, None, None]  # [L,1,Hh,1,1]
    li, _, hi = run(model, ids, tt, am, head_mask=gi)
    assert torch.allclose(li[i], logits_g[i], atol=1e-5) and torch.allclose(hi[i], lhs_g[i], atol=1e-5)

    if pooled is not None:
        t["pooled"], t["pooled_hm"], t["pooled_gates"] = pooled, pooled_hm, pooled_g
    return t


def report(name, t):
    lg, lh, lgt = t["logits"], t["logits_hm"], t["logits_gates"]
    d_hm = (lh - lg).abs().max().item()
    d_g = (lgt - lg).abs().max().item()
    print(f"[{name}] max|logits_hm - logits| = {d_hm:.6g}   max|logits_gates - logits| = {d_g:.6g}")
    assert d_hm > 0 and d_g > 0
    print(f"[{name}] argmax logits       : {lg.argmax(-1).tolist()}")
    print(f"[{name}] argmax logits_hm    : {lh.argmax(-1).tolist()}")
    print(f"[{name}] argmax logits_gates : {lgt.argmax(-1).tolist()}")


def save(path, tensors):
    for k, v in tensors.items():
        assert v.dtype in (torch.float32, torch.int64), (k, v.dtype)
    save_file({k: v.contiguous() for k, v in sorted(tensors.items())}, path)


# --------------------------------------------------------------------------
# 2. Tiny fixture models
# --------------------------------------------------------------------------
tmpdir = tempfile.mkdtemp()
vocab_path = os.path.join(tmpdir, "vocab.txt")
with open(os.path.join(MINILM, "vocab.txt"), encoding="utf-8") as f:
    vocab_lines = f.readlines()[:3000]
with open(vocab_path, "w", encoding="utf-8", newline="\n") as f:
    f.writelines(vocab_lines)
tiny_tok = BertTokenizerFast(vocab_file=vocab_path, do_lower_case=True, model_max_length=64)
V = len(tiny_tok)
assert V == 3000, V


def tiny_config(num_labels, id2label):
    cfg = BertConfig(
        vocab_size=V,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=64,
        type_vocab_size=2,
        num_labels=num_labels,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        initializer_range=0.2,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        pad_token_id=0,
    )
    cfg._attn_implementation = "eager"
    return cfg


def save_fixture(model, tok, folder):
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    for f in os.listdir(folder):
        os.chmod(os.path.join(folder, f), 0o644)
    assert os.path.exists(os.path.join(folder, "tokenizer.json"))
    assert os.path.exists(os.path.join(folder, "model.safetensors"))


def load_eager(cls, folder, **kw):
    m = cls.from_pretrained(folder, attn_implementation="eager", dtype=torch.float32, **kw)
    m.eval()
    assert m.config._attn_implementation == "eager"
    return m


# seq-cls tiny model
torch.manual_seed(1234)
gen = torch.Generator().manual_seed(1234)
seq_model = BertForSequenceClassification(tiny_config(3, {0: "neg", 1: "neu", 2: "pos"}))
randomize_biases_and_ln(seq_model, gen)
seq_model.eval()
TINY = os.path.join(FIX, "tiny-bert")
save_fixture(seq_model, tiny_tok, TINY)

# f16 copy of the same weights
TINY16 = os.path.join(FIX, "tiny-bert-f16")
save_fixture(seq_model.half(), tiny_tok, TINY16)
seq_model.float()

# token-cls tiny model (own init)
torch.manual_seed(4321)
gen_tok = torch.Generator().manual_seed(4321)
tok_labels = {0: "B-PER", 1: "I-PER", 2: "B-LOC", 3: "I-LOC", 4: "O"}
tokcls_model = BertForTokenClassification(tiny_config(5, tok_labels))
randomize_biases_and_ln(tokcls_model, gen_tok)
TINYTOK = os.path.join(FIX, "tiny-bert-tok")
save_fixture(tokcls_model, tiny_tok, TINYTOK)

# reload everything from disk, as the Rust side will
tok_t = BertTokenizerFast.from_pretrained(TINY)
assert len(tok_t) == V
m_tiny = load_eager(BertForSequenceClassification, TINY)
m_tiny16 = load_eager(BertForSequenceClassification, TINY16)
m_tok = load_eager(BertForTokenClassification, TINYTOK)
sd32 = m_tiny.state_dict()
for k, v in m_tiny16.state_dict().items():
    assert v.dtype == torch.float32
    assert torch.equal(v, sd32[k].half().float()), k
f16_raw = load_file(os.path.join(TINY16, "model.safetensors"))
assert all(v.dtype == torch.float16 for v in f16_raw.values())
# biases really are non-trivial in the saved file
raw32 = load_file(os.path.join(TINY, "model.safetensors"))
for k, v in raw32.items():
    if k.endswith(".bias"):
        assert v.abs().min() > 0 and v.abs().max() > 0.05, k

# --------------------------------------------------------------------------
# 3. Tiny goldens
# --------------------------------------------------------------------------
ids, tt, am = encode(tok_t, SENTENCES)
assert ids.shape[1] <= 64, ids.shape
print(f"tiny tokens per sentence: {am.sum(1).tolist()}  T={ids.shape[1]}")
N = ids.shape[0]

tiny_hm = torch.tensor([[1.0, 0.0], [0.5, 1.0]])
gates_gen = torch.Generator().manual_seed(99)
tiny_gates = make_gates(gates_gen, N, 2, 2)

t = golden_outputs(m_tiny, ids, tt, am, tiny_hm, tiny_gates)
pids, ptt, pam = encode(tok_t, [a for a, _ in PAIRS], [b for _, b in PAIRS])
assert pids.shape[1] <= 64
assert int(ptt.max()) == 1
plogits, _, _ = run(m_tiny, pids, ptt, pam)
t.update(pairs_input_ids=pids, pairs_token_type_ids=ptt, pairs_attention_mask=pam, pairs_logits=plogits)
report("tiny-bert", t)
print(f"[tiny-bert] argmax pairs_logits: {plogits.argmax(-1).tolist()}")
save(os.path.join(GOLD, "tiny-bert.safetensors"), t)

logits16, pooled16, lhs16 = run(m_tiny16, ids, tt, am)
t16 = {
    "input_ids": ids, "token_type_ids": tt, "attention_mask": am,
    "logits": logits16, "pooled": pooled16, "last_hidden_state": lhs16,
}
print(f"[tiny-bert-f16] max|logits16 - logits32| = {(logits16 - t['logits']).abs().max().item():.6g}")
print(f"[tiny-bert-f16] argmax logits: {logits16.argmax(-1).tolist()}")
save(os.path.join(GOLD, "tiny-bert-f16.safetensors"), t16)

tok_gates = make_gates(gates_gen, N, 2, 2)
ttok = golden_outputs(m_tok, ids, tt, am, tiny_hm, tok_gates)
assert "pooled" not in ttok and ttok["logits"].shape == (N, ids.shape[1], 5)
report("tiny-bert-tok", ttok)
save(os.path.join(GOLD, "tiny-bert-tok.safetensors"), ttok)

# --------------------------------------------------------------------------
# 4. MiniLM (default model) with a seeded classifier head
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
m_mini.eval()
print(f"[minilm] loading info: { {k: v for k, v in info.items() if v} }")
assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"], info["missing_keys"]
assert not info.get("mismatched_keys"), info["mismatched_keys"]
assert not info.get("error_msgs"), info["error_msgs"]
ckpt = load_file(os.path.join(MINILM, "model.safetensors"))


def ckpt_key(k):
    if k in ckpt:
        return k
    k2 = k[len("bert."):] if k.startswith("bert.") else k
    return k2 if k2 in ckpt else None


for k, v in m_mini.state_dict().items():
    if k.startswith("classifier."):
        continue
    ck = ckpt_key(k)
    assert ck is not None, f"{k} not in checkpoint (would be newly initialised)"
    assert torch.equal(v, ckpt[ck].float()), k
assert ckpt_key("bert.pooler.dense.weight") is not None

torch.manual_seed(0)
cls_w = (torch.randn(2, 384) * 0.5).float().contiguous()
cls_b = (torch.randn(2) * 0.1).float().contiguous()
m_mini.classifier.weight.copy_(cls_w)
m_mini.classifier.bias.copy_(cls_b)
save(os.path.join(GOLD, "minilm-classifier.safetensors"), {"classifier.weight": cls_w, "classifier.bias": cls_b})

tok_m = BertTokenizerFast.from_pretrained(MINILM)
mids, mtt, mam = encode(tok_m, SENTENCES)
print(f"minilm tokens per sentence: {mam.sum(1).tolist()}  T={mids.shape[1]}")

L, Hh = 6, 12
mini_hm = torch.ones(L, Hh)
mini_hm[2, :] = 0.0
mini_hm[2, 7] = 1.0            # layer 2: every head but one pruned
mini_hm[0, [1, 5, 9]] = 0.0
mini_hm[1, [0, 4, 8, 11]] = 0.0
mini_hm[3, [2, 3, 10]] = 0.0
mini_hm[4, [6]] = 0.0
mini_hm[5, [0, 11]] = 0.0
mini_hm[4, 3] = 0.5
n0 = int((mini_hm == 0).sum())
print(f"[minilm] head_mask zeros: {n0}/{L * Hh}")
mini_gates = make_gates(gates_gen, mids.shape[0], L, Hh)

tm = golden_outputs(m_mini, mids, mtt, mam, mini_hm, mini_gates)
report("minilm", tm)
save(os.path.join(GOLD, "minilm.safetensors"), tm)

shutil.rmtree(tmpdir)

# --------------------------------------------------------------------------
# 5. Load everything back and list it
# --------------------------------------------------------------------------
for fname in ["tiny-bert", "tiny-bert-f16", "tiny-bert-tok", "minilm", "minilm-classifier"]:
    p = os.path.join(GOLD, fname + ".safetensors")
    d = load_file(p)
    print(f"{fname}.safetensors ({os.path.getsize(p)} bytes)")
    for k in sorted(d):
        print(f"    {k:28s} {str(d[k].dtype):14s} {list(d[k].shape)}")
for folder in [TINY, TINY16, TINYTOK]:
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    print(f"{os.path.relpath(folder, ROOT)}: {sorted(os.listdir(folder))} ({size} bytes)")
assert sum(os.path.getsize(os.path.join(TINY, f)) for f in os.listdir(TINY)) < 1.5e6
print("done")
