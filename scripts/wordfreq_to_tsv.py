#!/usr/bin/env python3
"""Converts the `wordfreq` package's word list of a language into recur's word-frequency TSV.

The output is what `[decode] word_freq` of a model's config names (see crates/recur/src/
seq2seq/word_freq.rs): `#` comment lines with the provenance, then `word<TAB>frequency`, most
frequent first, where frequency is wordfreq's estimate of the word's share of running text
(a probability, rounded by wordfreq to whole centibels).

Kept: the first --top words (all with --top 0; by frequency, then wordfreq's order) that, after NFC
(which also splits the precomposed nukta letters क़ ख़ ग़ ... into letter + ़, as the model's
vocabulary has them), consist only of characters of the model's target vocabulary. Dropped
(and counted on stderr): words with a character outside it (digits, Latin letters, ।, ZWJ,
punctuation...), and a later duplicate of a word that NFC made equal to an earlier one.

Usage (in a throwaway venv; wordfreq's data is CC BY-SA 4.0, see LICENSE.wordfreq):
    python3 -m venv /tmp/wf && /tmp/wf/bin/pip install wordfreq==3.1.1
    /tmp/wf/bin/python scripts/wordfreq_to_tsv.py --lang hi --top 0 \
        --vocab models/hi-translit/tgt_vocab.json --out models/hi-translit/wordfreq.tsv
"""

import argparse
import importlib.metadata
import json
import sys
import unicodedata

import wordfreq


def target_alphabet(vocab_path):
    """The characters of a recur vocabulary file, without the special tokens."""
    with open(vocab_path, encoding="utf-8") as f:
        tokens = json.load(f)["tokens"]
    return {t for t in tokens if len(t) == 1}


def ranked_words(lang, wordlist):
    """(word, frequency) pairs of wordfreq's list, most frequent first.

    get_frequency_list is the decoded cBpack file: bucket i holds the words whose frequency
    rounds to -i centibels (10 ** (-i / 100)), each bucket sorted alphabetically.
    """
    for index, bucket in enumerate(wordfreq.get_frequency_list(lang, wordlist)):
        freq = wordfreq.cB_to_freq(-index)
        for word in bucket:
            yield word, freq


def convert(lang, wordlist, alphabet, top):
    kept, seen = [], set()
    dropped_chars, dropped_dupes, examples = 0, 0, []
    for word, freq in ranked_words(lang, wordlist):
        norm = unicodedata.normalize("NFC", word)
        if not norm or any(c not in alphabet for c in norm):
            dropped_chars += 1
            if len(examples) < 10:
                examples.append(word)
            continue
        if norm in seen:
            dropped_dupes += 1
            continue
        seen.add(norm)
        kept.append((norm, freq))
        if len(kept) == top:  # never, for top = 0
            break
    return kept, dropped_chars, dropped_dupes, examples


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lang", default="hi")
    ap.add_argument("--wordlist", default="small", help="wordfreq list: small or large")
    ap.add_argument("--top", type=int, default=0, help="words kept after filtering (0 = all)")
    ap.add_argument("--vocab", required=True, help="the model's tgt_vocab.json")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    alphabet = target_alphabet(args.vocab)
    kept, dropped_chars, dropped_dupes, examples = convert(
        args.lang, args.wordlist, alphabet, args.top
    )
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write(
            f"# word frequencies of '{args.lang}' from wordfreq {importlib.metadata.version('wordfreq')} "
            f"({args.wordlist} list), CC BY-SA 4.0: see LICENSE.wordfreq\n"
        )
        f.write(
            f"# made by scripts/wordfreq_to_tsv.py --lang {args.lang} --wordlist "
            f"{args.wordlist} --top {args.top}: the {len(kept)} most frequent words written "
            "only with the model's target characters (NFC)\n"
        )
        f.write("# word<TAB>frequency (share of running text)\n")
        for word, freq in kept:
            f.write(f"{word}\t{freq:.6g}\n")
    print(
        f"{args.out}: {len(kept)} words; dropped {dropped_chars} with characters outside "
        f"the vocabulary (e.g. {' '.join(examples)}), {dropped_dupes} NFC duplicates",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
