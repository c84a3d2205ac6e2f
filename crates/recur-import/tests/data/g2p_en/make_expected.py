#!/usr/bin/env python3
"""Writes tests/data/g2p_en/expected.tsv: `word<TAB>g2p_en's predicted phonemes` (space-separated),
the reference of tests/g2p_en.rs, which requires `recur translate` of the imported
checkpoint20.npz to give exactly these outputs.

Produced once, from the repository root, with g2p-en 2.1.0 installed (bench/setup_venv.sh):

    .venv-bench/bin/python tests/data/g2p_en/make_expected.py

Words (in this order, duplicates dropped):
  * every 50th entry of data/cmudict_g014b2b/g014b2b.test (real CMUdict words), lowercased,
    kept when all a-z;
  * the first 250 pseudo-words of bench/words1000.txt (made by bench/make_words.py);
  * EXTRA below: very long words (the 20-step cap), one-letter words, and words with
    characters outside a-z (uppercase, apostrophe, hyphen, digit, accent) that g2p_en's
    predict() maps to <unk> without lowercasing.
Each output is `G2p().predict(word)`: g2p_en's own greedy numpy decoder (not `G2p()(text)`,
which would look words up in CMUdict first). Importing g2p_en calls nltk.download() and G2p()
loads NLTK's cmudict; predict() needs neither, so both are stubbed as in bench/g2p_en_numpy.py.
"""
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
EXTRA = [
    "supercalifragilisticexpialidocious", "antidisestablishmentarianism",
    "pneumonoultramicroscopicsilicovolcanoconiosis", "floccinaucinihilipilification",
    "a", "b", "x", "q", "zz",
    "Hello", "OK", "don't", "x-ray", "abc123", "café", "naïve",
]


def main():
    import nltk
    nltk.download = lambda *a, **k: False
    import g2p_en.g2p as g2pmod
    g2pmod.cmudict = type("NoCmu", (), {"dict": staticmethod(lambda: {})})
    g2p = g2pmod.G2p()

    words = []
    with open(os.path.join(ROOT, "data/cmudict_g014b2b/g014b2b.test"), encoding="utf-8") as f:
        for i, line in enumerate(f):
            w = line.split("\t")[0].lower()
            if i % 50 == 0 and re.fullmatch("[a-z]+", w):
                words.append(w)
    with open(os.path.join(ROOT, "bench/words1000.txt"), encoding="utf-8") as f:
        words += f.read().split()[:250]
    words += EXTRA
    seen, out = set(), []
    for w in words:
        if w not in seen:
            seen.add(w)
            out.append(f"{w}\t{' '.join(g2p.predict(w))}\n")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "expected.tsv")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(out)
    print(f"{path}: {len(out)} words", file=sys.stderr)


if __name__ == "__main__":
    main()
