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
pub fn forward(
    rows: usize,
    hidden: usize,
    xg: &mut [f32],
    hg: &mut [f32],
    b_hh: Option<&[f32]>,
    h: &mut [f32],
) {
    let g3 = 3 * hidden;
    for r in 0..rows {
        let x = &mut xg[r * g3..(r + 1) * g3];
        let hh = &mut hg[r * g3..(r + 1) * g3];
        let h = &mut h[r * hidden..(r + 1) * hidden];
        for j in 0..hidden {
            let (br, bz, bn) = match b_hh {
                Some(b) => (b[j], b[hidden + j], b[2 * hidden + j]),
                None => (0.0, 0.0, 0.0),
            };
            // (1)
            let rg = sigmoid(x[j] + hh[j] + br);
            let z = sigmoid(x[hidden + j] + hh[hidden + j] + bz);
            // (2)
            let m = hh[2 * hidden + j] + bn;
            let n = tanh(x[2 * hidden + j] + rg * m);
            // (3)
            x[j] = rg;
            x[hidden + j] = z;
            x[2 * hidden + j] = n;
            hh[2 * hidden + j] = m;
            h[j] = (1.0 - z) * n + z * h[j];
        }
    }
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
pub fn backward(
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
