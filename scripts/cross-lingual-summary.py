#!/usr/bin/env python3
"""Tables of scripts/cross-lingual.sh's outputs, as Markdown on stdout (no packages needed):

    python3 scripts/cross-lingual-summary.py OUT > summary.md

- entity F1 of the cross-lingual (English-only) and multilingual models per language;
- the 4 x 4 agreement of head importance (Spearman with its interval, Kendall, top-25 % Jaccard);
- per target language and ranking language: every trial's F1 on the choose split, the chosen
  number of pruned heads, and its report-split F1 against every head with the paired-bootstrap
  interval of the difference;
- the wall time of every step, from OUT/log.txt.
"""
import json
import os
import re
import sys

out = sys.argv[1]
langs = ["en", "de", "fr", "nl"]


def load(*parts):
    path = os.path.join(out, *parts)
    return json.load(open(path)) if os.path.exists(path) else None


def f(v, digits=3):
    return "–" if v is None else f"{v:.{digits}f}"


print("## Entity F1 on each language's report split\n")
print("| model | " + " | ".join(langs) + " |")
print("|---|" + "---|" * len(langs))
for model, name in [("en", "cross-lingual (fine-tuned on en)"), ("multi", "multilingual (en+de+fr+nl)")]:
    cells = [f((load("eval", f"{model}-{l}.json") or {}).get("f1")) for l in langs]
    print(f"| {name} | " + " | ".join(cells) + " |")

m = load("compare", "agreement.json")
if m:
    print("\n## Agreement of head importance across languages (cross-lingual model)\n")
    print("Spearman ρ [95 % bootstrap interval] above the diagonal; top-25 % Jaccard below.\n")
    pairs = {(p["a"], p["b"]): p for p in m["pairs"]}
    names = m["maps"]
    print("| | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for i, a in enumerate(names):
        cells = []
        for j, b in enumerate(names):
            if i == j:
                cells.append("–")
            elif i < j:
                p = pairs[(a, b)]
                ci = p["spearman"]["ci95"]
                iv = f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""
                cells.append(f"{p['spearman']['value']:.2f}{iv}")
            else:
                cells.append(f"{m['top_25_jaccard'][i][j]:.2f}")
        print(f"| **{a}** | " + " | ".join(cells) + " |")
    print("\nKendall τ-b:\n")
    print("| | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for i, a in enumerate(names):
        print(f"| **{a}** | " + " | ".join(f"{v:.2f}" for v in m["kendall_tau_b"][i]) + " |")

rows = []
for l in ["de", "fr", "nl"]:
    for by in ["en", l]:
        c = load("trials", f"{l}-ranked-on-{by}", "curve.json")
        r = load("trials", f"{l}-ranked-on-{by}", "report.json")
        if not c:
            continue
        trials = ", ".join(f"{p['pruned']}: {p['metric']:.3f}" for p in c["curve"]["points"])
        chosen = c["curve"]["points"][c["chosen"]]["pruned"]
        pb = (r or {}).get("paired_bootstrap", {})
        ci = pb.get("ci95")
        rows.append(
            f"| {l} | {by} | {trials} | {chosen} | {f(pb.get('every_head'))} | "
            f"{f(pb.get('with_head_mask'))} | "
            + (f"{pb['difference']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "–")
            + f" | {f(pb.get('fraction_not_above_zero'), 2)} |"
        )
if rows:
    print("\n## Pruning the cross-lingual model by gradient ranking with a few trials\n")
    print("Heads ranked on the rank split of the language named; trials (heads pruned: entity F1 "
          "on the target's choose split); the chosen mask on the target's report split against "
          "every head, with the paired-bootstrap (1000 resamples over sentences) 95 % interval "
          "of the difference and the share of resamples where pruning does not help.\n")
    print("| target | ranked on | trials (pruned: choose F1) | chosen | report F1, all heads | "
          "report F1, pruned | difference [95 %] | P(Δ ≤ 0) |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))

log = os.path.join(out, "log.txt")
if os.path.exists(log):
    print("\n## Wall time per step (lavapipe)\n")
    print("| step | seconds |")
    print("|---|---|")
    for line in open(log):
        mt = re.search(r"done in (\d+) s: (.*)$", line)
        if mt:
            print(f"| `{os.path.relpath(mt.group(2), out)}` | {mt.group(1)} |")
