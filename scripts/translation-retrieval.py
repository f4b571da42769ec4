#!/usr/bin/env python3
"""Translation retrieval with mean-pooled embeddings (issue 13): for each of
DATA/en-{de,es,zh,ar,hi}.tsv (`sentence`, `sentence2`: translation pairs), headroom embeds both
sides (`headroom forward --hidden`, mean over the real tokens, L2-normalised) and each English
sentence retrieves its translation among all of the file's, and back. Prints top-1 accuracy per
language and direction and writes OUT.json.

    python3 scripts/translation-retrieval.py HEADROOM MODEL_DIR DATA_DIR OUT.json [--batch-size N]
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        dt = {"F32": np.float32, "I64": np.int64}[t["dtype"]]
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=dt).reshape(t["shape"])
    return out


def embed(headroom, model, texts, tmp, batch):
    tsv = os.path.join(tmp, "texts.tsv")
    with open(tsv, "w", encoding="utf-8") as f:
        f.write("sentence\n" + "".join(t.replace("\t", " ") + "\n" for t in texts))
    out = os.path.join(tmp, "out.safetensors")
    subprocess.run([headroom, "forward", "--model", model, "--data", tsv, "--hidden",
                    "--batch-size", str(batch), "--out", out], check=True,
                   stdout=subprocess.DEVNULL)
    t = read_safetensors(out)
    h, m = t["last_hidden_state"].astype(np.float64), t["attention_mask"].astype(np.float64)
    e = (h * m[..., None]).sum(1) / m.sum(1, keepdims=True)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def main():
    headroom, model, data, out = sys.argv[1:5]
    batch = int(sys.argv[6]) if len(sys.argv) > 6 and sys.argv[5] == "--batch-size" else 32
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for lang in ["de", "es", "zh", "ar", "hi"]:
            t0 = time.time()
            with open(os.path.join(data, f"en-{lang}.tsv"), encoding="utf-8") as f:
                pairs = [line.rstrip("\n").split("\t") for line in f.read().split("\n")[1:] if line]
            en = embed(headroom, model, [p[0] for p in pairs], tmp, batch)
            xx = embed(headroom, model, [p[1] for p in pairs], tmp, batch)
            sim = en @ xx.T
            gold = np.arange(len(pairs))
            rows[lang] = {"pairs": len(pairs),
                          "en_to_xx": float((sim.argmax(1) == gold).mean()),
                          "xx_to_en": float((sim.argmax(0) == gold).mean()),
                          "seconds": time.time() - t0}
            print(lang, json.dumps(rows[lang]), flush=True)
    with open(out, "w") as f:
        json.dump({"model": model, "data": data, "pooling": "mean over real tokens, L2",
                   "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
