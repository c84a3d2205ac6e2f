//! Load benchmark (not a test): N concurrent clients on loopback send one-word or one-sentence
//! requests for a fixed time; prints requests/s, p50/p99 latency and peak RSS.
//!
//! ```sh
//! cargo run --release -p recur-serve --example load -- --clients 64 --seconds 10
//! cargo run --release -p recur-serve --example load -- --clients 64 --seconds 10 --no-batching
//! cargo run --release -p recur-serve --example load -- --clients 256 --seconds 60 --kind mixed
//! cargo run --release -p recur-serve --example load -- --offline   # recur translate's throughput, batch 256
//! (--threads N: the kernels' threads, as `recur --threads N`; --window-ms, --budget, --workers: batching)
//! ```
//!
//! The server runs in this process (so peak RSS is the server's plus the small clients'),
//! serving `hi-translit` with the default limits, unless `--addr HOST:PORT` names a running
//! one. Words are the sources (column 1) of `data/dakshina_hi/lexicons/hi.translit.sampled.test.tsv`;
//! a sentence is six of them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use recur_serve::client::Client;
use recur_serve::{App, Batching, Limits, ModelSpec};
use serde_json::json;

struct Args {
    clients: usize,
    seconds: f64,
    kind: String,
    no_batching: bool,
    window_ms: f64,
    budget: usize,
    addr: Option<SocketAddr>,
    offline: bool,
    threads: usize,
    workers: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        clients: 64,
        seconds: 10.0,
        kind: "word".into(),
        no_batching: false,
        window_ms: Batching::default().window.as_secs_f64() * 1000.0,
        budget: Batching::default().budget,
        addr: None,
        offline: false,
        threads: 0,
        workers: Batching::default().workers,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match flag.as_str() {
            "--clients" => {
                a.clients = value("--clients")?
                    .parse()
                    .map_err(|e| format!("--clients: {e}"))?
            }
            "--seconds" => {
                a.seconds = value("--seconds")?
                    .parse()
                    .map_err(|e| format!("--seconds: {e}"))?
            }
            "--kind" => a.kind = value("--kind")?,
            "--window-ms" => {
                a.window_ms = value("--window-ms")?
                    .parse()
                    .map_err(|e| format!("--window-ms: {e}"))?
            }
            "--budget" => {
                a.budget = value("--budget")?
                    .parse()
                    .map_err(|e| format!("--budget: {e}"))?
            }
            "--addr" => {
                a.addr = Some(
                    value("--addr")?
                        .parse()
                        .map_err(|e| format!("--addr: {e}"))?,
                )
            }
            "--threads" => {
                a.threads = value("--threads")?
                    .parse()
                    .map_err(|e| format!("--threads: {e}"))?
            }
            "--workers" => {
                a.workers = value("--workers")?
                    .parse()
                    .map_err(|e| format!("--workers: {e}"))?
            }
            "--no-batching" => a.no_batching = true,
            "--offline" => a.offline = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if !["word", "sentence", "mixed"].contains(&a.kind.as_str()) {
        return Err("--kind is word, sentence or mixed".into());
    }
    if a.clients == 0 || a.clients > 4096 || !(a.seconds > 0.0 && a.seconds <= 3600.0) {
        return Err("--clients 1..=4096, --seconds up to 3600".into());
    }
    Ok(a)
}

fn words() -> Result<Vec<String>, String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/dakshina_hi/lexicons/hi.translit.sampled.test.tsv"
    );
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split('\t').nth(1))
        .map(str::to_string)
        .collect())
}

/// Peak and current resident set size of this process in KiB (`VmHWM`, `VmRSS`).
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Prints a line on stdout (a closed stdout is not an error worth a panic).
fn say(line: String) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{line}");
}

