//! A training run on disk, as every front end drives it (the CLI, a server, Python):
//! [`Session::prepare`] reads the data, builds the vocabularies and the model (or takes them from
//! `OUT/last` to resume), [`Session::run`] trains with the best/last checkpoint policy and the
//! final evaluation, and reports every [`Event`] to the caller, who shows progress.
//!
//! ```text
//!   OUT/best/        the checkpoint with the best dev exact match (the last one without dev)
//!   OUT/last/        the latest checkpoint, with the optimizer and a typed ResumeState
//!   OUT/log.jsonl    one record per step and evaluation
//!   OUT/checkpoints/step-NNNNNN/   with train.keep_last = N: the models of the last N
//!                    evaluations (oldest deleted), for checkpoint averaging (crate::average)
//! ```
//!
//! Resuming continues exactly: a run stopped and resumed ends with the bits of an uninterrupted
//! run (tested in the CLI's end-to-end test).
//!
//! **Several processes.** With [`RunOptions::collective`] every rank prepares the same session
//! (every rank reads the data; with `resume` every rank reads `OUT/last`, so OUT must be on a
//! file system they share), rank 0's parameters and optimizer state are broadcast, and the run
//! is trained data-parallel (see [`crate::collective`]). Only rank 0 takes the lock, logs,
//! evaluates and writes checkpoints; the others only train.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, TrainingState};
use crate::collective::{Collective, SingleProcess};
use crate::data::{encode_pairs, read_parallel_tsv, EncodeOptions, Example, Pair, TsvOptions};
use crate::data::{Vocab, EOS};
use crate::error::{Error, Result};
use crate::eval::{exact_match, EvalExample};
use crate::limits;
use crate::lock::DirLock;
use crate::metrics_log::{read_records, MetricsLog};
use crate::module::Module;
use crate::tensor::Tensor;
use crate::train::{Event, Progress, StopVotes, Trainer};
use crate::transducer::{RunConfig, Transducer};

/// Where and how a run is written (beyond its [`RunConfig`]).
#[derive(Clone, Default)]
pub struct RunOptions {
    /// The output directory.
    pub out: PathBuf,
    /// Continue the run in `out` from `out/last`.
    pub resume: bool,
    /// Stop (after a checkpoint) once this many seconds have passed (`None`: no limit).
    pub time_limit: Option<f64>,
    /// Set by the caller (a signal handler, a server's cancel) to stop after the current step
    /// with a checkpoint of it.
    pub stop: Option<Arc<AtomicBool>>,
    /// The processes this run is trained on together (`None`: this one alone); see the
    /// [module docs](self).
    pub collective: Option<Arc<dyn Collective>>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ranks = self.collective.as_ref().map(|c| (c.rank(), c.size()));
        f.debug_struct("RunOptions")
            .field("out", &self.out)
            .field("resume", &self.resume)
            .field("time_limit", &self.time_limit)
            .field("stop", &self.stop)
            .field("collective (rank, size)", &ranks)
            .finish()
    }
}

/// What `--resume` needs besides the optimizer's tensors, stored in `last/training_state.json`.
///
/// `best_saved_accuracy` (the accuracy of `OUT/best`) is kept apart from the trainer's own best:
/// the final evaluation of a stopped run may write `OUT/best` without touching the trainer's
/// state, and a resumed run must not overwrite that checkpoint with a worse one.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ResumeState {
    /// Where the run stands.
    pub progress: Progress,
    /// The learning rate after any plateau reductions.
    pub lr: f32,
    /// Dev accuracy of the model in `OUT/best` (-inf, stored as null, when none yet).
    #[serde(with = "neg_inf_as_null")]
    pub best_saved_accuracy: f64,
}

/// JSON has no infinities: `-inf` is written as `null` and read back from it.
mod neg_inf_as_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() {
            s.serialize_f64(*v)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NEG_INFINITY))
    }
}

/// Why [`Session::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunEnd {
    /// The epochs ran out, the step limit was reached, or early stopping ended it.
    Finished,
    /// The run had finished before this call: nothing was trained or written.
    AlreadyFinished,
    /// The time limit stopped it (resume it to continue).
    TimeLimit,
    /// The caller's stop flag stopped it (resume it to continue).
    Stopped,
}

