#!/usr/bin/env python3
"""The table and plot of scripts/prune-before-after.sh's run in OUT (standard library only).

    scripts/prune-before-after-summary.py OUT > OUT/summary.md

Writes OUT/summary.json and OUT/before-after.svg beside the Markdown it prints. Arms whose
outputs are missing (a run cut short) are left out, and the table says how many seeds each
figure has.
"""
import json
import statistics
import sys
from pathlib import Path

ARMS = [
    ("a", "(a) prune by simcse importance, then fine-tune"),
    ("b", "(b) fine-tune, prune by task importance"),
    ("c", "(c) fine-tune, prune by task importance, fine-tune again"),
    ("random", "random pruning, then fine-tune"),
]


def load(path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def finetuned(path):
    """Best dev accuracy and training seconds of a finetune.json, or None."""
    f = load(path / "finetune.json")
    if f is None:
        return None
    return {
        "dev": f["best_dev"],
        "seconds": sum(e["train_seconds"] for e in f["epochs"]),
    }


def chosen(curve):
    """The chosen point of a prune curve.json: (heads kept, metric, mask)."""
    p = curve["curve"]["points"][curve["chosen"]]
    return p["heads_kept"], p["metric"], [v for row in p["mask"] for v in row]


def kept_per_layer(mask, heads):
    return [int(sum(mask[i:i + heads])) for i in range(0, len(mask), heads)]


def jaccard(a, b):
    ka = {i for i, v in enumerate(a) if v}
    kb = {i for i, v in enumerate(b) if v}
    return len(ka & kb) / max(1, len(ka | kb))


def main():
    out = Path(sys.argv[1])
    seeds = sorted(
        int(p.name[len("full-"):])
        for p in out.glob("full-*")
        if p.name[len("full-"):].isdigit() and finetuned(p)
    )
    budgets = sorted(
        {int(p.name.split("-")[1]) for p in out.glob("a-*") if p.name.count("-") == 1},
        reverse=True,
    )
    rows = {}
    full = {s: finetuned(out / f"full-{s}") for s in seeds}
    masks = {}
    for k in budgets:
        a_curve = load(out / f"a-{k}" / "prune" / "curve.json")
        if a_curve:
            masks[("a", k)] = chosen(a_curve)[2]
        for s in seeds:
            runs = {
                "a": finetuned(out / f"a-{k}-{s}"),
                "c": finetuned(out / f"c-{k}-{s}"),
                "random": finetuned(out / f"random-{k}-{s}" / "model"),
            }
            b_curve = load(out / f"b-{k}-{s}" / "prune" / "curve.json")
            if b_curve:
                kept, metric, mask = chosen(b_curve)
                assert kept == k, f"b-{k}-{s} keeps {kept} heads"
                runs["b"] = {"dev": metric, "seconds": b_curve["wall_seconds"]}
                masks[("b", k, s)] = mask
            r_curve = load(out / f"random-{k}-{s}" / "prune" / "curve.json")
            if r_curve:
                masks[("random", k, s)] = chosen(r_curve)[2]
            for arm, r in runs.items():
                if r:
                    rows.setdefault((arm, k), {})[s] = r

    def stats(values):
        mean = statistics.mean(values)
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return mean, sd

    lines = [
        "| arm | heads kept | dev accuracy per seed | mean ± sd | seeds | seconds per run (fine-tuning; (b): pruning) |",
        "|---|---|---|---|---|---|",
    ]
    summary = {"seeds": seeds, "budgets": budgets, "rows": []}
    if full:
        vals = [full[s]["dev"] for s in seeds]
        mean, sd = stats(vals)
        secs = statistics.mean(full[s]["seconds"] for s in seeds)
        per = " / ".join(f"{v:.3f}" for v in vals)
        lines.append(
            f"| unpruned, fine-tuned | 72 | {per} | {mean:.3f} ± {sd:.3f} | {len(vals)} | {secs:.0f} |"
        )
        summary["rows"].append({"arm": "full", "heads": 72, "dev": vals})
    again = {s: finetuned(out / f"full-again-{s}") for s in seeds}
    again = {s: r for s, r in again.items() if r}
    if again:
        vals = [again[s]["dev"] for s in sorted(again)]
        mean, sd = stats(vals)
        secs = statistics.mean(r["seconds"] for r in again.values())
        per = " / ".join(f"{v:.3f}" for v in vals)
        lines.append(
            f"| unpruned, fine-tuned again (two epochs in all: (c)'s control) | 72 | {per} | {mean:.3f} ± {sd:.3f} | {len(vals)} | {secs:.0f} |"
        )
        summary["rows"].append({"arm": "full-again", "heads": 72, "dev": vals})
    for k in budgets:
        for arm, name in ARMS:
            r = rows.get((arm, k))
            if not r:
                continue
            vals = [r[s]["dev"] for s in sorted(r)]
            mean, sd = stats(vals)
            secs = statistics.mean(r[s]["seconds"] for s in r)
            per = " / ".join(f"{v:.3f}" for v in vals)
            lines.append(
                f"| {name} | {k} | {per} | {mean:.3f} ± {sd:.3f} | {len(vals)} | {secs:.0f} |"
            )
            summary["rows"].append(
                {"arm": arm, "heads": k, "seeds": sorted(r), "dev": vals}
            )
    print("\n".join(lines))
    print()
    print("Heads kept per layer (layers 0 to 5), and the overlap of the kept sets:")
    print()
    print("| mask | heads kept | per layer | Jaccard with (a) |")
    print("|---|---|---|---|")
    for key, mask in sorted(masks.items(), key=lambda kv: (-kv[0][1], kv[0])):
        a = masks.get(("a", key[1]))
        jac = f"{jaccard(mask, a):.2f}" if a and key[0] != "a" else ""
        label = key[0] if len(key) == 2 else f"{key[0]} (seed {key[2]})"
        per = ", ".join(map(str, kept_per_layer(mask, 12)))
        print(f"| {label} | {key[1]} | {per} | {jac} |")
    summary["masks"] = {
        "-".join(map(str, k)): kept_per_layer(m, 12) for k, m in masks.items()
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    plot(out / "before-after.svg", summary)


def plot(path, summary):
    """Dev accuracy of every run (dots) and each arm's mean (bar), one panel per budget."""
    arms = ["a", "b", "c", "random"]
    w, h, left, top, bottom = 220, 260, 50, 30, 60
    width = left + 100 + w * len(summary["budgets"]) + 20
    runs = summary["rows"]
    lo = min([v for r in runs for v in r["dev"]] + [0.5])
    hi = max([v for r in runs for v in r["dev"]] + [0.9])
    y = lambda v: top + (hi - v) / (hi - lo) * (h - top - bottom)
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{left}" y="16">SST-2 dev accuracy: prune before or after fine-tuning '
        "(dots: seeds; bars: mean)</text>",
    ]
    for t in range(int(lo * 20), int(hi * 20) + 1):
        v = t / 20
        if lo <= v <= hi:
            svg.append(f'<text x="{left - 36}" y="{y(v) + 4:.1f}">{v:.2f}</text>')
            svg.append(
                f'<line x1="{left}" x2="{width - 10}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                'stroke="#ddd"/>'
            )
    x0 = left
    for i, (arm, label) in enumerate([("full", "1 epoch"), ("full-again", "2 epochs")]):
        rows = [r for r in runs if r["arm"] == arm]
        xs = x0 + 25 + 45 * i
        svg.append(f'<text x="{xs - 20}" y="{h - 30}">{label}</text>')
        for v in rows[0]["dev"] if rows else []:
            svg.append(f'<circle cx="{xs}" cy="{y(v):.1f}" r="3" fill="#444"/>')
    svg.append(f'<text x="{x0 + 20}" y="{h - 10}">unpruned</text>')
    x0 += 100
    colours = {"a": "#1f77b4", "b": "#ff7f0e", "c": "#2ca02c", "random": "#888"}
    for k in summary["budgets"]:
        svg.append(f'<text x="{x0 + 60}" y="{h - 10}">{k} of 72 heads kept</text>')
        for i, arm in enumerate(arms):
            r = [q for q in runs if q["arm"] == arm and q["heads"] == k]
            xs = x0 + 20 + i * 45
            svg.append(f'<text x="{xs - 6}" y="{h - 30}">{arm}</text>')
            if not r:
                continue
            vals = r[0]["dev"]
            mean = statistics.mean(vals)
            svg.append(
                f'<rect x="{xs - 12}" y="{y(mean):.1f}" width="24" '
                f'height="{y(lo) - y(mean):.1f}" fill="{colours[arm]}" opacity="0.35"/>'
            )
            for v in vals:
                svg.append(f'<circle cx="{xs}" cy="{y(v):.1f}" r="3" fill="{colours[arm]}"/>')
        x0 += w
    svg.append("</svg>")
    path.write_text("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()
