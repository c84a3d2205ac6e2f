//! `cargo bench --bench kernels [-- THREADS]`: the hot kernels alone, one JSON line each
//! (median of repeated runs after a warm-up), on every SIMD path the CPU has, and each path's
//! measured FMA peak, so that every GEMM line says what fraction of its own path's peak it reaches.
//!
//! * `fma-peak` per path: independent FMA chains on each thread, as many as that path's GEMM tile
//!   has accumulators (AVX2: 12 × 8 lanes; AVX-512: 24 × 16 lanes), all folded into the result.
//! * `gemm MxNxK`: at the shapes of the benchmark workloads (w1's input projections, recurrence
//!   steps and gradients, the decoder's batch-1 step of w3, g2p_en's recurrence); with op(b)
//!   packed once (as a recurrence reuses its weights) unless the shape is a weight or input
//!   gradient (packed at every call, as training does). Paths are timed interleaved.
//! * `lstm-fwd`, `lstm-bwd`, `gru-fwd`, `gru-bwd`: the fused gate kernels, 64 rows × hidden 512.
//!
//! Not run by CI (benchmarks are never timed tests); compare runs on the same machine only.

use std::hint::black_box;
use std::time::Instant;

use recur::gemm::{matmul_packed, matmul_with_path, set_num_threads, PackedB, SimdPath, Trans};
use recur::kernels::{gru, lstm};

/// Seconds of each of `runs` calls after `warmup` calls.
fn samples(warmup: usize, runs: usize, mut f: impl FnMut()) -> Vec<f64> {
    for _ in 0..warmup {
        f();
    }
    (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect()
}

/// Median seconds of `runs` calls after `warmup` calls.
fn median_secs(warmup: usize, runs: usize, f: impl FnMut()) -> f64 {
    let mut t = samples(warmup, runs, f);
    t.sort_by(f64::total_cmp);
    t[runs / 2]
}

/// Fastest seconds of `runs` calls after `warmup` calls.
fn fastest_secs(warmup: usize, runs: usize, f: impl FnMut()) -> f64 {
    samples(warmup, runs, f)
        .into_iter()
        .fold(f64::INFINITY, f64::min)
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

/// The per-thread FMA loop of a path: `CHAINS` independent chains (the accumulators of that
/// path's GEMM tile), every one folded into the result so that none is dead code. (The first
/// version returned only chain 0: LLVM deleted the 11 others, and the line reported 12× the
/// work done, 399.6 GFLOP/s for two cores.) `x`, `y` come through `black_box`, so nothing folds.
#[cfg(target_arch = "x86_64")]
#[clippy::msrv = "1.89"] // AVX-512 intrinsics
mod peak {
    use std::arch::x86_64::*;

    /// Loop iterations per thread (each issues CHAINS vector FMAs).
    pub const ITERS: usize = 1_000_000;
    /// 6×16 AVX2 tile: 12 ymm accumulators.
    pub const CHAINS_256: usize = 12;
    /// 12×32 AVX-512 tile: 24 zmm accumulators.
    pub const CHAINS_512: usize = 24;

    /// SAFETY: the CPU supports AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn chains_256(x: f32, y: f32) -> f32 {
        let (x, y) = (_mm256_set1_ps(x), _mm256_set1_ps(y));
        let mut a: [__m256; CHAINS_256] = std::array::from_fn(|i| _mm256_set1_ps(i as f32));
        for _ in 0..ITERS {
            for v in a.iter_mut() {
                *v = _mm256_fmadd_ps(*v, x, y);
            }
        }
        let s = a
            .iter()
            .fold(_mm256_setzero_ps(), |s, &v| _mm256_add_ps(s, v));
        let mut out = [0.0f32; 8];
        _mm256_storeu_ps(out.as_mut_ptr(), s);
        out.iter().sum()
    }

    /// SAFETY: the CPU supports AVX-512F.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn chains_512(x: f32, y: f32) -> f32 {
        let (x, y) = (_mm512_set1_ps(x), _mm512_set1_ps(y));
        let mut a: [__m512; CHAINS_512] = std::array::from_fn(|i| _mm512_set1_ps(i as f32));
        for _ in 0..ITERS {
            for v in a.iter_mut() {
                *v = _mm512_fmadd_ps(*v, x, y);
            }
        }
        let s = a
            .iter()
            .fold(_mm512_setzero_ps(), |s, &v| _mm512_add_ps(s, v));
        _mm512_reduce_add_ps(s)
    }
}

