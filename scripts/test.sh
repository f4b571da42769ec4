#!/usr/bin/env bash
# The test command. On a fresh Debian machine with Rust and pip it installs what the suite needs
# (Mesa's lavapipe Vulkan driver when no Vulkan/Metal/DX12 adapter is found; the default model
# through weights/fetch.sh, once) and runs every test on whatever adapter headroom picks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "scripts/test.sh: need root (or sudo) to run: $*" >&2; exit 2; fi
}

cargo build --release --bin headroom
if ! ./target/release/headroom info 2>/dev/null | grep -Eq '^chosen: .*\((Vulkan|Metal|Dx12),'; then
  echo "no Vulkan/Metal/DX12 adapter found: installing Mesa's lavapipe (mesa-vulkan-drivers)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi
./target/release/headroom info | grep -E '^(chosen|subgroup|kernel|enabled)'

./weights/fetch.sh

cargo test --release "$@"
# The transformers gradient goldens again with the tiled matmul kernels (the GPU path), so a
# CPU-only machine checks both variants of every training matmul.
if [[ $# -eq 0 ]]; then
  HEADROOM_MATMUL=tiled cargo test --release --test train --test gate_grads
fi
