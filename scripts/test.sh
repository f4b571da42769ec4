#!/usr/bin/env bash
# The test command. On a fresh Debian machine with Rust and pip, scripts/setup.sh installs what
# the suite needs (Mesa's lavapipe Vulkan driver when no Vulkan/Metal/DX12 adapter is found; the
# default model through weights/fetch.sh, once); then every test runs on whatever adapter
# headroom picks. Tests read ../shared/data when it is beside the checkout, else the samples in
# data/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh

cargo test --release "$@"
# The transformers gradient goldens again with the tiled matmul kernels (the GPU path), so a
# CPU-only machine checks both variants of every training matmul.
if [[ $# -eq 0 ]]; then
  HEADROOM_MATMUL=tiled cargo test --release --test train --test gate_grads --test families
  # sharded scoring on a real single-node Slurm cluster (exit 3: none can run here, said why)
  rc=0
  scripts/slurm/local-cluster-test.sh || rc=$?
  if [[ $rc -eq 3 ]]; then
    echo "scripts/test.sh: WARNING: the Slurm test could not bring up a cluster here (above)" >&2
  elif [[ $rc -ne 0 ]]; then
    exit "$rc"
  fi
fi
