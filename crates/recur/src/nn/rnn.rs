//! `RNN`, `LSTM` and `GRU` layers with PyTorch's arguments, semantics and parameter names.
//!
//! Shapes (L = num_layers, D = 2 if bidirectional else 1, H = hidden_size,
//! Hout = proj_size if > 0 else H):
//! ```text
//!   input   (T, B, I)  or (B, T, I) with batch_first  or (T, I) unbatched
//!   h0      (L·D, B, Hout)   c0 (L·D, B, H)            (unbatched: without B)
//!   output  (T, B, D·Hout)   or (B, T, D·Hout)          h_n like h0, c_n like c0
//! ```
//! Variable-length batches (`lengths`) behave like `pack_padded_sequence(enforce_sorted=False)`
//! followed by `pad_packed_sequence`: output is zero past each length, `h_n` holds each
//! sequence's state after its own last element, and the reverse direction starts at that last
//! element. A length of 0 is allowed: zero output, `h_n` = the initial state.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

pub use super::recurrence::RnnMode;
use super::recurrence::{
    self, DeferredGrads, Dims, DirTrace, DirWeights, PackedDir, StepScratch, SweepInput,
};
use crate::error::{Error, Result};
use crate::gemm::{num_threads, PackedB, Trans};
use crate::module::{mix_version, Init, Module, Param, Rng64};
use crate::nn::dropout::{apply_mask, Dropout};
use crate::tensor::{fmt_shape, Tensor};

/// Constructor arguments, as PyTorch's (defaults as PyTorch's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RnnConfig {
    /// The recurrence.
    pub mode: RnnMode,
    /// Input features I.
    pub input_size: usize,
    /// Hidden size H.
    pub hidden_size: usize,
    /// Stacked layers (1).
    pub num_layers: usize,
    /// Whether the layers have biases (true).
    pub bias: bool,
    /// Input and output are (B, T, ·) instead of (T, B, ·) (false).
    pub batch_first: bool,
    /// Dropout on the outputs of every layer but the last, in training (0).
    pub dropout: f32,
    /// Two directions, outputs concatenated (false).
    pub bidirectional: bool,
    /// LSTM only: project h to this size (0 = no projection).
    pub proj_size: usize,
}

impl RnnConfig {
    fn new(mode: RnnMode, input_size: usize, hidden_size: usize) -> Self {
        RnnConfig {
            mode,
            input_size,
            hidden_size,
            num_layers: 1,
            bias: true,
            batch_first: false,
            dropout: 0.0,
            bidirectional: false,
            proj_size: 0,
        }
    }
    /// `nn.LSTM(input_size, hidden_size)`.
    pub fn lstm(input_size: usize, hidden_size: usize) -> Self {
        Self::new(RnnMode::Lstm, input_size, hidden_size)
    }
    /// `nn.GRU(input_size, hidden_size)`.
    pub fn gru(input_size: usize, hidden_size: usize) -> Self {
        Self::new(RnnMode::Gru, input_size, hidden_size)
    }
    /// `nn.RNN(input_size, hidden_size)` (tanh).
    pub fn rnn(input_size: usize, hidden_size: usize) -> Self {
        Self::new(RnnMode::RnnTanh, input_size, hidden_size)
    }
    /// Sets `num_layers`.
    pub fn num_layers(mut self, n: usize) -> Self {
        self.num_layers = n;
        self
    }
    /// Sets `bias`.
    pub fn bias(mut self, b: bool) -> Self {
        self.bias = b;
        self
    }
    /// Sets `batch_first`.
    pub fn batch_first(mut self, b: bool) -> Self {
        self.batch_first = b;
        self
    }
    /// Sets `dropout`.
    pub fn dropout(mut self, p: f32) -> Self {
        self.dropout = p;
        self
    }
    /// Sets `bidirectional`.
    pub fn bidirectional(mut self, b: bool) -> Self {
        self.bidirectional = b;
        self
    }
    /// Sets `proj_size` (LSTM only).
    pub fn proj_size(mut self, p: usize) -> Self {
        self.proj_size = p;
        self
    }
    /// Sets the Elman nonlinearity: `"tanh"` or `"relu"` (RNN only).
    pub fn nonlinearity(mut self, relu: bool) -> Self {
        if matches!(self.mode, RnnMode::RnnTanh | RnnMode::RnnRelu) {
            self.mode = if relu {
                RnnMode::RnnRelu
            } else {
                RnnMode::RnnTanh
            };
        }
        self
    }

    /// D: 2 if bidirectional, else 1.
    pub fn num_directions(&self) -> usize {
        if self.bidirectional {
            2
        } else {
            1
        }
    }

    /// Hout: the state size, `proj_size` when projecting, else `hidden_size`.
    pub fn state_size(&self) -> usize {
        if self.proj_size > 0 {
            self.proj_size
        } else {
            self.hidden_size
        }
    }

    /// Features per output step: D·Hout.
    pub fn output_size(&self) -> usize {
        self.num_directions() * self.state_size()
    }

    /// Checks the arguments as PyTorch does (and a little more).
    pub fn validate(&self) -> Result<()> {
        let op = "RnnConfig::build";
        if !(0.0..=1.0).contains(&self.dropout) || self.dropout.is_nan() {
            return Err(Error::arg(
                op,
                "dropout",
                "a probability in [0, 1]",
                self.dropout,
            ));
        }
        if self.hidden_size == 0 {
            return Err(Error::arg(op, "hidden_size", "> 0", 0));
        }
        if self.num_layers == 0 {
            return Err(Error::arg(op, "num_layers", ">= 1", 0));
        }
        if self.proj_size > 0 {
            if self.mode != RnnMode::Lstm {
                return Err(Error::arg(
                    op,
                    "proj_size",
                    "0 (projection is LSTM-only)",
                    self.proj_size,
                ));
            }
            if self.proj_size >= self.hidden_size {
                return Err(Error::arg(
                    op,
                    "proj_size",
                    format!("< hidden_size ({})", self.hidden_size),
                    self.proj_size,
                ));
            }
        }
        Ok(())
    }

