//! Attention over the encoder's outputs: Bahdanau (additive) and Luong (dot, general).
//!
//! Notation, per batch row b, source position j < len_b (S positions, K = key size):
//! ```text
//!   bahdanau  (1) t_j = tanh(W_query q + W_key h_j)        (A)
//!             (2) s_j = v · t_j
//!   luong     (1) k_j = h_j (dot) or W_key h_j (general)   (K)
//!             (2) s_j = k_j · q
//!   both      (3) a = softmax_j(s), positions j >= len_b masked out (a_j = 0)
//!             (4) c = Σ_j a_j h_j                          (K)
//! ```
//! `W_key h_j` does not depend on the step, so [`Memory`] computes it once per source.
//! A source of length 0 attends to nothing: a = 0 and c = 0.

use super::config::AttentionKind;
use crate::error::Result;
use crate::gemm::{matmul_packed, num_threads, PackedB, Trans};
use crate::kernels::{self, tanh};
use crate::module::{Init, Module, Param};
use crate::nn::linear::Linear;
use crate::tensor::Tensor;

/// The encoder's outputs arranged for attention, batch-major, one block per source; the rows
/// that attend (hypotheses) each point at their source's block, so that gathering rows (beam
/// search) copies indices, never keys.
#[derive(Clone, Debug)]
pub struct Memory {
    /// `h`, `[N, S, K]` for N sources.
    pub keys: Vec<f32>,
    /// `W_key h` (bahdanau `[N, S, A]`, luong_general `[N, S, K]`), or empty.
    pub proj: Vec<f32>,
    /// Per row: its source's length `[B]`.
    pub lengths: Vec<usize>,
    /// S.
    pub steps: usize,
    /// K.
    pub key_dim: usize,
    /// Width of `proj` (0 when empty).
    pub proj_dim: usize,
    /// What a layer that reads the context `c` adds to its pre-activations per key, `h_j · Wᵀ`
    /// for `j < len` of each source, sources one after another (`[Σ len, G]`, no padding; see
    /// [`Memory::project_values`]); empty when not projected.
    values: Vec<f32>,
    /// Per source: the first row of its block in `values` `[N + 1]`.
    values_at: Vec<usize>,
    /// Per row: its source's block in `keys` and `proj` `[B]`.
    block: Vec<usize>,
    /// Spare buffers of [`Memory::select`].
    spare: (Vec<usize>, Vec<usize>),
}

impl Memory {
    /// One row per source: `keys` `[B, S, K]`, `proj` `[B, S, P]` (or empty, `proj_dim` 0).
    pub fn new(
        keys: Vec<f32>,
        proj: Vec<f32>,
        lengths: Vec<usize>,
        steps: usize,
        key_dim: usize,
        proj_dim: usize,
    ) -> Self {
        Memory {
            keys,
            proj,
            values: Vec::new(),
            values_at: Vec::new(),
            block: (0..lengths.len()).collect(),
            lengths,
            steps,
            key_dim,
            proj_dim,
            spare: (Vec::new(), Vec::new()),
        }
    }

    /// Precomputes `h_j · Wᵀ` for every live key (`w` packed `(K, G)`), so that a step that
    /// multiplies its context `c = Σ_j a_j h_j` by `W` can instead sum `Σ_j a_j (h_j · Wᵀ)`
    /// ([`Memory::add_weighted_values`]): per step S·G multiply-adds per row instead of K·G,
    /// and `W` is read once per source instead of once per step. Padding is not projected, so
    /// the values take `Σ len × G` floats whatever the longest source; a source no row points
    /// at (after [`Memory::select`]) takes none.
    pub fn project_values(&mut self, w: &PackedB) {
        let (s, k, g) = (self.steps, self.key_dim, w.n());
        let sources = self.keys.len() / (s * k).max(1);
        let mut source_len = vec![0usize; sources];
        for (&n, &len) in self.block.iter().zip(&self.lengths) {
            source_len[n] = len;
        }
        let mut live = Vec::new();
        self.values_at.clear();
        self.values_at.push(0);
        for (n, &len) in source_len.iter().enumerate() {
            live.extend_from_slice(&self.keys[n * s * k..][..len * k]);
            self.values_at.push(self.values_at[n] + len);
        }
        let rows = live.len() / k.max(1);
        self.values.clear();
        self.values.resize(rows * g, 0.0);
        matmul_packed(
            &mut self.values,
            &live,
            Trans::N,
            w,
            rows,
            false,
            num_threads(),
        );
    }

