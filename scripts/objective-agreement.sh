#!/usr/bin/env bash
# Issue 14's agreement experiment (Chiang & Chen 2021): head importance under a pre-training-style
# objective against importance under downstream tasks after fine-tuning. One headroom command per
# step; a step whose output exists is skipped, so a run can be resumed. Sizes fit a session on a
# 2-core lavapipe machine; change them through the environment.
#
#   scripts/objective-agreement.sh OUT [STEP ...]
#
# Steps (default: all, in this order):
#   data      subsets of ../shared/data: SST2_N SST-2 training sentences, WIKI_N WikiANN-en
#             training sentences, DEV_N WikiANN-en dev sentences (SST-2 dev is used whole)
#   finetune  the default model fine-tuned on each subset (one epoch)
#   score     task importance of each fine-tuned model on its dev split; OBJECTIVE importance
#             of the pre-trained model on the same dev sentences (no labels read)
#   compare   the four maps against each other (Spearman and Kendall with bootstrap intervals,
#             top-k overlap, per-layer Spearman), with a heatmap
#   multilingual  (when MULTI_MODEL and MULTI_TASK_SCORE are set) contrastive importance of the
#             multilingual model on the parallel pairs (its kind of pre-training data), each
#             language's pairs scored separately, against the cross-lingual model's task
#             importance (scripts/cross-lingual.sh's score step)
#
# Environment: HEADROOM (binary), HEADROOM_DATA (default ../shared/data), BASE (default
# weights/all-MiniLM-L6-v2), OBJECTIVE (the pre-training objective: simcse, the default, or mlm
# for a *ForMaskedLM BASE such as roberta-base, or rtd for an ELECTRA discriminator), SST2_N
# (4000), WIKI_N (4000), DEV_N (1000), LR (1e-4), SEED (0), MULTI_MODEL, MULTI_TASK_SCORE (a
# score directory's report.json), MULTI_LANGS (de es zh ar hi).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:?usage: scripts/objective-agreement.sh OUT [STEP ...]}
shift
steps=${*:-data finetune score compare multilingual}
bin=${HEADROOM:-target/release/headroom}
data=${HEADROOM_DATA:-../shared/data}
base=${BASE:-weights/all-MiniLM-L6-v2}
sst2_n=${SST2_N:-4000}
wiki_n=${WIKI_N:-4000}
dev_n=${DEV_N:-1000}
seed=${SEED:-0}
objective=${OBJECTIVE:-simcse}
mkdir -p "$out"/data
source scripts/steps.sh

for s in $steps; do
  case $s in
  data)
    head -n $((sst2_n + 1)) "$data/sst2/train.tsv" >"$out/data/sst2-train.tsv"
    cp "$data/sst2/dev.tsv" "$out/data/sst2-dev.tsv"
    take "$data/wikiann/en/train.conll" 0 "$wiki_n" >"$out/data/wikiann-train.conll"
    take "$data/wikiann/en/dev.conll" 0 "$dev_n" >"$out/data/wikiann-dev.conll"
    log "data: $sst2_n SST-2 and $wiki_n WikiANN-en training sentences; SST-2 dev whole, $dev_n WikiANN-en dev sentences"
    ;;
  finetune)
    ft=(--epochs 1 --lr "${LR:-1e-4}" --seed 42)
    step "$out/model-sst2" "$bin" finetune --model "$base" --task seq-cls "${ft[@]}" \
      --train "$out/data/sst2-train.tsv" --dev "$out/data/sst2-dev.tsv" --out "$out/model-sst2"
    step "$out/model-wikiann" "$bin" finetune --model "$base" --task token-cls "${ft[@]}" \
      --train "$out/data/wikiann-train.conll" --dev "$out/data/wikiann-dev.conll" \
      --out "$out/model-wikiann"
    ;;
  score)
    step "$out/score/task-sst2" "$bin" score --model "$out/model-sst2" \
      --data "$out/data/sst2-dev.tsv" --out "$out/score/task-sst2"
    step "$out/score/task-wikiann" "$bin" score --model "$out/model-wikiann" \
      --data "$out/data/wikiann-dev.conll" --out "$out/score/task-wikiann"
    step "$out/score/$objective-sst2" "$bin" score --model "$base" --objective "$objective" \
      --mask-seed "$seed" --data "$out/data/sst2-dev.tsv" --out "$out/score/$objective-sst2"
    step "$out/score/$objective-wikiann" "$bin" score --model "$base" --objective "$objective" \
      --mask-seed "$seed" --data "$out/data/wikiann-dev.conll" \
      --out "$out/score/$objective-wikiann"
    ;;
  compare)
    labels=$objective-sst2,task-sst2,$objective-wikiann,task-wikiann
    maps=()
    for m in ${labels//,/ }; do
      maps+=("$out/score/$m/report.json")
    done
    step "$out/compare/agreement.json" "$bin" compare "${maps[@]}" --labels "$labels" \
      --out "$out/compare/agreement.json" --plot "$out/compare"
    ;;
  multilingual)
    if [ -z "${MULTI_MODEL:-}" ] || [ -z "${MULTI_TASK_SCORE:-}" ]; then
      log "multilingual: skipped (set MULTI_MODEL and MULTI_TASK_SCORE)"
      continue
    fi
    maps=("$MULTI_TASK_SCORE")
    labels=task-wikiann
    for l in ${MULTI_LANGS:-de es zh ar hi}; do
      step "$out/score/contrastive-en-$l" "$bin" score --model "$MULTI_MODEL" \
        --objective contrastive --mask-seed "$seed" --data "$data/parallel/en-$l.tsv" \
        --out "$out/score/contrastive-en-$l"
      maps+=("$out/score/contrastive-en-$l/report.json")
      labels+=",contrastive-en-$l"
    done
    plot=()
    if [ ${#maps[@]} -ge 3 ]; then plot=(--plot "$out/compare-multilingual"); fi
    mkdir -p "$out/compare-multilingual"
    step "$out/compare-multilingual/agreement.json" "$bin" compare "${maps[@]}" \
      --labels "$labels" --out "$out/compare-multilingual/agreement.json" "${plot[@]}"
    ;;
  *)
    echo "unknown step $s" >&2
    exit 2
    ;;
  esac
done
