//! `recur train`: TOML config + `--set` overrides → a trained model directory.
//!
//! OUT/best (best dev accuracy), OUT/last (with the training state, for `--resume`),
//! OUT/log.jsonl (one record per step and evaluation), OUT/curves.png.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use recur::checkpoint::{Checkpoint, TrainingState};
use recur::data::{encode_pairs, read_parallel_tsv, EncodeOptions, Pair, TsvOptions, Vocab};
use recur::metrics_log::MetricsLog;
use recur::train::{dev_examples, DevExample, Event, Progress, Trainer};
use recur::transducer::{RunConfig, Transducer};

/// Reads a run config: TOML file (optional) with `section.key=value` overrides applied.
pub fn load_config(path: Option<&Path>, overrides: &[String]) -> Result<RunConfig> {
    let mut value: toml::Value = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("{}: cannot read", p.display()))?;
            toml::from_str(&text).with_context(|| format!("{}: not valid TOML", p.display()))?
        }
        None => toml::Value::Table(Default::default()),
    };
    for o in overrides {
        let (key, raw) = o
            .split_once('=')
            .with_context(|| format!("--set {o}: expected section.key=value"))?;
        let parsed: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .map(|mut t| t.remove("v").expect("parsed"))
            .unwrap_or_else(|_| toml::Value::String(raw.to_string()));
        let mut cur = &mut value;
        let parts: Vec<&str> = key.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let table = cur
                .as_table_mut()
                .with_context(|| format!("--set {o}: {part} is not a section"))?;
            if i + 1 == parts.len() {
                table.insert(part.to_string(), parsed.clone());
                break;
            }
            cur = table
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(Default::default()));
        }
    }
    let cfg: RunConfig = value.try_into().context("invalid run config")?;
    Ok(cfg)
}

fn read_pairs(path: &Path, cfg: &RunConfig) -> Result<Vec<Pair>> {
    let mut opts = TsvOptions::new(cfg.data.src_col, cfg.data.tgt_col);
    opts.skip_bad_lines = cfg.data.skip_bad_lines;
    let report = read_parallel_tsv(path, &opts)?;
    if !report.skipped.is_empty() {
        eprintln!(
            "{}: skipped {} bad lines (first: line {}: {})",
            path.display(),
            report.skipped.len(),
            report.skipped[0].line,
            report.skipped[0].reason
        );
    }
    let mut pairs = report.pairs;
    if cfg.data.lowercase_src {
        pairs.iter_mut().for_each(|p| p.src = p.src.to_lowercase());
    }
    Ok(pairs)
}

/// Everything prepared for a run: the model (fresh or resumed), the encoded data.
struct Prepared {
    trainer: Trainer,
    transducer: Transducer,
    train: Vec<recur::data::Example>,
    dev: Vec<DevExample>,
    /// Dev accuracy of the model in OUT/best (-inf: none yet).
    best_saved: f64,
}

