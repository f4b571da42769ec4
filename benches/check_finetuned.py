#!/usr/bin/env python3
"""Acceptance checks of issue 3 against transformers 4.57, run by hand (CI never runs Python):

  train-hf OUT_DIR [STEPS]   fine-tune the default model on SST-2 with transformers (the
                             issue's recipe: batch 32, AdamW lr 1e-4, 6% warm-up, linear decay,
                             max length 128) for STEPS steps (default: 2 epochs) -> OUT_DIR
  score MODEL_DIR [N]        per-example head importance (mean over examples of
                             |d loss_x / d xi_h|, transformers head_mask.grad) and bertology's
                             attention entropy on the first N SST-2 dev sentences (default 256),
                             against `headroom score --granularity example` on the same data
  reload MODEL_DIR [DATA]    load a headroom-written checkpoint with transformers and compare
                             its logits and predictions on DATA (default SST-2 dev) with
                             `headroom forward`; for a token classifier DATA is CoNLL (default
                             WikiANN-en dev, first 2000 sentences, words joined by spaces)

    /tmp/goldenv/bin/python benches/check_finetuned.py score weights/minilm-sst2-hf
"""
import csv, json, os, subprocess, sys, tempfile, time

import numpy as np
import torch
import transformers
from safetensors.numpy import load_file
from transformers import AutoTokenizer, BertForSequenceClassification, BertForTokenClassification

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("HEADROOM_DATA", os.path.join(ROOT, "..", "shared", "data"))
BIN = os.environ.get("HEADROOM_BIN", os.path.join(ROOT, "target", "release", "headroom"))
BASE = os.path.join(ROOT, "weights", "all-MiniLM-L6-v2")
assert transformers.__version__ == "4.57.1", transformers.__version__
torch.manual_seed(0)


def read_tsv(path, n=None):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows[:n] if n else rows


def tokenizer(model_dir):
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.model_max_length = 512
    return tok


def batches(tok, rows, size, max_length=512, shuffle=False, seed=0):
    enc = [tok(r["sentence"], truncation=True, max_length=max_length)["input_ids"] for r in rows]
    order = list(range(len(enc)))
    if shuffle:
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(enc), generator=g).tolist()
    for s in range(0, len(order), size):
        idx = order[s:s + size]
        t = max(len(enc[i]) for i in idx)
        ids = torch.zeros(len(idx), t, dtype=torch.long)
        am = torch.zeros(len(idx), t, dtype=torch.long)
        for r, i in enumerate(idx):
            ids[r, :len(enc[i])] = torch.tensor(enc[i])
            am[r, :len(enc[i])] = 1
        yield idx, ids, am


def train_hf(out, steps=None):
    rows = read_tsv(os.path.join(DATA, "sst2", "train.tsv"))
    dev = read_tsv(os.path.join(DATA, "sst2", "dev.tsv"))
    tok = tokenizer(BASE)
    model = BertForSequenceClassification.from_pretrained(BASE, num_labels=2)
    per_epoch = (len(rows) + 31) // 32
    total = steps or 2 * per_epoch
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    sched = transformers.get_linear_schedule_with_warmup(opt, int(np.ceil(0.06 * total)), total)
    labels = torch.tensor([int(r["label"]) for r in rows])
    step, t0 = 0, time.perf_counter()
    for epoch in range(2):
        model.train()
        for idx, ids, am in batches(tok, rows, 32, 128, shuffle=True, seed=epoch):
            if step >= total:
                break
            loss = model(input_ids=ids, attention_mask=am, labels=labels[idx]).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step(); sched.step(); opt.zero_grad()
            step += 1
            if step % 25 == 0:
                print(f"step {step}/{total} loss {loss.item():.4f} {time.perf_counter() - t0:.0f} s", flush=True)
    model.eval()
    correct = 0
    with torch.no_grad():
        for idx, ids, am in batches(tok, dev, 64):
            pred = model(input_ids=ids, attention_mask=am).logits.argmax(-1)
            correct += sum(int(pred[r]) == int(dev[i]["label"]) for r, i in enumerate(idx))
    print(f"transformers: {step} steps, dev accuracy {correct / len(dev):.4f}, {time.perf_counter() - t0:.0f} s")
    model.save_pretrained(out)
    tok.save_pretrained(out)


