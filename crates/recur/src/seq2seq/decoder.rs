//! Decoder: one step serves teacher forcing, greedy decoding and beam search
//! ([`Decoder::step_infer`] and [`Decoder::step_train`] run the same private `run_step`).
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
//! What depends on the attention kind lives in [`Attention`] ([`Attention::rnn_input`] before
//! the recurrence, [`Attention::output_input`] after it, and their backward).

use super::attention::{add_into, zeroed, Attention, AttnWork, Memory, MemoryGrad};
use super::config::{Seq2SeqConfig, TokenId, PAD};
use crate::error::{Error, Result};
use crate::gemm::PackedB;
use crate::module::{mix_version, Init, Module, Param, Rng64};
use crate::nn::dropout::{apply_mask, Dropout};
use crate::nn::embedding::Embedding;
use crate::nn::linear::Linear;
use crate::nn::{
    Rnn, RnnCache, RnnConfig, RnnDeferred, RnnPacked, RnnScratch, RnnState, StepInput,
};
use crate::tensor::Tensor;

/// The decoder's running state, flat: rows B, layers L, hidden Hd.
#[derive(Clone, Debug, Default)]
pub struct DecoderState {
    /// Recurrent state h (L, B, Hd).
    pub h: Vec<f32>,
    /// LSTM cell state c (L, B, Hd); empty for GRU and RNN.
    pub c: Vec<f32>,
    /// Luong input feeding: the previous attentional vector (B, Hd); empty otherwise.
    pub feed: Vec<f32>,
    rows: usize,
    layers: usize,
}

impl DecoderState {
    /// Rows B.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The recurrent state as tensors (L, B, Hd).
    pub fn rnn_state(&self) -> Result<RnnState> {
        let shape = [
            self.layers,
            self.rows,
            self.h.len() / (self.layers * self.rows).max(1),
        ];
        Ok(RnnState {
            h: Tensor::from_vec(&shape, self.h.clone())?,
            c: match self.c.is_empty() {
                true => None,
                false => Some(Tensor::from_vec(&shape, self.c.clone())?),
            },
        })
    }

    /// The top layer's rows of h (B, Hd).
    pub fn top(&self) -> &[f32] {
        let per = self.h.len() / self.layers.max(1);
        &self.h[self.h.len() - per..]
    }

    /// Sets `self` to rows `keep[i]` of `src`, in that order (rows may repeat), reusing
    /// `self`'s buffers (no allocation once they have grown).
    pub fn gather_from(&mut self, src: &DecoderState, keep: &[usize]) -> Result<()> {
        if let Some(&bad) = keep.iter().find(|&&r| r >= src.rows) {
            let want = format!("rows < {}", src.rows);
            return Err(Error::arg("DecoderState.select", "keep", want, bad));
        }
        let (l, b, n) = (src.layers, src.rows, keep.len());
        let pick = |dst: &mut Vec<f32>, from: &[f32], layers: usize| {
            dst.clear();
            if from.is_empty() || b == 0 {
                return;
            }
            let w = from.len() / (layers * b);
            for layer in 0..layers {
                for &r in keep {
                    dst.extend_from_slice(&from[(layer * b + r) * w..][..w]);
                }
            }
        };
        pick(&mut self.h, &src.h, l);
        pick(&mut self.c, &src.c, l);
        pick(&mut self.feed, &src.feed, 1);
        (self.rows, self.layers) = (n, l);
        Ok(())
    }

    /// Keeps rows `keep[i]` in that order (rows may repeat); allocates a new state.
    pub fn select(&self, keep: &[usize]) -> Result<DecoderState> {
        let mut out = DecoderState::default();
        out.gather_from(self, keep)?;
        Ok(out)
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
        let shape = [s.layers, s.rows, s.h.len() / (s.layers * s.rows).max(1)];
        StateGrad {
            h: Tensor::zeros(&shape),
            c: (!s.c.is_empty()).then(|| Tensor::zeros(&shape)),
            feed: vec![0.0; s.feed.len()],
        }
    }
}

