#!/usr/bin/env bash
# Issue 14's pruning experiment: prune the default model before fine-tuning (by its
# pre-training-style importance, or at random) or after it (by task importance, with and without
# fine-tuning again), on SST-2. One headroom command per step; a step whose output exists is
# skipped, so a run can be resumed. Sizes fit a session on a 2-core lavapipe machine; change them
# through the environment.
#
#   scripts/prune-before-after.sh OUT [STEP ...]
#
# Steps (default: all, in this order):
#   data      TRAIN_N SST-2 training sentences to fine-tune on; the next SCORE_N to rank heads
#             on; the next CHECK_N as the unlabelled text the simcse masks are judged on; SST-2
#             dev whole, for every reported accuracy
#   before    masks of the pre-trained model at each budget K (heads kept): (a) by simcse
#             importance on the score sentences, and random ones (one per seed); each exported
#             as a physically pruned checkpoint
#   full      the unpruned model fine-tuned once per seed (the reference)
#   after     (b) each fine-tuned model pruned to K heads by task importance on the score
#             sentences, with no retraining (its dev accuracy is in curve.json), and exported
#   finetune  (a) and random: the pruned pre-trained checkpoints fine-tuned; (c) the exports of
#             (b) fine-tuned again; seed by seed, so that a run cut short has whole seeds; then
#             the unpruned models fine-tuned again too, (c)'s control for its second epoch
#   summary   results table (scripts/prune-before-after-summary.py)
#
# Every fine-tuning is one epoch over the same TRAIN_N sentences at batch 32 and lr LR; seed s
# sets the new classifier head, the data order and the dropout.
#
# Environment: HEADROOM (binary), HEADROOM_DATA (default ../shared/data), BASE (default
# weights/all-MiniLM-L6-v2), TRAIN_N (1000), SCORE_N (256), CHECK_N (128), BUDGETS ("36 24"),
# SEEDS ("1 2"), LR (1e-4), MASK_SEED (0).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:?usage: scripts/prune-before-after.sh OUT [STEP ...]}
shift
steps=${*:-data before full after finetune summary}
bin=${HEADROOM:-target/release/headroom}
data=${HEADROOM_DATA:-../shared/data}
base=${BASE:-weights/all-MiniLM-L6-v2}
train_n=${TRAIN_N:-1000}
score_n=${SCORE_N:-256}
check_n=${CHECK_N:-128}
budgets=${BUDGETS:-36 24}
seeds=${SEEDS:-1 2}
mkdir -p "$out"/data
source scripts/steps.sh

train=$out/data/train.tsv
score=$out/data/score.tsv
check=$out/data/check.tsv
dev=$out/data/dev.tsv
# fine-tune FROM into OUT with seed SEED
finetune() {
  step "$2" "$bin" finetune --model "$1" --task seq-cls --epochs 1 --lr "${LR:-1e-4}" \
    --seed "$3" --train "$train" --dev "$dev" --out "$2"
}
# one-shot pruning in a single step down to K heads; every mask is evaluated twice (all heads,
# K heads)
prune_to() {
  local k=$1 dir=$2
  shift 2
  step "$dir" "$bin" prune --strategy oneshot --heads "$k" --step 1 --out "$dir" \
    --export "$dir/model" "$@"
}

for s in $steps; do
  case $s in
  data)
    rows() { tail -n +2 "$data/sst2/train.tsv" | sed -n "$1,$2p"; }
    header=$(head -n 1 "$data/sst2/train.tsv")
    { echo "$header"; rows 1 "$train_n"; } >"$train"
    { echo "$header"; rows $((train_n + 1)) $((train_n + score_n)); } >"$score"
    { echo "$header"; rows $((train_n + score_n + 1)) $((train_n + score_n + check_n)); } >"$check"
    cp "$data/sst2/dev.tsv" "$dev"
    log "data: $train_n SST-2 training sentences to fine-tune on, the next $score_n to rank heads on, the next $check_n to judge simcse masks on; SST-2 dev whole"
    ;;
  before)
    for k in $budgets; do
      prune_to "$k" "$out/a-$k/prune" --model "$base" --objective simcse \
        --mask-seed "${MASK_SEED:-0}" --score-data "$score" --eval-data "$check"
      for seed in $seeds; do
        prune_to "$k" "$out/random-$k-$seed/prune" --model "$base" --objective simcse \
          --importance random --seed "$seed" --score-data "$score" --eval-data "$check"
      done
    done
    ;;
  full)
    for seed in $seeds; do finetune "$base" "$out/full-$seed" "$seed"; done
    ;;
  after)
    for seed in $seeds; do
      for k in $budgets; do
        prune_to "$k" "$out/b-$k-$seed/prune" --model "$out/full-$seed" \
          --score-data "$score" --eval-data "$dev"
      done
    done
    ;;
  finetune)
    for seed in $seeds; do
      for k in $budgets; do
        finetune "$out/a-$k/prune/model" "$out/a-$k-$seed" "$seed"
        finetune "$out/random-$k-$seed/prune/model" "$out/random-$k-$seed/model" "$seed"
        finetune "$out/b-$k-$seed/prune/model" "$out/c-$k-$seed" "$seed"
      done
    done
    for seed in $seeds; do finetune "$out/full-$seed" "$out/full-again-$seed" "$seed"; done
    ;;
  summary)
    python3 scripts/prune-before-after-summary.py "$out" >"$out/summary.md"
    log "summary: $out/summary.md"
    ;;
  *)
    echo "unknown step $s" >&2
    exit 2
    ;;
  esac
done
