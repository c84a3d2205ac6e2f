//! Encoder: embedding (PAD = 0 is the padding index) → stacked, optionally bidirectional
//! recurrent layer over the variable-length source; and the bridge to the decoder's state.
//!
//! ```text
//!   src (S, B) ids → emb (S, B, E) → rnn, packed by lengths → keys (S, B, D·H), h_n (L·D, B, H)
//!   bridge: s0[l] = cat(h_n[D·l], h_n[D·l+1])  (L, B, D·H)      (the same for c_n)
//! ```

use super::config::{Seq2SeqConfig, PAD};
use crate::error::Result;
use crate::module::{Init, Module, Param, Rng64};
use crate::nn::dropout::{apply_mask, Dropout};
use crate::nn::embedding::Embedding;
use crate::nn::{Rnn, RnnCache, RnnConfig, RnnPacked, RnnState};
use crate::tensor::Tensor;

/// The encoder.
#[derive(Clone, Debug)]
pub struct Encoder {
    /// `encoder.embedding`.
    pub embedding: Embedding,
    /// `encoder.rnn`.
    pub rnn: Rnn,
    dropout: Dropout,
    layers: usize,
    directions: usize,
}

/// What [`Encoder::backward`] needs.
#[derive(Clone, Debug)]
pub struct EncoderCache {
    src: Vec<i64>,
    emb_mask: Option<Vec<f32>>,
    rnn: RnnCache,
}

/// (L·D, B, H) → (L, B, D·H): each layer's directions side by side.
pub fn bridge(h_n: &Tensor, layers: usize, directions: usize) -> Tensor {
    if directions == 1 {
        return h_n.clone();
    }
    let (b, h) = (h_n.dim(1), h_n.dim(2));
    let mut out = Tensor::zeros(&[layers, b, directions * h]);
    for l in 0..layers {
        for d in 0..directions {
            for r in 0..b {
                let src = &h_n.data()[((l * directions + d) * b + r) * h..][..h];
                out.data_mut()[(l * b + r) * directions * h + d * h..][..h].copy_from_slice(src);
            }
        }
    }
    out
}

/// The inverse of [`bridge`] (used for gradients).
pub fn unbridge(s: &Tensor, directions: usize) -> Tensor {
    if directions == 1 {
        return s.clone();
    }
    let (layers, b, dh) = (s.dim(0), s.dim(1), s.dim(2));
    let h = dh / directions;
    let mut out = Tensor::zeros(&[layers * directions, b, h]);
    for l in 0..layers {
        for d in 0..directions {
            for r in 0..b {
                let src = &s.data()[(l * b + r) * dh + d * h..][..h];
                out.data_mut()[((l * directions + d) * b + r) * h..][..h].copy_from_slice(src);
            }
        }
    }
    out
}

impl Encoder {
    /// Builds the encoder of `cfg`.
    pub fn new(cfg: &Seq2SeqConfig, rng: &mut impl Init) -> Result<Self> {
        let mut embedding = Embedding::new(cfg.src_vocab, cfg.emb_dim, Some(PAD as usize), rng)?;
        embedding.prefix_names("encoder.embedding.");
        let mut rc = RnnConfig::lstm(cfg.emb_dim, cfg.hidden_size)
            .num_layers(cfg.layers)
            .bidirectional(cfg.bidirectional)
            .dropout(cfg.dropout);
        rc.mode = cfg.cell;
        let mut rnn = rc.build(rng)?;
        rnn.prefix_names("encoder.rnn.");
        Ok(Encoder {
            embedding,
            rnn,
            dropout: Dropout::new(cfg.dropout)?,
            layers: cfg.layers,
            directions: cfg.directions(),
        })
    }

    /// The recurrent weights packed for inference, with the embedding folded into the first
    /// layer's input projection ([`Rnn::pack_embedded`]).
    pub fn pack(&self) -> Result<RnnPacked> {
        self.rnn.pack_embedded(&self.embedding.weight.value)
    }

    /// Encodes `src` (S, B) with `lengths`: returns the keys (S, B, D·H) and the bridged
    /// decoder state (L, B, D·H); with `rng`, trains (dropout) and returns the cache.
    /// `packed`: the weights from [`Encoder::pack`], for inference without embedding or
    /// re-packing (the same bits; ignored in training).
    pub fn encode(
        &self,
        packed: Option<&RnnPacked>,
        src: &[i64],
        steps: usize,
        batch: usize,
        lengths: &[usize],
        rng: Option<&mut Rng64>,
    ) -> Result<(Tensor, RnnState, Option<EncoderCache>)> {
        if let (None, Some(p)) = (&rng, packed) {
            let shape = (steps, batch);
            let out = self
                .rnn
                .forward_tokens_packed(p, src, shape, Some(lengths), None)?; // (S, B, D·H)
            return Ok((out.output, self.bridged(out.h_n, out.c_n), None));
        }
        let mut emb = self.embedding.forward(src, &[steps, batch])?; // (S, B, E)
        match rng {
            None => {
                let out = self.rnn.forward(&emb, Some(lengths), None)?; // (S, B, D·H)
                Ok((out.output, self.bridged(out.h_n, out.c_n), None))
            }
            Some(rng) => {
                let emb_mask = self.dropout.forward_inplace(emb.data_mut(), true, rng);
                let (out, rnn) = self.rnn.forward_train(&emb, Some(lengths), None, rng)?;
                let cache = EncoderCache {
                    src: src.to_vec(),
                    emb_mask,
                    rnn,
                };
                Ok((out.output, self.bridged(out.h_n, out.c_n), Some(cache)))
            }
        }
    }

    /// The decoder's initial state alone, for a decoder without attention (inference with
    /// packed weights): the encoder's outputs are not kept. The same bits as the state of
    /// [`Encoder::encode`].
    pub fn encode_state(
        &self,
        packed: &RnnPacked,
        src: &[i64],
        steps: usize,
        batch: usize,
        lengths: &[usize],
    ) -> Result<RnnState> {
        let state =
            self.rnn
                .final_state_tokens_packed(packed, src, (steps, batch), Some(lengths))?;
        Ok(self.bridged(state.h, state.c))
    }

    fn bridged(&self, h: Tensor, c: Option<Tensor>) -> RnnState {
        RnnState {
            h: bridge(&h, self.layers, self.directions),
            c: c.map(|c| bridge(&c, self.layers, self.directions)),
        }
    }

    /// Adds parameter gradients given ∂L/∂keys (S, B, D·H) and ∂L/∂(bridged state).
    pub fn backward(
        &mut self,
        cache: &EncoderCache,
        dkeys: &Tensor,
        dstate: &RnnState,
    ) -> Result<()> {
        let dh = unbridge(&dstate.h, self.directions);
        let dc = dstate.c.as_ref().map(|c| unbridge(c, self.directions));
        let g = self
            .rnn
            .backward(&cache.rnn, Some(dkeys), Some(&dh), dc.as_ref())?;
        let mut demb = g.input;
        if let Some(m) = &cache.emb_mask {
            apply_mask(demb.data_mut(), m);
        }
        self.embedding.backward(&cache.src, &demb)?;
        Ok(())
    }
}

impl Module for Encoder {
    fn params(&self) -> Vec<&Param> {
        let mut v = self.embedding.params();
        v.extend(self.rnn.params());
        v
    }
    fn params_mut(&mut self) -> Vec<&mut Param> {
        let mut v = self.embedding.params_mut();
        v.extend(self.rnn.params_mut());
        v
    }
}
