#!/usr/bin/env bash
# One sitting of issue 15's CPU comparisons on this machine, each reference beside its
# headroom figure: numpy sgemm against the matmul benches, transformers against the model
# benches at B32 T128 (forward, forward + gate backward, one fine-tuning step), and
# transformers' head_mask.grad against `headroom score` on SST-2 dev. With BASE_HEADROOM and
# BASE_BENCH (a headroom binary and a criterion `kernels` bench binary from an earlier commit)
# every headroom figure is also taken for the baseline, alternating, for before/after ratios.
#
# usage: scripts/cpu-sitting.sh OUT_DIR
#   PYTHON    a python with numpy, torch and transformers 4.57.1 (default python3)
#   HEADROOM  the headroom binary (default target/release/headroom)
#   BENCH     the kernels bench binary (default: built by cargo bench --no-run)
#   DEV       the SST-2 dev TSV (default ../shared/data/sst2/dev.tsv)
# Needs weights/minilm-cls (python3 benches/make_minilm_classifier.py). Takes about 35 minutes
# with a baseline on 2 cores, 15 without. This host's noise is ±30 % and more: every headroom
# figure is taken twice, alternating with the baseline.
set -euo pipefail
out=${1:?usage: scripts/cpu-sitting.sh OUT_DIR}
PYTHON=${PYTHON:-python3}
HEADROOM=${HEADROOM:-target/release/headroom}
DEV=${DEV:-../shared/data/sst2/dev.tsv}
model=weights/minilm-cls
[ -f "$model/model.safetensors" ] || { echo "cpu-sitting: $model is missing: run benches/make_minilm_classifier.py" >&2; exit 2; }
[ -f "$DEV" ] || { echo "cpu-sitting: $DEV: no such file" >&2; exit 2; }
if [ -z "${BENCH:-}" ]; then
  BENCH=$(cargo bench --bench kernels --no-run 2>&1 | grep -o 'target/release/deps/kernels-[0-9a-f]*' | head -1)
fi
mkdir -p "$out"
log="$out/log.txt"
scratch=$(mktemp -d)  # score's outputs: only their timings go into the log
trap 'rm -rf "$scratch"' EXIT
: > "$log"
say() { echo "$*" | tee -a "$log"; }
stamp() { say "## $* ($(date -u +%H:%M:%S))"; }
# criterion's median time and throughput lines, one line per benchmark
bench() { # label binary filter
  local lines
  lines=$(HEADROOM_BENCH_SECS=${SECS:-4} "$2" --bench "$3" 2>&1 \
    | grep -E '^[a-z_]+/[^ ]*|time:|thrpt:' | grep -v '%' \
    | awk -v l="$1" '/^[a-z_]+\//{name=$1; if (NF>1 && $2=="time:") {t=$5" "$6}; next} /time:/{t=$4" "$5; next} /thrpt:/{print l, name, "median", t, "thrpt", $4, $5}' || true)
  # a bench binary skips the model benches when its checkout has no weights/minilm-cls
  [ -n "$lines" ] || { echo "cpu-sitting: $2 ran no benchmark matching $3" >&2; exit 2; }
  echo "$lines" | tee -a "$log"
}
score() { # label binary
  "$2" score --model "$model" --data "$DEV" --out "$scratch/score-$1" 2>&1 | grep 'scored in' \
    | sed "s|^|$1 headroom score: |" | tee -a "$log"
}
variants=(new)
[ -n "${BASE_HEADROOM:-}" ] && [ -n "${BASE_BENCH:-}" ] && variants=(base new)
bin_of() { if [ "$1" = base ]; then echo "$BASE_BENCH"; else echo "$BENCH"; fi; }
hr_of() { if [ "$1" = base ]; then echo "$BASE_HEADROOM"; else echo "$HEADROOM"; fi; }

stamp "host"; say "$(lscpu | grep 'Model name' | sed 's/  */ /g'), $(nproc) CPUs"
stamp "numpy sgemm (1)"; "$PYTHON" benches/numpy_sgemm.py | tee -a "$log"
for round in 1 2; do for v in "${variants[@]}"; do stamp "matmul round $round, $v"; bench "$v" "$(bin_of "$v")" matmul/; done; done
for round in 1 2; do for v in "${variants[@]}"; do stamp "attention round $round, $v"; bench "$v" "$(bin_of "$v")" "^attention"; done; done
stamp "numpy sgemm (2)"; "$PYTHON" benches/numpy_sgemm.py | tee -a "$log"
stamp "transformers at B32 T128 (1)"; "$PYTHON" benches/transformers_t128.py "$model" 2>&1 | grep -v -i warn | tee -a "$log"
for round in 1 2; do for v in "${variants[@]}"; do stamp "model at B32 T128 round $round, $v"; SECS=${MODEL_SECS:-20} bench "$v" "$(bin_of "$v")" model/minilm; done; done
stamp "transformers at B32 T128 (2)"; "$PYTHON" benches/transformers_t128.py "$model" 2>&1 | grep -v -i warn | tee -a "$log"
stamp "transformers head_mask.grad on $DEV (1)"; "$PYTHON" benches/transformers_importance.py "$model" "$DEV" 2>&1 | grep 'head_mask.grad' | tee -a "$log"
for round in 1 2; do for v in "${variants[@]}"; do stamp "score round $round, $v"; score "$v" "$(hr_of "$v")"; done; done
stamp "transformers head_mask.grad on $DEV (2)"; "$PYTHON" benches/transformers_importance.py "$model" "$DEV" 2>&1 | grep 'head_mask.grad' | tee -a "$log"
stamp "numpy sgemm (3)"; "$PYTHON" benches/numpy_sgemm.py | tee -a "$log"
stamp "done"
