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

use crate::error::Result;
use crate::gemm::PackedB;
use crate::kernels::tanh;
use crate::module::{Module, Param, Rng64};
use crate::nn::linear::Linear;
use crate::tensor::Tensor;

/// The encoder's outputs arranged for attention, batch-major.
#[derive(Clone, Debug)]
pub struct Memory {
    /// `h`, `[B, S, K]`.
    pub keys: Vec<f32>,
    /// `W_key h` (bahdanau `[B, S, A]`, luong_general `[B, S, K]`), or empty.
    pub proj: Vec<f32>,
    /// Source lengths `[B]`.
    pub lengths: Vec<usize>,
    /// S.
    pub steps: usize,
    /// K.
    pub key_dim: usize,
    /// Width of `proj` (0 when empty).
    pub proj_dim: usize,
}

impl Memory {
    /// Rows B.
    pub fn rows(&self) -> usize {
        self.lengths.len()
    }

    /// The rows `keep[i]`, in that order (rows may repeat, as for beams of one source).
    pub fn select(&self, keep: &[usize]) -> Memory {
        let (sk, sp) = (self.steps * self.key_dim, self.steps * self.proj_dim);
        let mut keys = Vec::with_capacity(keep.len() * sk);
        let mut proj = Vec::with_capacity(keep.len() * sp);
        for &r in keep {
            keys.extend_from_slice(&self.keys[r * sk..][..sk]);
            proj.extend_from_slice(&self.proj[r * sp..][..sp]);
        }
        Memory {
            keys,
            proj,
            lengths: keep.iter().map(|&r| self.lengths[r]).collect(),
            steps: self.steps,
            key_dim: self.key_dim,
            proj_dim: self.proj_dim,
        }
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

/// One attention step's result and what its backward needs.
#[derive(Clone, Debug)]
pub struct Attended {
    /// Context `c`, `[B, K]`.
    pub context: Vec<f32>,
    /// Weights `a`, `[B, S]` (zero past each length).
    pub weights: Vec<f32>,
    /// Bahdanau: `t` `[B, S, A]`; empty for Luong.
    t: Vec<f32>,
}

/// Rows of a flat buffer as a 2-D tensor.
pub(crate) fn rows_tensor(data: Vec<f32>, rows: usize) -> Tensor {
    let cols = data.len().checked_div(rows).unwrap_or(0);
    Tensor::from_vec(&[rows, cols], data).expect("rows divide the buffer")
}

/// (3)–(4): masked softmax of `scores` `[B, S]` in place, then the context.
fn softmax_and_context(mem: &Memory, scores: &mut [f32]) -> Vec<f32> {
    let (s, k) = (mem.steps, mem.key_dim);
    let mut ctx = vec![0.0f32; mem.rows() * k];
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
        for (j, &a) in row[..len].iter().enumerate() {
            for (ci, hi) in c.iter_mut().zip(&mem.keys[(b * s + j) * k..][..k]) {
                *ci += a * hi;
            }
        }
    }
    ctx
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
        for j in 0..len {
            let h = &mem.keys[(b * s + j) * k..][..k];
            d[j] = h.iter().zip(dc).map(|(x, y)| x * y).sum();
            for (g, &y) in dkeys[(b * s + j) * k..][..k].iter_mut().zip(dc) {
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
    pub fn new(query_dim: usize, key_dim: usize, attn_dim: usize, rng: &mut Rng64) -> Result<Self> {
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

    /// Steps (1)–(4) for queries `q` `[B, Q]`; `w_query`: `W_query` packed by
    /// [`Linear::pack`] (decoding), or `None` to pack it for this call.
    pub fn attend(&self, q: &[f32], mem: &Memory, w_query: Option<&PackedB>) -> Result<Attended> {
        let (bsz, s, a_dim) = (mem.rows(), mem.steps, mem.proj_dim);
        let mut wq = vec![0.0f32; bsz * a_dim]; // (B, A)
        self.w_query.forward_rows_with(w_query, q, bsz, &mut wq)?;
        let v = self.v.weight.value.data();
        let mut t = vec![0.0f32; bsz * s * a_dim];
        let mut scores = vec![0.0f32; bsz * s];
        for b in 0..bsz {
            let wq_b = &wq[b * a_dim..][..a_dim];
            for j in 0..mem.lengths[b] {
                let idx = (b * s + j) * a_dim;
                let (tj, kp) = (&mut t[idx..][..a_dim], &mem.proj[idx..][..a_dim]);
                let mut score = 0.0f32;
                for ((ti, &x), (&y, &vi)) in tj.iter_mut().zip(wq_b).zip(kp.iter().zip(v)) {
                    *ti = tanh(x + y); // (1)
                    score += vi * *ti; // (2)
                }
                scores[b * s + j] = score;
            }
        }
        let context = softmax_and_context(mem, &mut scores);
        Ok(Attended {
            context,
            weights: scores,
            t,
        })
    }

    /// Backward of [`Bahdanau::attend`]: adds into parameter and memory gradients and returns
    /// ∂L/∂q `[B, Q]`.
    pub fn backward(
        &mut self,
        q: &[f32],
        mem: &Memory,
        att: &Attended,
        dctx: &[f32],
        dmem: &mut MemoryGrad,
    ) -> Result<Vec<f32>> {
        let (bsz, s, a_dim) = (mem.rows(), mem.steps, mem.proj_dim);
        let ds = softmax_and_context_backward(mem, &att.weights, dctx, &mut dmem.keys);
        let v = self.v.weight.value.data().to_vec();
        let mut dwq = vec![0.0f32; bsz * a_dim];
        let mut dv = vec![0.0f32; a_dim];
        for b in 0..bsz {
            for j in 0..mem.lengths[b] {
                let idx = (b * s + j) * a_dim;
                let d = ds[b * s + j];
                let tj = &att.t[idx..][..a_dim];
                for i in 0..a_dim {
                    dv[i] += d * tj[i]; // (2)
                    let dpre = d * v[i] * (1.0 - tj[i] * tj[i]); // (1)
                    dwq[b * a_dim + i] += dpre;
                    dmem.proj[idx + i] += dpre;
                }
            }
        }
        for (g, d) in self.v.weight.grad.data_mut().iter_mut().zip(&dv) {
            *g += d;
        }
        let dq = self
            .w_query
            .backward(&rows_tensor(q.to_vec(), bsz), &rows_tensor(dwq, bsz))?;
        Ok(dq.into_vec())
    }
}

impl Luong {
    /// Decoder hidden size `dim` (= key size); `general` adds `W_key`.
    pub fn new(dim: usize, general: bool, rng: &mut Rng64) -> Result<Self> {
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

    /// Steps (1)–(4) for queries `q` `[B, K]`.
    pub fn attend(&self, q: &[f32], mem: &Memory) -> Result<Attended> {
        let (s, (keys, k)) = (mem.steps, mem.scored());
        let mut scores = vec![0.0f32; mem.rows() * s];
        for (b, &len) in mem.lengths.iter().enumerate() {
            let qb = &q[b * k..][..k];
            for j in 0..len {
                scores[b * s + j] = keys[(b * s + j) * k..][..k]
                    .iter()
                    .zip(qb)
                    .map(|(x, y)| x * y)
                    .sum();
            }
        }
        let context = softmax_and_context(mem, &mut scores);
        Ok(Attended {
            context,
            weights: scores,
            t: Vec::new(),
        })
    }

    /// Backward of [`Luong::attend`]: adds into memory gradients and returns ∂L/∂q.
    pub fn backward(
        &self,
        q: &[f32],
        mem: &Memory,
        att: &Attended,
        dctx: &[f32],
        dmem: &mut MemoryGrad,
    ) -> Vec<f32> {
        let ds = softmax_and_context_backward(mem, &att.weights, dctx, &mut dmem.keys);
        let (s, (keys, k)) = (mem.steps, mem.scored());
        let mut dq = vec![0.0f32; q.len()];
        let dscored = if mem.proj_dim > 0 {
            &mut dmem.proj
        } else {
            &mut dmem.keys
        };
        for (b, &len) in mem.lengths.iter().enumerate() {
            for j in 0..len {
                let d = ds[b * s + j];
                let idx = (b * s + j) * k;
                for i in 0..k {
                    dq[b * k + i] += d * keys[idx + i];
                    dscored[idx + i] += d * q[b * k + i];
                }
            }
        }
        dq
    }
}

/// The decoder's attention module.
#[derive(Clone, Debug)]
pub enum Attention {
    /// No attention.
    None,
    /// Additive.
    Bahdanau(Bahdanau),
    /// Dot or general, with the combine layer.
    Luong(Luong),
}

impl Attention {
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
            &rows_tensor(keys.to_vec(), rows),
            &rows_tensor(std::mem::take(&mut dmem.proj), rows),
        )?;
        for (g, d) in dmem.keys.iter_mut().zip(dkeys.data()) {
            *g += d;
        }
        Ok(())
    }
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
