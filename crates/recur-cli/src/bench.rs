//! Named benchmark workloads with counted FLOPs: `recur bench` prints one JSON line each.
//!
//! The workloads, their warm-up/run schedule and the FLOP formulas are those of
//! `bench/pytorch_bench.py` and `bench/FLOPS.md`: FLOPs count 2 per multiply-add of the matrix
//! products only (element-wise work is not counted), backward = 2 × forward. The JSON fields
//! are the script's, with `"impl": "recur"`, so `bench/ratios.py` pairs the two sides.

use std::time::Instant;

use rand::Rng;
use serde::Serialize;

use recur::error::Result;
use recur::module::{seeded_rng, Module, Rng64};
use recur::nn::{RnnConfig, RnnMode};
use recur::optim::{Adam, AdamConfig, Optimizer};
use recur::seq2seq::decoder::StepWork;
use recur::seq2seq::inference::{encode_sources, translate_packed, DecodeState};
use recur::seq2seq::model::argmax;
use recur::seq2seq::search::{decode, DecodeOptions, MaxLen, StepModel};
use recur::seq2seq::{
    AttentionKind, Seq2Seq, Seq2SeqConfig, Seq2SeqPacked, TokenBatch, TrainOptions, BOS, UNK,
};
use recur::tensor::Tensor;

/// One benchmark result, printed as a JSON line (the fields of `pytorch_bench.py`).
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    /// `recur`.
    #[serde(rename = "impl")]
    pub implementation: &'static str,
    /// Workload name, e.g. `w1-lstm`.
    pub workload: String,
    /// Median wall time of one run, milliseconds.
    pub median_ms: f64,
    /// Fastest run, milliseconds.
    pub min_ms: f64,
    /// Timed runs (after warm-up).
    pub runs: usize,
    /// Kernel threads.
    pub threads: usize,
    /// Tokens (time steps × batch) per second (w1-w3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_s: Option<f64>,
    /// Words per second (w4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub words_per_s: Option<f64>,
    /// Achieved GFLOP/s from the counted FLOPs.
    pub gflops: f64,
    /// Counted FLOPs of one run.
    pub flops: u64,
    /// Peak resident set size of the process so far, MiB.
    pub peak_rss_mb: f64,
    /// 1-minute load average when the workload started (the machine may be shared).
    pub loadavg_1m: f64,
    /// w4: the weights decoded with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<&'static str>,
    /// w4: decoder rows computed per run (the FLOPs depend on where decoding stopped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dec_rows: Option<u64>,
}

/// The workloads `recur bench` knows.
pub const WORKLOADS: &[&str] = &[
    "w1-lstm",
    "w1-gru",
    "w2-lstm-infer",
    "w3-train",
    "w3-infer-b64",
    "w3-infer-b1",
    "w4-g2p-b1",
    "w4-g2p-b256",
    "w5-beam-b256",
    "w5-beam-b1",
];

/// `(warm-up, timed runs)` of a workload, full or `--quick`: `SCHEDULE` of `pytorch_bench.py`.
pub fn schedule(name: &str, quick: bool) -> Option<(usize, usize)> {
    let (full, fast) = match name {
        "w1-lstm" | "w1-gru" => ((2, 10), (1, 3)),
        "w2-lstm-infer" => ((50, 500), (20, 100)),
        "w3-train" => ((3, 10), (1, 3)),
        "w3-infer-b64" => ((5, 30), (2, 10)),
        "w3-infer-b1" => ((10, 100), (5, 30)),
        "w4-g2p-b1" => ((1, 5), (1, 3)),
        "w4-g2p-b256" => ((2, 10), (1, 3)),
        "w5-beam-b256" => ((1, 5), (1, 3)),
        "w5-beam-b1" => ((1, 3), (0, 1)),
        _ => return None,
    };
    Some(if quick { fast } else { full })
}

/// GEMM FLOPs of a stacked recurrent layer's forward pass over `steps × batch` tokens:
/// per layer and direction `2·T·B·G·H·(I_l + Hout)` (input projection + recurrence).
pub fn rnn_forward_flops(cfg: &RnnConfig, steps: usize, batch: usize) -> f64 {
    let gh = (cfg.mode.gates() * cfg.hidden_size) as f64;
    let tokens = (steps * batch) as f64;
    (0..cfg.num_layers)
        .map(|l| {
            let input = if l == 0 {
                cfg.input_size
            } else {
                cfg.output_size()
            } as f64;
            2.0 * tokens * gh * (input + cfg.state_size() as f64) * cfg.num_directions() as f64
        })
        .sum()
}

