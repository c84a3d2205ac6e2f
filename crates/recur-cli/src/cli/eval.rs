//! `recur eval`: decode a test TSV and score it against every reference of each source, with
//! the library's one evaluator ([`Transducer::evaluate`]).

use std::path::Path;

use anyhow::Result;
use recur::data::{read_parallel_tsv, EvalReport, TsvOptions};
use recur::seq2seq::search::DecodeOptions;
use recur::transducer::Transducer;
use serde::Serialize;

/// The scores and how the outputs were decoded (`--json` prints both in one object).
#[derive(Serialize)]
pub struct Report {
    /// The scores.
    #[serde(flatten)]
    pub scores: EvalReport,
    /// The decoding that produced them.
    pub decoding: Decoding,
}

/// How `recur eval` decoded, so that a score says whether the word frequencies were used.
#[derive(Serialize)]
pub struct Decoding {
    /// Beam size (1 = greedy).
    pub beam: usize,
    /// λ as resolved (the model's `[decode] word_freq_weight` unless `--word-freq-weight`).
    pub word_freq_weight: f32,
    /// Whether it changed scores: a list, λ > 0 and a beam of 2 or more.
    pub word_freq_applied: bool,
    /// The list the model names (`[decode] word_freq`), if any.
    pub word_freq: Option<String>,
    /// Words in that list (those the target vocabulary can write).
    pub word_freq_words: usize,
}

impl Decoding {
    fn new(t: &Transducer, opts: &DecodeOptions) -> Self {
        Decoding {
            beam: opts.beam_size,
            word_freq_weight: opts.word_freq_weight.unwrap_or(0.0),
            word_freq_applied: opts.beam_size > 1 && opts.word_freq_bonus().is_some(),
            word_freq: t.config.decode.word_freq.clone(),
            word_freq_words: t.word_freq.as_ref().map_or(0, |w| w.len()),
        }
    }

    /// One line for the text report.
    pub fn describe(&self) -> String {
        let list = match &self.word_freq {
            Some(name) => format!("{name} ({} words)", self.word_freq_words),
            None => "none".to_string(),
        };
        let used = if self.word_freq_applied {
            "used"
        } else {
            "not used"
        };
        format!(
            "beam {}, word frequencies {list}, weight {} ({used})",
            self.beam, self.word_freq_weight
        )
    }
}

/// Reads the pairs of `data` (columns as the model was trained with unless given).
pub fn read_data(
    t: &Transducer,
    data: &Path,
    cols: Option<(usize, usize)>,
) -> Result<Vec<recur::data::Pair>> {
    let (src_col, tgt_col) = cols.unwrap_or((t.config.data.src_col, t.config.data.tgt_col));
    let mut tsv = TsvOptions::new(src_col, tgt_col);
    tsv.skip_bad_lines = t.config.data.skip_bad_lines;
    Ok(read_parallel_tsv(data, &tsv)?.pairs)
}

/// Scores `model` on `pairs` with `opts` as [`Transducer::resolve_options`] made them.
pub fn run(
    t: &Transducer,
    pairs: &[recur::data::Pair],
    opts: &DecodeOptions,
    topk: usize,
) -> Result<Report> {
    let mut opts = opts.clone();
    opts.nbest = opts.nbest.max(topk.min(opts.beam_size));
    Ok(Report {
        scores: t.evaluate(pairs, &opts, topk)?,
        decoding: Decoding::new(t, &opts),
    })
}
