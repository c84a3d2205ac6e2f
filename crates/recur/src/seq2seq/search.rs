//! Batched greedy decoding and beam search over any [`StepModel`].
//!
//! The search never sees a concrete network: a model exposes one decoder step over a *working set*
//! of rows (one row = one hypothesis of one source, all sources folded into one batch dimension)
//! and a gather ([`StepModel::select`]). Finished hypotheses leave the working set, so later steps
//! only compute live rows.
//!
//! Semantics (shared by [`greedy`] and [`beam_search`]):
//! - Every hypothesis starts from [`BOS`]; returned tokens contain neither BOS nor EOS.
//! - Length cap per source: [`MaxLen::cap`] of `max_len` (by default `ceil(3 * src_len) + 5`,
//!   never more than 500). `cap` counts output tokens (EOS excluded): a hypothesis that reaches
//!   `cap` tokens without EOS is finished with `truncated = true`; its `log_prob` has no EOS term.
//! - An empty source (`src_len == 0`) decodes to an empty output (`log_prob = score = 0`, not
//!   truncated) without any model step. With `cap == 0` on a non-empty source the output is empty
//!   and `truncated = true`.
//! - `min_len`: EOS is not a candidate while a hypothesis has fewer than `min_len` tokens.
//!   No other token is masked (PAD/BOS/UNK stay candidates, as in a plain argmax).
//! - Length normalization (GNMT): `score = log_prob / lp(n)` with `lp(n) = ((5 + n) / 6)^alpha`,
//!   where `n` is the number of scored steps (tokens, plus one when EOS ended the hypothesis).
//!   It is applied only when a hypothesis finishes and in the final ranking; live hypotheses are
//!   pruned by raw cumulative log-probability. `alpha = 0` gives `score == log_prob` exactly.
//! - Word frequencies (beam search only): with a [`WordFreq`] table attached and a weight
//!   `λ = word_freq_weight > 0`, a hypothesis that finishes (EOS or the cap) scores
//!   `log_prob / lp(n) + λ · log p(word)`, where `log p` comes from the table (its floor for an
//!   unlisted word). Finished lists are ranked by that combined score, and `score` reports it;
//!   `log_prob` stays the model's own. Live hypotheses are still pruned by the model alone.
//!   Greedy decoding (beam 1) never compares finished hypotheses, so the table cannot change it.
//!   `λ = 0` (or no table) gives exactly the scores and outputs of a search without one.
//! - Determinism: candidates are ordered by cumulative log-prob (descending), then parent rank in
//!   its beam, then the token's own log-prob (descending), then lower token id. Finished lists are
//!   ordered by score, then log-prob (both descending), then token sequence (ascending).
//!   Every decision for a source depends only on that source's rows, so results do not depend on
//!   how sources are batched (as long as the model's step is row-independent).

use std::cmp::Ordering;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::word_freq::{WordFreq, OFF_LIST};
use crate::{Error, Result};

pub use crate::data::vocab::{TokenId, BOS, EOS, PAD, UNK};

/// One decoder step over a working set of rows (row = one hypothesis of one source).
pub trait StepModel {
    /// Decoder state for a set of rows (RNN states, input-feeding vector, the encoder memory
    /// index per row...).
    type State;

    /// Advances every row by one token: `prev[r]` is row r's previous token; writes
    /// log-probabilities (rows × vocab, log_softmax of logits) into `logp` and, when the model has
    /// attention, the attention weights (rows × src_len_max, any width at least the longest live
    /// source) into `attn` (left empty otherwise). Updates `state` in place.
    fn step(
        &self,
        state: &mut Self::State,
        prev: &[TokenId],
        logp: &mut Vec<f32>,
        attn: &mut Vec<f32>,
    ) -> Result<()>;

    /// Keeps only rows `keep[i]` (in that order; indices may repeat, as when a beam is expanded):
    /// gathers state rows. The search only calls it with in-range indices and never with the
    /// identity.
    fn select(&self, state: &mut Self::State, keep: &[usize]) -> Result<()>;

    /// Number of output classes (rows of `logp` have this length). Must be greater than [`EOS`].
    fn vocab_size(&self) -> usize;
}

/// The output-length rule: how many tokens (EOS excluded) a source of `src_len` tokens may decode
/// to. The one place the rule lives.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum MaxLen {
    /// The same cap for every source.
    Fixed(usize),
    /// `min(limit, ceil(ratio * src_len) + offset)`, in f32 arithmetic (`1.2 * 10` is 12).
    PerSource {
        /// Output tokens per source token (finite, > 0).
        ratio: f32,
        /// Added to the ratio term.
        offset: usize,
        /// The cap however long the source.
        limit: usize,
    },
}

impl MaxLen {
    /// The default rule (`recur translate` without `--max-len`): `ceil(3 * src_len) + 5`
    /// tokens, never more than 500.
    pub const DEFAULT: MaxLen = MaxLen::PerSource {
        ratio: 3.0,
        offset: 5,
        limit: 500,
    };

    /// The cap for a source of `src_len` tokens.
    pub fn cap(&self, src_len: usize) -> usize {
        match *self {
            MaxLen::Fixed(n) => n,
            MaxLen::PerSource {
                ratio,
                offset,
                limit,
            } => limit.min((ratio * src_len as f32).ceil() as usize + offset),
        }
    }
}

impl Default for MaxLen {
    fn default() -> Self {
        MaxLen::DEFAULT
    }
}

/// Decoding options; `Default` gives beam 5, 1-best, [`MaxLen::DEFAULT`], no length
/// penalty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecodeOptions {
    /// Beam width; 1 means greedy in [`decode`]. Must be at least 1.
    pub beam_size: usize,
    /// Number of hypotheses returned per source by beam search, `1..=beam_size`.
    pub nbest: usize,
    /// The cap on output tokens (EOS excluded) of each source.
    pub max_len: MaxLen,
    /// EOS is forbidden before a hypothesis has this many tokens.
    pub min_len: usize,
    /// GNMT length-penalty exponent alpha (0 = rank by raw log-probability sum).
    pub length_penalty: f32,
    /// Whether to return per-token attention rows (when the model has attention).
    pub return_attention: bool,
    /// λ, the weight of `log p(word)` added to a finished hypothesis's score (see the module
    /// docs; beam search only). `None`: the model's stored default where a model resolves the
    /// options ([`crate::transducer::Transducer`]), else 0. Must be finite and >= 0.
    pub word_freq_weight: Option<f32>,
    /// The word frequencies λ weighs (`None`: no bonus). Not serialized: a
    /// [`crate::transducer::Transducer`] attaches its model directory's list.
    #[serde(skip)]
    pub word_freq: Option<Arc<WordFreq>>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            beam_size: 5,
            nbest: 1,
            max_len: MaxLen::DEFAULT,
            min_len: 0,
            length_penalty: 0.0,
            return_attention: false,
            word_freq_weight: None,
            word_freq: None,
        }
    }
}

