"""Regenerate bench/words1000.txt: 1,000 deterministic lowercase pseudo-words of 6-10 letters.

Both sides of the w4-g2p benchmark (PyTorch, g2p_en numpy, recur) read the committed file, so
this script only documents how it was made (Python's random.Random is stable across versions
for randrange/choice on the same seed)."""
import random

ONSETS = ["b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w",
          "z", "bl", "br", "ch", "cl", "cr", "dr", "fl", "fr", "gr", "pl", "pr", "sh", "st", "th", "tr"]
VOWELS = ["a", "e", "i", "o", "u", "y", "ai", "ea", "ee", "oo", "ou"]
CODAS = ["", "", "n", "r", "s", "t", "l", "ck", "ng", "x", "m"]


def make(n=1000, seed=20240601):
    rng = random.Random(seed)
    words, seen = [], set()
    while len(words) < n:
        target = rng.randrange(6, 11)
        w = ""
        while len(w) < target:
            w += rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS)
        w = w[:target]
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


if __name__ == "__main__":
    import os
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "words1000.txt")
    with open(path, "w") as f:
        f.write("\n".join(make()) + "\n")
    print(path)