/// Reusable buffers of a decoder step: everything a step writes except the state, sized on first
/// use. One per decode, reused across steps (and across decodes).
#[derive(Clone, Debug, Default)]
pub struct StepWork {
    ids: Vec<usize>,
    /// The embedded previous tokens (B, E), after dropout.
    e: Vec<f32>,
    /// The recurrence's input.
    x: Vec<f32>,
    /// The output layer's input (B, ·), after dropout.
    z: Vec<f32>,
    /// Logits (B, V).
    logits: Vec<f32>,
    att: AttnWork,
    rnn: RnnScratch,
}

/// What one step returns: logits and attention weights, borrowed from the [`StepWork`].
#[derive(Clone, Copy, Debug)]
pub struct StepOutput<'w> {
    /// Logits (B, V).
    pub logits: &'w [f32],
    /// Attention weights (B, S); empty without attention.
    pub attention: &'w [f32],
}

/// What one training step keeps for its backward.
#[derive(Clone, Debug)]
pub struct StepCache {
    prev: Vec<TokenId>,
    emb_mask: Option<Vec<f32>>,
    out_mask: Option<Vec<f32>>,
    work: StepWork,
    rnn: RnnCache,
}

/// One training step's results ([`Decoder::step_train`]).
#[derive(Clone, Debug)]
pub struct TrainStep {
    /// Logits (B, V).
    pub logits: Vec<f32>,
    /// The state after the step.
    pub next: DecoderState,
    /// For [`Decoder::step_backward`].
    pub cache: StepCache,
}

/// The decoder's weights packed once by [`Decoder::pack`] (decoding) or
/// [`Decoder::pack_for_training`]: every weight a step multiplies by, so that no step re-packs
/// one. Records the parameter versions it was packed from: a step with weights packed before a
/// parameter update is an error.
#[derive(Clone, Debug)]
pub struct DecoderPacked {
    /// The recurrent layers; without attention the embedding is folded into the first layer's
    /// input projection ([`Rnn::pack_embedded`]), as its input is the embedding alone.
    rnn: RnnPacked,
    /// Whether `rnn` holds the embedding tables (inference without attention).
    embedded: bool,
    /// Bahdanau, decoding: `rnn`'s first layer holds the tables of the embedding part of its
    /// input, and this is the context part of `weight_ih_l0`, `(K, G·H)`, by which
    /// [`Decoder::prepare_memory`] projects the keys once per source.
    context: Option<PackedB>,
    /// Packed for backward too.
    training: bool,
    /// From [`Attention::pack`].
    attention: Option<PackedB>,
    /// The output layer `out`.
    out: PackedB,
    /// [`Decoder::stamp`] when packed.
    stamp: u64,
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

impl Decoder {
    /// Builds the decoder of `cfg` (hidden Hd = D·H, keys K = D·H).
    pub fn new(cfg: &Seq2SeqConfig, rng: &mut impl Init) -> Result<Self> {
        let (hd, e) = (cfg.decoder_hidden(), cfg.emb_dim);
        let mut embedding = Embedding::new(cfg.tgt_vocab, e, Some(PAD as usize), rng)?;
        embedding.prefix_names("decoder.embedding.");
        let attention = Attention::new(cfg.attention, hd, cfg.attn_dim, rng)?;
        let mut rc = RnnConfig::lstm(attention.rnn_input_size(e, hd), hd)
            .num_layers(cfg.layers)
            .dropout(cfg.dropout);
        rc.mode = cfg.cell;
        let mut rnn = rc.build(rng)?;
        rnn.prefix_names("decoder.rnn.");
        let mut out = Linear::new(attention.output_input_size(e, hd), cfg.tgt_vocab, true, rng);
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
        let (layers, rows) = (rnn.h.dim(0), rnn.h.dim(1));
        let feed = match self.attention.feeds() {
            true => vec![0.0; rows * self.hidden],
            false => Vec::new(),
        };
        DecoderState {
            h: rnn.h.into_vec(),
            c: rnn.c.map(Tensor::into_vec).unwrap_or_default(),
            feed,
            rows,
            layers,
        }
    }

    /// A fingerprint of the versions of every parameter ([`Param::version`]); changes whenever
    /// one of them is updated. Allocates nothing.
    pub fn stamp(&self) -> u64 {
        let mut s = 0u64;
        let mut add = |p: &Param| s = mix_version(s, p);
        add(&self.embedding.weight);
        self.attention.for_each_param(&mut add);
        self.rnn.for_each_param(&mut add);
        add(&self.out.weight);
        if let Some(b) = &self.out.bias {
            add(b);
        }
        s
    }

