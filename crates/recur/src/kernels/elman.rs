//! Elman RNN cell kernel (PyTorch's `nn.RNN`), tanh or relu.
//!
//! Notation, per row: `a = x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh` (H, by the caller);
//! (1) `h' = tanh(a)` or `relu(a)`. Forward overwrites `a` with `h'`, which is all backward needs.

use super::{simd, tanh};

/// The nonlinearity of an Elman RNN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nonlinearity {
    /// tanh (PyTorch's default).
    Tanh,
    /// max(0, x).
    Relu,
}

simd! {
/// Forward, step (1): `gates` (rows × H) pre-activations in, `h'` out; `h` (rows × H) gets `h'`.
pub fn forward, forward_on(rows: usize, hidden: usize, act: Nonlinearity, gates: &mut [f32], h: &mut [f32]) {
    let n = rows * hidden;
    for (a, h) in gates[..n].iter_mut().zip(&mut h[..n]) {
        *a = match act {
            Nonlinearity::Tanh => tanh(*a),
            Nonlinearity::Relu => a.max(0.0),
        };
        *h = *a;
    }
}
}

simd! {
/// Backward through (1): `out` (rows × H) the saved `h'`, `dh` ∂L/∂h', `dgates` ∂L/∂a out.
pub fn backward, backward_on(
    rows: usize,
    hidden: usize,
    act: Nonlinearity,
    out: &[f32],
    dh: &[f32],
    dgates: &mut [f32],
) {
    let n = rows * hidden;
    for ((d, &y), &g) in dgates[..n].iter_mut().zip(&out[..n]).zip(&dh[..n]) {
        *d = match act {
            Nonlinearity::Tanh => g * (1.0 - y * y),
            Nonlinearity::Relu => {
                if y > 0.0 {
                    g
                } else {
                    0.0
                }
            }
        };
    }
}
}