/// The result of [`Session::run`].
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    /// Why the run returned.
    pub end: RunEnd,
    /// Best dev exact match (`None` without a dev set).
    pub best_accuracy: Option<f64>,
    /// Optimizer steps taken in all (a resumed run counts its earlier steps).
    pub steps: usize,
    /// Wall time of this call, in seconds.
    pub seconds: f64,
    /// `OUT/best`.
    pub best_dir: PathBuf,
    /// `OUT/last`.
    pub last_dir: PathBuf,
    /// `OUT/log.jsonl`.
    pub log: PathBuf,
}

/// A prepared training run; see the [module docs](self).
pub struct Session {
    /// Held for the session's life: one writer per output directory (rank 0's; other ranks
    /// write nothing).
    _lock: Option<DirLock>,
    /// The processes training together ([`SingleProcess`] when alone).
    team: Arc<dyn Collective>,
    trainer: Trainer,
    transducer: Transducer,
    train: Vec<Example>,
    dev: Vec<EvalExample>,
    best_saved: f64,
    options: RunOptions,
    notes: Vec<String>,
}

/// Reads one TSV of the run, lowercasing sources when configured; skipped lines become a note.
/// The training and dev pairs of `cfg`: `data.train` less the `dev_holdout` sources held out
/// as the dev set, or `data.train` and `data.dev` (none without either).
fn read_split(cfg: &RunConfig, notes: &mut Vec<String>) -> Result<(Vec<Pair>, Vec<Pair>)> {
    let train = read_pairs(&cfg.data.train, cfg, notes)?;
    if cfg.data.dev_holdout > 0 {
        if cfg.data.dev.is_some() {
            return Err(Error::arg(
                "train",
                "[data] dev_holdout",
                "either dev or dev_holdout, not both",
                cfg.data.dev_holdout,
            ));
        }
        let (n, seed) = (cfg.data.dev_holdout, cfg.data.dev_holdout_seed);
        return Ok(crate::data::hold_out_sources(train, n, seed));
    }
    let dev = match &cfg.data.dev {
        Some(p) => read_pairs(p, cfg, notes)?,
        None => Vec::new(),
    };
    Ok((train, dev))
}

/// The dev set a training run of `cfg` is scored on (`data.dev`, or the `data.dev_holdout`
/// sources held out of `data.train` with their seed), for scoring other models on it: an
/// ensemble, an average, another decoding. Paths are as the run read them.
pub fn dev_pairs(cfg: &RunConfig) -> Result<Vec<Pair>> {
    let (_, dev) = read_split(cfg, &mut Vec::new())?;
    if dev.is_empty() {
        let got = "no data.dev file, no data.dev_holdout";
        return Err(Error::arg("dev_pairs", "[data]", "a dev set", got));
    }
    Ok(dev)
}

fn read_pairs(path: &Path, cfg: &RunConfig, notes: &mut Vec<String>) -> Result<Vec<Pair>> {
    let mut opts = TsvOptions::new(cfg.data.src_col, cfg.data.tgt_col);
    opts.skip_bad_lines = cfg.data.skip_bad_lines;
    let report = read_parallel_tsv(path, &opts)?;
    if let Some(first) = report.skipped.first() {
        notes.push(format!(
            "{}: skipped {} bad lines (first: line {}: {})",
            path.display(),
            report.skipped.len(),
            first.line,
            first.reason
        ));
    }
    let mut pairs = report.pairs;
    for p in &mut pairs {
        p.src = cfg.data.preprocess_source(&p.src);
    }
    Ok(pairs)
}

/// The run's error for `op`.
fn run_error(op: &'static str, expected: &str, got: impl std::fmt::Display) -> Error {
    Error::arg(op, "run", expected, got)
}