impl DecodeOptions {
    /// Checks the ranges documented on each field.
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "DecodeOptions";
        if self.beam_size == 0 {
            return Err(Error::arg(OP, "beam_size", ">= 1", self.beam_size));
        }
        if self.nbest == 0 || self.nbest > self.beam_size {
            let want = format!("1..={}", self.beam_size);
            return Err(Error::arg(OP, "nbest", want, self.nbest));
        }
        if let MaxLen::PerSource { ratio, .. } = self.max_len {
            if !(ratio.is_finite() && ratio > 0.0) {
                return Err(Error::arg(OP, "max_len.ratio", "finite and > 0", ratio));
            }
        }
        if !self.length_penalty.is_finite() {
            let got = self.length_penalty;
            return Err(Error::arg(OP, "length_penalty", "finite", got));
        }
        if let Some(w) = self
            .word_freq_weight
            .filter(|w| !(w.is_finite() && *w >= 0.0))
        {
            return Err(Error::arg(OP, "word_freq_weight", "finite and >= 0", w));
        }
        Ok(())
    }

    /// The word-frequency table and its weight λ when they change scores (a table attached
    /// and λ > 0), else `None`.
    pub fn word_freq_bonus(&self) -> Option<(&WordFreq, f32)> {
        let weight = self.word_freq_weight.unwrap_or(0.0);
        let table = self.word_freq.as_deref()?;
        (weight > 0.0).then_some((table, weight))
    }

    /// The output-token cap for a source of length `src_len` (see the module docs).
    pub fn cap(&self, src_len: usize) -> usize {
        self.max_len.cap(src_len)
    }
}

/// One decoded output sequence.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hypothesis {
    /// Output tokens, without BOS and EOS.
    pub tokens: Vec<TokenId>,
    /// Sum of the log-probabilities of the tokens (and of EOS when it ended the hypothesis).
    pub log_prob: f32,
    /// `log_prob / lp(n)` (GNMT length normalization; equals `log_prob` when alpha is 0), plus
    /// `λ · log p(word)` in a beam search with word frequencies (see the module docs).
    pub score: f32,
    /// One attention row per output token, truncated to this source's length; empty unless
    /// `return_attention` is set and the model has attention.
    pub attention: Vec<Vec<f32>>,
    /// True when the length cap was hit without EOS.
    pub truncated: bool,
}

/// GNMT length penalty `((5 + n) / 6)^alpha`; exactly 1 when `alpha == 0`.
pub fn length_penalty(alpha: f32, n: usize) -> f32 {
    if alpha == 0.0 {
        1.0
    } else {
        ((5.0 + n as f32) / 6.0).powf(alpha)
    }
}

/// Decodes with [`greedy`] when `beam_size == 1`, else with [`beam_search`]; one list per source.
pub fn decode<M: StepModel>(
    model: &M,
    state: &mut M::State,
    src_lens: &[usize],
    opts: &DecodeOptions,
) -> Result<Vec<Vec<Hypothesis>>> {
    if opts.beam_size == 1 {
        opts.validate()?;
        let hyps = greedy(model, state, src_lens, opts)?;
        Ok(hyps.into_iter().map(|h| vec![h]).collect())
    } else {
        beam_search(model, state, src_lens, opts)
    }
}

/// Greedy decoding of every source (initial `state` has one row per source, in order).
/// Ignores `beam_size` and `nbest`. Returns one hypothesis per source.
pub fn greedy<M: StepModel>(
    model: &M,
    state: &mut M::State,
    src_lens: &[usize],
    opts: &DecodeOptions,
) -> Result<Vec<Hypothesis>> {
    let mut g = Greedy::new(model, src_lens, opts)?;
    // Room for every token up to the cap (within reason), so that steps do not grow it.
    let room = |len: usize| Vec::with_capacity(opts.cap(len).min(MAX_RESERVE));
    g.out = src_lens
        .iter()
        .map(|&len| Hypothesis {
            tokens: room(len),
            ..Hypothesis::default()
        })
        .collect();
    g.rows = start_sources(model, state, src_lens, opts, |s, h| g.out[s] = h)?;
    g.prev = vec![BOS; g.rows.len()];
    while !g.rows.is_empty() {
        g.run_step(state)?;
    }
    Ok(g.out)
}

/// The most tokens reserved per hypothesis ahead of decoding.
const MAX_RESERVE: usize = 1024;

/// Beam search over every source (initial `state` has one row per source, in order).
/// Returns, per source, at most `nbest` distinct hypotheses, best first.
///
/// Each step, a source's live hypotheses propose every token; the `beam_size` best candidates
/// (by raw cumulative log-prob) are taken: those ending in EOS (or reaching the cap) finish, the
/// rest stay live, so the beam may shrink for one step and refills from the next candidates.
/// A source stops when it has no live hypothesis, or when it holds `nbest` finished ones and no
/// live hypothesis can still beat the worst of them (exact bound, valid for any alpha since
/// log-probs are <= 0; with word frequencies, plus λ times the best `log p` of a listed word the
/// hypothesis's prefix starts, [`WordFreq::prefix_best`]). With `beam_size == 1` this is
/// exactly [`greedy`].
pub fn beam_search<M: StepModel>(
    model: &M,
    state: &mut M::State,
    src_lens: &[usize],
    opts: &DecodeOptions,
) -> Result<Vec<Vec<Hypothesis>>> {
    let mut b = Beam::new(model, src_lens, opts)?;
    let mut fin: Vec<Vec<Hypothesis>> = vec![Vec::new(); src_lens.len()];
    let rows = start_sources(model, state, src_lens, opts, |s, h| fin[s].push(h))?;
    b.finished = fin;
    b.prev = vec![BOS; rows.len()];
    b.live = rows.iter().map(|&src| Live::root(src)).collect();
    while !b.live.is_empty() {
        b.run_step(state)?;
    }
    Ok(b.finished)
}

/// Validates the inputs, finishes sources that need no step (empty source or zero cap) through
/// `done`, and drops them from the working set. Returns the sources still to decode.
fn start_sources<M: StepModel>(
    model: &M,
    state: &mut M::State,
    src_lens: &[usize],
    opts: &DecodeOptions,
    mut done: impl FnMut(usize, Hypothesis),
) -> Result<Vec<usize>> {
    let mut rows = Vec::with_capacity(src_lens.len());
    for (s, &len) in src_lens.iter().enumerate() {
        if len > 0 && opts.cap(len) > 0 {
            rows.push(s);
        } else {
            done(s, finish(Vec::new(), Vec::new(), 0.0, false, len > 0, opts));
        }
    }
    gather(model, state, &rows, src_lens.len())?;
    Ok(rows)
}

