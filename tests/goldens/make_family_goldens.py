#!/usr/bin/env python3
"""Tiny random checkpoints of the model families beside BERT, and their goldens (issue 12).

Run by hand from the repository root (CI never runs Python), after make_goldens.py:

    /tmp/goldenv/bin/python tests/goldens/make_family_goldens.py
    /tmp/goldenv/bin/python tests/goldens/make_family_goldens.py reload FAMILY DIR

The second form checks a checkpoint that `headroom export` pruned with the golden's head_mask
(`headroom export --model tests/fixtures/tiny-FAMILY --mask M --out DIR`, M the mask as JSON):
transformers loads it (applying its `pruned_heads`) and its logits must equal the golden's
masked logits. transformers cannot run a pruned MPNet, so for `mpnet` its attention is patched
to add only the kept heads' rows of the relative position bias (`keep_kept_heads_bias`).

Requires torch, transformers==4.57.1, safetensors, numpy. No network access: the tokenizer is
tiny-bert's WordPiece (tests/fixtures/tiny-bert), which DistilBERT shares.

For each family it writes tests/fixtures/tiny-<family>/ (save_pretrained, f32, with
deliberately awkward shapes: 3 heads of 14 dimensions) and tests/goldens/tiny-<family>.safetensors
holding, for the six sentences of sentences.tsv padded to the longest (eager attention, as
the other families ignore head_mask under SDPA):
  input_ids, attention_mask, labels
  logits, last_hidden_state                     every gate at 1
  head_mask, logits_hm, last_hidden_state_hm    one [L, H] mask with exact zeros
  gates, logits_gates                            per-example fractional gates [N, L, H]
  loss [N], grad_gates [N, L, H]                 per-example cross-entropy and d(sum loss)/d gates
  grad.<tensor>                                  d(mean loss)/d every parameter at gates of 1
"""

import os
import shutil
import sys

import numpy as np
import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import save_file
from transformers import (
    AlbertConfig,
    AlbertForSequenceClassification,
    AutoTokenizer,
    BertTokenizerFast,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    ElectraConfig,
    ElectraForSequenceClassification,
    MPNetConfig,
    MPNetForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
    RobertaTokenizerFast,
    XLMRobertaConfig,
    XLMRobertaForSequenceClassification,
    XLMRobertaTokenizerFast,
)

assert transformers.__version__ == "4.57.1", transformers.__version__

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLD = os.path.join(ROOT, "tests", "goldens")
FIX = os.path.join(ROOT, "tests", "fixtures")
TINY = os.path.join(FIX, "tiny-bert")
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"]

print(f"python {sys.version.split()[0]}  torch {torch.__version__}  "
      f"transformers {transformers.__version__}  numpy {np.__version__}")
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

with open(os.path.join(GOLD, "sentences.tsv"), encoding="utf-8") as f:
    lines = f.read().split("\n")
assert lines[0] == "sentence", lines[0]
SENTENCES = [s for s in lines[1:] if s]
LABELS = torch.tensor([0, 1, 2, 2, 1, 0])
ID2LABEL = {0: "neg", 1: "neu", 2: "pos"}


def randomize_biases_and_norms(model, gen):
    """Non-trivial biases and LayerNorm parameters (save_pretrained's init makes them 0 / 1)."""
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
    g[-1, -1, -1] = 1.0
    return g.contiguous()


def to_5d(gates):
    """[N, L, H] -> [L, N, H, 1, 1], transformers' per-example head_mask."""
    return gates.permute(1, 0, 2)[:, :, :, None, None].contiguous()


def random_head_mask(gen, L, H, groups):
    """An [L, H] mask of 0s and 1s (about 30 % zeros; head (0, 0) pruned, the last head kept),
    equal within each shared layer group."""
    hm = (torch.rand((L, H), generator=gen) > 0.3).float()
    hm[0, 0], hm[-1, -1] = 0.0, 1.0
    return tie_groups(hm, groups) if groups else hm


def tie_groups(rows, groups):
    """Rows of [.., L, H] made equal within each of `groups` runs of layers (ALBERT applies one
    shared layer to each run, and transformers reads only the run's first head_mask row)."""
    L = rows.shape[-2]
    per = L // groups
    first = torch.arange(L) // per * per
    return rows[..., first, :].contiguous()