/// Measured FLOP/s of independent FMA chains of `path`'s vector width on each of `threads`
/// threads (NaN when the CPU lacks the path).
#[cfg(target_arch = "x86_64")]
fn fma_peak(path: SimdPath, threads: usize) -> f64 {
    if path == SimdPath::Portable || !path.is_supported() {
        return f64::NAN;
    }
    let (lanes, chains) = match path {
        SimdPath::Avx512 => (16, peak::CHAINS_512),
        _ => (8, peak::CHAINS_256),
    };
    // The fastest of many short runs: the loop touches no memory, so other processes on the
    // cores can only slow a run down, and the best run is the one closest to the hardware.
    let secs = fastest_secs(2, 41, || {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    let (x, y) = (black_box(0.999_999f32), black_box(1e-7f32));
                    // SAFETY: `path.is_supported()` checked the features each loop needs.
                    black_box(unsafe {
                        match path {
                            SimdPath::Avx512 => peak::chains_512(x, y),
                            _ => peak::chains_256(x, y),
                        }
                    })
                });
            }
        });
    });
    (2 * lanes * chains * peak::ITERS * threads) as f64 / secs
}

#[cfg(not(target_arch = "x86_64"))]
fn fma_peak(_path: SimdPath, _threads: usize) -> f64 {
    f64::NAN
}

/// One JSON line; with `flops`, the rate and its fraction of the measured peak.
fn line(name: &str, path: SimdPath, threads: usize, secs: f64, flops: Option<f64>, peak: f64) {
    let rate = flops.map_or(String::new(), |f| {
        format!(
            ",\"gflops\":{:.1},\"of_peak\":{:.2}",
            f / secs / 1e9,
            f / secs / peak
        )
    });
    println!(
        "{{\"kernel\":\"{name}\",\"path\":\"{}\",\"threads\":{threads},\"median_us\":{:.2}{rate}}}",
        path.name(),
        secs * 1e6
    );
}

/// The SIMD paths this CPU can run.
fn paths() -> Vec<SimdPath> {
    [SimdPath::Avx2, SimdPath::Avx512]
        .into_iter()
        .filter(|p| p.is_supported())
        .collect()
}

