#!/usr/bin/env python3
"""Read JSON lines (from recur bench --json, bench/pytorch_bench.py, bench/g2p_en_numpy.py) on
stdin or from files, and print per workload: median recur ms, median pytorch ms and
ratio = pytorch_ms / recur_ms (> 1 means recur is faster).  Several lines for the same
(impl, workload) -- e.g. from repeated alternating runs -- are reduced to the median of their
median_ms.  Other impls (e.g. g2p_en-numpy) get their own column.  Non-JSON lines are ignored.

Usage: python3 bench/ratios.py results.jsonl [...]    or    ... | python3 bench/ratios.py
"""
import json
import statistics
import sys


def load(streams):
    rows = []
    for f in streams:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "workload" in r and "impl" in r:
                rows.append(r)
    return rows


def main(argv):
    streams = [open(p) for p in argv] if argv else [sys.stdin]
    rows = load(streams)
    ms, errors, threads, order = {}, [], set(), []
    for r in rows:
        if r.get("error") or r.get("median_ms") is None:
            errors.append(f"{r['impl']} {r['workload']}: {r.get('error', 'no median_ms')}")
            continue
        threads.add(r.get("threads"))
        key = (r["workload"], r.get("threads"))
        ms.setdefault((r["impl"], key), []).append(float(r["median_ms"]))
        if key not in order:
            order.append(key)
    impls = sorted({i for i, _ in ms}, key=lambda i: (i != "recur", i != "pytorch", i))
    if "recur" not in impls:
        print("note: no recur results (binary missing or failed); showing the other side(s) only")
    others = [i for i in impls if i not in ("recur", "pytorch")]
    head = f"{'workload':<19}{'recur ms':>12}{'pytorch ms':>12}{'pt/recur':>10}"
    for o in others:
        head += f"{o + ' ms':>18}{o[:8] + '/recur':>15}"
    print(f"threads: {','.join(str(t) for t in sorted(threads, key=str))}")
    print(head)
    med = {k: statistics.median(v) for k, v in ms.items()}
    fmt = lambda x: f"{x:.3f}" if x is not None else "-"
    multi = len(threads) > 1
    for key in order:
        w = key
        label = f"{key[0]}@t{key[1]}" if multi else key[0]
        rc, pt = med.get(("recur", w)), med.get(("pytorch", w))
        ratio = pt / rc if rc and pt else None
        line = f"{label:<19}{fmt(rc):>12}{fmt(pt):>12}{(f'{ratio:.2f}' if ratio else '-'):>10}"
        for o in others:
            ov = med.get((o, w))
            line += f"{fmt(ov):>18}{(f'{ov / rc:.2f}' if ov and rc else '-'):>15}"
        print(line)
    for e in errors:
        print("error:", e)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
