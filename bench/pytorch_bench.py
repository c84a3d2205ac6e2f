#!/usr/bin/env python3
"""Eager PyTorch reference timings for recur's benchmark workloads (CPU, float32).

Usage (inside .venv-bench, see bench/setup_venv.sh):
    python bench/pytorch_bench.py --threads 2 [--workloads w1-lstm,w3-train] [--quick]

Prints ONE JSON line per workload:
    {"impl":"pytorch","workload":...,"median_ms":...,"runs":...,"threads":...,
     "tokens_per_s"|"words_per_s":...,"gflops":...,"peak_rss_mb":..., ...}

Each workload runs in a fresh child process (this same script with --child NAME), so
peak_rss_mb (ru_maxrss of the child) is per workload; it includes the cost of `import torch`,
reported separately as import_rss_mb.  Timing: `warmup` untimed runs, then `runs` timed runs
(time.perf_counter), median reported.

FLOP convention (identical in recur, see bench/FLOPS.md): only matrix products are counted,
2 FLOPs per multiply-add; elementwise work (gates, tanh, softmax, bias, Adam, loss) is not
counted; backward = 2 x forward.  gflops = counted FLOPs / median time.

Workloads (all weights random, torch.manual_seed(0), except w4 which loads g2p_en's checkpoint
when the g2p_en package is installed):
  w1-lstm / w1-gru   nn.LSTM/nn.GRU(256, 512, num_layers=2, bidirectional=True), x (50, 64, 256);
                     forward + backward of output.sum() (no optimizer).  tokens = T*B = 3200.
  w2-lstm-infer      nn.LSTM(128, 256), x (20, 1, 128), forward under inference_mode.  tokens = 20.
  w3-train           reference Seq2Seq (bench copy of shared/reference/seq2seq.py): lstm, vocab 64/64,
                     emb 128, enc bi-LSTM hidden 256 x 2 layers (dec hidden 512 x 2), Bahdanau attn 256,
                     S = T = 20 (all sources full length 20), B = 64; Adam(lr=1e-3) step:
                     zero_grad, forward (teacher forcing), CE(ignore PAD), backward, step.
                     tokens = B*T target tokens = 1280.
  w3-infer-b64/-b1   greedy decoding, same model, B = 64 / 1 sources of length 20, exactly 20 decoder
                     steps (NO early stop on EOS: weights are random; recur must also decode all 20
                     steps), Python loop per step: embedding(prev argmax) -> Bahdanau attention ->
                     rnn step -> out -> argmax.  tokens = B*20 generated tokens.
  w4-g2p-b1/-b256    g2p_en-sized GRU encoder-decoder (emb 256, hidden 256 as in g2p_en's real
                     checkpoint20.npz, 1 layer, no attention,
                     grapheme vocab 29, phoneme vocab 74), greedy decoding of the 1,000 words of
                     bench/words1000.txt (6-10 letters).  Encoder input = letters + '</s>' (g2p_en's
                     tokenisation); decoder starts from '<s>' (2) with h0 = encoder final state; stops at
                     '</s>' (3) or after 20 steps.  b1: one word at a time (latency; stops at its own EOS,
                     exactly like g2p_en.G2p.predict); b256: batches of 256 words (packed encoder), the
                     decoder loop of a batch stops when every word emitted EOS (or 20 steps).
                     words = 1000 per run.
  w5-beam-b256/-b1   the shipped models/hi-translit (bi-LSTM encoder 128 x 2, LSTM decoder 256, Bahdanau
                     attention 128, emb 64, vocab 30/67), beam search (beam 4, 1-best, sum of
                     log-probs, no length penalty, at most ceil(3 x source chars) + 5 tokens, never more
                     than 500) over the 4,442 distinct romanized words of the Dakshina Hindi test
                     lexicon, batches of 256 words / one word at a time.  A batched, tensorised beam
                     search as the tutorials' decoder extends to it: every source keeps `beam` slots
                     (scores -inf for empty ones), top-k over beam x vocab candidates per source,
                     candidates ending in EOS finish (the beam shrinks until the next step), sources
                     leave the batch once done (no live slot, or no live score above the best
                     finished one).  `--dump-w5 N` prints the first N words' outputs (to compare with
                     `recur translate --model models/hi-translit --beam 4`).
"""
import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORDS_FILE = os.path.join(HERE, "words1000.txt")

