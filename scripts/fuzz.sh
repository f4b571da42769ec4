#!/usr/bin/env bash
# Runs the parsers' random tests (tests/fuzz.rs) for a set time: every parser (TSV, labelled
# TSV, CoNLL, CoNLL-U, head masks as JSON and npy, config.json, safetensors, tokenizer.json,
# shard files, --shard) on mutated valid inputs, which must give Ok or a clean error, never a
# panic. Prints the cases tried per parser; an input that panicked is kept under
# target/tmp/fuzz-failures/.
#
# usage: scripts/fuzz.sh [SECONDS [SEED]]   (default 600 s, seed from the clock)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs=${1:-600}
seed=${2:-$(date +%s)}
HEADROOM_FUZZ_SECS=$secs HEADROOM_FUZZ_SEED=$seed \
  cargo test --release --test fuzz -- --nocapture 2>&1 | grep -vE '^\s*(Compiling|Finished|Running)'
