"""recur's encoder-decoder written in PyTorch, for moving models between the two.

The module tree gives the same state_dict names and shapes as recur's `model.safetensors`
(`encoder.rnn.weight_ih_l0`, `decoder.attention.W_query.bias`, `decoder.out.weight`, ...), so
`load_state_dict(strict=True)` is the whole conversion. The maths is that of recur's
`src/seq2seq` (and of the tutorials): time-major tensors, (len, batch, ...).

    encoder:  out, state = RNN(Embedding(src))           out (S, B, D*H)
    bridge:   decoder layer l starts from cat(h_n[2l], h_n[2l+1]) (bidirectional) or h_n[l]
    decoder step i, previous token y (B,), e = Embedding(y) (B, E):
      none:      s = RNN(e, s);                  logits = out(s_top)
      bahdanau:  c = attend(s_top_prev);  s = RNN(cat(e, c), s);  logits = out(cat(s_top, c, e))
                 score_j = v . tanh(W_query q + W_key h_j)
      luong_*:   s = RNN(cat(e, feed), s);  c = attend(s_top);  feed = tanh(W_combine cat(c, s_top))
                 logits = out(feed);  score_j = s_top . h_j (dot) or s_top . W_key h_j (general)

Only padding-free batches are handled here (every source in a batch has the same length), which
is all the round-trip script needs: greedy decoding one word at a time, and toy training on
batches of equal-length words.
"""

import json
import math
from pathlib import Path

import torch
import torch.nn as nn

PAD, BOS, EOS, UNK = 0, 1, 2, 3
RNNS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn_tanh": nn.RNN, "rnn_relu": nn.RNN}


def make_rnn(cell, inp, hidden, layers, bidirectional=False):
    extra = {"nonlinearity": "relu"} if cell == "rnn_relu" else {}
    return RNNS[cell](inp, hidden, layers, bidirectional=bidirectional, **extra)


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embedding = nn.Embedding(cfg["src_vocab"], cfg["emb_dim"], padding_idx=PAD)
        self.rnn = make_rnn(cfg["cell"], cfg["emb_dim"], cfg["hidden_size"], cfg["layers"],
                            cfg["bidirectional"])
        self.cfg = cfg

    def forward(self, src):                                   # src (S, B)
        out, state = self.rnn(self.embedding(src))            # out (S, B, D*H)
        return out, self.bridge(state)

    def bridge(self, state):
        def join(h):                                          # (L*D, B, H) -> (L, B, D*H)
            if not self.cfg["bidirectional"]:
                return h
            return torch.cat([h[0::2], h[1::2]], -1)
        if isinstance(state, tuple):
            return tuple(join(s) for s in state)
        return join(state)


class Bahdanau(nn.Module):
    def __init__(self, query_dim, key_dim, attn_dim):
        super().__init__()
        self.W_query = nn.Linear(query_dim, attn_dim)
        self.W_key = nn.Linear(key_dim, attn_dim, bias=False)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    def forward(self, query, keys):                           # (B, Q), (S, B, K)
        hidden = torch.tanh(self.W_query(query) + self.W_key(keys))   # (S, B, A)
        weights = torch.softmax(self.v(hidden).squeeze(-1), 0)        # (S, B)
        return (weights.unsqueeze(-1) * keys).sum(0)                  # (B, K)


class Luong(nn.Module):
    def __init__(self, dim, general):
        super().__init__()
        self.W_key = nn.Linear(dim, dim, bias=False) if general else None
        self.W_combine = nn.Linear(2 * dim, dim, bias=False)

    def forward(self, query, keys):                           # (B, H), (S, B, H)
        projected = self.W_key(keys) if self.W_key is not None else keys
        weights = torch.softmax((projected * query).sum(-1), 0)       # (S, B)
        context = (weights.unsqueeze(-1) * keys).sum(0)               # (B, H)
        return torch.tanh(self.W_combine(torch.cat([context, query], -1)))


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = 2 if cfg["bidirectional"] else 1
        hidden, enc, emb = d * cfg["hidden_size"], d * cfg["hidden_size"], cfg["emb_dim"]
        self.kind, self.cell, self.hidden = cfg["attention"], cfg["cell"], hidden
        self.embedding = nn.Embedding(cfg["tgt_vocab"], emb, padding_idx=PAD)
        rnn_in, out_in = emb, hidden
        if self.kind == "bahdanau":
            self.attention = Bahdanau(hidden, enc, cfg["attn_dim"])
            rnn_in, out_in = emb + enc, hidden + enc + emb
        elif self.kind in ("luong_dot", "luong_general"):
            self.attention = Luong(hidden, self.kind == "luong_general")
            rnn_in = emb + hidden
        self.rnn = make_rnn(self.cell, rnn_in, hidden, cfg["layers"])
        self.out = nn.Linear(out_in, cfg["tgt_vocab"])

    def top(self, state):
        return (state[0] if self.cell == "lstm" else state)[-1]

    def step(self, y, state, keys, feed):
        """One step: previous tokens y (B,) -> logits (B, V), new state, new input feed."""
        e = self.embedding(y)                                          # (B, E)
        if self.kind == "bahdanau":
            c = self.attention(self.top(state), keys)                  # (B, K)
            o, state = self.rnn(torch.cat([e, c], -1).unsqueeze(0), state)
            return self.out(torch.cat([o[0], c, e], -1)), state, feed
        if self.kind == "none":
            o, state = self.rnn(e.unsqueeze(0), state)
            return self.out(o[0]), state, feed
        if feed is None:
            feed = e.new_zeros(e.shape[0], self.hidden)
        o, state = self.rnn(torch.cat([e, feed], -1).unsqueeze(0), state)
        feed = self.attention(o[0], keys)                              # (B, H)
        return self.out(feed), state, feed