    /// Builds the layer, parameters drawn from U(-1/√H, 1/√H) as PyTorch does.
    pub fn build(&self, rng: &mut impl Init) -> Result<Rnn> {
        self.validate()?;
        let (h, g, ho, dirs) = (
            self.hidden_size,
            self.mode.gates() * self.hidden_size,
            self.state_size(),
            self.num_directions(),
        );
        let bound = 1.0 / (h as f32).sqrt();
        let mut cells = Vec::with_capacity(self.num_layers * dirs);
        for layer in 0..self.num_layers {
            let input = if layer == 0 {
                self.input_size
            } else {
                self.output_size()
            };
            for dir in 0..dirs {
                let sfx = format!("_l{layer}{}", if dir == 1 { "_reverse" } else { "" });
                let mut p = |name: &str, shape: &[usize]| {
                    Param::uniform(format!("{name}{sfx}"), shape, bound, rng)
                };
                let w_ih = p("weight_ih", &[g, input]);
                let w_hh = p("weight_hh", &[g, ho]);
                let (b_ih, b_hh) = if self.bias {
                    (Some(p("bias_ih", &[g])), Some(p("bias_hh", &[g])))
                } else {
                    (None, None)
                };
                let w_hr = (self.proj_size > 0).then(|| p("weight_hr", &[ho, h]));
                cells.push(DirWeights {
                    w_ih,
                    w_hh,
                    b_ih,
                    b_hh,
                    w_hr,
                });
            }
        }
        Ok(Rnn {
            cfg: self.clone(),
            cells,
        })
    }
}

/// Initial (or final) recurrent state: `h` (L·D, B, Hout) and, for LSTM, `c` (L·D, B, H).
#[derive(Clone, Debug, PartialEq)]
pub struct RnnState {
    /// Hidden state.
    pub h: Tensor,
    /// Cell state (LSTM only).
    pub c: Option<Tensor>,
}

/// What a forward pass returns.
#[derive(Clone, Debug, PartialEq)]
pub struct RnnOutput {
    /// (T, B, D·Hout), or (B, T, D·Hout) with batch_first, or (T, D·Hout) unbatched.
    pub output: Tensor,
    /// (L·D, B, Hout): each sequence's state after its own last element.
    pub h_n: Tensor,
    /// (L·D, B, H), LSTM only.
    pub c_n: Option<Tensor>,
}

/// Gradients with respect to a forward pass's inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct RnnGrads {
    /// ∂L/∂input, shaped like the input.
    pub input: Tensor,
    /// ∂L/∂h0, shaped like h0.
    pub h0: Tensor,
    /// ∂L/∂c0 (LSTM).
    pub c0: Option<Tensor>,
}

/// How the caller's tensors map to the internal time-major, length-sorted layout.
#[derive(Clone, Debug)]
struct Layout {
    batch_first: bool,
    unbatched: bool,
    steps: usize,
    batch: usize,
    /// `perm[r]` = the caller's batch index of internal row r (rows sorted by decreasing
    /// length, ties by index); `None` when every sequence has the full length.
    perm: Option<Vec<usize>>,
    /// Rows running at each time step.
    active: Vec<usize>,
}

impl Layout {
    /// No steps, no rows: for sizes that do not depend on the batch (packing weights).
    fn empty() -> Self {
        Layout {
            batch_first: false,
            unbatched: false,
            steps: 0,
            batch: 0,
            perm: None,
            active: Vec::new(),
        }
    }
}

/// What the first layer reads.
#[derive(Clone, Copy)]
enum RunInput<'a> {
    /// Features in the caller's layout.
    Features(&'a Tensor),
    /// Time-major token ids (T, B), looked up in the packed first-layer tables.
    Tokens {
        ids: &'a [i64],
        steps: usize,
        batch: usize,
    },
}

/// What backward needs from one layer.
#[derive(Clone, Debug)]
struct LayerCache {
    /// The layer's input, internal layout `[T, B, I_l]` (after inter-layer dropout).
    input: Vec<f32>,
    /// The dropout multipliers applied to that input (layers > 0, training, p > 0).
    mask: Option<Vec<f32>>,
    dirs: Vec<DirTrace>,
}

/// What [`Rnn::forward_train`] saves for [`Rnn::backward`].
#[derive(Clone, Debug)]
pub struct RnnCache {
    layout: Layout,
    layers: Vec<LayerCache>,
}

/// What one step of [`Rnn::step_packed`] reads.
#[derive(Clone, Copy, Debug)]
pub enum StepInput<'a> {
    /// Features (B, I).
    Features(&'a [f32]),
    /// Token ids (B), looked up in the tables of [`Rnn::pack_embedded`].
    Tokens(&'a [u32]),
    /// Token ids (B) looked up in the tables of [`Rnn::pack_embedded_split`], plus the gate
    /// pre-activations of the rest of the input (B, G·H), computed by the caller.
    TokensAndGates(&'a [u32], &'a [f32]),
}

/// Weight-gradient products set aside by [`Rnn::backward_deferred`], per layer and direction.
#[derive(Clone, Debug, Default)]
pub struct RnnDeferred {
    dirs: Vec<DeferredGrads>,
}

/// Reusable buffers of [`Rnn::step_packed`].
#[derive(Clone, Debug, Default)]
pub struct RnnScratch(StepScratch);

/// Weights of every layer and direction packed for the GEMM kernel (see [`Rnn::pack`]).
#[derive(Clone, Debug)]
pub struct RnnPacked {
    dirs: Vec<PackedDir>,
    /// [`Rnn::stamp`] when packed: using the weights after a parameter update is an error.
    stamp: u64,
}

/// A stacked, optionally bidirectional RNN, LSTM or GRU.
#[derive(Clone, Debug)]
pub struct Rnn {
    cfg: RnnConfig,
    /// Index `layer * D + direction`.
    cells: Vec<DirWeights>,
}

impl Module for Rnn {
    fn params(&self) -> Vec<&Param> {
        self.cells.iter().flat_map(|c| c.params()).collect()
    }
    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.cells.iter_mut().flat_map(|c| c.params_mut()).collect()
    }
}

