//! Dynamic batching: a blocking thread per model (or a few, `workers`, taking turns to gather)
//! decodes together the requests that arrived within a short window, up to a token budget.
//!
//! Requests wait in a bounded queue ([`std::sync::mpsc::sync_channel`]); a full queue is
//! refused at once (the caller answers 503). The batcher takes the oldest request, then every
//! request that arrives until `window` after that request was queued (at once when the queue
//! already holds them), while the batch's cost (source characters × beam) stays under `budget`.
//! Requests with equal decoding options and mode go into one `translate` call; each answer
//! goes back through its oneshot channel. A request whose client has gone or whose deadline has
//! passed is skipped. Decoding happens on this thread (and the kernels' own threads), never on
//! the async runtime.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use recur::seq2seq::search::DecodeOptions;
use recur::transducer::{Output, Transducer};
use tokio::sync::oneshot;

use crate::metrics::Metrics;
use crate::{Error, Limits};

/// Batching parameters.
#[derive(Clone, Debug)]
pub struct Batching {
    /// How long the batcher waits for more requests after the oldest one was queued.
    pub window: Duration,
    /// Cost budget of one batch: source characters × beam, summed (0 = every request alone).
    pub budget: usize,
    /// Batcher threads per model: while one decodes a batch, the next gathers its own.
    pub workers: usize,
}

impl Default for Batching {
    fn default() -> Self {
        Batching {
            window: Duration::from_millis(2),
            budget: 1024,
            workers: 1,
        }
    }
}

/// What a job asks for.
pub struct Job {
    /// The inputs (words, or lines in sentence mode).
    pub inputs: Vec<String>,
    /// Decoding options.
    pub opts: DecodeOptions,
    /// Sentence mode (`Transducer::translate_sentences`).
    pub sentences: bool,
    /// When the answer is no longer wanted.
    pub deadline: Instant,
    /// When the job was queued.
    pub queued: Instant,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<Answer, String>>,
}

/// A decoded job.
pub enum Answer {
    /// Per input, its hypotheses best first.
    Words(Vec<Vec<Output>>),
    /// Per line, the transliterated line.
    Sentences(Vec<String>),
}

/// Why a job was not queued.
pub enum Refused {
    /// The queue is full.
    Full,
    /// The batcher has stopped.
    Stopped,
}

/// A served model: its transducer (for the request checks and attention labels) and the
/// sending end of its batcher's queue.
pub struct ModelHandle {
    /// Name in requests.
    pub name: String,
    /// One line about the model.
    pub summary: String,
    /// The model (shared with its batcher thread).
    pub transducer: Arc<Transducer>,
    tx: SyncSender<Job>,
    depth: Arc<AtomicUsize>,
}

impl ModelHandle {
    /// Starts the batcher thread of `t`.
    pub fn start(
        name: String,
        summary: String,
        t: Transducer,
        limits: &Limits,
        batching: Batching,
        metrics: Arc<Metrics>,
    ) -> Result<ModelHandle, Error> {
        let (tx, rx) = sync_channel::<Job>(limits.queue.max(1));
        let transducer = Arc::new(t);
        let depth = Arc::new(AtomicUsize::new(0));
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..batching.workers.max(1) {
            let worker = Worker {
                name: name.clone(),
                t: transducer.clone(),
                rx: rx.clone(),
                depth: depth.clone(),
                batching: batching.clone(),
                metrics: metrics.clone(),
            };
            std::thread::Builder::new()
                .name(format!("batcher-{name}-{i}"))
                .spawn(move || worker.run())
                .map_err(|e| Error(format!("starting the batcher of {name:?}: {e}")))?;
        }
        Ok(ModelHandle {
            name,
            summary,
            transducer,
            tx,
            depth,
        })
    }

    /// Queues `job` without waiting.
    pub fn submit(&self, job: Job) -> Result<(), Refused> {
        self.depth.fetch_add(1, Ordering::SeqCst);
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.depth.fetch_sub(1, Ordering::SeqCst);
                Err(match e {
                    TrySendError::Full(_) => Refused::Full,
                    TrySendError::Disconnected(_) => Refused::Stopped,
                })
            }
        }
    }

    /// Requests waiting in the queue now.
    pub fn queue_depth(&self) -> usize {
        self.depth.load(Ordering::SeqCst)
    }
}

struct Worker {
    name: String,
    t: Arc<Transducer>,
    /// Shared by the model's batcher threads: one gathers a batch at a time.
    rx: Arc<Mutex<Receiver<Job>>>,
    depth: Arc<AtomicUsize>,
    batching: Batching,
    metrics: Arc<Metrics>,
}