# workload -> (warmup, runs) in full mode and in --quick mode
SCHEDULE = {
    "w1-lstm": ((2, 10), (1, 3)),
    "w1-gru": ((2, 10), (1, 3)),
    "w2-lstm-infer": ((50, 500), (20, 100)),
    "w3-train": ((3, 10), (1, 3)),
    "w3-infer-b64": ((5, 30), (2, 10)),
    "w3-infer-b1": ((10, 100), (5, 30)),
    "w4-g2p-b1": ((1, 5), (1, 3)),
    "w4-g2p-b256": ((2, 10), (1, 3)),
    "w5-beam-b256": ((1, 5), (1, 3)),
    "w5-beam-b1": ((1, 3), (0, 1)),
}
WORKLOADS = list(SCHEDULE)

PAD, BOS, EOS, UNK = 0, 1, 2, 3


# ----------------------------------------------------------------------------------------------
# FLOP formulas (2 FLOPs per multiply-add, matmuls only).  Same formulas in recur / FLOPS.md.
# ----------------------------------------------------------------------------------------------
GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def rnn_layer_flops(cell, T, B, I, H):
    """One direction of one layer, forward: 2*T*B*G*H*(I+H), G = 4 (LSTM), 3 (GRU), 1 (RNN)."""
    return 2 * T * B * GATES[cell] * H * (I + H)


def rnn_stack_flops(cell, T, B, I, H, layers, dirs):
    """Forward of a stacked (bi)RNN: layer 0 input I, later layers input dirs*H."""
    total = 0
    for l in range(layers):
        total += dirs * rnn_layer_flops(cell, T, B, I if l == 0 else dirs * H, H)
    return total


def w1_flops(cell):
    # forward + backward = 3 x forward
    return 3 * rnn_stack_flops(cell, T=50, B=64, I=256, H=512, layers=2, dirs=2)


def w2_flops():
    return rnn_stack_flops("lstm", T=20, B=1, I=128, H=256, layers=1, dirs=1)


def seq2seq_bahdanau_forward_flops(B, S, T, E, H, layers, V_tgt, A, cell="lstm"):
    """Forward FLOPs of the reference Seq2Seq with bidirectional encoder and Bahdanau attention.

    encoder     rnn_stack(cell, S, B, E, H, layers, 2)
    keys        2*S*B*K*A        (W_key h_j, counted ONCE: it does not depend on the decoder step;
                                  the reference code / this PyTorch bench recompute it every step,
                                  which is extra work not credited)
    per step    query 2*B*Hd*A + score v 2*S*B*A + context 2*S*B*K
                + decoder rnn: layer0 2*B*G*Hd*((E+K)+Hd), layer l>0 2*B*G*Hd*(Hd+Hd)
                + out 2*B*V_tgt*(Hd+K+E)
    with K = 2H (encoder output), Hd = 2H (decoder hidden); embeddings/softmax/tanh are free.
    """
    K = Hd = 2 * H
    G = GATES[cell]
    enc = rnn_stack_flops(cell, S, B, E, H, layers, 2)
    keys = 2 * S * B * K * A
    step = 2 * B * Hd * A + 2 * S * B * A + 2 * S * B * K
    step += 2 * B * G * Hd * ((E + K) + Hd) + (layers - 1) * 2 * B * G * Hd * (2 * Hd)
    step += 2 * B * V_tgt * (Hd + K + E)
    return enc + keys + T * step