/// Copies rows of `[T, B, w]` into internal order: `dst[t, r] = src[t, perm[r]]`.
fn gather(src: &[f32], perm: &[usize], steps: usize, w: usize) -> Vec<f32> {
    let b = perm.len();
    let mut dst = vec![0.0f32; src.len()];
    for t in 0..steps {
        for (r, &p) in perm.iter().enumerate() {
            dst[(t * b + r) * w..][..w].copy_from_slice(&src[(t * b + p) * w..][..w]);
        }
    }
    dst
}

/// The inverse of [`gather`].
fn scatter(src: &[f32], perm: &[usize], steps: usize, w: usize) -> Vec<f32> {
    let b = perm.len();
    let mut dst = vec![0.0f32; src.len()];
    for t in 0..steps {
        for (r, &p) in perm.iter().enumerate() {
            dst[(t * b + p) * w..][..w].copy_from_slice(&src[(t * b + r) * w..][..w]);
        }
    }
    dst
}

impl Rnn {
    /// The configuration.
    pub fn config(&self) -> &RnnConfig {
        &self.cfg
    }

    /// Inference forward (saves nothing).
    ///
    /// * `input`: (T, B, I), (B, T, I) with batch_first, or (T, I) unbatched.
    /// * `lengths`: per-sequence lengths (each ≤ T, 0 allowed), or `None` for full length.
    /// * `state`: h0 (L·D, B, Hout) and c0 (L·D, B, H), zeros when `None`.
    pub fn forward(
        &self,
        input: &Tensor,
        lengths: Option<&[usize]>,
        state: Option<&RnnState>,
    ) -> Result<RnnOutput> {
        self.run(RunInput::Features(input), lengths, state, None, None, true)
            .map(|(out, _)| out)
    }

    /// The weights packed for [`Rnn::forward_packed`]: pack once, then run many short
    /// sequences (decoder steps) without re-packing. Stale once the parameters change.
    pub fn pack(&self) -> RnnPacked {
        let lay = Layout::empty();
        let nd = self.cfg.num_directions();
        let dirs = self
            .cells
            .iter()
            .enumerate()
            .map(|(i, c)| PackedDir::new(c, self.dims(i / nd, &lay)))
            .collect();
        RnnPacked {
            dirs,
            stamp: self.stamp(),
        }
    }

    /// A fingerprint of the versions of every parameter ([`Param::version`]); changes whenever
    /// one of them is updated. Allocates nothing.
    pub fn stamp(&self) -> u64 {
        let mut s = 0;
        self.for_each_param(&mut |p| s = mix_version(s, p));
        s
    }

    /// [`Rnn::forward`] with weights packed by [`Rnn::pack`] (same results, bit for bit).
    pub fn forward_packed(
        &self,
        packed: &RnnPacked,
        input: &Tensor,
        lengths: Option<&[usize]>,
        state: Option<&RnnState>,
    ) -> Result<RnnOutput> {
        self.check_packed(packed)?;
        self.run(
            RunInput::Features(input),
            lengths,
            state,
            None,
            Some(packed),
            true,
        )
        .map(|(out, _)| out)
    }

    /// [`Rnn::pack`] for a layer that reads embedded tokens: `embedding` (V, I) is the
    /// embedding's weight, and the first layer's input projection of each of its rows is
    /// precomputed, so [`Rnn::forward_tokens_packed`] looks tokens up instead of multiplying
    /// by `W_ih` (the same bits as embedding them and calling [`Rnn::forward`]).
    pub fn pack_embedded(&self, embedding: &Tensor) -> Result<RnnPacked> {
        let i = self.cfg.input_size;
        if embedding.rank() != 2 || embedding.dim(1) != i {
            return Err(Error::shape(
                "RNN.pack_embedded",
                format!("an embedding weight (V, {i})"),
                fmt_shape(embedding.shape()),
            ));
        }
        let mut packed = self.pack();
        let nd = self.cfg.num_directions();
        for dir in &mut packed.dirs[..nd] {
            dir.tabulate(embedding.data(), embedding.dim(0));
        }
        Ok(packed)
    }

    /// [`Rnn::pack`] for a one-direction RNN whose first layer reads `cat(embedding(token), f)`
    /// (input I = E + F, `embedding` (V, E)): its tables hold, per token, step (A) for the
    /// input `cat(embedding[v], 0)` (bias included, the bits of embedding and multiplying), for
    /// [`StepInput::TokensAndGates`]; also returns the feature columns of `weight_ih_l0`, packed
    /// `(F, G·H)`, with which the caller computes the gates of `f` (or of what `f` is a
    /// weighted sum of, once per part: a decoder's attention context).
    pub fn pack_embedded_split(&self, embedding: &Tensor) -> Result<(RnnPacked, PackedB)> {
        let op = "RNN.pack_embedded_split";
        let i = self.cfg.input_size;
        if embedding.rank() != 2 || embedding.dim(1) > i {
            return Err(Error::shape(
                op,
                format!("an embedding weight (V, E) with E <= {i}"),
                fmt_shape(embedding.shape()),
            ));
        }
        if self.cfg.num_directions() != 1 {
            return Err(Error::arg(op, "bidirectional", "false", true));
        }
        let (vocab, e) = (embedding.dim(0), embedding.dim(1));
        let mut rows = vec![0.0f32; vocab * i];
        for (row, emb) in rows
            .chunks_exact_mut(i)
            .zip(embedding.data().chunks_exact(e))
        {
            row[..e].copy_from_slice(emb);
        }
        let mut packed = self.pack();
        packed.dirs[0].tabulate(&rows, vocab);
        let (gh, f) = (self.cfg.mode.gates() * self.cfg.hidden_size, i - e);
        let w_ih = self.cells[0].w_ih.value.data(); // (G·H, I)
        let cols: Vec<f32> = w_ih
            .chunks_exact(i)
            .flat_map(|r| &r[e..])
            .copied()
            .collect();
        Ok((packed, PackedB::new(&cols, Trans::T, f, gh)))
    }

