//! The model's hyper-parameters, saved next to every checkpoint.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::nn::RnnMode;

// The special ids are defined once, by the vocabulary.
pub use crate::data::vocab::{TokenId, BOS, EOS, PAD, UNK};

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

    /// Checks sizes before building.
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
        Ok(())
    }
}
