//! Row-major f32 matrix multiply, the one place recur calls its GEMM crate.
//!
//! Guarantee: each row of the result depends only on that row of `op(a)` and on `op(b)`, never
//! on how many rows are multiplied together or at which position (batch-composition invariance).
//!
//! `c = op(a) · op(b) (+ c when accumulating)`, where `op(x)` is `x` or its transpose. Every
//! operand is a contiguous row-major matrix; `Trans::T` means the buffer holds the transpose
//! (e.g. a PyTorch weight `[out, in]` used as `x · Wᵀ`).

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
    debug_assert!(c.len() >= m * n, "matmul: c too small");
    debug_assert!(a.len() >= m * k, "matmul: a too small");
    debug_assert!(b.len() >= k * n, "matmul: b too small");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return;
    }
    // Strides (in elements) of op(a) and op(b) as [rows, cols] views.
    let (a_rs, a_cs) = match ta {
        Trans::N => (k as isize, 1),
        Trans::T => (1, m as isize),
    };
    let (b_rs, b_cs) = match tb {
        Trans::N => (n as isize, 1),
        Trans::T => (1, k as isize),
    };
    // matrixmultiply sizes its own thread pool (RMM_NTHREADS); `threads` is the caller's budget.
    let _ = threads;
    // SAFETY: the slices are at least as long as the strided views read and written.
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

    #[test]
    fn all_transpose_combinations_match_naive() {
        let (m, n, k) = (7, 5, 9);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 37 % 17) as f32 - 8.0) / 7.0)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 11 % 13) as f32 - 6.0) / 5.0)
            .collect();
        for ta in [Trans::N, Trans::T] {
            for tb in [Trans::N, Trans::T] {
                let want = naive(&a, ta, &b, tb, m, n, k);
                let mut c = vec![1.0f32; m * n];
                matmul(&mut c, &a, ta, &b, tb, m, n, k, false, 1);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-4, "{ta:?}{tb:?}: {x} vs {y}");
                }
                matmul(&mut c, &a, ta, &b, tb, m, n, k, true, 2);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - 2.0 * y).abs() < 2e-4, "accumulate {ta:?}{tb:?}");
                }
            }
        }
    }
}