/// Forward FLOPs of the reference seq2seq with Bahdanau attention (`bench/FLOPS.md`): encoder,
/// the key projection once, and per decoder step query, score, context, decoder recurrence and
/// output layer, with K = Hd = D·H. Source length `s`, `t` decoder steps, batch `b`.
pub fn seq2seq_bahdanau_forward_flops(cfg: &Seq2SeqConfig, b: usize, s: usize, t: usize) -> f64 {
    debug_assert_eq!(cfg.attention, AttentionKind::Bahdanau);
    let mut enc = RnnConfig::lstm(cfg.emb_dim, cfg.hidden_size)
        .num_layers(cfg.layers)
        .bidirectional(cfg.bidirectional);
    enc.mode = cfg.cell;
    let (k, hd, e) = (cfg.decoder_hidden(), cfg.decoder_hidden(), cfg.emb_dim);
    let mut dec = RnnConfig::lstm(e + k, hd).num_layers(cfg.layers);
    dec.mode = cfg.cell;
    let (bf, sf, a, v) = (
        b as f64,
        s as f64,
        cfg.attn_dim as f64,
        cfg.tgt_vocab as f64,
    );
    let (k, hd, e) = (k as f64, hd as f64, e as f64);
    let keys = 2.0 * sf * bf * k * a;
    let step =
        2.0 * bf * hd * a + 2.0 * sf * bf * a + 2.0 * sf * bf * k + 2.0 * bf * v * (hd + k + e);
    rnn_forward_flops(&enc, s, b) + keys + t as f64 * step + rnn_forward_flops(&dec, t, b)
}

/// FLOPs of g2p decoding (GRU encoder-decoder, 1 layer, no attention) from the rows actually
/// computed: per encoder row `2·3H·(E+H)`, per decoder row that plus the output `2·V·H`.
pub fn g2p_flops(cfg: &Seq2SeqConfig, enc_rows: u64, dec_rows: u64) -> f64 {
    let (e, h, v) = (
        cfg.emb_dim as f64,
        cfg.hidden_size as f64,
        cfg.tgt_vocab as f64,
    );
    let rnn = 2.0 * 3.0 * h * (e + h);
    enc_rows as f64 * rnn + dec_rows as f64 * (rnn + 2.0 * v * h)
}

/// Peak RSS of this process in MiB (Linux `VmHWM`; 0 elsewhere).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// The 1-minute load average (Linux; 0 elsewhere).
fn loadavg_1m() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Median and fastest wall time of the timed runs, ms.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Median.
    pub median_ms: f64,
    /// Minimum.
    pub min_ms: f64,
}

