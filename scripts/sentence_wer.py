#!/usr/bin/env python3
"""Word error rate of `recur translate --sentences` on aligned roman/native sentence files.

Runs the model on every line of the roman file and compares each output line with the same
line of the native file: WER = sum of word-level edit distances / sum of reference words
(corpus level). Words are the whitespace-separated tokens of a line. Two figures:

- `wer`: punctuation stripped from both ends of every token first (Unicode categories P*, plus
  the danda । and double danda ॥), and tokens left empty dropped, so that a word is scored
  as a word whether or not a quote, bracket or sentence mark touches it;
- `wer_raw`: the tokens as they are (punctuation included).

Only for dev data: test sets are scored once per final model by the lead, not with this.

    python3 scripts/sentence_wer.py --recur target/release/recur --model models/hi-translit \
        --roman data/dakshina_hi/romanized/hi.romanized.rejoined.dev.roman.txt \
        --native data/dakshina_hi/romanized/hi.romanized.rejoined.dev.native.txt \
        --beam 4 [--word-freq-weight 0] [--json]
"""

import argparse
import json
import subprocess
import sys
import time
import unicodedata

DANDAS = "\u0964\u0965"


def is_punct(c):
    return c in DANDAS or unicodedata.category(c).startswith("P")


def words(line, strip):
    tokens = line.split()
    if not strip:
        return tokens
    out = []
    for t in tokens:
        a, b = 0, len(t)
        while a < b and is_punct(t[a]):
            a += 1
        while b > a and is_punct(t[b - 1]):
            b -= 1
        if a < b:
            out.append(t[a:b])
    return out


def edit_distance(hyp, ref):
    prev = list(range(len(ref) + 1))
    for i, h in enumerate(hyp, 1):
        cur = [i] + [0] * len(ref)
        for j, r in enumerate(ref, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (h != r))
        prev = cur
    return prev[-1]


def wer(hyps, refs, strip):
    edits = total = 0
    for h, r in zip(hyps, refs):
        hw, rw = words(h, strip), words(r, strip)
        edits += edit_distance(hw, rw)
        total += len(rw)
    return edits / max(total, 1), edits, total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recur", default="target/release/recur")
    ap.add_argument("--model", default="models/hi-translit")
    ap.add_argument("--roman", required=True)
    ap.add_argument("--native", required=True)
    ap.add_argument("--beam", type=int, default=4)
    ap.add_argument("--word-freq-weight", type=float)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    cmd = [args.recur, "--threads", str(args.threads), "translate", "--model", args.model,
           "--sentences", "--beam", str(args.beam), "--input", args.roman]
    if args.word_freq_weight is not None:
        cmd += ["--word-freq-weight", str(args.word_freq_weight)]
    start = time.monotonic()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    seconds = time.monotonic() - start
    hyps = out.split("\n")[:-1]
    with open(args.native, encoding="utf-8") as f:
        refs = f.read().split("\n")[:-1]
    if len(hyps) != len(refs):
        sys.exit(f"{len(hyps)} output lines for {len(refs)} reference lines")
    stripped, edits, total = wer(hyps, refs, strip=True)
    raw, _, _ = wer(hyps, refs, strip=False)
    report = {"command": " ".join(cmd), "lines": len(refs), "ref_words": total,
              "word_edits": edits, "wer": stripped, "wer_raw": raw, "seconds": seconds}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{' '.join(cmd)}\n{len(refs)} lines, {total} reference words: WER {stripped:.2%} "
              f"({edits} word edits; punctuation stripped), raw {raw:.2%}; {seconds:.1f} s")


if __name__ == "__main__":
    main()