    /// [`Rnn::forward_packed`] on token ids `ids` (T, B), time-major, with weights from
    /// [`Rnn::pack_embedded`]: the output is time-major (T, B, D·Hout) whatever `batch_first`.
    pub fn forward_tokens_packed(
        &self,
        packed: &RnnPacked,
        ids: &[i64],
        (steps, batch): (usize, usize),
        lengths: Option<&[usize]>,
        state: Option<&RnnState>,
    ) -> Result<RnnOutput> {
        self.check_packed(packed)?;
        let input = RunInput::Tokens { ids, steps, batch };
        self.run(input, lengths, state, None, Some(packed), true)
            .map(|(out, _)| out)
    }

    /// [`Rnn::forward_tokens_packed`] for a caller that needs the final state alone (an
    /// encoder without attention): the last layer's outputs are neither stored nor put back in
    /// the caller's order. The same bits as `h_n` and `c_n` of `forward_tokens_packed`.
    pub fn final_state_tokens_packed(
        &self,
        packed: &RnnPacked,
        ids: &[i64],
        (steps, batch): (usize, usize),
        lengths: Option<&[usize]>,
    ) -> Result<RnnState> {
        self.check_packed(packed)?;
        let input = RunInput::Tokens { ids, steps, batch };
        let (out, _) = self.run(input, lengths, None, None, Some(packed), false)?;
        Ok(RnnState {
            h: out.h_n,
            c: out.c_n,
        })
    }

    fn check_packed(&self, packed: &RnnPacked) -> Result<()> {
        if packed.stamp != self.stamp() {
            return Err(Error::arg(
                "RNN.forward_packed",
                "packed",
                "weights packed from the current parameters",
                "stale weights (packed before a parameter update; pack again)",
            ));
        }
        if packed.dirs.len() != self.cells.len() {
            return Err(Error::arg(
                "RNN.forward_packed",
                "packed",
                format!("weights of {} directions", self.cells.len()),
                packed.dirs.len(),
            ));
        }
        Ok(())
    }

    /// One time step of a unidirectional stack for `rows` rows, in place and without allocating
    /// (once `scratch` has grown): the same bits as [`Rnn::forward_packed`] (features) or
    /// [`Rnn::forward_tokens_packed`] (tokens, weights from [`Rnn::pack_embedded`]) on a
    /// one-step sequence. `h` (L, rows, Hout) and `c` (L, rows, H) (LSTM; empty otherwise) are
    /// the state in and out, flat; the step's output is the top layer's rows of `h`.
    pub fn step_packed(
        &self,
        packed: &RnnPacked,
        input: StepInput,
        rows: usize,
        h: &mut [f32],
        c: &mut [f32],
        scratch: &mut RnnScratch,
    ) -> Result<()> {
        let op = "RNN.step_packed";
        self.check_packed(packed)?;
        if self.cfg.num_directions() != 1 {
            return Err(Error::arg(op, "bidirectional", "false (one step)", true));
        }
        let (l, hid, ho) = (
            self.cfg.num_layers,
            self.cfg.hidden_size,
            self.cfg.state_size(),
        );
        let is_lstm = self.cfg.mode == RnnMode::Lstm;
        let want_c = if is_lstm { l * rows * hid } else { 0 };
        if h.len() != l * rows * ho || c.len() != want_c {
            return Err(Error::shape(
                op,
                format!("h of {} and c of {want_c} values", l * rows * ho),
                format!("{} and {}", h.len(), c.len()),
            ));
        }
        let x = match input {
            StepInput::Features(x) => {
                if x.len() != rows * self.cfg.input_size {
                    let want = format!("{rows} x {} input values", self.cfg.input_size);
                    return Err(Error::shape(op, want, x.len().to_string()));
                }
                SweepInput::Features(x)
            }
            StepInput::Tokens(ids) | StepInput::TokensAndGates(ids, _) => {
                let Some(vocab) = packed.dirs[0].table_rows() else {
                    return Err(Error::arg(
                        op,
                        "packed",
                        "weights from Rnn::pack_embedded",
                        "Rnn::pack",
                    ));
                };
                if ids.len() != rows {
                    return Err(Error::shape(
                        op,
                        format!("{rows} ids"),
                        ids.len().to_string(),
                    ));
                }
                if let Some(&bad) = ids.iter().find(|&&t| t as usize >= vocab) {
                    return Err(Error::arg(op, "ids", format!("in 0..{vocab}"), bad));
                }
                match input {
                    StepInput::TokensAndGates(_, gates) => {
                        let gh = self.cfg.mode.gates() * hid;
                        if gates.len() != rows * gh {
                            let want = format!("{rows} x {gh} gate values");
                            return Err(Error::shape(op, want, gates.len().to_string()));
                        }
                        SweepInput::TokensAndGates(ids, gates)
                    }
                    _ => SweepInput::Tokens(ids),
                }
            }
        };
        let threads = num_threads();
        let lay = Layout::empty();
        for layer in 0..l {
            let mut d = self.dims(layer, &lay);
            (d.steps, d.batch) = (1, rows);
            let (below, rest) = h.split_at_mut(layer * rows * ho);
            let hl = &mut rest[..rows * ho];
            let cl: &mut [f32] = if is_lstm {
                &mut c[layer * rows * hid..][..rows * hid]
            } else {
                &mut []
            };
            // Layers above the first read the new state of the layer below.
            let xin = if layer == 0 {
                x
            } else {
                SweepInput::Features(&below[(layer - 1) * rows * ho..])
            };
            recurrence::step(
                &self.cells[layer],
                &packed.dirs[layer],
                d,
                xin,
                hl,
                cl,
                &mut scratch.0,
                threads,
            );
        }
        Ok(())
    }

