//! `recur_serve`: an HTTP server for recur models (`recur serve`).
//!
//! * [`App::load`] loads every model and starts one batcher thread per model ([`batcher`]);
//! * [`router`] is the axum router of the endpoint contract (`/health`, `/v1/models`,
//!   `/v1/translate`, `/metrics`, `/openapi.json`, `/` the web demo);
//! * [`serve`] serves a bound listener until a shutdown future resolves, then finishes the
//!   requests in flight; [`run`] is the whole server as the CLI starts it (binds, prints the
//!   address on stderr, stops on SIGTERM or Ctrl-C).
//!
//! Decoding never runs on the async runtime: a request is parsed and checked against the
//! [`Limits`] on the runtime, queued to its model's bounded queue, decoded together with the
//! requests that arrived within the batching window on the model's own thread, and answered
//! through a oneshot channel. Decoding results do not depend on batch composition, so every
//! answer is byte-identical to decoding the request alone with `recur translate`.

#![warn(missing_docs)]

pub mod api;
pub mod batcher;
pub mod client;
pub mod metrics;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use recur::transducer::Transducer;

pub use api::router;
pub use batcher::{Batching, ModelHandle};
pub use metrics::Metrics;

/// The limits every request is checked against; each has a CLI flag and a clear error.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request body in bytes (413 above).
    pub max_body_bytes: usize,
    /// Most inputs in one request (413 above).
    pub max_inputs: usize,
    /// Most characters in one input (413 above).
    pub max_input_chars: usize,
    /// Largest beam (400 above).
    pub max_beam: usize,
    /// Largest n-best (400 above; as in the CLI, n-best is also clamped to the beam).
    pub max_nbest: usize,
    /// Largest `max_len` and `min_len` a request may ask for (400 above).
    pub max_len: usize,
    /// Largest cost of one request, Σ over inputs of (characters + 1) × beam (413 above): it
    /// bounds the decoding time of a request.
    pub max_cost: usize,
    /// Requests waiting per model before the server answers 503 with `Retry-After`.
    pub queue: usize,
    /// Per-request deadline: queued and decoding; 504 when it passes.
    pub timeout: Duration,
    /// Requests handled at once by the HTTP layer (tower's concurrency limit); more wait.
    pub max_concurrent: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 * 1024,
            max_inputs: 64,
            max_input_chars: 256,
            max_beam: 16,
            max_nbest: 16,
            max_len: 500,
            max_cost: 4096,
            queue: 1024,
            timeout: Duration::from_secs(10),
            max_concurrent: 1024,
        }
    }
}

/// A model to serve: the name clients use and what [`Transducer::load`] takes.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    /// Name in requests and in `/v1/models`.
    pub name: String,
    /// A model name (`recur models`) or a model directory.
    pub source: String,
}

impl ModelSpec {
    /// Parses `NAME=DIR` or a bare `NAME` (then loaded by that name).
    pub fn parse(s: &str) -> Result<ModelSpec, Error> {
        let (name, source) = match s.split_once('=') {
            Some((n, d)) => (n.trim(), d.trim()),
            None => (s.trim(), s.trim()),
        };
        if name.is_empty() || source.is_empty() {
            return Err(Error(format!(
                "--model {s:?}: expected NAME or NAME=DIR with both parts non-empty"
            )));
        }
        let ok = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok || name.len() > 64 {
            return Err(Error(format!(
                "--model {s:?}: a name has at most 64 characters among A-Z a-z 0-9 - _ ."
            )));
        }
        Ok(ModelSpec {
            name: name.to_string(),
            source: source.to_string(),
        })
    }
}

/// The server's error: a message for the operator.
#[derive(Debug, Clone)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// The loaded models with their batchers, the limits and the metrics: the router's state.
pub struct App {
    /// The served models, in the order given.
    pub models: Vec<ModelHandle>,
    /// Request limits.
    pub limits: Limits,
    /// Counters and histograms for `/metrics`.
    pub metrics: Arc<Metrics>,
}

