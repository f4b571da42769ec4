#!/usr/bin/env bash
# Issue 13's experiments (Ma et al. 2021) on WikiANN en/de/fr/nl with a multilingual encoder
# (default: multilingual-e5-small from weights/fetch-e5.sh). One headroom command per step; each
# step's output lands under OUT and a step whose output exists is skipped, so a run can be
# resumed. Sizes are chosen so that the whole sequence fits a session on a 2-core lavapipe
# machine; change them through the environment.
#
#   scripts/cross-lingual.sh OUT [STEP ...]
#
# Steps (default: all, in this order):
#   data        subsets of ../shared/data/wikiann: TRAIN_N English training sentences; TRAIN_N/4
#               per language for the multilingual model; per language three disjoint dev splits:
#               "choose" (the first CHOOSE_N dev sentences: fine-tuning's epoch choice and the
#               trials' choice), "rank" (the next CHOOSE_N: head importance) and "report"
#               (REPORT_N sentences from sentence 5000: every reported figure)
#   finetune    the cross-lingual model (English only) and the multilingual model (all four),
#               --freeze-embeddings (the word table holds 96 M values)
#   eval        both models on every language's report split (entity F1)
#   score       the cross-lingual model's head importance on each language's rank split
#   compare     the 4 x 4 agreement of those importance maps (Spearman, Kendall, top-k)
#   trials      per target language (de, fr, nl), heads ranked on English (a) and on the target's
#               own rank split (b), pruned by --strategy trials (TRIALS heads pruned), chosen on
#               the target's choose split, and the chosen mask evaluated on its report split
#               against every head with a paired bootstrap over sentences
#
# Environment: HEADROOM (binary), HEADROOM_DATA (default ../shared/data), BASE (model
# directory), TRAIN_N (2000), CHOOSE_N (300), REPORT_N (600), TRIALS (12,24,36,48),
# EPOCHS (2), LR (2e-4), BATCH (16).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:?usage: scripts/cross-lingual.sh OUT [STEP ...]}
shift
steps=${*:-data finetune eval score compare trials}
bin=${HEADROOM:-target/release/headroom}
data=${HEADROOM_DATA:-../shared/data}/wikiann
base=${BASE:-weights/multilingual-e5-small}
train_n=${TRAIN_N:-2000}
choose_n=${CHOOSE_N:-300}
report_n=${REPORT_N:-600}
trials=${TRIALS:-12,24,36,48}
langs=(en de fr nl)
mkdir -p "$out"/data
source scripts/steps.sh

for s in $steps; do
  case $s in
  data)
    take "$data/en/train.conll" 0 "$train_n" >"$out/data/en-train.conll"
    : >"$out/data/multi-train.conll"
    for l in "${langs[@]}"; do
      take "$data/$l/train.conll" 0 $((train_n / 4)) >>"$out/data/multi-train.conll"
      take "$data/$l/dev.conll" 0 "$choose_n" >"$out/data/$l-choose.conll"
      take "$data/$l/dev.conll" "$choose_n" $((2 * choose_n)) >"$out/data/$l-rank.conll"
      take "$data/$l/dev.conll" 5000 $((5000 + report_n)) >"$out/data/$l-report.conll"
    done
    log "data: $(grep -c '^$' "$out/data/en-train.conll") English and $(grep -c '^$' "$out/data/multi-train.conll") multilingual training sentences; $choose_n choose, $choose_n rank and $report_n report sentences per language"
    ;;
  finetune)
    ft=(--task token-cls --epochs "${EPOCHS:-2}" --lr "${LR:-2e-4}" --batch-size "${BATCH:-16}"
      --freeze-embeddings --seed 42)
    step "$out/model-en" "$bin" finetune --model "$base" "${ft[@]}" \
      --train "$out/data/en-train.conll" --dev "$out/data/en-choose.conll" --out "$out/model-en"
    step "$out/model-multi" "$bin" finetune --model "$base" "${ft[@]}" \
      --train "$out/data/multi-train.conll" --dev "$out/data/en-choose.conll" --out "$out/model-multi"
    ;;
  eval)
    for m in en multi; do
      for l in "${langs[@]}"; do
        step "$out/eval/$m-$l.json" bash -c "mkdir -p '$out/eval' && '$bin' eval --model '$out/model-$m' --data '$out/data/$l-report.conll' >'$out/eval/$m-$l.json.tmp' && mv '$out/eval/$m-$l.json.tmp' '$out/eval/$m-$l.json'"
      done
    done
    ;;
  score)
    for l in "${langs[@]}"; do
      step "$out/score/$l" "$bin" score --model "$out/model-en" --data "$out/data/$l-rank.conll" \
        --out "$out/score/$l"
    done
    ;;
  compare)
    maps=()
    for l in "${langs[@]}"; do maps+=("$out/score/$l/report.json"); done
    step "$out/compare/agreement.json" "$bin" compare "${maps[@]}" --labels en,de,fr,nl \
      --out "$out/compare/agreement.json" --plot "$out/compare"
    ;;
  trials)
    for l in de fr nl; do
      for by in en "$l"; do
        dir=$out/trials/$l-ranked-on-$by
        step "$dir/curve.json" "$bin" prune --model "$out/model-en" --strategy trials \
          --trials "$trials" --score-data "$out/data/$by-rank.conll" \
          --eval-data "$out/data/$l-choose.conll" --out "$dir"
        step "$dir/report.json" bash -c "'$bin' eval --model '$out/model-en' --data '$out/data/$l-report.conll' --head-mask '$dir/mask.json' --paired-bootstrap 1000 >'$dir/report.json.tmp' && mv '$dir/report.json.tmp' '$dir/report.json'"
      done
    done
    ;;
  *)
    echo "unknown step $s" >&2
    exit 2
    ;;
  esac
done