/// The cost of decoding `inputs` with `beam`: Σ (characters + 1) × beam.
pub fn cost(inputs: &[String], beam: usize) -> usize {
    let chars: usize = inputs.iter().map(|s| s.chars().count() + 1).sum();
    chars.saturating_mul(beam.max(1))
}

impl Worker {
    fn take(&self, job: Job) -> Job {
        self.depth.fetch_sub(1, Ordering::SeqCst);
        job
    }

    fn run(self) {
        // Ends when every sender is gone (the server has stopped).
        while let Some(batch) = self.gather() {
            self.decode(batch);
        }
    }

    /// The next batch: the oldest request, then those that arrive until `window` after it was
    /// queued, within the budget. `None` once the queue is closed and empty.
    fn gather(&self) -> Option<Vec<Job>> {
        let rx = match self.rx.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let first = self.take(rx.recv().ok()?);
        let until = first.queued + self.batching.window;
        let mut spent = cost(&first.inputs, first.opts.beam_size);
        let mut batch = vec![first];
        while spent < self.batching.budget {
            let now = Instant::now();
            let next = if now >= until {
                rx.try_recv().ok()
            } else {
                // Timeout or disconnected: decode what we have.
                rx.recv_timeout(until - now).ok()
            };
            let Some(job) = next else { break };
            let job = self.take(job);
            spent = spent.saturating_add(cost(&job.inputs, job.opts.beam_size));
            batch.push(job);
        }
        Some(batch)
    }

    fn decode(&self, batch: Vec<Job>) {
        let now = Instant::now();
        let mut live: Vec<Job> = Vec::with_capacity(batch.len());
        for job in batch {
            if job.reply.is_closed() {
                continue;
            }
            if now >= job.deadline {
                let _ = job.reply.send(Err("deadline".into()));
                continue;
            }
            live.push(job);
        }
        if live.is_empty() {
            return;
        }
        let inputs: usize = live.iter().map(|j| j.inputs.len()).sum();
        self.metrics.observe_batch(
            &self.name,
            live.len(),
            inputs,
            self.depth.load(Ordering::SeqCst),
        );
        // Group equal options and mode, keeping arrival order within a group.
        let mut groups: Vec<Vec<Job>> = Vec::new();
        for job in live {
            match groups
                .iter_mut()
                .find(|g| g[0].opts == job.opts && g[0].sentences == job.sentences)
            {
                Some(g) => g.push(job),
                None => groups.push(vec![job]),
            }
        }
        for group in groups {
            self.decode_group(group);
        }
    }

    fn decode_group(&self, group: Vec<Job>) {
        let start = Instant::now();
        let refs: Vec<&str> = group
            .iter()
            .flat_map(|j| j.inputs.iter().map(|s| s.as_str()))
            .collect();
        let src_tokens: usize = refs.iter().map(|s| s.chars().count()).sum();
        let (opts, sentences) = (&group[0].opts, group[0].sentences);
        let t = &self.t;
        // A panic in the kernels must not take the model's thread down with it.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if sentences {
                t.translate_sentences(&refs, opts).map(Answer::Sentences)
            } else {
                t.translate(&refs, opts).map(Answer::Words)
            }
        }));
        let result = match result {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(e)) => Err(format!("decoding failed: {e}")),
            Err(_) => Err("decoding failed: internal error".to_string()),
        };
        let out_tokens = match &result {
            Ok(Answer::Words(w)) => w
                .iter()
                .filter_map(|hs| hs.first())
                .map(|o| t.config.data.tgt_tokens.tokenize(&o.text).len())
                .sum(),
            Ok(Answer::Sentences(s)) => s.iter().map(|l| l.chars().count()).sum(),
            Err(_) => 0,
        };
        self.metrics
            .observe_decode(&self.name, src_tokens, out_tokens, start.elapsed());
        match result {
            Err(e) => {
                for job in group {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
            Ok(Answer::Words(all)) => {
                let mut all = all.into_iter();
                for job in group {
                    let part: Vec<Vec<Output>> = all.by_ref().take(job.inputs.len()).collect();
                    let _ = job.reply.send(Ok(Answer::Words(part)));
                }
            }
            Ok(Answer::Sentences(all)) => {
                let mut all = all.into_iter();
                for job in group {
                    let part: Vec<String> = all.by_ref().take(job.inputs.len()).collect();
                    let _ = job.reply.send(Ok(Answer::Sentences(part)));
                }
            }
        }
    }
}
