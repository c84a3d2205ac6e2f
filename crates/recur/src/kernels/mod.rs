//! Fused element-wise kernels of the recurrent cells.
//!
//! They know nothing of layers: each works on `rows` rows of contiguous row-major buffers, and
//! each forward leaves in place exactly what its backward reads. The matrix products around them
//! (input projection, recurrence) are done by the caller with [`crate::gemm::matmul`].
//!
//! The activations are branch-free polynomial approximations (Cephes, within 2 ulp of the
//! correctly rounded result) so that the loops vectorize; `simd!` compiles a kernel body for
//! AVX-512F, AVX2+FMA and the baseline target and picks one at run time. Rust never fuses
//! `a * b + c`, so all builds give bit-identical results.

pub mod elman;
pub mod gru;
pub mod lstm;

/// Cephes' published coefficients are kept verbatim (they round to the same f32 values).
#[allow(clippy::excessive_precision)]
/// e^x (f32; Cephes `expf`: exact range reduction by ln 2, degree-6 polynomial).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const C1: f32 = 0.693_359_4; // ln 2, high part (exact in f32)
    const C2: f32 = -2.121_944_4e-4; // ln 2 - C1
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2^23: adding it rounds to an integer
    let x = x.clamp(-87.336_55, 88.376_26);
    let t = x * LOG2E + ROUND;
    let n = t - ROUND;
    let r = x - n * C1 - n * C2;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let y = p * (r * r) + r + 1.0;
    // 2^n: t = 1.5·2^23 + n exactly, so t's low mantissa bits hold n (|n| <= 127). Integer
    // arithmetic on those bits vectorizes; `n as i32` (a saturating cast) did not, and cost the
    // gate kernels most of their time.
    let n_bits = t.to_bits().wrapping_sub(ROUND.to_bits());
    y * f32::from_bits(n_bits.wrapping_add(127) << 23)
}

/// The logistic function σ(x) = 1 / (1 + e^-x).
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[allow(clippy::excessive_precision)]
/// tanh(x) (Cephes `tanhf`: odd polynomial below |x| = 0.625, else 1 - 2 / (e^2|x| + 1)).
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let mut p = -5.704_988_7e-3;
    p = p * z + 2.063_908_9e-2;
    p = p * z - 5.373_971_6e-2;
    p = p * z + 1.333_144_2e-1;
    p = p * z - 3.333_328_2e-1;
    let small = p * z * x + x;
    let large = (1.0 - 2.0 / (exp(2.0 * a) + 1.0)).copysign(x);
    if a < 0.625 {
        small
    } else {
        large
    }
}