    /// Calls `f` on every parameter, in [`Module::params`] order, without allocating.
    pub fn for_each_param(&self, f: &mut impl FnMut(&Param)) {
        for c in &self.cells {
            f(&c.w_ih);
            f(&c.w_hh);
            c.b_ih
                .iter()
                .chain(&c.b_hh)
                .chain(&c.w_hr)
                .for_each(&mut *f);
        }
    }

    /// Token ids (T, B) into internal order, checked against the first layer's tables.
    fn token_rows(&self, lay: &Layout, ids: &[i64], packed: &RnnPacked) -> Result<Vec<u32>> {
        let op = "RNN.forward_tokens_packed";
        let Some(vocab) = packed.dirs[0].table_rows() else {
            return Err(Error::arg(
                op,
                "packed",
                "weights from Rnn::pack_embedded",
                "Rnn::pack",
            ));
        };
        if ids.len() != lay.steps * lay.batch {
            let want = format!(
                "{} ids ({} steps × {} rows)",
                lay.steps * lay.batch,
                lay.steps,
                lay.batch
            );
            return Err(Error::shape(op, want, ids.len().to_string()));
        }
        if let Some(&bad) = ids.iter().find(|&&t| t < 0 || t as usize >= vocab) {
            return Err(Error::arg(op, "ids", format!("in 0..{vocab}"), bad));
        }
        let b = lay.batch;
        Ok((0..ids.len())
            .map(|i| {
                let (t, r) = (i / b.max(1), i % b.max(1));
                let src = lay.perm.as_ref().map_or(r, |p| p[r]);
                ids[t * b + src] as u32
            })
            .collect())
    }

    /// Training forward: like [`Rnn::forward`] with inter-layer dropout, and returns what
    /// [`Rnn::backward`] needs.
    pub fn forward_train(
        &self,
        input: &Tensor,
        lengths: Option<&[usize]>,
        state: Option<&RnnState>,
        rng: &mut Rng64,
    ) -> Result<(RnnOutput, RnnCache)> {
        self.forward_train_with(None, input, lengths, state, rng)
    }

    /// The weights packed for both directions of training ([`Rnn::forward_train_with`] and
    /// [`Rnn::backward_with`]): for a layer run one step at a time, such as a decoder's, which
    /// would otherwise pack them at every step. Stale once the parameters change.
    pub fn pack_for_training(&self) -> RnnPacked {
        let mut packed = self.pack();
        let nd = self.cfg.num_directions();
        let lay = Layout::empty();
        for (i, (dir, w)) in packed.dirs.iter_mut().zip(&self.cells).enumerate() {
            dir.pack_backward(w, self.dims(i / nd, &lay));
        }
        packed
    }

    /// [`Rnn::forward_train`] with packed weights (same results, bit for bit).
    pub fn forward_train_with(
        &self,
        packed: Option<&RnnPacked>,
        input: &Tensor,
        lengths: Option<&[usize]>,
        state: Option<&RnnState>,
        rng: &mut Rng64,
    ) -> Result<(RnnOutput, RnnCache)> {
        if let Some(p) = packed {
            self.check_packed(p)?;
        }
        let input = RunInput::Features(input);
        let (out, cache) = self.run(input, lengths, state, Some(rng), packed, true)?;
        Ok((out, cache.expect("training forward keeps its cache")))
    }

    fn layout(&self, input: RunInput, lengths: Option<&[usize]>) -> Result<Layout> {
        let op = "RNN.forward";
        let input = match input {
            RunInput::Features(t) => t,
            RunInput::Tokens { steps, batch, .. } => {
                return self.layout_of(steps, batch, (false, false), lengths)
            }
        };
        let unbatched = match input.rank() {
            2 => true,
            3 => false,
            _ => {
                return Err(Error::shape(
                    op,
                    "a 3-D input (seq, batch, feature) or 2-D (seq, feature)",
                    fmt_shape(input.shape()),
                ))
            }
        };
        let feat = input.shape()[input.rank() - 1];
        if feat != self.cfg.input_size {
            return Err(Error::shape(
                op,
                format!("input feature size {}", self.cfg.input_size),
                format!("{} (input {})", feat, fmt_shape(input.shape())),
            ));
        }
        let (steps, batch) = if unbatched {
            (input.dim(0), 1)
        } else if self.cfg.batch_first {
            (input.dim(1), input.dim(0))
        } else {
            (input.dim(0), input.dim(1))
        };
        self.layout_of(steps, batch, (self.cfg.batch_first, unbatched), lengths)
    }

