#!/usr/bin/env bash
# Every GPU measurement in one command, for the few minutes a lent GPU machine gives (issue 15).
#
#   scripts/gpu-bench.sh prepare        # here: build, pack binaries, loaders and wheels into .gpu/
#   scripts/gpu-bench.sh run [--quick | --families] [--out DIR]
#
# `run` works where it is started: on the GPU machine (no Rust there: it unpacks .gpu/) or on
# this machine (lavapipe; `--quick` shrinks every size so it finishes in minutes). Steps, each
# logged under DIR and none stopping the others:
#   1. headroom info: the adapter and the kernel variants chosen for it; headroom selftest
#      --every-variant: every kernel variant against the CPU oracle;
#   2. correctness: the kernel, backward, optimizer, training, gate-gradient and parity test
#      binaries (CPU f64 oracles, finite differences, transformers goldens) on this adapter;
#      the tests that need the default model's weights are skipped (they do not travel);
#   3. headroom bench --shape minilm and --shape base (dense / skip / compact head pruning);
#   4. the criterion benches: matmul at BERT-base shapes, attention forward and backward (every
#      variant), and forward / forward + gate backward / fine-tuning step of random minilm- and
#      base-shaped classifiers;
#   5. benches/torch_gpu.py (with $PYTHON, default python3): transformers 4.57 eager (head_mask)
#      and SDPA float32, same shapes, and torch's own matmul and SDPA at the kernels' shapes;
#   6. GPU time per kernel of a base-shaped forward and forward + gate backward (--profile);
#   7. benches/gpu_bench_report.py: summary.json and table.md (printed last).
# `--families` (issue 12) runs steps 1 and 2 with the model-family and pre-training tests, then
# headroom bench on every family's base shape, and prints their table instead.
# DIR defaults to $OUT (the device tool's folder) or results/gpu-bench/local.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
pack=.gpu
tests=(kernels backward optimizer train gate_grads parity batching pruned families pretraining)

# The executable cargo builds for a test or bench target: artifact test --release --test kernels
artifact() {
  cargo "$@" --no-run --message-format=json 2>/dev/null | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable"): print(m["executable"])' |
    tail -n 1
}

# Builds headroom, the test binaries and the criterion bench, and puts them into DIR with CMD
# (cp or ln -sf).
collect() {
  local dest=$1 cmd=$2 exe
  cargo build --release --bin headroom --quiet || return 1
  mkdir -p "$dest"
  $cmd "$root/target/release/headroom" "$dest/headroom"
  for t in "${tests[@]}"; do
    exe=$(artifact test --release --test "$t")
    [ -n "$exe" ] || { echo "no test binary for $t" >&2; return 1; }
    $cmd "$exe" "$dest/test-$t"
  done
  exe=$(artifact bench --bench kernels)
  [ -n "$exe" ] || { echo "no bench binary" >&2; return 1; }
  $cmd "$exe" "$dest/bench-kernels"
}

