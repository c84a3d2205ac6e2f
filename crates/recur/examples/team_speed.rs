//! What the spinning team's synchronisation costs on this machine, per call: asking the
//! standard library for the core count (what every parallel product did before recur read it
//! once), an empty two-part `team::run` at the default thread count, and one wait at the
//! barrier of `team::run_together`. Medians of five rounds.
//!
//! `cargo run --release -p recur --example team_speed`

use std::time::Instant;

/// Median over five rounds of `calls` calls of `f`, in nanoseconds per call.
fn per_call(calls: u32, mut f: impl FnMut()) -> f64 {
    let mut rounds: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..calls {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(calls)
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[2]
}

fn main() {
    let cores = per_call(20_000, || {
        std::hint::black_box(std::thread::available_parallelism().ok());
    });
    println!("std::thread::available_parallelism   {cores:>9.0} ns a call");
    let run = per_call(200_000, || recur::team::run(2, &|_| {}));
    println!("team::run, 2 empty parts              {run:>9.0} ns a call");
    let waits = 1_000_000u32;
    let barrier = per_call(1, || {
        let ran = recur::team::run_together(2, &|_, b| {
            for _ in 0..waits {
                b.wait();
            }
        });
        assert!(
            ran,
            "the team takes two parts on a machine with two cores or more"
        );
    }) / f64::from(waits);
    println!("Barrier::wait, 2 parts                {barrier:>9.0} ns a wait");
}