    /// The layout of `batch` sequences of `steps` steps (`lengths` each).
    fn layout_of(
        &self,
        steps: usize,
        batch: usize,
        (batch_first, unbatched): (bool, bool),
        lengths: Option<&[usize]>,
    ) -> Result<Layout> {
        let op = "RNN.forward";
        let perm = match lengths {
            None => None,
            Some(lens) => {
                if lens.len() != batch {
                    return Err(Error::shape(
                        op,
                        format!("{batch} lengths (one per sequence)"),
                        format!("{}", lens.len()),
                    ));
                }
                if let Some((i, &l)) = lens.iter().enumerate().find(|(_, &l)| l > steps) {
                    return Err(Error::arg(
                        op,
                        "lengths",
                        format!("each <= sequence length {steps}"),
                        format!("lengths[{i}] = {l}"),
                    ));
                }
                if lens.iter().all(|&l| l == steps) {
                    None
                } else {
                    let mut p: Vec<usize> = (0..batch).collect();
                    p.sort_by(|&a, &b| lens[b].cmp(&lens[a]).then(a.cmp(&b)));
                    Some(p)
                }
            }
        };
        let active = (0..steps)
            .map(|t| match (&perm, lengths) {
                (Some(p), Some(lens)) => p.iter().take_while(|&&i| lens[i] > t).count(),
                _ => batch,
            })
            .collect();
        Ok(Layout {
            batch_first,
            unbatched,
            steps,
            batch,
            perm,
            active,
        })
    }

    /// Expected shape of a state tensor for this layout.
    fn state_shape(&self, lay: &Layout, width: usize) -> Vec<usize> {
        let ld = self.cfg.num_layers * self.cfg.num_directions();
        if lay.unbatched {
            vec![ld, width]
        } else {
            vec![ld, lay.batch, width]
        }
    }

    /// A state tensor (caller order) into internal order `[L·D, B, w]`, zeros when absent.
    fn state_in(
        &self,
        lay: &Layout,
        t: Option<&Tensor>,
        width: usize,
        name: &str,
    ) -> Result<Vec<f32>> {
        let want = self.state_shape(lay, width);
        match t {
            None => Ok(vec![0.0; want.iter().product()]),
            Some(t) if t.shape() != want.as_slice() => Err(Error::shape(
                "RNN.forward",
                format!("{name} of shape {}", fmt_shape(&want)),
                fmt_shape(t.shape()),
            )),
            Some(t) => Ok(match &lay.perm {
                Some(p) => gather(t.data(), p, want[0], width),
                None => t.data().to_vec(),
            }),
        }
    }

    /// Internal `[L·D, B, w]` back to the caller's order and shape.
    fn state_out(&self, lay: &Layout, v: Vec<f32>, width: usize) -> Tensor {
        let shape = self.state_shape(lay, width);
        let v = match &lay.perm {
            Some(p) => scatter(&v, p, shape[0], width),
            None => v,
        };
        Tensor::from_vec(&shape, v).expect("state shape")
    }