    /// Whether [`Memory::project_values`] has run.
    pub fn has_values(&self) -> bool {
        !self.values_at.is_empty()
    }

    /// `out[b] += Σ_{j < len_b} weights[b, j] · values_j` of row b's source, for every row
    /// (`weights` `[B, S]`, `out` `[B, G]`, G the projected width), in the order of `j`.
    pub fn add_weighted_values(&self, weights: &[f32], out: &mut [f32]) {
        let g = out.len() / self.rows().max(1);
        for (b, o) in out.chunks_exact_mut(g.max(1)).enumerate() {
            let (n, len) = (self.block[b], self.lengths[b]);
            let at = self.values_at[n] * g;
            let a = &weights[b * self.steps..][..len];
            kernels::add_weighted_rows(o, a, &self.values[at..][..len * g]);
        }
    }

    /// Rows B.
    pub fn rows(&self) -> usize {
        self.lengths.len()
    }

    /// Keeps rows `keep[i]`, in that order (rows may repeat, as for beams of one source),
    /// without copying keys and without allocating once the spare buffers have grown.
    pub fn select(&mut self, keep: &[usize]) -> crate::Result<()> {
        if let Some(&bad) = keep.iter().find(|&&r| r >= self.rows()) {
            return Err(crate::Error::arg(
                "Memory.select",
                "keep",
                format!("rows < {}", self.rows()),
                bad,
            ));
        }
        let (blocks, lens) = &mut self.spare;
        blocks.clear();
        lens.clear();
        blocks.extend(keep.iter().map(|&r| self.block[r]));
        lens.extend(keep.iter().map(|&r| self.lengths[r]));
        std::mem::swap(&mut self.block, blocks);
        std::mem::swap(&mut self.lengths, lens);
        Ok(())
    }

    /// Row `b`'s keys `[S, K]`.
    fn keys_of(&self, b: usize) -> &[f32] {
        let sk = self.steps * self.key_dim;
        &self.keys[self.block[b] * sk..][..sk]
    }

    /// Offset of row `b`'s block in a `[N, S, w]` buffer.
    fn at(&self, b: usize, w: usize) -> usize {
        self.block[b] * self.steps * w
    }

    /// The keys that score against the query: `proj` when there is one, else `keys`.
    fn scored(&self) -> (&[f32], usize) {
        if self.proj_dim > 0 {
            (&self.proj, self.proj_dim)
        } else {
            (&self.keys, self.key_dim)
        }
    }
}

/// Gradients flowing into the memory, same layout as [`Memory`].
#[derive(Clone, Debug)]
pub struct MemoryGrad {
    /// ∂L/∂h `[B, S, K]`.
    pub keys: Vec<f32>,
    /// ∂L/∂(W_key h).
    pub proj: Vec<f32>,
}

impl MemoryGrad {
    /// Zeros shaped like `mem`.
    pub fn zeros(mem: &Memory) -> Self {
        MemoryGrad {
            keys: vec![0.0; mem.keys.len()],
            proj: vec![0.0; mem.proj.len()],
        }
    }
}

/// Bahdanau's additive attention (`W_query` with bias, `W_key` and `v` without).
#[derive(Clone, Debug)]
pub struct Bahdanau {
    /// `W_query`: (A, Q).
    pub w_query: Linear,
    /// `W_key`: (A, K), no bias.
    pub w_key: Linear,
    /// `v`: (1, A), no bias.
    pub v: Linear,
}

/// Luong's attention with the combine layer `W_combine` (no bias); `W_key` for "general".
#[derive(Clone, Debug)]
pub struct Luong {
    /// `W_key`: (K, K), no bias; `None` for dot.
    pub w_key: Option<Linear>,
    /// `W_combine`: (H, K + H), no bias.
    pub w_combine: Linear,
}

