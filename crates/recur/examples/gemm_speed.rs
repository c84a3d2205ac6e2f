//! GEMM throughput on the recurrent workloads' shapes (cargo run --release --example gemm_speed).
use recur::gemm::{matmul, Trans};
use std::time::Instant;

fn main() {
    let shapes = [
        (
            "input proj 3200x2048x256 (N,T)",
            3200,
            2048,
            256,
            Trans::N,
            Trans::T,
        ),
        (
            "recurrence 64x2048x512 (N,T)",
            64,
            2048,
            512,
            Trans::N,
            Trans::T,
        ),
        (
            "batch-1 step 1x1024x256 (N,T)",
            1,
            1024,
            256,
            Trans::N,
            Trans::T,
        ),
        (
            "weight grad 2048x512x3200 (T,N)",
            2048,
            512,
            3200,
            Trans::T,
            Trans::N,
        ),
        ("dh 64x512x2048 (N,N)", 64, 512, 2048, Trans::N, Trans::N),
    ];
    for threads in [1, 2] {
        for &(name, m, n, k, ta, tb) in &shapes {
            let a = vec![0.5f32; m * k];
            let b = vec![0.25f32; k * n];
            let mut c = vec![0.0f32; m * n];
            let reps = (2e9 / (2.0 * (m * n * k) as f64)).clamp(3.0, 2000.0) as usize;
            matmul(&mut c, &a, ta, &b, tb, m, n, k, false, threads);
            let mut times = vec![];
            for _ in 0..5 {
                let t0 = Instant::now();
                for _ in 0..reps {
                    matmul(&mut c, &a, ta, &b, tb, m, n, k, false, threads);
                }
                times.push(t0.elapsed().as_secs_f64() / reps as f64);
            }
            times.sort_by(f64::total_cmp);
            let t = times[2];
            println!(
                "threads={threads} {name:<34} {:>8.3} ms {:>7.1} GFLOP/s",
                t * 1e3,
                2.0 * (m * n * k) as f64 / t / 1e9
            );
        }
    }
}