    /// A caller-layout sequence tensor (input or ∂output) into internal `[T, B, w]`: borrowed
    /// when it already is (time-major, no reordering), copied otherwise.
    fn seq_in<'a>(&self, lay: &Layout, t: &'a Tensor, width: usize) -> Cow<'a, [f32]> {
        let tm = if lay.batch_first && !lay.unbatched {
            Cow::Owned(t.transpose01().into_vec())
        } else {
            Cow::Borrowed(t.data())
        };
        match &lay.perm {
            Some(p) => Cow::Owned(gather(&tm, p, lay.steps, width)),
            None => tm,
        }
    }

    /// Internal `[T, B, w]` back to the caller's layout.
    fn seq_out(&self, lay: &Layout, v: Vec<f32>, width: usize) -> Tensor {
        let v = match &lay.perm {
            Some(p) => scatter(&v, p, lay.steps, width),
            None => v,
        };
        if lay.unbatched {
            return Tensor::from_vec(&[lay.steps, width], v).expect("seq shape");
        }
        let tm = Tensor::from_vec(&[lay.steps, lay.batch, width], v).expect("seq shape");
        if lay.batch_first {
            tm.transpose01()
        } else {
            tm
        }
    }

    fn dims(&self, layer: usize, lay: &Layout) -> Dims {
        Dims {
            mode: self.cfg.mode,
            input: if layer == 0 {
                self.cfg.input_size
            } else {
                self.cfg.output_size()
            },
            hidden: self.cfg.hidden_size,
            out: self.cfg.state_size(),
            steps: lay.steps,
            batch: lay.batch,
        }
    }

    fn run(
        &self,
        input: RunInput,
        lengths: Option<&[usize]>,
        state: Option<&RnnState>,
        mut rng: Option<&mut Rng64>,
        packed: Option<&RnnPacked>,
        keep_output: bool,
    ) -> Result<(RnnOutput, Option<RnnCache>)> {
        let lay = self.layout(input, lengths)?;
        let (hid, ho, nd) = (
            self.cfg.hidden_size,
            self.cfg.state_size(),
            self.cfg.num_directions(),
        );
        let is_lstm = self.cfg.mode == RnnMode::Lstm;
        if !is_lstm && state.is_some_and(|s| s.c.is_some()) {
            return Err(Error::arg(
                "RNN.forward",
                "c0",
                format!("none ({} has no cell state)", self.cfg.mode.torch_name()),
                "a tensor",
            ));
        }
        let mut h_all = self.state_in(&lay, state.map(|s| &s.h), ho, "h0")?;
        let mut c_all = if is_lstm {
            self.state_in(&lay, state.and_then(|s| s.c.as_ref()), hid, "c0")?
        } else {
            Vec::new()
        };
        let train = rng.is_some();
        let threads = num_threads();
        let (tb, bsz) = (lay.steps * lay.batch, lay.batch);

        // Layer 0 reads features `x`, or tokens; later layers read `x`, the layer below's output.
        let (mut x, tokens) = match (input, packed) {
            (RunInput::Features(t), _) => (self.seq_in(&lay, t, self.cfg.input_size), None),
            (RunInput::Tokens { ids, .. }, Some(p)) => {
                (Cow::Borrowed(&[][..]), Some(self.token_rows(&lay, ids, p)?))
            }
            (RunInput::Tokens { .. }, None) => unreachable!("token input is always packed"),
        };
        let mut caches = Vec::new();
        for layer in 0..self.cfg.num_layers {
            let d = self.dims(layer, &lay);
            // Inter-layer dropout: on the inputs of layers > 0, in training only.
            let mask = match rng.as_deref_mut() {
                Some(r) if layer > 0 => {
                    Dropout::new(self.cfg.dropout)?.forward_inplace(x.to_mut(), true, r)
                }
                _ => None,
            };
            // One direction: its state slices and its own output buffer.
            // The last layer's outputs are the result, unless only the final state is.
            let outputs = keep_output || train || layer + 1 < self.cfg.num_layers;
            let run_dir = |dir: usize, h: &mut [f32], c: &mut [f32], threads: usize| {
                let mut out = if outputs {
                    vec![0.0f32; tb * ho]
                } else {
                    Vec::new()
                };
                let cell = &self.cells[layer * nd + dir];
                let local;
                let packed_dir = match packed {
                    Some(p) => &p.dirs[layer * nd + dir],
                    None => {
                        local = PackedDir::new(cell, d);
                        &local
                    }
                };
                let input = match &tokens {
                    Some(ids) if layer == 0 => SweepInput::Tokens(ids),
                    _ => SweepInput::Features(&x),
                };
                let trace = recurrence::forward(
                    cell,
                    packed_dir,
                    d,
                    input,
                    &lay.active,
                    dir == 1,
                    h,
                    c,
                    &mut out,
                    train,
                    threads,
                );
                (out, trace)
            };
            let hs = &mut h_all[layer * nd * bsz * ho..][..nd * bsz * ho];
            let cs: &mut [f32] = if is_lstm {
                &mut c_all[layer * nd * bsz * hid..][..nd * bsz * hid]
            } else {
                &mut []
            };
            let results = if nd == 2 {
                let (h0, h1) = hs.split_at_mut(bsz * ho);
                let (c0, c1) = cs.split_at_mut(cs.len() / 2);
                let per = (threads / 2).max(1);
                let (a, b) = both_directions(
                    threads,
                    || run_dir(0, h0, c0, per),
                    || run_dir(1, h1, c1, per),
                );
                vec![a, b]
            } else {
                vec![run_dir(0, hs, cs, threads)]
            };
            let (outs, traces): (Vec<Vec<f32>>, Vec<Option<DirTrace>>) =
                results.into_iter().unzip();
            let y = match outputs {
                true => interleave(outs, tb, ho),
                false => Vec::new(),
            };
            if train {
                caches.push(LayerCache {
                    input: std::mem::take(&mut x).into_owned(),
                    mask,
                    dirs: traces.into_iter().flatten().collect(),
                });
            }
            x = Cow::Owned(y);
        }
        let out_w = self.cfg.output_size();
        let output = RnnOutput {
            output: match keep_output {
                true => self.seq_out(&lay, x.into_owned(), out_w),
                false => Tensor::zeros(&[0]),
            },
            h_n: self.state_out(&lay, h_all, ho),
            c_n: is_lstm.then(|| self.state_out(&lay, c_all, hid)),
        };
        Ok((
            output,
            train.then_some(RnnCache {
                layout: lay,
                layers: caches,
            }),
        ))
    }

    /// Backward through time; adds into every parameter gradient and returns the gradients of
    /// the input and initial state. Missing upstream gradients count as zero.
    ///
    /// * `grad_output`: like `output`; `grad_h_n`: like `h_n`; `grad_c_n`: like `c_n`.
    pub fn backward(
        &mut self,
        cache: &RnnCache,
        grad_output: Option<&Tensor>,
        grad_h_n: Option<&Tensor>,
        grad_c_n: Option<&Tensor>,
    ) -> Result<RnnGrads> {
        self.backward_with(None, cache, grad_output, grad_h_n, grad_c_n)
    }

    /// [`Rnn::backward`] with weights from [`Rnn::pack_for_training`] (same results, bit for
    /// bit), for a layer run one step at a time.
    pub fn backward_with(
        &mut self,
        packed: Option<&RnnPacked>,
        cache: &RnnCache,
        grad_output: Option<&Tensor>,
        grad_h_n: Option<&Tensor>,
        grad_c_n: Option<&Tensor>,
    ) -> Result<RnnGrads> {
        self.backward_impl(packed, cache, (grad_output, grad_h_n, grad_c_n), None)
    }

    /// [`Rnn::backward_with`] that sets the weight-gradient products aside in `deferred`
    /// instead of computing them: a layer run one step at a time (a decoder) then computes them
    /// with one GEMM per weight over all its steps ([`Rnn::flush_deferred`]).
    pub fn backward_deferred(
        &mut self,
        packed: Option<&RnnPacked>,
        cache: &RnnCache,
        (grad_output, grad_h_n, grad_c_n): (Option<&Tensor>, Option<&Tensor>, Option<&Tensor>),
        deferred: &mut RnnDeferred,
    ) -> Result<RnnGrads> {
        let grads = (grad_output, grad_h_n, grad_c_n);
        self.backward_impl(packed, cache, grads, Some(deferred))
    }

    /// Adds the weight gradients set aside by [`Rnn::backward_deferred`] (one GEMM per weight)
    /// and empties `deferred`.
    pub fn flush_deferred(&mut self, deferred: &mut RnnDeferred) {
        let (nd, threads, lay) = (self.cfg.num_directions(), num_threads(), Layout::empty());
        for (i, sink) in deferred.dirs.iter_mut().enumerate() {
            let d = self.dims(i / nd, &lay);
            sink.flush(&mut self.cells[i], d, threads);
        }
    }

    #[allow(clippy::type_complexity)]
    fn backward_impl(
        &mut self,
        packed: Option<&RnnPacked>,
        cache: &RnnCache,
        (grad_output, grad_h_n, grad_c_n): (Option<&Tensor>, Option<&Tensor>, Option<&Tensor>),
        mut deferred: Option<&mut RnnDeferred>,
    ) -> Result<RnnGrads> {
        if let Some(df) = deferred.as_deref_mut() {
            df.dirs.resize_with(self.cells.len(), Default::default);
        }
        if let Some(p) = packed {
            self.check_packed(p)?;
        }
        let lay = &cache.layout;
        let (hid, ho, nd) = (
            self.cfg.hidden_size,
            self.cfg.state_size(),
            self.cfg.num_directions(),
        );
        let is_lstm = self.cfg.mode == RnnMode::Lstm;
        let (tb, bsz, out_w) = (lay.steps * lay.batch, lay.batch, self.cfg.output_size());
        let mut dy = match grad_output {
            None => vec![0.0f32; tb * out_w],
            Some(g) => {
                let want = self.seq_out(lay, vec![0.0; tb * out_w], out_w);
                if g.shape() != want.shape() {
                    return Err(Error::shape(
                        "RNN.backward",
                        format!("grad_output of shape {}", fmt_shape(want.shape())),
                        fmt_shape(g.shape()),
                    ));
                }
                self.seq_in(lay, g, out_w).into_owned()
            }
        };
        let mut dh_all = self.state_in(lay, grad_h_n, ho, "grad_h_n")?;
        let mut dc_all = if is_lstm {
            self.state_in(lay, grad_c_n, hid, "grad_c_n")?
        } else {
            Vec::new()
        };
        let threads = num_threads();

        for layer in (0..self.cfg.num_layers).rev() {
            let d = self.dims(layer, lay);
            let lc = &cache.layers[layer];
            let d_outs = deinterleave(std::mem::take(&mut dy), nd, tb, ho);
            let dhs = &mut dh_all[layer * nd * bsz * ho..][..nd * bsz * ho];
            let dcs: &mut [f32] = if is_lstm {
                &mut dc_all[layer * nd * bsz * hid..][..nd * bsz * hid]
            } else {
                &mut []
            };
            let cells = &mut self.cells[layer * nd..(layer + 1) * nd];
            let (mut sink0, mut sink1) = match deferred.as_deref_mut() {
                Some(df) => {
                    let (a, b) = df.dirs[layer * nd..(layer + 1) * nd].split_at_mut(1);
                    (a.first_mut(), b.first_mut())
                }
                None => (None, None),
            };
            let run_dir = |dir: usize,
                           w: &mut DirWeights,
                           dh: &mut [f32],
                           dc: &mut [f32],
                           sink: Option<&mut DeferredGrads>,
                           threads: usize| {
                let mut dx = vec![0.0f32; tb * d.input];
                recurrence::backward(
                    w,
                    packed.map(|p| &p.dirs[layer * nd + dir]),
                    d,
                    &lc.input,
                    &lay.active,
                    dir == 1,
                    &lc.dirs[dir],
                    &d_outs[dir],
                    dh,
                    dc,
                    &mut dx,
                    sink,
                    threads,
                );
                dx
            };
            let mut dx = if nd == 2 {
                let (w0, w1) = cells.split_at_mut(1);
                let (dh0, dh1) = dhs.split_at_mut(bsz * ho);
                let (dc0, dc1) = dcs.split_at_mut(dcs.len() / 2);
                let per = (threads / 2).max(1);
                let (mut a, b) = both_directions(
                    threads,
                    || run_dir(0, &mut w0[0], dh0, dc0, sink0.take(), per),
                    || run_dir(1, &mut w1[0], dh1, dc1, sink1.take(), per),
                );
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            } else {
                run_dir(0, &mut cells[0], dhs, dcs, sink0.take(), threads)
            };
            if let Some(m) = &lc.mask {
                apply_mask(&mut dx, m);
            }
            dy = dx;
        }
        Ok(RnnGrads {
            input: self.seq_out(lay, dy, self.cfg.input_size),
            h0: self.state_out(lay, dh_all, ho),
            c0: is_lstm.then(|| self.state_out(lay, dc_all, hid)),
        })
    }
}

