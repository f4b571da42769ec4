#!/usr/bin/env python3
"""Regression guard: compares a new run of scripts/gpu-bench.sh with a kept one, as ratios.
Each argument is a run's folder (or its summary.json). For every criterion bench and every
`headroom bench` row that both runs have, prints new time / old time; a ratio above
1 + tolerance is a regression. Exit code 1 when there is one, 0 otherwise, 2 on bad input.
Compare runs of the same adapter only (the summaries name it).
Usage: compare_runs.py OLD NEW [--tolerance 0.15]"""
import argparse, json, os, sys


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def load(path):
    if os.path.isdir(path):
        path = os.path.join(path, "summary.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{path}: {e}")


def timings(summary):
    """name → median ms of every measurement a summary holds."""
    out = {r["id"]: r["ms"] for r in summary.get("criterion", [])}
    for shape in ("minilm", "base"):
        b = summary.get(f"bench_{shape}")
        for r in (b or {}).get("rows", []):
            for part in ("encoder", "attention"):
                key = f"bench/{shape}/B{b['batch']}_T{b['seq']}/{r['mode']}/pruned{r['fraction']}/{part}"
                out[key] = r[part]["median_ms"]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--tolerance", type=float, default=0.15,
                    help="allowed slowdown before a ratio counts as a regression (0.15: the noise of a shared CPU machine)")
    a = ap.parse_args()
    old, new = load(a.old), load(a.new)
    if old.get("adapter") != new.get("adapter"):
        print(f"warning: different adapters: {old.get('adapter')!r} vs {new.get('adapter')!r}", file=sys.stderr)
    t_old, t_new = timings(old), timings(new)
    common = sorted(set(t_old) & set(t_new))
    if not common:
        fail(f"{a.old} and {a.new} share no measurement")
    worse = 0
    print(f"{'measurement':70} {'old ms':>10} {'new ms':>10} {'new/old':>8}")
    for k in common:
        r = t_new[k] / t_old[k]
        flag = ""
        if r > 1 + a.tolerance:
            flag, worse = "  SLOWER", worse + 1
        elif r < 1 - a.tolerance:
            flag = "  faster"
        print(f"{k:70} {t_old[k]:10.3f} {t_new[k]:10.3f} {r:8.2f}{flag}")
    print(f"{len(common)} measurements, {worse} slower than {1 + a.tolerance:.2f}× the kept run")
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