W3 = dict(S=20, T=20, E=128, H=256, layers=2, V_src=64, V_tgt=64, A=256)


def w3_train_flops():
    return 3 * seq2seq_bahdanau_forward_flops(64, W3["S"], W3["T"], W3["E"], W3["H"], W3["layers"],
                                              W3["V_tgt"], W3["A"])


def w3_infer_flops(B):
    return seq2seq_bahdanau_forward_flops(B, W3["S"], W3["T"], W3["E"], W3["H"], W3["layers"],
                                          W3["V_tgt"], W3["A"])


# g2p_en 2.1.0 checkpoint20.npz is emb 256 / hidden 256 (its source comments saying 64/128 are stale).
G2P = dict(E=256, H=256, V_g=29, V_p=74, max_steps=20)


def g2p_flops(enc_rows, dec_rows):
    """enc_rows = sum over words of (letters + 1) encoder steps actually computed (packed),
    dec_rows = sum over executed decoder steps of the rows (batch size) computed in that step.
    encoder per row 2*3H*(E+H); decoder per row 2*3H*(E+H) + out 2*V_p*H."""
    E, H, V = G2P["E"], G2P["H"], G2P["V_p"]
    return enc_rows * 2 * 3 * H * (E + H) + dec_rows * (2 * 3 * H * (E + H) + 2 * V * H)