/// `(a(), b())` for the two directions of a layer on `threads` kernel threads: one after the
/// other on one thread; at once with one thread each on the spinning team (a sleeping rayon
/// worker starts tens of microseconds late, as long as a whole sweep of a short sequence);
/// with more threads each, on rayon, so that each direction's products can take the team.
fn both_directions<RA: Send, RB: Send>(
    threads: usize,
    a: impl FnOnce() -> RA + Send,
    b: impl FnOnce() -> RB + Send,
) -> (RA, RB) {
    match threads {
        0 | 1 => (a(), b()),
        2 | 3 => crate::team::join(a, b),
        _ => rayon::join(a, b),
    }
}

/// Concatenates per-direction `[T·B, w]` buffers along features: `[T·B, D·w]`.
fn interleave(mut outs: Vec<Vec<f32>>, rows: usize, w: usize) -> Vec<f32> {
    if outs.len() == 1 {
        return outs.pop().expect("one direction");
    }
    let nd = outs.len();
    let mut y = vec![0.0f32; rows * nd * w];
    for r in 0..rows {
        for (dir, o) in outs.iter().enumerate() {
            y[(r * nd + dir) * w..][..w].copy_from_slice(&o[r * w..][..w]);
        }
    }
    y
}

/// The inverse of [`interleave`].
fn deinterleave(y: Vec<f32>, nd: usize, rows: usize, w: usize) -> Vec<Vec<f32>> {
    if nd == 1 {
        return vec![y];
    }
    (0..nd)
        .map(|dir| {
            let mut o = vec![0.0f32; rows * w];
            for r in 0..rows {
                o[r * w..][..w].copy_from_slice(&y[(r * nd + dir) * w..][..w]);
            }
            o
        })
        .collect()
}
