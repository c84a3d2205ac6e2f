//! The `recur` command-line tool.

mod bench;
mod cli;
mod conformance;
mod plot;

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use recur::seq2seq::search::DecodeOptions;
use recur::transducer::{DecodeConfig, Transducer};

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
}

impl Decode {
    /// The options, with the model's stored defaults where the command line says nothing.
    fn options(&self, attention: bool, model: &DecodeConfig) -> DecodeOptions {
        let beam = self.beam.or(model.beam).unwrap_or(5).max(1);
        let max_len = self.max_len.or(model.max_len);
        DecodeOptions {
            beam_size: beam,
            nbest: self.nbest.clamp(1, beam),
            length_penalty: self.alpha,
            max_len: max_len.unwrap_or(500),
            // An explicit cap: a ratio that never binds (unset means the per-source rule).
            max_len_ratio: if max_len.is_some() { Some(1e6) } else { None },
            max_len_offset: 0,
            min_len: self.min_len,
            return_attention: attention,
        }
    }
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
        #[arg(long)]
        model: PathBuf,
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
        /// Lines decoded together.
        #[arg(long, default_value_t = 256)]
        batch: usize,
    },
    /// Serve models over HTTP: JSON API with dynamic batching, metrics and a web demo.
    Serve(cli::serve::ServeArgs),
    /// Score a model on a TSV: exact match (any reference), WER, token error rate, top-k.
    Eval {
        /// A model directory, a training run (its best/), or a model name (`recur models`).
        #[arg(long)]
        model: PathBuf,
        /// Test TSV.
        #[arg(long)]
        data: PathBuf,
        /// Source column (default: as trained).
        #[arg(long)]
        src_col: Option<usize>,
        /// Target column (default: as trained).
        #[arg(long)]
        tgt_col: Option<usize>,
        #[command(flatten)]
        decode: Decode,
        /// Also report top-k accuracy from the n-best list.
        #[arg(long, default_value_t = 1)]
        topk: usize,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Convert a pretrained model of another toolkit into a model directory.
    Import {
        /// Which toolkit's checkpoint.
        format: cli::import::Format,
        /// The checkpoint file (g2p-en: `g2p_en/checkpoint20.npz`).
        checkpoint: PathBuf,
        /// Output model directory.
        #[arg(long)]
        out: PathBuf,
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
        /// Output file (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    recur::gemm::set_num_threads(cli.threads);
    if cli.threads > 0 {
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(cli.threads)
            .build_global();
    }
    let result = match cli.command {
        Command::Conformance { dir } => return conformance(&dir),
        Command::Models => models(),
        Command::Bench {
            workloads,
            runs,
            quick,
        } => bench(workloads, runs, quick),
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
            batch,
        } => translate(
            model,
            input,
            decode,
            cli::translate::Format {
                sentences,
                scores,
                alignments,
                batch: batch.max(1),
            },
        ),
        Command::Eval {
            model,
            data,
            src_col,
            tgt_col,
            decode,
            topk,
            json,
        } => eval(model, data, src_col.zip(tgt_col), decode, topk, json),
        Command::Serve(args) => cli::serve::run(args),
        Command::Data { task, n, seed, out } => data(task, n, seed, out),
        Command::Import {
            format,
            checkpoint,
            out,
        } => cli::import::run(format, &checkpoint, &out).map(|s| println!("{s}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
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
) -> Result<()> {
    let cfg = recur::transducer::RunConfig::load(config.as_deref(), &set)?;
    let args = cli::train::TrainArgs {
        out: out.clone(),
        resume,
        time_limit,
        progress: !quiet,
    };
    let s = cli::train::run(cfg, &args)?;
    let dev = match s.best_accuracy {
        Some(acc) => format!("best dev exact match {:.2}%", acc * 100.0),
        None => "no dev set (best = last)".to_string(),
    };
    println!(
        "{} steps in {:.1} s; {dev}; model: {}",
        s.steps,
        s.seconds,
        out.join("best").display()
    );
    Ok(())
}

fn translate(
    model: PathBuf,
    input: Option<PathBuf>,
    decode: Decode,
    fmt: cli::translate::Format,
) -> Result<()> {
    let t = load_model(&model)?;
    let opts = decode.options(fmt.alignments, &t.config.decode);
    let stdout = std::io::stdout().lock();
    match input {
        Some(p) => {
            let f =
                std::fs::File::open(&p).with_context(|| format!("{}: cannot open", p.display()))?;
            cli::translate::run(&t, BufReader::new(f), stdout, &opts, &fmt)
        }
        None => cli::translate::run(&t, std::io::stdin().lock(), stdout, &opts, &fmt),
    }
}

fn eval(
    model: PathBuf,
    data: PathBuf,
    cols: Option<(usize, usize)>,
    decode: Decode,
    topk: usize,
    json: bool,
) -> Result<()> {
    let t = load_model(&model)?;
    let mut opts = decode.options(false, &t.config.decode);
    if topk > opts.beam_size {
        opts.beam_size = topk;
    }
    let r = cli::eval::run(&t, &data, cols, &opts, topk.max(1))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!("words            {}", r.words);
        println!(
            "exact match      {:.2}%  ({} correct)",
            r.accuracy * 100.0,
            r.correct
        );
        println!("WER              {:.2}%", r.wer * 100.0);
        println!(
            "token error rate {:.2}%  ({} edits / {} reference tokens)",
            r.ter * 100.0,
            r.token_edits,
            r.ref_tokens
        );
        for (k, acc) in r.top_k.iter().enumerate().skip(1) {
            println!("top-{} accuracy   {:.2}%", k + 1, acc * 100.0);
        }
        if r.missing > 0 {
            eprintln!("warning: {} sources had no hypothesis", r.missing);
        }
    }
    Ok(())
}

fn data(task: Task, n: usize, seed: u64, out: Option<PathBuf>) -> Result<()> {
    use recur::data::tasks::{cipher_pairs, double_pairs, write_tsv};
    let pairs = match task {
        Task::Cipher => cipher_pairs(n, seed, &Default::default())?,
        Task::Double => double_pairs(n, seed, &Default::default())?,
    };
    match out {
        Some(p) => {
            let f = std::fs::File::create(&p)
                .with_context(|| format!("{}: cannot create", p.display()))?;
            write_tsv(f, &pairs)?;
        }
        None => write_tsv(std::io::stdout().lock(), &pairs)?,
    }
    Ok(())
}

fn conformance(dir: &Path) -> ExitCode {
    let reports = match crate::conformance::run_dir(dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut failed = 0;
    let mut out = std::io::stdout().lock();
    for r in &reports {
        let _ = writeln!(out, "{}", r.line());
        if !r.ok() {
            failed += 1;
        }
    }
    let _ = writeln!(out, "{} passed, {} failed", reports.len() - failed, failed);
    if failed == 0 && !reports.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn bench(mut workloads: Vec<String>, runs: Option<usize>, quick: bool) -> Result<()> {
    if workloads.is_empty() {
        workloads = crate::bench::WORKLOADS
            .iter()
            .map(|s| s.to_string())
            .collect();
    }
    for w in &workloads {
        let r = crate::bench::run(w, runs, quick)?;
        println!("{}", serde_json::to_string(&r)?);
    }
    Ok(())
}

/// Loads the model a `--model` argument names (a directory, a training run, or a model name),
/// saying so when a training run stands for its `best/` checkpoint.
fn load_model(spec: &Path) -> Result<Transducer> {
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
    Ok(Transducer::from_files(&source.files()?)?)
}

fn models() -> Result<()> {
    let list = recur::models::available();
    let width = list.iter().map(|m| m.name.len()).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
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