/// Times `runs` (at least 1) calls after `warmup` calls.
pub fn time_runs(warmup: usize, runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<Timing> {
    for _ in 0..warmup {
        f()?;
    }
    let mut times = Vec::with_capacity(runs.max(1));
    for _ in 0..runs.max(1) {
        let t0 = Instant::now();
        f()?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(Timing {
        median_ms: times[times.len() / 2],
        min_ms: times[0],
    })
}

/// What one workload measured.
#[derive(Clone, Debug)]
pub struct Measured {
    /// Wall times.
    pub timing: Timing,
    /// Tokens (or words, with `words`) processed per run.
    pub units: f64,
    /// The unit is words (w4), not tokens.
    pub words: bool,
    /// Counted FLOPs per run.
    pub flops: f64,
    /// Decoder rows per run (w4).
    pub dec_rows: Option<u64>,
    /// The weights decoded with (w4).
    pub weights: Option<&'static str>,
}

impl Measured {
    fn tokens(timing: Timing, tokens: usize, flops: f64) -> Self {
        Measured {
            timing,
            units: tokens as f64,
            words: false,
            flops,
            dec_rows: None,
            weights: None,
        }
    }
}

/// W1: training step (forward + backward of `sum(output)`) of a 2-layer bidirectional layer,
/// input 256, hidden 512, seq 50, batch 64.
fn w1(mode: RnnMode, warmup: usize, runs: usize) -> Result<Measured> {
    let (t, b) = (50, 64);
    let mut cfg = RnnConfig::lstm(256, 512).num_layers(2).bidirectional(true);
    cfg.mode = mode;
    let mut rnn = cfg.build(&mut seeded_rng(0))?;
    let x = Tensor::full(&[t, b, 256], 0.1);
    let dy = Tensor::full(&[t, b, cfg.output_size()], 1.0);
    let mut rng = seeded_rng(1);
    let timing = time_runs(warmup, runs, || {
        rnn.zero_grad();
        let (_, cache) = rnn.forward_train(&x, None, None, &mut rng)?;
        rnn.backward(&cache, Some(&dy), None, None)?;
        Ok(())
    })?;
    // Backward does two GEMMs per forward GEMM (input/state gradient and weight gradient).
    Ok(Measured::tokens(
        timing,
        t * b,
        3.0 * rnn_forward_flops(&cfg, t, b),
    ))
}

/// W2: inference latency of `nn.LSTM(128, 256)` on one sequence of 20 steps, through the
/// inference API: the weights are packed once ([`recur::nn::Rnn::pack`], outside the timing, as
/// a served model would) and every run is one [`recur::nn::Rnn::forward_packed`] (the same bits
/// as `forward`, which packs the weights again at every call).
fn w2(warmup: usize, runs: usize) -> Result<Measured> {
    let (t, b) = (20, 1);
    let cfg = RnnConfig::lstm(128, 256);
    let rnn = cfg.build(&mut seeded_rng(0))?;
    let packed = rnn.pack();
    let x = Tensor::full(&[t, b, 128], 0.1);
    let timing = time_runs(warmup, runs, || {
        rnn.forward_packed(&packed, &x, None, None).map(|_| ())
    })?;
    Ok(Measured::tokens(
        timing,
        t * b,
        rnn_forward_flops(&cfg, t, b),
    ))
}

/// Source and target length of w3.
pub const W3_LEN: usize = 20;

/// The w3 model, `make_w3_model` of `pytorch_bench.py`: LSTM, vocab 64/64, emb 128, encoder
/// bidirectional 256 × 2 layers (decoder 512 × 2), Bahdanau attention 256, no dropout.
pub fn w3_config() -> Seq2SeqConfig {
    Seq2SeqConfig {
        cell: RnnMode::Lstm,
        src_vocab: 64,
        tgt_vocab: 64,
        emb_dim: 128,
        hidden_size: 256,
        layers: 2,
        bidirectional: true,
        attention: AttentionKind::Bahdanau,
        attn_dim: 256,
        dropout: 0.0,
    }
}

/// `n` random real token ids (no PAD/BOS/EOS/UNK), as `random_tokens` of the script.
fn random_tokens(n: usize, vocab: usize, rng: &mut Rng64) -> Vec<i64> {
    (0..n)
        .map(|_| rng.gen_range(UNK as usize + 1..vocab) as i64)
        .collect()
}

/// W3 training step: zero_grad, teacher-forced forward, cross entropy ignoring PAD, backward
/// (`train_batch`), one Adam(lr 1e-3) step; `b` full-length random sources of length `s`,
/// targets of length `t` with `tgt_in = [BOS, tgt[..t-1]]`.
fn w3_train(
    cfg: &Seq2SeqConfig,
    b: usize,
    (s, t): (usize, usize),
    warmup: usize,
    runs: usize,
) -> Result<Measured> {
    let mut rng = seeded_rng(0);
    let mut model = Seq2Seq::new(cfg.clone(), &mut rng)?;
    let mut opt = Adam::new(AdamConfig::default())?;
    let src = random_tokens(s * b, cfg.src_vocab, &mut rng);
    let lengths = vec![s; b];
    let tgt_out = random_tokens(t * b, cfg.tgt_vocab, &mut rng);
    let mut tgt_in = vec![BOS as i64; b];
    tgt_in.extend_from_slice(&tgt_out[..(t - 1) * b]);
    let timing = time_runs(warmup, runs, || {
        model.zero_grad();
        let batch = TokenBatch {
            src: &src,
            src_lengths: &lengths,
            tgt_in: &tgt_in,
            tgt_out: &tgt_out,
        };
        model.train_batch(batch, TrainOptions::default(), &mut rng)?;
        opt.step(&mut model.params_mut())
    })?;
    let flops = 3.0 * seq2seq_bahdanau_forward_flops(cfg, b, s, t);
    Ok(Measured::tokens(timing, b * t, flops))
}

/// Greedy decoding as the PyTorch loops write it: encode, then feed each step's argmax back
/// into `Decoder::step_infer` from `start` on, for at most `max_steps` steps; with `eos`, stops once
/// every row has emitted it (no log-softmax, no hypothesis bookkeeping). Returns the steps run.
fn greedy_loop(
    model: &Seq2Seq,
    packed: &Seq2SeqPacked,
    src: &[i64],
    lengths: &[usize],
    start: usize,
    max_steps: usize,
    eos: Option<usize>,
) -> Result<usize> {
    let (mem, mut state) = model.encode_with(Some(packed), src, lengths)?;
    let packed = &packed.decoder;
    let (b, v) = (lengths.len(), model.config.tgt_vocab);
    let mut y = vec![start as u32; b];
    let mut done = vec![false; b];
    let mut work = StepWork::default();
    for step in 1..=max_steps {
        let out = model
            .decoder
            .step_infer(packed, &y, &mut state, &mem, &mut work)?;
        for ((yi, row), d) in y.iter_mut().zip(out.logits.chunks_exact(v)).zip(&mut done) {
            *yi = argmax(row) as u32;
            *d |= eos == Some(*yi as usize);
        }
        if eos.is_some() && done.iter().all(|&d| d) {
            return Ok(step);
        }
    }
    Ok(max_steps)
}

/// W3 inference: greedy decoding of `b` full-length random sources of length `s`, exactly `t`
/// steps (no EOS stop), like `Seq2Seq.greedy` of the script.
fn w3_infer(
    cfg: &Seq2SeqConfig,
    b: usize,
    (s, t): (usize, usize),
    warmup: usize,
    runs: usize,
) -> Result<Measured> {
    let mut rng = seeded_rng(0);
    let model = Seq2Seq::new(cfg.clone(), &mut rng)?;
    let src = random_tokens(s * b, cfg.src_vocab, &mut rng);
    let lengths = vec![s; b];
    let packed = model.pack()?; // once, as a served model does
    let timing = time_runs(warmup, runs, || {
        greedy_loop(&model, &packed, &src, &lengths, BOS as usize, t, None).map(|_| ())
    })?;
    Ok(Measured::tokens(
        timing,
        b * t,
        seq2seq_bahdanau_forward_flops(cfg, b, s, t),
    ))
}

/// g2p_en's step cap (as the script).
const G2P_MAX_STEPS: usize = 20;

/// A g2p_en-sized model: GRU, graphemes 29, phonemes 74, emb 256, hidden 256, 1 layer,
/// unidirectional, no attention: the shape of g2p_en's model (w4 with random weights).
pub fn g2p_config() -> Seq2SeqConfig {
    Seq2SeqConfig {
        cell: RnnMode::Gru,
        src_vocab: 29,
        tgt_vocab: 74,
        emb_dim: 256,
        hidden_size: 256,
        layers: 1,
        bidirectional: false,
        attention: AttentionKind::None,
        attn_dim: 0,
        dropout: 0.0,
    }
}

/// g2p_en's tokenisation: `<pad> <unk> </s> a..z`, each letter's id (`<unk>` = 1 otherwise),
/// then `</s>` (2).
pub fn g2p_encode(word: &str) -> Vec<i64> {
    word.chars()
        .map(|c| match c {
            'a'..='z' => 3 + (c as i64 - 'a' as i64),
            _ => 1,
        })
        .chain([2])
        .collect()
}

/// The 1,000 words of `bench/words1000.txt`.
fn words1000() -> impl Iterator<Item = &'static str> {
    include_str!("../../../bench/words1000.txt").split_whitespace()
}

/// The 1,000 words of `bench/words1000.txt`, encoded.
pub fn g2p_words() -> Vec<Vec<i64>> {
    words1000().map(g2p_encode).collect()
}

/// What w4 decodes: a model, its encoded words, where the weights came from.
pub struct G2pSetup {
    model: Seq2Seq,
    words: Vec<Vec<i64>>,
    weights: &'static str,
}

/// g2p_en's checkpoint in the repository (the w4 workloads run from its root).
const G2P_EN_CHECKPOINT: &str = "crates/recur-import/tests/data/g2p_en/checkpoint20.npz";

impl G2pSetup {
    /// g2p_en's own weights ([`G2P_EN_CHECKPOINT`], imported with
    /// `recur import g2p-en`), as the PyTorch script uses them, so both sides stop decoding where
    /// g2p_en does; random weights of the same shape when the file is missing.
    pub fn load() -> Result<Self> {
        // Relative to the working directory: `bench/compare.sh` runs from the repository root.
        let npz = std::path::Path::new(G2P_EN_CHECKPOINT);
        if !npz.exists() {
            return Ok(G2pSetup {
                model: Seq2Seq::new(g2p_config(), &mut seeded_rng(0))?,
                words: g2p_words(),
                weights: "random",
            });
        }
        let t = recur_import::g2p_en::import(npz)?;
        let words = words1000().map(|w| t.encode_source(w)).collect();
        Ok(G2pSetup {
            model: t.model,
            words,
            weights: "g2p_en checkpoint20.npz",
        })
    }
}

/// W4: greedy g2p decoding of `words` in batches of `batch` with recur's own decoder
/// ([`translate_packed`]; batches on different threads, as `Transducer::translate` decodes a
/// long list, [`recur::chunks::map_chunks`]): at most 20 steps, and a word leaves the
/// batch once it emitted `</s>`, so a batch computes only its live rows (the script's loop runs
/// every row until the whole batch is done). One counting run first (also a warm-up) gives the
/// rows computed.
fn w4(setup: &G2pSetup, batch: usize, warmup: usize, runs: usize) -> Result<Measured> {
    let G2pSetup {
        model,
        words,
        weights,
    } = setup;
    let opts = DecodeOptions {
        beam_size: 1,
        max_len: MaxLen::Fixed(G2P_MAX_STEPS),
        ..DecodeOptions::default()
    };
    let packed = model.pack()?; // once, as a served model does
    let decode = |chunk: &[Vec<i64>], _: usize| translate_packed(model, &packed, chunk, &opts);
    let decode_all = || -> Result<u64> {
        // Batches go to different threads, as `Transducer::translate` decodes a long list; one
        // word at a time stays one word at a time, its steps split among the threads.
        let hyps = match batch {
            1 => words
                .chunks(1)
                .map(|w| decode(w, 1))
                .collect::<Result<Vec<_>>>()?,
            _ => vec![recur::chunks::map_chunks(words, batch, decode)?],
        };
        let hyps = hyps.iter().flatten();
        // One decoder row per emitted token, plus the step that emitted `</s>`.
        let rows = hyps.map(|h| h[0].tokens.len() + usize::from(!h[0].truncated));
        Ok(rows.sum::<usize>() as u64)
    };
    let dec_rows = decode_all()?;
    let enc_rows = words.iter().map(Vec::len).sum::<usize>() as u64;
    let timing = time_runs(warmup, runs, || decode_all().map(|_| ()))?;
    Ok(Measured {
        timing,
        units: words.len() as f64,
        words: true,
        flops: g2p_flops(&model.config, enc_rows, dec_rows),
        dec_rows: Some(dec_rows),
        weights: Some(weights),
    })
}

/// What w5 decodes: the shipped `hi-translit` (by name) and the 4,442 distinct romanized words of
/// the Dakshina Hindi test lexicon (column 2 of `hi.translit.sampled.test.tsv`), in file order.
pub struct TranslitSetup {
    model: Seq2Seq,
    words: Vec<Vec<i64>>,
}

impl TranslitSetup {
    /// Loads the model and the words.
    pub fn load() -> Result<Self> {
        let t = recur::transducer::Transducer::load("hi-translit")?;
        // Relative to the working directory: `bench/compare.sh` runs from the repository root.
        let path = std::path::Path::new("data/dakshina_hi/lexicons/hi.translit.sampled.test.tsv");
        let text = std::fs::read_to_string(path).map_err(|e| recur::Error::io(path, e))?;
        let mut seen = std::collections::HashSet::new();
        let words = text
            .lines()
            .filter_map(|l| l.split('\t').nth(1))
            .filter(|w| seen.insert(*w))
            .map(|w| t.encode_source(w))
            .collect();
        Ok(TranslitSetup {
            model: t.model,
            words,
        })
    }
}

/// The decoding options of w5, as `recur translate --beam 4` runs them: beam 4, 1-best, at most
/// `ceil(3 × source tokens) + 5` tokens (never more than 500), no length penalty.
pub fn w5_options() -> DecodeOptions {
    DecodeOptions {
        beam_size: 4,
        nbest: 1,
        max_len: MaxLen::DEFAULT,
        ..DecodeOptions::default()
    }
}

/// A [`StepModel`] that counts the decoder rows and attended source positions it computes.
struct RowCounter<'a> {
    model: &'a Seq2Seq,
    rows: std::cell::Cell<u64>,
    positions: std::cell::Cell<u64>,
}

