//! Decoder: one [`Decoder::step`] serves teacher forcing, greedy decoding and beam search.
//!
//! One step, previous token y (B) → logits (B, V); s = recurrent state (L, B, Hd), top = s[L-1]:
//! ```text
//!   e = dropout(Embedding(y))                                                   (B, E)
//!   none      s' = RNN(e, s)                      z = s'_top                    (B, Hd)
//!   bahdanau  c = attend(s_top)                   s' = RNN(cat(e, c), s)
//!             z = cat(s'_top, c, e)                                             (B, Hd+K+E)
//!   luong     s' = RNN(cat(e, feed), s)           c = attend(s'_top)
//!             z = feed' = tanh(W_combine cat(c, s'_top))                        (B, Hd)
//!   logits = out(dropout(z))                                                    (B, V)
//! ```

use super::attention::{rows_tensor, Attended, Attention, Bahdanau, Luong, Memory, MemoryGrad};
use super::config::{AttentionKind, Seq2SeqConfig, PAD};
use crate::error::Result;
use crate::gemm::PackedB;
use crate::kernels::tanh;
use crate::module::{Module, Param, Rng64};
use crate::nn::dropout::{apply_mask, Dropout};
use crate::nn::embedding::Embedding;
use crate::nn::linear::Linear;
use crate::nn::{Rnn, RnnCache, RnnConfig, RnnPacked, RnnState};
use crate::tensor::Tensor;

/// The decoder's running state.
#[derive(Clone, Debug)]
pub struct DecoderState {
    /// Recurrent state (L, B, Hd).
    pub rnn: RnnState,
    /// Luong input feeding: the previous attentional vector (B, Hd); empty otherwise.
    pub feed: Vec<f32>,
}

impl DecoderState {
    /// Rows B.
    pub fn rows(&self) -> usize {
        self.rnn.h.dim(1)
    }

    /// Keeps rows `keep[i]` in that order (rows may repeat).
    pub fn select(&self, keep: &[usize]) -> DecoderState {
        let pick = |t: &Tensor| {
            let (l, b, w) = (t.dim(0), t.dim(1), t.dim(2));
            let mut out = Tensor::zeros(&[l, keep.len(), w]);
            for layer in 0..l {
                for (i, &r) in keep.iter().enumerate() {
                    out.data_mut()[(layer * keep.len() + i) * w..][..w]
                        .copy_from_slice(&t.data()[(layer * b + r) * w..][..w]);
                }
            }
            out
        };
        let w = if self.rows() == 0 {
            0
        } else {
            self.feed.len() / self.rows()
        };
        DecoderState {
            rnn: RnnState {
                h: pick(&self.rnn.h),
                c: self.rnn.c.as_ref().map(pick),
            },
            feed: keep
                .iter()
                .flat_map(|&r| self.feed[r * w..][..w].iter().copied())
                .collect(),
        }
    }
}

/// Gradient with respect to a [`DecoderState`].
#[derive(Clone, Debug)]
pub struct StateGrad {
    /// ∂L/∂h (L, B, Hd).
    pub h: Tensor,
    /// ∂L/∂c (LSTM).
    pub c: Option<Tensor>,
    /// ∂L/∂feed (Luong).
    pub feed: Vec<f32>,
}

impl StateGrad {
    /// Zeros shaped like `s`.
    pub fn zeros(s: &DecoderState) -> Self {
        StateGrad {
            h: Tensor::zeros(s.rnn.h.shape()),
            c: s.rnn.c.as_ref().map(|c| Tensor::zeros(c.shape())),
            feed: vec![0.0; s.feed.len()],
        }
    }
}

