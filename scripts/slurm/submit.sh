#!/usr/bin/env bash
# Sharded `headroom score` on Slurm: a job array of N shards, then a merge that runs when every
# shard succeeded. Prints the two job ids (array, merge).
#
# usage: scripts/slurm/submit.sh N MODEL DATA SHARDS OUT [-- SBATCH_OPTIONS...]
#   SCORE_ARGS  more `score` options for every shard (e.g. "--batch-size 32 --bootstrap 1000")
#   HEADROOM    the headroom binary every node runs (default: headroom on PATH)
# Example: SCORE_ARGS="--bootstrap 200" scripts/slurm/submit.sh 16 weights/minilm-sst2 \
#            big.tsv /shared/shards /shared/scores -- --partition=gpu --gres=gpu:1
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 5 ] || { sed -n '4,9p' "${BASH_SOURCE[0]}" >&2; exit 2; }
n=$1 model=$2 data=$3 shards=$4 out=$5
shift 5
[ "${1:-}" = -- ] && shift
case "$n" in ''|*[!0-9]*|0) echo "submit.sh: N must be a positive integer, not $n" >&2; exit 2 ;; esac
mkdir -p "$shards"
export HEADROOM=${HEADROOM:-headroom} MODEL=$model DATA=$data SHARDS=$shards OUT=$out COUNT=$n
export SCORE_ARGS=${SCORE_ARGS:-}
array=$(sbatch --parsable --array=0-$((n - 1)) --export=ALL -o "$shards/slurm-%A_%a.out" "$@" \
  "$here/score-array.sbatch")
array=${array%%;*}
merge=$(sbatch --parsable --dependency=afterok:"$array" --export=ALL -o "$shards/slurm-merge-%j.out" \
  "$@" "$here/merge.sbatch")
echo "$array ${merge%%;*}"
