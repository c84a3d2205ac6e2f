//! `recur train`: TOML config + `--set` overrides → a training run in OUT (the library's
//! [`Session`]); this file only shows progress and draws the curves.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use recur::collective::Collective;
use recur::session::{RunEnd, RunOptions, RunSummary, Session};
use recur::train::Event;
use recur::transducer::RunConfig;

/// Options of `recur train` beyond the run config.
pub struct TrainArgs {
    /// Output directory.
    pub out: PathBuf,
    /// Continue OUT/last.
    pub resume: bool,
    /// Stop after this many seconds (0 = no limit), checkpointing first.
    pub time_limit: f64,
    /// Draw a progress bar (rank 0 only).
    pub progress: bool,
    /// The processes training together (`mpirun`), if more than this one.
    pub collective: Option<Arc<dyn Collective>>,
}

/// A flag set by the first SIGINT, SIGTERM or SIGHUP; a second such signal exits at once
/// (status 130). With `several_ranks`, SIGUSR1 sets it too: mpirun forwards SIGUSR1 to every
/// rank and waits for them, whereas after a SIGTERM it kills them within a second
/// (`odls_base_sigkill_timeout`), which may cut a large checkpoint short.
fn stop_on_signals(several_ranks: bool) -> Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        // Registered first, so it sees the flag before this signal sets it.
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))?;
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    if several_ranks {
        signal_hook::flag::register(SIGUSR1, Arc::clone(&stop))?;
    }
    Ok(stop)
}

/// Runs training with a progress bar, then plots `OUT/curves.png`; returns the summary.
pub fn run(cfg: RunConfig, args: &TrainArgs) -> Result<RunSummary> {
    if !(args.time_limit >= 0.0 && args.time_limit.is_finite()) {
        anyhow::bail!(
            "--time-limit: expected a number of seconds >= 0 (0 = none), got {}",
            args.time_limit
        );
    }
    let stop = stop_on_signals(args.collective.is_some())?;
    let options = RunOptions {
        out: args.out.clone(),
        resume: args.resume,
        time_limit: (args.time_limit > 0.0).then_some(args.time_limit),
        stop: Some(Arc::clone(&stop)),
        collective: args.collective.clone(),
    };
    let mut session = Session::prepare(cfg, options)?;
    // Every rank prepares the same data: rank 0 alone speaks and draws.
    let root = session.rank_and_size().0 == 0;
    if root {
        for note in session.notes() {
            eprintln!("{note}");
        }
    }
    let bar = if args.progress && root {
        ProgressBar::new(session.total_steps()? as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] step {pos}/{len} ETA {eta} {msg}",
        )?
        .progress_chars("=> "),
    );
    bar.set_position(session.progress().step as u64);
    let (mut tokens_since, mut t_since) = (0usize, Instant::now());
    let (mut last_acc, mut last_loss) = (f64::NAN, f32::NAN);
    let mut told = false;
    let result = session.run(|ev| {
        if stop.load(Ordering::SeqCst) && !told && root {
            told = true;
            bar.suspend(|| {
                eprintln!(
                    "stopping: saving a checkpoint of this step (signal again to exit at once)"
                )
            });
        }
        match ev {
            Event::Step {
                step,
                epoch,
                train_loss,
                tokens,
                ..
            } => {
                tokens_since += tokens;
                last_loss = *train_loss;
                let tps = tokens_since as f64 / t_since.elapsed().as_secs_f64().max(1e-9);
                if step % 20 == 0 {
                    (tokens_since, t_since) = (0, Instant::now());
                }
                bar.set_position(*step as u64);
                bar.set_message(format!(
                    "epoch {epoch} loss {last_loss:.3} dev {:.1}% {tps:.0} tok/s",
                    last_acc * 100.0
                ));
            }
            Event::Eval { dev_accuracy, .. } => last_acc = *dev_accuracy,
        }
    });
    bar.finish_and_clear();
    let summary = result?;
    if summary.end != RunEnd::AlreadyFinished && root {
        let records = recur::metrics_log::read_records(&summary.log)?;
        crate::plot::plot_curves(&records, &args.out.join("curves.png"))?;
    }
    Ok(summary)
}