/// What one step keeps for its backward.
#[derive(Clone, Debug)]
pub struct StepCache {
    prev: Vec<i64>,
    emb_mask: Option<Vec<f32>>,
    /// Bahdanau: the query (previous top state); Luong: the new top state.
    query: Vec<f32>,
    att: Option<Attended>,
    rnn: RnnCache,
    /// Luong: cat(c, s'_top) and feed' = tanh(W_combine ·).
    combine_in: Vec<f32>,
    feed_out: Vec<f32>,
    /// The output layer's input after dropout, and the dropout mask.
    z: Vec<f32>,
    out_mask: Option<Vec<f32>>,
}

/// The decoder's weights packed once for decoding by [`Decoder::pack`]: every weight a step
/// multiplies by, so that no step re-packs one. Stale once the parameters change.
#[derive(Clone, Debug)]
pub struct DecoderPacked {
    /// The recurrent layers; without attention the embedding is folded into the first layer's
    /// input projection ([`Rnn::pack_embedded`]), as its input is the embedding alone.
    rnn: RnnPacked,
    /// Bahdanau `W_query` or Luong `W_combine` (none without attention).
    attention: Option<PackedB>,
    /// The output layer `out`.
    out: PackedB,
}

/// The decoder.
#[derive(Clone, Debug)]
pub struct Decoder {
    /// `decoder.embedding`.
    pub embedding: Embedding,
    /// `decoder.attention`.
    pub attention: Attention,
    /// `decoder.rnn`.
    pub rnn: Rnn,
    /// `decoder.out`.
    pub out: Linear,
    dropout: Dropout,
    hidden: usize,
    emb_dim: usize,
}

/// Concatenates row-wise blocks: rows of widths `w[i]` from `parts[i]`.
fn cat_rows(parts: &[(&[f32], usize)], rows: usize) -> Vec<f32> {
    let total: usize = parts.iter().map(|p| p.1).sum();
    let mut out = Vec::with_capacity(rows * total);
    for r in 0..rows {
        for (p, w) in parts {
            out.extend_from_slice(&p[r * w..][..*w]);
        }
    }
    out
}

/// Splits rows of `x` into blocks of the given widths.
fn split_rows(x: &[f32], widths: &[usize], rows: usize) -> Vec<Vec<f32>> {
    let total: usize = widths.iter().sum();
    let mut outs: Vec<Vec<f32>> = widths
        .iter()
        .map(|w| Vec::with_capacity(rows * w))
        .collect();
    for r in 0..rows {
        let mut off = r * total;
        for (o, &w) in outs.iter_mut().zip(widths) {
            o.extend_from_slice(&x[off..off + w]);
            off += w;
        }
    }
    outs
}

fn add_into(dst: &mut [f32], src: &[f32]) {
    dst.iter_mut().zip(src).for_each(|(a, b)| *a += b);
}

/// The top layer's rows of a (L, B, W) state.
fn top(t: &Tensor) -> &[f32] {
    let per = t.dim(1) * t.dim(2);
    &t.data()[(t.dim(0) - 1) * per..]
}

impl Decoder {
    /// Builds the decoder of `cfg` (hidden Hd = D·H, keys K = D·H).
    pub fn new(cfg: &Seq2SeqConfig, rng: &mut Rng64) -> Result<Self> {
        let (hd, e) = (cfg.decoder_hidden(), cfg.emb_dim);
        let mut embedding = Embedding::new(cfg.tgt_vocab, e, Some(PAD), rng)?;
        embedding.prefix_names("decoder.embedding.");
        let (mut attention, rnn_in, out_in) = match cfg.attention {
            AttentionKind::None => (Attention::None, e, hd),
            AttentionKind::Bahdanau => (
                Attention::Bahdanau(Bahdanau::new(hd, hd, cfg.attn_dim, rng)?),
                e + hd,
                hd + hd + e,
            ),
            AttentionKind::LuongDot | AttentionKind::LuongGeneral => (
                Attention::Luong(Luong::new(
                    hd,
                    cfg.attention == AttentionKind::LuongGeneral,
                    rng,
                )?),
                e + hd,
                hd,
            ),
        };
        attention.prefix_names("decoder.attention.");
        let mut rc = RnnConfig::lstm(rnn_in, hd)
            .num_layers(cfg.layers)
            .dropout(cfg.dropout);
        rc.mode = cfg.cell;
        let mut rnn = rc.build(rng)?;
        rnn.prefix_names("decoder.rnn.");
        let mut out = Linear::new(out_in, cfg.tgt_vocab, true, rng);
        out.prefix_names("decoder.out.");
        Ok(Decoder {
            embedding,
            attention,
            rnn,
            out,
            dropout: Dropout::new(cfg.dropout)?,
            hidden: hd,
            emb_dim: e,
        })
    }

