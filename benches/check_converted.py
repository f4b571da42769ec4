#!/usr/bin/env python3
"""Acceptance check of the converted multilingual model (issue 13) against transformers 4.57, run
by hand (CI never runs Python):

    /root/tvenv/bin/python benches/check_converted.py [MODEL_DIR] [N]

MODEL_DIR (default weights/multilingual-e5-small, from weights/fetch-e5.sh) is loaded by
transformers' AutoModel and its tokenizer from tokenizer.json (PreTrainedTokenizerFast). For N
sentences of each language of ../shared/data/parallel (default 40 per file, both columns), it
compares the token ids and the last hidden states with `headroom forward --hidden` on the same
TSV. Prints the largest differences; fails above 1e-4 (relative to the largest state).
"""
import csv, os, subprocess, sys, tempfile

import numpy as np
import torch
import transformers
from safetensors.numpy import load_file
from transformers import AutoModel, PreTrainedTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("HEADROOM_DATA", os.path.join(ROOT, "..", "shared", "data"))
BIN = os.environ.get("HEADROOM_BIN", os.path.join(ROOT, "target", "release", "headroom"))
assert transformers.__version__ == "4.57.1", transformers.__version__

model_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "weights", "multilingual-e5-small")
n = int(sys.argv[2]) if len(sys.argv) > 2 else 40
sentences = []
for lang in ["de", "es", "zh", "ar", "hi"]:
    with open(os.path.join(DATA, "parallel", f"en-{lang}.tsv"), newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[:n]
    sentences += [r["sentence"] for r in rows] + [r["sentence2"] for r in rows]

tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(model_dir, "tokenizer.json"))
model = AutoModel.from_pretrained(model_dir).eval()
with tempfile.TemporaryDirectory() as tmp:
    tsv = os.path.join(tmp, "s.tsv")
    with open(tsv, "w") as f:
        f.write("sentence\n" + "".join(s.replace("\t", " ") + "\n" for s in sentences))
    out = os.path.join(tmp, "fwd.safetensors")
    subprocess.run([BIN, "forward", "--model", model_dir, "--data", tsv, "--out", out, "--hidden"],
                   check=True, stdout=subprocess.DEVNULL)
    got = load_file(out)
ids, am, states = got["input_ids"], got["attention_mask"], got["last_hidden_state"]
worst_ids, worst, scale = 0, 0.0, 0.0
with torch.no_grad():
    for i, s in enumerate(sentences):
        want_ids = tok(s)["input_ids"]
        t = int(am[i].sum())
        worst_ids += int(list(ids[i, :t]) != want_ids)
        h = model(input_ids=torch.tensor([want_ids])).last_hidden_state[0].numpy()
        if len(want_ids) == t:
            worst = max(worst, float(np.abs(h - states[i, :t]).max()))
            scale = max(scale, float(np.abs(h).max()))
print(f"{len(sentences)} sentences: token ids differ in {worst_ids}; "
      f"max |transformers - headroom| hidden state {worst:.3g} (largest |state| {scale:.3g}, "
      f"relative {worst / scale:.3g})")
assert worst_ids == 0 and worst / scale < 1e-4
