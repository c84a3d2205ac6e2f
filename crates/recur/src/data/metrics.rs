//! Evaluation against possibly several references per source.
//!
//! Definitions (the G2P / transliteration convention, e.g. Bisani & Ney 2008, Dakshina):
//! - Units are **unique sources** ("words"); all references of a source (CMUdict variants,
//!   ambiguous romanizations) are grouped, in file order, duplicates removed.
//! - A word is **correct** if its best hypothesis equals **any** reference, compared as token
//!   sequences (so spacing does not matter under [`Tokenizer::Symbols`]).
//!   `accuracy = correct / words`, `wer = 1 − accuracy`.
//! - **Token error rate** (PER for phonemes, CER for characters):
//!   `ter = Σ_words d(hyp, r*) / Σ_words |r*|`, where `d` is the Levenshtein distance on tokens
//!   and `r*` the reference closest to the best hypothesis (ties: the first in file order).
//! - **Top-k accuracy**: correct if any of the first `k` hypotheses of the n-best list equals
//!   any reference; `top_k[k-1]` holds it.
//! - A source without hypotheses counts as wrong with an empty hypothesis (so its edits are the
//!   closest reference's length) and is counted in `missing`; hypotheses for unknown sources
//!   are ignored and counted in `extra`. Both should be 0; callers should warn otherwise.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::token::Tokenizer;
use crate::error::{Error, Result};

/// Levenshtein distance (unit costs) between token slices, O(n·m) time, one row of memory.
pub fn levenshtein<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    // Keep the row over the shorter slice.
    let (a, b) = if a.len() < b.len() { (b, a) } else { (a, b) };
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let sub = diag + usize::from(x != y);
            diag = row[j + 1];
            row[j + 1] = sub.min(diag + 1).min(row[j] + 1);
        }
    }
    row[b.len()]
}

/// References grouped by source, sources in first-seen order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct References {
    entries: Vec<(String, Vec<String>)>,
    index: HashMap<String, usize>,
}

impl References {
    /// Groups (source, reference) pairs, e.g. the pairs of a test TSV file.
    pub fn from_pairs<I, S, R>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (S, R)>,
        S: Into<String>,
        R: Into<String>,
    {
        let mut refs = References::default();
        for (s, r) in pairs {
            refs.add(s.into(), r.into());
        }
        refs
    }

    /// Adds one reference for `source` (ignored if already present).
    pub fn add(&mut self, source: String, reference: String) {
        match self.index.get(&source) {
            Some(&i) => {
                let list = &mut self.entries[i].1;
                if !list.contains(&reference) {
                    list.push(reference);
                }
            }
            None => {
                self.index.insert(source.clone(), self.entries.len());
                self.entries.push((source, vec![reference]));
            }
        }
    }

    /// Number of unique sources.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if there are no sources.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The unique sources, first-seen order (the order to translate them in).
    pub fn sources(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(s, _)| s.as_str())
    }

    /// The references of a source.
    pub fn get(&self, source: &str) -> Option<&[String]> {
        self.index
            .get(source)
            .map(|&i| self.entries[i].1.as_slice())
    }
}

/// Scores of one evaluation; serializes to JSON for reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Unique sources evaluated.
    pub words: usize,
    /// Sources whose best hypothesis matched a reference.
    pub correct: usize,
    /// `correct / words`.
    pub accuracy: f64,
    /// Word error rate, `1 − accuracy`.
    pub wer: f64,
    /// Σ edit distance of the best hypothesis to its closest reference.
    pub token_edits: usize,
    /// Σ length of those closest references.
    pub ref_tokens: usize,
    /// Token error rate `token_edits / ref_tokens` (0 if `ref_tokens` is 0).
    pub ter: f64,
    /// `top_k[i]` = accuracy within the first `i + 1` hypotheses.
    pub top_k: Vec<f64>,
    /// Sources with more than one reference.
    pub multi_reference: usize,
    /// Sources with no hypothesis (scored as wrong).
    pub missing: usize,
    /// Hypothesis sources not in the references (ignored).
    pub extra: usize,
}

/// Scores n-best lists (`hyps[source]`, best first) against `refs`; see the module docs.
/// `k` is the largest top-k reported (at least 1). Errors if `refs` is empty or `k` is 0.
pub fn evaluate(
    refs: &References,
    hyps: &HashMap<String, Vec<String>>,
    tokenizer: Tokenizer,
    k: usize,
) -> Result<EvalReport> {
    if refs.is_empty() {
        return Err(Error::arg("evaluate", "refs", "at least one reference", 0));
    }
    if k == 0 {
        return Err(Error::arg("evaluate", "k", ">= 1", 0));
    }
    let mut missing = 0;
    let entries = refs.entries.iter().map(|(source, references)| {
        let ref_toks: Vec<Vec<&str>> = references.iter().map(|r| tokenizer.tokenize(r)).collect();
        let nbest: Vec<Vec<&str>> = match hyps.get(source) {
            Some(list) if !list.is_empty() => {
                list.iter().take(k).map(|h| tokenizer.tokenize(h)).collect()
            }
            _ => {
                missing += 1;
                Vec::new()
            }
        };
        (ref_toks, nbest)
    });
    let mut report = score(entries, k);
    report.missing = missing;
    report.extra = hyps.keys().filter(|s| refs.get(s).is_none()).count();
    Ok(report)
}

