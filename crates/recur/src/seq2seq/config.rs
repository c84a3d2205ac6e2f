//! The model's hyper-parameters, saved next to every checkpoint.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::nn::RnnMode;

// The special ids are defined once, by the vocabulary.
pub use crate::data::vocab::{TokenId, BOS, EOS, PAD, UNK};

/// The largest model [`Seq2SeqConfig::validate`] accepts, in bytes of f32 parameters
/// ([`Seq2SeqConfig::param_count`] × 4): 4 GiB, about a billion parameters, far above any
/// seq2seq model of this crate, so that a corrupt or hostile `config.json` is refused with a
/// clear error instead of an allocation of terabytes.
pub const MAX_PARAM_BYTES: u64 = 4 << 30;

/// The decoder's attention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttentionKind {
    /// No attention: the decoder sees the source only through its initial state.
    None,
    /// Bahdanau's additive attention, queried with the previous top-layer state.
    Bahdanau,
    /// Luong's dot-product attention with input feeding.
    LuongDot,
    /// Luong's bilinear ("general") attention with input feeding.
    LuongGeneral,
}

/// Architecture of an encoder-decoder, as in the reference `Seq2Seq` module.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Seq2SeqConfig {
    /// Recurrence of encoder and decoder: `lstm`, `gru`, `rnn_tanh` or `rnn_relu`.
    pub cell: RnnMode,
    /// Source vocabulary size (with the specials).
    pub src_vocab: usize,
    /// Target vocabulary size (with the specials).
    pub tgt_vocab: usize,
    /// Embedding size of both sides.
    pub emb_dim: usize,
    /// Encoder hidden size H (the decoder's is D·H).
    pub hidden_size: usize,
    /// Layers of encoder and of decoder.
    pub layers: usize,
    /// Bidirectional encoder.
    pub bidirectional: bool,
    /// Attention of the decoder.
    pub attention: AttentionKind,
    /// Bahdanau's attention size.
    pub attn_dim: usize,
    /// Dropout on embeddings, between recurrent layers and before the output layer (training).
    pub dropout: f32,
}

impl Default for Seq2SeqConfig {
    fn default() -> Self {
        Seq2SeqConfig {
            cell: RnnMode::Lstm,
            src_vocab: 0,
            tgt_vocab: 0,
            emb_dim: 64,
            hidden_size: 128,
            layers: 1,
            bidirectional: true,
            attention: AttentionKind::Bahdanau,
            attn_dim: 128,
            dropout: 0.0,
        }
    }
}

impl Seq2SeqConfig {
    /// D: 2 for a bidirectional encoder.
    pub fn directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// The decoder's hidden size, D·H (the bridge concatenates both directions' states).
    pub fn decoder_hidden(&self) -> usize {
        self.directions() * self.hidden_size
    }

    /// The number of parameters the model of this config has (saturating, never overflows).
    pub fn param_count(&self) -> u128 {
        let n = |v: usize| v as u128;
        let (e, hd) = (
            n(self.emb_dim),
            n(self.directions()).saturating_mul(n(self.hidden_size)),
        );
        let layers = n(self.layers);
        // A stacked recurrence: per layer and direction, gates·H·(input + H) weights and two
        // biases of gates·H; the first layer's input is `input`, the others' D·H.
        let rnn = |input: u128, hidden: u128, dirs: u128| {
            let g = n(self.cell.gates()).saturating_mul(hidden);
            let cell = |i: u128| g.saturating_mul(i.saturating_add(hidden).saturating_add(2));
            let rest = layers.saturating_sub(1);
            dirs.saturating_mul(
                cell(input).saturating_add(rest.saturating_mul(cell(dirs.saturating_mul(hidden)))),
            )
        };
        let (src, tgt) = (n(self.src_vocab), n(self.tgt_vocab));
        let encoder =
            src.saturating_mul(e)
                .saturating_add(rnn(e, n(self.hidden_size), n(self.directions())));
        let (attention, rnn_in, out_in) = match self.attention {
            AttentionKind::None => (0, e, hd),
            AttentionKind::Bahdanau => {
                let a = n(self.attn_dim);
                // w_query (with bias), w_key, v.
                let w = hd.saturating_add(1).saturating_add(hd).saturating_add(1);
                (
                    a.saturating_mul(w),
                    e.saturating_add(hd),
                    hd.saturating_mul(2).saturating_add(e),
                )
            }
            AttentionKind::LuongDot | AttentionKind::LuongGeneral => {
                let general = if self.attention == AttentionKind::LuongGeneral {
                    1
                } else {
                    0
                };
                // Optional w (hd × hd), w_combine (hd × 2·hd).
                (
                    hd.saturating_mul(hd).saturating_mul(2 + general),
                    e.saturating_add(hd),
                    hd,
                )
            }
        };
        let decoder = tgt
            .saturating_mul(e)
            .saturating_add(attention)
            .saturating_add(rnn(rnn_in, hd, 1))
            .saturating_add(tgt.saturating_mul(out_in.saturating_add(1)));
        encoder.saturating_add(decoder)
    }

    /// Checks sizes before building, including the model's size against [`MAX_PARAM_BYTES`].
    pub fn validate(&self) -> Result<()> {
        let op = "Seq2SeqConfig";
        for (name, v) in [
            ("src_vocab", self.src_vocab),
            ("tgt_vocab", self.tgt_vocab),
            ("emb_dim", self.emb_dim),
            ("hidden_size", self.hidden_size),
            ("layers", self.layers),
        ] {
            if v == 0 {
                return Err(Error::arg(op, name, "> 0", 0));
            }
        }
        if self.src_vocab <= UNK as usize || self.tgt_vocab <= UNK as usize {
            return Err(Error::arg(
                op,
                "vocab",
                "room for PAD, BOS, EOS and UNK (> 4 entries)",
                self.src_vocab.min(self.tgt_vocab),
            ));
        }
        if self.attention == AttentionKind::Bahdanau && self.attn_dim == 0 {
            return Err(Error::arg(op, "attn_dim", "> 0 for bahdanau attention", 0));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::arg(
                op,
                "dropout",
                "a probability in [0, 1)",
                self.dropout,
            ));
        }
        let bytes = self.param_count().saturating_mul(4);
        if bytes > u128::from(MAX_PARAM_BYTES) {
            return Err(Error::arg(
                op,
                "model size",
                format!(
                    "at most {MAX_PARAM_BYTES} bytes ({} GiB) of f32 parameters",
                    MAX_PARAM_BYTES >> 30
                ),
                format!(
                    "{} parameters, {bytes} bytes (emb_dim {}, hidden_size {}, layers {}, vocab {}/{})",
                    self.param_count(),
                    self.emb_dim,
                    self.hidden_size,
                    self.layers,
                    self.src_vocab,
                    self.tgt_vocab
                ),
            ));
        }
        Ok(())
    }
}