prepare() {
  set -e
  rm -rf "$pack/bin"
  collect "$pack/bin" cp
  strip "$pack"/bin/*
  # the test binaries find fixtures and goldens under the path they were built in
  echo "$root" >"$pack/manifest_dir"
  tar -C "$pack" -cJf "$pack/bin.tar.xz" bin
  rm -rf "$pack/bin"
  # the Vulkan loader for the GPU machine, and transformers 4.57.1 (the last with head_mask) with
  # the hub and tokenizers versions it accepts (the machine has transformers 5)
  if [ ! -d .gl ]; then
    mkdir -p .gl /tmp/amd64/partial
    local o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
    apt-get $o update -qq
    (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  fi
  if [ ! -d .whl ]; then
    local p="--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
    for w in transformers==4.57.1 'huggingface_hub<1.0' tokenizers==0.22.1; do
      python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp $p -d .whl "$w"
    done
  fi
  du -sh "$pack" .gl .whl
  echo 'device run: carry [".gpu", ".gl", ".whl"], command: bash scripts/gpu-bench.sh run'
}

# Runs one step with a time limit; its output goes to DIR/NAME.log, its status to DIR/steps.tsv.
step() {
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  echo "== $name"
  timeout "$limit" "$@" >"$dir/$name.log" 2>&1
  local rc=$?
  printf '%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t0))" >>"$dir/steps.tsv"
  tail -n 3 "$dir/$name.log"
  echo "   ($name: exit $rc, $((SECONDS - t0)) s)"
}

run() {
  local quick=0 families=0
  dir=${OUT:-results/gpu-bench/local}
  while [ $# -gt 0 ]; do
    case $1 in
      --quick) quick=1 ;;
      --families) families=1 ;;
      --out) dir=$2; shift ;;
      *) echo "scripts/gpu-bench.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
  done
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  : >"$dir/steps.tsv"

  # the Vulkan loader, where the machine has none
  if ! ldconfig -p | grep -q libvulkan.so.1 && [ -d .gl ]; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  fi
  if [ -d /usr/local/nvidia/share/vulkan/icd.d ] && [ -z "${VK_DRIVER_FILES:-}" ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  fi
  # binaries: packed ones (GPU machine), else this checkout's build
  local bin
  if [ -f "$pack/bin.tar.xz" ]; then
    python3 -c 'import tarfile,sys; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$pack/bin.tar.xz" /tmp/headroom-gpu
    bin=/tmp/headroom-gpu/bin
    local built
    built=$(cat "$pack/manifest_dir")
    if [ "$built" != "$root" ] && [ ! -e "$built" ]; then
      mkdir -p "$(dirname "$built")" && ln -s "$root" "$built"
    fi
    # tests that run the CLI look for it where cargo built it
    if [ ! -e "$built/target/release/headroom" ]; then
      mkdir -p "$built/target/release" && cp "$bin/headroom" "$built/target/release/headroom"
    fi
  else
    collect "$pack/local" "ln -sf" || exit 2
    bin=$pack/local
  fi
  # transformers 4.57.1 for the torch reference, where wheels travelled
  local pypath=${PYTHONPATH:-}
  if [ -d .whl ] && ! python3 -c 'import transformers as t, sys; sys.exit(not t.__version__.startswith("4.57"))' 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl && pypath=/tmp/site${pypath:+:$pypath}
  fi

  step info 60 "$bin/headroom" info
  grep -E '^(chosen|subgroup|kernel|enabled)' "$dir/info.log"
  # every kernel variant the adapter can run against the CPU oracle, first
  step selftest 120 "$bin/headroom" selftest --every-variant --json "$dir/selftest.json"
  # the tests that load the default model (its weights stay behind)
  local skip=(--skip default_model --skip minilm --skip skipping_gated_out_heads
    --skip exported_checkpoints --skip sentence_transformers_directories)
  for t in "${tests[@]}"; do
    step "test-$t" 180 "$bin/test-$t" "${skip[@]}"
  done
  local py=(env PYTHONPATH="$pypath" "${PYTHON:-python3}" benches/torch_gpu.py)
  if [ $families = 1 ]; then
    local shape
    for shape in base roberta-base distilbert-base electra-base albert-base mpnet-base; do
      step "bench-$shape" 120 "$bin/headroom" bench --shape "$shape" --iters 5 \
        --out "$dir/bench-$shape.json"
    done
    python3 benches/family_bench_table.py "$dir"
    return
  fi
  if [ $quick = 1 ]; then
    step bench-minilm 600 "$bin/headroom" bench --shape minilm --batch 8 --seq 64 --pruned 0,0.5 \
      --iters 1 --out "$dir/bench-minilm.json"
    HEADROOM_BENCH_SECS=0.5 step criterion 900 "$bin/bench-kernels" --bench --output-format bencher 'matmul|attention/'
    step torch 600 "${py[@]}" --shapes minilm --batch 8 --seq 64 --iters 3 --out "$dir/torch.json"
  else
    # most wanted first, so that a run cut short still brings back the comparisons
    step bench-base 180 "$bin/headroom" bench --shape base --iters 10 --out "$dir/bench-base.json"
    HEADROOM_BENCH_SECS=2 HEADROOM_BENCH_RANDOM=minilm,base \
      step criterion-model 180 "$bin/bench-kernels" --bench --output-format bencher 'model/'
    step torch 240 "${py[@]}" --out "$dir/torch.json"
    step bench-minilm 120 "$bin/headroom" bench --shape minilm --iters 10 --out "$dir/bench-minilm.json"
    HEADROOM_BENCH_SECS=2 HEADROOM_BENCH_ALL=1 step criterion 180 "$bin/bench-kernels" --bench \
      --output-format bencher '^(matmul|attention|attention_backward)/'
    # where the time goes: GPU time per kernel (timestamp queries) of a forward and of a
    # forward + gate backward of the base shape
    step profile-forward 120 "$bin/headroom" bench --shape base --pruned 0 --mode dense --iters 5 \
      --profile
    HEADROOM_BENCH_SECS=1 HEADROOM_BENCH_RANDOM=base HEADROOM_BENCH_PROFILE=1 \
      step profile-gate-backward 120 "$bin/bench-kernels" --bench --output-format bencher \
      'model/random_base_forward_gate_backward'
  fi
  python3 benches/gpu_bench_report.py "$dir"
}

case ${1:-} in
  prepare) prepare ;;
  run) shift; run "$@" ;;
  *) echo "usage: scripts/gpu-bench.sh prepare | run [--quick] [--out DIR]" >&2; exit 2 ;;
esac
