//! `recur serve`: the HTTP server of `recur_serve` with its options.

use std::time::Duration;

use anyhow::Result;
use clap::Args;
use recur_serve::{Batching, Limits, ModelSpec, ServeConfig};

/// Options of `recur serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// A model to serve: a name (`recur models`) or NAME=DIR; repeat for several.
    #[arg(long = "model", required = true)]
    models: Vec<String>,
    /// Address to bind (loopback by default).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0 = any free port; the address is printed on stderr).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Batching window in milliseconds: how long a batch waits for more requests.
    #[arg(long, default_value_t = 2.0)]
    batch_window_ms: f64,
    /// Batch budget: Σ (source characters + 1) × beam over the requests decoded together (0 = no
    /// batching).
    #[arg(long, default_value_t = 1024)]
    batch_tokens: usize,
    /// Batcher threads per model (one decodes while the next gathers). Default: one per core,
    /// each decoding on one kernel thread; 1 when `recur --threads N` is given.
    #[arg(long)]
    batch_workers: Option<usize>,
    /// Requests waiting per model before 503.
    #[arg(long, default_value_t = 1024)]
    queue: usize,
    /// Per-request deadline in milliseconds (504 after).
    #[arg(long, default_value_t = 10000)]
    timeout_ms: u64,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 65536)]
    max_body_bytes: usize,
    /// Most inputs per request.
    #[arg(long, default_value_t = 64)]
    max_inputs: usize,
    /// Most characters per input.
    #[arg(long, default_value_t = 256)]
    max_input_chars: usize,
    /// Largest beam a request may ask for.
    #[arg(long, default_value_t = 16)]
    max_beam: usize,
    /// Largest request cost: Σ over inputs of (characters + 1) × beam (bounds decoding time).
    #[arg(long, default_value_t = 4096)]
    max_request_cost: usize,
    /// Largest n-best a request may ask for.
    #[arg(long, default_value_t = 16)]
    max_nbest: usize,
}

/// Runs the server until SIGTERM or Ctrl-C.
pub fn run(a: ServeArgs, threads: usize) -> Result<()> {
    let models = a
        .models
        .iter()
        .map(|m| ModelSpec::parse(m))
        .collect::<Result<Vec<_>, _>>()?;
    let window = Duration::try_from_secs_f64(a.batch_window_ms.max(0.0) / 1000.0)
        .map_err(|e| anyhow::anyhow!("--batch-window-ms: {e}"))?;
    let limits = Limits {
        max_body_bytes: a.max_body_bytes.max(1),
        max_inputs: a.max_inputs,
        max_input_chars: a.max_input_chars,
        max_beam: a.max_beam.max(1),
        max_nbest: a.max_nbest.max(1),
        max_cost: a.max_request_cost.max(1),
        queue: a.queue.max(1),
        timeout: Duration::from_millis(a.timeout_ms.max(1)),
        ..Limits::default()
    };
    recur_serve::run(ServeConfig {
        models,
        host: a.host,
        port: a.port,
        limits,
        batching: Batching {
            window,
            budget: a.batch_tokens,
            workers: batch_workers(a.batch_workers, threads),
        },
    })?;
    Ok(())
}

/// The batchers per model: as asked, else one per core decoding on one kernel thread each when
/// the kernels' threads were left to recur (`threads` = 0). Small batches gain more from
/// decoding side by side than from splitting each product between cores (64 one-word clients
/// on 2 cores: 5,637 requests/s and p99 18.7 ms with two single-threaded batchers; 3,462 and
/// 27 ms with one).
fn batch_workers(asked: Option<usize>, threads: usize) -> usize {
    match asked {
        Some(n) => n.max(1),
        None if threads == 0 => {
            let cores = recur::gemm::num_threads();
            recur::gemm::set_num_threads(1);
            cores.max(1)
        }
        None => 1,
    }
}
