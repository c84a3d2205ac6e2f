//! Row-major f32 matrix multiply: `c (+)= op(a) · op(b)`.
//!
//! Guarantee (batch-composition invariance): each element of the result is one fixed chain of
//! fused multiply-adds over `k`, in order, whatever `m`, `n`, the row's position or the thread
//! count. So a row of the result depends only on that row of `op(a)` and on `op(b)`: a
//! sequence gives bit-identical results in any batch.
//!
//! Kernels are chosen once per process from the CPU's features ([`simd_path`]; the environment
//! variable `RECUR_SIMD=avx512|avx2|portable` forces one):
//!
//! * AVX-512F: `op(b)` is packed once into panels of 32 columns ([`PackedB`], reused across the
//!   time steps of a recurrence), `op(a)` in chunks of rows, and a 12×32 register tile walks `k`
//!   in fixed blocks of [`KC`] (that is what fixes the order).
//! * AVX2+FMA: the same with panels of 16 columns and a 6×16 tile.
//!
//! Blocking (for a Zen 5 core: 48 KiB L1d, 1 MiB L2, a shared 32 MiB L3): a panel of `op(b)`
//! at one k-block (KC × 32 floats = 32 KiB on AVX-512, 16 KiB on AVX2) stays in L1 while the
//! register tiles of a packed chunk of `op(a)` (240 resp. 252 rows × KC ≈ 250 KiB, in L2) walk
//! it; a chunk's rows of `c` take all their k-blocks before the next chunk (they stay in L3).
//!
//! Both paths run, for every element, the same chain: `acc = fma(a, b, acc)` from `acc = 0` over
//! each k-block in order, then `c = acc` (first block, not accumulating) or `c = c + acc`. So
//! they give bit-identical results; only the tile shapes (speed) differ. Threads split the
//! column panels. The portable path falls back to `matrixmultiply`, whose zero-padded edge
//! tiles and fixed blocking also make it row-invariant (its bits differ from the SIMD paths).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// A path's `Kernel::tile`: calls its `$tile::<R, ROWS, HALF>` (R one of the `$r` row counts,
/// ROWS: op(a) in place, HALF: an edge panel of at most half the width), one monomorphic kernel
/// per case; the dispatch costs a jump per tile of KC depths.
#[cfg(target_arch = "x86_64")]
macro_rules! dispatch_tile {
    ($tile:ident, ($kc:expr, $a:expr, $panel:expr, $c:expr, $ldc:expr, $cols:expr, $acc:expr),
     $rows:expr, $half:expr; $($r:literal)*) => {
        match ($rows, $a, $half) {
            $(
                ($r, TileA::Packed(ap), false) => $tile::<$r, false, false>($kc, ap, 0, $panel, $c, $ldc, $cols, $acc),
                ($r, TileA::Packed(ap), true) => $tile::<$r, false, true>($kc, ap, 0, $panel, $c, $ldc, $cols, $acc),
                ($r, TileA::Rows(ap, lda), false) => $tile::<$r, true, false>($kc, ap, lda, $panel, $c, $ldc, $cols, $acc),
                ($r, TileA::Rows(ap, lda), true) => $tile::<$r, true, true>($kc, ap, lda, $panel, $c, $ldc, $cols, $acc),
            )*
            // Callers pass 1 to MR rows.
            _ => {}
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx2;
// AVX-512 intrinsics are stable from Rust 1.89 (the crate's rust-version must follow).
#[cfg(target_arch = "x86_64")]
#[clippy::msrv = "1.89"]
mod avx512;

/// Whether an operand is used as stored or transposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trans {
    /// As stored.
    N,
    /// Transposed.
    T,
}

/// A family of kernels (GEMM and gate kernels), chosen by [`simd_path`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdPath {
    /// Portable Rust: `matrixmultiply` for products, baseline-target gate kernels.
    #[default]
    Portable,
    /// AVX2 + FMA, 256-bit registers.
    Avx2,
    /// AVX-512F, 512-bit registers: the same bits as [`SimdPath::Avx2`], faster.
    Avx512,
}

impl SimdPath {
    /// Every path, slowest first.
    pub const ALL: [SimdPath; 3] = [SimdPath::Portable, SimdPath::Avx2, SimdPath::Avx512];

    /// The name `RECUR_SIMD` accepts for this path.
    pub fn name(self) -> &'static str {
        match self {
            SimdPath::Portable => "portable",
            SimdPath::Avx2 => "avx2",
            SimdPath::Avx512 => "avx512",
        }
    }

    /// The path called `name` (as [`SimdPath::name`] spells it).
    pub fn from_name(name: &str) -> Option<SimdPath> {
        SimdPath::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether this CPU can run the path.
    pub fn is_supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            // std caches the CPUID results: these are cheap after the first call.
            let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            match self {
                SimdPath::Portable => true,
                SimdPath::Avx2 => avx2,
                SimdPath::Avx512 => avx2 && is_x86_feature_detected!("avx512f"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == SimdPath::Portable
        }
    }

    /// This path if the CPU supports it, else the fastest supported one below it.
    pub fn or_supported(self) -> SimdPath {
        SimdPath::ALL[..=self as usize]
            .iter()
            .rev()
            .copied()
            .find(|p| p.is_supported())
            .unwrap_or(SimdPath::Portable)
    }

    /// The fastest path this CPU supports.
    pub fn best() -> SimdPath {
        SimdPath::Avx512.or_supported()
    }

    /// Columns of one packed panel of `op(b)` (two registers' worth of lanes).
    fn panel_width(self) -> usize {
        match self {
            SimdPath::Avx512 => 32,
            SimdPath::Avx2 | SimdPath::Portable => 16,
        }
    }
}

/// The path recur's kernels take in this process: `RECUR_SIMD` if set (`avx512`, `avx2`,
/// `portable`, or `auto`), else the fastest the CPU supports. Decided on the first call. A forced
/// path the CPU lacks falls back, with a warning on stderr, to the fastest one below it (never an
/// illegal instruction).
pub fn simd_path() -> SimdPath {
    static PATH: OnceLock<SimdPath> = OnceLock::new();
    *PATH.get_or_init(|| choose_path(std::env::var("RECUR_SIMD").ok().as_deref()))
}

/// The path for a `RECUR_SIMD` value (`None`: unset).
fn choose_path(forced: Option<&str>) -> SimdPath {
    let best = SimdPath::best();
    let name = match forced.map(str::trim) {
        None | Some("") | Some("auto") => return best,
        Some(name) => name,
    };
    match SimdPath::from_name(name) {
        Some(path) if path.is_supported() => path,
        Some(path) => {
            let used = path.or_supported();
            eprintln!(
                "recur: RECUR_SIMD={name}: this CPU cannot run it; using {}",
                used.name()
            );
            used
        }
        None => {
            eprintln!(
                "recur: RECUR_SIMD={name} is not one of auto, avx512, avx2, portable; using {}",
                best.name()
            );
            best
        }
    }
}

/// Whether a SIMD path (AVX2 or AVX-512) is in use, see [`simd_path`].
pub fn has_simd() -> bool {
    simd_path() != SimdPath::Portable
}

static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets how many threads recur's kernels use (0 = all available cores). The parallel regions
/// whose threads spin while they wait for each other (the products of a few rows, the sharded
/// sweeps) use at most one thread per core whatever this says.
pub fn set_num_threads(n: usize) {
    THREADS.store(n, Ordering::Relaxed);
}

thread_local! {
    /// This thread's own kernel thread count while [`with_threads`] runs (0: none).
    static THREADS_HERE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Runs `f` with this thread's kernels on `n` threads (at least 1) whatever
/// [`set_num_threads`] says, as when several threads each decode their own batch.
pub fn with_threads<R>(n: usize, f: impl FnOnce() -> R) -> R {
    /// Restores the previous count, also when `f` panics.
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            THREADS_HERE.with(|t| t.set(self.0));
        }
    }
    let _restore = Restore(THREADS_HERE.with(|t| t.replace(n.max(1))));
    f()
}

