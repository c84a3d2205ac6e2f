//! `recur eval`: decode a test TSV and score it against every reference of each source.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use recur::data::{evaluate, read_parallel_tsv, EvalReport, References, TsvOptions};
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
    let lower = |s: &str| {
        if t.config.data.lowercase_src {
            s.to_lowercase()
        } else {
            s.to_string()
        }
    };
    let refs = References::from_pairs(pairs.iter().map(|p| (lower(&p.src), p.tgt.clone())));
    let sources: Vec<String> = refs.sources().map(|s| s.to_string()).collect();
    let mut opts = opts.clone();
    opts.nbest = opts.nbest.max(topk.min(opts.beam_size));
    let mut hyps: HashMap<String, Vec<String>> = HashMap::new();
    for chunk in sources.chunks(512) {
        let inputs: Vec<&str> = chunk.iter().map(|s| s.as_str()).collect();
        for (src, outs) in chunk.iter().zip(t.translate(&inputs, &opts)?) {
            hyps.insert(src.clone(), outs.into_iter().map(|o| o.text).collect());
        }
    }
    Ok(evaluate(&refs, &hyps, t.config.data.tgt_tokens, topk)?)
}
