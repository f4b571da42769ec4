#!/usr/bin/env python3
"""Tiny random masked-LM checkpoints of each family and their goldens, and an ELECTRA
discriminator's (replaced-token detection; issue 12).

Run by hand from the repository root (CI never runs Python), after make_family_goldens.py
(RoBERTa's tokenizer is tiny-roberta's):

    /tmp/goldenv/bin/python tests/goldens/make_mlm_goldens.py

Requires torch, transformers==4.57.1, safetensors, numpy; no network.

For each family it writes tests/fixtures/tiny-<family>-mlm/ (`*ForMaskedLM`, save_pretrained,
f32; the decoder is tied to the word embeddings, so the checkpoint holds its bias only) and
tests/goldens/tiny-<family>-mlm.safetensors, for the six sentences of sentences.tsv padded to
the longest (eager attention):
  input_ids, attention_mask     the tokenised sentences
  masked_ids                    input_ids with about a quarter of the real, non-special tokens
                                replaced (80 % mask token, 10 % a random id, 10 % kept); every
                                sentence has at least one
  mlm_labels                    the original id at each chosen position, -100 elsewhere
  mlm_logits [2, T, V]          the first two sentences' prediction scores on masked_ids
  loss [N]                      each sentence's cross-entropy summed over its chosen positions
  head_mask, loss_hm            one [L, H] mask with exact zeros, and the loss under it
  gates [N, L, H], loss_gates   per-example fractional gates, and the loss under them
  grad_gates [N, L, H]          d(sum of loss_gates)/d gates
"""

import os
import shutil
import sys

import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import save_file
from transformers import (
    AlbertConfig,
    AlbertForMaskedLM,
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    DistilBertConfig,
    DistilBertForMaskedLM,
    ElectraConfig,
    ElectraForMaskedLM,
    ElectraForPreTraining,
    MPNetConfig,
    MPNetForMaskedLM,
    RobertaConfig,
    RobertaForMaskedLM,
)

assert transformers.__version__ == "4.57.1", transformers.__version__

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLD = os.path.join(ROOT, "tests", "goldens")
FIX = os.path.join(ROOT, "tests", "fixtures")

print(f"python {sys.version.split()[0]}  torch {torch.__version__}  "
      f"transformers {transformers.__version__}")
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

with open(os.path.join(GOLD, "sentences.tsv"), encoding="utf-8") as f:
    lines = f.read().split("\n")
assert lines[0] == "sentence", lines[0]
SENTENCES = [s for s in lines[1:] if s]


def randomize_biases_and_norms(model, gen):
    """Non-trivial biases and LayerNorm parameters (the init makes them 0 / 1)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm.weight" in name.lower() or "LayerNorm.weight" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))


def fractional_gates(gen, n, layers, heads):
    g = 0.2 + 0.8 * torch.rand((n, layers, heads), generator=gen)
    g[torch.rand((n, layers, heads), generator=gen) < 0.1] = 0.0
    g[0, 0, 0] = 0.0
    return g.contiguous()


def to_5d(gates):
    """[N, L, H] -> [L, N, H, 1, 1], transformers' per-example head_mask."""
    return gates.permute(1, 0, 2)[:, :, :, None, None].contiguous()


def tie_groups(model, rows):
    """ALBERT: rows of [.., L, H] equal within each layer group (transformers gates all of a
    group's applications with its first row); other families: unchanged."""
    groups = getattr(model.config, "num_hidden_groups", None)
    if not groups:
        return rows
    L = rows.shape[-2]
    first = torch.arange(L) // (L // groups) * (L // groups)
    return rows[..., first, :].contiguous()


def corrupt(tok, ids, am, gen):
    """A quarter of the real non-special tokens chosen, 80/10/10 mask/random/keep."""
    special = torch.tensor([[t in tok.all_special_ids for t in row] for row in ids.tolist()])
    eligible = am.bool() & ~special
    chosen = (torch.rand(ids.shape, generator=gen) < 0.25) & eligible
    for n in range(ids.shape[0]):  # at least one per sentence
        if not chosen[n].any():
            chosen[n, eligible[n].nonzero()[0, 0]] = True
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    u = torch.rand(ids.shape, generator=gen)
    masked = ids.clone()
    masked[chosen & (u < 0.8)] = tok.mask_token_id
    rand = chosen & (u >= 0.8) & (u < 0.9)
    masked[rand] = torch.randint(len(tok), ids.shape, generator=gen)[rand]
    return masked, labels


def summed_loss(logits, labels):
    v = logits.shape[-1]
    per = F.cross_entropy(logits.reshape(-1, v), labels.reshape(-1), reduction="none",
                          ignore_index=-100)
    return per.reshape(labels.shape).sum(1)