impl StepModel for RowCounter<'_> {
    type State = DecodeState;

    fn step(
        &self,
        state: &mut DecodeState,
        prev: &[u32],
        logp: &mut Vec<f32>,
        attn: &mut Vec<f32>,
    ) -> Result<()> {
        self.rows.set(self.rows.get() + prev.len() as u64);
        let pos: usize = state.memory.lengths.iter().sum();
        self.positions.set(self.positions.get() + pos as u64);
        self.model.step(state, prev, logp, attn)
    }

    fn select(&self, state: &mut DecodeState, keep: &[usize]) -> Result<()> {
        self.model.select(state, keep)
    }

    fn vocab_size(&self) -> usize {
        self.model.vocab_size()
    }
}

/// FLOPs of attention decoding (`bench/FLOPS.md`'s Bahdanau model) from what was computed:
/// encoder rows (source tokens), decoder rows, and source positions attended over all rows.
pub fn bahdanau_decode_flops(cfg: &Seq2SeqConfig, enc_rows: u64, dec_rows: u64, pos: u64) -> f64 {
    let mut enc = RnnConfig::lstm(cfg.emb_dim, cfg.hidden_size)
        .num_layers(cfg.layers)
        .bidirectional(cfg.bidirectional);
    enc.mode = cfg.cell;
    let (k, e) = (cfg.decoder_hidden(), cfg.emb_dim);
    let mut dec = RnnConfig::lstm(e + k, k).num_layers(cfg.layers);
    dec.mode = cfg.cell;
    let (a, v, kf, ef) = (
        cfg.attn_dim as f64,
        cfg.tgt_vocab as f64,
        k as f64,
        e as f64,
    );
    let keys = 2.0 * enc_rows as f64 * kf * a;
    let per_row = 2.0 * kf * a + 2.0 * v * (kf + kf + ef);
    let per_pos = 2.0 * a + 2.0 * kf;
    rnn_forward_flops(&enc, 1, enc_rows as usize)
        + keys
        + dec_rows as f64 * per_row
        + pos as f64 * per_pos
        + rnn_forward_flops(&dec, 1, dec_rows as usize)
}

