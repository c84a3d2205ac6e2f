//! AVX-512F kernels: a 12×32 register tile (12 × 2 accumulators + 2 panel registers + 1
//! broadcast ≤ 32 zmm registers) and a one-row path. Every element is the same FMA chain as on
//! the AVX2 path (see the module docs of [`super`]), 16 lanes at a time instead of 8.
//!
//! AVX-512 intrinsics and `target_feature(enable = "avx512f")` are stable from Rust 1.89: the
//! crate's `rust-version` must be at least that.

use std::arch::x86_64::*;

use super::{Kernel, PackedB, TileA};

/// The AVX-512F path.
pub(super) struct Avx512;

/// Columns per panel (two 16-lane registers).
const NR: usize = 32;
/// Rows per register tile. 24 accumulators are 3× the FMA latency × throughput (4 × 2) of a
/// Zen 5 core; 64-row batches split into 5 full tiles and one of 4 rows.
const MR: usize = 12;

impl Kernel for Avx512 {
    const MR: usize = MR;
    const NR: usize = NR;
    /// 240 rows × KC = 240 KiB of packed op(a): stays in L2.
    const MC: usize = 20 * MR;

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
        dispatch_tile!(tile, (kc, a, panel, c, ldc, cols, acc), rows, cols <= NR / 2; 12 11 10 9 8 7 6 5 4 3 2 1);
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

/// An R×32 register tile: `acc[r] = Σ_p a[r, p] · panel[p]` in order of p (one FMA chain per
/// element), then stored (or added) into the first `cols` columns of R rows of `c`.
///
/// `ROWS`: op(a) is read in place, row r at depth p being `a[r·lda + p]`, instead of from a
/// packed tile (`a[p·MR + r]`). `HALF`: only the first 16 columns are live (an edge panel), so
/// the upper half's FMAs are skipped. Neither changes any element's chain.
#[target_feature(enable = "avx512f,avx2,fma")]
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
    // The tile's rows of `c` are read (accumulate) or written at the end, 12 rows apart: their
    // misses, when `c` is larger than L2 (w1's input projections), stall the store unless
    // fetched while the FMAs run. A prefetch is a hint: it never faults, whatever the address.
    for r in 0..R {
        let row = c.wrapping_add(r * ldc) as *const i8;
        _mm_prefetch::<_MM_HINT_T0>(row);
        _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(64));
    }
    let mut lo = [_mm512_setzero_ps(); R];
    let mut hi = [_mm512_setzero_ps(); R];
    for p in 0..kc {
        let b0 = _mm512_loadu_ps(panel.add(p * NR));
        let b1 = if HALF {
            b0
        } else {
            _mm512_loadu_ps(panel.add(p * NR + 16))
        };
        for r in 0..R {
            let x = if ROWS {
                *a.add(r * lda + p)
            } else {
                *a.add(p * MR + r)
            };
            let av = _mm512_set1_ps(x);
            lo[r] = _mm512_fmadd_ps(av, b0, lo[r]);
            if !HALF {
                hi[r] = _mm512_fmadd_ps(av, b1, hi[r]);
            }
        }
    }
    for r in 0..R {
        store(c.add(r * ldc), lo[r], hi[r], cols, accumulate);
    }
}

/// The lane mask of the first `lanes` (≤ 16) lanes.
#[inline(always)]
fn mask(lanes: usize) -> __mmask16 {
    ((1u32 << lanes.min(16)) - 1) as __mmask16
}

/// Stores (or adds: `c + sum`, the operand order of the AVX2 path) one row's 32 sums `lo`, `hi`
/// into its first `cols` columns.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn store(row: *mut f32, lo: __m512, hi: __m512, cols: usize, accumulate: bool) {
    let (mut x0, mut x1) = (lo, hi);
    if cols == NR {
        if accumulate {
            x0 = _mm512_add_ps(_mm512_loadu_ps(row), x0);
            x1 = _mm512_add_ps(_mm512_loadu_ps(row.add(16)), x1);
        }
        _mm512_storeu_ps(row, x0);
        _mm512_storeu_ps(row.add(16), x1);
    } else {
        // Edge panel: masked lanes are neither read nor written (and cannot fault). The upper
        // half's address may lie past the row's end, hence `wrapping_add`.
        let (m0, m1) = (mask(cols), mask(cols.saturating_sub(16)));
        let row_hi = row.wrapping_add(16);
        if accumulate {
            x0 = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, row), x0);
            x1 = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, row_hi), x1);
        }
        _mm512_mask_storeu_ps(row, m0, x0);
        _mm512_mask_storeu_ps(row_hi, m1, x1);
    }
}

/// P panels from `jp` on, depths `p0..p0+kc`, for one row: `acc[q] = Σ_p a[p] · panel_q[p]` in
/// order of p, then stored (or added) into `c`.
#[target_feature(enable = "avx512f,avx2,fma")]
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
    let mut lo = [_mm512_setzero_ps(); P];
    let mut hi = [_mm512_setzero_ps(); P];
    for p in 0..kc {
        let av = _mm512_set1_ps(*a.add(p));
        for q in 0..P {
            let panel = base.add(q * k * NR + p * NR);
            lo[q] = _mm512_fmadd_ps(av, _mm512_loadu_ps(panel), lo[q]);
            hi[q] = _mm512_fmadd_ps(av, _mm512_loadu_ps(panel.add(16)), hi[q]);
        }
    }
    for q in 0..P {
        let j = (jp + q) * NR;
        store(c.add(j), lo[q], hi[q], NR.min(n - j), accumulate);
    }
}