/// The number of threads recur's kernels use (on this thread, inside [`with_threads`]).
pub fn num_threads() -> usize {
    let here = THREADS_HERE.with(|t| t.get());
    if here > 0 {
        return here;
    }
    match THREADS.load(Ordering::Relaxed) {
        0 => available_cores(),
        n => n,
    }
}

/// The cores this process may use, read once: `available_parallelism` reads the cgroup's CPU
/// quota from files at every call (25 µs here), and every parallel product asks.
pub(crate) fn available_cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// Depth of one k-block: fixed, and the same on every SIMD path, so that the summation order
/// (hence the bits) depends on k alone.
pub const KC: usize = 256;
/// Below this many multiply-adds a product runs on one thread.
const PARALLEL_MIN_WORK: usize = 1 << 21;
/// The same for one row, or up to a tile's rows, counted in weights (`n·k`, on the spinning
/// [`crate::team`]): from about 256 KiB of weights, two cores streaming them beat one.
pub(crate) const ROW_PARALLEL_MIN_WORK: usize = 1 << 16;

/// `op(b)` (`[k, n]`) packed into zero-padded panels of the path's panel width `w` (16 for
/// AVX2 and portable, 32 for AVX-512): panel `j` holds rows `p = 0..k` of columns
/// `wj..wj+w`, contiguous. It remembers the path that packed it, and products with it run on
/// that path.
#[derive(Debug, Default)]
pub struct PackedB {
    data: Vec<f32>,
    k: usize,
    n: usize,
    path: SimdPath,
    /// Flipped by every product of up to one register tile of rows: they walk the panels
    /// first to last and last to first in turn (see [`row`]).
    backwards: AtomicBool,
}