/// W5: beam search (beam 4) over the Dakshina test words with the shipped hi-translit model, in
/// batches of `batch` words, as `recur translate --beam 4` decodes them (weights packed once).
fn w5(setup: &TranslitSetup, batch: usize, warmup: usize, runs: usize) -> Result<Measured> {
    let TranslitSetup { model, words } = setup;
    let opts = w5_options();
    let packed = model.pack()?;
    let counter = RowCounter {
        model,
        rows: Default::default(),
        positions: Default::default(),
    };
    let decode_all = || -> Result<()> {
        for chunk in words.chunks(batch) {
            let (mut state, lengths) = encode_sources(model, &packed, chunk)?;
            decode(&counter, &mut state, &lengths, &opts)?;
        }
        Ok(())
    };
    decode_all()?; // counts the rows once
    let (dec_rows, pos) = (counter.rows.get(), counter.positions.get());
    let enc_rows = words.iter().map(Vec::len).sum::<usize>() as u64;
    let timing = time_runs(warmup, runs, decode_all)?;
    Ok(Measured {
        timing,
        units: words.len() as f64,
        words: true,
        flops: bahdanau_decode_flops(&model.config, enc_rows, dec_rows, pos),
        dec_rows: Some(dec_rows),
        weights: Some("models/hi-translit"),
    })
}