class Seq2Seq(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def forward(self, src, tgt_in):
        """Teacher forcing: src (S, B), tgt_in (T, B) starting with BOS -> logits (T, B, V)."""
        keys, state = self.encoder(src)
        feed, logits = None, []
        for y in tgt_in:
            out, state, feed = self.decoder.step(y, state, keys, feed)
            logits.append(out)
        return torch.stack(logits)

    @torch.no_grad()
    def greedy(self, src_ids, max_len):
        """One source (list of ids) -> (output ids without EOS, log-probability, truncated).
        At most `max_len` tokens (EOS excluded), as recur's search caps them."""
        if not src_ids:
            return [], 0.0, False
        keys, state = self.encoder(torch.tensor(src_ids).unsqueeze(1))
        y, feed, out_ids, log_prob = torch.tensor([BOS]), None, [], 0.0
        for _ in range(max_len):
            logits, state, feed = self.decoder.step(y, state, keys, feed)
            logp = torch.log_softmax(logits[0], -1)
            best = int(torch.argmax(logp))
            log_prob += float(logp[best])
            if best == EOS:
                return out_ids, log_prob, False
            out_ids.append(best)
            y = torch.tensor([best])
        # `max_len` tokens without EOS: truncated, as recur's search does (no EOS term).
        return out_ids, log_prob, True


class Vocab:
    """recur's vocabulary file (`recur-vocab-v1`): ids are positions in `tokens`."""

    def __init__(self, tokens):
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def load(cls, path):
        doc = json.loads(Path(path).read_text())
        assert doc["format"] == "recur-vocab-v1", doc.get("format")
        return cls(doc["tokens"])

    def save(self, path):
        doc = {"format": "recur-vocab-v1", "tokens": self.tokens}
        Path(path).write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")


class Transducer:
    """A recur model directory in PyTorch: config, vocabularies and the module."""

    def __init__(self, config, src_vocab, tgt_vocab, model):
        self.config, self.src_vocab, self.tgt_vocab, self.model = config, src_vocab, tgt_vocab, model

    @classmethod
    def load(cls, directory):
        from safetensors.torch import load_file
        d = Path(directory)
        config = json.loads((d / "config.json").read_text())
        model = Seq2Seq(config["model"])
        model.load_state_dict(load_file(str(d / "model.safetensors")), strict=True)
        model.eval()
        return cls(config, Vocab.load(d / "src_vocab.json"), Vocab.load(d / "tgt_vocab.json"), model)

    def save(self, directory):
        from safetensors.torch import save_file
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(d / "model.safetensors"))
        (d / "config.json").write_text(json.dumps(self.config, indent=2) + "\n")
        self.src_vocab.save(d / "src_vocab.json")
        self.tgt_vocab.save(d / "tgt_vocab.json")

    def encode_source(self, text):
        data = self.config.get("data", {})
        if data.get("lowercase_src", False):
            text = text.lower()
        toks = list(text) if data.get("src_tokens", "chars") == "chars" else text.split()
        ids = [self.src_vocab.index.get(t, UNK) for t in toks]
        return ids + [EOS] if data.get("src_eos", False) else ids

    def translate(self, text):
        """Greedy decoding with recur's default length rule: at most ceil(3 x source tokens) + 5."""
        src = self.encode_source(text)
        ids, log_prob, truncated = self.model.greedy(src, math.ceil(3 * len(src)) + 5)
        toks = [self.tgt_vocab.tokens[i] for i in ids]
        sep = "" if self.config.get("data", {}).get("tgt_tokens", "chars") == "chars" else " "
        return sep.join(toks), log_prob, truncated
