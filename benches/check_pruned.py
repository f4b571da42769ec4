#!/usr/bin/env python3
"""Acceptance check of physical pruning (issue 4) against transformers 4.57, run by hand (CI
never runs Python):

  export MODEL_DIR MASK1 [MASK2]
      `headroom export` MODEL_DIR by MASK1 (and the result again by MASK2: pruning a pruned
      checkpoint), then on SST-2 dev compare
        - transformers 4.57 loading each exported directory (BertForSequenceClassification),
        - transformers on MODEL_DIR with the same head_mask,
        - `headroom forward --head-mask` on MODEL_DIR (the masked run),
        - `headroom forward` on the exported directory (the compacted run),
      and transformers' own prune_heads applied in the same two steps (its config.pruned_heads
      must equal the one headroom wrote). A layer without heads is skipped for transformers,
      which cannot run it.

    /tmp/goldenv/bin/python benches/check_pruned.py export weights/minilm-sst2 out/mask.json
"""
import json, os, subprocess, sys, tempfile

import numpy as np
import torch
from safetensors.numpy import load_file
from transformers import BertForSequenceClassification

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_finetuned import BIN, DATA, batches, read_tsv, tokenizer  # noqa: E402


def hf_logits(model, tok, rows, head_mask=None):
    out = []
    with torch.no_grad():
        for _, ids, am in batches(tok, rows, 64):
            out.append(model(input_ids=ids, attention_mask=am, head_mask=head_mask).logits.numpy())
    return np.concatenate(out)


def headroom_logits(model_dir, data, mask=None):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "fwd.safetensors")
        cmd = [BIN, "forward", "--model", model_dir, "--data", data, "--out", out]
        if mask:
            cmd += ["--head-mask", mask]
        subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        return load_file(out)["logits"]


def pruned_of(mask):
    return {l: [h for h, v in enumerate(row) if v == 0] for l, row in enumerate(mask)}


def export(model_dir, mask1, mask2=None):
    data = os.path.join(DATA, "sst2", "dev.tsv")
    rows = read_tsv(data)
    tok = tokenizer(model_dir)
    masks = [json.load(open(m)) for m in [mask1] + ([mask2] if mask2 else [])]
    report = {"model": model_dir, "examples": len(rows), "steps": []}
    with tempfile.TemporaryDirectory() as tmp:
        src = model_dir
        ref = BertForSequenceClassification.from_pretrained(model_dir).eval()
        combined = np.ones((len(masks[0]), len(masks[0][0])), dtype=np.float32)
        for i, (path, mask) in enumerate(zip([mask1, mask2], masks)):
            out = os.path.join(tmp, f"pruned{i}")
            subprocess.run([BIN, "export", "--model", src, "--mask", path, "--out", out], check=True)
            combined *= np.array(mask, dtype=np.float32)
            # transformers' own pruning, in the same steps
            ref.prune_heads({l: h for l, h in pruned_of(mask).items() if h})
            cfg = json.load(open(os.path.join(out, "config.json")))
            written = {int(k): sorted(v) for k, v in cfg["pruned_heads"].items()}
            theirs = {int(k): sorted(v) for k, v in ref.config.pruned_heads.items() if v}
            step = {"mask": path, "pruned_heads_match_transformers": written == theirs,
                    "heads_left": int(combined.sum())}
            full = os.path.join(tmp, f"mask{i}.json")
            json.dump(combined.tolist(), open(full, "w"))
            masked = headroom_logits(model_dir, data, full)
            compact = headroom_logits(out, data)
            step["headroom_compact_vs_masked"] = float(np.abs(compact - masked).max())
            empty = [l for l in range(combined.shape[0]) if combined[l].sum() == 0]
            if empty:
                step["transformers"] = f"skipped: layers {empty} keep no head"
            else:
                hf = BertForSequenceClassification.from_pretrained(out).eval()
                got = hf_logits(hf, tok, rows)
                hm = hf_logits(BertForSequenceClassification.from_pretrained(model_dir).eval(), tok, rows,
                               head_mask=torch.tensor(combined))
                step["transformers_loaded_vs_headroom_masked"] = float(np.abs(got - masked).max())
                step["transformers_loaded_vs_transformers_head_mask"] = float(np.abs(got - hm).max())
                step["transformers_prune_heads_vs_loaded"] = float(np.abs(hf_logits(ref, tok, rows) - got).max())
                step["prediction_agreement"] = float((got.argmax(-1) == masked.argmax(-1)).mean())
                labels = np.array([int(r["label"]) for r in rows])
                step["accuracy_transformers"] = float((got.argmax(-1) == labels).mean())
                step["accuracy_headroom"] = float((masked.argmax(-1) == labels).mean())
                assert step["transformers_loaded_vs_headroom_masked"] < 1e-4, step
            assert step["pruned_heads_match_transformers"], (written, theirs)
            report["steps"].append(step)
            src = out
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "export":
        export(*args)
    else:
        sys.exit(__doc__)