    /// The initial state from the bridged encoder state.
    pub fn initial_state(&self, rnn: RnnState) -> DecoderState {
        let feed = match self.attention {
            Attention::Luong(_) => vec![0.0; rnn.h.dim(1) * self.hidden],
            _ => Vec::new(),
        };
        DecoderState { rnn, feed }
    }

    /// Every weight a step multiplies by, packed once for a whole decode (see [`Decoder::step`]).
    pub fn pack(&self) -> DecoderPacked {
        let rnn = match self.attention {
            Attention::None => self
                .rnn
                .pack_embedded(&self.embedding.weight.value)
                .expect("the decoder's embedding width is its RNN's input size"),
            _ => self.rnn.pack(),
        };
        self.pack_with(rnn)
    }

    /// Every weight a training step multiplies by, forward and backward, packed once for the
    /// steps of a batch ([`Decoder::step`] with `rng`, then [`Decoder::step_backward`]).
    pub fn pack_for_training(&self) -> DecoderPacked {
        self.pack_with(self.rnn.pack_for_training())
    }

    /// The attention and output weights packed, beside the recurrent layers' `rnn`.
    fn pack_with(&self, rnn: RnnPacked) -> DecoderPacked {
        DecoderPacked {
            rnn,
            attention: match &self.attention {
                Attention::None => None,
                Attention::Bahdanau(a) => Some(a.w_query.pack()),
                Attention::Luong(l) => Some(l.w_combine.pack()),
            },
            out: self.out.pack(),
        }
    }