impl Clone for PackedB {
    fn clone(&self) -> Self {
        PackedB {
            data: self.data.clone(),
            k: self.k,
            n: self.n,
            path: self.path,
            backwards: AtomicBool::new(false),
        }
    }
}

impl PackedB {
    /// Packs `b` (`[k, n]` when `tb = N`, `[n, k]` when `tb = T`) for [`simd_path`].
    pub fn new(b: &[f32], tb: Trans, k: usize, n: usize) -> Self {
        Self::with_path(simd_path(), b, tb, k, n)
    }

    /// [`PackedB::new`] for a given path (for tests and benchmarks comparing paths); a path the
    /// CPU lacks becomes the fastest one below it.
    #[doc(hidden)]
    pub fn with_path(path: SimdPath, b: &[f32], tb: Trans, k: usize, n: usize) -> Self {
        assert!(b.len() >= k * n, "PackedB: operand too small");
        let path = path.or_supported();
        let nr = path.panel_width();
        let panels = n.div_ceil(nr);
        let mut data = vec![0.0f32; panels * k * nr];
        for jp in 0..panels {
            let panel = &mut data[jp * k * nr..][..k * nr];
            let cols = nr.min(n - jp * nr);
            match tb {
                Trans::N => {
                    for p in 0..k {
                        panel[p * nr..][..cols].copy_from_slice(&b[p * n + jp * nr..][..cols]);
                    }
                }
                Trans::T => {
                    for jj in 0..cols {
                        let src = &b[(jp * nr + jj) * k..][..k];
                        for (p, &v) in src.iter().enumerate() {
                            panel[p * nr + jj] = v;
                        }
                    }
                }
            }
        }
        PackedB {
            data,
            k,
            n,
            path,
            backwards: AtomicBool::new(false),
        }
    }

    /// Rows k of `op(b)`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns n of `op(b)`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The path that packed it (and that products with it take).
    pub fn path(&self) -> SimdPath {
        self.path
    }

    /// Columns per panel.
    fn nr(&self) -> usize {
        self.path.panel_width()
    }
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
    matmul_with_path(simd_path(), c, a, ta, b, tb, m, n, k, accumulate, threads)
}