/// One step's attention buffers: results, and what backward needs. Reused across decoding
/// steps (sized on first use); a training step keeps its own in its cache.
#[derive(Clone, Debug, Default)]
pub struct AttnWork {
    /// The query `[B, Q]` (bahdanau: the previous top state; luong: the new one).
    pub query: Vec<f32>,
    /// Context `c`, `[B, K]`.
    pub context: Vec<f32>,
    /// Weights `a`, `[B, S]` (zero past each length).
    pub weights: Vec<f32>,
    /// Bahdanau `W_query q` `[B, A]`.
    wq: Vec<f32>,
    /// Bahdanau `t` `[B, S, A]` (training only).
    t: Vec<f32>,
    /// Luong `cat(c, s'_top)` `[B, K + Hd]`.
    combine_in: Vec<f32>,
    /// Luong `feed' = tanh(W_combine ·)` `[B, Hd]`.
    pub feed_out: Vec<f32>,
}

/// Sets `v` to `n` zeros, reusing its allocation.
pub(crate) fn zeroed(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    v.clear();
    v.resize(n, 0.0);
    v
}

/// Sets `out` to the row-wise concatenation of blocks: rows of width `w` from each `(p, w)`.
pub(crate) fn cat_rows_into(out: &mut Vec<f32>, parts: &[(&[f32], usize)], rows: usize) {
    out.clear();
    for r in 0..rows {
        for (p, w) in parts {
            out.extend_from_slice(&p[r * w..][..*w]);
        }
    }
}

/// Rows of a flat buffer as a 2-D tensor.
pub(crate) fn rows_tensor(data: Vec<f32>, rows: usize) -> Result<Tensor> {
    let cols = data.len().checked_div(rows).unwrap_or(0);
    Tensor::from_vec(&[rows, cols], data)
}

/// (3)–(4): masked softmax of `scores` `[B, S]` in place, then the context into `ctx` `[B, K]`.
fn softmax_and_context(mem: &Memory, scores: &mut [f32], ctx: &mut Vec<f32>) {
    let (s, k) = (mem.steps, mem.key_dim);
    let ctx = zeroed(ctx, mem.rows() * k);
    for (b, &len) in mem.lengths.iter().enumerate() {
        let row = &mut scores[b * s..][..s];
        if len > 0 {
            let max = row[..len].iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0f32;
            for x in &mut row[..len] {
                *x = (*x - max).exp();
                sum += *x;
            }
            for x in &mut row[..len] {
                *x /= sum;
            }
        }
        row[len..].fill(0.0);
        let c = &mut ctx[b * k..][..k];
        kernels::add_weighted_rows(c, &row[..len], &mem.keys_of(b)[..len * k]);
    }
}

/// Backward of (4) and (3): adds `a_j dc` into ∂keys and returns ∂s `[B, S]`.
fn softmax_and_context_backward(
    mem: &Memory,
    weights: &[f32],
    dctx: &[f32],
    dkeys: &mut [f32],
) -> Vec<f32> {
    let (s, k) = (mem.steps, mem.key_dim);
    let mut ds = vec![0.0f32; mem.rows() * s];
    for (b, &len) in mem.lengths.iter().enumerate() {
        let dc = &dctx[b * k..][..k];
        let a = &weights[b * s..][..s];
        let d = &mut ds[b * s..][..s];
        let (keys, at) = (mem.keys_of(b), mem.at(b, k));
        for j in 0..len {
            let h = &keys[j * k..][..k];
            d[j] = h.iter().zip(dc).map(|(x, y)| x * y).sum();
            for (g, &y) in dkeys[at + j * k..][..k].iter_mut().zip(dc) {
                *g += a[j] * y;
            }
        }
        let dot: f32 = (0..len).map(|j| a[j] * d[j]).sum();
        for j in 0..len {
            d[j] = a[j] * (d[j] - dot);
        }
    }
    ds
}

impl Bahdanau {
    /// `query_dim` Q (decoder hidden), `key_dim` K (encoder output), `attn_dim` A.
    pub fn new(
        query_dim: usize,
        key_dim: usize,
        attn_dim: usize,
        rng: &mut impl Init,
    ) -> Result<Self> {
        let mut a = Bahdanau {
            w_query: Linear::new(query_dim, attn_dim, true, rng),
            w_key: Linear::new(key_dim, attn_dim, false, rng),
            v: Linear::new(attn_dim, 1, false, rng),
        };
        a.w_query.prefix_names("W_query.");
        a.w_key.prefix_names("W_key.");
        a.v.prefix_names("v.");
        Ok(a)
    }