def mlm_goldens(name, model):
    fix = os.path.join(FIX, f"tiny-{name}-mlm")
    L, H = model.config.num_hidden_layers, model.config.num_attention_heads
    tok = AutoTokenizer.from_pretrained(fix)
    enc = tok(SENTENCES, padding="longest", return_tensors="pt")
    ids, am = enc["input_ids"], enc["attention_mask"]
    gen = torch.Generator().manual_seed(21)
    masked, labels = corrupt(tok, ids, am, gen)
    t = {"input_ids": ids, "attention_mask": am, "masked_ids": masked, "mlm_labels": labels}
    model.eval()
    kw = {"input_ids": masked, "attention_mask": am}
    with torch.no_grad():
        logits = model(**kw).logits
        t["mlm_logits"] = logits[:2]
        t["loss"] = summed_loss(logits, labels)
        hm = (torch.rand((L, H), generator=gen) > 0.3).float()
        hm[0, 0], hm[-1, -1] = 0.0, 1.0
        hm = tie_groups(model, hm)
        t["head_mask"] = hm
        t["loss_hm"] = summed_loss(model(**kw, head_mask=hm).logits, labels)
    assert (t["loss_hm"] - t["loss"]).abs().max() > 1e-3, "the mask changes the loss"
    gates = tie_groups(model, fractional_gates(gen, ids.shape[0], L, H))
    t["gates"] = gates
    g5 = to_5d(gates).requires_grad_(True)
    loss = summed_loss(model(**kw, head_mask=g5).logits, labels)
    loss.sum().backward()
    t["loss_gates"] = loss.detach()
    t["grad_gates"] = g5.grad[:, :, :, 0, 0].permute(1, 0, 2).contiguous()
    t = {k: (v.float() if v.is_floating_point() else v.to(torch.int64)).contiguous()
         for k, v in t.items()}
    path = os.path.join(GOLD, f"tiny-{name}-mlm.safetensors")
    save_file(dict(sorted(t.items())), path)
    print(f"[{name}-mlm] {path}: {int((labels >= 0).sum())} chosen tokens, "
          f"loss {t['loss'].tolist()}, max|grad_gates| {t['grad_gates'].abs().max():.4g}")


def save_fixture(name, model, tokenizer_from):
    out = os.path.join(FIX, f"tiny-{name}-mlm")
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(os.path.join(FIX, tokenizer_from)).save_pretrained(out)
    print(f"[{name}-mlm] {out}")


def build(name, config, model_class, tokenizer_from, seed):
    torch.manual_seed(seed)
    model = model_class(config)
    randomize_biases_and_norms(model, torch.Generator().manual_seed(seed + 1))
    assert model.config._attn_implementation == "eager"
    save_fixture(name, model, tokenizer_from)
    mlm_goldens(name, model)


def wordpiece_vocab():
    return AutoTokenizer.from_pretrained(os.path.join(FIX, "tiny-bert")).vocab_size


def bert():
    cfg = BertConfig(vocab_size=wordpiece_vocab(), hidden_size=42, num_attention_heads=3,
                     num_hidden_layers=2, intermediate_size=60, max_position_embeddings=64,
                     initializer_range=0.2, attn_implementation="eager")
    build("bert", cfg, BertForMaskedLM, "tiny-bert", 30)


def roberta():
    tok = AutoTokenizer.from_pretrained(os.path.join(FIX, "tiny-roberta"))
    cfg = RobertaConfig(vocab_size=len(tok), hidden_size=42, num_attention_heads=3,
                        num_hidden_layers=2, intermediate_size=60, max_position_embeddings=130,
                        type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0,
                        eos_token_id=2, initializer_range=0.2, attn_implementation="eager")
    build("roberta", cfg, RobertaForMaskedLM, "tiny-roberta", 32)


def distilbert():
    cfg = DistilBertConfig(vocab_size=wordpiece_vocab(), dim=42, n_heads=3, n_layers=2,
                           hidden_dim=60, max_position_embeddings=64, activation="gelu",
                           initializer_range=0.2, attn_implementation="eager")
    build("distilbert", cfg, DistilBertForMaskedLM, "tiny-bert", 34)


def electra():
    # the generator: embeddings 30 wide, hidden 42; its prediction head maps back to 30
    cfg = ElectraConfig(vocab_size=wordpiece_vocab(), embedding_size=30, hidden_size=42,
                        num_attention_heads=3, num_hidden_layers=2, intermediate_size=60,
                        max_position_embeddings=64, initializer_range=0.2,
                        attn_implementation="eager")
    build("electra", cfg, ElectraForMaskedLM, "tiny-bert", 36)


def albert():
    # two groups over four layers, embeddings 30 wide, the tanh GELU in the layers and the head
    cfg = AlbertConfig(vocab_size=wordpiece_vocab(), embedding_size=30, hidden_size=42,
                       num_attention_heads=3, num_hidden_layers=4, num_hidden_groups=2,
                       intermediate_size=60, max_position_embeddings=64, hidden_act="gelu_new",
                       initializer_range=0.2, attn_implementation="eager")
    build("albert", cfg, AlbertForMaskedLM, "tiny-bert", 38)


