"""Move models between recur and PyTorch, and check that both give the same outputs.

Needs PyTorch and safetensors (`bash bench/setup_venv.sh` installs both into .venv-bench).

recur -> PyTorch: load a recur model directory into the PyTorch module of torch_seq2seq.py with
`load_state_dict(strict=True)`, decode words greedily in PyTorch and compare with
`recur translate --beam 1 --scores` on the same words:

    .venv-bench/bin/python interop/roundtrip.py to-torch --model models/en-g2p --words hello world

PyTorch -> recur: train small models in PyTorch on a toy task (a word followed by its reverse),
save each state dict as safetensors with recur's config and vocabularies, and write what PyTorch
decodes for held-out words to expected.tsv (input, output, log-probability). tests/torch_roundtrip.rs
loads these directories in recur and checks the same outputs and log-probabilities:

    .venv-bench/bin/python interop/roundtrip.py from-torch --out tests/data/torch_roundtrip
"""

import argparse
import random
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from torch_seq2seq import BOS, EOS, Seq2Seq, Transducer, Vocab  # noqa: E402

LETTERS = "abcdefghij"
# Small models that cover every parameter name recur uses: LSTM with Bahdanau attention (2
# layers), GRU with Luong's general attention, tanh RNN without attention (unidirectional).
MODELS = {
    "lstm_bahdanau": dict(cell="lstm", layers=2, bidirectional=True, attention="bahdanau"),
    "gru_luong_general": dict(cell="gru", layers=1, bidirectional=True, attention="luong_general"),
    "rnn_tanh_none": dict(cell="rnn_tanh", layers=1, bidirectional=False, attention="none"),
}


def recur_translate(binary, model, words):
    """`recur translate --beam 1 --scores` -> [(output, log_prob)]."""
    run = subprocess.run([binary, "translate", "--model", str(model), "--beam", "1", "--scores"],
                         input="\n".join(words) + "\n", capture_output=True, text=True, check=True)
    rows = [line.rsplit("\t", 1) for line in run.stdout.splitlines()]
    return [(text, float(score)) for text, score in rows]


def to_torch(args):
    t = Transducer.load(args.model)
    words = args.words or [w.strip() for w in open(args.input, encoding="utf-8") if w.strip()]
    ours = recur_translate(args.recur, args.model, words)
    bad = 0
    for word, (r_text, r_lp) in zip(words, ours):
        p_text, p_lp, _ = t.translate(word)
        same = p_text == r_text and abs(p_lp - r_lp) <= 1e-4 + 1e-4 * abs(p_lp)
        bad += not same
        print(f"{'ok ' if same else 'DIFF'} {word}\trecur: {r_text} ({r_lp:.5f})\ttorch: {p_text} ({p_lp:.5f})")
    print(f"{len(words) - bad} of {len(words)} equal")
    return 1 if bad else 0


def toy_pairs(rng, n):
    """Words of 2-7 letters -> the word followed by its reverse (target as characters)."""
    out = []
    for _ in range(n):
        w = "".join(rng.choice(LETTERS) for _ in range(rng.randint(2, 7)))
        out.append((w, w + w[::-1]))
    return out


def train_toy(model, src_vocab, tgt_vocab, pairs, steps, seed):
    """Adam on batches of equal-length words (no padding needed)."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    by_len = {}
    for s, t in pairs:
        by_len.setdefault(len(s), []).append((s, t))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for step in range(steps):
        batch = rng.sample(by_len[rng.choice(sorted(by_len))], 32)
        src = torch.tensor([[src_vocab.index[c] for c in s] for s, _ in batch]).T     # (S, B)
        tgt = torch.tensor([[tgt_vocab.index[c] for c in t] + [EOS] for _, t in batch]).T
        tgt_in = torch.cat([torch.full((1, len(batch)), BOS), tgt[:-1]])              # (T, B)
        logits = model(src, tgt_in)                                                  # (T, B, V)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"  step {step} loss {loss.item():.4f}")
    model.eval()


def from_torch(args):
    rng = random.Random(0)
    train, held_out = toy_pairs(rng, 4000), toy_pairs(rng, args.words_out)
    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    src_vocab, tgt_vocab = Vocab(specials + list(LETTERS)), Vocab(specials + list(LETTERS))
    for name, arch in MODELS.items():
        cfg = dict(src_vocab=len(src_vocab.tokens), tgt_vocab=len(tgt_vocab.tokens), emb_dim=16,
                   hidden_size=24, attn_dim=20, dropout=0.0, **arch)
        torch.manual_seed(1)
        model = Seq2Seq(cfg)
        print(f"{name}: training {args.steps} steps in PyTorch")
        train_toy(model, src_vocab, tgt_vocab, train, args.steps, seed=1)
        config = {"data": {"src_tokens": "chars", "tgt_tokens": "chars"}, "model": cfg}
        t = Transducer(config, src_vocab, tgt_vocab, model)
        out = Path(args.out) / name
        t.save(out)
        # Also a word with a letter outside the vocabulary (-> UNK) and a long one.
        words = [w for w, _ in held_out] + ["abzde", "abcdefghijabcdefghij"]
        correct, lines = 0, []
        for w in words:
            text, lp, truncated = t.translate(w)
            correct += text == w + w[::-1]
            lines.append(f"{w}\t{text}\t{lp:.6f}\t{int(truncated)}\n")
        (out / "expected.tsv").write_text("".join(lines))
        print(f"  wrote {out}: {correct} of {len(words)} held-out words right in PyTorch")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("to-torch", help="load a recur model in PyTorch and compare outputs")
    a.add_argument("--model", required=True)
    a.add_argument("--words", nargs="*")
    a.add_argument("--input", help="file with one word per line (instead of --words)")
    a.add_argument("--recur", default="target/release/recur")
    b = sub.add_parser("from-torch", help="train toy models in PyTorch, save them for recur")
    b.add_argument("--out", required=True)
    b.add_argument("--steps", type=int, default=600)
    b.add_argument("--words-out", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(1)
    sys.exit(to_torch(args) if args.cmd == "to-torch" else from_torch(args))


if __name__ == "__main__":
    main()
