//! GRU cell kernel, PyTorch gate order r, z, n.
//!
//! Notation, per row (H = hidden size, element-wise products):
//! ```text
//!   x̂ = [x̂_r x̂_z x̂_n] = x·W_ihᵀ + b_ih      ĥ = [ĥ_r ĥ_z ĥ_n] = h·W_hhᵀ      (3H each, by the caller)
//!   (1) r = σ(x̂_r + ĥ_r + b_hr)    z = σ(x̂_z + ĥ_z + b_hz)
//!   (2) m = ĥ_n + b_hn              n = tanh(x̂_n + r m)
//!   (3) h' = (1 - z) n + z h
//! ```
//! `b_hn` stays inside the reset product, as in PyTorch. Forward overwrites `x̂` with `[r z n]`
//! and `ĥ_n` with `m`; backward reads them with the previous state `h`.

use super::{sigmoid, simd, tanh};

simd! {
/// Forward of `rows` rows, steps (1)–(3).
///
/// * `xg` (rows × 3H): `x̂` in, `[r z n]` out.
/// * `hg` (rows × 3H): `ĥ` in; its n-part becomes `m` (the r and z parts are left as they are).
/// * `b_hh` (3H): the recurrent bias, or `None`.
/// * `h` (rows × H): previous state in, `h'` out.
pub fn forward, forward_on(
    rows: usize,
    hidden: usize,
    xg: &mut [f32],
    hg: &mut [f32],
    b_hh: Option<&[f32]>,
    h: &mut [f32],
) {
    let g3 = 3 * hidden;
    for r in 0..rows {
        let (xr, rest) = xg[r * g3..(r + 1) * g3].split_at_mut(hidden);
        let (xz, xn) = rest.split_at_mut(hidden);
        let (hr, rest) = hg[r * g3..(r + 1) * g3].split_at_mut(hidden);
        let (hz, hn) = rest.split_at_mut(hidden);
        let h = &mut h[r * hidden..(r + 1) * hidden];
        match b_hh {
            Some(b) => {
                let (br, bz, bn) = (&b[..hidden], &b[hidden..2 * hidden], &b[2 * hidden..g3]);
                row(xr, xz, xn, hr, hz, hn, h, |j| (br[j], bz[j], bn[j]));
            }
            None => row(xr, xz, xn, hr, hz, hn, h, |_| (0.0, 0.0, 0.0)),
        }
    }
}
}

/// Steps (1)–(3) on one row; `bias(j)` gives unit j's `(b_hr, b_hz, b_hn)`. Every slice is
/// `hidden` long, so the loops carry no bounds checks, and each reads or writes at most 6 arrays,
/// few enough for LLVM to vectorize it without giving up on overlap checks.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn row(
    xr: &mut [f32],
    xz: &mut [f32],
    xn: &mut [f32],
    hr: &[f32],
    hz: &[f32],
    hn: &mut [f32],
    h: &mut [f32],
    bias: impl Fn(usize) -> (f32, f32, f32),
) {
    let n = h.len();
    let (xr, xz, xn, hr, hz, hn) = (
        &mut xr[..n],
        &mut xz[..n],
        &mut xn[..n],
        &hr[..n],
        &hz[..n],
        &mut hn[..n],
    );
    // (1) r and z, into x̂_r and x̂_z.
    for j in 0..n {
        let (br, bz, _) = bias(j);
        xr[j] = sigmoid(xr[j] + hr[j] + br);
        xz[j] = sigmoid(xz[j] + hz[j] + bz);
    }
    // (2) m (into ĥ_n) and n (into x̂_n); (3) h'.
    for j in 0..n {
        let m = hn[j] + bias(j).2;
        let nj = tanh(xn[j] + xr[j] * m);
        (hn[j], xn[j]) = (m, nj);
        h[j] = (1.0 - xz[j]) * nj + xz[j] * h[j];
    }
}

simd! {
/// Backward of `rows` rows through (3)–(1).
///
/// * `act` (rows × 3H): `[r z n]`; `hg` (rows × 3H): its n-part holds `m`.
/// * `h_prev` (rows × H): the state before the step.
/// * `dh` (rows × H): ∂L/∂h' in, the direct part `z ∂L/∂h'` of ∂L/∂h out (the caller adds
///   `dĥ · W_hh`).
/// * `dxg` (rows × 3H): ∂L/∂x̂ out; `dhg` (rows × 3H): ∂L/∂ĥ out.
pub fn backward, backward_on(
    rows: usize,
    hidden: usize,
    act: &[f32],
    hg: &[f32],
    h_prev: &[f32],
    dh: &mut [f32],
    dxg: &mut [f32],
    dhg: &mut [f32],
) {
    let g3 = 3 * hidden;
    for r in 0..rows {
        let a = &act[r * g3..(r + 1) * g3];
        let m = &hg[r * g3 + 2 * hidden..(r + 1) * g3];
        let dx = &mut dxg[r * g3..(r + 1) * g3];
        let dhh = &mut dhg[r * g3..(r + 1) * g3];
        let hp = &h_prev[r * hidden..(r + 1) * hidden];
        let dh = &mut dh[r * hidden..(r + 1) * hidden];
        for j in 0..hidden {
            let (rg, z, n) = (a[j], a[hidden + j], a[2 * hidden + j]);
            let d = dh[j];
            // (3) h' = (1 - z) n + z h
            let dn = d * (1.0 - z);
            let dz = d * (hp[j] - n);
            dh[j] = d * z;
            // (2) n = tanh(x̂_n + r m)
            let dan = dn * (1.0 - n * n);
            let dr = dan * m[j];
            // (1)
            let dar = dr * rg * (1.0 - rg);
            let daz = dz * z * (1.0 - z);
            dx[j] = dar;
            dx[hidden + j] = daz;
            dx[2 * hidden + j] = dan;
            dhh[j] = dar;
            dhh[hidden + j] = daz;
            dhh[2 * hidden + j] = dan * rg;
        }
    }
}
}