# ----------------------------------------------------------------------------------------------
# Models (children only: these import torch)
# ----------------------------------------------------------------------------------------------
def build_seq2seq(torch):
    """Re-expression of shared/reference/seq2seq.py (cell lstm/gru/rnn, attention bahdanau only
    is needed here; the other attentions are kept for completeness)."""
    nn = torch.nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    RNNS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}

    class Encoder(nn.Module):
        def __init__(self, cell, vocab, emb_dim, hidden, layers, bidirectional):
            super().__init__()
            self.embedding = nn.Embedding(vocab, emb_dim, padding_idx=PAD)
            self.rnn = RNNS[cell](emb_dim, hidden, layers, bidirectional=bidirectional)
            self.cell, self.layers, self.bidirectional = cell, layers, bidirectional

        def forward(self, src, lengths):
            emb = self.embedding(src)
            packed = pack_padded_sequence(emb, lengths.cpu(), enforce_sorted=False)
            out, state = self.rnn(packed)
            out, _ = pad_packed_sequence(out, total_length=src.shape[0])
            return out, self.bridge(state)

        def bridge(self, state):
            def join(h):
                if not self.bidirectional:
                    return h
                return torch.stack([torch.cat([h[2 * l], h[2 * l + 1]], -1) for l in range(self.layers)])
            if self.cell == "lstm":
                return (join(state[0]), join(state[1]))
            return join(state)

    class Bahdanau(nn.Module):
        def __init__(self, query_dim, key_dim, attn_dim):
            super().__init__()
            self.W_query = nn.Linear(query_dim, attn_dim, bias=True)
            self.W_key = nn.Linear(key_dim, attn_dim, bias=False)
            self.v = nn.Linear(attn_dim, 1, bias=False)

        def forward(self, query, keys, mask):
            score = self.v(torch.tanh(self.W_query(query).unsqueeze(0) + self.W_key(keys))).squeeze(-1)
            score = score.masked_fill(mask, float("-inf"))
            a = torch.softmax(score, 0)
            return (a.unsqueeze(-1) * keys).sum(0), a

    class Luong(nn.Module):
        def __init__(self, dim, general):
            super().__init__()
            self.W_key = nn.Linear(dim, dim, bias=False) if general else None
            self.W_combine = nn.Linear(2 * dim, dim, bias=False)

        def forward(self, query, keys, mask):
            k = self.W_key(keys) if self.W_key is not None else keys
            score = (k * query.unsqueeze(0)).sum(-1).masked_fill(mask, float("-inf"))
            a = torch.softmax(score, 0)
            c = (a.unsqueeze(-1) * keys).sum(0)
            return torch.tanh(self.W_combine(torch.cat([c, query], -1))), a

    class Decoder(nn.Module):
        def __init__(self, cell, vocab, emb_dim, hidden, layers, enc_dim, attention, attn_dim):
            super().__init__()
            self.embedding = nn.Embedding(vocab, emb_dim, padding_idx=PAD)
            self.attention_kind, self.cell = attention, cell
            rnn_in, out_in = emb_dim, hidden
            if attention == "bahdanau":
                self.attention = Bahdanau(hidden, enc_dim, attn_dim)
                rnn_in, out_in = emb_dim + enc_dim, hidden + enc_dim + emb_dim
            elif attention in ("luong_dot", "luong_general"):
                self.attention = Luong(hidden, attention == "luong_general")
                rnn_in = emb_dim + hidden
            self.rnn = RNNS[cell](rnn_in, hidden, layers)
            self.out = nn.Linear(out_in, vocab)

        def top(self, state):
            return state[0][-1] if self.cell == "lstm" else state[-1]

        def step(self, y_prev, state, keys, mask, feed=None):
            """One decoder step; returns (logits, state, feed)."""
            e = self.embedding(y_prev)
            if self.attention_kind == "bahdanau":
                c, _ = self.attention(self.top(state), keys, mask)
                o, state = self.rnn(torch.cat([e, c], -1).unsqueeze(0), state)
                return self.out(torch.cat([o[0], c, e], -1)), state, None
            if self.attention_kind in ("luong_dot", "luong_general"):
                if feed is None:
                    feed = e.new_zeros(e.shape[0], self.rnn.hidden_size)
                o, state = self.rnn(torch.cat([e, feed], -1).unsqueeze(0), state)
                feed, _ = self.attention(o[0], keys, mask)
                return self.out(feed), state, feed
            o, state = self.rnn(e.unsqueeze(0), state)
            return self.out(o[0]), state, None

        def forward(self, tgt_in, state, keys, mask):
            logits, feed = [], None
            for i in range(tgt_in.shape[0]):
                lg, state, feed = self.step(tgt_in[i], state, keys, mask, feed)
                logits.append(lg)
            return torch.stack(logits)

    class Seq2Seq(nn.Module):
        def __init__(self, cell="lstm", src_vocab=20, tgt_vocab=20, emb_dim=8, hidden=6, layers=2,
                     bidirectional=True, attention="bahdanau", attn_dim=5):
            super().__init__()
            d = 2 if bidirectional else 1
            self.encoder = Encoder(cell, src_vocab, emb_dim, hidden, layers, bidirectional)
            self.decoder = Decoder(cell, tgt_vocab, emb_dim, d * hidden, layers, d * hidden, attention, attn_dim)

        def forward(self, src, src_lengths, tgt_in):
            keys, state = self.encoder(src, src_lengths)
            mask = torch.arange(src.shape[0]).unsqueeze(1) >= src_lengths.unsqueeze(0)
            return self.decoder(tgt_in, state, keys, mask)

        def greedy(self, src, src_lengths, steps):
            """Greedy decoding, exactly `steps` steps (no EOS stop), as the tutorials write it."""
            keys, state = self.encoder(src, src_lengths)
            mask = torch.arange(src.shape[0]).unsqueeze(1) >= src_lengths.unsqueeze(0)
            y = torch.full((src.shape[1],), BOS, dtype=torch.long)
            feed, out = None, []
            for _ in range(steps):
                logits, state, feed = self.decoder.step(y, state, keys, mask, feed)
                y = logits.argmax(-1)
                out.append(y)
            return torch.stack(out)

    return Seq2Seq


def make_w3_model(torch):
    Seq2Seq = build_seq2seq(torch)
    return Seq2Seq("lstm", W3["V_src"], W3["V_tgt"], W3["E"], W3["H"], W3["layers"], True,
                   "bahdanau", W3["A"])


