#!/usr/bin/env python3
"""g2p_en 2.1.0's own numpy inference speed: G2p.predict(word) on the 1,000 words of
bench/words1000.txt (pure numpy GRU encoder + greedy GRU decoder, batch 1, stops at '</s>' or
after 20 steps).  Prints one JSON line like bench/pytorch_bench.py:
    {"impl":"g2p_en-numpy","workload":"w4-g2p-b1","median_ms":...,"words_per_s":...,...}

Usage (inside .venv-bench):  python bench/g2p_en_numpy.py --threads 1 [--quick] [--list]

The checkpoint lives inside the installed package: <site-packages>/g2p_en/checkpoint20.npz
(3.3 MB).  Array names/shapes (print them with --list; see bench/G2P_EN_CHECKPOINT.md):
    enc_emb (29, 256)  enc_w_ih (768, 256)  enc_w_hh (768, 256)  enc_b_ih (768,)  enc_b_hh (768,)
    dec_emb (74, 256)  dec_w_ih (768, 256)  dec_w_hh (768, 256)  dec_b_ih (768,)  dec_b_hh (768,)
    fc_w (74, 256)     fc_b (74,)           all float32
(g2p.py's comments say (29, 64) / (3*128, 64): they are stale; the real sizes are emb 256, hidden 256.)

Importing g2p_en runs nltk.download() for the POS tagger and cmudict (network, not reachable
here) and G2p() loads cmudict: neither is needed by predict(), so both are stubbed out below.
--threads sets OPENBLAS_NUM_THREADS/OMP_NUM_THREADS/MKL_NUM_THREADS before numpy is imported.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=0)
    ap.add_argument("--list", action="store_true", help="print the checkpoint's arrays and exit")
    args = ap.parse_args()
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = str(args.threads)

    import numpy as np
    import nltk
    nltk.download = lambda *a, **k: False          # no network: predict() needs no nltk data
    import g2p_en.g2p as g2pmod
    g2pmod.cmudict = type("NoCmu", (), {"dict": staticmethod(lambda: {})})

    ckpt = os.path.join(os.path.dirname(g2pmod.__file__), "checkpoint20.npz")
    if args.list:
        v = np.load(ckpt)
        print(ckpt)
        for name in v.files:
            print(f"{name} {tuple(v[name].shape)} {v[name].dtype}")
        return 0

    g2p = g2pmod.G2p()
    words = open(os.path.join(HERE, "words1000.txt")).read().split()

    # Count executed rows for the shared FLOP formula (see pytorch_bench.g2p_flops / FLOPS.md).
    enc_rows = sum(len(w) + 1 for w in words)
    dec_rows = 0
    for w in words:                                 # first pass doubles as warm-up
        p = g2p.predict(w)
        dec_rows += min(len(p) + 1, 20)             # + the step that emitted '</s>' (unless capped)
    E = H = g2p.enc_w_hh.shape[1]
    V = g2p.fc_w.shape[0]
    flops = enc_rows * 2 * 3 * H * (E + H) + dec_rows * (2 * 3 * H * (E + H) + 2 * V * H)

    runs = args.runs or (3 if args.quick else 7)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for w in words:
            g2p.predict(w)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(json.dumps({
        "impl": "g2p_en-numpy", "workload": "w4-g2p-b1", "median_ms": round(med * 1e3, 3),
        "min_ms": round(min(times) * 1e3, 3), "runs": runs, "threads": args.threads,
        "words_per_s": round(len(words) / med, 2), "gflops": round(flops / med / 1e9, 3),
        "flops": flops, "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "numpy": np.__version__, "dec_rows": dec_rows, "loadavg_1m": round(os.getloadavg()[0], 2)}),
        flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