fn prepare(cfg: RunConfig, out: &Path, resume: bool) -> Result<Prepared> {
    let mut train_pairs = read_pairs(&cfg.data.train, &cfg)?;
    let mut held_out = Vec::new();
    if cfg.data.dev_holdout > 0 {
        if cfg.data.dev.is_some() {
            bail!("[data]: give either dev or dev_holdout, not both");
        }
        (train_pairs, held_out) = recur::data::hold_out_sources(
            train_pairs,
            cfg.data.dev_holdout,
            cfg.data.dev_holdout_seed,
        );
    }
    let (src_vocab, tgt_vocab, cfg) = if resume {
        // The model and data must be the run's own; training (more epochs) and decoding options
        // may change.
        let last = Transducer::load(out.join("last"))
            .context("--resume: no loadable OUT/last checkpoint")?;
        let mut model = cfg.model.clone();
        (model.src_vocab, model.tgt_vocab) =
            (last.config.model.src_vocab, last.config.model.tgt_vocab);
        if model != last.config.model || cfg.data != last.config.data {
            bail!(
                "--resume: the [model] and [data] sections differ from the run in {}",
                out.display()
            );
        }
        let cfg = RunConfig {
            train: cfg.train,
            decode: cfg.decode,
            ..last.config
        };
        (last.src_vocab, last.tgt_vocab, cfg)
    } else {
        let (st, tt) = (cfg.data.src_tokens, cfg.data.tgt_tokens);
        let sv = Vocab::from_sequences(
            train_pairs.iter().map(|p| st.tokenize(&p.src)),
            cfg.data.min_freq,
        );
        let tv = Vocab::from_sequences(
            train_pairs.iter().map(|p| tt.tokenize(&p.tgt)),
            cfg.data.min_freq,
        );
        (sv, tv, cfg)
    };
    let toks = (cfg.data.src_tokens, cfg.data.tgt_tokens);
    let enc_opts = EncodeOptions {
        max_src_len: Some(cfg.data.max_src_len),
        max_tgt_len: Some(cfg.data.max_tgt_len),
    };
    let mut encoded = encode_pairs(&train_pairs, toks, (&src_vocab, &tgt_vocab), &enc_opts);
    if encoded.dropped() > 0 {
        eprintln!(
            "dropped {} training pairs (source longer than {}: {}, target longer than {}: {}, empty source: {})",
            encoded.dropped(),
            cfg.data.max_src_len,
            encoded.too_long_src.len(),
            cfg.data.max_tgt_len,
            encoded.too_long_tgt.len(),
            encoded.empty_src.len()
        );
    }
    let mut dev = match &cfg.data.dev {
        Some(p) => dev_examples(&read_pairs(p, &cfg)?, toks, (&src_vocab, &tgt_vocab)),
        None => dev_examples(&held_out, toks, (&src_vocab, &tgt_vocab)),
    };
    if cfg.data.src_eos {
        // As `Transducer::encode_source` does for translation.
        let srcs = encoded.examples.iter_mut().map(|e| &mut e.src);
        srcs.chain(dev.iter_mut().map(|d| &mut d.src))
            .for_each(|s| s.push(i64::from(recur::data::EOS)));
    }
    let mut transducer = Transducer::new(cfg.clone(), src_vocab, tgt_vocab)?;
    let mut trainer = Trainer::new(transducer.config.model.clone(), cfg.train.clone())?;
    let mut best_saved = f64::NEG_INFINITY;
    if resume {
        Checkpoint::load_model(out.join("last"), &mut trainer.model)?;
        let state =
            Checkpoint::load_state(out.join("last"))?.context("OUT/last has no training state")?;
        trainer.optimizer.load_state_dict(&state.tensors)?;
        trainer.progress = serde_json::from_value(state.meta["progress"].clone())
            .context("training_state.json: bad progress")?;
        if let Some(lr) = state.meta["lr"].as_f64() {
            trainer.optimizer.set_lr(lr as f32);
        }
        best_saved = state.meta["best_saved_accuracy"]
            .as_f64()
            .unwrap_or(trainer.progress.best_accuracy);
    }
    transducer.model = trainer.model.clone();
    Ok(Prepared {
        trainer,
        transducer,
        train: encoded.examples,
        dev,
        best_saved,
    })
}

/// The state `--resume` needs. `best_saved` (the accuracy of OUT/best) is kept apart from the
/// trainer's own best: the final evaluation of a stopped run may write OUT/best without touching
/// the trainer's state, and a resumed run must not overwrite that checkpoint with a worse one.
fn training_state(trainer: &Trainer, best_saved: f64) -> TrainingState {
    TrainingState {
        tensors: trainer.optimizer.state_dict(),
        meta: serde_json::json!({
            "progress": trainer.progress,
            "lr": trainer.optimizer.lr(),
            "best_saved_accuracy": best_saved,
        }),
    }
}

/// Options of `recur train` beyond the run config.
pub struct TrainArgs {
    /// Output directory.
    pub out: PathBuf,
    /// Continue OUT/last.
    pub resume: bool,
    /// Stop after this many seconds (0 = no limit), checkpointing first.
    pub time_limit: f64,
    /// Draw a progress bar.
    pub progress: bool,
}

