#!/usr/bin/env bash
# Issue 11's comparison of pruning methods at equal head budgets: fine-tunes the default model
# (the README's recipe, as scripts/finetune-models.sh) on SST-2 or WikiANN-en, then prunes it
# with Michel et al.'s one-shot and iterative ranking, random masks, pipelined DSP (per-example
# and per-batch samples), DSP-STE and hard-concrete gates, all learned or scored on the same
# fixed subset of the training split and evaluated on dev, and writes summary.md /
# summary.json (benches/learned_summary.py).
#
#   scripts/learned-experiments.sh OUT [--quick]
#
# Environment:
# - HEADROOM: the binary (default target/release/headroom);
# - HEADROOM_DATA: the data folder (default ../shared/data);
# - HEADROOM_BASE_MODEL: the model fine-tuned (default weights/all-MiniLM-L6-v2);
# - TASK: sst2 or wikiann-en (default sst2);
# - SCORE_N: training sentences used for scoring and learning (default 2000);
# - DEV_N: dev sentences evaluated (default all);
# - FT_EPOCHS: fine-tuning epochs (default 2); DSP_EPOCHS: learned-gate epochs (default 3);
# - JOINT_SEEDS: seeds of the joint runs (default 0,1,2);
# - STEPS: the steps to run, space-separated. Default: finetune michel-oneshot dsp-per-example
#   random dsp-per-batch dsp-ste michel-iterative dsp-curve hard-concrete. Also available:
#   random24 (random masks at K = 24 alone, cheaper than random's whole curves), and
#   finetune-subset and dsp-joint (joint DSP at K = 24 from the base model on the subset,
#   against a plain fine-tuning on the same subset).
# --quick: a smoke run (few sentences, one fine-tuning step) to check the script end to end.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:?usage: scripts/learned-experiments.sh OUT [--quick]}
quick=${2:-}
bin=${HEADROOM:-target/release/headroom}
data=${HEADROOM_DATA:-../shared/data}
base=${HEADROOM_BASE_MODEL:-weights/all-MiniLM-L6-v2}
task=${TASK:-sst2}
n=${SCORE_N:-2000}
dev_n=${DEV_N:-}
epochs=${DSP_EPOCHS:-3}
ft=(--epochs "${FT_EPOCHS:-2}")
steps=${STEPS:-finetune michel-oneshot dsp-per-example random dsp-per-batch dsp-ste michel-iterative dsp-curve hard-concrete}
if [ "$quick" = --quick ]; then
  n=40 dev_n=40 epochs=1 ft=(--epochs 1 --max-steps 2)
fi
case $task in
  sst2) train="$data/sst2/train.tsv" dev="$data/sst2/dev.tsv" kind=seq-cls ext=tsv ;;
  wikiann-en)
    train="$data/wikiann/en/train.conll" dev="$data/wikiann/en/dev.conll" kind=token-cls
    ext=conll
    ;;
  *) echo "TASK must be sst2 or wikiann-en, not $task" >&2 && exit 2 ;;
esac
mkdir -p "$out"
: >>"$out/steps.tsv"

# The first N sentences of a split: TSV lines after the header, or blank-line-separated CoNLL
# sentences.
first() {
  if [ "$ext" = tsv ]; then
    head -n $(($2 + 1)) "$1"
  else
    awk -v n="$2" 'BEGIN { RS = ""; ORS = "\n\n" } NR <= n' "$1"
  fi
}
first "$train" "$n" >"$out/score.$ext"
if [ -n "$dev_n" ]; then
  first "$dev" "$dev_n" >"$out/dev.$ext"
  dev="$out/dev.$ext"
fi

# Runs one step with its output in OUT/NAME.log and its status in OUT/steps.tsv, if STEPS
# names it.
step() {
  local name=$1 t0=$SECONDS
  shift
  [[ " $steps " == *" ${name%%-[0-9]} "* || " $steps " == *" $name "* ]] || return 0
  echo "== $name"
  "$@" >"$out/$name.log" 2>&1
  local rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t0))" >>"$out/steps.tsv"
  tail -n 2 "$out/$name.log"
  echo "   ($name: exit $rc, $((SECONDS - t0)) s)"
}

model="$out/minilm-$task"
step finetune "$bin" finetune --model "$base" --task "$kind" --train "$train" \
  --dev "$dev" --out "$model" "${ft[@]}" --batch-size 32 --lr 1e-4 --warmup 0.06 --max-len 128 \
  --seed 42 --force

# 6 of 72 heads per step: the curves pass through 48, 36, 24 and 12 heads kept
prune=("$bin" prune --model "$model" --score-data "$out/score.$ext" --eval-data "$dev"
  --keep 0.01)
step michel-oneshot "${prune[@]}" --strategy oneshot --step 0.0834 --out "$out/michel-oneshot"
step dsp-per-example "${prune[@]}" --strategy dsp --heads 24 --seeds 0,1,2 --epochs "$epochs" \
  --out "$out/dsp-per-example"
for s in 0 1 2; do
  step "random-$s" "${prune[@]}" --strategy oneshot --importance random --seed "$s" \
    --step 0.0834 --out "$out/random-$s"
done
# random masks at K = 24 alone (one evaluation each instead of a whole curve)
for s in 0 1 2; do
  step "random24-$s" "${prune[@]}" --strategy trials --trials 48 --importance random --seed "$s" \
    --out "$out/random24-$s"
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
# joint DSP from the base model (its new head drawn from each seed) against a fine-tuning of
# the base model on the same subset for as many epochs
step finetune-subset "$bin" finetune --model "$base" --task "$kind" --train "$out/score.$ext" \
  --dev "$dev" --out "$out/minilm-subset" --epochs "$epochs" --batch-size 32 --lr 1e-4 \
  --warmup 0.06 --max-len 128 --seed 0 --force
step dsp-joint "$bin" prune --model "$base" --task "$kind" --score-data "$out/score.$ext" \
  --eval-data "$dev" --keep 0.01 --strategy dsp --joint --heads 24 --seeds "${JOINT_SEEDS:-0,1,2}" \
  --epochs "$epochs" --weight-lr 1e-4 --warmup 0.06 --out "$out/dsp-joint"
python3 benches/learned_summary.py "$out"
