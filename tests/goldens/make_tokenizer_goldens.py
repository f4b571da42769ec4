#!/usr/bin/env python3
"""Token ids of the repository's data samples under three kinds of tokenizer.json, as
transformers 4.57.1's fast tokenizers give them (issue 12).

Run by hand from the repository root (CI never runs Python), after make_family_goldens.py:

    /tmp/goldenv/bin/python tests/goldens/make_tokenizer_goldens.py

Tokenizers: WordPiece (the default model, weights/all-MiniLM-L6-v2), byte-level BPE
(tests/fixtures/tiny-roberta) and sentencepiece Unigram (tests/fixtures/tiny-xlm-roberta).
Texts: data/sst2/dev.tsv's 300 sentences (single), the first 40 pairs of each of
data/parallel/en-{zh,ar,hi}.tsv (accents, CJK, Arabic and Devanagari scripts, typographic
quotes) and data/wikiann/en/dev.conll's first 150 sentences as pre-split words (`is_split_into_words`, as token classification encodes them;
the BPE tokenizer with `add_prefix_space=True`, which transformers requires for them).
No truncation: an example longer than a model's positions is left for the test to skip.

Writes tests/goldens/tokenizer-ids.safetensors: for each tokenizer T and text set S,
`T.S.ids` (every example's ids, concatenated, int64) and `T.S.lengths` (ids per example).
"""

import os
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoTokenizer

assert transformers.__version__ == "4.57.1", transformers.__version__

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLD = os.path.join(ROOT, "tests", "goldens")
TOKENIZERS = {
    "wordpiece": os.path.join(ROOT, "weights", "all-MiniLM-L6-v2"),
    "bpe": os.path.join(ROOT, "tests", "fixtures", "tiny-roberta"),
    "unigram": os.path.join(ROOT, "tests", "fixtures", "tiny-xlm-roberta"),
}

print(f"python {sys.version.split()[0]}  transformers {transformers.__version__}")


def tsv(path):
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip("\n").split("\t") for line in f.read().split("\n") if line]
    header, rows = lines[0], lines[1:]
    return header, rows


def conll(path, limit=150):
    sents, cur = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                if cur:
                    sents.append(cur)
                    cur = []
                continue
            if line.startswith("-DOCSTART-"):
                continue
            cur.append(line.split("\t")[0])
    if cur:
        sents.append(cur)
    return sents[:limit]


def texts():
    _, sst = tsv(os.path.join(ROOT, "data", "sst2", "dev.tsv"))
    sets = {"sst2": [(r[0], None) for r in sst]}
    for lang in ["zh", "ar", "hi"]:
        _, rows = tsv(os.path.join(ROOT, "data", "parallel", f"en-{lang}.tsv"))
        sets[f"en-{lang}"] = [(r[0], r[1]) for r in rows[:40]]
    return sets


def main():
    sets = texts()
    words = conll(os.path.join(ROOT, "data", "wikiann", "en", "dev.conll"))
    out = {}
    for name, path in TOKENIZERS.items():
        tok = AutoTokenizer.from_pretrained(path)
        assert tok.is_fast, name
        for set_name, rows in sets.items():
            ids = []
            for a, b in rows:
                enc = tok(a, b, truncation=False) if b is not None else tok(a, truncation=False)
                ids.append(enc["input_ids"])
            out[f"{name}.{set_name}.ids"] = torch.tensor([i for x in ids for i in x])
            out[f"{name}.{set_name}.lengths"] = torch.tensor([len(x) for x in ids])
        # pre-split words: byte-level BPE needs add_prefix_space=True (transformers refuses
        # them otherwise), so that every word is encoded as after a space
        wtok = AutoTokenizer.from_pretrained(path, add_prefix_space=True) if name == "bpe" else tok
        ids = [wtok(w, is_split_into_words=True, truncation=False)["input_ids"] for w in words]
        out[f"{name}.wikiann.ids"] = torch.tensor([i for x in ids for i in x])
        out[f"{name}.wikiann.lengths"] = torch.tensor([len(x) for x in ids])
        total = sum(int(v.sum()) for k, v in out.items() if k.startswith(name) and
                    k.endswith("lengths"))
        print(f"[{name}] {path}: {total} ids")
    path = os.path.join(GOLD, "tokenizer-ids.safetensors")
    save_file({k: v.to(torch.int64).contiguous() for k, v in sorted(out.items())}, path)
    print(f"{path}: {len(out)} tensors")


if __name__ == "__main__":
    main()