/// Defines `pub fn $name($args)` that runs `$body` compiled for the [`simd_path`] of the
/// process (AVX-512F, AVX2+FMA or the baseline target), and `pub fn $on(path, $args)` that runs
/// it for a given path (for tests comparing paths; a path the CPU lacks becomes the fastest one
/// below it). Rust never fuses `a * b + c` nor reassociates, so every build executes the same
/// f32 operations per lane in the same order: all paths give the same bits, only the vector
/// width differs.
///
/// [`simd_path`]: crate::gemm::simd_path
macro_rules! simd {
    ($(#[$meta:meta])* pub fn $name:ident, $on:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        pub fn $name($($arg: $ty),*) {
            $on(crate::gemm::simd_path(), $($arg),*)
        }

        #[doc(hidden)]
        #[allow(clippy::too_many_arguments)]
        pub fn $on(path: crate::gemm::SimdPath, $($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx512($($arg: $ty),*) {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                match path.or_supported() {
                    // SAFETY: the CPU supports AVX-512F, AVX2 and FMA (checked at run time).
                    crate::gemm::SimdPath::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: the CPU supports AVX2 and FMA (checked at run time).
                    crate::gemm::SimdPath::Avx2 => return unsafe { avx2($($arg),*) },
                    crate::gemm::SimdPath::Portable => {}
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = path;
            body($($arg),*)
        }
    };
}
pub(crate) use simd;

simd! {
    /// `out[r·d + i] = tanh(q[i] + keys[r·d + i])` for every row `r` of `keys` (`d = q.len()`):
    /// additive attention's energies of one query against its keys, before the weighting by
    /// `v`.
    pub fn tanh_sum_rows, tanh_sum_rows_on(out: &mut [f32], q: &[f32], keys: &[f32]) {
        let d = q.len();
        if d == 0 {
            return;
        }
        for (o, k) in out.chunks_exact_mut(d).zip(keys.chunks_exact(d)) {
            for ((oi, &x), &y) in o.iter_mut().zip(q).zip(k) {
                *oi = tanh(x + y);
            }
        }
    }
}

simd! {
    /// `out[i] += Σ_j weights[j] · rows[j·d + i]` for `j` in order (`d = out.len()`, one row of
    /// `rows` per weight): a weighted sum of rows, as attention sums its keys. Multiply, then
    /// add, element by element: the bits of the scalar loop on every path.
    pub fn add_weighted_rows, add_weighted_rows_on(out: &mut [f32], weights: &[f32], rows: &[f32]) {
        let d = out.len();
        if d == 0 {
            return;
        }
        for (&a, row) in weights.iter().zip(rows.chunks_exact(d)) {
            for (o, &x) in out.iter_mut().zip(row) {
                *o += a * x;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks f32 values across the activations' useful range and beyond.
    fn grid() -> impl Iterator<Item = f32> {
        (-200_000..=200_000)
            .map(|i| i as f32 * 5e-4)
            .chain([-100.0, -90.0, 89.0, 100.0, 1e-30, -1e-30, 0.0])
    }

    #[test]
    fn tanh_sum_rows_is_the_scalar_loop_on_every_path() {
        let q: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let keys: Vec<f32> = (0..37 * 5).map(|i| (i as f32 * 0.11).cos() * 4.0).collect();
        let want: Vec<f32> = keys
            .chunks(37)
            .flat_map(|k| {
                k.iter()
                    .zip(&q)
                    .map(|(&y, &x)| tanh(x + y))
                    .collect::<Vec<_>>()
            })
            .collect();
        for path in crate::gemm::SimdPath::ALL {
            let mut out = vec![0.0; keys.len()];
            tanh_sum_rows_on(path, &mut out, &q, &keys);
            let same = out
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{path:?}");
        }
    }

    #[test]
    fn add_weighted_rows_is_the_scalar_loop_on_every_path() {
        let d = 37;
        let weights: Vec<f32> = (0..6).map(|j| (j as f32 * 0.7).sin()).collect();
        let rows: Vec<f32> = (0..6 * d).map(|i| (i as f32 * 0.13).cos() * 3.0).collect();
        let start: Vec<f32> = (0..d).map(|i| i as f32 * 0.01 - 0.2).collect();
        let mut want = start.clone();
        for (j, &a) in weights.iter().enumerate() {
            for i in 0..d {
                want[i] += a * rows[j * d + i];
            }
        }
        for path in crate::gemm::SimdPath::ALL {
            let mut out = start.clone();
            add_weighted_rows_on(path, &mut out, &weights, &rows);
            let same = out
                .iter()
                .zip(&want)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{path:?}");
        }
    }

    #[test]
    fn exp_is_within_two_ulp_of_f64() {
        for x in grid().filter(|x| x.abs() < 87.0) {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            assert!(
                (got - want).abs() <= 2.5 * f32::EPSILON as f64 * want,
                "exp({x}) = {got} vs {want}"
            );
        }
        assert_eq!(exp(-100.0), exp(-87.336_55));
        assert!(exp(100.0).is_finite());
    }

    #[test]
    fn tanh_and_sigmoid_match_f64() {
        for x in grid() {
            let t = (x as f64).tanh();
            assert!(
                (tanh(x) as f64 - t).abs()
                    <= 2.5 * f32::EPSILON as f64 * t.abs().max(1e-30) + 1e-37,
                "tanh({x})"
            );
            let s = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!(
                (sigmoid(x) as f64 - s).abs() <= 3.0 * f32::EPSILON as f64 * s + 1e-37,
                "sigmoid({x})"
            );
        }
        assert_eq!(tanh(0.0), 0.0);
        assert_eq!(tanh(50.0), 1.0);
        assert_eq!(tanh(-50.0), -1.0);
    }
}
