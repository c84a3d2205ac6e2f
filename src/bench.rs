//! Named benchmark workloads with counted FLOPs: `recur bench` prints one JSON line each.
//!
//! FLOPs count 2 per multiply-add of the GEMMs only (element-wise work is not counted), with
//! the same formulas as `bench/FLOPS.md` uses for PyTorch.

use std::time::Instant;

use serde::Serialize;

use crate::error::Result;
use crate::module::seeded_rng;
use crate::nn::{RnnConfig, RnnMode};
use crate::tensor::Tensor;

/// One benchmark result, printed as a JSON line.
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    /// `recur`.
    #[serde(rename = "impl")]
    pub implementation: &'static str,
    /// Workload name, e.g. `w1-lstm`.
    pub workload: String,
    /// Median wall time of one run, milliseconds.
    pub median_ms: f64,
    /// Timed runs (after warm-up).
    pub runs: usize,
    /// Kernel threads.
    pub threads: usize,
    /// Tokens (time steps × batch) per second.
    pub tokens_per_s: f64,
    /// Achieved GFLOP/s from the counted FLOPs.
    pub gflops: f64,
    /// Peak resident set size of the process so far, MiB.
    pub peak_rss_mb: f64,
}

/// The workloads `recur bench` knows.
pub const WORKLOADS: &[&str] = &["w1-lstm", "w1-gru"];

/// GEMM FLOPs of a stacked recurrent layer's forward pass over `steps × batch` tokens:
/// per layer and direction `2·T·B·G·H·(I_l + Hout)` (input projection + recurrence).
pub fn rnn_forward_flops(cfg: &RnnConfig, steps: usize, batch: usize) -> f64 {
    let gh = (cfg.mode.gates() * cfg.hidden_size) as f64;
    let tokens = (steps * batch) as f64;
    (0..cfg.num_layers)
        .map(|l| {
            let input = if l == 0 {
                cfg.input_size
            } else {
                cfg.output_size()
            } as f64;
            2.0 * tokens * gh * (input + cfg.state_size() as f64) * cfg.num_directions() as f64
        })
        .sum()
}

/// Peak RSS of this process in MiB (Linux `VmHWM`; 0 elsewhere).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Median wall time in ms of `runs` calls after `warmup` calls.
pub fn time_median(warmup: usize, runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..warmup {
        f()?;
    }
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = Instant::now();
        f()?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// W1: training step (forward + backward of `sum(output)`) of a 2-layer bidirectional layer,
/// input 256, hidden 512, seq 50, batch 64.
fn w1(mode: RnnMode, runs: usize) -> Result<(f64, f64, f64)> {
    let (t, b) = (50, 64);
    let mut cfg = RnnConfig::lstm(256, 512).num_layers(2).bidirectional(true);
    cfg.mode = mode;
    let mut rnn = cfg.build(&mut seeded_rng(0))?;
    let x = Tensor::full(&[t, b, 256], 0.1);
    let dy = Tensor::full(&[t, b, cfg.output_size()], 1.0);
    let mut rng = seeded_rng(1);
    let ms = time_median(1, runs, || {
        let (out, cache) = rnn.forward_train(&x, None, None, &mut rng)?;
        let _ = out;
        rnn.backward(&cache, Some(&dy), None, None)?;
        Ok(())
    })?;
    // Backward does two GEMMs per forward GEMM (input/state gradient and weight gradient).
    let flops = 3.0 * rnn_forward_flops(&cfg, t, b);
    Ok((ms, (t * b) as f64, flops))
}

/// Runs one named workload.
pub fn run(name: &str, runs: usize) -> Result<BenchResult> {
    let (ms, tokens, flops) = match name {
        "w1-lstm" => w1(RnnMode::Lstm, runs)?,
        "w1-gru" => w1(RnnMode::Gru, runs)?,
        other => {
            return Err(crate::Error::arg(
                "bench",
                "workload",
                format!("one of {}", WORKLOADS.join(", ")),
                other,
            ))
        }
    };
    Ok(BenchResult {
        implementation: "recur",
        workload: name.to_string(),
        median_ms: ms,
        runs,
        threads: crate::gemm::num_threads(),
        tokens_per_s: tokens / (ms / 1e3),
        gflops: flops / (ms / 1e3) / 1e9,
        peak_rss_mb: peak_rss_mb(),
    })
}
