//! `recur._recur.train`: the library's training [`Session`] with a progress line on stderr,
//! stoppable with Ctrl-C.
//!
//! The session runs on its own thread with the GIL released; the calling thread wakes every
//! 100 ms to let Python look at pending signals (`check_signals`), because Python's SIGINT
//! handler only runs on the main thread while it holds the GIL. On KeyboardInterrupt the
//! session's stop flag is set, the session saves a checkpoint of its current step, and the
//! KeyboardInterrupt is then raised to the caller.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use recur::session::{RunOptions, RunSummary, Session};
use recur::train::Event;
use recur::transducer::RunConfig;

use crate::value_error;

/// How often the calling thread checks for Ctrl-C while the session trains.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// Prints one progress line on stderr, redrawn in place on a terminal and printed at most
/// every few seconds elsewhere (a log file should not get a line per step).
struct Progress {
    total: usize,
    tty: bool,
    last_print: Option<Instant>,
    dev_accuracy: f64,
}

impl Progress {
    fn new(total: usize) -> Self {
        let tty = std::io::stderr().is_terminal();
        Progress {
            total,
            tty,
            last_print: None,
            dev_accuracy: f64::NAN,
        }
    }

    fn interval(&self) -> Duration {
        Duration::from_millis(if self.tty { 200 } else { 5000 })
    }

    fn on_event(&mut self, ev: &Event) {
        match *ev {
            Event::Eval { dev_accuracy, .. } => self.dev_accuracy = dev_accuracy,
            Event::Step {
                step,
                epoch,
                train_loss,
                ..
            } => {
                let due = self
                    .last_print
                    .is_none_or(|t| t.elapsed() >= self.interval());
                if due || step == self.total {
                    self.last_print = Some(Instant::now());
                    // No dev score before the first evaluation (or without a dev set).
                    let dev = if self.dev_accuracy.is_nan() {
                        "-".to_string()
                    } else {
                        format!("{:.1}%", self.dev_accuracy * 100.0)
                    };
                    let line = format!(
                        "step {step}/{} epoch {epoch} loss {train_loss:.3} dev {dev}",
                        self.total
                    );
                    let mut err = std::io::stderr().lock();
                    // A progress line that cannot be written is not worth failing a run for.
                    let _ = if self.tty {
                        write!(err, "\r{line}\x1b[K")
                    } else {
                        writeln!(err, "{line}")
                    };
                }
            }
        }
    }

    fn finish(&self) {
        if self.tty && self.last_print.is_some() {
            eprintln!();
        }
    }
}

/// The summary as a dict: `end`, `best_dev_accuracy` (None without a dev set), `steps`,
/// `seconds`, `best_dir`, `last_dir`, `log`.
fn summary_dict<'py>(py: Python<'py>, s: &RunSummary) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let end = serde_json::to_value(s.end).map_err(value_error)?;
    d.set_item("end", end.as_str().unwrap_or("unknown"))?;
    d.set_item("best_dev_accuracy", s.best_accuracy)?;
    d.set_item("steps", s.steps)?;
    d.set_item("seconds", s.seconds)?;
    d.set_item("best_dir", &s.best_dir)?;
    d.set_item("last_dir", &s.last_dir)?;
    d.set_item("log", &s.log)?;
    Ok(d)
}

/// Prepares and runs the session on this thread (the worker), printing progress.
fn run_session(cfg: RunConfig, options: RunOptions, progress: bool) -> recur::Result<RunSummary> {
    let mut session = Session::prepare(cfg, options)?;
    for note in session.notes() {
        eprintln!("{note}");
    }
    let mut bar = Progress::new(session.total_steps()?);
    let summary = session.run(|ev| {
        if progress {
            bar.on_event(ev)
        }
    });
    bar.finish();
    summary
}

/// Trains a model: `config` (a TOML file, or None for all defaults) with `overrides`
/// (`section.key=value`) into the run directory `out`; returns the summary as a dict.
#[pyfunction]
#[pyo3(signature = (config, out, overrides = Vec::new(), resume = false, time_limit = 0.0, progress = true))]
pub fn train<'py>(
    py: Python<'py>,
    config: Option<PathBuf>,
    out: PathBuf,
    overrides: Vec<String>,
    resume: bool,
    time_limit: f64,
    progress: bool,
) -> PyResult<Bound<'py, PyDict>> {
    if !(time_limit >= 0.0 && time_limit.is_finite()) {
        let msg = format!("time_limit: expected seconds >= 0 (0 = none), got {time_limit}");
        return Err(value_error(msg));
    }
    let cfg = RunConfig::load(config.as_deref(), &overrides).map_err(value_error)?;
    let stop = Arc::new(AtomicBool::new(false));
    let options = RunOptions {
        out,
        resume,
        time_limit: (time_limit > 0.0).then_some(time_limit),
        stop: Some(Arc::clone(&stop)),
        collective: None,
    };
    let (summary, interrupt) = py.detach(|| {
        std::thread::scope(|scope| {
            let worker = scope.spawn(move || run_session(cfg, options, progress));
            let interrupt = watch_signals(&worker, &stop);
            (worker.join(), interrupt)
        })
    });
    let summary = summary
        .map_err(|_| PyRuntimeError::new_err("the training session panicked (a bug in recur)"))?
        .map_err(value_error)?;
    if let Some(e) = interrupt {
        eprintln!(
            "stopped at step {}: checkpoint saved in {}; continue with resume=True",
            summary.steps,
            summary.last_dir.display()
        );
        return Err(e);
    }
    summary_dict(py, &summary)
}

/// Until the worker ends: every [`SIGNAL_POLL`], lets Python run its signal handlers; the
/// first exception they raise (KeyboardInterrupt) sets `stop` and is returned.
fn watch_signals<T>(
    worker: &std::thread::ScopedJoinHandle<'_, T>,
    stop: &AtomicBool,
) -> Option<PyErr> {
    let mut interrupt = None;
    while !worker.is_finished() {
        std::thread::sleep(SIGNAL_POLL);
        if interrupt.is_none() {
            if let Err(e) = Python::attach(|py| py.check_signals()) {
                stop.store(true, Ordering::SeqCst);
                interrupt = Some(e);
            }
        }
    }
    interrupt
}
