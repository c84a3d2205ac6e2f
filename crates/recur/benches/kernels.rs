//! `cargo bench --bench kernels [-- THREADS]`: the hot kernels alone, one JSON line each
//! (median of repeated runs after a warm-up), and the machine's measured FMA peak, so that every
//! GEMM line says what fraction of it the kernel reaches.
//!
//! * `fma-peak`: 12 independent 8-lane FMA chains per thread (what the 6×16 GEMM tile can at
//!   best issue): the ceiling for f32 matrix products here.
//! * `gemm MxNxK`: `c += a · bᵀ` with `b` packed once (as a recurrence reuses its weights), at
//!   the shapes of the benchmark workloads: w1's input projection and recurrence, the decoder's
//!   batch-1 step of w3 and g2p_en's recurrence.
//! * `lstm-fwd`, `lstm-bwd`, `gru-fwd`, `gru-bwd`: the fused gate kernels, 64 rows × hidden 512.
//!
//! Not run by CI (benchmarks are never timed tests); compare runs on the same machine only.

use std::hint::black_box;
use std::time::Instant;

use recur::gemm::{matmul_packed, set_num_threads, PackedB, Trans};
use recur::kernels::{gru, lstm};

/// Median seconds of `runs` calls after `warmup` calls.
fn median_secs(warmup: usize, runs: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        f();
    }
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[runs / 2]
}

/// Deterministic values in [-1, 1).
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// FLOP/s of 12 independent FMA chains on each of `threads` threads.
#[cfg(target_arch = "x86_64")]
fn fma_peak(threads: usize) -> f64 {
    use std::arch::x86_64::*;
    if !recur::gemm::has_simd() {
        return f64::NAN;
    }
    const ITERS: usize = 20_000_000;
    #[target_feature(enable = "avx2,fma")]
    unsafe fn chains() -> f32 {
        let mut a = [_mm256_set1_ps(0.5); 12];
        let (x, y) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        for _ in 0..ITERS {
            for v in a.iter_mut() {
                *v = _mm256_fmadd_ps(*v, x, y);
            }
        }
        let mut out = [0.0f32; 8];
        _mm256_storeu_ps(out.as_mut_ptr(), a[0]);
        out[0]
    }
    let secs = median_secs(1, 5, || {
        std::thread::scope(|s| {
            for _ in 0..threads {
                // SAFETY: has_simd() checked AVX2 and FMA.
                s.spawn(|| black_box(unsafe { chains() }));
            }
        });
    });
    (2 * 8 * 12 * ITERS * threads) as f64 / secs
}

#[cfg(not(target_arch = "x86_64"))]
fn fma_peak(_threads: usize) -> f64 {
    f64::NAN
}

/// One JSON line; with `flops`, the rate and its fraction of the measured peak.
fn line(name: &str, threads: usize, secs: f64, flops: Option<f64>, peak: f64) {
    let rate = flops.map_or(String::new(), |f| {
        format!(
            ",\"gflops\":{:.1},\"of_peak\":{:.2}",
            f / secs / 1e9,
            f / secs / peak
        )
    });
    println!(
        "{{\"kernel\":\"{name}\",\"threads\":{threads},\"median_us\":{:.2}{rate}}}",
        secs * 1e6
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a bare number is the thread count (default 1).
    let threads = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(1);
    set_num_threads(threads);
    let peak = fma_peak(threads);
    println!(
        "{{\"kernel\":\"fma-peak\",\"threads\":{threads},\"gflops\":{:.1}}}",
        peak / 1e9
    );

    // (M, N, K): rows, output columns, depth.
    let shapes = [
        ("w1 input projection", 3200, 2048, 256),
        ("w1 recurrence step", 64, 2048, 512),
        ("w3 decoder step b1", 1, 2048, 640),
        ("g2p_en recurrence b1", 1, 768, 256),
        ("g2p_en recurrence b256", 256, 768, 256),
    ];
    for (what, m, n, k) in shapes {
        let a = data(m * k, 1);
        let b = PackedB::new(&data(n * k, 2), Trans::T, k, n);
        let mut c = vec![0.0f32; m * n];
        let runs = if m * n * k > 1 << 28 { 7 } else { 101 };
        let secs = median_secs(3, runs, || {
            matmul_packed(&mut c, &a, Trans::N, &b, m, true, threads);
            black_box(&c);
        });
        let name = format!("gemm {m}x{n}x{k} ({what})");
        line(&name, threads, secs, Some((2 * m * n * k) as f64), peak);
    }

    // Gate kernels (single-threaded), 64 rows, hidden 512; FLOPs are not counted for them.
    let (rows, h) = (64, 512);
    let mut gates = data(rows * 4 * h, 3);
    let (mut c, mut hh, mut tc) = (data(rows * h, 4), vec![0.0; rows * h], vec![0.0; rows * h]);
    let fresh = gates.clone();
    let secs = median_secs(10, 201, || {
        gates.copy_from_slice(&fresh);
        lstm::forward(rows, h, &mut gates, &mut c, &mut hh, &mut tc);
    });
    line("lstm-fwd 64x512", 1, secs, None, peak);
    let (dh, mut dc, mut dg) = (
        data(rows * h, 5),
        data(rows * h, 6),
        vec![0.0; rows * 4 * h],
    );
    let c_prev = data(rows * h, 7);
    let secs = median_secs(10, 201, || {
        lstm::backward(rows, h, &gates, &c_prev, &tc, &dh, &mut dc, &mut dg);
    });
    line("lstm-bwd 64x512", 1, secs, None, peak);
    let (mut xg, mut hg) = (data(rows * 3 * h, 8), data(rows * 3 * h, 9));
    let (xg0, hg0, b_hh) = (xg.clone(), hg.clone(), data(3 * h, 10));
    let mut state = data(rows * h, 11);
    let secs = median_secs(10, 201, || {
        xg.copy_from_slice(&xg0);
        hg.copy_from_slice(&hg0);
        gru::forward(rows, h, &mut xg, &mut hg, Some(&b_hh), &mut state);
    });
    line("gru-fwd 64x512", 1, secs, None, peak);
    let h_prev = data(rows * h, 12);
    let (mut dh2, mut dxg, mut dhg) = (
        data(rows * h, 13),
        vec![0.0; rows * 3 * h],
        vec![0.0; rows * 3 * h],
    );
    let secs = median_secs(10, 201, || {
        gru::backward(rows, h, &xg, &hg, &h_prev, &mut dh2, &mut dxg, &mut dhg);
    });
    line("gru-bwd 64x512", 1, secs, None, peak);
}