/// [`matmul`] on a given path (for tests and benchmarks comparing paths); a path the CPU lacks
/// becomes the fastest one below it.
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub fn matmul_with_path(
    path: SimdPath,
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
    match path.or_supported() {
        SimdPath::Portable => fallback(c, a, ta, b, tb, m, n, k, accumulate),
        path => {
            let packed = PackedB::with_path(path, b, tb, k, n);
            matmul_packed(c, a, ta, &packed, m, accumulate, threads);
        }
    }
}

/// [`matmul`] with `op(b)` already packed (reuse it across calls with the same `b`). Runs on
/// the path that packed `b`.
pub fn matmul_packed(
    c: &mut [f32],
    a: &[f32],
    ta: Trans,
    b: &PackedB,
    m: usize,
    accumulate: bool,
    threads: usize,
) {
    let (n, k) = (b.n(), b.k());
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
    let op = Operands {
        a,
        a_rs,
        a_cs,
        b,
        m,
        accumulate,
    };
    match b.path {
        // SAFETY: `PackedB::with_path` only records a path the CPU supports.
        #[cfg(target_arch = "x86_64")]
        SimdPath::Avx512 => unsafe { split::<avx512::Avx512>(c, &op, threads) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        SimdPath::Avx2 => unsafe { split::<avx2::Avx2>(c, &op, threads) },
        // Without SIMD the portable GEMM multiplies the packed panels one by one.
        _ => fallback_packed(c, &op),
    }
}

/// The inputs of one packed product: op(a) as an `[m, k]` view with strides `a_rs`, `a_cs`.
struct Operands<'a> {
    a: &'a [f32],
    a_rs: usize,
    a_cs: usize,
    b: &'a PackedB,
    m: usize,
    accumulate: bool,
}

/// One SIMD path's register kernels. Each computes every element as the chain described in the
/// module docs (`acc = fma(a, b, acc)` over a k-block from 0, then `c = acc` or `c = c + acc`),
/// so all paths give the same bits.
trait Kernel {
    /// Rows of the register tile.
    const MR: usize;
    /// Columns of the register tile (the panel width of the path's [`PackedB`]).
    const NR: usize;
    /// Rows of op(a) packed at a time (a multiple of MR, sized for L2).
    const MC: usize;

    /// The `rows × NR` tile (`rows <= MR`) at depths `0..kc`: `a` is the tile's rows of op(a)
    /// (see [`TileA`]), `panel` `kc × NR` values; the sums go into the first `cols` columns of
    /// `rows` rows of `c` (row stride `ldc`), added when `accumulate`.
    ///
    /// SAFETY: the CPU supports the path; pointers are valid for those extents.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile(
        rows: usize,
        kc: usize,
        a: TileA,
        panel: *const f32,
        c: *mut f32,
        ldc: usize,
        cols: usize,
        accumulate: bool,
    );

    /// One row times `group` (1 to [`ROW_PANELS`]) panels from `jp` on, at depths
    /// `p0..p0+kc`: per element the FMA chain of [`Kernel::tile`] for that row, stored (or
    /// added, when `accumulate`) into `c`.
    ///
    /// SAFETY: the CPU supports the path; `a` holds `kc` values; `c` points to `b.n` floats of
    /// which this call may write the columns of those panels.
    #[allow(clippy::too_many_arguments)]
    unsafe fn row_group(
        group: usize,
        kc: usize,
        a: *const f32,
        b: &PackedB,
        p0: usize,
        jp: usize,
        c: *mut f32,
        accumulate: bool,
    );
}

/// Where a register tile reads its rows of op(a) from.
#[derive(Clone, Copy)]
enum TileA {
    /// A tile packed by [`pack_a`]: `MR` values per depth.
    Packed(*const f32),
    /// op(a) = a in place: row r at depth p is at `ptr + r·lda + p`.
    Rows(*const f32, usize),
}

