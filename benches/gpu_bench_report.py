#!/usr/bin/env python3
"""Gathers what scripts/gpu-bench.sh wrote into DIR (steps.tsv, info.log, test-*.log,
bench-*.json, criterion.log, torch.json) into DIR/summary.json and DIR/table.md, and prints the
table. Standard library only. Usage: gpu_bench_report.py DIR"""
import json, os, re, sys


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def write_atomic(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def adapter(info):
    m = re.search(r"^chosen: (.*)$", info or "", re.M)
    return m.group(1).strip() if m else "unknown"


def tests(d, steps):
    """Per test binary: passed, failed, ignored/filtered, and the failing test names."""
    out = []
    for name in sorted(n for n in steps if n.startswith("test-")):
        log = read(os.path.join(d, name + ".log")) or ""
        m = re.search(r"test result: (\w+)\. (\d+) passed; (\d+) failed; (\d+) ignored; \d+ measured; (\d+) filtered out", log)
        failed = re.findall(r"^test (\S+) \.\.\. FAILED", log, re.M)
        out.append({
            "binary": name[5:], "exit": steps[name]["exit"],
            "passed": int(m.group(2)) if m else 0, "failed": int(m.group(3)) if m else None,
            "skipped": int(m.group(4)) + int(m.group(5)) if m else None, "failing": failed,
        })
    return out


def flops(name):
    """FLOPs of one criterion iteration, from the id's shape fields, or None."""
    f = dict((k, int(v)) for k, v in re.findall(r"([A-Za-z]+)(\d+)", name.split("/", 1)[-1]))
    if name.startswith("matmul/"):
        return 2 * f["M"] * f["K"] * f["N"]
    if name.startswith("attention/"):
        return 4 * f["B"] * f["H"] * f["T"] ** 2 * f["d"]
    if name.startswith("attention_backward/"):
        return 14 * f["B"] * f["H"] * f["T"] ** 2 * f["d"]
    return None


def kernel_reference(criterion_id):
    """The torch_gpu.py case that computes what a criterion kernel bench computes, or None."""
    parts = criterion_id.split("/")
    if parts[0] == "matmul":
        return f"matmul_{parts[-1]}"
    if parts[0] == "attention" and parts[-1] == "all_heads":
        return f"attention_{parts[-2]}"
    if parts[0] == "attention_backward":
        return f"attention_fwd_bwd_{parts[-1]}"
    return None


def criterion(log):
    rows = []
    for m in re.finditer(r"^test (\S+) \.\.\. bench:\s+([\d,]+) ns/iter \(\+/- ([\d,]+)\)", log or "", re.M):
        name, ns = m.group(1), int(m.group(2).replace(",", ""))
        row = {"id": name, "ms": ns / 1e6, "spread_ms": int(m.group(3).replace(",", "")) / 1e6}
        fl = flops(name)
        if fl:
            row["gflops"] = fl / ns
        mm = re.search(r"_B(\d+)_T(\d+)$", name)
        if name.startswith("model/") and mm:
            row["examples_per_s"] = int(mm.group(1)) / (ns / 1e9)
        rows.append(row)
    return rows


def main():
    d = sys.argv[1]
    steps = {}
    for line in (read(os.path.join(d, "steps.tsv")) or "").splitlines():
        name, rc, secs = line.split("\t")
        steps[name] = {"exit": int(rc), "seconds": int(secs)}
    summary = {"adapter": adapter(read(os.path.join(d, "info.log"))), "steps": steps,
               "tests": tests(d, steps), "criterion": criterion((read(os.path.join(d, "criterion-model.log")) or "")
                                        + (read(os.path.join(d, "criterion.log")) or ""))}
    for shape in ("minilm", "base"):
        text = read(os.path.join(d, f"bench-{shape}.json"))
        if text:
            summary[f"bench_{shape}"] = json.loads(text)
    text = read(os.path.join(d, "torch.json"))
    if text:
        summary["torch"] = json.loads(text)

    md = [f"# GPU bench: {summary['adapter']}", ""]
    md += ["| step | exit | s |", "|---|---|---|"]
    md += [f"| {n} | {s['exit']} | {s['seconds']} |" for n, s in steps.items()]
    md += ["", "| test binary | passed | failed | skipped | failing |", "|---|---|---|---|---|"]
    md += [f"| {t['binary']} | {t['passed']} | {t['failed']} | {t['skipped']} | {' '.join(t['failing'])} |"
           for t in summary["tests"]]
    if summary["criterion"]:
        md += ["", "| criterion id | ms | GFLOP/s | examples/s |", "|---|---|---|---|"]
        for r in summary["criterion"]:
            g = f"{r['gflops']:.0f}" if "gflops" in r else ""
            e = f"{r['examples_per_s']:.0f}" if "examples_per_s" in r else ""
            md.append(f"| {r['id']} | {r['ms']:.3f} | {g} | {e} |")
    # headroom against torch, same shapes and sizes
    torch = summary.get("torch")
    if torch and summary["criterion"]:
        B, T = torch["batch"], torch["seq"]
        ours = {r["id"]: r["ms"] for r in summary["criterion"]}
        md += ["", f"| shape | case | headroom ms | torch eager ms | torch SDPA ms | headroom / eager speed | headroom / SDPA speed |",
               "|---|---|---|---|---|---|---|"]
        for shape in ("minilm", "base"):
            for case in ("forward", "forward_gate_backward", "train_step"):
                h = ours.get(f"model/random_{shape}_{case}_B{B}_T{T}")
                ref = {r["attention"]: r["median_ms"] for r in torch["results"] if r.get("shape") == shape and r["case"] == case}
                if h is None or not ref:
                    continue
                e, s = ref.get("eager"), ref.get("sdpa")
                md.append(f"| {shape} | {case} | {h:.2f} | {e:.2f} | {f'{s:.2f}' if s else ''} | "
                          f"{e / h:.2f}× | {f'{s / h:.2f}×' if s else ''} |")
    if torch and summary["criterion"]:
        refs = {r["case"]: r for r in torch["results"] if "shape" not in r}
        pairs = [(r, refs.get(kernel_reference(r["id"]))) for r in summary["criterion"]]
        pairs = [(r, t) for r, t in pairs if t]
        if pairs:
            md += ["", "| kernel | headroom ms | torch ms | headroom / torch speed |", "|---|---|---|---|"]
            md += [f"| {r['id']} | {r['ms']:.3f} | {t['median_ms']:.3f} | {t['median_ms'] / r['ms']:.2f}× |" for r, t in pairs]
    for shape in ("minilm", "base"):
        b = summary.get(f"bench_{shape}")
        if not b:
            continue
        md += ["", f"`headroom bench --shape {shape}` B{b['batch']} T{b['seq']}:", "",
               "| pruned | heads kept | mode | encoder ms | speedup (ideal) | attention ms | speedup (ideal) |",
               "|---|---|---|---|---|---|---|"]
        for r in b["rows"]:
            en, at = r["encoder"], r["attention"]
            md.append(f"| {r['fraction']:.2f} | {r['heads_kept']} | {r['mode']} | {en['median_ms']:.2f} | "
                      f"{en['speedup']:.2f}× ({en['ideal_speedup']:.2f}×) | {at['median_ms']:.2f} | "
                      f"{at['speedup']:.2f}× ({at['ideal_speedup']:.2f}×) |")
    for name in ("profile-forward", "profile-gate-backward"):
        log = read(os.path.join(d, name + ".log")) or ""
        m = re.search(r"^kernel +calls +total ms.*?^total GPU time.*?$", log, re.M | re.S)
        if m:
            summary[name.replace("-", "_")] = m.group(0)
            md += ["", f"GPU time per kernel, {name} (timestamp queries):", "", "```", m.group(0), "```"]
    table = "\n".join(md) + "\n"
    write_atomic(os.path.join(d, "summary.json"), json.dumps(summary, indent=1))
    write_atomic(os.path.join(d, "table.md"), table)
    print(table)


if __name__ == "__main__":
    main()