impl Session {
    /// Reads the data, builds the vocabularies and the model, or, with `resume`, takes them and
    /// the optimizer from `OUT/last` (whose `[model]` and `[data]` must equal `cfg`'s).
    ///
    /// The output directory is locked first (a second writer is refused with the holder's pid);
    /// a new run is refused where a run already is. If preparing fails, the directory is left
    /// as it was.
    pub fn prepare(cfg: RunConfig, options: RunOptions) -> Result<Session> {
        cfg.validate()?;
        let team: Arc<dyn Collective> = match &options.collective {
            Some(c) => Arc::clone(c),
            None => Arc::new(SingleProcess),
        };
        if !team.is_root() {
            return Session::prepare_follower(cfg, options, team);
        }
        let lock = DirLock::acquire(&options.out)?;
        let held = holds_run(&options.out);
        let checked = match (options.resume, held) {
            (false, Some(what)) => Err(run_error(
                "train",
                "an output directory without a run (or --resume)",
                format!("{} already holds a run ({what})", options.out.display()),
            )),
            (true, None) => Err(run_error(
                "train --resume",
                "an output directory with a run",
                format!("{} holds none", options.out.display()),
            )),
            _ => Ok(()),
        };
        let prepared = checked
            .and_then(|()| Session::prepare_locked(cfg, &options))
            .and_then(|mut parts| {
                start_together(team.as_ref(), &mut parts)?;
                Ok(parts)
            });
        match prepared {
            Ok(parts) => Ok(Session::from_parts(parts, Some(lock), team, options)),
            Err(e) => {
                lock.release_and_clean();
                Err(e)
            }
        }
    }

    /// [`Session::prepare`] on a rank other than 0: the same data and model, without the lock
    /// or the checks of OUT (rank 0 makes them), then rank 0's state.
    fn prepare_follower(
        cfg: RunConfig,
        options: RunOptions,
        team: Arc<dyn Collective>,
    ) -> Result<Session> {
        let mut parts = Session::prepare_locked(cfg, &options)?;
        start_together(team.as_ref(), &mut parts)?;
        Ok(Session::from_parts(parts, None, team, options))
    }

    fn from_parts(
        parts: Prepared,
        lock: Option<DirLock>,
        team: Arc<dyn Collective>,
        options: RunOptions,
    ) -> Session {
        Session {
            _lock: lock,
            team,
            trainer: parts.trainer,
            transducer: parts.transducer,
            train: parts.train,
            dev: parts.dev,
            best_saved: parts.best_saved,
            options,
            notes: parts.notes,
        }
    }

    fn prepare_locked(cfg: RunConfig, options: &RunOptions) -> Result<Prepared> {
        let out = &options.out;
        let mut notes = Vec::new();
        let (train_pairs, dev_pairs) = read_split(&cfg, &mut notes)?;
        let last = options.resume.then(|| out.join("last"));
        let (src_vocab, tgt_vocab, cfg) = match &last {
            Some(last) => resumed_setup(cfg, last)?,
            None => {
                let (st, tt) = (cfg.data.src_tokens, cfg.data.tgt_tokens);
                let min = cfg.data.min_freq;
                let sv =
                    Vocab::from_sequences(train_pairs.iter().map(|p| st.tokenize(&p.src)), min);
                let tv =
                    Vocab::from_sequences(train_pairs.iter().map(|p| tt.tokenize(&p.tgt)), min);
                (sv, tv, cfg)
            }
        };
        let toks = (cfg.data.src_tokens, cfg.data.tgt_tokens);
        let enc_opts = EncodeOptions {
            max_src_len: Some(cfg.data.max_src_len),
            max_tgt_len: Some(cfg.data.max_tgt_len),
        };
        let mut encoded = encode_pairs(&train_pairs, toks, (&src_vocab, &tgt_vocab), &enc_opts);
        if encoded.dropped() > 0 {
            notes.push(format!(
                "dropped {} training pairs (source longer than {}: {}, target longer than {}: {}, empty source: {})",
                encoded.dropped(),
                cfg.data.max_src_len,
                encoded.too_long_src.len(),
                cfg.data.max_tgt_len,
                encoded.too_long_tgt.len(),
                encoded.empty_src.len()
            ));
        }
        let dev = crate::eval::examples(&dev_pairs, &cfg.data, (&src_vocab, &tgt_vocab));
        if cfg.data.src_eos {
            // As `DataConfig::encode_source` does for evaluation and translation.
            encoded
                .examples
                .iter_mut()
                .for_each(|e| e.src.push(i64::from(EOS)));
        }
        let mut sized = cfg.model.clone();
        (sized.src_vocab, sized.tgt_vocab) = (src_vocab.len(), tgt_vocab.len());
        let what = "the model with its gradients and optimizer state";
        limits::check_memory("train", what, limits::training_bytes(&sized))?;
        let mut transducer = Transducer::new(cfg.clone(), src_vocab, tgt_vocab)?;
        let mut trainer = Trainer::new(transducer.config.model.clone(), cfg.train.clone())?;
        let mut best_saved = f64::NEG_INFINITY;
        if let Some(last) = &last {
            Checkpoint::load_model(last, &mut trainer.model)?;
            let state = Checkpoint::load_state(last)?.ok_or_else(|| {
                run_error(
                    "train --resume",
                    "a checkpoint with its training state",
                    format!("{} has none", last.display()),
                )
            })?;
            trainer.optimizer.load_state_dict(&state.tensors)?;
            let resume: ResumeState =
                serde_json::from_value(state.meta).map_err(|e| Error::Parse {
                    path: last.join(crate::checkpoint::STATE_META_FILE),
                    line: None,
                    msg: e.to_string(),
                })?;
            trainer.progress = resume.progress;
            trainer.optimizer.set_lr(resume.lr);
            best_saved = resume.best_saved_accuracy;
        }
        transducer.model = trainer.model.clone();
        Ok(Prepared {
            trainer,
            transducer,
            train: encoded.examples,
            dev,
            best_saved,
            notes,
        })
    }