/// Runs one named workload: `runs` timed runs (default: the schedule's), after the schedule's
/// warm-up (`quick`: the script's `--quick` schedule).
pub fn run(name: &str, runs: Option<usize>, quick: bool) -> Result<BenchResult> {
    let Some((warmup, default_runs)) = schedule(name, quick) else {
        return Err(recur::Error::arg(
            "bench",
            "workload",
            format!("one of {}", WORKLOADS.join(", ")),
            name,
        ));
    };
    let runs = runs.unwrap_or(default_runs).max(1);
    let load = loadavg_1m();
    let w3 = (W3_LEN, W3_LEN);
    let m = match name {
        "w1-lstm" => w1(RnnMode::Lstm, warmup, runs)?,
        "w1-gru" => w1(RnnMode::Gru, warmup, runs)?,
        "w2-lstm-infer" => w2(warmup, runs)?,
        "w3-train" => w3_train(&w3_config(), 64, w3, warmup, runs)?,
        "w3-infer-b64" => w3_infer(&w3_config(), 64, w3, warmup, runs)?,
        "w3-infer-b1" => w3_infer(&w3_config(), 1, w3, warmup, runs)?,
        "w4-g2p-b1" => w4(&G2pSetup::load()?, 1, warmup, runs)?,
        "w4-g2p-b256" => w4(&G2pSetup::load()?, 256, warmup, runs)?,
        "w5-beam-b256" => w5(&TranslitSetup::load()?, 256, warmup, runs)?,
        "w5-beam-b1" => w5(&TranslitSetup::load()?, 1, warmup, runs)?,
        _ => unreachable!("every scheduled workload is dispatched"),
    };
    let secs = m.timing.median_ms / 1e3;
    let rate = m.units / secs;
    Ok(BenchResult {
        implementation: "recur",
        workload: name.to_string(),
        median_ms: m.timing.median_ms,
        min_ms: m.timing.min_ms,
        runs,
        threads: recur::gemm::num_threads(),
        tokens_per_s: (!m.words).then_some(rate),
        words_per_s: m.words.then_some(rate),
        gflops: m.flops / secs / 1e9,
        flops: m.flops.round() as u64,
        peak_rss_mb: peak_rss_mb(),
        loadavg_1m: load,
        weights: m.weights,
        dec_rows: m.dec_rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pads sequences time-major (S, B) with PAD; returns the ids and the lengths.
    fn pad_time_major(seqs: &[Vec<i64>]) -> (Vec<i64>, Vec<usize>) {
        let b = seqs.len();
        let lengths: Vec<usize> = seqs.iter().map(Vec::len).collect();
        let s = lengths.iter().copied().max().unwrap_or(0);
        let mut src = vec![recur::seq2seq::PAD as i64; s * b];
        for (j, seq) in seqs.iter().enumerate() {
            for (t, &id) in seq.iter().enumerate() {
                src[t * b + j] = id;
            }
        }
        (src, lengths)
    }

    #[test]
    fn every_workload_has_a_schedule() {
        for w in WORKLOADS {
            assert!(
                schedule(w, false).is_some() && schedule(w, true).is_some(),
                "{w}"
            );
        }
        assert!(run("w9-nope", Some(1), true).is_err());
    }

    /// The FLOPs per run that `bench/FLOPS.md` / `pytorch_bench.py` state (REFERENCE.md).
    #[test]
    fn flop_formulas_match_the_pytorch_side() {
        let mut w1 = RnnConfig::lstm(256, 512).num_layers(2).bidirectional(true);
        assert_eq!(3.0 * rnn_forward_flops(&w1, 50, 64), 181_193_932_800.0);
        w1.mode = RnnMode::Gru;
        assert_eq!(3.0 * rnn_forward_flops(&w1, 50, 64), 135_895_449_600.0);
        assert_eq!(
            rnn_forward_flops(&RnnConfig::lstm(128, 256), 20, 1),
            15_728_640.0
        );
        let c = w3_config();
        assert_eq!(
            3.0 * seq2seq_bahdanau_forward_flops(&c, 64, 20, 20),
            55_042_375_680.0
        );
        assert_eq!(
            seq2seq_bahdanau_forward_flops(&c, 64, 20, 20),
            18_347_458_560.0
        );
        assert_eq!(seq2seq_bahdanau_forward_flops(&c, 1, 20, 20), 286_679_040.0);
        let g = g2p_config();
        assert_eq!(g2p_flops(&g, 1, 0), 786_432.0);
        assert_eq!(g2p_flops(&g, 0, 1), 824_320.0);
        // words1000.txt: 9,005 encoder rows; PyTorch with g2p_en's weights ran 7,696 decoder rows.
        let enc: usize = g2p_words().iter().map(Vec::len).sum();
        assert_eq!((g2p_words().len(), enc), (1000, 9005));
        assert_eq!(g2p_flops(&g, 9005, 7696), 13_425_786_880.0);
    }

    #[test]
    fn g2p_tokenisation_is_g2p_ens() {
        assert_eq!(g2p_encode("ab'z"), vec![3, 4, 1, 28, 2]);
        let (src, len) = pad_time_major(&[vec![5, 2], vec![7, 8, 2]]);
        assert_eq!((src, len), (vec![5, 7, 2, 8, 0, 2], vec![2, 3]));
    }

    fn tiny_w3() -> Seq2SeqConfig {
        Seq2SeqConfig {
            src_vocab: 9,
            tgt_vocab: 7,
            emb_dim: 4,
            hidden_size: 3,
            attn_dim: 5,
            ..w3_config()
        }
    }

    #[test]
    fn workloads_run_at_tiny_size() {
        let m = w3_train(&tiny_w3(), 3, (4, 5), 1, 2).unwrap();
        assert_eq!(m.units, 15.0);
        assert_eq!(
            m.flops,
            3.0 * seq2seq_bahdanau_forward_flops(&tiny_w3(), 3, 4, 5)
        );
        let m = w3_infer(&tiny_w3(), 2, (4, 5), 0, 1).unwrap();
        assert_eq!(m.units, 10.0);
        let g = Seq2SeqConfig {
            src_vocab: 29,
            tgt_vocab: 6,
            emb_dim: 4,
            hidden_size: 3,
            ..g2p_config()
        };
        let setup = G2pSetup {
            model: Seq2Seq::new(g.clone(), &mut seeded_rng(0)).unwrap(),
            words: ["ab", "cde", "f"].iter().map(|w| g2p_encode(w)).collect(),
            weights: "random",
        };
        let m1 = w4(&setup, 1, 0, 1).unwrap();
        let dec = m1.dec_rows.unwrap();
        assert!((3..=3 * 20).contains(&dec), "{dec}");
        assert_eq!(m1.flops, g2p_flops(&g, 9, dec));
        assert!(m1.words && m1.units == 3.0);
        // Finished words leave the batch: batching computes the same rows.
        assert_eq!(w4(&setup, 2, 0, 1).unwrap().dec_rows, Some(dec));
    }

    /// Without EOS the loop runs every step; with it, it stops once all rows emitted it.
    #[test]
    fn greedy_loop_stops_only_on_eos() {
        let model = Seq2Seq::new(tiny_w3(), &mut seeded_rng(3)).unwrap();
        let (src, len) = pad_time_major(&[vec![4, 5, 6], vec![7, 8]]);
        let packed = model.pack().unwrap();
        assert_eq!(
            greedy_loop(&model, &packed, &src, &len, BOS as usize, 7, None).unwrap(),
            7
        );
        // Every token id is some step's EOS candidate: pick the first step's argmax of row 0
        // and row 1 equal → stop at 1 when both rows emit it.
        let (mem, mut state) = model.encode(&src, &len).unwrap();
        let mut work = recur::seq2seq::decoder::StepWork::default();
        let l = model
            .decoder
            .step_infer(&packed.decoder, &[BOS; 2], &mut state, &mem, &mut work)
            .unwrap()
            .logits;
        let v = model.config.tgt_vocab;
        let (a0, a1) = (argmax(&l[..v]), argmax(&l[v..]));
        let steps = greedy_loop(&model, &packed, &src, &len, BOS as usize, 7, Some(a0)).unwrap();
        if a0 == a1 {
            assert_eq!(steps, 1);
        } else {
            assert!(steps > 1);
        }
    }
}
