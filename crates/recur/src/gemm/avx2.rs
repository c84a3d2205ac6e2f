//! AVX2+FMA kernels: a 6×16 register tile (6 × 2 accumulators + 2 panel registers + 1
//! broadcast ≤ 16 ymm registers) and a one-row path.

use std::arch::x86_64::*;

use super::{Kernel, PackedB, TileA};

/// The AVX2+FMA path.
pub(super) struct Avx2;

/// Columns per panel (two 8-lane registers).
const NR: usize = 16;
/// Rows per register tile.
const MR: usize = 6;

impl Kernel for Avx2 {
    const MR: usize = MR;
    const NR: usize = NR;
    /// 252 rows × KC = 252 KiB of packed op(a): stays in L2.
    const MC: usize = 42 * MR;

    unsafe fn tile(
        rows: usize,
        kc: usize,
        a: TileA,
        panel: *const f32,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        acc: bool,
    ) {
        dispatch_tile!(tile, (kc, a, panel, c, ldc, cols, acc), rows, cols <= NR / 2; 6 5 4 3 2 1);
    }

    unsafe fn row_group(
        group: usize,
        kc: usize,
        a: *const f32,
        b: &PackedB,
        p0: usize,
        jp: usize,
        c: *mut f32,
        acc: bool,
    ) {
        match group {
            4 => row_panels::<4>(kc, a, b, p0, jp, c, acc),
            3 => row_panels::<3>(kc, a, b, p0, jp, c, acc),
            2 => row_panels::<2>(kc, a, b, p0, jp, c, acc),
            _ => row_panels::<1>(kc, a, b, p0, jp, c, acc),
        }
    }
}

/// An R×16 register tile: `acc[r] = Σ_p a[r, p] · panel[p]` in order of p (one FMA chain per
/// element), then stored (or added) into the first `cols` columns of R rows of `c`.
///
/// `ROWS`: op(a) is read in place, row r at depth p being `a[r·lda + p]`, instead of from a
/// packed tile (`a[p·MR + r]`). `HALF`: only the first 8 columns are live (an edge panel), so
/// the upper half's FMAs are skipped. Neither changes any element's chain.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const R: usize, const ROWS: bool, const HALF: bool>(
    kc: usize,
    a: *const f32,
    lda: usize,
    panel: *const f32,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    accumulate: bool,
) {
    let mut lo = [_mm256_setzero_ps(); R];
    let mut hi = [_mm256_setzero_ps(); R];
    for p in 0..kc {
        let b0 = _mm256_loadu_ps(panel.add(p * NR));
        let b1 = if HALF {
            b0
        } else {
            _mm256_loadu_ps(panel.add(p * NR + 8))
        };
        for r in 0..R {
            let x: *const f32 = if ROWS {
                a.add(r * lda + p)
            } else {
                a.add(p * MR + r)
            };
            let av = _mm256_broadcast_ss(&*x);
            lo[r] = _mm256_fmadd_ps(av, b0, lo[r]);
            if !HALF {
                hi[r] = _mm256_fmadd_ps(av, b1, hi[r]);
            }
        }
    }
    for r in 0..R {
        store(c.add(r * ldc), lo[r], hi[r], cols, accumulate);
    }
}

/// Stores (or adds: `c + sum`) one row's 16 sums `lo`, `hi` into its first `cols` columns.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn store(row: *mut f32, lo: __m256, hi: __m256, cols: usize, accumulate: bool) {
    if cols == NR {
        let (mut x0, mut x1) = (lo, hi);
        if accumulate {
            x0 = _mm256_add_ps(_mm256_loadu_ps(row), x0);
            x1 = _mm256_add_ps(_mm256_loadu_ps(row.add(8)), x1);
        }
        _mm256_storeu_ps(row, x0);
        _mm256_storeu_ps(row.add(8), x1);
    } else {
        // Edge panel: the same sums, written through a buffer.
        let mut buf = [0.0f32; NR];
        _mm256_storeu_ps(buf.as_mut_ptr(), lo);
        _mm256_storeu_ps(buf.as_mut_ptr().add(8), hi);
        for (j, &v) in buf[..cols].iter().enumerate() {
            *row.add(j) = if accumulate { *row.add(j) + v } else { v };
        }
    }
}

/// P panels from `jp` on, depths `p0..p0+kc`, for one row: `acc[q] = Σ_p a[p] · panel_q[p]` in
/// order of p, then stored (or added) into `c`.
#[target_feature(enable = "avx2,fma")]
unsafe fn row_panels<const P: usize>(
    kc: usize,
    a: *const f32,
    b: &PackedB,
    p0: usize,
    jp: usize,
    c: *mut f32,
    accumulate: bool,
) {
    let (n, k) = (b.n(), b.k());
    let base = b.data.as_ptr().add(jp * k * NR + p0 * NR);
    let mut lo = [_mm256_setzero_ps(); P];
    let mut hi = [_mm256_setzero_ps(); P];
    for p in 0..kc {
        let av = _mm256_broadcast_ss(&*a.add(p));
        for q in 0..P {
            let panel = base.add(q * k * NR + p * NR);
            lo[q] = _mm256_fmadd_ps(av, _mm256_loadu_ps(panel), lo[q]);
            hi[q] = _mm256_fmadd_ps(av, _mm256_loadu_ps(panel.add(8)), hi[q]);
        }
    }
    for q in 0..P {
        let j = (jp + q) * NR;
        store(c.add(j), lo[q], hi[q], NR.min(n - j), accumulate);
    }
}
