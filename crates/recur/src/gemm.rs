//! Row-major f32 matrix multiply: `c (+)= op(a) · op(b)`.
//!
//! Guarantee (batch-composition invariance): each element of the result is one fixed chain of
//! fused multiply-adds over `k`, in order, whatever `m`, `n`, the row's position or the thread
//! count. So a row of the result depends only on that row of `op(a)` and on `op(b)`: a
//! sequence gives bit-identical results in any batch.
//!
//! On x86-64 with AVX2 and FMA recur uses its own kernel: `op(b)` is packed once into panels of
//! 16 columns ([`PackedB`], reused across the time steps of a recurrence), `op(a)` is packed in
//! chunks of rows, and a 6×16 register tile walks `k` in fixed blocks of [`KC`] (that is what
//! fixes the order). Threads split the column panels. Elsewhere it falls back to
//! `matrixmultiply`, whose zero-padded edge tiles and fixed blocking give the same guarantee.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Whether an operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trans {
    /// As stored.
    N,
    /// Transposed.
    T,
}

static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets how many threads recur's kernels use (0 = all available cores).
pub fn set_num_threads(n: usize) {
    THREADS.store(n, Ordering::Relaxed);
}

/// The number of threads recur's kernels use.
pub fn num_threads() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        n => n,
    }
}

/// Columns per packed panel (two 8-lane registers).
const NR: usize = 16;
/// Rows per register tile (6 × 2 accumulators + 2 panel registers + 1 broadcast ≤ 16).
const MR: usize = 6;
/// Depth of one k-block (fixed, so the summation order depends on k alone).
const KC: usize = 256;
/// Rows per packed chunk of op(a) (about 256 KiB at KC: stays in L2).
const MC: usize = 256;
/// Below this many multiply-adds a product runs on one thread.
const PARALLEL_MIN_WORK: usize = 1 << 21;
/// The same for one row (a matrix-vector product, on the spinning [`crate::team`]): from about
/// 256 KiB of weights, two cores streaming them beat one.
const ROW_PARALLEL_MIN_WORK: usize = 1 << 16;

/// `op(b)` (`[k, n]`) packed into zero-padded panels of [`NR`] columns: panel `j` holds rows
/// `p = 0..k` of columns `32j..32j+32`, contiguous.
#[derive(Clone, Debug, Default)]
pub struct PackedB {
    data: Vec<f32>,
    k: usize,
    n: usize,
}

impl PackedB {
    /// Packs `b` (`[k, n]` when `tb = N`, `[n, k]` when `tb = T`).
    pub fn new(b: &[f32], tb: Trans, k: usize, n: usize) -> Self {
        let panels = n.div_ceil(NR);
        let mut data = vec![0.0f32; panels * k * NR];
        for jp in 0..panels {
            let panel = &mut data[jp * k * NR..][..k * NR];
            let cols = NR.min(n - jp * NR);
            match tb {
                Trans::N => {
                    for p in 0..k {
                        panel[p * NR..][..cols].copy_from_slice(&b[p * n + jp * NR..][..cols]);
                    }
                }
                Trans::T => {
                    for jj in 0..cols {
                        let src = &b[(jp * NR + jj) * k..][..k];
                        for (p, &v) in src.iter().enumerate() {
                            panel[p * NR + jj] = v;
                        }
                    }
                }
            }
        }
        PackedB { data, k, n }
    }

    /// Rows k of `op(b)`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns n of `op(b)`.
    pub fn n(&self) -> usize {
        self.n
    }
}

/// Whether the AVX2+FMA kernel can run here (checked once).
#[cfg(target_arch = "x86_64")]
pub fn has_simd() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// Whether the AVX2+FMA kernel can run here.
#[cfg(not(target_arch = "x86_64"))]
pub fn has_simd() -> bool {
    false
}

/// `c[m,n] (+)= op(a)[m,k] · op(b)[k,n]`.
///
/// * `a` holds `[m,k]` (`ta = N`) or `[k,m]` (`ta = T`); `b` holds `[k,n]` or `[n,k]`.
/// * `accumulate`: add into `c` instead of overwriting it.
/// * `threads`: how many threads this call may use (1 inside already-parallel code).
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    c: &mut [f32],
    a: &[f32],
    ta: Trans,
    b: &[f32],
    tb: Trans,
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
    threads: usize,
) {
    assert!(
        c.len() >= m * n && a.len() >= m * k && b.len() >= k * n,
        "matmul: operand too small"
    );
    if m == 0 || n == 0 {
        return;
    }
    if has_simd() {
        let packed = PackedB::new(b, tb, k, n);
        matmul_packed(c, a, ta, &packed, m, accumulate, threads);
    } else {
        fallback(c, a, ta, b, tb, m, n, k, accumulate);
    }
}

