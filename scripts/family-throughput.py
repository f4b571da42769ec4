#!/usr/bin/env python3
"""Forward and score throughput of each model family's base shape: headroom against
transformers 4.57.1 (torch, CPU) in the same sitting, on the same random checkpoints and the
same sentences (issue 12).

    /tmp/goldenv/bin/python scripts/family-throughput.py HEADROOM_BINARY OUT_DIR [N_SENTENCES]

For each family it saves a random base-size sequence classifier with transformers (2 labels;
ALBERT with 30522 ids so that the default model's WordPiece tokenizer serves every family, and
every pad_token_id 0, that tokenizer's [PAD]) to a scratch directory, then times:
  - forward: `headroom forward` against a no-grad transformers forward (its default attention),
    both over the first N sentences of data/sst2/dev.tsv in batches of 32 padded to the batch's
    longest, tokens per second of real tokens;
  - score: `headroom score` (forward and the gate backward) against transformers' forward and
    backward to a per-example head_mask (eager attention, parameters frozen, as Michel et al.'s
    code computes importance), examples per second.
headroom's time is the wall time its own summary line reports (model loading excluded, as it
is for transformers). Writes OUT_DIR/throughput.json and prints a Markdown table.
"""

import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import torch
import transformers
from transformers import AutoModelForSequenceClassification, AutoTokenizer

assert transformers.__version__ == "4.57.1", transformers.__version__

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MINILM = os.path.join(ROOT, "weights", "all-MiniLM-L6-v2")

SHAPES = [
    # name, config class, layers, hidden, vocab, extra config
    ("base", transformers.BertConfig, 12, 768, 30522, {}),
    ("roberta-base", transformers.RobertaConfig, 12, 768, 50265, {"type_vocab_size": 1}),
    ("distilbert-base", transformers.DistilBertConfig, 6, 768, 30522, {}),
    ("electra-base", transformers.ElectraConfig, 12, 768, 30522, {"embedding_size": 768}),
    ("albert-base", transformers.AlbertConfig, 12, 768, 30522,
     {"embedding_size": 128, "num_hidden_groups": 1, "hidden_act": "gelu_new"}),
    ("mpnet-base", transformers.MPNetConfig, 12, 768, 30527, {}),
]


def config(cls, layers, hidden, vocab, extra):
    if cls is transformers.DistilBertConfig:
        kw = dict(dim=hidden, n_layers=layers, n_heads=12, hidden_dim=4 * hidden)
    else:
        kw = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=12,
                  intermediate_size=4 * hidden)
    kw.update(extra)
    return cls(vocab_size=vocab, max_position_embeddings=514, pad_token_id=0, num_labels=2, **kw)


def sentences(n):
    with open(os.path.join(ROOT, "data", "sst2", "dev.tsv"), encoding="utf-8") as f:
        rows = [line.split("\t") for line in f.read().split("\n")[1:] if line]
    return [r[0] for r in rows[:n]], [int(r[1]) for r in rows[:n]]


def batches(model, tok, texts, labels, size=32):
    """Length-sorted batches padded to their longest, with the inputs `model` takes."""
    takes = inspect.signature(model.forward).parameters
    order = sorted(range(len(texts)), key=lambda i: -len(tok(texts[i])["input_ids"]))
    for k in range(0, len(order), size):
        idx = order[k:k + size]
        enc = tok([texts[i] for i in idx], padding="longest", return_tensors="pt")
        enc = {key: v for key, v in enc.items() if key in takes}
        yield enc, torch.tensor([labels[i] for i in idx])


def torch_forward(model, tok, texts, labels):
    model.eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        for enc, _ in batches(model, tok, texts, labels):
            model(**enc)
    return time.perf_counter() - t0


def torch_score(model, tok, texts, labels):
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    L, H = model.config.num_hidden_layers, model.config.num_attention_heads
    t0 = time.perf_counter()
    for enc, y in batches(model, tok, texts, labels):
        hm = torch.ones((L, enc["input_ids"].shape[0], H, 1, 1), requires_grad=True)
        out = model(**enc, head_mask=hm)
        torch.nn.functional.cross_entropy(out.logits, y, reduction="sum").backward()
    return time.perf_counter() - t0


def headroom_seconds(binary, args):
    r = subprocess.run([binary] + args, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{args}: {r.stderr}")
    m = re.search(r"in ([0-9.]+) s", r.stdout)
    return float(m.group(1)), r.stdout


def main():
    binary, out_dir = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    torch.manual_seed(0)
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"transformers {transformers.__version__}, {n} sentences")
    texts, labels = sentences(n)
    tok = AutoTokenizer.from_pretrained(MINILM)
    tokens = sum(len(tok(t)["input_ids"]) for t in texts)
    scratch = tempfile.mkdtemp(prefix="headroom-throughput-")
    data = os.path.join(scratch, "data.tsv")
    with open(data, "w", encoding="utf-8") as f:
        f.write("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(texts, labels)))
    rows = []
    try:
        for name, cls, layers, hidden, vocab, extra in SHAPES:
            d = os.path.join(scratch, name)
            cfg = config(cls, layers, hidden, vocab, extra)
            model = AutoModelForSequenceClassification.from_config(cfg)
            model.save_pretrained(d, safe_serialization=True)
            tok.save_pretrained(d)
            tf = torch_forward(model, tok, texts, labels)
            eager = AutoModelForSequenceClassification.from_pretrained(
                d, attn_implementation="eager")
            ts = torch_score(eager, tok, texts, labels)
            hf, _ = headroom_seconds(binary, ["forward", "--model", d, "--data", data,
                                              "--out", os.path.join(scratch, "f.safetensors")])
            hs, _ = headroom_seconds(binary, ["score", "--model", d, "--data", data,
                                              "--out", os.path.join(scratch, "score")])
            row = {"shape": name, "tokens": tokens, "examples": n,
                   "forward_tokens_per_s": {"headroom": tokens / hf, "transformers": tokens / tf},
                   "score_examples_per_s": {"headroom": n / hs, "transformers": n / ts}}
            rows.append(row)
            print(json.dumps(row), flush=True)
            shutil.rmtree(d)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "throughput.json"), "w") as f:
        json.dump({"sentences": n, "tokens": tokens, "rows": rows}, f, indent=2)
    print("| shape | forward tokens/s: headroom | transformers | ratio | score examples/s: "
          "headroom | transformers | ratio |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        f, s = r["forward_tokens_per_s"], r["score_examples_per_s"]
        print(f"| `{r['shape']}` | {f['headroom']:.0f} | {f['transformers']:.0f} | "
              f"{f['headroom'] / f['transformers']:.2f} | {s['headroom']:.2f} | "
              f"{s['transformers']:.2f} | {s['headroom'] / s['transformers']:.2f} |")


if __name__ == "__main__":
    main()
