#!/usr/bin/env python3
"""One word at a time through `Model.translate`, as an interactive or served caller does it:
median and fastest of --runs calls per model, after one warm-up call, at 1 thread
(--threads 0: the library's default, as for a caller that never calls set_num_threads).

Usage (a venv with the recur wheel):
    python bench/python_one_word.py [--runs 50] [--word kitaab] [--threads 1] [MODEL ...]
(default models: hi-translit en-g2p; a directory made by recur.import_g2p_en works too).
"""
import argparse
import json
import statistics
import time

import recur


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=["hi-translit", "en-g2p"])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--word", default="kitaab")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if args.threads > 0:
        recur.set_num_threads(args.threads)
    for name in args.models:
        m = recur.load(name)
        m.translate(args.word)
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            m.translate(args.word)
            times.append(time.perf_counter() - t)
        print(json.dumps({
            "model": name,
            "ensemble_size": m.ensemble_size,
            "runs": args.runs,
            "threads": args.threads,
            "median_ms": round(statistics.median(times) * 1e3, 3),
            "min_ms": round(min(times) * 1e3, 3),
        }))


if __name__ == "__main__":
    main()