    /// Every weight a decoding step multiplies by, packed once for a whole decode.
    pub fn pack(&self) -> Result<DecoderPacked> {
        let emb = &self.embedding.weight.value;
        if self.attention.reads_embedding_only() {
            return Ok(self.pack_with(self.rnn.pack_embedded(emb)?, true, false));
        }
        if matches!(self.attention, Attention::Bahdanau(_)) {
            let (rnn, context) = self.rnn.pack_embedded_split(emb)?;
            let mut packed = self.pack_with(rnn, false, false);
            packed.context = Some(context);
            return Ok(packed);
        }
        Ok(self.pack_with(self.rnn.pack(), false, false))
    }

    /// Readies `mem` (just encoded, before any row selection) for decoding steps with `packed`:
    /// with Bahdanau attention, projects each key by the context part of the first layer's
    /// input weights once ([`Memory::project_values`]), so that a step adds
    /// `Σ_j a_j (W_c h_j)` to its gates instead of multiplying its context by `W_c`. The same
    /// sum in another order: the logits agree with [`Decoder::step_train`]'s to float rounding
    /// (not to the bit), and each row still depends on that row alone. Does nothing otherwise.
    pub fn prepare_memory(&self, packed: &DecoderPacked, mem: &mut Memory) {
        if let Some(w) = &packed.context {
            mem.project_values(w);
        }
    }

    /// Every weight a training step multiplies by, forward and backward, packed once for the
    /// steps of a batch ([`Decoder::step_train`], then [`Decoder::step_backward`]).
    pub fn pack_for_training(&self) -> DecoderPacked {
        self.pack_with(self.rnn.pack_for_training(), false, true)
    }

    fn pack_with(&self, rnn: RnnPacked, embedded: bool, training: bool) -> DecoderPacked {
        DecoderPacked {
            rnn,
            embedded,
            context: None,
            training,
            attention: self.attention.pack(),
            out: self.out.pack(),
            stamp: self.stamp(),
        }
    }

    /// Checks that `packed` was packed from the current parameters (and for training if needed).
    pub fn check_packed(&self, packed: &DecoderPacked, training: bool) -> Result<()> {
        const OP: &str = "Decoder.step";
        if packed.stamp != self.stamp() {
            return Err(Error::arg(
                OP,
                "packed",
                "weights packed from the current parameters",
                "stale weights (packed before a parameter update; pack again)",
            ));
        }
        if training && !packed.training {
            let got = "weights from Decoder::pack";
            return Err(Error::arg(OP, "packed", "Decoder::pack_for_training", got));
        }
        Ok(())
    }