/// [`matmul`] with `op(b)` already packed (reuse it across calls with the same `b`).
pub fn matmul_packed(
    c: &mut [f32],
    a: &[f32],
    ta: Trans,
    b: &PackedB,
    m: usize,
    accumulate: bool,
    threads: usize,
) {
    let (n, k) = (b.n, b.k);
    assert!(
        c.len() >= m * n && a.len() >= m * k,
        "matmul_packed: operand too small"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return;
    }
    // Strides of op(a) as an [m, k] view.
    let (a_rs, a_cs) = match ta {
        Trans::N => (k, 1),
        Trans::T => (1, m),
    };
    if !has_simd() {
        // Without AVX2 the portable GEMM multiplies the packed panels one by one.
        return fallback_packed(c, a, a_rs, a_cs, b, m, accumulate);
    }
    let panels = n.div_ceil(NR);
    let min_work = if m == 1 {
        ROW_PARALLEL_MIN_WORK
    } else {
        PARALLEL_MIN_WORK
    };
    let threads = if m * n * k >= min_work {
        threads.clamp(1, panels)
    } else {
        1
    };
    let c_addr = c.as_mut_ptr() as usize;
    let run = |first: usize, last: usize| {
        if m == 1 {
            // One row (a matrix-vector product): op(a) is contiguous whatever `ta`, no packing.
            // SAFETY: as below; the row has k elements.
            return unsafe { avx2::row(c_addr as *mut f32, &a[..k], b, first, last, accumulate) };
        }
        thread_local!(static APACK: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) });
        // SAFETY: each call writes only the columns of its own panels [first, last) of `c`.
        APACK.with(|buf| unsafe {
            avx2::product(
                c_addr as *mut f32,
                a,
                a_rs,
                a_cs,
                b,
                m,
                first,
                last,
                accumulate,
                &mut buf.borrow_mut(),
            )
        })
    };
    if threads == 1 {
        run(0, panels);
    } else {
        // A product takes microseconds to a millisecond: the spinning team, not rayon, whose
        // wake-up costs tens of microseconds.
        let per = panels.div_ceil(threads);
        crate::team::run(threads, &|t| {
            let (first, last) = (t * per, ((t + 1) * per).min(panels));
            if first < last {
                run(first, last);
            }
        });
    }
}