def family_goldens(name, model, base, run_kwargs, groups=None, sentences=None, labels=None):
    """`base(model)` is the bare encoder; `run_kwargs(ids, am)` the inputs it takes. With
    `groups` (shared layers), masks and gates are equal within each group of layers.
    `sentences` and `labels` default to sentences.tsv's and LABELS."""
    sentences = SENTENCES if sentences is None else sentences
    LABELS = globals()["LABELS"] if labels is None else labels
    L, H = model.config.num_hidden_layers, model.config.num_attention_heads
    tok = AutoTokenizer.from_pretrained(os.path.join(FIX, f"tiny-{name}"))
    enc = tok(sentences, padding="longest", return_tensors="pt")
    ids, am = enc["input_ids"], enc["attention_mask"]
    kw = run_kwargs(ids, am)
    gen = torch.Generator().manual_seed(7)
    t = {"input_ids": ids, "attention_mask": am, "labels": LABELS}
    model.eval()
    with torch.no_grad():
        t["logits"] = model(**kw).logits
        t["last_hidden_state"] = base(model)(**kw).last_hidden_state
        hm = random_head_mask(gen, L, H, groups)
        t["head_mask"] = hm
        t["logits_hm"] = model(**kw, head_mask=hm).logits
        t["last_hidden_state_hm"] = base(model)(**kw, head_mask=hm).last_hidden_state
        gates = fractional_gates(gen, ids.shape[0], L, H)
        if groups:
            gates = tie_groups(gates, groups)
        t["gates"] = gates
        t["logits_gates"] = model(**kw, head_mask=to_5d(gates)).logits
    assert (t["logits_hm"] - t["logits"]).abs().max() > 1e-3, "the mask changes the logits"
    # per-example gate gradients of the summed cross-entropy
    g5 = to_5d(gates).requires_grad_(True)
    logits = model(**kw, head_mask=g5).logits
    loss = F.cross_entropy(logits, LABELS, reduction="none")
    loss.sum().backward()
    t["loss"] = loss.detach()
    t["grad_gates"] = g5.grad[:, :, :, 0, 0].permute(1, 0, 2).contiguous()
    # one training step's gradients (no dropout), mean loss, every gate at 1
    model.zero_grad()
    F.cross_entropy(model(**kw).logits, LABELS).backward()
    for pname, p in model.named_parameters():
        t[f"grad.{pname}"] = p.grad.detach().clone()
    t = {k: (v.float() if v.is_floating_point() else v.to(torch.int64)).contiguous()
         for k, v in t.items()}
    path = os.path.join(GOLD, f"tiny-{name}.safetensors")
    save_file(dict(sorted(t.items())), path)
    print(f"[{name}] {path}: {len(t)} tensors; max|logits_hm - logits| "
          f"{(t['logits_hm'] - t['logits']).abs().max():.4g}, "
          f"max|grad_gates| {t['grad_gates'].abs().max():.4g}")


def save_fixture(name, model, tokenizer=None):
    """The model, and `tokenizer` (default: tiny-bert's WordPiece files)."""
    out = os.path.join(FIX, f"tiny-{name}")
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out, safe_serialization=True)
    if tokenizer is None:
        for f in TOKENIZER_FILES:
            shutil.copy(os.path.join(TINY, f), out)
    else:
        tokenizer.save_pretrained(out)
    print(f"[{name}] {out}")


def corpus():
    """Text to train the tiny tokenizers on: the repository's SST-2 sample and the sentences."""
    with open(os.path.join(ROOT, "data", "sst2", "dev.tsv"), encoding="utf-8") as f:
        rows = [line.split("\t")[0] for line in f.read().split("\n")[1:] if line]
    return rows + SENTENCES