/// Builds a finished hypothesis, computing its length-normalized score.
fn finish(
    tokens: Vec<TokenId>,
    attention: Vec<Vec<f32>>,
    log_prob: f32,
    eos: bool,
    truncated: bool,
    opts: &DecodeOptions,
) -> Hypothesis {
    let n = tokens.len() + usize::from(eos);
    let score = log_prob / length_penalty(opts.length_penalty, n);
    Hypothesis {
        tokens,
        log_prob,
        score,
        attention,
        truncated,
    }
}

/// Calls [`StepModel::select`] unless `keep` is the identity on `rows` rows.
fn gather<M: StepModel>(
    model: &M,
    state: &mut M::State,
    keep: &[usize],
    rows: usize,
) -> Result<()> {
    let identity = keep.len() == rows && keep.iter().enumerate().all(|(i, &k)| i == k);
    if identity {
        Ok(())
    } else {
        model.select(state, keep)
    }
}

/// Checks the model's vocabulary size.
fn checked_vocab<M: StepModel>(model: &M) -> Result<usize> {
    let v = model.vocab_size();
    if v <= EOS as usize {
        return Err(Error::arg("search", "vocab_size", "> EOS (2)", v));
    }
    Ok(v)
}

/// Runs one model step and validates its outputs; returns the attention row width (0 = none).
fn checked_step<M: StepModel>(
    model: &M,
    state: &mut M::State,
    prev: &[TokenId],
    bufs: (&mut Vec<f32>, &mut Vec<f32>),
    vocab: usize,
    need_width: usize,
) -> Result<usize> {
    let (logp, attn) = bufs;
    logp.clear();
    attn.clear();
    model.step(state, prev, logp, attn)?;
    let rows = prev.len();
    if logp.len() != rows * vocab {
        let want = format!("{} log-probs ({rows} rows x {vocab})", rows * vocab);
        return Err(Error::shape(
            "StepModel.step",
            want,
            format!("{}", logp.len()),
        ));
    }
    if logp.iter().any(|x| x.is_nan()) {
        return Err(Error::arg("StepModel.step", "logp", "no NaN", "NaN"));
    }
    if attn.is_empty() {
        return Ok(0);
    }
    let width = attn.len() / rows;
    if attn.len() % rows != 0 || width < need_width {
        let want = format!("{rows} rows x >= {need_width} attention weights");
        return Err(Error::shape(
            "StepModel.step",
            want,
            format!("{}", attn.len()),
        ));
    }
    Ok(width)
}

/// Index of the best token of a log-prob row: highest value, lowest id on ties; EOS skipped
/// unless allowed. `row` has more than EOS entries.
fn argmax(row: &[f32], allow_eos: bool) -> usize {
    const { assert!(EOS != 0) };
    let mut best = 0; // PAD, never EOS
    for (v, &x) in row.iter().enumerate().skip(1) {
        if (allow_eos || v != EOS as usize) && x.total_cmp(&row[best]) == Ordering::Greater {
            best = v;
        }
    }
    best
}

/// Greedy-decoding working set and reusable buffers.
struct Greedy<'a, M> {
    model: &'a M,
    src_lens: &'a [usize],
    opts: &'a DecodeOptions,
    vocab: usize,
    out: Vec<Hypothesis>,
    /// Source of each working-set row.
    rows: Vec<usize>,
    prev: Vec<TokenId>,
    next_rows: Vec<usize>,
    next_prev: Vec<TokenId>,
    keep: Vec<usize>,
    logp: Vec<f32>,
    attn: Vec<f32>,
}

impl<'a, M: StepModel> Greedy<'a, M> {
    fn new(model: &'a M, src_lens: &'a [usize], opts: &'a DecodeOptions) -> Result<Self> {
        opts.validate()?;
        Ok(Greedy {
            model,
            src_lens,
            opts,
            vocab: checked_vocab(model)?,
            out: Vec::new(),
            rows: Vec::new(),
            prev: Vec::new(),
            next_rows: Vec::new(),
            next_prev: Vec::new(),
            keep: Vec::new(),
            logp: Vec::new(),
            attn: Vec::new(),
        })
    }

    /// One step: every row takes its argmax; finished rows leave the working set.
    fn run_step(&mut self, state: &mut M::State) -> Result<()> {
        let need = self
            .rows
            .iter()
            .map(|&s| self.src_lens[s])
            .max()
            .unwrap_or(0);
        let bufs = (&mut self.logp, &mut self.attn);
        let width = checked_step(self.model, state, &self.prev, bufs, self.vocab, need)?;
        self.keep.clear();
        self.next_rows.clear();
        self.next_prev.clear();
        for i in 0..self.rows.len() {
            self.advance_row(i, width);
        }
        gather(self.model, state, &self.keep, self.rows.len())?;
        std::mem::swap(&mut self.rows, &mut self.next_rows);
        std::mem::swap(&mut self.prev, &mut self.next_prev);
        Ok(())
    }

    /// Appends row `i`'s argmax to its source's output, finishing it on EOS or at the cap.
    fn advance_row(&mut self, i: usize, width: usize) {
        let s = self.rows[i];
        let src_len = self.src_lens[s];
        let h = &mut self.out[s];
        let row = &self.logp[i * self.vocab..(i + 1) * self.vocab];
        let v = argmax(row, h.tokens.len() >= self.opts.min_len);
        h.log_prob += row[v];
        let eos = v == EOS as usize;
        if !eos {
            h.tokens.push(v as u32);
            if self.opts.return_attention && width > 0 {
                h.attention
                    .push(self.attn[i * width..i * width + src_len].to_vec());
            }
        }
        let truncated = !eos && h.tokens.len() >= self.opts.cap(src_len);
        if eos || truncated {
            let h = std::mem::take(h);
            self.out[s] = finish(h.tokens, h.attention, h.log_prob, eos, truncated, self.opts);
        } else {
            self.keep.push(i);
            self.next_rows.push(s);
            self.next_prev.push(v as u32);
        }
    }
}

/// No parent / no attention marker in the beam trellis.
const NONE: usize = usize::MAX;

/// A token in the beam trellis: hypotheses are paths back to the root.
struct Node {
    parent: usize,
    token: TokenId,
    /// Offset of this token's attention row in the arena, or [`NONE`].
    attn: usize,
}

/// A live beam hypothesis (one working-set row).
#[derive(Clone, Copy)]
struct Live {
    src: usize,
    /// Last trellis node, or [`NONE`] before the first token.
    node: usize,
    len: usize,
    log_prob: f32,
    /// Its prefix's node in the word-frequency prefix tree (only read with word frequencies).
    word: u32,
}

impl Live {
    fn root(src: usize) -> Self {
        Live {
            src,
            node: NONE,
            len: 0,
            log_prob: 0.0,
            word: 0, // WordFreq::prefix_root
        }
    }
}