def random_tokens(torch, shape, vocab):
    return torch.randint(4, vocab, shape)  # real tokens only (no PAD/BOS/EOS/UNK)


# ----------------------------------------------------------------------------------------------
# Workload builders: return (fn, flops_per_run, unit_name, units_per_run).  fn() runs once.
# ----------------------------------------------------------------------------------------------
def setup_w1(torch, cell):
    rnn = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(256, 512, num_layers=2, bidirectional=True)
    x = torch.randn(50, 64, 256)

    def fn():
        rnn.zero_grad(set_to_none=True)
        out, _ = rnn(x)
        out.sum().backward()
    return fn, w1_flops(cell), "tokens_per_s", 50 * 64


def setup_w2(torch):
    rnn = torch.nn.LSTM(128, 256)
    x = torch.randn(20, 1, 128)

    def fn():
        with torch.inference_mode():
            rnn(x)
    return fn, w2_flops(), "tokens_per_s", 20


def setup_w3_train(torch):
    model = make_w3_model(torch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    B, S, T = 64, W3["S"], W3["T"]
    src = random_tokens(torch, (S, B), W3["V_src"])
    lengths = torch.full((B,), S, dtype=torch.long)
    tgt = random_tokens(torch, (T, B), W3["V_tgt"])
    tgt_in = torch.cat([torch.full((1, B), BOS, dtype=torch.long), tgt[:-1]])
    tgt_out = tgt
    ce = torch.nn.functional.cross_entropy

    def fn():
        opt.zero_grad(set_to_none=True)
        logits = model(src, lengths, tgt_in)
        loss = ce(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1), ignore_index=PAD)
        loss.backward()
        opt.step()
    return fn, w3_train_flops(), "tokens_per_s", B * T


def setup_w3_infer(torch, B):
    model = make_w3_model(torch).eval()
    S, T = W3["S"], W3["T"]
    src = random_tokens(torch, (S, B), W3["V_src"])
    lengths = torch.full((B,), S, dtype=torch.long)

    def fn():
        with torch.inference_mode():
            model.greedy(src, lengths, T)
    return fn, w3_infer_flops(B), "tokens_per_s", B * T


def g2p_checkpoint_path():
    """Path of g2p_en/checkpoint20.npz without importing g2p_en (its import needs nltk data)."""
    import importlib.util
    spec = importlib.util.find_spec("g2p_en")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = os.path.join(list(spec.submodule_search_locations)[0], "checkpoint20.npz")
    return p if os.path.exists(p) else None


