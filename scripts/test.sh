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
fi