    /// What preparing the data found worth telling (skipped lines, dropped pairs).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Where the run stands (a resumed run starts where it stopped).
    pub fn progress(&self) -> &Progress {
        &self.trainer.progress
    }

    /// The number of steps the run will take at most (for a progress bar).
    pub fn total_steps(&self) -> Result<usize> {
        let cfg = &self.trainer.config;
        if cfg.max_steps > 0 {
            return Ok(cfg.max_steps);
        }
        let per_epoch = self.trainer.epoch_batches(&self.train, 1)?.len().max(1);
        Ok(per_epoch * cfg.epochs)
    }

    /// Whether the run has a dev set.
    pub fn has_dev(&self) -> bool {
        !self.dev.is_empty()
    }

    /// Trains until the epochs, the step limit, early stopping or the time limit end it, then
    /// evaluates the final parameters; `on_event` sees every step and evaluation as they
    /// happen. `OUT/best` and `OUT/last` are written at every evaluation and at the end; on an
    /// error `OUT/last` keeps the last good state, and the error names the step.
    ///
    /// A resumed run that had already finished returns [`RunEnd::AlreadyFinished`] and writes
    /// nothing.
    pub fn run(&mut self, mut on_event: impl FnMut(&Event)) -> Result<RunSummary> {
        let out = self.options.out.clone();
        let log_path = out.join("log.jsonl");
        let start = Instant::now();
        let summary = |s: &Session, end| RunSummary {
            end,
            best_accuracy: s
                .has_dev()
                .then(|| s.best_saved.max(s.trainer.progress.best_accuracy)),
            steps: s.trainer.progress.step,
            seconds: start.elapsed().as_secs_f64(),
            best_dir: out.join("best"),
            last_dir: out.join("last"),
            log: log_path.clone(),
        };
        if self.options.resume && self.trainer.finished() {
            return Ok(summary(self, RunEnd::AlreadyFinished));
        }
        let writes = self.team.is_root();
        let log = match (writes, self.options.resume) {
            (false, _) => None,
            (true, true) => Some(MetricsLog::resume(&log_path, self.trainer.progress.step)?),
            (true, false) => Some(MetricsLog::create(&log_path)?),
        };
        let time_limit = self.options.time_limit;
        let stop = self.options.stop.clone();
        let local_votes = || StopVotes {
            stop: stop.as_ref().is_some_and(|s| s.load(Ordering::SeqCst)),
            time_limit: time_limit.is_some_and(|t| start.elapsed().as_secs_f64() >= t),
        };
        let mut end = RunEnd::Finished;
        let (transducer, best_saved) = (&mut self.transducer, &mut self.best_saved);
        let team = Arc::clone(&self.team);
        let result = self.trainer.fit_shared(
            &self.train,
            &self.dev,
            team.as_ref(),
            local_votes,
            |tr, ev, votes| {
                if let Some(log) = &log {
                    log.log(ev)?;
                    checkpoint_at_eval(tr, ev, transducer, best_saved, &out)?;
                }
                on_event(ev);
                if votes.stop {
                    end = RunEnd::Stopped;
                } else if votes.time_limit {
                    end = RunEnd::TimeLimit;
                }
                Ok(end == RunEnd::Finished)
            },
        );
        if let Err(e) = result {
            let kept = if out.join("last").exists() {
                "; OUT/last holds the last good checkpoint"
            } else {
                ""
            };
            return Err(run_error(
                "train",
                "a run to its end",
                format!("stopped at step {}: {e}{kept}", self.trainer.progress.step),
            ));
        }
        // A stop asked for by the caller saves at once, without the final evaluation.
        if let Some(log) = &log {
            self.finish(log, end != RunEnd::Stopped, &mut on_event)?;
        }
        Ok(summary(self, end))
    }