    /// Steps (1)–(4) for the queries in `w.query` `[B, Q]`; `w_query`: `W_query` packed by
    /// [`Linear::pack`], or `None` to pack it for this call. Keeps `t` when `train`.
    fn attend(
        &self,
        mem: &Memory,
        w_query: Option<&PackedB>,
        w: &mut AttnWork,
        train: bool,
    ) -> Result<()> {
        let (bsz, s, a_dim) = (mem.rows(), mem.steps, mem.proj_dim);
        let wq = zeroed(&mut w.wq, bsz * a_dim); // (B, A)
        self.w_query.forward_rows_with(w_query, &w.query, bsz, wq)?;
        let v = self.v.weight.value.data();
        // Training keeps every row's `t`; decoding reuses one row's worth.
        let t = zeroed(&mut w.t, if train { bsz * s } else { s } * a_dim);
        let scores = zeroed(&mut w.weights, bsz * s);
        for b in 0..bsz {
            let wq_b = &wq[b * a_dim..][..a_dim];
            let (at, len) = (mem.at(b, a_dim), mem.lengths[b]);
            let t_b = &mut t[if train { b * s * a_dim } else { 0 }..][..len * a_dim];
            // (1), vectorised over the row's keys; (2) below in the order of `a`, so the
            // bits are those of one scalar loop.
            kernels::tanh_sum_rows(t_b, wq_b, &mem.proj[at..][..len * a_dim]);
            for (j, tj) in t_b.chunks_exact(a_dim).enumerate() {
                let mut score = 0.0f32;
                for (&ti, &vi) in tj.iter().zip(v) {
                    score += vi * ti; // (2)
                }
                scores[b * s + j] = score;
            }
        }
        softmax_and_context(mem, &mut w.weights, &mut w.context);
        Ok(())
    }

    /// Backward of [`Bahdanau::attend`]: adds into parameter and memory gradients and returns
    /// ∂L/∂q `[B, Q]`.
    fn backward(
        &mut self,
        mem: &Memory,
        w: &AttnWork,
        dctx: &[f32],
        dmem: &mut MemoryGrad,
    ) -> Result<Vec<f32>> {
        let (bsz, s, a_dim) = (mem.rows(), mem.steps, mem.proj_dim);
        let ds = softmax_and_context_backward(mem, &w.weights, dctx, &mut dmem.keys);
        let v = self.v.weight.value.data().to_vec();
        let mut dwq = vec![0.0f32; bsz * a_dim];
        let mut dv = vec![0.0f32; a_dim];
        for b in 0..bsz {
            let at = mem.at(b, a_dim);
            for j in 0..mem.lengths[b] {
                let idx = (b * s + j) * a_dim;
                let d = ds[b * s + j];
                let tj = &w.t[idx..][..a_dim];
                for i in 0..a_dim {
                    dv[i] += d * tj[i]; // (2)
                    let dpre = d * v[i] * (1.0 - tj[i] * tj[i]); // (1)
                    dwq[b * a_dim + i] += dpre;
                    dmem.proj[at + j * a_dim + i] += dpre;
                }
            }
        }
        for (g, d) in self.v.weight.grad.data_mut().iter_mut().zip(&dv) {
            *g += d;
        }
        let dq = self
            .w_query
            .backward(&rows_tensor(w.query.clone(), bsz)?, &rows_tensor(dwq, bsz)?)?;
        Ok(dq.into_vec())
    }
}

impl Luong {
    /// Decoder hidden size `dim` (= key size); `general` adds `W_key`.
    pub fn new(dim: usize, general: bool, rng: &mut impl Init) -> Result<Self> {
        let mut w_key = if general {
            Some(Linear::new(dim, dim, false, rng))
        } else {
            None
        };
        if let Some(w) = &mut w_key {
            w.prefix_names("W_key.");
        }
        let mut w_combine = Linear::new(2 * dim, dim, false, rng);
        w_combine.prefix_names("W_combine.");
        Ok(Luong { w_key, w_combine })
    }