def setup_w4(torch, batch):
    nn = torch.nn
    from torch.nn.utils.rnn import pack_sequence
    E, H, Vg, Vp = G2P["E"], G2P["H"], G2P["V_g"], G2P["V_p"]
    enc_emb, enc_rnn = nn.Embedding(Vg, E), nn.GRU(E, H)
    dec_emb, dec_rnn, fc = nn.Embedding(Vp, E), nn.GRU(E, H), nn.Linear(H, Vp)
    ckpt = g2p_checkpoint_path()
    weights = "random"
    if ckpt:
        import numpy as np
        v = np.load(ckpt)
        t = lambda k: torch.from_numpy(np.ascontiguousarray(v[k], dtype=np.float32))
        with torch.no_grad():
            enc_emb.weight.copy_(t("enc_emb")); dec_emb.weight.copy_(t("dec_emb"))
            for rnn, p in ((enc_rnn, "enc"), (dec_rnn, "dec")):
                rnn.weight_ih_l0.copy_(t(p + "_w_ih")); rnn.weight_hh_l0.copy_(t(p + "_w_hh"))
                rnn.bias_ih_l0.copy_(t(p + "_b_ih")); rnn.bias_hh_l0.copy_(t(p + "_b_hh"))
            fc.weight.copy_(t("fc_w")); fc.bias.copy_(t("fc_b"))
        weights = "g2p_en checkpoint20.npz"
    graphemes = ["<pad>", "<unk>", "</s>"] + list("abcdefghijklmnopqrstuvwxyz")
    g2idx = {g: i for i, g in enumerate(graphemes)}
    words = open(WORDS_FILE).read().split()
    ids = [torch.tensor([g2idx.get(c, 1) for c in w] + [2]) for w in words]  # + '</s>'
    SOS, END, MAXS = 2, 3, G2P["max_steps"]
    counts = {"enc": 0, "dec": 0}

    def decode_batch(seqs):
        n = len(seqs)
        if n == 1:
            _, h = enc_rnn(enc_emb(seqs[0]).unsqueeze(1))  # (L, 1, E)
        else:
            _, h = enc_rnn(pack_sequence([enc_emb(s) for s in seqs], enforce_sorted=False))
        counts["enc"] += sum(len(s) for s in seqs)
        y = torch.full((n,), SOS, dtype=torch.long)
        done = torch.zeros(n, dtype=torch.bool)
        preds = []
        for _ in range(MAXS):
            o, h = dec_rnn(dec_emb(y).unsqueeze(0), h)
            y = fc(o[0]).argmax(-1)
            counts["dec"] += n
            done |= y == END
            preds.append(y)
            if bool(done.all()):
                break
        return preds

    def fn():
        with torch.inference_mode():
            for i in range(0, len(ids), batch):
                decode_batch(ids[i:i + batch])

    # One counting run (also a warm-up) to get the executed rows for the FLOP formula.
    fn()
    flops = g2p_flops(counts["enc"], counts["dec"])
    return fn, flops, "words_per_s", len(words), {"weights": weights, "dec_rows": counts["dec"]}

W5_MODEL = os.path.join(HERE, "..", "models", "hi-translit")
W5_WORDS = os.path.join(HERE, "..", "data", "dakshina_hi", "lexicons", "hi.translit.sampled.test.tsv")
W5_BEAM, W5_MAX_LEN, W5_RATIO, W5_OFFSET = 4, 500, 3.0, 5


