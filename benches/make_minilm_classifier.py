#!/usr/bin/env python3
"""Builds weights/minilm-cls/: the default model plus the goldens' random 2-class head
(tests/goldens/minilm-classifier.safetensors), as BertForSequenceClassification. Only for
timing `headroom score` against transformers (the head is random, not trained).
Needs numpy and safetensors."""
import json, os, shutil
from safetensors.numpy import load_file, save_file

src, dst = "weights/all-MiniLM-L6-v2", "weights/minilm-cls"
os.makedirs(dst, exist_ok=True)
cfg = json.load(open(f"{src}/config.json"))
cfg["architectures"] = ["BertForSequenceClassification"]
cfg["id2label"] = {"0": "negative", "1": "positive"}
cfg["label2id"] = {"negative": 0, "positive": 1}
json.dump(cfg, open(f"{dst}/config.json", "w"), indent=2)
shutil.copy(f"{src}/tokenizer.json", f"{dst}/tokenizer.json")
shutil.copy(f"{src}/tokenizer_config.json", f"{dst}/tokenizer_config.json")
shutil.copy(f"{src}/vocab.txt", f"{dst}/vocab.txt")
t = {("bert." + k if not k.startswith("classifier") else k): v for k, v in load_file(f"{src}/model.safetensors").items()}
t.update(load_file("tests/goldens/minilm-classifier.safetensors"))
save_file(t, f"{dst}/model.safetensors", metadata={"format": "pt"})
print("wrote", dst)
