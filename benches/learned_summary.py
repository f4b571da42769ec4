#!/usr/bin/env python3
"""Tables of scripts/learned-experiments.sh: for each method, the eval metric at 48, 36, 24
and 12 heads kept (mean ± sample sd over seeds where there are several), joint DSP beside a
fine-tuning on the same subset, hard-concrete's head count per λ, and each step's wall time. Writes OUT/summary.md and OUT/summary.json and prints
the table. Standard library only. Usage: learned_summary.py OUT"""
import json, os, statistics, sys

BUDGETS = (48, 36, 24, 12)


def load(out, name):
    try:
        with open(os.path.join(out, name, "curve.json")) as f:
            return json.load(f)
    except OSError:
        return None


def at(curve, k):
    """The metric of the curve point with k heads kept, or None."""
    for p in curve["curve"]["points"]:
        if p["heads_kept"] == k:
            return p["metric"]
    return None


def cell(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, ""
    mean = statistics.fmean(values)
    if len(values) == 1:
        return {"mean": mean, "n": 1}, f"{100 * mean:.2f}"
    sd = statistics.stdev(values)
    return {"mean": mean, "sd": sd, "n": len(values)}, f"{100 * mean:.2f} ± {100 * sd:.2f}"


def main():
    out = sys.argv[1]
    steps = {}
    try:
        for line in open(os.path.join(out, "steps.tsv")):
            name, rc, secs = line.rstrip("\n").split("\t")
            steps[name] = {"exit": int(rc), "seconds": int(secs)}
    except OSError:
        pass
    rows, summary = [], {"steps": steps, "methods": {}}
    unpruned, metric = None, "dev metric"

    def add(method, per_budget, wall):
        cells = {k: cell(v) for k, v in per_budget.items()}
        summary["methods"][method] = {str(k): c[0] for k, c in cells.items()}
        rows.append(f"| {method} | " + " | ".join(cells[k][1] if k in cells else "" for k in BUDGETS)
                    + f" | {wall} |")

    for name, label in (("michel-oneshot", "Michel one-shot"), ("michel-iterative", "Michel iterative")):
        c = load(out, name)
        if c:
            unpruned, metric = c["unpruned_metric"], "dev " + c["metric"]
            add(label, {k: [at(c, k)] for k in BUDGETS}, steps.get(name, {}).get("seconds", ""))
    # random masks: whole one-shot curves (random-S), or the K = 24 trial alone (random24-S)
    names = [n for s in range(3) for n in (f"random-{s}", f"random24-{s}") if load(out, n)]
    randoms = [load(out, n) for n in names]
    if randoms:
        wall = sum(steps.get(n, {}).get("seconds", 0) for n in names)
        add(f"random ({len(randoms)} seeds)", {k: [at(c, k) for c in randoms] for k in BUDGETS}, wall)
    for name, label in (("dsp-per-example", "DSP, per-example samples"),
                        ("dsp-per-batch", "DSP, per-batch samples"), ("dsp-ste", "DSP-STE")):
        c = load(out, name)
        if not c:
            continue
        per = {}
        for run in c["learned"]:
            per.setdefault(run["heads"], []).append(run["metric"])
        curve = load(out, "dsp-curve") if name == "dsp-per-example" else None
        for run in (curve or {}).get("learned", []):
            per.setdefault(run["heads"], []).append(run["metric"])
        wall = steps.get(name, {}).get("seconds", "")
        n = len(c["learned"])
        add(f"{label} ({n} seeds at 24)", per, wall)
    joint = load(out, "dsp-joint")
    if joint:
        per = {}
        for run in joint["learned"]:
            per.setdefault(run["heads"], []).append(run["metric"])
        add(f"DSP joint, from the base model ({len(joint['learned'])} seeds)", per,
            steps.get("dsp-joint", {}).get("seconds", ""))
    try:
        with open(os.path.join(out, "minilm-subset", "finetune.json")) as f:
            ft = json.load(f)
        summary["finetune_subset"] = {"best_dev": ft["best_dev"], "epochs": len(ft["epochs"])}
        rows.append(f"| fine-tuned on the same subset, all 72 heads | | | {100 * ft['best_dev']:.2f} "
                    f"(72 heads) | | {steps.get('finetune-subset', {}).get('seconds', '')} |")
    except OSError:
        pass
    table = [f"{metric} (%) at K heads kept of 72; unpruned: "
             f"{100 * unpruned:.2f}" if unpruned is not None else f"{metric} (%)", "",
             "| method | K = 48 | K = 36 | K = 24 | K = 12 | wall s |", "|---|---|---|---|---|---|"] + rows
    hc = load(out, "hard-concrete")
    if hc:
        table += ["", "Hard-concrete gates (one seed): heads kept per λ", "",
                  f"| λ | heads kept | {metric} (%) |", "|---|---|---|"]
        summary["hard_concrete"] = []
        for run in hc["learned"]:
            table.append(f"| {run['l0_lambda']:g} | {run['heads_kept']} | {100 * run['metric']:.2f} |")
            summary["hard_concrete"].append({k: run[k] for k in ("l0_lambda", "heads_kept", "metric")})
    table += ["", "| step | exit | s |", "|---|---|---|"]
    table += [f"| {k} | {v['exit']} | {v['seconds']} |" for k, v in steps.items()]
    text = "\n".join(table) + "\n"
    for name, body in (("summary.md", text), ("summary.json", json.dumps(summary, indent=1))):
        path = os.path.join(out, name)
        with open(path + ".tmp", "w") as f:
            f.write(body)
        os.replace(path + ".tmp", path)
    print(text)


if __name__ == "__main__":
    main()