impl App {
    /// Loads every model (an error names the one that failed) and starts its batcher.
    pub fn load(specs: &[ModelSpec], limits: Limits, batching: Batching) -> Result<App, Error> {
        if specs.is_empty() {
            return Err(Error(
                "no model to serve: give --model NAME or --model NAME=DIR".into(),
            ));
        }
        let metrics = Arc::new(Metrics::default());
        let mut models: Vec<ModelHandle> = Vec::with_capacity(specs.len());
        for spec in specs {
            if models.iter().any(|m| m.name == spec.name) {
                return Err(Error(format!(
                    "--model: the name {:?} is given twice",
                    spec.name
                )));
            }
            let t = Transducer::load(&spec.source)
                .map_err(|e| Error(format!("loading model {:?}: {e}", spec.name)))?;
            let summary = summary_of(spec, &t);
            models.push(ModelHandle::start(
                spec.name.clone(),
                summary,
                t,
                &limits,
                batching.clone(),
                metrics.clone(),
            )?);
        }
        Ok(App {
            models,
            limits,
            metrics,
        })
    }

    /// The model named `name`.
    pub fn model(&self, name: &str) -> Option<&ModelHandle> {
        self.models.iter().find(|m| m.name == name)
    }
}

/// One line about a model: the first line of its model card (as `recur models`), else its
/// tokenizers.
fn summary_of(spec: &ModelSpec, t: &Transducer) -> String {
    let from_list = recur::models::available()
        .into_iter()
        .find(|m| m.name == spec.source)
        .map(|m| m.summary);
    let from_card = || {
        let card =
            std::fs::read_to_string(std::path::Path::new(&spec.source).join("MODEL_CARD.md"))
                .ok()?;
        let first = card.lines().find(|l| !l.trim().is_empty())?;
        let line = first.trim_start_matches('#').trim();
        let line = line.split_once(':').map(|(_, r)| r.trim()).unwrap_or(line);
        Some(line.to_string())
    };
    from_list
        .filter(|s| !s.is_empty())
        .or_else(from_card)
        .unwrap_or_else(|| {
            format!(
                "{:?} → {:?} model",
                t.config.data.src_tokens, t.config.data.tgt_tokens
            )
        })
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, finishes the
/// requests in flight and returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Where and how [`run`] serves.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The models.
    pub models: Vec<ModelSpec>,
    /// Address to bind (127.0.0.1 by default: loopback only).
    pub host: String,
    /// Port (0 = any free port; the address is printed on stderr).
    pub port: u16,
    /// Request limits.
    pub limits: Limits,
    /// Batching window and budget.
    pub batching: Batching,
}

/// The server as `recur serve` runs it: loads the models, binds, prints
/// `listening on http://ADDR` on stderr, serves until SIGTERM or Ctrl-C, then stops accepting
/// and finishes the requests in flight (waiting at most the request timeout plus 5 s).
pub fn run(config: ServeConfig) -> Result<(), Error> {
    let app = Arc::new(App::load(
        &config.models,
        config.limits.clone(),
        config.batching,
    )?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error(format!("starting the async runtime: {e}")))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port))
            .await
            .map_err(|e| Error(format!("binding {}:{}: {e}", config.host, config.port)))?;
        let addr: SocketAddr = listener
            .local_addr()
            .map_err(|e| Error(format!("the bound address: {e}")))?;
        eprintln!("listening on http://{addr}");
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let signalled = async move {
            shutdown_signal().await;
            eprintln!("shutting down: finishing the requests in flight");
            let _ = stop_tx.send(true);
        };
        let grace = config.limits.timeout + Duration::from_secs(5);
        let mut stop_rx2 = stop_rx.clone();
        let hard_stop = async move {
            let _ = stop_rx2.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            r = serve(listener, app, signalled) => r.map_err(|e| Error(format!("serving: {e}")))?,
            _ = hard_stop => eprintln!("shutdown: grace period over, exiting"),
        }
        drop(stop_rx);
        Ok(())
    })
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