    /// Steps (1)–(4) for the queries in `w.query` `[B, K]`.
    fn attend(&self, mem: &Memory, w: &mut AttnWork) {
        let (s, (keys, k)) = (mem.steps, mem.scored());
        let scores = zeroed(&mut w.weights, mem.rows() * s);
        for (b, &len) in mem.lengths.iter().enumerate() {
            let qb = &w.query[b * k..][..k];
            let at = mem.at(b, k);
            for j in 0..len {
                scores[b * s + j] = keys[at + j * k..][..k]
                    .iter()
                    .zip(qb)
                    .map(|(x, y)| x * y)
                    .sum();
            }
        }
        softmax_and_context(mem, &mut w.weights, &mut w.context);
    }

    /// Backward of [`Luong::attend`]: adds into memory gradients and returns ∂L/∂q.
    fn backward(
        &self,
        mem: &Memory,
        w: &AttnWork,
        dctx: &[f32],
        dmem: &mut MemoryGrad,
    ) -> Vec<f32> {
        let ds = softmax_and_context_backward(mem, &w.weights, dctx, &mut dmem.keys);
        let (s, (keys, k)) = (mem.steps, mem.scored());
        let q = &w.query;
        let mut dq = vec![0.0f32; q.len()];
        let dscored = if mem.proj_dim > 0 {
            &mut dmem.proj
        } else {
            &mut dmem.keys
        };
        for (b, &len) in mem.lengths.iter().enumerate() {
            let at = mem.at(b, k);
            for j in 0..len {
                let d = ds[b * s + j];
                let idx = at + j * k;
                for i in 0..k {
                    dq[b * k + i] += d * keys[idx + i];
                    dscored[idx + i] += d * q[b * k + i];
                }
            }
        }
        dq
    }
}

/// The decoder's attention module. Every attention kind's part of a decoder step is here, in
/// one place per phase, so the decoder never matches on the kind.
///
/// A step (e = embedded previous token, s = recurrent state, top = its top layer):
/// ```text
///   x = rnn_input(e, s_top, feed)        none: e   bahdanau: cat(e, attend(s_top))   luong: cat(e, feed)
///   s' = RNN(x, s)
///   z = output_input(s'_top, e)          none: s'_top   bahdanau: cat(s'_top, c, e)
///                                        luong: feed' = tanh(W_combine cat(attend(s'_top), s'_top))
/// ```
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // one per model
pub enum Attention {
    /// No attention.
    None,
    /// Additive.
    Bahdanau(Bahdanau),
    /// Dot or general, with the combine layer.
    Luong(Luong),
}

/// Gradients that [`Attention::output_backward`] passes on.
#[derive(Clone, Debug, Default)]
pub struct OutputGrad {
    /// ∂L/∂s'_top `[B, Hd]`.
    pub top: Vec<f32>,
    /// ∂L/∂e `[B, E]` (bahdanau), else empty.
    pub emb: Vec<f32>,
    /// ∂L/∂c `[B, K]` (bahdanau, whose attention ran before the recurrence), else empty.
    pub context: Vec<f32>,
}

impl Attention {
    /// The attention of `kind` for a decoder of hidden size `hd` (= key size K).
    pub fn new(
        kind: AttentionKind,
        hd: usize,
        attn_dim: usize,
        rng: &mut impl Init,
    ) -> Result<Self> {
        let mut a = match kind {
            AttentionKind::None => Attention::None,
            AttentionKind::Bahdanau => Attention::Bahdanau(Bahdanau::new(hd, hd, attn_dim, rng)?),
            AttentionKind::LuongDot | AttentionKind::LuongGeneral => {
                Attention::Luong(Luong::new(hd, kind == AttentionKind::LuongGeneral, rng)?)
            }
        };
        a.prefix_names("decoder.attention.");
        Ok(a)
    }

    /// Width of the recurrence's input for embeddings of width `e` and hidden size `hd`.
    pub fn rnn_input_size(&self, e: usize, hd: usize) -> usize {
        match self {
            Attention::None => e,
            Attention::Bahdanau(_) | Attention::Luong(_) => e + hd,
        }
    }