    /// This process's rank and the number of ranks training together (`(0, 1)` alone).
    pub fn rank_and_size(&self) -> (usize, usize) {
        (self.team.rank(), self.team.size())
    }

    /// The end of a run: the final parameters are evaluated (the run may have stopped between
    /// evaluations) read-only, so the training state stays what an uninterrupted run would
    /// have; then `OUT/last`, and `OUT/best` when it is better or there is no dev set.
    fn finish(
        &mut self,
        log: &MetricsLog,
        evaluate: bool,
        on_event: &mut impl FnMut(&Event),
    ) -> Result<()> {
        let out = self.options.out.clone();
        self.transducer.model = self.trainer.model.clone();
        let evaluated_last = read_records(log.path())?
            .last()
            .is_some_and(|r| r["event"].as_str() == Some("eval"));
        let tr = &self.trainer;
        if evaluate && self.has_dev() && !evaluated_last {
            let acc = exact_match(
                &tr.model,
                tr.dev_part(&self.dev),
                tr.config.dev_max_len_ratio,
            )?;
            let best = acc > tr.progress.best_accuracy.max(self.best_saved);
            let ev = Event::Eval {
                step: tr.progress.step,
                epoch: tr.progress.last_epoch(),
                dev_accuracy: acc,
                best,
                lr: tr.optimizer.lr(),
            };
            log.log(&ev)?;
            on_event(&ev);
            if best {
                self.transducer.save(out.join("best"), None)?;
                self.best_saved = acc;
            }
            keep_checkpoint(
                &self.transducer,
                &out,
                tr.progress.step,
                tr.config.keep_last,
            )?;
        }
        let state = training_state(&self.trainer, self.best_saved);
        self.transducer.save(out.join("last"), Some(&state))?;
        if !self.has_dev() || !out.join("best").exists() {
            self.transducer.save(out.join("best"), None)?;
        }
        Ok(())
    }
}

/// At an evaluation: `OUT/best` when it is the best so far, and `OUT/last` always.
fn checkpoint_at_eval(
    tr: &Trainer,
    ev: &Event,
    transducer: &mut Transducer,
    best_saved: &mut f64,
    out: &Path,
) -> Result<()> {
    if let Event::Eval {
        dev_accuracy, best, ..
    } = ev
    {
        transducer.model = tr.model.clone();
        if *best && *dev_accuracy > *best_saved {
            transducer.save(out.join("best"), None)?;
            *best_saved = *dev_accuracy;
        }
        transducer.save(out.join("last"), Some(&training_state(tr, *best_saved)))?;
        keep_checkpoint(transducer, out, tr.progress.step, tr.config.keep_last)?;
    }
    Ok(())
}

/// Makes every rank start from rank 0's state. A fingerprint of the run (data size, parameter
/// count, training options, progress) must match rank 0's, or the ranks would train different
/// runs (other data on a host, another config); then rank 0's parameters and optimizer state
/// replace every other rank's. Alone, it does nothing.
fn start_together(team: &dyn Collective, parts: &mut Prepared) -> Result<()> {
    if team.size() == 1 {
        return Ok(());
    }
    let mine = run_fingerprint(parts).into_bytes();
    let mut root = mine.clone();
    team.broadcast_bytes(&mut root)?;
    if root != mine {
        return Err(run_error(
            "train (data-parallel)",
            "the same data, config and checkpoint on every rank",
            format!(
                "rank {} has {}, rank 0 has {}",
                team.rank(),
                String::from_utf8_lossy(&mine),
                String::from_utf8_lossy(&root)
            ),
        ));
    }
    broadcast_parameters(team, &mut parts.trainer.model)?;
    broadcast_optimizer_state(team, &mut parts.trainer)?;
    parts.transducer.model = parts.trainer.model.clone();
    Ok(())
}

