#!/usr/bin/env bash
# What test.sh and demo.sh need, on a fresh Debian machine with Rust and pip: builds the release
# binary, installs Mesa's lavapipe (mesa-vulkan-drivers, libvulkan1) when `headroom info` finds no
# Vulkan/Metal/DX12 adapter, and fetches the default model once (weights/fetch.sh).
# Run it alone (./scripts/setup.sh) or source it: it then leaves HEADROOM set to the binary
# (under $CARGO_TARGET_DIR when that is set) and the working directory at the repository root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "scripts/setup.sh: need root (or sudo) to run: $*" >&2; exit 2; fi
}

cargo build --release --bin headroom
HEADROOM="${CARGO_TARGET_DIR:-target}/release/headroom"
case "$HEADROOM" in /*) ;; *) HEADROOM="$PWD/$HEADROOM" ;; esac
export HEADROOM

has_adapter() {
  "$HEADROOM" info 2>/dev/null | grep -E '^chosen: .*\((Vulkan|Metal|Dx12),' >/dev/null
}
if ! has_adapter; then
  echo "no Vulkan/Metal/DX12 adapter found: installing Mesa's lavapipe (mesa-vulkan-drivers)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
  has_adapter || echo "scripts/setup.sh: still no Vulkan/Metal/DX12 adapter; headroom will use what it finds" >&2
fi
"$HEADROOM" info | grep -E '^(chosen|subgroup|kernel|enabled)'

./weights/fetch.sh