    /// Width of the output layer's input.
    pub fn output_input_size(&self, e: usize, hd: usize) -> usize {
        match self {
            Attention::None | Attention::Luong(_) => hd,
            Attention::Bahdanau(_) => hd + hd + e,
        }
    }

    /// Whether the step feeds its attentional vector to the next (Luong's input feeding).
    pub fn feeds(&self) -> bool {
        matches!(self, Attention::Luong(_))
    }

    /// Whether the recurrence reads the embedding alone (so it can be folded into its weights).
    pub fn reads_embedding_only(&self) -> bool {
        matches!(self, Attention::None)
    }

    /// The weight a step multiplies by, packed: `W_query` (bahdanau) or `W_combine` (luong).
    pub fn pack(&self) -> Option<PackedB> {
        match self {
            Attention::None => None,
            Attention::Bahdanau(a) => Some(a.w_query.pack()),
            Attention::Luong(l) => Some(l.w_combine.pack()),
        }
    }

    /// Before the recurrence: its input `x` `[B, rnn_input_size]` from the embedding `e`
    /// `[B, E]`, the previous top state `top` `[B, Hd]` and input-feeding vector `feed`.
    /// `packed`: from [`Attention::pack`]. Keeps what backward needs in `w` when `train`.
    #[allow(clippy::too_many_arguments)]
    pub fn rnn_input(
        &self,
        packed: Option<&PackedB>,
        (e, emb): (&[f32], usize),
        top: &[f32],
        feed: &[f32],
        mem: &Memory,
        w: &mut AttnWork,
        x: &mut Vec<f32>,
        train: bool,
    ) -> Result<()> {
        let b = mem.rows();
        match self {
            Attention::None => cat_rows_into(x, &[(e, emb)], b),
            Attention::Bahdanau(_) => {
                self.attend_before(packed, top, mem, w, train)?;
                cat_rows_into(x, &[(e, emb), (&w.context, mem.key_dim)], b); // (B, E+K)
            }
            Attention::Luong(_) => {
                let hd = feed.len().checked_div(b).unwrap_or(0);
                cat_rows_into(x, &[(e, emb), (feed, hd)], b); // (B, E+Hd)
            }
        }
        Ok(())
    }

    /// Bahdanau's attention before the recurrence, without building the recurrence's input:
    /// the weights and context of the previous top state `top` `[B, Hd]` into `w` (for a
    /// decoder that adds the context's gates itself, [`Memory::add_weighted_values`]). Does
    /// nothing for the other kinds.
    pub fn attend_before(
        &self,
        packed: Option<&PackedB>,
        top: &[f32],
        mem: &Memory,
        w: &mut AttnWork,
        train: bool,
    ) -> Result<()> {
        if let Attention::Bahdanau(a) = self {
            w.query.clear();
            w.query.extend_from_slice(top);
            a.attend(mem, packed, w, train)?;
        }
        Ok(())
    }