    /// One decoding step from previous tokens `prev` (B): advances `state` in place and returns
    /// the logits and attention weights, held by `work` (reused across steps: once its buffers
    /// have grown, a step allocates nothing). `packed`: from [`Decoder::pack`].
    pub fn step_infer<'w>(
        &self,
        packed: &DecoderPacked,
        prev: &[TokenId],
        state: &mut DecoderState,
        mem: &Memory,
        work: &'w mut StepWork,
    ) -> Result<StepOutput<'w>> {
        self.check_packed(packed, false)?;
        self.run_step(packed, prev, state, mem, work, None)?;
        let attention: &[f32] = match self.attention.reads_embedding_only() {
            true => &[],
            false => &work.att.weights,
        };
        Ok(StepOutput {
            logits: &work.logits,
            attention,
        })
    }

    /// One training step (dropout from `rng`): the logits, the next state and what
    /// [`Decoder::step_backward`] needs. `packed`: from [`Decoder::pack_for_training`].
    pub fn step_train(
        &self,
        packed: &DecoderPacked,
        prev: &[TokenId],
        state: &DecoderState,
        mem: &Memory,
        rng: &mut Rng64,
    ) -> Result<TrainStep> {
        self.check_packed(packed, true)?;
        let mut next = state.clone();
        let mut work = StepWork::default();
        let (emb_mask, out_mask, rnn) =
            self.run_step(packed, prev, &mut next, mem, &mut work, Some(rng))?;
        let logits = std::mem::take(&mut work.logits);
        let rnn = rnn.ok_or_else(|| Error::arg("Decoder.step_train", "cache", "kept", "none"))?;
        Ok(TrainStep {
            logits,
            next,
            cache: StepCache {
                prev: prev.to_vec(),
                emb_mask,
                out_mask,
                work,
                rnn,
            },
        })
    }

    /// The step shared by decoding and training (`rng`): writes logits into `work`, advances
    /// `state`; in training returns the dropout masks and the recurrence's cache.
    #[allow(clippy::type_complexity)]
    fn run_step(
        &self,
        packed: &DecoderPacked,
        prev: &[TokenId],
        state: &mut DecoderState,
        mem: &Memory,
        w: &mut StepWork,
        mut rng: Option<&mut Rng64>,
    ) -> Result<(Option<Vec<f32>>, Option<Vec<f32>>, Option<RnnCache>)> {
        let (b, hd, emb) = (prev.len(), self.hidden, self.emb_dim);
        if state.rows != b || mem.rows() != b {
            return Err(Error::shape(
                "Decoder.step",
                format!("{b} state and memory rows (one per previous token)"),
                format!("{} and {}", state.rows, mem.rows()),
            ));
        }
        let v = self.out.out_features();
        let (mut emb_mask, mut rnn_cache) = (None, None);
        if packed.embedded {
            // The embedding is folded into the packed first layer: look the tokens up.
            let (h, c) = (&mut state.h, &mut state.c);
            let input = StepInput::Tokens(prev);
            self.rnn
                .step_packed(&packed.rnn, input, b, h, c, &mut w.rnn)?;
        } else {
            w.ids.clear();
            w.ids.extend(prev.iter().map(|&t| t as usize));
            let e = zeroed(&mut w.e, b * emb);
            self.embedding.forward_ids(&w.ids, e)?; // (B, E)
            if let Some(r) = rng.as_deref_mut() {
                emb_mask = self.dropout.forward_inplace(&mut w.e, true, r);
            }
            // Before the recurrence: attention (Bahdanau) or the input-feeding vector (Luong).
            let (att, train) = (packed.attention.as_ref(), rng.is_some());
            let (top, feed) = (state.top(), &state.feed);
            let e = (&w.e[..], emb);
            let projected = packed
                .context
                .as_ref()
                .filter(|_| mem.has_values() && !train);
            match projected {
                Some(_) => self
                    .attention
                    .attend_before(att, top, mem, &mut w.att, train)?,
                None => self
                    .attention
                    .rnn_input(att, e, top, feed, mem, &mut w.att, &mut w.x, train)?,
            }
            match rng.as_deref_mut() {
                // Decoding with projected keys (see `prepare_memory`): the gates of the context
                // are the attention-weighted sum of the keys' projections; `w.x` holds them.
                None if projected.is_some() => {
                    let gh = projected.map_or(0, |p| p.n());
                    let gates = zeroed(&mut w.x, b * gh);
                    mem.add_weighted_values(&w.att.weights, gates);
                    let (h, c) = (&mut state.h, &mut state.c);
                    let input = StepInput::TokensAndGates(prev, &w.x);
                    self.rnn
                        .step_packed(&packed.rnn, input, b, h, c, &mut w.rnn)?;
                }
                None => {
                    let (h, c) = (&mut state.h, &mut state.c);
                    let input = StepInput::Features(&w.x);
                    self.rnn
                        .step_packed(&packed.rnn, input, b, h, c, &mut w.rnn)?;
                }
                Some(r) => {
                    let x = Tensor::from_vec(&[1, b, w.x.len() / b.max(1)], w.x.clone())?;
                    let s0 = state.rnn_state()?;
                    let p = Some(&packed.rnn);
                    let (o, cache) = self.rnn.forward_train_with(p, &x, None, Some(&s0), r)?;
                    state.h = o.h_n.into_vec();
                    state.c = o.c_n.map(Tensor::into_vec).unwrap_or_default();
                    rnn_cache = Some(cache);
                }
            }
        }
        // After the recurrence: the output layer's input (Luong attends here).
        let e = (&w.e[..], emb);
        let att = packed.attention.as_ref();
        self.attention
            .output_input(att, state.top(), e, mem, &mut w.att, &mut w.z)?;
        if self.attention.feeds() {
            state.feed.clear();
            state.feed.extend_from_slice(&w.att.feed_out);
        }
        debug_assert_eq!(w.z.len(), b * self.attention.output_input_size(emb, hd));
        let out_mask = match rng {
            Some(r) => self.dropout.forward_inplace(&mut w.z, true, r),
            None => None,
        };
        let logits = zeroed(&mut w.logits, b * v); // (B, V)
        self.out
            .forward_rows_with(Some(&packed.out), &w.z, b, logits)?;
        Ok((emb_mask, out_mask, rnn_cache))
    }

    /// Backward of the output layer `logits = out(z)` of every step at once: `caches` in step
    /// order and their ∂L/∂logits `dlogits` (T·B, V) in the same order. One GEMM over all steps
    /// adds the weight gradient, one gives ∂L/∂z (T·B, Z) for [`Decoder::step_backward`] (its
    /// rows are those of a per-step product: the GEMM is row-invariant).
    pub fn output_backward(&mut self, caches: &[StepCache], dlogits: &[f32]) -> Result<Vec<f32>> {
        let zw = self.out.in_features();
        let rows: usize = caches.iter().map(|c| c.prev.len()).sum();
        let mut z = Vec::with_capacity(rows * zw);
        for c in caches {
            z.extend_from_slice(&c.work.z);
        }
        let mut dz = vec![0.0f32; rows * zw];
        self.out.backward_rows(&z, dlogits, rows, Some(&mut dz))?;
        Ok(dz)
    }

    /// Backward of one step but its output layer ([`Decoder::output_backward`]): ∂L/∂z
    /// (B, Z) and the gradient of the next state in; adds into parameter and memory gradients,
    /// but sets the recurrence's weight-gradient products aside in `deferred` (one GEMM per
    /// weight over all steps: [`Decoder::flush_deferred`] after the last step); returns the
    /// gradient of the previous state. `packed`: from [`Decoder::pack_for_training`].
    #[allow(clippy::too_many_arguments)]
    pub fn step_backward(
        &mut self,
        packed: &DecoderPacked,
        cache: &StepCache,
        mem: &Memory,
        dz: &[f32],
        dnext: &StateGrad,
        dmem: &mut MemoryGrad,
        deferred: &mut RnnDeferred,
    ) -> Result<StateGrad> {
        self.check_packed(packed, true)?;
        let (b, hd, e) = (cache.prev.len(), self.hidden, self.emb_dim);
        let w = &cache.work;
        if dz.len() != w.z.len() {
            let want = format!("{} values (rows x output-layer inputs)", w.z.len());
            return Err(Error::shape(
                "Decoder.step_backward",
                want,
                dz.len().to_string(),
            ));
        }
        let mut dz = dz.to_vec();
        if let Some(m) = &cache.out_mask {
            apply_mask(&mut dz, m);
        }
        let mut after =
            self.attention
                .output_backward(&w.att, mem, (hd, e), dz, &dnext.feed, dmem)?;
        let dy = Tensor::from_vec(&[1, b, hd], std::mem::take(&mut after.top))?;
        let p = Some(&packed.rnn);
        let upstream = (Some(&dy), Some(&dnext.h), dnext.c.as_ref());
        let g = self
            .rnn
            .backward_deferred(p, &cache.rnn, upstream, deferred)?;
        let mut dprev = StateGrad {
            h: g.h0,
            c: g.c0,
            feed: Vec::new(),
        };
        let (mut de, dtop, dfeed) = self.attention.rnn_input_backward(
            &w.att,
            mem,
            (hd, e),
            g.input.into_vec(),
            after,
            dmem,
        )?;
        if !dtop.is_empty() {
            let per = b * hd;
            let layers = dprev.h.dim(0);
            add_into(&mut dprev.h.data_mut()[(layers - 1) * per..], &dtop);
        }
        dprev.feed = dfeed;
        if let Some(m) = &cache.emb_mask {
            apply_mask(&mut de, m);
        }
        let prev: Vec<i64> = cache.prev.iter().map(|&t| i64::from(t)).collect();
        self.embedding
            .backward(&prev, &Tensor::from_vec(&[b, e], de)?)?;
        Ok(dprev)
    }
}

impl Decoder {
    /// Adds the recurrence's weight gradients set aside by [`Decoder::step_backward`].
    pub fn flush_deferred(&mut self, deferred: &mut RnnDeferred) {
        self.rnn.flush_deferred(deferred);
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