def score(model_dir, n=256):
    rows = read_tsv(os.path.join(DATA, "sst2", "dev.tsv"), n)
    tok = tokenizer(model_dir)
    model = BertForSequenceClassification.from_pretrained(model_dir, attn_implementation="eager").eval()
    L, H = model.config.num_hidden_layers, model.config.num_attention_heads
    labels = torch.tensor([int(r["label"]) for r in rows])
    imp = torch.zeros(L, H)
    ent = torch.zeros(L, H)
    tokens = 0
    t0 = time.perf_counter()
    for idx, ids, am in batches(tok, rows, 32):
        mask = torch.ones(L, len(idx), H, 1, 1, requires_grad=True)
        out = model(input_ids=ids, attention_mask=am, head_mask=mask, output_attentions=True)
        loss = torch.nn.functional.cross_entropy(out.logits, labels[idx], reduction="sum")
        loss.backward()
        imp += mask.grad[..., 0, 0].abs().sum(1)
        for l, a in enumerate(out.attentions):  # [B, H, T, T]
            p = a.detach()
            e = -(p * torch.log(p.clamp_min(1e-30))).sum(-1)  # [B, H, T]
            ent[l] += (e * am[:, None, :]).sum((0, 2))
        tokens += int(am.sum())
    t_hf = time.perf_counter() - t0
    imp /= len(rows)
    ent /= tokens
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "dev.tsv")
        with open(data, "w") as f:
            f.write("sentence\tlabel\n" + "".join(f"{r['sentence']}\t{r['label']}\n" for r in rows))
        out = os.path.join(tmp, "score")
        t0 = time.perf_counter()
        subprocess.run([BIN, "score", "--model", model_dir, "--data", data, "--out", out,
                        "--granularity", "example"], check=True)
        t_hr = time.perf_counter() - t0
        got = np.load(os.path.join(out, "head_importance.npy"))
        got_ent = np.load(os.path.join(out, "attn_entropy.npy"))
    want, want_ent = imp.numpy(), ent.numpy()
    d = np.abs(got - want).max() / np.abs(want).max()
    de = np.abs(got_ent - want_ent).max() / np.abs(want_ent).max()
    print(json.dumps({
        "model": model_dir, "examples": len(rows),
        "importance_max_abs_diff_over_max": float(d),
        "entropy_max_abs_diff_over_max": float(de),
        "transformers_seconds": t_hf, "headroom_seconds": t_hr,
    }, indent=1))
    assert d <= 1e-3 and de <= 1e-3, "acceptance: within 1e-3"


def reload_tokens(model_dir, conll=None, n=2000):
    conll = conll or os.path.join(DATA, "wikiann", "en", "dev.conll")
    sents, cur = [], []
    for line in open(conll, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line:
            if cur:
                sents.append(" ".join(cur))
            cur = []
            continue
        cur.append(line.split("\t")[0])
    if cur:
        sents.append(" ".join(cur))
    sents = [s.replace("\t", " ") for s in sents[:n]]
    tok = tokenizer(model_dir)
    model = BertForTokenClassification.from_pretrained(model_dir).eval()
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "s.tsv")
        with open(data, "w") as f:
            f.write("sentence\n" + "".join(s + "\n" for s in sents))
        out = os.path.join(tmp, "fwd.safetensors")
        subprocess.run([BIN, "forward", "--model", model_dir, "--data", data, "--out", out], check=True)
        got = load_file(out)["logits"]  # [N, T, C]
    worst, agree, total = 0.0, 0, 0
    with torch.no_grad():
        for i, s in enumerate(sents):
            enc = tok(s, return_tensors="pt", truncation=True, max_length=512)
            want = model(**enc).logits[0].numpy()
            g = got[i, : want.shape[0]]
            worst = max(worst, float(np.abs(g - want).max()))
            agree += int((g.argmax(-1) == want.argmax(-1)).sum())
            total += want.shape[0]
    print(json.dumps({"model": model_dir, "sentences": len(sents), "tokens": total,
                      "logits_max_abs_diff": worst, "token_prediction_agreement": agree / total}, indent=1))
    assert agree == total and worst < 1e-3


def reload(model_dir, data=None):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    if "BertForTokenClassification" in cfg.get("architectures", []):
        return reload_tokens(model_dir, data)
    data = data or os.path.join(DATA, "sst2", "dev.tsv")
    rows = read_tsv(data)
    tok = tokenizer(model_dir)
    model = BertForSequenceClassification.from_pretrained(model_dir).eval()
    want = []
    with torch.no_grad():
        for idx, ids, am in batches(tok, rows, 64):
            want.append(model(input_ids=ids, attention_mask=am).logits.numpy())
    want = np.concatenate(want)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "fwd.safetensors")
        subprocess.run([BIN, "forward", "--model", model_dir, "--data", data, "--out", out], check=True)
        got = load_file(out)["logits"]
    agree = float((got.argmax(-1) == want.argmax(-1)).mean())
    acc = float((want.argmax(-1) == np.array([int(r["label"]) for r in rows])).mean())
    print(json.dumps({
        "model": model_dir, "examples": len(rows),
        "logits_max_abs_diff": float(np.abs(got - want).max()),
        "prediction_agreement": agree, "transformers_accuracy": acc,
    }, indent=1))
    assert agree == 1.0 and np.abs(got - want).max() < 1e-3


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "train-hf":
        train_hf(args[0], int(args[1]) if len(args) > 1 else None)
    elif cmd == "score":
        score(args[0], int(args[1]) if len(args) > 1 else 256)
    elif cmd == "reload":
        reload(args[0], args[1] if len(args) > 1 else None)
    else:
        sys.exit(__doc__)