/// What the ranks of one run must agree on before they start.
fn run_fingerprint(parts: &Prepared) -> String {
    let tr = &parts.trainer;
    serde_json::json!({
        "train_examples": parts.train.len(),
        "train_target_tokens": parts.train.iter().map(|e| e.tgt.len() + 1).sum::<usize>(),
        "dev_examples": parts.dev.len(),
        "parameters": tr.model.num_parameters(),
        "train": tr.config,
        "progress": tr.progress,
    })
    .to_string()
}

/// Rank 0's parameter values on every rank.
fn broadcast_parameters(team: &dyn Collective, model: &mut impl Module) -> Result<()> {
    let mut flat: Vec<f32> = model
        .params()
        .iter()
        .flat_map(|p| p.value.data().iter().copied())
        .collect();
    team.broadcast(&mut flat)?;
    let mut rest = flat.as_slice();
    for p in model.params_mut() {
        let (mine, tail) = rest.split_at(p.value.numel());
        p.value.data_mut().copy_from_slice(mine);
        p.touch();
        rest = tail;
    }
    Ok(())
}

/// Rank 0's optimizer state (empty in a new run, `OUT/last`'s when resuming) on every rank.
fn broadcast_optimizer_state(team: &dyn Collective, trainer: &mut Trainer) -> Result<()> {
    let state = trainer.optimizer.state_dict();
    let mut flat: Vec<f32> = state
        .iter()
        .flat_map(|(_, t)| t.data().iter().copied())
        .collect();
    team.broadcast(&mut flat)?;
    let mut rest = flat.as_slice();
    let mut received = Vec::with_capacity(state.len());
    for (name, t) in state {
        let (mine, tail) = rest.split_at(t.numel());
        received.push((name, Tensor::from_vec(t.shape(), mine.to_vec())?));
        rest = tail;
    }
    trainer.optimizer.load_state_dict(&received)
}

/// The folder of a run's kept checkpoints (`train.keep_last`).
pub const CHECKPOINTS_DIR: &str = "checkpoints";

/// With `keep` > 0, saves the model evaluated at `step` as `OUT/checkpoints/step-NNNNNN`
/// (atomically, as every checkpoint) and deletes the oldest beyond the last `keep`.
fn keep_checkpoint(t: &Transducer, out: &Path, step: usize, keep: usize) -> Result<()> {
    if keep == 0 {
        return Ok(());
    }
    let dir = out.join(CHECKPOINTS_DIR);
    t.save(dir.join(format!("step-{step:06}")), None)?;
    let kept = kept_checkpoints(out)?;
    for old in &kept[..kept.len().saturating_sub(keep)] {
        std::fs::remove_dir_all(old).map_err(|e| Error::io(old, e))?;
    }
    Ok(())
}

