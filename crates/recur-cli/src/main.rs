//! The `recur` command-line tool.

mod bench;
mod cli;
mod conformance;
mod plot;

use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use recur::seq2seq::search::DecodeOptions;
use recur::session::RunEnd;
use recur::transducer::{DecodeConfig, DecodeRequest, Transducer};

#[derive(Parser)]
#[command(
    name = "recur",
    version,
    about = "PyTorch-exact recurrent seq2seq models: train, decode, evaluate"
)]
struct Cli {
    /// Threads for the kernels (0 = all cores).
    #[arg(long, global = true, default_value_t = 0)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

/// Decoding options shared by `translate` and `eval`.
#[derive(Args, Clone)]
struct Decode {
    /// Beam size (1 = greedy; default: the model's `[decode] beam`, else 5).
    #[arg(long)]
    beam: Option<usize>,
    /// Hypotheses per input (≤ beam).
    #[arg(long, default_value_t = 1)]
    nbest: usize,
    /// GNMT length-penalty alpha (0 = raw log-probability).
    #[arg(long, default_value_t = 0.0)]
    alpha: f32,
    /// Maximum output tokens (default: the model's `[decode] max_len`, else 3 × source tokens + 5).
    #[arg(long)]
    max_len: Option<usize>,
    /// Minimum output tokens.
    #[arg(long, default_value_t = 0)]
    min_len: usize,
    /// Weight λ of the target word frequencies in beam search: each finished hypothesis
    /// scores `+ λ · log p(word)` (0 = off; default: the model's `[decode] word_freq_weight`).
    /// Needs a model with a word-frequency list and a beam of 2 or more.
    #[arg(long, value_name = "LAMBDA")]
    word_freq_weight: Option<f32>,
    /// Decode with each --model's first model alone, without the ensemble members its
    /// directory lists (both shipped models have some): faster, less accurate.
    #[arg(long)]
    no_ensemble: bool,
}

impl Decode {
    /// The options, with the model's stored defaults where the command line says nothing;
    /// values out of range are errors, never clipped.
    fn options(&self, attention: bool, model: &DecodeConfig) -> Result<DecodeOptions> {
        let request = DecodeRequest {
            beam: self.beam,
            nbest: self.nbest,
            alpha: self.alpha,
            max_len: self.max_len,
            min_len: self.min_len,
            attention,
            word_freq_weight: self.word_freq_weight,
        };
        request.resolve(model).map_err(|e| match e {
            recur::Error::InvalidArgument {
                arg, expected, got, ..
            } => {
                let hint = if arg == "nbest" {
                    " (raise --beam)"
                } else {
                    ""
                };
                let flag = arg.replace('_', "-");
                anyhow::anyhow!("--{flag}: expected {expected}, got {got}{hint}")
            }
            e => e.into(),
        })
    }
}

/// The options as `t` decodes them (its word-frequency list and weight resolved), with a note
/// on stderr when greedy decoding makes the frequency list inert.
fn model_options(
    t: &Transducer,
    decode: &Decode,
    attention: bool,
    sentences: bool,
) -> Result<DecodeOptions> {
    let asked = decode.options(attention, &t.config.decode)?;
    let opts = if sentences {
        t.resolve_sentence_options(&asked)?
    } else {
        t.resolve_options(&asked)?
    };
    if opts.beam_size == 1 && opts.word_freq_bonus().is_some() {
        eprintln!(
            "note: greedy decoding (--beam 1) does not use the word-frequency list; \
             a beam of 2 or more re-ranks finished words by frequency"
        );
    }
    Ok(opts)
}

#[derive(Clone, Copy, ValueEnum)]
enum Task {
    /// ROT13 over `-ABCDEFGHIJKLMNOPQRSTUVWXYZ`: `plain<TAB>cipher`.
    Cipher,
    /// Every word repeated: `words<TAB>doubled words`.
    Double,
}

#[derive(Subcommand)]
enum Command {
    /// Train a small romanized-Hindi → Devanagari model on the bundled data, report its dev
    /// accuracy and transliterate a few sentences.
    Quickstart {
        /// Time budget in seconds.
        #[arg(long, default_value_t = 180.0)]
        seconds: f64,
        /// Output directory (an existing run there is continued).
        #[arg(long, default_value = "runs/quickstart")]
        out: PathBuf,
    },
    /// Train a model from a TOML run config (see configs/).
    Train {
        /// Run config (TOML with [data], [model], [train]).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Override a config value: `section.key=value` (repeatable), e.g. `train.lr=0.001`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Output directory: best/, last/, log.jsonl, curves.png.
        #[arg(long)]
        out: PathBuf,
        /// Continue the run in OUT exactly where OUT/last left it.
        #[arg(long)]
        resume: bool,
        /// Stop (after checkpointing) after this many seconds.
        #[arg(long, default_value_t = 0.0)]
        time_limit: f64,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Decode lines (stdin or --input) with a trained model: one output line per input line.
    Translate {
        /// A model directory, a training run (its best/), or a model name (`recur models`).
        /// Repeat it to decode with an ensemble (the mean of the models' log-probabilities at
        /// every step; the same vocabularies required).
        #[arg(long, required = true)]
        model: Vec<PathBuf>,
        /// Input file (default: stdin).
        #[arg(long)]
        input: Option<PathBuf>,
        #[command(flatten)]
        decode: Decode,
        /// Print each output's score after a tab.
        #[arg(long)]
        scores: bool,
        /// Print alignments (argmax source position per output token) after a tab.
        #[arg(long)]
        alignments: bool,
        /// Sentence mode: transliterate each word of a line, keep spacing and punctuation.
        #[arg(long)]
        sentences: bool,
        #[command(flatten)]
        lexicon: LexiconArgs,
        /// Output format: `text` (one line per input line) or `jsonl` (one JSON object per
        /// input line with the n-best hypotheses, scores and alignments; per word in
        /// sentence mode).
        #[arg(long, value_enum, default_value_t = cli::translate::OutputFormat::Text)]
        format: cli::translate::OutputFormat,
        /// Lines decoded together (at most 256; default 256 ÷ beam: 256 greedy, 64 at beam 4).
        #[arg(long)]
        batch: Option<usize>,
        /// Translate only block I of N equal blocks of the --input file's lines (0 <= I < N):
        /// N processes or machines share a large file, and `cat` of their outputs in block
        /// order is the whole output in input order.
        #[arg(long, value_name = "I/N", requires = "input")]
        shard: Option<cli::shard::Shard>,
    },
    /// Serve models over HTTP: JSON API with dynamic batching, metrics and a web demo.
    Serve(cli::serve::ServeArgs),
    /// Score a model on a TSV: exact match (any reference), WER, token error rate, top-k.
    Eval {
        /// A model directory, a training run (its best/), or a model name (`recur models`).
        /// Repeat it to score an ensemble (as `translate`).
        #[arg(long, required = true)]
        model: Vec<PathBuf>,
        /// Test TSV.
        #[arg(long, required_unless_present = "dev")]
        data: Option<PathBuf>,
        /// Score on the dev set the (first) model was trained with: its config's `data.dev`,
        /// or the `data.dev_holdout` words held out of `data.train` (paths as in training,
        /// e.g. from the repository root for the shipped models).
        #[arg(long, conflicts_with_all = ["data", "src_col", "tgt_col"])]
        dev: bool,
        /// Source column (default: as trained).
        #[arg(long)]
        src_col: Option<usize>,
        /// Target column (default: as trained).
        #[arg(long)]
        tgt_col: Option<usize>,
        #[command(flatten)]
        decode: Decode,
        /// Score with this lexicon (word<TAB>target lines) before the model; without it, the
        /// model alone is scored, even when its directory has a lexicon.
        #[arg(long, value_name = "FILE")]
        lexicon: Option<PathBuf>,
        /// Also report top-k accuracy from the n-best list.
        #[arg(long, default_value_t = 1)]
        topk: usize,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Average the parameters of checkpoints of one architecture (e.g. a run's last
    /// evaluations, kept with `train.keep_last`) into a model directory.
    Average {
        /// Checkpoint (model) directories to average.
        checkpoints: Vec<PathBuf>,
        /// A training run: average its kept checkpoints (OUT/checkpoints/step-*).
        #[arg(long)]
        run: Option<PathBuf>,
        /// With --run: only its last N kept checkpoints (default: all).
        #[arg(long, requires = "run")]
        last: Option<usize>,
        /// Output model directory: a new one, or an earlier average to replace.
        #[arg(long)]
        out: PathBuf,
    },
    /// Convert a pretrained model of another toolkit into a model directory.
    Import {
        /// Which toolkit's checkpoint.
        format: cli::import::Format,
        /// The checkpoint file (g2p-en: `g2p_en/checkpoint20.npz`).
        checkpoint: PathBuf,
        /// Output model directory (a new one; see --force).
        #[arg(long)]
        out: PathBuf,
        /// Replace the model directory OUT if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Generate a toy task as TSV.
    Data {
        /// Which task.
        task: Task,
        /// Number of pairs.
        #[arg(long, default_value_t = 1000)]
        n: usize,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output file, a new one (default: stdout; see --force).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace the file OUT if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Run every PyTorch golden case (*.safetensors) in DIR, forward and backward.
    Conformance {
        /// Directory of fixture files.
        #[arg(default_value = "crates/recur/tests/fixtures")]
        dir: PathBuf,
    },
    /// List the models that `--model NAME` finds: $RECUR_MODELS, the user's folder, bundled.
    Models,
    /// Time named workloads; prints one JSON line per workload.
    Bench {
        /// Comma-separated workloads (default: all).
        #[arg(long, value_delimiter = ',')]
        workloads: Vec<String>,
        /// Timed runs per workload (median reported; default: as bench/pytorch_bench.py).
        #[arg(long)]
        runs: Option<usize>,
        /// The short warm-up/run schedule of `pytorch_bench.py --quick`.
        #[arg(long)]
        quick: bool,
    },
}

/// Keeps large freed buffers in the heap for the next use. A training step (or `bench`'s w1)
/// allocates and frees buffers of tens of megabytes at every step; glibc maps each one anew and
/// unmaps it when freed, and the page faults of touching the fresh pages took about 7% of
/// w1-lstm's time. The heap then stays at the peak of what was in use at once (which the
/// limits bound); it does not grow with the number of steps.
///
/// One arena for all threads: a thread other than main (a bidirectional layer's second
/// direction runs on a rayon worker) otherwise allocates from a secondary arena, whose heaps
/// of at most 64 MB are given back to the kernel when freed whatever the thresholds, and w1's
/// buffers were faulted in afresh at every run (64K faults a run; 1,038 → 967 ms at one
/// thread with one arena). The decode and training loops do not allocate, so the shared
/// arena's lock is not contended there.
fn keep_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread
    // exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

fn main() -> ExitCode {
    keep_large_buffers();
    let cli = Cli::parse();
    recur::gemm::set_num_threads(cli.threads);
    if cli.threads > 0 {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(cli.threads)
            .build_global();
    }
    let result = match cli.command {
        Command::Conformance { dir } => conformance(&dir),
        Command::Models => models().map(|()| Status::Ok),
        Command::Bench {
            workloads,
            runs,
            quick,
        } => bench(workloads, runs, quick).map(|()| Status::Ok),
        Command::Quickstart { seconds, out } => cli::quickstart::run(out, seconds),
        Command::Train {
            config,
            set,
            out,
            resume,
            time_limit,
            quiet,
        } => train(config, set, out, resume, time_limit, quiet),
        Command::Translate {
            model,
            input,
            decode,
            scores,
            alignments,
            sentences,
            lexicon,
            format,
            batch,
            shard,
        } => translate(
            model,
            input.map(|path| (path, shard)),
            decode,
            lexicon,
            batch,
            cli::translate::Format {
                sentences,
                scores,
                alignments,
                batch: 0,
                output: format,
            },
        )
        .map(|()| Status::Ok),
        Command::Eval {
            model,
            data,
            dev: _,
            src_col,
            tgt_col,
            decode,
            lexicon,
            topk,
            json,
        } => eval(
            model,
            data,
            src_col.zip(tgt_col),
            decode,
            lexicon,
            topk,
            json,
        )
        .map(|()| Status::Ok),
        Command::Serve(args) => cli::serve::run(args, cli.threads).map(|()| Status::Ok),
        Command::Average {
            checkpoints,
            run,
            last,
            out,
        } => average(checkpoints, run, last, &out).map(|()| Status::Ok),
        Command::Data {
            task,
            n,
            seed,
            out,
            force,
        } => data(task, n, seed, out, force).map(|()| Status::Ok),
        Command::Import {
            format,
            checkpoint,
            out,
            force,
        } => cli::import::run(format, &checkpoint, &out, force)
            .and_then(|s| Ok(writeln!(cli::output::stdout(), "{s}")?))
            .map(|()| Status::Ok),
    };
    match result {
        Ok(code) => code.into(),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// How a command that did not fail ended.
pub enum Status {
    /// Done.
    Ok,
    /// Stopped by a signal after saving its work (status 130, as a shell reports SIGINT).
    Stopped,
    /// Done, but what it checked failed (status 1; the report says what).
    Failed,
}

impl From<Status> for ExitCode {
    fn from(s: Status) -> ExitCode {
        match s {
            Status::Ok => ExitCode::SUCCESS,
            Status::Stopped => ExitCode::from(130),
            Status::Failed => ExitCode::FAILURE,
        }
    }
}

fn train(
    config: Option<PathBuf>,
    set: Vec<String>,
    out: PathBuf,
    resume: bool,
    time_limit: f64,
    quiet: bool,
) -> Result<Status> {
    let cfg = recur::transducer::RunConfig::load(config.as_deref(), &set)?;
    let mut args = cli::train::TrainArgs {
        out: out.clone(),
        resume,
        time_limit,
        progress: !quiet,
        collective: None,
    };
    let (s, rank) = train_on_every_rank(cfg, &mut args)?;
    if rank != 0 {
        // Rank 0 reports for the job, and its status is the job's: another rank's non-zero
        // status would make mpirun kill rank 0 while it still writes its checkpoint.
        return Ok(Status::Ok);
    }
    let mut stdout = cli::output::stdout();
    let dev = match s.best_accuracy {
        Some(acc) => format!("best dev exact match {:.2}%", acc * 100.0),
        None => "no dev set (best = last)".to_string(),
    };
    let best = s.best_dir.display();
    let status = match s.end {
        RunEnd::AlreadyFinished => {
            writeln!(
                stdout,
                "the run in {} has finished ({} steps; {dev}); nothing to do (raise train.epochs or \
                 train.max_steps with --set to train further)",
                out.display(),
                s.steps
            )?;
            Status::Ok
        }
        RunEnd::Stopped => {
            eprintln!(
                "stopped at step {}: checkpoint saved in {}; continue with --resume",
                s.steps,
                s.last_dir.display()
            );
            Status::Stopped
        }
        RunEnd::Finished | RunEnd::TimeLimit => {
            let more = if s.end == RunEnd::TimeLimit {
                " (time limit: continue with --resume)"
            } else {
                ""
            };
            let (steps, secs) = (s.steps, s.seconds);
            writeln!(
                stdout,
                "{steps} steps in {secs:.1} s; {dev}; model: {best}{more}"
            )?;
            Status::Ok
        }
    };
    stdout.flush()?;
    Ok(status)
}

/// `recur translate`'s lexicon options.
#[derive(clap::Args, Debug)]
struct LexiconArgs {
    /// A lexicon (word<TAB>target lines, several lines for several outputs) consulted before
    /// the model, on top of the model's own (its words replace the model's entries).
    #[arg(long, value_name = "FILE")]
    lexicon: Option<PathBuf>,
    /// Without the model directory's lexicon (with --lexicon: that file alone).
    #[arg(long)]
    no_lexicon: bool,
}

/// Applies the lexicon options to a loaded model.
fn apply_lexicon(t: &mut Transducer, args: &LexiconArgs) -> Result<()> {
    if args.no_lexicon {
        t.set_lexicon(None);
    }
    if let Some(path) = &args.lexicon {
        let lexicon = t.read_lexicon(path)?;
        t.add_lexicon(lexicon);
    }
    Ok(())
}

/// `recur train` in this process: alone, or (built with `--features mpi`, started by mpirun)
/// as one rank of a data-parallel run. Returns the summary and this process's rank.
#[cfg(feature = "mpi")]
fn train_on_every_rank(
    cfg: recur::transducer::RunConfig,
    args: &mut cli::train::TrainArgs,
) -> Result<(recur::session::RunSummary, usize)> {
    let launch = cli::mpi::Launch::start()?;
    args.collective = launch.collective();
    let rank = launch.rank();
    let result = cli::train::run(cfg, args);
    launch.end(result).map(|s| (s, rank))
}

/// `recur train` in this process (this build has no MPI: under mpirun every process would
/// train alone, so that is refused).
#[cfg(not(feature = "mpi"))]
fn train_on_every_rank(
    cfg: recur::transducer::RunConfig,
    args: &mut cli::train::TrainArgs,
) -> Result<(recur::session::RunSummary, usize)> {
    let ranks = std::env::var("OMPI_COMM_WORLD_SIZE").or_else(|_| std::env::var("PMI_SIZE"));
    if ranks.is_ok_and(|n| n.trim() != "1") {
        bail!("started by mpirun, but this recur was built without MPI: build it with `cargo build --release -p recur-cli --features mpi`");
    }
    Ok((cli::train::run(cfg, args)?, 0))
}

fn translate(
    model: Vec<PathBuf>,
    input: Option<(PathBuf, Option<cli::shard::Shard>)>,
    decode: Decode,
    lexicon: LexiconArgs,
    batch: Option<usize>,
    mut fmt: cli::translate::Format,
) -> Result<()> {
    if batch == Some(0) {
        bail!("--batch: expected at least 1, got 0");
    }
    let text = fmt.output == cli::translate::OutputFormat::Text;
    if text && fmt.sentences && (fmt.scores || fmt.alignments || decode.nbest > 1) {
        bail!("--sentences prints one line per input line: --scores, --alignments and --nbest need --format jsonl");
    }
    let mut t = load_model(&model, !decode.no_ensemble)?;
    apply_lexicon(&mut t, &lexicon)?;
    let opts = model_options(&t, &decode, fmt.alignments, fmt.sentences)?;
    fmt.batch = batch.unwrap_or(recur::transducer::decode_batch(opts.beam_size));
    let stdout = cli::output::stdout();
    match input {
        Some((p, Some(shard))) => {
            let block = cli::shard::open_block(&p, shard)?;
            cli::translate::run(&t, block, stdout, &opts, &fmt, false)
        }
        Some((p, None)) => {
            let f =
                std::fs::File::open(&p).with_context(|| format!("{}: cannot open", p.display()))?;
            cli::translate::run(&t, BufReader::new(f), stdout, &opts, &fmt, false)
        }
        None => {
            let stdin = std::io::stdin();
            let interactive = stdin.is_terminal();
            cli::translate::run(&t, stdin.lock(), stdout, &opts, &fmt, interactive)
        }
    }
}

fn eval(
    model: Vec<PathBuf>,
    data: Option<PathBuf>,
    cols: Option<(usize, usize)>,
    decode: Decode,
    lexicon: Option<PathBuf>,
    topk: usize,
    json: bool,
) -> Result<()> {
    let mut t = load_model(&model, !decode.no_ensemble)?;
    // The model alone unless a lexicon is asked for: a model's own lexicon (en-g2p's CMUdict)
    // holds the test words, and would score the dictionary, not the model.
    let lexicon = lexicon.map(|p| t.read_lexicon(&p)).transpose()?;
    t.set_lexicon(lexicon);
    let opts = model_options(&t, &decode, false, false)?;
    if topk == 0 || topk > opts.beam_size {
        bail!(
            "--topk: expected 1 to the beam size ({}), got {topk} (raise --beam)",
            opts.beam_size
        );
    }
    let pairs = match &data {
        Some(data) => cli::eval::read_data(&t, data, cols)?,
        None => recur::session::dev_pairs(&t.config)?,
    };
    let r = cli::eval::run(&t, &pairs, &opts, topk)?;
    let mut out = cli::output::stdout();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&r)?)?;
    } else {
        writeln!(out, "words            {}", r.scores.words)?;
        let (acc, correct) = (r.scores.accuracy * 100.0, r.scores.correct);
        writeln!(out, "exact match      {acc:.2}%  ({correct} correct)")?;
        writeln!(out, "WER              {:.2}%", r.scores.wer * 100.0)?;
        let (ter, edits, tokens) = (
            r.scores.ter * 100.0,
            r.scores.token_edits,
            r.scores.ref_tokens,
        );
        writeln!(
            out,
            "token error rate {ter:.2}%  ({edits} edits / {tokens} reference tokens)"
        )?;
        for (k, acc) in r.scores.top_k.iter().enumerate().skip(1) {
            writeln!(out, "top-{} accuracy   {:.2}%", k + 1, acc * 100.0)?;
        }
        writeln!(out, "decoding         {}", r.decoding.describe())?;
    }
    out.flush()?;
    Ok(())
}

/// `recur average`: the checkpoints named, then a run's kept ones (its last `last`).
fn average(
    mut checkpoints: Vec<PathBuf>,
    run: Option<PathBuf>,
    last: Option<usize>,
    out: &Path,
) -> Result<()> {
    if let Some(run) = run {
        let kept = recur::session::kept_checkpoints(&run)?;
        if kept.is_empty() {
            bail!(
                "{}: no kept checkpoints in {}/ (train with --set train.keep_last=N)",
                run.display(),
                recur::session::CHECKPOINTS_DIR
            );
        }
        let n = last.unwrap_or(kept.len());
        if n == 0 || n > kept.len() {
            bail!(
                "--last: expected 1 to {} (the kept checkpoints), got {n}",
                kept.len()
            );
        }
        checkpoints.extend_from_slice(&kept[kept.len() - n..]);
    }
    if checkpoints.is_empty() {
        bail!("nothing to average: name checkpoint directories, or --run RUN");
    }
    recur::average::average_into(&checkpoints, out)?;
    let mut stdout = cli::output::stdout();
    writeln!(
        stdout,
        "averaged {} checkpoints into {}",
        checkpoints.len(),
        out.display()
    )?;
    for c in &checkpoints {
        writeln!(stdout, "  {}", c.display())?;
    }
    Ok(())
}

/// `recur data`: `n` pairs streamed in constant memory, to stdout or to a new file written
/// atomically (a temporary file renamed into place), so a failure leaves nothing behind.
fn data(task: Task, n: usize, seed: u64, out: Option<PathBuf>, force: bool) -> Result<()> {
    use recur::data::tasks::{cipher_stream, double_stream};
    let pairs: Box<dyn Iterator<Item = (String, String)>> = match task {
        Task::Cipher => Box::new(cipher_stream(seed, &Default::default())?),
        Task::Double => Box::new(double_stream(seed, &Default::default())?),
    };
    let write = |w: &mut dyn Write| -> std::io::Result<()> {
        for (s, t) in pairs.take(n) {
            writeln!(w, "{s}\t{t}")?;
        }
        w.flush()
    };
    let Some(path) = out else {
        return Ok(write(&mut cli::output::stdout())?);
    };
    if path.exists() && !force {
        bail!("{}: exists (use --force to replace it)", path.display());
    }
    let name = path.file_name().context("--out: expected a file name")?;
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = std::fs::File::create(&tmp)
        .map(std::io::BufWriter::new)
        .and_then(|mut f| {
            write(&mut f)?;
            f.into_inner().map_err(|e| e.into_error())?.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("{}: cannot write", path.display()));
    }
    Ok(())
}

fn conformance(dir: &Path) -> Result<Status> {
    let reports = crate::conformance::run_dir(dir)?;
    let mut failed = 0;
    let mut out = cli::output::stdout();
    for r in &reports {
        writeln!(out, "{}", r.line())?;
        if !r.ok() {
            failed += 1;
        }
    }
    writeln!(out, "{} passed, {} failed", reports.len() - failed, failed)?;
    out.flush()?;
    Ok(if failed == 0 && !reports.is_empty() {
        Status::Ok
    } else {
        Status::Failed
    })
}

fn bench(mut workloads: Vec<String>, runs: Option<usize>, quick: bool) -> Result<()> {
    if workloads.is_empty() {
        workloads = crate::bench::WORKLOADS
            .iter()
            .map(|s| s.to_string())
            .collect();
    }
    let mut out = cli::output::stdout();
    for w in &workloads {
        let r = crate::bench::run(w, runs, quick)?;
        writeln!(out, "{}", serde_json::to_string(&r)?)?;
    }
    out.flush()?;
    Ok(())
}

/// Loads the models the `--model` arguments name (directories, training runs, or model names)
/// as one transducer: the first, with the others as ensemble members.
fn load_model(specs: &[PathBuf], ensembles: bool) -> Result<Transducer> {
    let (first, rest) = specs.split_first().context("--model: expected a model")?;
    let mut t = load_one(first, ensembles)?;
    for spec in rest {
        let member = load_one(spec, ensembles)?;
        t.add_member(member, &spec.display().to_string())?;
    }
    Ok(t)
}

/// Loads the model (with the members it declares) a `--model` argument names, saying so when
/// a training run stands for its `best/` checkpoint.
fn load_one(spec: &Path, ensemble: bool) -> Result<Transducer> {
    let source = recur::models::resolve(spec)?;
    if let recur::models::ModelSource::Dir(dir) = &source {
        if dir != spec && spec.is_dir() {
            eprintln!(
                "note: {} is a training run; using {}",
                spec.display(),
                dir.display()
            );
        }
    }
    Ok(match ensemble {
        true => Transducer::from_source(&source)?,
        false => Transducer::from_files(&source.files()?)?,
    })
}

fn models() -> Result<()> {
    let list = recur::models::available();
    let width = list.iter().map(|m| m.name.len()).max().unwrap_or(0);
    let mut out = cli::output::stdout();
    for m in &list {
        writeln!(out, "{:width$}  {}  ({})", m.name, m.summary, m.location)?;
    }
    if list.is_empty() {
        writeln!(
            out,
            "no models (add model directories to ${})",
            recur::models::MODELS_ENV
        )?;
    }
    Ok(())
}
