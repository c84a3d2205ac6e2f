//! The `recur` command-line tool.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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

#[derive(Subcommand)]
enum Command {
    /// Run every PyTorch golden case (*.safetensors) in DIR, forward and backward.
    Conformance {
        /// Directory of fixture files.
        #[arg(default_value = "tests/fixtures")]
        dir: PathBuf,
    },
    /// Time named workloads; prints one JSON line per workload.
    Bench {
        /// Comma-separated workloads (default: all).
        #[arg(long, value_delimiter = ',')]
        workloads: Vec<String>,
        /// Timed runs per workload (median reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    recur::gemm::set_num_threads(cli.threads);
    match cli.command {
        Command::Conformance { dir } => conformance(&dir),
        Command::Bench { workloads, runs } => bench(workloads, runs),
    }
}

fn conformance(dir: &std::path::Path) -> ExitCode {
    let reports = match recur::conformance::run_dir(dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut failed = 0;
    for r in &reports {
        println!("{}", r.line());
        if !r.ok() {
            failed += 1;
        }
    }
    println!("{} passed, {} failed", reports.len() - failed, failed);
    if failed == 0 && !reports.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn bench(mut workloads: Vec<String>, runs: usize) -> ExitCode {
    if workloads.is_empty() {
        workloads = recur::bench::WORKLOADS
            .iter()
            .map(|s| s.to_string())
            .collect();
    }
    for w in &workloads {
        match recur::bench::run(w, runs) {
            Ok(r) => println!("{}", serde_json::to_string(&r).expect("serializable")),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
