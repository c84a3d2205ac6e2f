#!/usr/bin/env python3
"""`import recur` + `recur.load("en-g2p")` in fresh processes: each run is a new interpreter
timing both with time.perf_counter (interpreter start-up itself is not counted). Prints one
JSON line with the median and the fastest of --runs.

Usage (a venv with the recur wheel):  python bench/python_load.py [--runs 10] [--model en-g2p]
"""
import argparse
import json
import statistics
import subprocess
import sys

CHILD = """
import time
t0 = time.perf_counter()
import recur
t1 = time.perf_counter()
recur.load({model!r})
t2 = time.perf_counter()
print((t1 - t0) * 1e3, (t2 - t1) * 1e3)
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--model", default="en-g2p")
    args = ap.parse_args()
    imports, loads, totals = [], [], []
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, "-c", CHILD.format(model=args.model)],
                             check=True, capture_output=True, text=True).stdout.split()
        imp, load = float(out[0]), float(out[1])
        imports.append(imp)
        loads.append(load)
        totals.append(imp + load)
    print(json.dumps({
        "model": args.model,
        "runs": args.runs,
        "import_ms_median": round(statistics.median(imports), 1),
        "load_ms_median": round(statistics.median(loads), 1),
        "total_ms_median": round(statistics.median(totals), 1),
        "total_ms_min": round(min(totals), 1),
    }))


if __name__ == "__main__":
    main()