/// A beam expansion candidate.
#[derive(Clone, Copy)]
struct Cand {
    score: f32,
    tok_lp: f32,
    /// Working-set row of the parent.
    parent: usize,
    /// Rank of the parent within its source's beam (batch-independent).
    rank: usize,
    token: TokenId,
}

/// Candidate order (`Less` = better): score desc, parent rank asc, token log-prob desc, token asc.
fn cand_order(a: &Cand, b: &Cand) -> Ordering {
    b.score
        .total_cmp(&a.score)
        .then(a.rank.cmp(&b.rank))
        .then(b.tok_lp.total_cmp(&a.tok_lp))
        .then(a.token.cmp(&b.token))
}

/// Inserts `c` into the sorted `topk` list, keeping at most `k` best.
fn push_topk(topk: &mut Vec<Cand>, k: usize, c: Cand) {
    if topk.len() == k {
        match topk.last() {
            Some(last) if cand_order(&c, last) == Ordering::Less => {
                topk.pop();
            }
            _ => return,
        }
    }
    let pos = topk.partition_point(|x| cand_order(x, &c) == Ordering::Less);
    topk.insert(pos, c);
}

/// Final ranking order (`Less` = better): score desc, log-prob desc, tokens asc.
fn hyp_order(a: &Hypothesis, b: &Hypothesis) -> Ordering {
    b.score
        .total_cmp(&a.score)
        .then(b.log_prob.total_cmp(&a.log_prob))
        .then(a.tokens.cmp(&b.tokens))
}

/// Beam-search working set, trellis and reusable buffers.
struct Beam<'a, M> {
    model: &'a M,
    src_lens: &'a [usize],
    opts: &'a DecodeOptions,
    vocab: usize,
    nodes: Vec<Node>,
    arena: Vec<f32>,
    /// Per source: finished hypotheses, sorted by [`hyp_order`], at most `nbest`.
    finished: Vec<Vec<Hypothesis>>,
    live: Vec<Live>,
    prev: Vec<TokenId>,
    next: Vec<Live>,
    next_prev: Vec<TokenId>,
    keep: Vec<usize>,
    topk: Vec<Cand>,
    logp: Vec<f32>,
    attn: Vec<f32>,
}

impl<'a, M: StepModel> Beam<'a, M> {
    fn new(model: &'a M, src_lens: &'a [usize], opts: &'a DecodeOptions) -> Result<Self> {
        opts.validate()?;
        Ok(Beam {
            model,
            src_lens,
            opts,
            vocab: checked_vocab(model)?,
            nodes: Vec::new(),
            arena: Vec::new(),
            finished: Vec::new(),
            live: Vec::new(),
            prev: Vec::new(),
            next: Vec::new(),
            next_prev: Vec::new(),
            keep: Vec::new(),
            topk: Vec::with_capacity(opts.beam_size + 1),
            logp: Vec::new(),
            attn: Vec::new(),
        })
    }

    /// One step over all live rows; rows are grouped by source, in source order.
    fn run_step(&mut self, state: &mut M::State) -> Result<()> {
        let need = self.live.iter().map(|h| self.src_lens[h.src]).max();
        let bufs = (&mut self.logp, &mut self.attn);
        let need = need.unwrap_or(0);
        let width = checked_step(self.model, state, &self.prev, bufs, self.vocab, need)?;
        self.next.clear();
        self.next_prev.clear();
        self.keep.clear();
        let mut lo = 0;
        while lo < self.live.len() {
            let src = self.live[lo].src;
            let hi = lo + self.live[lo..].iter().take_while(|h| h.src == src).count();
            self.expand_source(lo, hi, width);
            lo = hi;
        }
        gather(self.model, state, &self.keep, self.live.len())?;
        std::mem::swap(&mut self.live, &mut self.next);
        std::mem::swap(&mut self.prev, &mut self.next_prev);
        Ok(())
    }

    /// Expands the beam of the source owning rows `lo..hi`: top-k, finishing, stopping.
    fn expand_source(&mut self, lo: usize, hi: usize, width: usize) {
        let (src, len) = (self.live[lo].src, self.live[lo].len);
        self.collect_topk(lo, hi, len >= self.opts.min_len);
        let start = self.next.len();
        let topk = std::mem::take(&mut self.topk);
        for c in &topk {
            self.accept(c, width);
        }
        self.topk = topk;
        if self.source_done(src, start) {
            self.next.truncate(start);
            self.next_prev.truncate(start);
            self.keep.truncate(start);
        }
    }

    /// Fills `topk` with the `beam_size` best extensions of rows `lo..hi`.
    fn collect_topk(&mut self, lo: usize, hi: usize, allow_eos: bool) {
        self.topk.clear();
        let k = self.opts.beam_size;
        for i in lo..hi {
            let base = self.live[i].log_prob;
            let row = &self.logp[i * self.vocab..(i + 1) * self.vocab];
            for (v, &lp) in row.iter().enumerate() {
                if !allow_eos && v == EOS as usize {
                    continue;
                }
                let c = Cand {
                    score: base + lp,
                    tok_lp: lp,
                    parent: i,
                    rank: i - lo,
                    token: v as u32,
                };
                push_topk(&mut self.topk, k, c);
            }
        }
    }

    /// Takes one top-k candidate: finishes it (EOS or cap) or keeps it live.
    fn accept(&mut self, c: &Cand, width: usize) {
        let parent = self.live[c.parent];
        let src = parent.src;
        if c.token == EOS {
            let h = self.hypothesis(src, parent.node, c.score, true, false);
            self.add_finished(src, h);
            return;
        }
        let node = self.push_node(parent.node, c, width);
        let len = parent.len + 1;
        if len >= self.opts.cap(self.src_lens[src]) {
            let h = self.hypothesis(src, node, c.score, false, true);
            self.add_finished(src, h);
            return;
        }
        let log_prob = c.score;
        let word = match self.opts.word_freq_bonus() {
            Some((table, _)) => table.prefix_child(parent.word, c.token),
            None => OFF_LIST,
        };
        self.next.push(Live {
            src,
            node,
            len,
            log_prob,
            word,
        });
        self.next_prev.push(c.token);
        self.keep.push(c.parent);
    }

    /// Adds a trellis node for candidate `c`, recording its attention row when asked.
    fn push_node(&mut self, parent: usize, c: &Cand, width: usize) -> usize {
        let mut attn = NONE;
        if self.opts.return_attention && width > 0 {
            let src_len = self.src_lens[self.live[c.parent].src];
            attn = self.arena.len();
            let off = c.parent * width;
            self.arena.extend_from_slice(&self.attn[off..off + src_len]);
        }
        let token = c.token;
        self.nodes.push(Node {
            parent,
            token,
            attn,
        });
        self.nodes.len() - 1
    }