def mpnet():
    tok = AutoTokenizer.from_pretrained(os.path.join(FIX, "tiny-roberta"))
    cfg = MPNetConfig(vocab_size=len(tok), hidden_size=42, num_attention_heads=3,
                      num_hidden_layers=2, intermediate_size=60, max_position_embeddings=130,
                      layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                      initializer_range=0.2, attn_implementation="eager")
    build("mpnet", cfg, MPNetForMaskedLM, "tiny-roberta", 40)


def replace_tokens(tok, ids, am, gen):
    """A quarter of the real non-special tokens replaced by a random other id (at least one per
    sentence); labels 1 there, 0 at the other real tokens, -100 at padding."""
    special = torch.tensor([[t in tok.all_special_ids for t in row] for row in ids.tolist()])
    eligible = am.bool() & ~special
    chosen = (torch.rand(ids.shape, generator=gen) < 0.25) & eligible
    for n in range(ids.shape[0]):
        if not chosen[n].any():
            chosen[n, eligible[n].nonzero()[0, 0]] = True
    shift = torch.randint(1, len(tok), ids.shape, generator=gen)
    replaced = torch.where(chosen, (ids + shift) % len(tok), ids)
    labels = torch.where(am.bool(), chosen.long(), torch.full_like(ids, -100))
    return replaced, labels


def summed_bce(logits, labels):
    per = F.binary_cross_entropy_with_logits(logits, labels.clamp(min=0).float(),
                                             reduction="none")
    return (per * (labels >= 0)).sum(1)


def electra_discriminator():
    """tests/fixtures/tiny-electra-rtd/ (ElectraForPreTraining: the discriminator head, one
    logit per token) and its golden: rtd_ids (replaced tokens), rtd_labels, rtd_logits [N, T],
    loss [N] (each sentence's binary cross-entropy summed over its real tokens, which
    transformers averages), head_mask/loss_hm, gates/loss_gates/grad_gates."""
    name = "electra-rtd"
    cfg = ElectraConfig(vocab_size=wordpiece_vocab(), embedding_size=30, hidden_size=42,
                        num_attention_heads=3, num_hidden_layers=2, intermediate_size=60,
                        max_position_embeddings=64, initializer_range=0.2,
                        attn_implementation="eager")
    torch.manual_seed(42)
    model = ElectraForPreTraining(cfg)
    randomize_biases_and_norms(model, torch.Generator().manual_seed(43))
    out = os.path.join(FIX, f"tiny-{name}")
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(os.path.join(FIX, "tiny-bert")).save_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    L, H = cfg.num_hidden_layers, cfg.num_attention_heads
    enc = tok(SENTENCES, padding="longest", return_tensors="pt")
    ids, am = enc["input_ids"], enc["attention_mask"]
    gen = torch.Generator().manual_seed(44)
    replaced, labels = replace_tokens(tok, ids, am, gen)
    t = {"input_ids": ids, "attention_mask": am, "rtd_ids": replaced, "rtd_labels": labels}
    model.eval()
    kw = {"input_ids": replaced, "attention_mask": am}
    with torch.no_grad():
        logits = model(**kw).logits
        t["rtd_logits"] = logits
        t["loss"] = summed_bce(logits, labels)
        mean = model(**kw, labels=labels.clamp(min=0)).loss
        assert abs(mean - t["loss"].sum() / (labels >= 0).sum()) < 1e-5, "transformers' mean"
        hm = (torch.rand((L, H), generator=gen) > 0.3).float()
        hm[0, 0], hm[-1, -1] = 0.0, 1.0
        t["head_mask"] = hm
        t["loss_hm"] = summed_bce(model(**kw, head_mask=hm).logits, labels)
    gates = fractional_gates(gen, ids.shape[0], L, H)
    t["gates"] = gates
    g5 = to_5d(gates).requires_grad_(True)
    loss = summed_bce(model(**kw, head_mask=g5).logits, labels)
    loss.sum().backward()
    t["loss_gates"] = loss.detach()
    t["grad_gates"] = g5.grad[:, :, :, 0, 0].permute(1, 0, 2).contiguous()
    t = {k: (v.float() if v.is_floating_point() else v.to(torch.int64)).contiguous()
         for k, v in t.items()}
    path = os.path.join(GOLD, f"tiny-{name}.safetensors")
    save_file(dict(sorted(t.items())), path)
    print(f"[{name}] {out}; {path}: {int((labels == 1).sum())} replaced of "
          f"{int((labels >= 0).sum())}, loss {t['loss'].tolist()}")


if __name__ == "__main__":
    bert()
    roberta()
    distilbert()
    electra()
    albert()
    mpnet()
    electra_discriminator()