/// Scores `(references, n-best list)` per source, as token sequences of any kind (strings,
/// ids): the definitions of the module docs, with `missing` and `extra` left 0. `entries` must
/// not be empty, `k` ≥ 1, and each reference list non-empty (callers check).
pub(crate) fn score<T: PartialEq>(
    entries: impl Iterator<Item = (Vec<Vec<T>>, Vec<Vec<T>>)>,
    k: usize,
) -> EvalReport {
    let mut correct_at = vec![0usize; k];
    let (mut words, mut edits, mut ref_tokens, mut multi) = (0, 0, 0, 0);
    for (refs, nbest) in entries {
        words += 1;
        multi += usize::from(refs.len() > 1);
        if let Some(rank) = nbest.iter().take(k).position(|h| refs.contains(h)) {
            for c in &mut correct_at[rank..] {
                *c += 1;
            }
        }
        let best: &[T] = nbest.first().map_or(&[], Vec::as_slice);
        // min_by_key returns the first minimum: ties go to the earlier reference.
        let (d, len) = refs
            .iter()
            .map(|r| (levenshtein(best, r), r.len()))
            .min_by_key(|&(d, _)| d)
            .unwrap_or((0, 0));
        edits += d;
        ref_tokens += len;
    }
    let rate = |c: usize| {
        if words == 0 {
            0.0
        } else {
            c as f64 / words as f64
        }
    };
    let accuracy = rate(correct_at[0]);
    EvalReport {
        words,
        correct: correct_at[0],
        accuracy,
        wer: 1.0 - accuracy,
        token_edits: edits,
        ref_tokens,
        ter: if ref_tokens == 0 {
            0.0
        } else {
            edits as f64 / ref_tokens as f64
        },
        top_k: correct_at.iter().map(|&c| rate(c)).collect(),
        multi_reference: multi,
        missing: 0,
        extra: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hyps(list: &[(&str, &[&str])]) -> HashMap<String, Vec<String>> {
        list.iter()
            .map(|(s, h)| (s.to_string(), h.iter().map(|x| x.to_string()).collect()))
            .collect()
    }

    #[test]
    fn levenshtein_cases() {
        let l = |a: &str, b: &str| {
            let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
            levenshtein(&a, &b)
        };
        assert_eq!(l("kitten", "sitting"), 3);
        assert_eq!(l("sitting", "kitten"), 3);
        assert_eq!(l("", "abc"), 3);
        assert_eq!(l("abc", ""), 3);
        assert_eq!(l("", ""), 0);
        assert_eq!(l("flaw", "lawn"), 2);
        assert_eq!(levenshtein(&["AH", "B"], &["AH", "B", "AE"]), 1);
    }

    #[test]
    fn multi_reference_g2p_example() {
        // Hand-computed:
        // READ: refs [R IY D], [R EH D]; hyp R EH D → correct, 0 edits, |r*| = 3.
        // ABELN: ref [AE B EH L N]; hyp AE B IH L N → wrong (right at rank 2), 1 edit, 5.
        let refs = References::from_pairs([
            ("READ", "R IY D"),
            ("ABELN", "AE B EH L N"),
            ("READ", "R EH D"),
            ("ACERO", "AH S EH R OW"),
            ("ACERO", "AE S ER OW"),
            ("READ", "R IY D"),
        ]);
        assert_eq!(refs.len(), 3);
        assert_eq!(refs.get("READ").unwrap().len(), 2);
        let h = hyps(&[
            ("READ", &["R EH D"]),
            ("ABELN", &["AE B IH L N", "AE B EH L N"]),
            ("ACERO", &["AE S EH R OW"]),
            ("OTHER", &["X"]),
        ]);
        let r = evaluate(&refs, &h, Tokenizer::Symbols, 3).unwrap();
        // ACERO: to ref1 (AH S EH R OW): 1 substitution; to ref2 (AE S ER OW): EH→ER + delete R
        // = 2. Closest is ref1: 1 edit over 5 tokens.
        assert_eq!((r.words, r.correct, r.multi_reference), (3, 1, 2));
        assert_eq!((r.token_edits, r.ref_tokens), (2, 13));
        assert!((r.accuracy - 1.0 / 3.0).abs() < 1e-12);
        assert!((r.wer - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.ter - 2.0 / 13.0).abs() < 1e-12);
        assert_eq!(r.top_k.len(), 3);
        assert!((r.top_k[1] - 2.0 / 3.0).abs() < 1e-12 && (r.top_k[2] - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!((r.missing, r.extra), (0, 1));
        let json = serde_json::to_string(&r).unwrap();
        // serde_json's default float parser may be off by one ulp, so compare loosely.
        let back: EvalReport = serde_json::from_str(&json).unwrap();
        assert_eq!((back.words, back.token_edits, back.ref_tokens), (3, 2, 13));
        assert!((back.ter - r.ter).abs() < 1e-12 && json.contains("\"top_k\":["));
    }

    #[test]
    fn closest_reference_tie_goes_to_first_and_chars() {
        // Hyp "ab" vs refs "abc" (d=1, len 3) and "a" (d=1, len 1): the first wins → 1/3.
        let refs = References::from_pairs([("x", "abc"), ("x", "a")]);
        let r = evaluate(&refs, &hyps(&[("x", &["ab"])]), Tokenizer::Chars, 1).unwrap();
        assert_eq!((r.correct, r.token_edits, r.ref_tokens), (0, 1, 3));
    }

    #[test]
    fn missing_hypotheses_and_bad_arguments() {
        let refs = References::from_pairs([("a", "xyz"), ("b", "q")]);
        let r = evaluate(&refs, &hyps(&[("b", &["q"])]), Tokenizer::Chars, 1).unwrap();
        assert_eq!(
            (r.correct, r.missing, r.token_edits, r.ref_tokens),
            (1, 1, 3, 4)
        );
        assert!(evaluate(&refs, &HashMap::new(), Tokenizer::Chars, 0).is_err());
        assert!(evaluate(&References::default(), &HashMap::new(), Tokenizer::Chars, 1).is_err());
    }
}