    /// One step from previous tokens `prev` (B): logits (B, V), attention weights (B, S) (empty
    /// without attention) and the next state; with `rng`, trains and returns the cache.
    /// `packed`: the weights from [`Decoder::pack`] (decoding) or [`Decoder::pack_for_training`]
    /// (training), to skip re-packing them at every step (the same results, bit for bit).
    pub fn step(
        &self,
        prev: &[i64],
        state: &DecoderState,
        mem: &Memory,
        mut rng: Option<&mut Rng64>,
        packed: Option<&DecoderPacked>,
    ) -> Result<(Tensor, Vec<f32>, DecoderState, Option<StepCache>)> {
        let (b, hd) = (prev.len(), self.hidden);
        let train = rng.is_some();
        let attn_w = packed.and_then(|p| p.attention.as_ref());
        if let (Attention::None, Some(p), false) = (&self.attention, packed, train) {
            // The embedding is folded into the packed first layer: look the tokens up.
            let o = self
                .rnn
                .forward_tokens_packed(&p.rnn, prev, (1, b), None, Some(&state.rnn))?;
            let mut logits = Tensor::zeros(&[b, self.out.out_features()]); // (B, V)
            let z = o.output.data(); // (B, Hd)
            self.out
                .forward_rows_with(Some(&p.out), z, b, logits.data_mut())?;
            let next = DecoderState {
                rnn: RnnState { h: o.h_n, c: o.c_n },
                feed: Vec::new(), // input feeding is Luong's only
            };
            return Ok((logits, Vec::new(), next, None));
        }
        let mut e = self.embedding.forward(prev, &[b])?.into_vec(); // (B, E)
        let emb_mask = rng
            .as_deref_mut()
            .and_then(|r| self.dropout.forward_inplace(&mut e, true, r));
        // Attention before the recurrence (Bahdanau) or the input-feeding vector (Luong).
        let (att_pre, x) = match &self.attention {
            Attention::None => (None, e.clone()),
            Attention::Bahdanau(a) => {
                let att = a.attend(top(&state.rnn.h), mem, attn_w)?; // context (B, K)
                let x = cat_rows(&[(&e, self.emb_dim), (&att.context, mem.key_dim)], b); // (B, E+K)
                (Some(att), x)
            }
            Attention::Luong(_) => (None, cat_rows(&[(&e, self.emb_dim), (&state.feed, hd)], b)),
        };
        let x = Tensor::from_vec(&[1, b, x.len() / b.max(1)], x)?; // (1, B, E+K or E or E+Hd)
        let (o, rnn_cache) = match rng.as_deref_mut() {
            Some(r) => {
                let p = packed.map(|p| &p.rnn);
                let (o, c) = self
                    .rnn
                    .forward_train_with(p, &x, None, Some(&state.rnn), r)?;
                (o, Some(c))
            }
            None => match packed {
                Some(p) => (
                    self.rnn
                        .forward_packed(&p.rnn, &x, None, Some(&state.rnn))?,
                    None,
                ),
                None => (self.rnn.forward(&x, None, Some(&state.rnn))?, None),
            },
        };
        let s_top = o.output.into_vec(); // (B, Hd)
        let next_rnn = RnnState { h: o.h_n, c: o.c_n };
        // Bahdanau's query for backward: the previous top state (B, Hd).
        let query = match &self.attention {
            Attention::Bahdanau(_) if train => top(&state.rnn.h).to_vec(),
            _ => Vec::new(),
        };
        let (mut z, query, att, combine_in, feed_out) = match &self.attention {
            Attention::None => (s_top, query, None, Vec::new(), Vec::new()),
            Attention::Bahdanau(_) => {
                let att = att_pre.expect("attended before the step");
                let z = cat_rows(
                    &[
                        (&s_top, hd),
                        (&att.context, mem.key_dim),
                        (&e, self.emb_dim),
                    ],
                    b,
                );
                (z, query, Some(att), Vec::new(), Vec::new())
            }
            Attention::Luong(l) => {
                let att = l.attend(&s_top, mem)?;
                let u = cat_rows(&[(&att.context, mem.key_dim), (&s_top, hd)], b); // (B, K+Hd)
                let mut f = vec![0.0f32; b * hd]; // (B, Hd)
                l.w_combine.forward_rows_with(attn_w, &u, b, &mut f)?;
                f.iter_mut().for_each(|v| *v = tanh(*v));
                (f.clone(), s_top, Some(att), u, f)
            }
        };
        let attn_weights = att.as_ref().map(|a| a.weights.clone()).unwrap_or_default();
        let next = DecoderState {
            rnn: next_rnn,
            feed: feed_out.clone(),
        };
        let out_mask = rng.and_then(|r| self.dropout.forward_inplace(&mut z, true, r));
        let mut logits = Tensor::zeros(&[b, self.out.out_features()]); // (B, V)
        self.out
            .forward_rows_with(packed.map(|p| &p.out), &z, b, logits.data_mut())?;
        let cache = rnn_cache.map(|rnn| StepCache {
            prev: prev.to_vec(),
            emb_mask,
            query,
            att,
            rnn,
            combine_in,
            feed_out,
            z,
            out_mask,
        });
        Ok((logits, attn_weights, next, cache))
    }