/// Products over at most this many column panels read op(a) = a in place instead of packing
/// it: packing costs a pass over op(a) that only pays off when many panels reuse the packed
/// tiles (a beam-search step's output layer and attention query have 3 and 4 panels).
const IN_PLACE_MAX_PANELS: usize = 4;

/// Panels a one-row product walks together: 2·`ROW_PANELS` independent FMA chains hide the FMA
/// latency that a single panel's chains would wait on.
const ROW_PANELS: usize = 4;

/// The product of one row `a` (`k` contiguous values of op(a)) for panels `[first, last)`, in
/// the k-blocks of [`KC`], so each element is the same FMA chain as that row inside any larger
/// product.
///
/// A group of panels takes all its k-blocks before the next group, and successive calls with
/// the same `b` walk the groups in opposite directions: a recurrent step's weights slightly
/// larger than L2 (w2's 1 MB `W_hh` on a 1 MB L2) then start where the last step ended, on
/// what it left in L2, instead of streaming all of it from L3 at every step (`backwards`, the
/// direction, alternates per product in [`split`]). Neither order changes any element's chain.
///
/// SAFETY: the CPU supports `K`'s path; `c` points to `b.n` floats of which this call may write
/// the columns of its panels.
unsafe fn row<K: Kernel>(
    c: *mut f32,
    a: &[f32],
    b: &PackedB,
    first: usize,
    last: usize,
    accumulate: bool,
    backwards: bool,
) {
    let k = b.k();
    let groups = (last - first).div_ceil(ROW_PANELS);
    for g in 0..groups {
        let g = if backwards { groups - 1 - g } else { g };
        let jp = first + g * ROW_PANELS;
        let group = ROW_PANELS.min(last - jp);
        let mut p0 = 0;
        while p0 < k {
            let kc = KC.min(k - p0);
            let acc = accumulate || p0 > 0;
            K::row_group(group, kc, a.as_ptr().add(p0), b, p0, jp, c, acc);
            p0 += kc;
        }
    }
}