    /// After the recurrence: the output layer's input `z` from the new top state `top`
    /// `[B, Hd]` and the embedding; Luong attends here and also writes `feed'` into
    /// `w.feed_out`. Returns the step's attention weights, empty without attention.
    pub fn output_input<'w>(
        &self,
        packed: Option<&PackedB>,
        top: &[f32],
        (e, emb): (&[f32], usize),
        mem: &Memory,
        w: &'w mut AttnWork,
        z: &mut Vec<f32>,
    ) -> Result<&'w [f32]> {
        let b = mem.rows();
        let hd = top.len().checked_div(b).unwrap_or(0);
        match self {
            Attention::None => {
                z.clear();
                z.extend_from_slice(top);
                return Ok(&[]);
            }
            Attention::Bahdanau(_) => {
                cat_rows_into(z, &[(top, hd), (&w.context, mem.key_dim), (e, emb)], b)
            }
            Attention::Luong(l) => {
                w.query.clear();
                w.query.extend_from_slice(top);
                l.attend(mem, w);
                cat_rows_into(
                    &mut w.combine_in,
                    &[(&w.context, mem.key_dim), (top, hd)],
                    b,
                ); // (B, K+Hd)
                let f = zeroed(&mut w.feed_out, b * hd); // (B, Hd)
                l.w_combine.forward_rows_with(packed, &w.combine_in, b, f)?;
                f.iter_mut().for_each(|v| *v = tanh(*v));
                z.clear();
                z.extend_from_slice(f);
            }
        }
        Ok(&w.weights)
    }

    /// Backward of [`Attention::output_input`]: ∂L/∂z `dz` and, for Luong, ∂L/∂feed' from the
    /// next step `dfeed`; adds into parameter and memory gradients.
    pub fn output_backward(
        &mut self,
        w: &AttnWork,
        mem: &Memory,
        (hd, emb): (usize, usize),
        dz: Vec<f32>,
        dfeed: &[f32],
        dmem: &mut MemoryGrad,
    ) -> Result<OutputGrad> {
        let (b, k) = (mem.rows(), mem.key_dim);
        Ok(match self {
            Attention::None => OutputGrad {
                top: dz,
                ..Default::default()
            },
            Attention::Bahdanau(_) => {
                let mut parts = split_rows(&dz, &[hd, k, emb], b);
                OutputGrad {
                    emb: std::mem::take(&mut parts[2]),
                    context: std::mem::take(&mut parts[1]),
                    top: std::mem::take(&mut parts[0]),
                }
            }
            Attention::Luong(l) => {
                // feed' = tanh(W_combine u): its gradient comes from the logits and the next step.
                let mut dpre = dz;
                add_into(&mut dpre, dfeed);
                dpre.iter_mut()
                    .zip(&w.feed_out)
                    .for_each(|(d, f)| *d *= 1.0 - f * f);
                let du = l
                    .w_combine
                    .backward(
                        &rows_tensor(w.combine_in.clone(), b)?,
                        &rows_tensor(dpre, b)?,
                    )?
                    .into_vec();
                let mut parts = split_rows(&du, &[k, hd], b);
                let dq = l.backward(mem, w, &parts[0], dmem);
                let mut top = std::mem::take(&mut parts[1]);
                add_into(&mut top, &dq);
                OutputGrad {
                    top,
                    ..Default::default()
                }
            }
        })
    }

    /// Backward of [`Attention::rnn_input`]: ∂L/∂x `dx` and the [`OutputGrad`] of the same step;
    /// adds into parameter and memory gradients. Returns ∂L/∂e `[B, E]`, ∂L/∂top (the previous
    /// top state; empty when zero) and ∂L/∂feed (Luong; else empty).
    #[allow(clippy::type_complexity)]
    pub fn rnn_input_backward(
        &mut self,
        w: &AttnWork,
        mem: &Memory,
        (hd, emb): (usize, usize),
        dx: Vec<f32>,
        after: OutputGrad,
        dmem: &mut MemoryGrad,
    ) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        let (b, k) = (mem.rows(), mem.key_dim);
        Ok(match self {
            Attention::None => (dx, Vec::new(), Vec::new()),
            Attention::Bahdanau(a) => {
                let parts = split_rows(&dx, &[emb, k], b);
                let (mut de, mut dctx) = (after.emb, after.context);
                add_into(&mut de, &parts[0]);
                add_into(&mut dctx, &parts[1]);
                let dq = a.backward(mem, w, &dctx, dmem)?;
                (de, dq, Vec::new())
            }
            Attention::Luong(_) => {
                let mut parts = split_rows(&dx, &[emb, hd], b);
                let de = std::mem::take(&mut parts[0]);
                (de, Vec::new(), std::mem::take(&mut parts[1]))
            }
        })
    }

    /// Calls `f` on every parameter, in [`Module::params`] order, without allocating.
    pub fn for_each_param(&self, f: &mut impl FnMut(&Param)) {
        let mut lin = |l: &Linear| {
            f(&l.weight);
            l.bias.iter().for_each(&mut *f);
        };
        match self {
            Attention::None => {}
            Attention::Bahdanau(a) => {
                lin(&a.w_query);
                lin(&a.w_key);
                lin(&a.v);
            }
            Attention::Luong(l) => {
                l.w_key.iter().for_each(&mut lin);
                lin(&l.w_combine);
            }
        }
    }

    /// The step-independent projection `W_key h` (`keys` `[B·S, K]`), or empty.
    pub fn project_keys(&self, keys: &[f32], rows: usize) -> Result<(Vec<f32>, usize)> {
        let w = match self {
            Attention::Bahdanau(a) => &a.w_key,
            Attention::Luong(Luong { w_key: Some(w), .. }) => w,
            _ => return Ok((Vec::new(), 0)),
        };
        let dim = w.out_features();
        let mut out = vec![0.0f32; rows * dim]; // (B·S, A or K)
        w.forward_rows(keys, rows, &mut out)?;
        Ok((out, dim))
    }

    /// Backward of [`Attention::project_keys`]: ∂proj into `W_key`'s gradient and ∂keys.
    pub fn project_keys_backward(
        &mut self,
        keys: &[f32],
        rows: usize,
        dmem: &mut MemoryGrad,
    ) -> Result<()> {
        let w = match self {
            Attention::Bahdanau(a) => &mut a.w_key,
            Attention::Luong(Luong { w_key: Some(w), .. }) => w,
            _ => return Ok(()),
        };
        let dkeys = w.backward(
            &rows_tensor(keys.to_vec(), rows)?,
            &rows_tensor(std::mem::take(&mut dmem.proj), rows)?,
        )?;
        for (g, d) in dmem.keys.iter_mut().zip(dkeys.data()) {
            *g += d;
        }
        Ok(())
    }
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