def byte_level_bpe(vocab_size=1000):
    """A byte-level BPE tokenizer (RoBERTa's kind) trained on `corpus()`."""
    import tempfile
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus(), vocab_size=vocab_size, min_frequency=2,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    with tempfile.TemporaryDirectory() as d:
        bpe.save_model(d)
        return RobertaTokenizerFast(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt"))


def distilbert():
    torch.manual_seed(12)
    vocab = BertTokenizerFast.from_pretrained(TINY).vocab_size
    cfg = DistilBertConfig(
        vocab_size=vocab, dim=42, n_heads=3, n_layers=2, hidden_dim=60,
        max_position_embeddings=64, dropout=0.1, attention_dropout=0.1, activation="gelu",
        num_labels=3, id2label=ID2LABEL, label2id={v: k for k, v in ID2LABEL.items()},
        initializer_range=0.2, attn_implementation="eager",
    )
    model = DistilBertForSequenceClassification(cfg)
    randomize_biases_and_norms(model, torch.Generator().manual_seed(13))
    assert model.config._attn_implementation == "eager"
    save_fixture("distilbert", model)
    family_goldens("distilbert", model, lambda m: m.distilbert,
                   lambda ids, am: {"input_ids": ids, "attention_mask": am})


def unigram(vocab_size=1000):
    """A sentencepiece Unigram tokenizer (XLM-R's kind) trained on `corpus()`, with XLM-R's
    special tokens and their ids. The Unigram trainer is not deterministic, so the committed
    tokenizer of tiny-xlm-roberta is kept when there is one (delete it to train anew)."""
    from tokenizers import SentencePieceUnigramTokenizer

    committed = os.path.join(FIX, "tiny-xlm-roberta", "tokenizer.json")
    if os.path.exists(committed):
        return XLMRobertaTokenizerFast(tokenizer_file=committed, bos_token="<s>",
                                       eos_token="</s>", sep_token="</s>", cls_token="<s>",
                                       unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")

    sp = SentencePieceUnigramTokenizer()
    sp.train_from_iterator(corpus(), vocab_size=vocab_size,
                           special_tokens=["<s>", "<pad>", "</s>", "<unk>"], unk_token="<unk>")
    tok = XLMRobertaTokenizerFast(tokenizer_object=sp._tokenizer, bos_token="<s>",
                                  eos_token="</s>", sep_token="</s>", cls_token="<s>",
                                  unk_token="<unk>", pad_token="<pad>", mask_token="<mask>")
    tok.add_special_tokens({"mask_token": "<mask>"})
    from tokenizers.processors import RobertaProcessing
    tok._tokenizer.post_processor = RobertaProcessing(
        ("</s>", tok.convert_tokens_to_ids("</s>")), ("<s>", tok.convert_tokens_to_ids("<s>")))
    return tok


def roberta_like(name, config_class, model_class, tok, seed):
    """A tiny RoBERTa-shaped classifier (RoBERTa, XLM-R) with tokenizer `tok`: its fixture and
    goldens."""
    torch.manual_seed(seed)
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id) == (0, 1, 2)
    cfg = config_class(
        vocab_size=len(tok), hidden_size=42, num_attention_heads=3, num_hidden_layers=2,
        intermediate_size=60, max_position_embeddings=130, type_vocab_size=1,
        layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        num_labels=3, id2label=ID2LABEL, label2id={v: k for k, v in ID2LABEL.items()},
        initializer_range=0.2, attn_implementation="eager",
    )
    model = model_class(cfg)
    randomize_biases_and_norms(model, torch.Generator().manual_seed(seed + 1))
    assert model.config._attn_implementation == "eager"
    save_fixture(name, model, tok)
    family_goldens(name, model, lambda m: m.roberta,
                   lambda ids, am: {"input_ids": ids, "attention_mask": am})


def roberta():
    roberta_like("roberta", RobertaConfig, RobertaForSequenceClassification,
                 byte_level_bpe(), 14)


def xlm_roberta():
    roberta_like("xlm-roberta", XLMRobertaConfig, XLMRobertaForSequenceClassification,
                 unigram(), 16)


def electra():
    torch.manual_seed(18)
    vocab = BertTokenizerFast.from_pretrained(TINY).vocab_size
    cfg = ElectraConfig(
        vocab_size=vocab, embedding_size=30, hidden_size=42, num_attention_heads=3,
        num_hidden_layers=2, intermediate_size=60, max_position_embeddings=64,
        type_vocab_size=2, num_labels=3, id2label=ID2LABEL,
        label2id={v: k for k, v in ID2LABEL.items()}, initializer_range=0.2,
        attn_implementation="eager",
    )
    model = ElectraForSequenceClassification(cfg)
    randomize_biases_and_norms(model, torch.Generator().manual_seed(19))
    save_fixture("electra", model)
    family_goldens("electra", model, lambda m: m.electra,
                   lambda ids, am: {"input_ids": ids, "attention_mask": am})


def albert():
    """Two layer groups over four layers (each group applied twice), embeddings 30 wide under a
    hidden width of 42, the tanh GELU. transformers gates every application of a group with the
    group's first head_mask row, so masks and gates are tied within groups, and the gate
    gradient of that row is the sum over the group's applications (the other rows get 0)."""
    torch.manual_seed(20)
    vocab = BertTokenizerFast.from_pretrained(TINY).vocab_size
    cfg = AlbertConfig(
        vocab_size=vocab, embedding_size=30, hidden_size=42, num_attention_heads=3,
        num_hidden_layers=4, num_hidden_groups=2, inner_group_num=1, intermediate_size=60,
        max_position_embeddings=64, type_vocab_size=2, hidden_act="gelu_new",
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, classifier_dropout_prob=0.1,
        num_labels=3, id2label=ID2LABEL, label2id={v: k for k, v in ID2LABEL.items()},
        initializer_range=0.2, attn_implementation="eager",
    )
    model = AlbertForSequenceClassification(cfg)
    randomize_biases_and_norms(model, torch.Generator().manual_seed(21))
    assert model.config._attn_implementation == "eager"
    save_fixture("albert", model)
    family_goldens("albert", model, lambda m: m.albert,
                   lambda ids, am: {"input_ids": ids, "attention_mask": am}, groups=2)


def long_sentences():
    """sentences.tsv's six sentences and a seventh, all six joined: longer than MPNet's
    relative-position range of 128. Written to long-sentences.tsv for the Rust tests."""
    sents = SENTENCES + [" ".join(SENTENCES)]
    with open(os.path.join(GOLD, "long-sentences.tsv"), "w", encoding="utf-8") as f:
        f.write("sentence\n" + "".join(x + "\n" for x in sents))
    return sents


def mpnet():
    """MPNet with tiny-roberta's BPE tokenizer; the seventh sentence is over 128 tokens, so the
    relative position bias uses every bucket, the capped ones included."""
    torch.manual_seed(22)
    tok = AutoTokenizer.from_pretrained(os.path.join(FIX, "tiny-roberta"))
    sents = long_sentences()
    longest = max(len(tok(x)["input_ids"]) for x in sents)
    assert 140 < longest <= 256, longest
    cfg = MPNetConfig(
        vocab_size=len(tok), hidden_size=42, num_attention_heads=3, num_hidden_layers=2,
        intermediate_size=60, max_position_embeddings=260, relative_attention_num_buckets=32,
        layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2, num_labels=3,
        id2label=ID2LABEL, label2id={v: k for k, v in ID2LABEL.items()},
        initializer_range=0.2, attn_implementation="eager",
    )
    model = MPNetForSequenceClassification(cfg)
    randomize_biases_and_norms(model, torch.Generator().manual_seed(23))
    with torch.no_grad():  # a bias strong enough to matter against the random scores
        model.mpnet.encoder.relative_attention_bias.weight.mul_(10.0)
    save_fixture("mpnet", model, tok)
    family_goldens("mpnet", model, lambda m: m.mpnet,
                   lambda ids, am: {"input_ids": ids, "attention_mask": am},
                   sentences=sents, labels=torch.tensor([0, 1, 2, 2, 1, 0, 1]))
    print(f"[mpnet] longest sentence: {longest} tokens")


def mpnet_sentence_transformer():
    """tests/fixtures/tiny-mpnet-st/: a sentence-transformers directory around a bare MPNetModel
    (tensors without a prefix, mean pooling, Normalize), and
    tests/goldens/tiny-mpnet-sentence.safetensors: its embeddings of long-sentences.tsv from
    transformers' last hidden states, mean-pooled over the real tokens and L2-normalised."""
    from transformers import MPNetModel

    torch.manual_seed(24)
    tok = AutoTokenizer.from_pretrained(os.path.join(FIX, "tiny-roberta"))
    cfg = MPNetConfig(
        vocab_size=len(tok), hidden_size=42, num_attention_heads=3, num_hidden_layers=2,
        intermediate_size=60, max_position_embeddings=260, layer_norm_eps=1e-5, pad_token_id=1,
        bos_token_id=0, eos_token_id=2, initializer_range=0.2, attn_implementation="eager",
    )
    model = MPNetModel(cfg)
    randomize_biases_and_norms(model, torch.Generator().manual_seed(25))
    out = os.path.join(FIX, "tiny-mpnet-st")
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    os.makedirs(os.path.join(out, "1_Pooling"))
    os.makedirs(os.path.join(out, "2_Normalize"))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize",
         "type": "sentence_transformers.models.Normalize"},
    ]
    import json
    with open(os.path.join(out, "modules.json"), "w") as f:
        json.dump(modules, f, indent=2)
    with open(os.path.join(out, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": 42, "pooling_mode_cls_token": False,
                   "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
                   "pooling_mode_mean_sqrt_len_tokens": False}, f, indent=2)
    with open(os.path.join(out, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": 256, "do_lower_case": False}, f, indent=2)
    sents = long_sentences()
    enc = tok(sents, padding="longest", return_tensors="pt")
    model.eval()
    with torch.no_grad():
        states = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    emb = F.normalize((states * mask).sum(1) / mask.sum(1).clamp(min=1e-9), p=2, dim=1)
    path = os.path.join(GOLD, "tiny-mpnet-sentence.safetensors")
    save_file({"input_ids": enc["input_ids"].contiguous(),
               "sentence_embedding": emb.float().contiguous()}, path)
    print(f"[mpnet-st] {out}; {path}: sentence embeddings {tuple(emb.shape)}")


TAGS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}


def token_classifiers():
    """tests/goldens/tiny-<family>-tok.safetensors for every family beside BERT: a token
    classifier on the family's fixture encoder (transformers' *ForTokenClassification loaded
    from tests/fixtures/tiny-<family>, its new 5-tag classifier drawn from a seeded generator),
    on sentences.tsv (long-sentences.tsv for MPNet) with random tags on the real non-special
    tokens (-100 elsewhere). Holds the classifier's own tensors (`classifier.weight`,
    `classifier.bias`; the test puts them in place of the sequence head), `token_labels`,
    `logits` [N, T, 5], `head_mask`/`logits_hm`, `gates`, `loss` [N] (each sentence's summed
    cross-entropy at the gates) and `grad_gates`; masks and gates tied within ALBERT's groups."""
    from transformers import AutoModelForTokenClassification

    for name in ["distilbert", "roberta", "xlm-roberta", "electra", "albert", "mpnet"]:
        src = os.path.join(FIX, f"tiny-{name}")
        torch.manual_seed(60)
        model = AutoModelForTokenClassification.from_pretrained(
            src, num_labels=5, id2label=TAGS, label2id={v: k for k, v in TAGS.items()},
            attn_implementation="eager", ignore_mismatched_sizes=True).eval()
        with torch.no_grad():
            model.classifier.bias.copy_(0.1 * torch.randn(5, generator=torch.Generator().manual_seed(61)))
        groups = getattr(model.config, "num_hidden_groups", None) if name == "albert" else None
        L, H = model.config.num_hidden_layers, model.config.num_attention_heads
        tok = AutoTokenizer.from_pretrained(src)
        sents = long_sentences() if name == "mpnet" else SENTENCES
        enc = tok(sents, padding="longest", return_tensors="pt")
        ids, am = enc["input_ids"], enc["attention_mask"]
        kw = {"input_ids": ids, "attention_mask": am}
        gen = torch.Generator().manual_seed(62)
        special = torch.tensor([[t in tok.all_special_ids for t in row] for row in ids.tolist()])
        tags = torch.randint(0, 5, ids.shape, generator=gen)
        labels = torch.where(am.bool() & ~special, tags, torch.full_like(tags, -100))
        t = {"input_ids": ids, "attention_mask": am, "token_labels": labels,
             "classifier.weight": model.classifier.weight.detach().clone(),
             "classifier.bias": model.classifier.bias.detach().clone()}
        with torch.no_grad():
            t["logits"] = model(**kw).logits
            hm = random_head_mask(gen, L, H, groups)
            t["head_mask"] = hm
            t["logits_hm"] = model(**kw, head_mask=hm).logits
        gates = fractional_gates(gen, ids.shape[0], L, H)
        if groups:
            gates = tie_groups(gates, groups)
        t["gates"] = gates
        g5 = to_5d(gates).requires_grad_(True)
        logits = model(**kw, head_mask=g5).logits
        per = F.cross_entropy(logits.reshape(-1, 5), labels.reshape(-1), reduction="none",
                              ignore_index=-100).reshape(labels.shape).sum(1)
        per.sum().backward()
        t["loss"] = per.detach()
        t["grad_gates"] = g5.grad[:, :, :, 0, 0].permute(1, 0, 2).contiguous()
        t = {k: (v.float() if v.is_floating_point() else v.to(torch.int64)).contiguous()
             for k, v in t.items()}
        path = os.path.join(GOLD, f"tiny-{name}-tok.safetensors")
        save_file(dict(sorted(t.items())), path)
        print(f"[{name}-tok] {path}: loss {t['loss'].tolist()}")


def sentence_embeddings():
    """tests/goldens/minilm-sentence.safetensors: the default model's sentence embeddings of the
    six sentences as sentence-transformers computes them (its modules.json: mean pooling over
    the real tokens, then L2 normalisation), from transformers' last hidden states."""
    from transformers import AutoModel

    minilm = os.path.join(ROOT, "weights", "all-MiniLM-L6-v2")
    tok = AutoTokenizer.from_pretrained(minilm)
    model = AutoModel.from_pretrained(minilm).eval()
    enc = tok(SENTENCES, padding="longest", truncation=True, max_length=256,
              return_tensors="pt")
    with torch.no_grad():
        states = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    mean = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    emb = F.normalize(mean, p=2, dim=1)
    path = os.path.join(GOLD, "minilm-sentence.safetensors")
    save_file({"input_ids": enc["input_ids"].contiguous(),
               "sentence_embedding": emb.float().contiguous()}, path)
    print(f"[minilm] {path}: sentence embeddings {tuple(emb.shape)}")


def keep_kept_heads_bias():
    """transformers 4.57 cannot run a pruned MPNet, its own `prune_heads` included: every layer
    adds the relative position bias of all the original heads to the kept heads' scores (a
    shape error). Patched here so that each layer adds only the rows of the heads it kept, as
    the unpruned model does for those heads; nothing else of transformers changes."""
    from transformers.models.mpnet import modeling_mpnet

    forward = modeling_mpnet.MPNetAttention.forward

    def patched(self, hidden_states, attention_mask=None, head_mask=None, position_bias=None,
                output_attentions=False, **kwargs):
        if position_bias is not None and self.pruned_heads:
            kept = [h for h in range(position_bias.shape[1]) if h not in self.pruned_heads]
            position_bias = position_bias[:, kept]
        return forward(self, hidden_states, attention_mask, head_mask, position_bias,
                       output_attentions, **kwargs)

    modeling_mpnet.MPNetAttention.forward = patched


def reload(name, directory):
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification

    golden = load_file(os.path.join(GOLD, f"tiny-{name}.safetensors"))
    if name == "mpnet":
        keep_kept_heads_bias()
    model = AutoModelForSequenceClassification.from_pretrained(
        directory, attn_implementation="eager").eval()
    print(f"[{name}] {directory}: pruned_heads {model.config.pruned_heads}")
    with torch.no_grad():
        logits = model(input_ids=golden["input_ids"],
                       attention_mask=golden["attention_mask"]).logits
    err = (logits - golden["logits_hm"]).abs().max().item()
    print(f"[{name}] max |transformers(exported) - golden logits_hm| = {err:.3g}")
    assert err < 1e-4, err


if __name__ == "__main__":
    if sys.argv[1:2] == ["reload"]:
        reload(sys.argv[2], sys.argv[3])
    else:
        distilbert()
        roberta()
        xlm_roberta()
        electra()
        albert()
        mpnet()
        mpnet_sentence_transformer()
        token_classifiers()
        sentence_embeddings()
