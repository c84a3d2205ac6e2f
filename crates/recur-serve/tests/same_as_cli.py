"""The server's answers under concurrent load are byte-identical to `recur translate`.

    python3 same_as_cli.py RECUR_BIN SERVER_URL WORDS_TSV

Sends 600 words of the Dakshina test lexicon as one-word requests from 32 threads (and 100
six-word sentences), prints them as `recur translate --scores` (and `--sentences`) would, and
compares byte for byte with the CLI's output. Only talks to SERVER_URL (127.0.0.1).
"""

import json
import struct
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def post(url, body):
    req = urllib.request.Request(url + "/v1/translate", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def f32(x):
    # The exact f32 value, so that %.4f rounds as Rust's {:.4} does on the f32.
    return struct.unpack("f", struct.pack("f", x))[0]


def main():
    bin_, url, tsv = sys.argv[1:4]
    words = []
    with open(tsv, encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) > 1 and cols[1] not in words:
                words.append(cols[1])
            if len(words) == 600:
                break
    sentences = [" ".join(words[i:i + 6]) for i in range(0, 600, 6)]

    def word(w):
        h = post(url, {"model": "hi-translit", "inputs": [w]})["outputs"][0]["hypotheses"][0]
        return "%s\t%.4f" % (h["text"], f32(h["score"]))

    def sentence(s):
        return post(url, {"model": "hi-translit", "inputs": [s], "sentences": True})["outputs"][0]["hypotheses"][0]["text"]

    with ThreadPoolExecutor(32) as pool:
        served = list(pool.map(word, words))
        served_s = list(pool.map(sentence, sentences))
    cli = subprocess.run([bin_, "translate", "--model", "hi-translit", "--scores"], input="\n".join(words) + "\n",
                         capture_output=True, text=True, check=True).stdout
    cli_s = subprocess.run([bin_, "translate", "--model", "hi-translit", "--sentences"], input="\n".join(sentences) + "\n",
                           capture_output=True, text=True, check=True).stdout
    ok = True
    for name, got, want in [("words", "\n".join(served) + "\n", cli), ("sentences", "\n".join(served_s) + "\n", cli_s)]:
        if got != want:
            ok = False
            for i, (g, w) in enumerate(zip(got.split("\n"), want.split("\n"))):
                if g != w:
                    print(f"{name} line {i + 1}: server {g!r} != recur translate {w!r}")
                    break
        else:
            print(f"{name}: {len(got.splitlines())} answers byte-identical to recur translate")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