/// The result of a run, for callers like `quickstart`.
pub struct TrainSummary {
    /// Best dev accuracy (None without a dev set).
    pub best_accuracy: Option<f64>,
    /// Steps.
    pub steps: usize,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// Runs training; returns the summary.
pub fn run(cfg: RunConfig, args: &TrainArgs) -> Result<TrainSummary> {
    if !args.resume && args.out.join("last").exists() {
        bail!(
            "{}: already holds a run (use --resume to continue it, or another --out)",
            args.out.display()
        );
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create", args.out.display()))?;
    let Prepared {
        mut trainer,
        mut transducer,
        train,
        dev,
        mut best_saved,
    } = prepare(cfg, &args.out, args.resume)?;
    let log_path = args.out.join("log.jsonl");
    let log = if args.resume {
        MetricsLog::append(&log_path)?
    } else {
        MetricsLog::create(&log_path)?
    };
    let batches_per_epoch = trainer.epoch_batches(&train, 1)?.len().max(1);
    let total = if trainer.config.max_steps > 0 {
        trainer.config.max_steps
    } else {
        batches_per_epoch * trainer.config.epochs
    };
    let bar = if args.progress {
        ProgressBar::new(total as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] step {pos}/{len} ETA {eta} {msg}",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    bar.set_position(trainer.progress.step as u64);
    let start = Instant::now();
    let (mut tokens_since, mut t_since) = (0usize, Instant::now());
    let (mut last_acc, mut last_loss) = (f64::NAN, f32::NAN);
    let out = args.out.clone();
    let result = trainer.fit(&train, &dev, |tr, ev| {
        log.log(ev)?;
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
            Event::Eval {
                dev_accuracy, best, ..
            } => {
                last_acc = *dev_accuracy;
                transducer.model = tr.model.clone();
                if *best && *dev_accuracy > best_saved {
                    transducer.save(out.join("best"), None)?;
                    best_saved = *dev_accuracy;
                }
                transducer.save(out.join("last"), Some(&training_state(tr, best_saved)))?;
            }
        }
        Ok(args.time_limit <= 0.0 || start.elapsed().as_secs_f64() < args.time_limit)
    });
    bar.finish_and_clear();
    // Whatever happened, the last good state is on disk; a failure is reported with its step.
    if let Err(e) = result {
        return Err(anyhow::Error::new(e).context(format!(
            "training stopped at step {}; OUT/last holds the last good checkpoint",
            trainer.progress.step
        )));
    }
    // The final parameters are evaluated too (the run may have stopped between evaluations),
    // read-only: the training state must stay what an uninterrupted run would have.
    transducer.model = trainer.model.clone();
    let evaluated_last = matches!(log_last_event(&log_path)?.as_deref(), Some("eval"));
    if !dev.is_empty() && !evaluated_last {
        let dev_part = if trainer.config.dev_limit > 0 {
            &dev[..dev.len().min(trainer.config.dev_limit)]
        } else {
            &dev[..]
        };
        let acc =
            recur::train::exact_match(&trainer.model, dev_part, trainer.config.dev_max_len_ratio)?;
        let best = acc > trainer.progress.best_accuracy.max(best_saved);
        log.log(&Event::Eval {
            step: trainer.progress.step,
            epoch: trainer.progress.epoch,
            dev_accuracy: acc,
            best,
            lr: trainer.optimizer.lr(),
        })?;
        if best {
            transducer.save(out.join("best"), None)?;
            best_saved = acc;
        }
    }
    transducer.save(
        out.join("last"),
        Some(&training_state(&trainer, best_saved)),
    )?;
    if dev.is_empty() || !out.join("best").exists() {
        transducer.save(out.join("best"), None)?;
    }
    let records = recur::metrics_log::read_records(&log_path)?;
    recur::plot::plot_curves(&records, &out.join("curves.png"))?;
    let p: &Progress = &trainer.progress;
    Ok(TrainSummary {
        best_accuracy: (!dev.is_empty()).then(|| best_saved.max(p.best_accuracy)),
        steps: p.step,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The `event` field of the log's last record.
fn log_last_event(path: &Path) -> Result<Option<String>> {
    let records = recur::metrics_log::read_records(path)?;
    Ok(records
        .last()
        .and_then(|r| r["event"].as_str().map(str::to_string)))
}