/// `dst += src`, elementwise.
pub(crate) fn add_into(dst: &mut [f32], src: &[f32]) {
    dst.iter_mut().zip(src).for_each(|(a, b)| *a += b);
}

impl Module for Attention {
    fn params(&self) -> Vec<&Param> {
        match self {
            Attention::None => vec![],
            Attention::Bahdanau(a) => [a.w_query.params(), a.w_key.params(), a.v.params()].concat(),
            Attention::Luong(l) => {
                let mut v = l.w_key.as_ref().map(|w| w.params()).unwrap_or_default();
                v.extend(l.w_combine.params());
                v
            }
        }
    }
    fn params_mut(&mut self) -> Vec<&mut Param> {
        match self {
            Attention::None => vec![],
            Attention::Bahdanau(a) => {
                let mut v = a.w_query.params_mut();
                v.extend(a.w_key.params_mut());
                v.extend(a.v.params_mut());
                v
            }
            Attention::Luong(l) => {
                let mut v = l.w_key.as_mut().map(|w| w.params_mut()).unwrap_or_default();
                v.extend(l.w_combine.params_mut());
                v
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::PackedB;

    /// Keys projected before or after rows are gathered (beams expanded, a source dropped) give
    /// every row the same weighted sum of its own source's projected keys.
    #[test]
    fn projected_values_follow_the_rows_whatever_the_selection() {
        let (s, k, g) = (3, 4, 5);
        let keys: Vec<f32> = (0..3 * s * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let w: Vec<f32> = (0..g * k).map(|i| (i as f32 * 0.11).cos()).collect();
        let w = PackedB::new(&w, Trans::T, k, g);
        let fresh = || Memory::new(keys.clone(), Vec::new(), vec![3, 1, 2], s, k, 0);
        let keep = [2, 2, 0, 2];
        let mut before = fresh();
        before.project_values(&w);
        before.select(&keep).unwrap();
        let mut after = fresh();
        after.select(&keep).unwrap();
        after.project_values(&w);
        let weights: Vec<f32> = (0..keep.len() * s).map(|i| 0.1 + i as f32 * 0.05).collect();
        let sum = |m: &Memory| {
            let mut out = vec![0.0f32; keep.len() * g];
            m.add_weighted_values(&weights, &mut out);
            out
        };
        assert_eq!(sum(&before), sum(&after));
        // Row 2 is source 0 (3 keys): its sum by hand.
        let mut want = vec![0.0f32; g];
        for j in 0..3 {
            let mut v = vec![0.0f32; g];
            crate::gemm::matmul_packed(&mut v, &keys[j * k..][..k], Trans::N, &w, 1, false, 1);
            want.iter_mut()
                .zip(&v)
                .for_each(|(o, &x)| *o += weights[2 * s + j] * x);
        }
        assert_eq!(&sum(&after)[2 * g..3 * g], &want[..]);
    }
}
