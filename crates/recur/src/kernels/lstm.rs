//! LSTM cell kernel, PyTorch gate order i, f, g, o.
//!
//! Notation, per row (H = hidden size, all products element-wise):
//! ```text
//!   a = [a_i a_f a_g a_o]  = x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh          (4H, computed by the caller)
//!   (1) i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
//!   (2) c' = f c + i g
//!   (3) h' = o tanh(c')
//! ```
//! Forward overwrites `a` with the activations `[i f g o]` and stores `tanh(c')`; backward reads
//! them back with the previous cell state `c`.

use super::{sigmoid, simd, tanh};

simd! {
/// Forward of `rows` rows, steps (1)–(3).
///
/// * `gates` (rows × 4H): pre-activations in, activations `[i f g o]` out.
/// * `c` (rows × H): previous cell state in, new cell state `c'` out.
/// * `h` (rows × H): new hidden state `h'` out.
/// * `tanh_c` (rows × H): `tanh(c')` out, for backward (a scratch row when not training).
pub fn forward, forward_on(
    rows: usize,
    hidden: usize,
    gates: &mut [f32],
    c: &mut [f32],
    h: &mut [f32],
    tanh_c: &mut [f32],
) {
    let g4 = 4 * hidden;
    for r in 0..rows {
        let a = &mut gates[r * g4..(r + 1) * g4];
        let (ai, rest) = a.split_at_mut(hidden);
        let (af, rest) = rest.split_at_mut(hidden);
        let (ag, ao) = rest.split_at_mut(hidden);
        let c = &mut c[r * hidden..(r + 1) * hidden];
        let h = &mut h[r * hidden..(r + 1) * hidden];
        let tc = &mut tanh_c[r * hidden..(r + 1) * hidden];
        row(ai, af, ag, ao, c, h, tc);
    }
}
}

/// Steps (1)–(3) on one row. Every slice is `hidden` long, so the loops carry no bounds checks,
/// and each loop touches at most 4 arrays: with all 7 in one loop LLVM gave up vectorizing it
/// (40 ns per unit, against 1 ns for the backward kernel). Same arithmetic, same bits.
#[inline(always)]
fn row(
    ai: &mut [f32],
    af: &mut [f32],
    ag: &mut [f32],
    ao: &mut [f32],
    c: &mut [f32],
    h: &mut [f32],
    tc: &mut [f32],
) {
    let n = c.len();
    let (ai, af, ag, ao, h, tc) = (
        &mut ai[..n],
        &mut af[..n],
        &mut ag[..n],
        &mut ao[..n],
        &mut h[..n],
        &mut tc[..n],
    );
    // (1)
    for j in 0..n {
        ai[j] = sigmoid(ai[j]);
        af[j] = sigmoid(af[j]);
        ag[j] = tanh(ag[j]);
        ao[j] = sigmoid(ao[j]);
    }
    // (2)
    for j in 0..n {
        c[j] = af[j] * c[j] + ai[j] * ag[j];
    }
    // (3)
    for j in 0..n {
        tc[j] = tanh(c[j]);
        h[j] = ao[j] * tc[j];
    }
}

simd! {
/// Backward of `rows` rows through (3)–(1).
///
/// * `act` (rows × 4H): `[i f g o]` saved by forward.
/// * `c_prev`, `tanh_c` (rows × H): the state before the step and `tanh(c')`.
/// * `dh` (rows × H): ∂L/∂h'.
/// * `dc` (rows × H): ∂L/∂c' in, ∂L/∂c (previous state) out.
/// * `dgates` (rows × 4H): ∂L/∂a out.
pub fn backward, backward_on(
    rows: usize,
    hidden: usize,
    act: &[f32],
    c_prev: &[f32],
    tanh_c: &[f32],
    dh: &[f32],
    dc: &mut [f32],
    dgates: &mut [f32],
) {
    let g4 = 4 * hidden;
    for r in 0..rows {
        let a = &act[r * g4..(r + 1) * g4];
        let da = &mut dgates[r * g4..(r + 1) * g4];
        let row = r * hidden..(r + 1) * hidden;
        let (cp, tc, dh, dc) = (
            &c_prev[row.clone()],
            &tanh_c[row.clone()],
            &dh[row.clone()],
            &mut dc[row],
        );
        for j in 0..hidden {
            let (i, f, g, o) = (a[j], a[hidden + j], a[2 * hidden + j], a[3 * hidden + j]);
            let t = tc[j];
            // (3) h' = o tanh(c')
            let d_o = dh[j] * t;
            let dcn = dc[j] + dh[j] * o * (1.0 - t * t);
            // (2) c' = f c + i g
            let di = dcn * g;
            let df = dcn * cp[j];
            let dg = dcn * i;
            dc[j] = dcn * f;
            // (1) through the nonlinearities
            da[j] = di * i * (1.0 - i);
            da[hidden + j] = df * f * (1.0 - f);
            da[2 * hidden + j] = dg * (1.0 - g * g);
            da[3 * hidden + j] = d_o * o * (1.0 - o);
        }
    }
}
}