/// CPU seconds (user + system) this process has used, from `/proc/self/stat` (100 ticks/s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn offline(words: &[String]) -> Result<(), String> {
    let t = recur::transducer::Transducer::load("hi-translit").map_err(|e| e.to_string())?;
    let req = recur_serve::api::TranslateRequest {
        model: "hi-translit".into(),
        inputs: vec![],
        beam: None,
        nbest: 1,
        alpha: 0.0,
        max_len: None,
        min_len: 0,
        sentences: false,
        attention: false,
    };
    let opts = req.options(&t).map_err(|e| e.message)?;
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    for chunk in words.chunks(256) {
        let refs: Vec<&str> = chunk.iter().map(|s| s.as_str()).collect();
        t.translate(&refs, &opts).map_err(|e| e.to_string())?;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    say(format!(
        "offline (Transducer::translate, batch 256, as recur translate): {} words in {secs:.2} s = {:.0} words/s; {cpu:.2} CPU s = {:.0} words per CPU second",
        words.len(),
        words.len() as f64 / secs,
        words.len() as f64 / cpu.max(1e-9),
    ));
    Ok(())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let a = parse_args()?;
    // As `recur --threads N`: the kernels' threads (0 = all cores).
    recur::gemm::set_num_threads(a.threads);
    let words = Arc::new(words()?);
    if a.offline {
        return offline(&words);
    }
    let (addr, _server) = match a.addr {
        Some(addr) => (addr, None),
        None => {
            let batching = if a.no_batching {
                Batching {
                    window: Duration::ZERO,
                    budget: 0,
                    workers: a.workers,
                }
            } else {
                Batching {
                    window: Duration::from_secs_f64(a.window_ms.max(0.0) / 1000.0),
                    budget: a.budget,
                    workers: a.workers,
                }
            };
            let specs = [ModelSpec::parse("hi-translit").map_err(|e| e.to_string())?];
            let app = Arc::new(
                App::load(&specs, Limits::default(), batching).map_err(|e| e.to_string())?,
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| e.to_string())?;
            let addr = listener.local_addr().map_err(|e| e.to_string())?;
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(recur_serve::serve(listener, app, async move {
                let _ = rx.await;
            }));
            (addr, Some(tx))
        }
    };
    // Warm up, then idle RSS.
    let mut c = Client::new(addr);
    for w in words.iter().take(50) {
        c.post_json(
            "/v1/translate",
            &json!({"model":"hi-translit","inputs":[w]}),
        )
        .await
        .map_err(|e| e.to_string())?;
    }
    let (_, idle) = rss_kib();
    let deadline = Instant::now() + Duration::from_secs_f64(a.seconds);
    let mut tasks = Vec::with_capacity(a.clients);
    for k in 0..a.clients {
        let words = words.clone();
        let kind = a.kind.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Client::new(addr);
            let mut lat: Vec<f32> = Vec::new();
            let (mut inputs, mut errors) = (0usize, 0usize);
            let mut i = k * 7919;
            while Instant::now() < deadline {
                i += 1;
                let sentence = kind == "sentence" || (kind == "mixed" && i % 2 == 0);
                let body = if sentence {
                    let line: Vec<&str> = (0..6)
                        .map(|j| words[(i * 6 + j) % words.len()].as_str())
                        .collect();
                    json!({"model":"hi-translit","inputs":[line.join(" ")],"sentences":true})
                } else {
                    json!({"model":"hi-translit","inputs":[words[i % words.len()]]})
                };
                let t0 = Instant::now();
                match c.post_json("/v1/translate", &body).await {
                    Ok(r) if r.status == 200 => {
                        lat.push(t0.elapsed().as_secs_f32());
                        inputs += 1;
                    }
                    _ => errors += 1,
                }
            }
            (lat, inputs, errors)
        }));
    }
    let start = Instant::now();
    let cpu0 = cpu_seconds();
    let mut lat: Vec<f32> = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, _, e) = t.await.map_err(|e| e.to_string())?;
        lat.extend(l);
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let (peak, _) = rss_kib();
    lat.sort_by(|x, y| x.total_cmp(y));
    let q = |p: f64| {
        if lat.is_empty() {
            0.0
        } else {
            lat[((lat.len() - 1) as f64 * p).round() as usize] * 1000.0
        }
    };
    let m = c.get("/metrics").await.map_err(|e| e.to_string())?.text();
    let count = m
        .lines()
        .find_map(|l| l.strip_prefix("recur_batch_requests_count{model=\"hi-translit\"} "))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    let sum = m
        .lines()
        .find_map(|l| l.strip_prefix("recur_batch_requests_sum{model=\"hi-translit\"} "))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    say(format!(
        "{} clients, {} requests, {:.1} s, batching {}: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, errors {errors}, {:.0} requests per CPU second (server and clients), mean batch {:.1} requests, RSS idle {:.1} MiB, peak {:.1} MiB",
        a.clients,
        a.kind,
        secs,
        if a.no_batching { "off" } else { "on" },
        lat.len() as f64 / secs,
        q(0.5),
        q(0.99),
        q(1.0),
        lat.len() as f64 / cpu.max(1e-9),
        if count > 0.0 { sum / count } else { 0.0 },
        idle as f64 / 1024.0,
        peak as f64 / 1024.0,
    ));
    Ok(())
}