/// Runs the product on `K`, splitting the column panels among up to `threads` threads.
///
/// SAFETY: the CPU supports `K`'s path; `op.b` was packed for it; `c` holds `m × n` floats.
unsafe fn split<K: Kernel>(c: &mut [f32], op: &Operands, threads: usize) {
    let (m, k, n) = (op.m, op.b.k(), op.b.n());
    let panels = n.div_ceil(K::NR);
    // Up to one tile of rows (a decoder step of a few beams) streams its weights as one row
    // does, and is split by their size; more rows, by the work.
    let (work, min_work) = if m <= K::MR {
        (n * k, ROW_PARALLEL_MIN_WORK)
    } else {
        (m * n * k, PARALLEL_MIN_WORK)
    };
    let threads = if work >= min_work {
        threads.min(available_cores()).clamp(1, panels)
    } else {
        1
    };
    let c_addr = c.as_mut_ptr() as usize;
    // Products of up to one tile of rows stream their weights: see [`row`].
    let backwards = m <= K::MR && op.b.backwards.fetch_xor(true, Ordering::Relaxed);
    let run = |first: usize, last: usize| {
        if m == 1 {
            // One row (a matrix-vector product): op(a) is contiguous whatever `ta`, no packing.
            // SAFETY: as below; the row has k elements.
            return unsafe {
                row::<K>(
                    c_addr as *mut f32,
                    &op.a[..k],
                    op.b,
                    first,
                    last,
                    op.accumulate,
                    backwards,
                )
            };
        }
        thread_local!(static APACK: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) });
        // SAFETY: each call writes only the columns of its own panels [first, last) of `c`.
        APACK.with(|buf| unsafe {
            let panels = Panels {
                first,
                last,
                backwards,
            };
            product::<K>(c_addr as *mut f32, op, panels, &mut buf.borrow_mut())
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

/// The column panels `[first, last)` of a product, walked last to first when `backwards`.
#[derive(Clone, Copy)]
struct Panels {
    first: usize,
    last: usize,
    backwards: bool,
}

/// The whole product for panels `[first, last)`: fixed k-blocks in order (every element's sum
/// is the same chain whatever m and n), chunks of [`Kernel::MC`] rows packed, register tiles.
///
/// SAFETY: as [`split`]; this call may write the columns of its panels of `c`.
unsafe fn product<K: Kernel>(c: *mut f32, op: &Operands, panels: Panels, apack: &mut Vec<f32>) {
    let Panels {
        first,
        last,
        backwards,
    } = panels;
    let (b, m) = (op.b, op.m);
    let (n, k) = (b.n(), b.k());
    // Chunks of rows outermost: a chunk's rows of `c` (MC × n floats, L3-sized) take all their
    // k-blocks before the next chunk, instead of every k-block sweeping all of `c` through DRAM
    // (w1's 3200 × 2048 input projections). Each element still gets its k-blocks in order.
    // op(a) read in place: a packing pass would cost about as much as the product itself.
    let in_place = op.a_cs == 1 && last - first <= IN_PLACE_MAX_PANELS;
    let mut i0 = 0;
    while i0 < m {
        let rows = K::MC.min(m - i0);
        let mut p0 = 0;
        while p0 < k {
            let kc = KC.min(k - p0);
            let acc = op.accumulate || p0 > 0;
            if !in_place {
                pack_a::<K>(op, i0, rows, p0, kc, apack);
            }
            for j in 0..last - first {
                let jp = if backwards { last - 1 - j } else { first + j };
                let panel = b.data.as_ptr().add(jp * k * K::NR + p0 * K::NR);
                let cols = K::NR.min(n - jp * K::NR);
                for t in 0..rows.div_ceil(K::MR) {
                    let r = K::MR.min(rows - t * K::MR);
                    let a = if in_place {
                        let row = i0 + t * K::MR;
                        TileA::Rows(op.a.as_ptr().add(row * op.a_rs + p0), op.a_rs)
                    } else {
                        TileA::Packed(apack.as_ptr().add(t * kc * K::MR))
                    };
                    let cp = c.add((i0 + t * K::MR) * n + jp * K::NR);
                    K::tile(r, kc, a, panel, cp, n, cols, acc);
                }
            }
            p0 += kc;
        }
        i0 += rows;
    }
}

/// The largest register tile height of any path.
const MAX_MR: usize = 16;

/// Packs rows `i0..i0+rows` and depths `p0..p0+kc` of op(a) into tiles of `mr = K::MR` rows:
/// tile t holds, for each p, rows `mr·t..mr·t+mr` contiguous (zero-padded).
fn pack_a<K: Kernel>(
    op: &Operands,
    i0: usize,
    rows: usize,
    p0: usize,
    kc: usize,
    out: &mut Vec<f32>,
) {
    let (a, a_rs, a_cs, mr) = (op.a, op.a_rs, op.a_cs, K::MR);
    assert!(mr <= MAX_MR);
    let tiles = rows.div_ceil(mr);
    // Every element is overwritten below, so the buffer is only grown, never cleared.
    if out.len() < tiles * kc * mr {
        out.resize(tiles * kc * mr, 0.0);
    }
    for t in 0..tiles {
        let dst = &mut out[t * kc * mr..][..kc * mr];
        let live = mr.min(rows - t * mr);
        if a_rs == 1 && live == K::MR {
            // op(a) = aᵀ: the tile's rows are contiguous in memory for each p. A copy of a
            // constant length compiles to a few vector moves (a variable one called memmove
            // for every p).
            for p in 0..kc {
                let src = (i0 + t * mr) + (p0 + p) * a_cs;
                dst[p * K::MR..][..K::MR].copy_from_slice(&a[src..][..K::MR]);
            }
        } else if a_rs == 1 {
            for p in 0..kc {
                let src = (i0 + t * mr) + (p0 + p) * a_cs;
                dst[p * mr..p * mr + live].copy_from_slice(&a[src..src + live]);
            }
        } else {
            // op(a) = a: each row of the tile is contiguous in memory. Walking p outermost
            // writes the tile sequentially (row by row it wrote with a stride of mr, which took
            // several cycles per element); the rows are read as `live` sequential streams.
            let mut src: [&[f32]; MAX_MR] = [&[]; MAX_MR];
            for (r, s) in src[..live].iter_mut().enumerate() {
                let base = (i0 + t * mr + r) * a_rs + p0 * a_cs;
                *s = &a[base..][..(kc - 1) * a_cs + 1];
            }
            let src = &src[..live];
            for (p, d) in dst.chunks_exact_mut(mr).enumerate() {
                for (d, s) in d.iter_mut().zip(src) {
                    *d = s[p * a_cs];
                }
            }
        }
        // Rows past the end are zero so that the full tile stays a fixed computation.
        for r in live..mr {
            for p in 0..kc {
                dst[p * mr + r] = 0.0;
            }
        }
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

/// Portable path with `op(b)` packed: `matrixmultiply` on one panel at a time.
fn fallback_packed(c: &mut [f32], op: &Operands) {
    let (b, m) = (op.b, op.m);
    let (n, k, nr) = (b.n(), b.k(), b.nr());
    for jp in 0..n.div_ceil(nr) {
        let panel = &b.data[jp * k * nr..][..k * nr];
        // SAFETY: strides describe an [m, k] view inside `a`; the panel is [k, nr].
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                nr.min(n - jp * nr),
                1.0,
                op.a.as_ptr(),
                op.a_rs as isize,
                op.a_cs as isize,
                panel.as_ptr(),
                nr as isize,
                1,
                if op.accumulate { 1.0 } else { 0.0 },
                c.as_mut_ptr().add(jp * nr),
                n as isize,
                1,
            );
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
    fn recur_simd_forces_a_supported_path_or_falls_back() {
        let best = SimdPath::best();
        assert_eq!(choose_path(None), best);
        assert_eq!(choose_path(Some("auto")), best);
        assert_eq!(choose_path(Some("not-a-path")), best);
        assert_eq!(choose_path(Some("portable")), SimdPath::Portable);
        for path in SimdPath::ALL {
            let got = choose_path(Some(path.name()));
            assert!(got <= path && got.is_supported(), "{path:?} gave {got:?}");
            assert_eq!(got == path, path.is_supported());
        }
        assert!(simd_path().is_supported());
    }

    #[test]
    fn packed_b_keeps_its_path_and_panel_width() {
        let b = data(40 * 3, 1);
        for path in SimdPath::ALL {
            let packed = PackedB::with_path(path, &b, Trans::N, 3, 40);
            assert_eq!(packed.path(), path.or_supported());
            let nr = packed.path().panel_width();
            assert_eq!(packed.data.len(), 40usize.div_ceil(nr) * 3 * nr);
        }
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
        // n·k above ROW_PARALLEL_MIN_WORK: a few rows split among threads too.
        let (n, k) = (260, 300);
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
        for (m, threads) in [(6, 1), (6, 2), (17, 2), (70, 2), (64, 1)] {
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
        // (300, 600): several groups of panels and k-blocks, walked both ways.
        for &(n, k) in &[
            (16, 5),
            (48, 300),
            (70, 513),
            (130, 256),
            (1, 9),
            (200, 40),
            (300, 600),
        ] {
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
                    // One-row products with one `PackedB` walk its panels forwards and
                    // backwards in turn: this one goes the other way.
                    let mut one_back = init[r * n..(r + 1) * n].to_vec();
                    matmul_packed(&mut one_back, row, Trans::N, &packed, 1, accumulate, 1);
                    assert_eq!(one_back, one, "n={n} k={k} row {r} (backwards)");
                    let mut one_t = init[r * n..(r + 1) * n].to_vec();
                    matmul_packed(&mut one_t, row, Trans::T, &packed, 1, accumulate, 2);
                    assert_eq!(one_t, one, "n={n} k={k} row {r} (T)");
                }
            }
        }
    }
}
