//! `recur eval`: decode a test TSV and score it against every reference of each source, with
//! the library's one evaluator ([`Transducer::evaluate`]).

use std::path::Path;

use anyhow::Result;
use recur::data::{read_parallel_tsv, EvalReport, TsvOptions};
use recur::seq2seq::search::DecodeOptions;
use recur::transducer::Transducer;

/// Scores `model` on `data` (columns as the model was trained with unless given).
pub fn run(
    t: &Transducer,
    data: &Path,
    cols: Option<(usize, usize)>,
    opts: &DecodeOptions,
    topk: usize,
) -> Result<EvalReport> {
    let (src_col, tgt_col) = cols.unwrap_or((t.config.data.src_col, t.config.data.tgt_col));
    let mut tsv = TsvOptions::new(src_col, tgt_col);
    tsv.skip_bad_lines = t.config.data.skip_bad_lines;
    let pairs = read_parallel_tsv(data, &tsv)?.pairs;
    let mut opts = opts.clone();
    opts.nbest = opts.nbest.max(topk.min(opts.beam_size));
    Ok(t.evaluate(&pairs, &opts, topk)?)
}
