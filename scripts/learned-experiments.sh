#!/usr/bin/env bash
# Issue 11's comparison of pruning methods at equal head budgets on SST-2: fine-tunes the
# default model (the README's recipe, as scripts/finetune-models.sh), then prunes it with
# Michel et al.'s one-shot and iterative ranking, random masks, pipelined DSP (per-example and
# per-batch samples), DSP-STE and hard-concrete gates, all learned or scored on the same fixed
# subset of SST-2 train and evaluated on SST-2 dev, and writes summary.md / summary.json
# (benches/learned_summary.py).
#
#   scripts/learned-experiments.sh OUT [--quick]
#
# Environment: HEADROOM (the binary; default target/release/headroom), HEADROOM_DATA (default
# ../shared/data), HEADROOM_BASE_MODEL (default weights/all-MiniLM-L6-v2), SCORE_N (sentences
# of train used for scoring and learning; default 2000), DSP_EPOCHS (default 3).
# --quick: a smoke run (few sentences, one fine-tuning step) to check the script end to end.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:?usage: scripts/learned-experiments.sh OUT [--quick]}
quick=${2:-}
bin=${HEADROOM:-target/release/headroom}
data=${HEADROOM_DATA:-../shared/data}
base=${HEADROOM_BASE_MODEL:-weights/all-MiniLM-L6-v2}
n=${SCORE_N:-2000}
epochs=${DSP_EPOCHS:-3}
ft=(--epochs 2)
if [ "$quick" = --quick ]; then
  n=40 epochs=1 ft=(--epochs 1 --max-steps 2)
fi
mkdir -p "$out"
: >"$out/steps.tsv"
head -n $((n + 1)) "$data/sst2/train.tsv" >"$out/score.tsv"
dev="$data/sst2/dev.tsv"
if [ "$quick" = --quick ]; then
  head -n 41 "$dev" >"$out/dev.tsv"
  dev="$out/dev.tsv"
fi

# Runs one step with its output in OUT/NAME.log and its status in OUT/steps.tsv.
step() {
  local name=$1 t0=$SECONDS
  shift
  echo "== $name"
  "$@" >"$out/$name.log" 2>&1
  local rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t0))" >>"$out/steps.tsv"
  tail -n 2 "$out/$name.log"
  echo "   ($name: exit $rc, $((SECONDS - t0)) s)"
}

model="$out/minilm-sst2"
step finetune "$bin" finetune --model "$base" --task seq-cls --train "$data/sst2/train.tsv" \
  --dev "$dev" --out "$model" "${ft[@]}" --batch-size 32 --lr 1e-4 --warmup 0.06 --max-len 128 \
  --seed 42 --force

# 6 of 72 heads per step: the curves pass through 48, 36, 24 and 12 heads kept
prune=("$bin" prune --model "$model" --score-data "$out/score.tsv" --eval-data "$dev"
  --keep 0.01)
step michel-oneshot "${prune[@]}" --strategy oneshot --step 0.0834 --out "$out/michel-oneshot"
step dsp-per-example "${prune[@]}" --strategy dsp --heads 24 --seeds 0,1,2 --epochs "$epochs" \
  --out "$out/dsp-per-example"
for s in 0 1 2; do
  step "random-$s" "${prune[@]}" --strategy oneshot --importance random --seed "$s" \
    --step 0.0834 --out "$out/random-$s"
done
step dsp-per-batch "${prune[@]}" --strategy dsp --heads 24 --seeds 0,1,2 --epochs "$epochs" \
  --samples per-batch --out "$out/dsp-per-batch"
step dsp-ste "${prune[@]}" --strategy dsp-ste --heads 24 --seeds 0,1,2 --epochs "$epochs" \
  --out "$out/dsp-ste"
step michel-iterative "${prune[@]}" --strategy iterative --step 0.0834 --out "$out/michel-iterative"
step dsp-curve "${prune[@]}" --strategy dsp --heads 12,36,48 --seeds 0 --epochs "$epochs" \
  --out "$out/dsp-curve"
step hard-concrete "${prune[@]}" --strategy hard-concrete --l0-lambda 0.001,0.01,0.1,1 \
  --seeds 0 --epochs "$epochs" --lr 0.1 --out "$out/hard-concrete"
python3 benches/learned_summary.py "$out"
