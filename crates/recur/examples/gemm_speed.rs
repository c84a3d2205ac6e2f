//! GEMM throughput on the recurrent workloads' shapes:
//! `cargo run --release --example gemm_speed [-- FILTER [THREADS]]` (FILTER: a substring of the
//! shape names; THREADS: 1 and 2 when omitted). Runs on the process's SIMD path
//! (`RECUR_SIMD=avx512|avx2|portable` forces one). Wall-clock medians are noisy when other
//! processes share the cores: for A/B comparisons of kernel changes, `perf stat -e cycles:u` on
//! one filtered shape counts only this process's cycles.
use recur::gemm::{matmul, matmul_packed, simd_path, PackedB, Trans};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filter = args.first().cloned().unwrap_or_default();
    let threads: Vec<usize> = match args.get(1).and_then(|t| t.parse().ok()) {
        Some(t) => vec![t],
        None => vec![1, 2],
    };
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
            "input proj 3200x2048x1024 (N,T)",
            3200,
            2048,
            1024,
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
        // One row through g2p_en's GRU weights (768 = 3 gates × 256), packed once: the
        // batch-1 step of w4-g2p-b1, its weights resident in L2 (786 KB).
        ("step 1x768x256 (N,T)", 1, 768, 256, Trans::N, Trans::T),
        // One row through weights of 256 KB (in L2), 1 MB (w2-lstm-infer's `W_hh`: a whole
        // Zen 5 L2) and 4 MB (from L3): the rate at which a batch-1 step streams its weights.
        ("step 1x256x256 (N,T)", 1, 256, 256, Trans::N, Trans::T),
        ("step 1x1024x256 (N,T)", 1, 1024, 256, Trans::N, Trans::T),
        ("step 1x4096x256 (N,T)", 1, 4096, 256, Trans::N, Trans::T),
        // Beam-search decoder steps of hi-translit at batch 256 × beam 4 (weights packed once):
        // the gates, the attention query and the output layer.
        (
            "beam gates 1024x1024x256 (N,T)",
            1024,
            1024,
            256,
            Trans::N,
            Trans::T,
        ),
        (
            "beam query 1024x128x256 (N,T)",
            1024,
            128,
            256,
            Trans::N,
            Trans::T,
        ),
        (
            "beam out 1024x67x576 (N,T)",
            1024,
            67,
            576,
            Trans::N,
            Trans::T,
        ),
    ];
    println!("path {}", simd_path().name());
    for &threads in &threads {
        for &(name, m, n, k, ta, tb) in shapes.iter().filter(|s| s.0.contains(&filter)) {
            let a = vec![0.5f32; m * k];
            let b = vec![0.25f32; k * n];
            let mut c = vec![0.0f32; m * n];
            let reps = (2e9 / (2.0 * (m * n * k) as f64)).clamp(3.0, 2000.0) as usize;
            // The weights of a recurrence or a decoder step are packed once and reused (the
            // "beam" and "step" shapes); gradients and one-off products pack at every call.
            let prepacked = name.starts_with("beam") || name.starts_with("step");
            let packed = prepacked.then(|| PackedB::new(&b, tb, k, n));
            let run = |c: &mut [f32]| match &packed {
                Some(p) => matmul_packed(c, &a, ta, p, m, false, threads),
                None => matmul(c, &a, ta, &b, tb, m, n, k, false, threads),
            };
            run(&mut c);
            let (mut times, mut cpu) = (vec![], vec![]);
            for _ in 0..5 {
                let (t0, c0) = (Instant::now(), cpu_secs());
                for _ in 0..reps {
                    run(&mut c);
                }
                times.push(t0.elapsed().as_secs_f64() / reps as f64);
                cpu.push((cpu_secs() - c0) / reps as f64);
            }
            times.sort_by(f64::total_cmp);
            cpu.sort_by(f64::total_cmp);
            let (t, tc) = (times[2], cpu[2]);
            let gflops = |s: f64| 2.0 * (m * n * k) as f64 / s / 1e9;
            // A step's weights are read once per call: their rate is what bounds it.
            let streamed = match prepacked && m == 1 {
                true => format!(", weights {:.0} GB/s", (4 * n * k) as f64 / t / 1e9),
                false => String::new(),
            };
            println!(
                "threads={threads} {name:<34} {:>8.3} ms {:>7.1} GFLOP/s (this thread's CPU time: {:.1} GFLOP/s){streamed}",
                t * 1e3,
                gflops(t),
                gflops(tc)
            );
        }
    }
}

/// This thread's CPU time in seconds (Linux `/proc/thread-self/schedstat`; NaN elsewhere): time
/// the scheduler gave other processes is not in it.
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns * 1e-9)
}