    /// Backward of one step: ∂L/∂logits (B, V) and the gradient of the next state in; adds
    /// into parameter and memory gradients; returns the gradient of the previous state.
    /// `packed`: the weights from [`Decoder::pack_for_training`] (same bits as without).
    pub fn step_backward(
        &mut self,
        packed: Option<&DecoderPacked>,
        cache: &StepCache,
        mem: &Memory,
        dlogits: &Tensor,
        dnext: &StateGrad,
        dmem: &mut MemoryGrad,
    ) -> Result<StateGrad> {
        let (b, hd, e, k) = (cache.prev.len(), self.hidden, self.emb_dim, mem.key_dim);
        let mut dz = self
            .out
            .backward(&rows_tensor(cache.z.clone(), b), dlogits)?
            .into_vec();
        if let Some(m) = &cache.out_mask {
            apply_mask(&mut dz, m);
        }
        let (mut ds_top, mut dctx, mut de) = (
            vec![0.0f32; b * hd],
            vec![0.0f32; b * k],
            vec![0.0f32; b * e],
        );
        match &mut self.attention {
            Attention::None => ds_top = dz,
            Attention::Bahdanau(_) => {
                let parts = split_rows(&dz, &[hd, k, e], b);
                ds_top.copy_from_slice(&parts[0]);
                dctx.copy_from_slice(&parts[1]);
                de.copy_from_slice(&parts[2]);
            }
            Attention::Luong(l) => {
                // feed' = tanh(W_combine u): its gradient comes from the logits and the next step.
                let mut dpre = dz;
                add_into(&mut dpre, &dnext.feed);
                dpre.iter_mut()
                    .zip(&cache.feed_out)
                    .for_each(|(d, f)| *d *= 1.0 - f * f);
                let du = l
                    .w_combine
                    .backward(
                        &rows_tensor(cache.combine_in.clone(), b),
                        &rows_tensor(dpre, b),
                    )?
                    .into_vec();
                let parts = split_rows(&du, &[k, hd], b);
                let att = cache.att.as_ref().expect("luong step attends");
                let dq = l.backward(&cache.query, mem, att, &parts[0], dmem);
                ds_top.copy_from_slice(&parts[1]);
                add_into(&mut ds_top, &dq);
            }
        }
        let dy = Tensor::from_vec(&[1, b, hd], ds_top)?;
        let p = packed.map(|p| &p.rnn);
        let g =
            self.rnn
                .backward_with(p, &cache.rnn, Some(&dy), Some(&dnext.h), dnext.c.as_ref())?;
        let mut dprev = StateGrad {
            h: g.h0,
            c: g.c0,
            feed: Vec::new(),
        };
        let dx = g.input.into_vec();
        match &mut self.attention {
            Attention::None => de = dx,
            Attention::Bahdanau(a) => {
                let parts = split_rows(&dx, &[e, k], b);
                add_into(&mut de, &parts[0]);
                add_into(&mut dctx, &parts[1]);
                let att = cache.att.as_ref().expect("bahdanau step attends");
                let dq = a.backward(&cache.query, mem, att, &dctx, dmem)?;
                let per = b * hd;
                let layers = dprev.h.dim(0);
                add_into(&mut dprev.h.data_mut()[(layers - 1) * per..], &dq);
            }
            Attention::Luong(_) => {
                let mut parts = split_rows(&dx, &[e, hd], b);
                de = std::mem::take(&mut parts[0]);
                dprev.feed = std::mem::take(&mut parts[1]);
            }
        }
        if let Some(m) = &cache.emb_mask {
            apply_mask(&mut de, m);
        }
        self.embedding
            .backward(&cache.prev, &Tensor::from_vec(&[b, e], de)?)?;
        Ok(dprev)
    }
}

impl Module for Decoder {
    fn params(&self) -> Vec<&Param> {
        let mut v = self.embedding.params();
        v.extend(self.attention.params());
        v.extend(self.rnn.params());
        v.extend(self.out.params());
        v
    }
    fn params_mut(&mut self) -> Vec<&mut Param> {
        let mut v = self.embedding.params_mut();
        v.extend(self.attention.params_mut());
        v.extend(self.rnn.params_mut());
        v.extend(self.out.params_mut());
        v
    }
}