/// Portable path: `matrixmultiply` (fixed blocking, zero-padded edges: also row-invariant).
#[allow(clippy::too_many_arguments)]
fn fallback(
    c: &mut [f32],
    a: &[f32],
    ta: Trans,
    b: &[f32],
    tb: Trans,
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
) {
    let (a_rs, a_cs) = match ta {
        Trans::N => (k as isize, 1),
        Trans::T => (1, m as isize),
    };
    let (b_rs, b_cs) = match tb {
        Trans::N => (n as isize, 1),
        Trans::T => (1, k as isize),
    };
    // SAFETY: the slices are at least as long as the strided views (asserted by callers).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            a_rs,
            a_cs,
            b.as_ptr(),
            b_rs,
            b_cs,
            if accumulate { 1.0 } else { 0.0 },
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

fn fallback_packed(
    c: &mut [f32],
    a: &[f32],
    a_rs: usize,
    a_cs: usize,
    b: &PackedB,
    m: usize,
    accumulate: bool,
) {
    let (n, k) = (b.n, b.k);
    for jp in 0..n.div_ceil(NR) {
        let panel = &b.data[jp * k * NR..][..k * NR];
        // SAFETY: strides describe an [m, k] view inside `a`; the panel is [k, NR].
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                NR.min(n - jp * NR),
                1.0,
                a.as_ptr(),
                a_rs as isize,
                a_cs as isize,
                panel.as_ptr(),
                NR as isize,
                1,
                if accumulate { 1.0 } else { 0.0 },
                c.as_mut_ptr().add(jp * NR),
                n as isize,
                1,
            );
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{PackedB, KC, MC, MR, NR};

    /// Packs rows `i0..i0+rows` and depths `p0..p0+kc` of op(a) into tiles of [`MR`] rows:
    /// tile t holds, for each p, rows `MR·t..MR·t+MR` contiguous (zero-padded).
    #[allow(clippy::too_many_arguments)]
    fn pack_a(
        a: &[f32],
        a_rs: usize,
        a_cs: usize,
        i0: usize,
        rows: usize,
        p0: usize,
        kc: usize,
        out: &mut Vec<f32>,
    ) {
        let tiles = rows.div_ceil(MR);
        // Every element is overwritten below, so the buffer is only grown, never cleared.
        if out.len() < tiles * kc * MR {
            out.resize(tiles * kc * MR, 0.0);
        }
        for t in 0..tiles {
            let dst = &mut out[t * kc * MR..][..kc * MR];
            let live = MR.min(rows - t * MR);
            if a_rs == 1 {
                // op(a) = aᵀ: the tile's rows are contiguous in memory for each p.
                for p in 0..kc {
                    let src = (i0 + t * MR) + (p0 + p) * a_cs;
                    dst[p * MR..p * MR + live].copy_from_slice(&a[src..src + live]);
                }
            } else {
                for r in 0..live {
                    let base = (i0 + t * MR + r) * a_rs + p0 * a_cs;
                    for p in 0..kc {
                        dst[p * MR + r] = a[base + p * a_cs];
                    }
                }
            }
            // Rows past the end are zero so that the full tile stays a fixed computation.
            for r in live..MR {
                for p in 0..kc {
                    dst[p * MR + r] = 0.0;
                }
            }
        }
    }

    /// The whole product for panels `[first, last)`.
    ///
    /// SAFETY: caller guarantees AVX2 and FMA, and that `c` points to `m × b.n` floats of which
    /// this call may write the columns of its panels.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn product(
        c: *mut f32,
        a: &[f32],
        a_rs: usize,
        a_cs: usize,
        b: &PackedB,
        m: usize,
        first: usize,
        last: usize,
        accumulate: bool,
        apack: &mut Vec<f32>,
    ) {
        let (n, k) = (b.n, b.k);
        // Fixed k-blocks, in order: every element's sum is the same chain whatever m and n.
        let mut p0 = 0;
        while p0 < k {
            let kc = KC.min(k - p0);
            let acc = accumulate || p0 > 0;
            let mut i0 = 0;
            while i0 < m {
                let rows = MC.min(m - i0);
                pack_a(a, a_rs, a_cs, i0, rows, p0, kc, apack);
                for jp in first..last {
                    let panel = b.data.as_ptr().add(jp * k * NR + p0 * NR);
                    let cols = NR.min(n - jp * NR);
                    for t in 0..rows.div_ceil(MR) {
                        let r = MR.min(rows - t * MR);
                        let ap = apack.as_ptr().add(t * kc * MR);
                        let cp = c.add((i0 + t * MR) * n + jp * NR);
                        match r {
                            6 => tile::<6>(kc, ap, panel, cp, n, cols, acc),
                            5 => tile::<5>(kc, ap, panel, cp, n, cols, acc),
                            4 => tile::<4>(kc, ap, panel, cp, n, cols, acc),
                            3 => tile::<3>(kc, ap, panel, cp, n, cols, acc),
                            2 => tile::<2>(kc, ap, panel, cp, n, cols, acc),
                            _ => tile::<1>(kc, ap, panel, cp, n, cols, acc),
                        }
                    }
                }
                i0 += rows;
            }
            p0 += kc;
        }
    }

    /// An R×16 register tile: `acc[r] = Σ_p a[r, p] · panel[p]` in order of p (one FMA chain
    /// per element), then stored (or added) into the first `cols` columns of R rows of `c`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile<const R: usize>(
        kc: usize,
        a: *const f32,
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
            let b1 = _mm256_loadu_ps(panel.add(p * NR + 8));
            for r in 0..R {
                let av = _mm256_broadcast_ss(&*a.add(p * MR + r));
                lo[r] = _mm256_fmadd_ps(av, b0, lo[r]);
                hi[r] = _mm256_fmadd_ps(av, b1, hi[r]);
            }
        }
        for r in 0..R {
            store(c.add(r * ldc), lo[r], hi[r], cols, accumulate);
        }
    }

    /// Stores (or adds) one row's 16 sums `lo`, `hi` into its first `cols` columns at `row`.
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

    /// Panels walked together by [`row`]: 2·[`ROW_PANELS`] independent FMA chains hide the FMA
    /// latency that a single 1×16 tile (two chains) waits on.
    const ROW_PANELS: usize = 4;

    /// The product of one row `a` (`k` contiguous elements of op(a)) for panels `[first, last)`:
    /// the same k-blocks and the same FMA chain per element as [`tile`]`::<1>`, so the same bits
    /// as that row inside any larger product.
    ///
    /// SAFETY: caller guarantees AVX2 and FMA, and that `c` points to `b.n` floats of which this
    /// call may write the columns of its panels.
    pub(super) unsafe fn row(
        c: *mut f32,
        a: &[f32],
        b: &PackedB,
        first: usize,
        last: usize,
        accumulate: bool,
    ) {
        let k = b.k;
        let mut p0 = 0;
        while p0 < k {
            let kc = KC.min(k - p0);
            let acc = accumulate || p0 > 0;
            let ap = a.as_ptr().add(p0);
            let mut jp = first;
            while jp < last {
                let group = ROW_PANELS.min(last - jp);
                match group {
                    4 => row_panels::<4>(kc, ap, b, p0, jp, c, acc),
                    3 => row_panels::<3>(kc, ap, b, p0, jp, c, acc),
                    2 => row_panels::<2>(kc, ap, b, p0, jp, c, acc),
                    _ => row_panels::<1>(kc, ap, b, p0, jp, c, acc),
                }
                jp += group;
            }
            p0 += kc;
        }
    }

    /// P panels from `jp` on, depths `p0..p0+kc`, for one row: `acc[q] = Σ_p a[p] · panel_q[p]`
    /// in order of p, then stored (or added) into `c`.
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
        let (n, k) = (b.n, b.k);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], ta: Trans, b: &[f32], tb: Trans, m: usize, n: usize, k: usize) -> Vec<f32> {
        let mut c = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for p in 0..k {
                    let av = if ta == Trans::N {
                        a[i * k + p]
                    } else {
                        a[p * m + i]
                    };
                    let bv = if tb == Trans::N {
                        b[p * n + j]
                    } else {
                        b[j * k + p]
                    };
                    s += av as f64 * bv as f64;
                }
                c[i * n + j] = s as f32;
            }
        }
        c
    }

    fn data(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (((i * 37 + seed * 11) % 17) as f32 - 8.0) / 7.0)
            .collect()
    }

    #[test]
    fn all_transposes_and_edge_sizes_match_naive() {
        for &(m, n, k) in &[
            (7, 5, 9),
            (1, 1, 1),
            (9, 33, 17),
            (17, 64, 3),
            (8, 32, 40),
            (3, 70, 0),
        ] {
            let (a, b) = (data(m * k, 1), data(k * n, 2));
            for ta in [Trans::N, Trans::T] {
                for tb in [Trans::N, Trans::T] {
                    let want = naive(&a, ta, &b, tb, m, n, k);
                    let mut c = vec![1.0f32; m * n];
                    matmul(&mut c, &a, ta, &b, tb, m, n, k, false, 1);
                    for (x, y) in c.iter().zip(&want) {
                        assert!((x - y).abs() < 1e-4, "{m}x{n}x{k} {ta:?}{tb:?}: {x} vs {y}");
                    }
                    matmul(&mut c, &a, ta, &b, tb, m, n, k, true, 2);
                    for (x, y) in c.iter().zip(&want) {
                        assert!((x - 2.0 * y).abs() < 2e-4, "accumulate {ta:?}{tb:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_row_does_not_depend_on_the_rest_of_the_batch_or_threads() {
        let (n, k) = (100, 300);
        let b = data(n * k, 3);
        let a = data(70 * k, 4);
        let mut alone = vec![0.0f32; n];
        matmul(
            &mut alone,
            &a[5 * k..6 * k],
            Trans::N,
            &b,
            Trans::T,
            1,
            n,
            k,
            false,
            1,
        );
        for (m, threads) in [(6, 1), (17, 2), (70, 2), (64, 1)] {
            let mut c = vec![0.0f32; m * n];
            matmul(
                &mut c,
                &a[..m * k],
                Trans::N,
                &b,
                Trans::T,
                m,
                n,
                k,
                false,
                threads,
            );
            assert_eq!(&c[5 * n..6 * n], &alone[..], "m={m} threads={threads}");
        }
    }

    /// The one-row path (m = 1, no packing of op(a), several panels at once) gives the bits of
    /// that row inside a larger product: every panel-group remainder, edge panels, several
    /// k-blocks, overwrite and accumulate, both layouts of op(a).
    #[test]
    fn one_row_equals_its_row_in_a_batch() {
        for &(n, k) in &[(16, 5), (48, 300), (70, 513), (130, 256), (1, 9), (200, 40)] {
            let b = data(n * k, 5);
            let packed = PackedB::new(&b, Trans::T, k, n);
            let m = 7;
            let a = data(m * k, 6);
            let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
            for accumulate in [false, true] {
                let init = data(m * n, 7);
                let mut batch = init.clone();
                matmul_packed(&mut batch, &a, Trans::N, &packed, m, accumulate, 1);
                let mut batch_t = init.clone();
                matmul_packed(&mut batch_t, &at, Trans::T, &packed, m, accumulate, 2);
                assert_eq!(batch, batch_t, "n={n} k={k}");
                for r in 0..m {
                    let mut one = init[r * n..(r + 1) * n].to_vec();
                    let row = &a[r * k..(r + 1) * k];
                    matmul_packed(&mut one, row, Trans::N, &packed, 1, accumulate, 1);
                    assert_eq!(&one[..], &batch[r * n..(r + 1) * n], "n={n} k={k} row {r}");
                    let mut one_t = init[r * n..(r + 1) * n].to_vec();
                    matmul_packed(&mut one_t, row, Trans::T, &packed, 1, accumulate, 2);
                    assert_eq!(one_t, one, "n={n} k={k} row {r} (T)");
                }
            }
        }
    }
}
