#!/usr/bin/env bash
# The main command: what headroom is for, on the default model (all-MiniLM-L6-v2) and the
# samples shipped in data/, in a minute or two after the build on a 2-core CPU (lavapipe).
#   1. headroom roles on UD English-EWT sentences: what each attention head does;
#   2. headroom bench: what skipping pruned heads buys, against the FLOP ideal;
#   3. headroom forward --profile over SST-2 sentences: a profiled forward pass.
# scripts/setup.sh first builds the binary, installs lavapipe if no Vulkan/Metal/DX12 adapter is
# found and fetches the model. Full outputs go to demo/ (HEADROOM_DEMO_OUT); HEADROOM_DATA names
# another data folder of the same layout (e.g. ../shared/data) to run on the full sets.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh

DATA="${HEADROOM_DATA:-data}"
OUT="${HEADROOM_DEMO_OUT:-demo}"
MODEL=weights/all-MiniLM-L6-v2
EWT="$DATA/ud/UD_English-EWT/en_ewt-ud-dev.conllu"
SST2="$DATA/sst2/dev.tsv"
PY="$(command -v python3 || command -v python)"
mkdir -p "$OUT"
rm -rf "$OUT/roles" "$OUT/bench.json" "$OUT/sst2-dev.safetensors" "$OUT"/*.log
t0=$SECONDS

# Runs a headroom command with its output in $OUT/NAME.log (shown whole if it fails).
run() {
  local name=$1 t=$SECONDS
  shift
  if ! "$HEADROOM" "$@" >"$OUT/$name.log" 2>&1; then
    cat "$OUT/$name.log" >&2
    echo "scripts/demo.sh: headroom $1 failed (log: $OUT/$name.log)" >&2
    exit 1
  fi
  echo "   ($((SECONDS - t)) s; log: $OUT/$name.log)"
}

echo
echo "== 1/3 What the heads do: headroom roles on $EWT"
run roles roles --model "$MODEL" --data "$EWT" --out "$OUT/roles"
"$PY" - "$OUT/roles/roles.json" <<'PY'
import json, sys
from collections import defaultdict
r = json.load(open(sys.argv[1]))
s = r["summary"]
L, H = r["layers"], r["heads_per_layer"]
print(f"   {r['sentences']} sentences ({r['truncated']} truncated); a head holds a role when its mean "
      f"score (1 = uniform attention) is significantly above tau = {r['tau']:g} "
      f"({r['correction']}-corrected p < {r['alpha']:g}, over all heads and roles)")
print(f"   {s['heads_with_a_role']} of {s['heads']} heads hold a role; "
      f"{s['heads_with_several_roles']} hold roles of several families")
def family(role):
    if role.startswith("dep:"): return "syntactic"
    return {"cls": "delimiter", "sep": "delimiter", "delimiter": "delimiter"}.get(role, role)
per_layer = defaultdict(lambda: [set() for _ in range(L)])
for key, roles in r["roles_of"].items():
    layer, head = map(int, key.split("."))
    for role in roles:
        per_layer[family(role)][layer].add(head)
print("   heads per layer holding each family:" + "".join(f"  L{l}" for l in range(L)))
for fam in ("delimiter", "syntactic", "local", "block"):
    if fam in per_layer:
        print(f"     {fam:<34}" + "".join(f"{len(h):>4}" for h in per_layer[fam]))
best = {}
for t in r["tests"]:
    if t["has_role"] and (t["role"] not in best or t["mean"] > best[t["role"]]["mean"]):
        best[t["role"]] = t
print("   strongest head per role (mean score):")
shown = [x for x in ("cls", "local", "dep:all", "dep:det", "dep:amod", "dep:case", "dep:nsubj",
                      "dep:obj", "dep:aux") if x in best]
for role in shown:
    t = best[role]
    print(f"     {role:<10} L{t['layer']}H{t['head']:<3} {t['mean']:6.2f}   "
          f"({sum(x['has_role'] for x in r['tests'] if x['role'] == role)} heads hold it)")
PY
echo "   maps: $OUT/roles/role_map.svg (roles per head), $OUT/roles/role_<role>.svg (mean per head)"

echo
echo "== 2/3 What head skipping buys: headroom bench, batch 8 x 64 tokens, half the heads pruned"
run bench bench --model "$MODEL" --batch 8 --seq 64 --pruned 0,0.5 --iters 3 --out "$OUT/bench.json"
"$PY" - "$OUT/bench.json" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
print(f"   adapter: {b['adapter']}")
print("   median of %d rounds; speedup against the unpruned dense run (ideal from FLOPs)" % b["iters"])
print("   pruned heads  mode      encoder ms  speedup (ideal)   attention ms  speedup (ideal)")
for row in b["rows"]:
    e, a = row["encoder"], row["attention"]
    print(f"   {row['fraction']:>5.0%} {row['heads_kept']:>5}  {row['mode']:<8} {e['median_ms']:>10.1f}  "
          f"{e['speedup']:>5.2f}x ({e['ideal_speedup']:.2f}x)  {a['median_ms']:>12.1f}  "
          f"{a['speedup']:>5.2f}x ({a['ideal_speedup']:.2f}x)")
print("   dense: pruned heads gated to 0 but computed (transformers' head_mask); skip: their rows of")
print("   Q/K/V, attention and output columns left out (no weight copies); compact: the exported,")
print("   physically smaller checkpoint. The ideal counts FLOPs only; a CPU adapter's timings drift.")
PY

echo
echo "== 3/3 A profiled forward pass: headroom forward --profile over $SST2"
run forward forward --model "$MODEL" --data "$SST2" --out "$OUT/sst2-dev.safetensors" --profile
grep -v -e '^adapter:' -e '^\s*$' "$OUT/forward.log" | sed 's/^/   /'

echo
echo "demo done in $((SECONDS - t0)) s after the build; outputs in $OUT/"