/// The kept checkpoints of the run in `out` (`OUT/checkpoints/step-N`), oldest (lowest step)
/// first; none when the run kept none.
pub fn kept_checkpoints(out: &Path) -> Result<Vec<PathBuf>> {
    let dir = out.join(CHECKPOINTS_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    let mut steps: Vec<(usize, PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        // `step-N.tmp-PID` and `step-N.old-PID` (a save under way) do not parse: skipped.
        let name = entry.file_name();
        let step = name.to_str().and_then(|n| n.strip_prefix("step-"));
        if let Some(step) = step.and_then(|s| s.parse().ok()) {
            steps.push((step, entry.path()));
        }
    }
    steps.sort();
    Ok(steps.into_iter().map(|(_, p)| p).collect())
}

/// What [`Session::prepare`] builds before it takes the lock's place in a [`Session`].
struct Prepared {
    trainer: Trainer,
    transducer: Transducer,
    train: Vec<Example>,
    dev: Vec<EvalExample>,
    best_saved: f64,
    notes: Vec<String>,
}

/// What in `out` shows that a run was written there (a checkpoint, one moved aside by an
/// interrupted save, or a log), if anything.
fn holds_run(out: &Path) -> Option<String> {
    let entries = std::fs::read_dir(out).ok()?;
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .find(|n| {
            ["best", "last", "log.jsonl", CHECKPOINTS_DIR].contains(&n.as_str())
                || n.starts_with("last.old-")
                || n.starts_with("best.old-")
        })
}

/// The vocabularies and config of the run in `last`, with `cfg`'s training and decoding
/// options; its `[model]` and `[data]` must equal `cfg`'s.
fn resumed_setup(cfg: RunConfig, last: &Path) -> Result<(Vocab, Vocab, RunConfig)> {
    let run = Transducer::load(last).map_err(|e| {
        run_error(
            "train --resume",
            "a loadable OUT/last checkpoint",
            format!("{}: {e}", last.display()),
        )
    })?;
    let mut model = cfg.model.clone();
    (model.src_vocab, model.tgt_vocab) = (run.config.model.src_vocab, run.config.model.tgt_vocab);
    if model != run.config.model || cfg.data != run.config.data {
        return Err(run_error(
            "train --resume",
            "the [model] and [data] sections of the run being resumed",
            format!("different ones than the run in {}", last.display()),
        ));
    }
    let cfg = RunConfig {
        train: cfg.train,
        decode: cfg.decode,
        ..run.config
    };
    Ok((run.src_vocab, run.tgt_vocab, cfg))
}

/// The checkpoint's training state: the optimizer's tensors and a [`ResumeState`].
fn training_state(trainer: &Trainer, best_saved: f64) -> TrainingState {
    let resume = ResumeState {
        progress: trainer.progress.clone(),
        lr: trainer.optimizer.lr(),
        best_saved_accuracy: best_saved,
    };
    TrainingState {
        tensors: trainer.optimizer.state_dict(),
        // A struct of numbers and a `Progress` of numbers always serializes.
        meta: serde_json::to_value(&resume).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_state_round_trips_without_a_saved_best() {
        let state = ResumeState {
            progress: Progress {
                step: 7,
                ..Progress::default()
            },
            lr: 0.5,
            best_saved_accuracy: f64::NEG_INFINITY,
        };
        let json = serde_json::to_value(&state).unwrap();
        assert!(json["best_saved_accuracy"].is_null(), "{json}");
        let back: ResumeState = serde_json::from_value(json).unwrap();
        assert_eq!(back.best_saved_accuracy, f64::NEG_INFINITY);
        assert_eq!((back.progress.step, back.lr), (7, 0.5));
    }

    #[test]
    fn a_missing_key_in_the_resume_state_is_an_error() {
        let json = serde_json::json!({"lr": 0.1, "best_saved_accuracy": 0.5});
        assert!(serde_json::from_value::<ResumeState>(json).is_err());
    }

    #[test]
    fn keep_last_keeps_the_newest_evaluations() {
        let out = std::env::temp_dir().join(format!("recur-keep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let words = vec![vec!["a", "b"]];
        let v = Vocab::from_sequences(&words, 1);
        let mut cfg = RunConfig::default();
        (cfg.model.emb_dim, cfg.model.hidden_size) = (2, 2);
        let t = Transducer::new(cfg, v.clone(), v).unwrap();
        keep_checkpoint(&t, &out, 50, 0).unwrap();
        assert!(
            !out.join(CHECKPOINTS_DIR).exists(),
            "keep_last = 0 keeps none"
        );
        // A save under way (or interrupted) is not a kept checkpoint.
        std::fs::create_dir_all(out.join(CHECKPOINTS_DIR).join("step-000350.tmp-1")).unwrap();
        for step in [100, 200, 300, 1_000_000] {
            keep_checkpoint(&t, &out, step, 2).unwrap();
        }
        let kept = kept_checkpoints(&out).unwrap();
        let names: Vec<_> = kept.iter().map(|p| p.file_name().unwrap()).collect();
        assert_eq!(names, ["step-000300", "step-1000000"]);
        assert!(Transducer::load(&kept[1]).is_ok());
        assert!(kept_checkpoints(&out.join("nothing")).unwrap().is_empty());
        std::fs::remove_dir_all(&out).unwrap();
    }

    #[test]
    fn a_run_directory_is_not_reused_without_resume() {
        let out = std::env::temp_dir().join(format!("recur-session-{}", std::process::id()));
        std::fs::create_dir_all(out.join("last")).unwrap();
        let options = RunOptions {
            out: out.clone(),
            ..RunOptions::default()
        };
        let mut cfg = RunConfig::default();
        cfg.data.train = out.join("train.tsv");
        let err = Session::prepare(cfg, options).err().unwrap().to_string();
        assert!(err.contains("already holds a run"), "{err}");
        assert!(!out.join(crate::lock::LOCK_FILE).exists(), "left as it was");
        std::fs::remove_dir_all(&out).unwrap();
    }
}
