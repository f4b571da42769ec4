#!/usr/bin/env python3
"""Same-sitting PyTorch reference for `headroom bench --shape S` on every family's base shape
(scripts/gpu-bench.sh run --families-torch): a random sequence classifier of each family built by
transformers 4.57.1 (the configs of scripts/family-throughput.py), 32 examples of 128 random
tokens, float32 with TF32 off (the arithmetic headroom's kernels do), on CUDA when there is one.
Times the no-grad forward with eager and with SDPA attention: medians of N synchronised runs
after warm-up. Usage: torch_families_gpu.py [--iters N] [--out FILE.json]"""
import argparse
import json
import statistics
import sys
import time

import torch
import transformers
from transformers import AutoModelForSequenceClassification

SHAPES = [
    ("base", transformers.BertConfig, {}),
    ("roberta-base", transformers.RobertaConfig, {"type_vocab_size": 1}),
    ("distilbert-base", transformers.DistilBertConfig, {}),
    ("electra-base", transformers.ElectraConfig, {"embedding_size": 768}),
    ("albert-base", transformers.AlbertConfig,
     {"embedding_size": 128, "num_hidden_groups": 1, "hidden_act": "gelu_new"}),
    ("mpnet-base", transformers.MPNetConfig, {}),
]


def config(cls, extra, impl):
    if cls is transformers.DistilBertConfig:
        kw = dict(dim=768, n_layers=6, n_heads=12, hidden_dim=3072)
    else:
        kw = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                  intermediate_size=3072)
    kw.update(extra)
    return cls(vocab_size=30522, max_position_embeddings=514, pad_token_id=0, num_labels=2,
               attn_implementation=impl, **kw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--out")
    a = ap.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    ids = torch.randint(1000, 30000, (32, 128), device=dev)
    report = {"device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
              "torch": torch.__version__, "transformers": transformers.__version__, "rows": []}
    print(report, flush=True)
    for name, cls, extra in SHAPES:
        row = {"shape": name}
        for impl in ["eager", "sdpa"]:
            try:
                model = AutoModelForSequenceClassification.from_config(config(cls, extra, impl))
            except ValueError:  # ELECTRA has no SDPA path in transformers 4.57
                row[f"{impl}_ms"] = None
                continue
            model = model.to(dev).eval()

            def run():
                if dev.type == "cuda":
                    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    s.record()
                    with torch.no_grad():
                        model(input_ids=ids)
                    e.record()
                    torch.cuda.synchronize()
                    return s.elapsed_time(e)
                t0 = time.perf_counter()
                with torch.no_grad():
                    model(input_ids=ids)
                return (time.perf_counter() - t0) * 1e3

            for _ in range(3):
                run()
            row[f"{impl}_ms"] = statistics.median(run() for _ in range(a.iters))
            del model
        report["rows"].append(row)
        print(json.dumps(row), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
