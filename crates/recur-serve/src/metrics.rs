//! Prometheus metrics, written by hand in the text exposition format (no dependency): requests
//! by path, model and status, latency histogram, batch sizes, queue depth and decoding
//! throughput per model. Label values come only from the served model names and the known
//! paths, so the number of series is bounded.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
];
const SIZE_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

#[derive(Clone, Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, buckets: &[f64], v: f64) {
        if self.counts.len() != buckets.len() {
            self.counts = vec![0; buckets.len()];
        }
        for (c, &b) in self.counts.iter_mut().zip(buckets) {
            if v <= b {
                *c += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, buckets: &[f64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in buckets.iter().enumerate() {
            let c = self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {c}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
struct ModelStats {
    batch_requests: Histogram,
    batch_inputs: Histogram,
    src_tokens: u64,
    out_tokens: u64,
    decode_seconds: f64,
    last_tokens_per_second: f64,
    peak_queue: usize,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<(String, String), Histogram>,
    models: BTreeMap<String, ModelStats>,
}

/// The server's counters and histograms.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut g = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut g)
    }

    /// One answered request: its path label, model label (empty when none) and status.
    pub fn observe_request(&self, path: &str, model: &str, status: u16, latency: Duration) {
        self.with(|m| {
            *m.requests
                .entry((path.to_string(), model.to_string(), status))
                .or_default() += 1;
            m.latency
                .entry((path.to_string(), model.to_string()))
                .or_default()
                .observe(&LATENCY_BUCKETS, latency.as_secs_f64());
        })
    }

    /// One batch taken by a model's batcher.
    pub fn observe_batch(&self, model: &str, requests: usize, inputs: usize, queue_left: usize) {
        self.with(|m| {
            let s = m.models.entry(model.to_string()).or_default();
            s.batch_requests.observe(&SIZE_BUCKETS, requests as f64);
            s.batch_inputs.observe(&SIZE_BUCKETS, inputs as f64);
            s.peak_queue = s.peak_queue.max(queue_left + requests);
        })
    }

    /// One `translate` call of a batcher.
    pub fn observe_decode(&self, model: &str, src: usize, out: usize, took: Duration) {
        self.with(|m| {
            let s = m.models.entry(model.to_string()).or_default();
            s.src_tokens += src as u64;
            s.out_tokens += out as u64;
            s.decode_seconds += took.as_secs_f64();
            let secs = took.as_secs_f64();
            if secs > 0.0 {
                s.last_tokens_per_second = out as f64 / secs;
            }
        })
    }

    /// The Prometheus text; `queues` gives each served model's current queue depth.
    pub fn render(&self, queues: &[(String, usize)]) -> String {
        let mut out = String::new();
        self.with(|m| {
            out.push_str("# HELP recur_http_requests_total HTTP requests answered, by path, model and status.\n# TYPE recur_http_requests_total counter\n");
            for ((path, model, status), n) in &m.requests {
                let _ = writeln!(
                    out,
                    "recur_http_requests_total{{path=\"{path}\",model=\"{model}\",status=\"{status}\"}} {n}"
                );
            }
            out.push_str("# HELP recur_http_request_duration_seconds Request latency, by path and model.\n# TYPE recur_http_request_duration_seconds histogram\n");
            for ((path, model), h) in &m.latency {
                let labels = format!("path=\"{path}\",model=\"{model}\"");
                h.render(&mut out, "recur_http_request_duration_seconds", &labels, &LATENCY_BUCKETS);
            }
            out.push_str("# HELP recur_batch_requests Requests decoded together in one batch.\n# TYPE recur_batch_requests histogram\n");
            for (model, s) in &m.models {
                let labels = format!("model=\"{model}\"");
                s.batch_requests.render(&mut out, "recur_batch_requests", &labels, &SIZE_BUCKETS);
            }
            out.push_str("# HELP recur_batch_inputs Inputs decoded together in one batch.\n# TYPE recur_batch_inputs histogram\n");
            for (model, s) in &m.models {
                let labels = format!("model=\"{model}\"");
                s.batch_inputs.render(&mut out, "recur_batch_inputs", &labels, &SIZE_BUCKETS);
            }
            out.push_str("# HELP recur_queue_depth Requests waiting for their model's batcher.\n# TYPE recur_queue_depth gauge\n");
            for (model, d) in queues {
                let _ = writeln!(out, "recur_queue_depth{{model=\"{model}\"}} {d}");
            }
            out.push_str("# HELP recur_queue_depth_peak Most requests queued or taken at once.\n# TYPE recur_queue_depth_peak gauge\n");
            for (model, s) in &m.models {
                let _ = writeln!(out, "recur_queue_depth_peak{{model=\"{model}\"}} {}", s.peak_queue);
            }
            out.push_str("# HELP recur_source_tokens_total Source tokens decoded.\n# TYPE recur_source_tokens_total counter\n");
            for (model, s) in &m.models {
                let _ = writeln!(out, "recur_source_tokens_total{{model=\"{model}\"}} {}", s.src_tokens);
            }
            out.push_str("# HELP recur_output_tokens_total Output tokens of the best hypotheses.\n# TYPE recur_output_tokens_total counter\n");
            for (model, s) in &m.models {
                let _ = writeln!(out, "recur_output_tokens_total{{model=\"{model}\"}} {}", s.out_tokens);
            }
            out.push_str("# HELP recur_decode_seconds_total Time spent decoding.\n# TYPE recur_decode_seconds_total counter\n");
            for (model, s) in &m.models {
                let _ = writeln!(out, "recur_decode_seconds_total{{model=\"{model}\"}} {}", s.decode_seconds);
            }
            out.push_str("# HELP recur_tokens_per_second Output tokens per second of decoding, overall and in the last batch.\n# TYPE recur_tokens_per_second gauge\n");
            for (model, s) in &m.models {
                let overall = if s.decode_seconds > 0.0 {
                    s.out_tokens as f64 / s.decode_seconds
                } else {
                    0.0
                };
                let _ = writeln!(out, "recur_tokens_per_second{{model=\"{model}\",window=\"all\"}} {overall}");
                let _ = writeln!(
                    out,
                    "recur_tokens_per_second{{model=\"{model}\",window=\"last_batch\"}} {}",
                    s.last_tokens_per_second
                );
            }
        });
        out
    }
}
