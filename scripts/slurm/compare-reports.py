#!/usr/bin/env python3
"""Compare two `headroom score` report.json files: every number within REL relative (default
1e-6), every other value equal, `wall_seconds` and `adapter` aside. Standard library only.
usage: compare-reports.py A/report.json B/report.json [REL]"""
import json
import sys


def walk(a, b, path, rel, worst):
    if isinstance(a, dict) and isinstance(b, dict):
        if sorted(a) != sorted(b):
            raise SystemExit(f"{path}: keys differ: {sorted(set(a) ^ set(b))}")
        for k in a:
            if k not in ("wall_seconds", "adapter"):
                walk(a[k], b[k], f"{path}.{k}", rel, worst)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            raise SystemExit(f"{path}: lengths {len(a)} and {len(b)}")
        for i, (u, v) in enumerate(zip(a, b)):
            walk(u, v, f"{path}[{i}]", rel, worst)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        d = abs(a - b) / max(abs(a), abs(b), 1e-30)
        worst[0] = max(worst[0], d)
        if d > rel:
            raise SystemExit(f"{path}: {a} vs {b} (relative difference {d:.3g} > {rel})")
    elif a != b:
        raise SystemExit(f"{path}: {a!r} vs {b!r}")


def main():
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    rel = float(sys.argv[3]) if len(sys.argv) == 4 else 1e-6
    a, b = (json.load(open(p)) for p in sys.argv[1:3])
    worst = [0.0]
    walk(a, b, "report", rel, worst)
    print(f"reports agree: largest relative difference {worst[0]:.3g} (limit {rel})")


main()
