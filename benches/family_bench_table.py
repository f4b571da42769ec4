#!/usr/bin/env python3
"""The table of `scripts/gpu-bench.sh run --families`: for each family's base shape, the
encoder's median time per batch unpruned (dense) and at each pruned fraction (skip and compact),
with the speedup against the unpruned run and the FLOP ideal, from DIR/bench-<shape>.json."""

import json
import os
import sys


def main():
    d = sys.argv[1]
    print("| shape | batch × seq | unpruned ms | fraction | skip ms (speedup / ideal) | "
          "compact ms (speedup / ideal) |")
    print("|---|---|---|---|---|---|")
    for shape in ["base", "roberta-base", "distilbert-base", "electra-base", "albert-base",
                  "mpnet-base"]:
        path = os.path.join(d, f"bench-{shape}.json")
        if not os.path.exists(path):
            print(f"| `{shape}` | missing | | | | |")
            continue
        with open(path) as f:
            r = json.load(f)
        rows = r["rows"]
        # every speedup is against the unpruned dense run of the same rounds
        e0 = rows[0]["encoder"]
        unpruned = e0["median_ms"] * e0["speedup"]
        for frac in sorted({x["fraction"] for x in rows if x["fraction"] > 0}):
            cell = {}
            for x in rows:
                if x["fraction"] == frac and x["mode"] in ("skip", "compact"):
                    e = x["encoder"]
                    cell[x["mode"]] = (f"{e['median_ms']:.2f} ({e['speedup']:.2f} / "
                                       f"{e['ideal_speedup']:.2f})")
            print(f"| `{shape}` | {r.get('batch')} × {r.get('seq')} | "
                  f"{unpruned:.2f} | {frac} | {cell.get('skip', '')} | "
                  f"{cell.get('compact', '')} |")


if __name__ == "__main__":
    main()
