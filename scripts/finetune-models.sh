#!/usr/bin/env bash
# Reproduces the task models recorded in BENCHMARKS.md: fine-tunes the default model
# (all-MiniLM-L6-v2) with headroom on SST-2 and on WikiANN-en, writing HF directories to
# weights/ (gitignored). Usage: scripts/finetune-models.sh [sst2|wikiann-en|all] [extra flags]
set -euo pipefail
cd "$(dirname "$0")/.."
which=${1:-all}
shift || true
DATA=${HEADROOM_DATA:-../shared/data}
./weights/fetch.sh >/dev/null
cargo build --release --quiet
BIN=${HEADROOM_BIN:-target/release/headroom}
if [[ $which == sst2 || $which == all ]]; then
  # the transformers recipe of the issue: 2 epochs, batch 32, AdamW lr 1e-4, 6% warm-up,
  # linear decay, max length 128
  "$BIN" finetune --model weights/all-MiniLM-L6-v2 --task seq-cls \
    --train "$DATA/sst2/train.tsv" --dev "$DATA/sst2/dev.tsv" --out weights/minilm-sst2 \
    --epochs 2 --batch-size 32 --lr 1e-4 --warmup 0.06 --max-len 128 --seed 42 --force "$@"
fi
if [[ $which == wikiann-en || $which == all ]]; then
  "$BIN" finetune --model weights/all-MiniLM-L6-v2 --task token-cls \
    --train "$DATA/wikiann/en/train.conll" --dev "$DATA/wikiann/en/dev.conll" \
    --out weights/minilm-wikiann-en \
    --epochs 2 --batch-size 32 --lr 1e-4 --warmup 0.06 --max-len 128 --seed 42 --force "$@"
fi