    /// Rebuilds the hypothesis of source `src` ending at trellis node `node`.
    fn hypothesis(
        &self,
        src: usize,
        mut node: usize,
        lp: f32,
        eos: bool,
        trunc: bool,
    ) -> Hypothesis {
        let src_len = self.src_lens[src];
        let mut len = 0;
        let mut n = node;
        while n != NONE {
            (len, n) = (len + 1, self.nodes[n].parent);
        }
        let mut tokens = Vec::with_capacity(len);
        let mut attention = Vec::with_capacity(if self.opts.return_attention { len } else { 0 });
        while node != NONE {
            let n = &self.nodes[node];
            tokens.push(n.token);
            if n.attn != NONE {
                attention.push(self.arena[n.attn..n.attn + src_len].to_vec());
            }
            node = n.parent;
        }
        tokens.reverse();
        attention.reverse();
        let mut h = finish(tokens, attention, lp, eos, trunc, self.opts);
        if let Some((table, weight)) = self.opts.word_freq_bonus() {
            // Once per finished hypothesis (a hash lookup), never per candidate.
            h.score += weight * table.log_p(&h.tokens);
        }
        h
    }

    /// Inserts a finished hypothesis into its source's sorted list, keeping the `nbest` best.
    fn add_finished(&mut self, src: usize, h: Hypothesis) {
        let list = &mut self.finished[src];
        let pos = list.partition_point(|x| hyp_order(x, &h) == Ordering::Less);
        if pos < self.opts.nbest {
            list.insert(pos, h);
            list.truncate(self.opts.nbest);
        }
    }

