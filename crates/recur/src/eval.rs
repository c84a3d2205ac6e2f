//! One evaluator, for dev scoring during training and for `recur eval`: decode every unique
//! source, score the n-best lists against all its references (definitions in
//! [`crate::data::metrics`]).
//!
//! Sources and references are compared as token ids. A reference token that the target
//! vocabulary lacks becomes [`OUT_OF_VOCABULARY`], which no hypothesis can produce, so such a
//! reference is never matched (as when comparing strings), even by a hypothesis with `<unk>`.

use std::collections::HashMap;

use crate::data::metrics::score;
use crate::data::{EvalReport, Pair, Vocab};
use crate::error::{Error, Result};
use crate::seq2seq::inference::translate;
use crate::seq2seq::search::{DecodeOptions, MaxLen};
use crate::seq2seq::Seq2Seq;
use crate::transducer::DataConfig;

/// The id of a reference token missing from the target vocabulary (matches nothing).
pub const OUT_OF_VOCABULARY: i64 = -1;

/// Sources decoded together.
const CHUNK: usize = 256;

/// One unique source (ids, as the model reads it) with every acceptable target (ids, no
/// BOS/EOS).
#[derive(Clone, Debug, PartialEq)]
pub struct EvalExample {
    /// Source ids.
    pub src: Vec<i64>,
    /// Every reference for this source, in file order, without duplicates.
    pub refs: Vec<Vec<i64>>,
}

/// Groups pairs by source (after [`DataConfig::preprocess_source`]) into examples, in
/// first-seen order; sources are encoded by [`DataConfig::encode_source`].
pub fn examples(pairs: &[Pair], data: &DataConfig, vocabs: (&Vocab, &Vocab)) -> Vec<EvalExample> {
    let mut refs: HashMap<String, Vec<Vec<i64>>> = HashMap::new();
    for p in pairs {
        let tgt = data
            .tgt_tokens
            .tokenize(&p.tgt)
            .iter()
            .map(|t| vocabs.1.id(t).unwrap_or(OUT_OF_VOCABULARY))
            .collect();
        let entry = refs.entry(data.preprocess_source(&p.src)).or_default();
        if !entry.contains(&tgt) {
            entry.push(tgt);
        }
    }
    unique_sources(pairs, data)
        .into_iter()
        .map(|src| EvalExample {
            src: data.encode_source(vocabs.0, &src),
            refs: refs.remove(&src).unwrap_or_default(),
        })
        .collect()
}

/// The sources of [`examples`], in its order: each preprocessed source once, first seen first.
pub fn unique_sources(pairs: &[Pair], data: &DataConfig) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    pairs
        .iter()
        .map(|p| data.preprocess_source(&p.src))
        .filter(|s| seen.insert(s.clone()))
        .collect()
}

/// Decodes every example with `opts` (in chunks; results do not depend on them) and scores its
/// first `k` hypotheses. Errors without examples or with `k` = 0.
pub fn evaluate(
    model: &Seq2Seq,
    examples: &[EvalExample],
    opts: &DecodeOptions,
    k: usize,
) -> Result<EvalReport> {
    evaluate_known(model, examples, &[], opts, k)
}

/// [`evaluate`] where `known[i]`, when given, is example `i`'s n-best list (target ids, best
/// first: a lexicon's entries), scored as it is; only the other examples are decoded.
pub fn evaluate_known(
    model: &Seq2Seq,
    examples: &[EvalExample],
    known: &[Option<Vec<Vec<i64>>>],
    opts: &DecodeOptions,
    k: usize,
) -> Result<EvalReport> {
    if examples.is_empty() {
        return Err(Error::arg("evaluate", "examples", "at least one", 0));
    }
    if k == 0 {
        return Err(Error::arg("evaluate", "k", ">= 1", 0));
    }
    let given = |i: usize| known.get(i).and_then(Option::as_ref);
    let misses: Vec<&EvalExample> = (0..examples.len())
        .filter(|&i| given(i).is_none())
        .map(|i| &examples[i])
        .collect();
    let mut decoded = decode_nbests(model, &misses, opts, k)?.into_iter();
    let mut nbests: Vec<Vec<Vec<i64>>> = Vec::with_capacity(examples.len());
    for i in 0..examples.len() {
        nbests.push(match given(i) {
            Some(list) => list.iter().take(k).cloned().collect(),
            None => decoded.next().unwrap_or_default(),
        });
    }
    let entries = examples
        .iter()
        .zip(nbests)
        .map(|(e, nbest)| (e.refs.clone(), nbest));
    Ok(score(entries, k))
}

/// The first `k` hypotheses (target ids) of each example, decoded in chunks.
fn decode_nbests(
    model: &Seq2Seq,
    examples: &[&EvalExample],
    opts: &DecodeOptions,
    k: usize,
) -> Result<Vec<Vec<Vec<i64>>>> {
    let mut nbests = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(CHUNK) {
        let srcs: Vec<Vec<i64>> = chunk.iter().map(|e| e.src.clone()).collect();
        for hyps in translate(model, &srcs, opts)? {
            let ids = |h: &crate::seq2seq::search::Hypothesis| {
                h.tokens.iter().map(|&t| i64::from(t)).collect::<Vec<i64>>()
            };
            nbests.push(hyps.iter().take(k).map(ids).collect());
        }
    }
    Ok(nbests)
}

/// Exact-match accuracy of greedy decoding (correct when equal to any reference), with each
/// source's own output-length cap `ceil(ratio · len) + 5` (0 without examples).
pub fn exact_match(model: &Seq2Seq, examples: &[EvalExample], max_len_ratio: f32) -> Result<f64> {
    if examples.is_empty() {
        return Ok(0.0);
    }
    let opts = DecodeOptions {
        beam_size: 1,
        max_len: MaxLen::PerSource {
            ratio: max_len_ratio,
            offset: 5,
            limit: 500,
        },
        ..DecodeOptions::default()
    };
    Ok(evaluate(model, examples, &opts, 1)?.accuracy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Tokenizer;

    #[test]
    fn examples_group_sources_and_mark_unknown_reference_tokens() {
        let data = DataConfig {
            lowercase_src: true,
            src_eos: true,
            ..DataConfig::default()
        };
        let t = Tokenizer::Chars;
        let src = Vocab::from_sequences(["ab"].iter().map(|s| t.tokenize(s)), 1);
        let tgt = Vocab::from_sequences(["xy"].iter().map(|s| t.tokenize(s)), 1);
        let pair = |s: &str, t: &str| Pair {
            src: s.into(),
            tgt: t.into(),
            line: 1,
        };
        let pairs = [
            pair("AB", "xy"),
            pair("ab", "xz"),
            pair("ab", "xy"),
            pair("b", "y"),
        ];
        let ex = examples(&pairs, &data, (&src, &tgt));
        assert_eq!(ex.len(), 2, "AB and ab are one source once lowercased");
        assert_eq!(
            unique_sources(&pairs, &data),
            ["ab", "b"],
            "in the same order"
        );
        let (x, y) = (tgt.id("x").unwrap(), tgt.id("y").unwrap());
        assert_eq!(ex[0].refs, vec![vec![x, y], vec![x, OUT_OF_VOCABULARY]]);
        let (a, b) = (src.id("a").unwrap(), src.id("b").unwrap());
        assert_eq!(ex[0].src, vec![a, b, i64::from(crate::data::EOS)]);
        assert_eq!(ex[1].src, vec![b, i64::from(crate::data::EOS)]);
    }
}