def load_safetensors(torch, path):
    """name -> float32 tensor (a safetensors file of F32 tensors, read without the package)."""
    import struct
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        assert meta["dtype"] == "F32", name
        a, b = meta["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32).reshape(meta["shape"])
    return out


def w5_setup_model(torch):
    """The hi-translit model in the reference Seq2Seq, its vocabularies and the test words."""
    cfg = json.load(open(os.path.join(W5_MODEL, "config.json")))["model"]
    Seq2Seq = build_seq2seq(torch)
    m = Seq2Seq(cfg["cell"], cfg["src_vocab"], cfg["tgt_vocab"], cfg["emb_dim"], cfg["hidden_size"],
                cfg["layers"], cfg["bidirectional"], cfg["attention"], cfg["attn_dim"])
    m.load_state_dict(load_safetensors(torch, os.path.join(W5_MODEL, "model.safetensors")))
    m.eval()
    src_vocab = json.load(open(os.path.join(W5_MODEL, "src_vocab.json")))["tokens"]
    tgt_vocab = json.load(open(os.path.join(W5_MODEL, "tgt_vocab.json")))["tokens"]
    s2i = {t: i for i, t in enumerate(src_vocab)}
    words, seen = [], set()
    for line in open(W5_WORDS, encoding="utf-8"):
        cols = line.rstrip("\n").split("\t")
        if len(cols) > 1 and cols[1] not in seen:
            seen.add(cols[1])
            words.append(cols[1])
    ids = [[s2i.get(c, UNK) for c in w.lower()] for w in words]
    return m, ids, words, tgt_vocab


def beam_search(torch, m, seqs, beam, counts):
    """Batched beam search of the sources `seqs` (lists of ids); returns the best tokens of each."""
    n = len(seqs)
    lens = torch.tensor([len(s) for s in seqs])
    S = int(lens.max())
    src = torch.full((S, n), PAD, dtype=torch.long)
    for j, s in enumerate(seqs):
        src[:len(s), j] = torch.tensor(s)
    keys, state = m.encoder(src, lens)                       # (S, n, K), (L, n, H) x2
    counts["enc"] += int(lens.sum())
    caps = [min(W5_MAX_LEN, math.ceil(W5_RATIO * len(s)) + W5_OFFSET) for s in seqs]
    dec = m.decoder
    V = dec.out.out_features
    # Working set: `act` sources, each with `beam` slots (rows act*beam), slot-major per source.
    act = torch.arange(n)
    rep = lambda t, dim: t.repeat_interleave(beam, dim)
    keys, state = rep(keys, 1), tuple(rep(x, 1) for x in state)
    mask = torch.arange(S).unsqueeze(1) >= rep(lens, 0).unsqueeze(0)
    score = torch.full((n, beam), float("-inf"))
    score[:, 0] = 0.0
    y = torch.full((n * beam,), BOS, dtype=torch.long)
    hist = torch.zeros((n, beam, 0), dtype=torch.long)
    best = [None] * n                                         # (log_prob, tokens)
    t = 0
    while len(act) > 0:
        logits, state, _ = dec.step(y, state, keys, mask)
        counts["dec"] += int(y.shape[0])
        counts["pos"] += int(mask.logical_not().sum())
        logp = torch.log_softmax(logits, -1).view(len(act), beam, V)
        cand = (score.unsqueeze(-1) + logp).view(len(act), beam * V)
        top, idx = cand.topk(beam, dim=-1)                    # (act, beam), best first
        parent, tok = idx // V, idx % V
        hist = torch.cat([hist.gather(1, parent.unsqueeze(-1).expand(-1, -1, hist.shape[2])),
                          tok.unsqueeze(-1)], -1)
        t += 1
        new_score = top.clone()
        keep = []
        for i, s in enumerate(act.tolist()):
            for k in range(beam):
                lp = float(top[i, k])
                if lp == float("-inf"):
                    continue
                tk = int(tok[i, k])
                if tk == EOS or t >= caps[s]:
                    toks = hist[i, k, :-1] if tk == EOS else hist[i, k]
                    h = (lp, toks.tolist())
                    if best[s] is None or (h[0], [-x for x in h[1]]) > (best[s][0], [-x for x in best[s][1]]):
                        best[s] = h
                    new_score[i, k] = float("-inf")
            live = new_score[i]
            done = bool(torch.isinf(live).all()) or (best[s] is not None and float(live.max()) <= best[s][0])
            if not done:
                keep.append(i)
        keep = torch.tensor(keep, dtype=torch.long)
        rows = (keep.unsqueeze(1) * beam + torch.arange(beam)).view(-1)
        src_rows = (keep.unsqueeze(1) * beam + parent[keep]).view(-1)   # each slot's parent row
        act, score, hist = act[keep], new_score[keep], hist[keep]
        state = tuple(x[:, src_rows] for x in state)
        keys, mask = keys[:, rows], mask[:, rows]
        y = tok[keep].reshape(-1)
    return [b[1] for b in best]


def setup_w5(torch, batch):
    m, ids, words, _ = w5_setup_model(torch)
    counts = {"enc": 0, "dec": 0, "pos": 0}

    def fn():
        with torch.inference_mode():
            for i in range(0, len(ids), batch):
                beam_search(torch, m, ids[i:i + batch], W5_BEAM, counts)

    fn()  # one counting run (also a warm-up)
    flops = w5_flops(counts["enc"], counts["dec"], counts["pos"])
    return fn, flops, "words_per_s", len(ids), {"weights": "models/hi-translit", "dec_rows": counts["dec"]}


def w5_flops(enc_rows, dec_rows, pos):
    """recur's bahdanau_decode_flops for hi-translit: E 64, H 128 x 2 directions, A 128, V 67."""
    E, H, A, V = 64, 128, 128, 67
    K = 2 * H
    enc = 2 * enc_rows * 4 * H * (E + H) * 2
    keys = 2 * enc_rows * K * A
    per_row = 2 * K * A + 2 * V * (K + K + E) + 2 * 4 * K * (E + K + K)
    return enc + keys + dec_rows * per_row + pos * (2 * A + 2 * K)


def dump_w5(n):
    import torch
    torch.set_num_threads(1)
    m, ids, words, tgt_vocab = w5_setup_model(torch)
    with torch.inference_mode():
        outs = beam_search(torch, m, ids[:n], W5_BEAM, {"enc": 0, "dec": 0, "pos": 0})
    for w, o in zip(words[:n], outs):
        print(w + "\t" + "".join(tgt_vocab[i] for i in o))


def setup(torch, name):
    if name in ("w1-lstm", "w1-gru"):
        return setup_w1(torch, name[3:])
    if name == "w2-lstm-infer":
        return setup_w2(torch)
    if name == "w3-train":
        return setup_w3_train(torch)
    if name == "w3-infer-b64":
        return setup_w3_infer(torch, 64)
    if name == "w3-infer-b1":
        return setup_w3_infer(torch, 1)
    if name == "w4-g2p-b1":
        return setup_w4(torch, 1)
    if name == "w4-g2p-b256":
        return setup_w4(torch, 256)
    if name == "w5-beam-b256":
        return setup_w5(torch, 256)
    if name == "w5-beam-b1":
        return setup_w5(torch, 1)
    raise SystemExit(f"unknown workload {name}")


def maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def child(args):
    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    import_rss = maxrss_mb()
    load0 = os.getloadavg()[0]  # the machine is shared: record how busy it was
    res = setup(torch, args.child)
    fn, flops, unit, units = res[:4]
    extra = res[4] if len(res) > 4 else {}
    warmup, runs = SCHEDULE[args.child][1 if args.quick else 0]
    if args.runs:
        runs = args.runs
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    rec = {"impl": "pytorch", "workload": args.child, "median_ms": round(med * 1e3, 4),
           "min_ms": round(min(times) * 1e3, 4), "runs": runs, "threads": args.threads,
           unit: round(units / med, 2), "gflops": round(flops / med / 1e9, 3), "flops": flops,
           "peak_rss_mb": round(maxrss_mb(), 1), "import_rss_mb": round(import_rss, 1),
           "torch": torch.__version__, "loadavg_1m": round(load0, 2)}
    rec.update(extra)
    print(json.dumps(rec), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help="comma-separated subset of: " + ",".join(WORKLOADS))
    ap.add_argument("--quick", action="store_true", help="few repetitions")
    ap.add_argument("--runs", type=int, default=0, help="override the number of timed runs")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--dump-w5", type=int, default=0, help="print w5's outputs of the first N words")
    args = ap.parse_args()
    if args.dump_w5:
        return dump_w5(args.dump_w5)
    if args.child:
        return child(args)
    names = [w.strip() for w in args.workloads.split(",") if w.strip()]
    for w in names:
        if w not in SCHEDULE:
            raise SystemExit(f"unknown workload {w!r}; known: {','.join(WORKLOADS)}")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    rc = 0
    for w in names:
        cmd = [sys.executable, os.path.abspath(__file__), "--child", w, "--threads", str(args.threads)]
        if args.quick:
            cmd.append("--quick")
        if args.runs:
            cmd += ["--runs", str(args.runs)]
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
        line = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
        if p.returncode != 0 or not line.startswith("{"):
            print(json.dumps({"impl": "pytorch", "workload": w, "error": f"exit {p.returncode}"}), flush=True)
            rc = 1
        else:
            print(line, flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