fn main() {
    // `cargo bench` passes `--bench`; a bare number is the thread count (default 1).
    let threads = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(1);
    set_num_threads(threads);
    let mut peaks = Vec::new();
    for path in paths() {
        let peak = fma_peak(path, threads);
        println!(
            "{{\"kernel\":\"fma-peak\",\"path\":\"{}\",\"threads\":{threads},\"gflops\":{:.1}}}",
            path.name(),
            peak / 1e9
        );
        peaks.push((path, peak));
    }

    // (M, N, K, op(a), op(b), packed): rows, output columns, depth; `packed` times
    // `matmul_packed` with op(b) packed once, else `matmul` (which packs it at every call).
    let shapes = [
        (
            "w1 input projection L1",
            3200,
            2048,
            256,
            Trans::N,
            Trans::T,
            true,
        ),
        (
            "w1 input projection L2",
            3200,
            2048,
            1024,
            Trans::N,
            Trans::T,
            true,
        ),
        (
            "w1 recurrence step",
            64,
            2048,
            512,
            Trans::N,
            Trans::T,
            true,
        ),
        (
            "w1 recurrence dh step",
            64,
            512,
            2048,
            Trans::N,
            Trans::N,
            true,
        ),
        (
            "w1 weight gradient L2",
            2048,
            1024,
            3200,
            Trans::T,
            Trans::N,
            false,
        ),
        (
            "w1 input gradient L2",
            3200,
            1024,
            2048,
            Trans::N,
            Trans::N,
            false,
        ),
        ("w3 decoder step b1", 1, 2048, 640, Trans::N, Trans::T, true),
        (
            "g2p_en recurrence b1",
            1,
            768,
            256,
            Trans::N,
            Trans::T,
            true,
        ),
        (
            "g2p_en recurrence b256",
            256,
            768,
            256,
            Trans::N,
            Trans::T,
            true,
        ),
    ];
    for (what, m, n, k, ta, tb, packed) in shapes {
        let a = data(m * k, 1);
        let b = data(n * k, 2);
        let mut c = vec![0.0f32; m * n];
        let runs = if m * n * k > 1 << 28 { 7 } else { 101 };
        // Paths interleaved, so that a burst of load from other processes hits both alike.
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); peaks.len()];
        for _ in 0..3 {
            for (i, &(path, _)) in peaks.iter().enumerate() {
                let pb = PackedB::with_path(path, &b, tb, k, n);
                times[i].extend(samples(2, runs / 3 + 1, || {
                    if packed {
                        matmul_packed(&mut c, &a, ta, &pb, m, true, threads);
                    } else {
                        matmul_with_path(path, &mut c, &a, ta, &b, tb, m, n, k, false, threads);
                    }
                    black_box(&c);
                }));
            }
        }
        let flops = (2 * m * n * k) as f64;
        for (i, &(path, peak)) in peaks.iter().enumerate() {
            let t = &mut times[i];
            t.sort_by(f64::total_cmp);
            let name = format!("gemm {m}x{n}x{k} {ta:?}{tb:?} ({what})");
            line(&name, path, threads, t[t.len() / 2], Some(flops), peak);
            println!(
                "{{\"kernel\":\"{name}\",\"path\":\"{}\",\"threads\":{threads},\"stat\":\"fastest\",\"gflops\":{:.1},\"of_peak\":{:.2}}}",
                path.name(),
                flops / t[0] / 1e9,
                flops / t[0] / peak
            );
        }
    }

    // Gate kernels (single-threaded), 64 rows, hidden 512; FLOPs are not counted for them.
    for &(path, _) in &peaks {
        gates(path);
    }
}

/// The fused gate kernels on `path`, 64 rows × hidden 512, single-threaded.
fn gates(path: SimdPath) {
    let (rows, h) = (64, 512);
    let mut gates = data(rows * 4 * h, 3);
    let (mut c, mut hh, mut tc) = (data(rows * h, 4), vec![0.0; rows * h], vec![0.0; rows * h]);
    let fresh = gates.clone();
    let secs = median_secs(10, 201, || {
        gates.copy_from_slice(&fresh);
        lstm::forward_on(path, rows, h, &mut gates, &mut c, &mut hh, &mut tc);
    });
    line("lstm-fwd 64x512", path, 1, secs, None, f64::NAN);
    let (dh, mut dc, mut dg) = (
        data(rows * h, 5),
        data(rows * h, 6),
        vec![0.0; rows * 4 * h],
    );
    let c_prev = data(rows * h, 7);
    let secs = median_secs(10, 201, || {
        lstm::backward_on(path, rows, h, &gates, &c_prev, &tc, &dh, &mut dc, &mut dg);
    });
    line("lstm-bwd 64x512", path, 1, secs, None, f64::NAN);
    let (mut xg, mut hg) = (data(rows * 3 * h, 8), data(rows * 3 * h, 9));
    let (xg0, hg0, b_hh) = (xg.clone(), hg.clone(), data(3 * h, 10));
    let mut state = data(rows * h, 11);
    let secs = median_secs(10, 201, || {
        xg.copy_from_slice(&xg0);
        hg.copy_from_slice(&hg0);
        gru::forward_on(path, rows, h, &mut xg, &mut hg, Some(&b_hh), &mut state);
    });
    line("gru-fwd 64x512", path, 1, secs, None, f64::NAN);
    let h_prev = data(rows * h, 12);
    let (mut dh2, mut dxg, mut dhg) = (
        data(rows * h, 13),
        vec![0.0; rows * 3 * h],
        vec![0.0; rows * 3 * h],
    );
    let secs = median_secs(10, 201, || {
        gru::backward_on(
            path, rows, h, &xg, &hg, &h_prev, &mut dh2, &mut dxg, &mut dhg,
        );
    });
    line("gru-bwd 64x512", path, 1, secs, None, f64::NAN);
}