    /// Whether `src` is done given its new live rows `next[start..]` (best first).
    fn source_done(&self, src: usize, start: usize) -> bool {
        let Some(best) = self.next.get(start) else {
            return true;
        };
        let list = &self.finished[src];
        if list.len() < self.opts.nbest {
            return false;
        }
        let worst = list[self.opts.nbest - 1].score;
        // A live hypothesis with raw L <= 0 ends with n in best.len+1..=cap scored steps and
        // log-prob <= L, so its score is at most max(L / lp(n)) over that range (lp monotone).
        let alpha = self.opts.length_penalty;
        let cap = self.opts.cap(self.src_lens[src]);
        let reach = |h: &Live| {
            let lo = h.log_prob / length_penalty(alpha, h.len + 1);
            let hi = h.log_prob / length_penalty(alpha, cap);
            lo.max(hi)
        };
        match self.opts.word_freq_bonus() {
            // Its word's bonus is at most λ times the best log p of a listed word its prefix
            // starts (the floor when none does), which differs from row to row.
            Some((table, weight)) => self.next[start..]
                .iter()
                .all(|h| reach(h) + weight * table.prefix_best(h.word) <= worst),
            None => reach(best) <= worst,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    const A: u32 = 4;
    const B: u32 = 5;
    const C: u32 = 6;
    const D: u32 = 7;

    /// Per-row state of the toy models: source id and steps taken.
    #[derive(Clone, Debug)]
    struct Row {
        src: usize,
        t: usize,
    }

    type Logits = dyn Fn(usize, usize, u32) -> Vec<f32>;

    /// A row-independent toy decoder: logits are a function of (source id, step, previous token).
    /// Records the number of rows of every step.
    struct Toy {
        vocab: usize,
        /// Attention width (0 = no attention).
        width: usize,
        logits: Box<Logits>,
        calls: RefCell<Vec<usize>>,
    }

    impl Toy {
        fn new(vocab: usize, f: impl Fn(usize, usize, u32) -> Vec<f32> + 'static) -> Self {
            Toy {
                vocab,
                width: 0,
                logits: Box::new(f),
                calls: RefCell::new(Vec::new()),
            }
        }

        /// Builds a model from probabilities (unlisted tokens get 1e-6): `f(src, t, prev)`.
        fn probs(vocab: usize, f: impl Fn(usize, usize, u32) -> Vec<(u32, f32)> + 'static) -> Self {
            Toy::new(vocab, move |s, t, p| {
                let mut l = vec![1e-6f32.ln(); vocab];
                for (v, q) in f(s, t, p) {
                    l[v as usize] = q.ln();
                }
                l
            })
        }

        fn with_attention(mut self, width: usize) -> Self {
            self.width = width;
            self
        }

        fn init(ids: &[usize]) -> Vec<Row> {
            ids.iter().map(|&src| Row { src, t: 0 }).collect()
        }
    }

    impl StepModel for Toy {
        type State = Vec<Row>;

        fn step(
            &self,
            st: &mut Vec<Row>,
            prev: &[u32],
            logp: &mut Vec<f32>,
            attn: &mut Vec<f32>,
        ) -> Result<()> {
            assert_eq!(st.len(), prev.len());
            self.calls.borrow_mut().push(prev.len());
            for (row, &p) in st.iter_mut().zip(prev) {
                let l = (self.logits)(row.src, row.t, p);
                let m = l.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let lse = m + l.iter().map(|x| (x - m).exp()).sum::<f32>().ln();
                logp.extend(l.iter().map(|x| x - lse));
                for j in 0..self.width {
                    attn.push(((row.src * 31 + row.t * 7 + j * 3) % 11) as f32 / 11.0);
                }
                row.t += 1;
            }
            Ok(())
        }

        fn select(&self, st: &mut Vec<Row>, keep: &[usize]) -> Result<()> {
            *st = keep.iter().map(|&k| st[k].clone()).collect();
            Ok(())
        }

        fn vocab_size(&self) -> usize {
            self.vocab
        }
    }

    fn mix(mut x: u64) -> u64 {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    /// Pseudo-random logits; EOS grows likelier with t.
    fn noise(vocab: usize) -> Toy {
        Toy::new(vocab, move |s, t, p| {
            (0..vocab)
                .map(|v| {
                    let h = mix(((s as u64) << 40)
                        ^ ((t as u64) << 24)
                        ^ ((p as u64) << 12)
                        ^ v as u64);
                    let x = (h >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0;
                    if v == EOS as usize {
                        x + 0.4 * t as f32 - 1.0
                    } else {
                        x
                    }
                })
                .collect()
        })
    }

    /// Greedy picks A (0.6) then EOS: p = 0.18; beam finds B (0.4) then EOS (0.9): p = 0.36.
    fn greedy_trap() -> Toy {
        Toy::probs(8, |_, _, p| match p {
            BOS => vec![(A, 0.6), (B, 0.4)],
            A => vec![(EOS, 0.3), (A, 0.25), (B, 0.25), (UNK, 0.2)],
            _ => vec![(EOS, 0.9), (A, 0.1)],
        })
    }

    /// Emits A until step `src + 1`, then EOS.
    fn staggered() -> Toy {
        Toy::probs(8, |s, t, _| {
            if t > s {
                vec![(EOS, 0.7), (A, 0.2), (B, 0.1)]
            } else {
                vec![(A, 0.7), (B, 0.2), (EOS, 0.1)]
            }
        })
    }

    fn opts(beam: usize, nbest: usize) -> DecodeOptions {
        DecodeOptions {
            beam_size: beam,
            nbest,
            max_len: MaxLen::Fixed(20),
            ..Default::default()
        }
    }

    fn assert_same(a: &Hypothesis, b: &Hypothesis) {
        assert_eq!(a.tokens, b.tokens);
        assert_eq!(a.log_prob.to_bits(), b.log_prob.to_bits(), "{a:?} vs {b:?}");
        assert_eq!(a.score.to_bits(), b.score.to_bits());
        assert_eq!(a.truncated, b.truncated);
        let bits = |h: &Hypothesis| -> Vec<Vec<u32>> {
            h.attention
                .iter()
                .map(|r| r.iter().map(|x| x.to_bits()).collect())
                .collect()
        };
        assert_eq!(bits(a), bits(b));
    }

    fn run_beam(m: &Toy, ids: &[usize], lens: &[usize], o: &DecodeOptions) -> Vec<Vec<Hypothesis>> {
        beam_search(m, &mut Toy::init(ids), lens, o).unwrap()
    }

    fn run_greedy(m: &Toy, ids: &[usize], lens: &[usize], o: &DecodeOptions) -> Vec<Hypothesis> {
        greedy(m, &mut Toy::init(ids), lens, o).unwrap()
    }

    #[test]
    fn beam_one_equals_greedy() {
        let m = noise(12).with_attention(9);
        let ids: Vec<usize> = (0..16).collect();
        let lens: Vec<usize> = ids.iter().map(|i| i % 9).collect();
        for alpha in [0.0, 0.6, 1.5] {
            let mut o = opts(1, 1);
            o.length_penalty = alpha;
            o.min_len = 1;
            o.max_len = ratio_cap(1.5, 20);
            o.return_attention = true;
            let g = run_greedy(&m, &ids, &lens, &o);
            let b = run_beam(&m, &ids, &lens, &o);
            for (g, b) in g.iter().zip(&b) {
                assert_eq!(b.len(), 1);
                assert_same(g, &b[0]);
            }
            assert!(g.iter().any(|h| h.tokens.len() > 2));
            let d = decode(&m, &mut Toy::init(&ids), &lens, &o).unwrap();
            assert_eq!(d.len(), g.len());
        }
    }

    #[test]
    fn results_independent_of_batching() {
        let m = noise(10).with_attention(8);
        let ids: Vec<usize> = (0..7).collect();
        let lens = [3, 8, 1, 5, 0, 7, 4];
        let mut o = opts(4, 3);
        o.length_penalty = 0.8;
        o.max_len = ratio_cap(2.0, 20);
        o.return_attention = true;
        let together = run_beam(&m, &ids, &lens, &o);
        let g_together = run_greedy(&m, &ids, &lens, &o);
        let rev_ids: Vec<usize> = ids.iter().rev().cloned().collect();
        let rev_lens: Vec<usize> = lens.iter().rev().cloned().collect();
        let reversed = run_beam(&m, &rev_ids, &rev_lens, &o);
        let g_reversed = run_greedy(&m, &rev_ids, &rev_lens, &o);
        for i in 0..ids.len() {
            let alone = run_beam(&m, &[i], &[lens[i]], &o);
            let r = &reversed[ids.len() - 1 - i];
            assert_eq!(together[i].len(), alone[0].len());
            assert_eq!(together[i].len(), r.len());
            for ((a, b), c) in together[i].iter().zip(&alone[0]).zip(r) {
                assert_same(a, b);
                assert_same(a, c);
            }
            let g_alone = run_greedy(&m, &[i], &[lens[i]], &o);
            assert_same(&g_together[i], &g_alone[0]);
            assert_same(&g_together[i], &g_reversed[ids.len() - 1 - i]);
        }
    }

    #[test]
    fn finished_rows_leave_working_set() {
        let m = staggered();
        let lens = [4, 0, 4, 4];
        let g = run_greedy(&m, &[0, 9, 1, 2], &lens, &opts(1, 1));
        assert_eq!(*m.calls.borrow(), vec![3, 3, 2, 1]);
        assert_eq!(g[0].tokens, vec![A]);
        assert_eq!(g[3].tokens, vec![A, A, A]);
        m.calls.borrow_mut().clear();
        let b = run_beam(&m, &[0, 9, 1, 2], &lens, &opts(2, 1));
        assert_eq!(*m.calls.borrow(), vec![3, 6, 4, 2]);
        assert_eq!(b[3][0].tokens, vec![A, A, A]);
    }

    #[test]
    fn beam_finds_what_greedy_misses() {
        let m = greedy_trap();
        let g = run_greedy(&m, &[0], &[3], &opts(1, 1));
        assert_eq!(g[0].tokens, vec![A]);
        assert!((g[0].log_prob - 0.18f32.ln()).abs() < 1e-4);
        let b = run_beam(&m, &[0], &[3], &opts(2, 2));
        assert_eq!(b[0][0].tokens, vec![B]);
        assert!((b[0][0].log_prob - 0.36f32.ln()).abs() < 1e-4);
        assert_eq!(b[0][1].tokens, vec![A]);
        assert!(b[0].iter().all(|h| !h.truncated));
    }

    fn ratio_cap(ratio: f32, limit: usize) -> MaxLen {
        MaxLen::PerSource {
            ratio,
            offset: 0,
            limit,
        }
    }

    #[test]
    fn the_default_length_rule() {
        let cap = |n| DecodeOptions::default().cap(n);
        assert_eq!((cap(0), cap(10), cap(10_000)), (5, 35, 500));
        let o: DecodeOptions = serde_json::from_str(
            r#"{"max_len": {"per_source": {"ratio": 3.0, "offset": 5, "limit": 500}}}"#,
        )
        .unwrap();
        assert_eq!(o, DecodeOptions::default());
    }

    #[test]
    fn max_len_truncates() {
        let never_eos = Toy::probs(6, |_, _, _| vec![(A, 0.6), (B, 0.4)]);
        let mut o = opts(1, 1);
        o.max_len = MaxLen::Fixed(5);
        let g = run_greedy(&never_eos, &[0], &[9], &o);
        assert_eq!(g[0].tokens, vec![A; 5]);
        assert!(g[0].truncated);
        assert!((g[0].log_prob - 5.0 * 0.6f32.ln()).abs() < 1e-4);
        o.max_len = ratio_cap(1.2, 5);
        let g = run_greedy(&never_eos, &[0, 1], &[2, 10], &o);
        assert_eq!(g[0].tokens.len(), 3, "ceil(1.2 * 2)");
        assert_eq!(g[1].tokens.len(), 5, "min(max_len, 12)");
        let mut o = opts(3, 3);
        o.max_len = MaxLen::Fixed(4);
        let b = run_beam(&never_eos, &[0], &[9], &o);
        assert_eq!(b[0].len(), 3);
        assert!(b[0].iter().all(|h| h.truncated && h.tokens.len() == 4));
        assert_eq!(b[0][0].tokens, vec![A; 4]);
        o.max_len = MaxLen::Fixed(0);
        let b = run_beam(&never_eos, &[0], &[9], &o);
        assert!(b[0][0].tokens.is_empty() && b[0][0].truncated);
    }

    #[test]
    fn min_len_forbids_early_eos() {
        let eager = Toy::probs(6, |_, _, _| vec![(EOS, 0.9), (B, 0.06), (A, 0.04)]);
        let mut o = opts(1, 1);
        assert!(run_greedy(&eager, &[0], &[4], &o)[0].tokens.is_empty());
        o.min_len = 3;
        let g = run_greedy(&eager, &[0], &[4], &o);
        assert_eq!(g[0].tokens, vec![B, B, B]);
        assert!(!g[0].truncated);
        o.beam_size = 3;
        o.nbest = 3;
        let b = run_beam(&eager, &[0], &[4], &o);
        assert!(b[0].iter().all(|h| h.tokens.len() >= 3 && !h.truncated));
        assert_eq!(b[0][0].tokens, vec![B, B, B]);
    }

    #[test]
    fn empty_source_decodes_to_empty_output() {
        let m = noise(8).with_attention(5);
        for max_len in [MaxLen::Fixed(20), ratio_cap(1.5, 20)] {
            let mut o = opts(3, 2);
            o.max_len = max_len;
            o.return_attention = true;
            let g = run_greedy(&m, &[0, 1], &[0, 0], &o);
            assert!(m.calls.borrow().is_empty(), "no step for empty sources");
            let b = run_beam(&m, &[0, 1], &[0, 5], &o);
            assert_eq!(m.calls.borrow()[0], 1, "only the non-empty source steps");
            for h in [&g[0], &g[1], &b[0][0]] {
                assert_eq!(h, &Hypothesis::default());
            }
            assert_eq!(b[0].len(), 1);
            assert!(!b[1].is_empty());
            m.calls.borrow_mut().clear();
        }
    }

    #[test]
    fn nbest_sorted_bounded_distinct() {
        let m = noise(9);
        let ids: Vec<usize> = (0..10).collect();
        let lens = vec![6; 10];
        for (beam, nbest, alpha) in [(5, 5, 0.0), (5, 3, 1.0), (3, 1, 0.5)] {
            let mut o = opts(beam, nbest);
            o.length_penalty = alpha;
            for list in run_beam(&m, &ids, &lens, &o) {
                assert!(!list.is_empty() && list.len() <= nbest);
                for w in list.windows(2) {
                    assert!(w[0].score >= w[1].score);
                    assert_ne!(w[0].tokens, w[1].tokens);
                }
                let mut t: Vec<_> = list.iter().map(|h| h.tokens.clone()).collect();
                t.sort();
                t.dedup();
                assert_eq!(t.len(), list.len());
            }
        }
    }

    #[test]
    fn ties_prefer_lower_token_id() {
        let tied = Toy::probs(8, |_, t, _| {
            if t == 0 {
                vec![(C, 0.3), (B, 0.3), (A, 0.3)]
            } else {
                vec![(EOS, 0.9)]
            }
        });
        let g = run_greedy(&tied, &[0], &[2], &opts(1, 1));
        assert_eq!(g[0].tokens, vec![A]);
        let b = run_beam(&tied, &[0], &[2], &opts(3, 3));
        let toks: Vec<_> = b[0].iter().map(|h| h.tokens.clone()).collect();
        assert_eq!(toks, vec![vec![A], vec![B], vec![C]]);
        assert_eq!(b[0][0].score, b[0][2].score);
    }

    #[test]
    fn length_penalty_ranks_finished_hypotheses() {
        // [A] p = .55 * .9 (2 scored steps) vs [B, C, D] p = .45 * .99^3 (4 scored steps)
        let m = Toy::probs(8, |_, _, p| match p {
            BOS => vec![(A, 0.55), (B, 0.45)],
            A => vec![(EOS, 0.9), (C, 0.1)],
            B => vec![(C, 0.99)],
            C => vec![(D, 0.99)],
            _ => vec![(EOS, 0.99)],
        });
        let mut o = opts(2, 2);
        assert_eq!(run_beam(&m, &[0], &[5], &o)[0][0].tokens, vec![A]);
        o.length_penalty = 1.0;
        let b = run_beam(&m, &[0], &[5], &o);
        assert_eq!(b[0][0].tokens, vec![B, C, D]);
        assert_eq!(b[0][1].tokens, vec![A]);
        for h in &b[0] {
            let n = h.tokens.len() + 1;
            assert_eq!(h.score, h.log_prob / ((5.0 + n as f32) / 6.0));
        }
        assert!(b[0][0].log_prob < b[0][1].log_prob);
        assert_eq!(length_penalty(0.0, 7), 1.0);
    }

    #[test]
    fn attention_truncated_to_source_length() {
        let m = noise(8).with_attention(6);
        let mut o = opts(2, 2);
        o.return_attention = true;
        let lens = [2, 6, 4];
        let b = run_beam(&m, &[0, 1, 2], &lens, &o);
        let g = run_greedy(&m, &[0, 1, 2], &lens, &o);
        for (s, &len) in lens.iter().enumerate() {
            for h in b[s].iter().chain([&g[s]]) {
                assert_eq!(h.attention.len(), h.tokens.len());
                assert!(h.attention.iter().all(|r| r.len() == len));
            }
        }
        let first = &g[1].attention[0];
        let want: Vec<f32> = (0..6).map(|j| ((31 + j * 3) % 11) as f32 / 11.0).collect();
        assert_eq!(first, &want);
        o.return_attention = false;
        assert!(run_beam(&m, &[0], &[2], &o)[0][0].attention.is_empty());
    }

    struct Bad(usize, f32);

    impl StepModel for Bad {
        type State = ();
        fn step(
            &self,
            _: &mut (),
            prev: &[u32],
            logp: &mut Vec<f32>,
            attn: &mut Vec<f32>,
        ) -> Result<()> {
            logp.resize(prev.len() * 5 - self.0, self.1);
            attn.resize(prev.len() * 2 + 1 - usize::from(self.0 == 0), 0.1);
            Ok(())
        }
        fn select(&self, _: &mut (), _: &[usize]) -> Result<()> {
            Ok(())
        }
        fn vocab_size(&self) -> usize {
            5
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let m = noise(8);
        for (beam, nbest) in [(0, 1), (2, 3), (2, 0)] {
            assert!(beam_search(&m, &mut Toy::init(&[0]), &[2], &opts(beam, nbest)).is_err());
        }
        let mut o = opts(2, 1);
        o.max_len = ratio_cap(f32::NAN, 20);
        assert!(greedy(&m, &mut Toy::init(&[0]), &[2], &o).is_err());
        assert!(run_greedy_err(&Bad(1, -1.0)), "short logp");
        assert!(run_greedy_err(&Bad(0, f32::NAN)), "NaN logp");
        assert!(run_greedy_err(&Bad(0, -1.0)), "ragged attention");
        assert!(greedy(&noise(2), &mut Toy::init(&[0]), &[2], &opts(1, 1)).is_err());
    }

    fn run_greedy_err(m: &Bad) -> bool {
        let o = opts(1, 1);
        let e1 = greedy(m, &mut (), &[3, 2], &o).is_err();
        let e2 = beam_search(m, &mut (), &[3, 2], &opts(2, 1)).is_err();
        e1 && e2 && decode(m, &mut (), &[3], &o).is_err()
    }

    /// A table over the toy tokens: `a`..`d` are A..D.
    fn table(text: &str, floor: Option<f32>) -> Arc<WordFreq> {
        let encode = |w: &str| -> Option<Vec<TokenId>> {
            w.chars()
                .map(|c| {
                    ('a'..='d')
                        .contains(&c)
                        .then(|| A + (c as u32 - 'a' as u32))
                })
                .collect()
        };
        let t = WordFreq::parse(text.as_bytes(), std::path::Path::new("t"), encode, floor);
        Arc::new(t.unwrap())
    }

    fn with_freq(mut o: DecodeOptions, t: &Arc<WordFreq>, weight: Option<f32>) -> DecodeOptions {
        o.word_freq = Some(Arc::clone(t));
        o.word_freq_weight = weight;
        o
    }

    #[test]
    fn word_frequencies_rerank_finished_hypotheses() {
        // [A] p = .6 * .9, [B] p = .4 * .9: the model prefers A, the list B.
        let m = Toy::probs(8, |_, _, p| match p {
            BOS => vec![(A, 0.6), (B, 0.4)],
            _ => vec![(EOS, 0.9), (C, 0.1)],
        });
        let t = table("b\t0.5\na\t0.001\n", Some(1e-9));
        let plain = run_beam(&m, &[0], &[3], &opts(2, 2));
        assert_eq!(plain[0][0].tokens, vec![A]);
        let o = with_freq(opts(2, 2), &t, Some(1.0));
        let b = run_beam(&m, &[0], &[3], &o);
        assert_eq!(b[0][0].tokens, vec![B]);
        assert_eq!(b[0][1].tokens, vec![A]);
        for (h, p) in b[0].iter().zip([0.5f64, 0.001]) {
            let model_only = plain[0].iter().find(|x| x.tokens == h.tokens).unwrap();
            assert_eq!(
                h.log_prob, model_only.log_prob,
                "log_prob stays the model's"
            );
            assert_eq!(h.score, model_only.score + (p.ln() as f32));
        }
        // Greedy cannot compare finished words: the list changes nothing at beam 1.
        let g = run_greedy(&m, &[0], &[3], &with_freq(opts(1, 1), &t, Some(1.0)));
        assert_eq!(g[0].tokens, vec![A]);
    }

    #[test]
    fn unlisted_words_get_the_floor() {
        let m = Toy::probs(8, |_, _, p| match p {
            BOS => vec![(A, 0.6), (B, 0.4)],
            _ => vec![(EOS, 0.9), (C, 0.1)],
        });
        // Only C is listed: A and B both get the floor, so the model's order stands.
        let t = table("c\t0.5\n", Some(1e-4));
        let b = run_beam(&m, &[0], &[3], &with_freq(opts(2, 2), &t, Some(2.0)));
        assert_eq!(b[0][0].tokens, vec![A]);
        assert_eq!(b[0][0].score, b[0][0].log_prob + 2.0 * 1e-4f32.ln());
    }

    #[test]
    fn zero_weight_gives_the_bits_of_a_search_without_a_table() {
        let m = noise(9).with_attention(7);
        let ids: Vec<usize> = (0..12).collect();
        let lens: Vec<usize> = ids.iter().map(|i| 1 + i % 7).collect();
        let t = table("a\t0.5\nab\t0.1\nb\t0.01\nba\t0.2\n", Some(1e-6));
        for alpha in [0.0, 0.7] {
            let mut o = opts(4, 3);
            o.length_penalty = alpha;
            o.return_attention = true;
            let plain = run_beam(&m, &ids, &lens, &o);
            for weight in [None, Some(0.0)] {
                let zero = run_beam(&m, &ids, &lens, &with_freq(o.clone(), &t, weight));
                for (p, z) in plain.iter().zip(&zero) {
                    assert_eq!(p.len(), z.len());
                    p.iter().zip(z).for_each(|(p, z)| assert_same(p, z));
                }
            }
        }
    }

    #[test]
    fn stopping_early_keeps_the_best_combined_score() {
        // The stop test must allow for the bonus a live hypothesis can still earn: the best of
        // a 1-best search equals the best of a search that keeps going for `beam` finished.
        let m = noise(7);
        let ids: Vec<usize> = (0..40).collect();
        let lens = vec![4; 40];
        let t = table("a\t0.3\nb\t0.2\nc\t0.1\ndd\t0.05\nabc\t0.05\n", Some(1e-7));
        let mut changed = 0;
        for weight in [0.5, 2.0] {
            let one = run_beam(&m, &ids, &lens, &with_freq(opts(4, 1), &t, Some(weight)));
            let all = run_beam(&m, &ids, &lens, &with_freq(opts(4, 4), &t, Some(weight)));
            let plain = run_beam(&m, &ids, &lens, &opts(4, 1));
            for ((o, a), p) in one.iter().zip(&all).zip(&plain) {
                assert_same(&o[0], &a[0]);
                changed += usize::from(o[0].tokens != p[0].tokens);
            }
        }
        assert!(changed > 0, "the table changes some outputs");
    }

    #[test]
    fn negative_or_nan_weights_are_errors() {
        let t = table("a\t0.5\n", None);
        for w in [-0.1, f32::NAN, f32::INFINITY] {
            assert!(
                with_freq(opts(2, 1), &t, Some(w)).validate().is_err(),
                "{w}"
            );
        }
        assert!(with_freq(opts(2, 1), &t, Some(0.0)).validate().is_ok());
    }

    #[test]
    fn options_serde_defaults() {
        let o: DecodeOptions =
            serde_json::from_str(r#"{"beam_size": 3, "max_len": {"fixed": 7}}"#).unwrap();
        assert_eq!(
            o,
            DecodeOptions {
                beam_size: 3,
                max_len: MaxLen::Fixed(7),
                ..Default::default()
            }
        );
        let back: DecodeOptions =
            serde_json::from_str(&serde_json::to_string(&o).unwrap()).unwrap();
        assert_eq!(back, o);
        assert!(serde_json::from_str::<DecodeOptions>(r#"{"beam": 3}"#).is_err());
    }
}
