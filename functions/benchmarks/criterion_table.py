"""Criterion's estimates (target/criterion/**/new/estimates.json) as a markdown table.

Usage: python3 criterion_table.py TARGET/criterion > engine.md
"""

import json
import os
import pathlib
import sys


def fmt(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


def machine() -> str:
    """The same line the Rust benchmarks print: CPU, cores, memory, load when measured."""
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "unknown CPU")
    cores = os.cpu_count() or 0
    mem_kb = next((int(l.split()[1]) for l in open("/proc/meminfo")
                   if l.startswith("MemTotal:")), 0)
    load = open("/proc/loadavg").read().split()[0]
    return f"{cpu}, {cores} cores, {mem_kb / 1024 / 1024:.0f} GiB; load average at the end {load}"


def main() -> None:
    root = pathlib.Path(sys.argv[1])
    rows = []
    # In the order they ran (the order of the bench file), not by name.
    for est in sorted(root.glob("**/new/estimates.json"), key=lambda p: p.stat().st_mtime):
        bench = json.loads((est.parent / "benchmark.json").read_text())
        data = json.loads(est.read_text())
        median = data["median"]
        ci = median["confidence_interval"]
        rows.append((bench.get("full_id") or bench["title"], median["point_estimate"],
                     ci["lower_bound"], ci["upper_bound"]))
    print("Command: `cargo bench -p benchmarks --bench engine`\n")
    print(f"Machine: {machine()}.\n")
    print("| benchmark | median | 95% interval |")
    print("| --- | --- | --- |")
    for name, med, lo, hi in rows:
        print(f"| {name} | {fmt(med)} | {fmt(lo)} .. {fmt(hi)} |")
    print()


if __name__ == "__main__":
    main()
