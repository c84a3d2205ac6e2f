//! Token vocabularies with fixed special ids.
//!
//! A token id is a [`TokenId`]; the vocabulary hands out ids as `i64` because they go straight
//! into the model's index tensors. The specials, defined here and nowhere else, are always
//! [`PAD`]=0, [`BOS`]=1, [`EOS`]=2, [`UNK`]=3, spelled `<pad>`, `<s>`, `</s>`, `<unk>`.
//! Ordinary tokens follow in **descending frequency, ties in lexicographic (byte) order**: the
//! order is a pure function of the counts, so the same data always gives the same ids whatever
//! the hash-map iteration order, and frequent tokens get small ids. A data token spelled like a
//! special (only possible with [`Tokenizer::Symbols`](super::Tokenizer)) is treated as that
//! special, never given a second id.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A token id: what decoding reads and writes (the decoder's previous tokens, hypotheses).
pub type TokenId = u32;

/// Padding id: fills short sequences; ignored by the loss.
pub const PAD: TokenId = 0;
/// Beginning-of-sequence id: first decoder input.
pub const BOS: TokenId = 1;
/// End-of-sequence id: last decoder target; decoding stops there.
pub const EOS: TokenId = 2;
/// Unknown-token id: any token not in the vocabulary.
pub const UNK: TokenId = 3;
/// The spellings of the specials, indexed by their ids.
pub const SPECIALS: [&str; 4] = ["<pad>", "<s>", "</s>", "<unk>"];

/// The on-disk format tag, so a wrong JSON file is recognised as such.
const FORMAT: &str = "recur-vocab-v1";

/// A token ↔ id mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vocab {
    tokens: Vec<String>,
    index: HashMap<String, i64>,
}

/// The JSON layout of a saved vocabulary.
#[derive(Serialize, Deserialize)]
struct VocabFile {
    format: String,
    /// All tokens by id, specials included.
    tokens: Vec<String>,
}

/// Counts tokens, then builds a [`Vocab`].
#[derive(Clone, Debug, Default)]
pub struct VocabBuilder {
    counts: HashMap<String, usize>,
}

impl VocabBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one tokenized sequence.
    pub fn add<S: AsRef<str>>(&mut self, tokens: &[S]) {
        for t in tokens {
            let t = t.as_ref();
            match self.counts.get_mut(t) {
                Some(c) => *c += 1,
                None => {
                    self.counts.insert(t.to_owned(), 1);
                }
            }
        }
    }

    /// Builds the vocabulary, keeping tokens seen at least `min_freq` times (0 and 1 keep all).
    pub fn build(self, min_freq: usize) -> Vocab {
        let mut kept: Vec<(String, usize)> = self
            .counts
            .into_iter()
            .filter(|(t, c)| *c >= min_freq && !SPECIALS.contains(&t.as_str()))
            .collect();
        kept.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let tokens = SPECIALS
            .iter()
            .map(|s| s.to_string())
            .chain(kept.into_iter().map(|(t, _)| t))
            .collect();
        Vocab::from_tokens_unchecked(tokens)
    }
}

impl Vocab {
    /// Builds from tokenized sequences; see [`VocabBuilder::build`] for `min_freq`.
    pub fn from_sequences<I, T, S>(sequences: I, min_freq: usize) -> Vocab
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[S]>,
        S: AsRef<str>,
    {
        let mut b = VocabBuilder::new();
        for s in sequences {
            b.add(s.as_ref());
        }
        b.build(min_freq)
    }

    fn from_tokens_unchecked(tokens: Vec<String>) -> Vocab {
        let index = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as i64))
            .collect();
        Vocab { tokens, index }
    }

    /// Number of ids, specials included.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Never true (the specials are always there); present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// All tokens by id, specials first.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The id of a token, if known.
    pub fn id(&self, token: &str) -> Option<i64> {
        self.index.get(token).copied()
    }

    /// The token of an id, if in range.
    pub fn token(&self, id: i64) -> Option<&str> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.tokens.get(i))
            .map(String::as_str)
    }

    /// Maps tokens to ids, unknown tokens to [`UNK`]. Adds no BOS/EOS (batching does).
    pub fn encode<S: AsRef<str>>(&self, tokens: &[S]) -> Vec<i64> {
        tokens
            .iter()
            .map(|t| self.id(t.as_ref()).unwrap_or(i64::from(UNK)))
            .collect()
    }

    /// Maps ids back to tokens: stops at the first [`EOS`], skips [`PAD`] and [`BOS`], and
    /// spells [`UNK`] and out-of-range ids as `<unk>` (model output is untrusted input here).
    pub fn decode(&self, ids: &[i64]) -> Vec<&str> {
        ids.iter()
            .take_while(|&&id| id != i64::from(EOS))
            .filter(|&&id| id != i64::from(PAD) && id != i64::from(BOS))
            .map(|&id| self.token(id).unwrap_or(SPECIALS[UNK as usize]))
            .collect()
    }

    /// The JSON text of this vocabulary.
    pub fn to_json(&self) -> String {
        let file = VocabFile {
            format: FORMAT.to_owned(),
            tokens: self.tokens.clone(),
        };
        serde_json::to_string_pretty(&file).expect("a Vec<String> always serializes")
    }

    /// Parses JSON written by [`Vocab::to_json`]; `path` is only used in error messages.
    pub fn from_json(text: &str, path: &Path) -> Result<Vocab> {
        let bad = |msg: String| Error::Parse {
            path: path.to_path_buf(),
            line: None,
            msg: format!("corrupt vocabulary: {msg}"),
        };
        let file: VocabFile = serde_json::from_str(text).map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            line: Some(e.line()),
            msg: format!("corrupt vocabulary: {e}"),
        })?;
        if file.format != FORMAT {
            return Err(bad(format!(
                "format is {:?}, expected {FORMAT:?}",
                file.format
            )));
        }
        Vocab::from_tokens(file.tokens).map_err(bad)
    }

    /// A vocabulary with exactly these tokens in this order (ids 0, 1, ...), e.g. to match an
    /// imported model's embedding rows. The first four must be [`SPECIALS`]; tokens must be
    /// non-empty and distinct. The error says which rule was broken.
    pub fn from_tokens(tokens: Vec<String>) -> std::result::Result<Vocab, String> {
        if tokens.len() < SPECIALS.len() || tokens[..SPECIALS.len()] != SPECIALS {
            return Err(format!(
                "the first tokens must be the specials {SPECIALS:?}"
            ));
        }
        let vocab = Vocab::from_tokens_unchecked(tokens);
        if vocab.index.len() != vocab.tokens.len() {
            return Err("duplicate tokens".to_owned());
        }
        if vocab.tokens.iter().any(String::is_empty) {
            return Err("empty token".to_owned());
        }
        Ok(vocab)
    }

    /// Writes the vocabulary as JSON.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_json()).map_err(|e| Error::io(path, e))
    }

    /// Reads a vocabulary written by [`Vocab::save`].
    pub fn load(path: impl AsRef<Path>) -> Result<Vocab> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Vocab::from_json(&text, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Tokenizer;

    fn sample() -> Vocab {
        let t = Tokenizer::Symbols;
        let lines = ["b a c", "a b", "a d", "e"];
        Vocab::from_sequences(lines.iter().map(|l| t.tokenize(l)), 1)
    }

    #[test]
    fn specials_have_fixed_ids() {
        let v = sample();
        assert_eq!([PAD, BOS, EOS, UNK], [0, 1, 2, 3]);
        for (i, s) in SPECIALS.iter().enumerate() {
            assert_eq!(v.id(s), Some(i as i64));
        }
    }

    #[test]
    fn order_is_frequency_then_lexicographic() {
        let v = sample();
        assert_eq!(
            &v.tokens()[4..],
            ["a", "b", "c", "d", "e"].map(String::from)
        );
        let v2 = Vocab::from_sequences([vec!["z", "y", "y", "x"], vec!["x"]], 1);
        assert_eq!(&v2.tokens()[4..], ["x", "y", "z"].map(String::from));
    }

    #[test]
    fn build_is_deterministic() {
        let seqs: Vec<Vec<String>> = (0..200)
            .map(|i| vec![format!("t{}", i % 37), format!("u{}", i % 11)])
            .collect();
        let a = Vocab::from_sequences(&seqs, 1);
        for _ in 0..5 {
            // HashMap order differs between instances; the result must not.
            assert_eq!(Vocab::from_sequences(&seqs, 1).tokens(), a.tokens());
        }
    }

    #[test]
    fn min_freq_drops_rare_tokens() {
        let v = Vocab::from_sequences([vec!["a", "a", "b"], vec!["<unk>", "<unk>"]], 2);
        assert_eq!(v.len(), 5);
        assert_eq!(v.id("b"), None);
        assert_eq!(
            v.encode(&["a", "b", "<unk>"]),
            vec![4, i64::from(UNK), i64::from(UNK)]
        );
    }

    #[test]
    fn encode_decode() {
        let v = sample();
        let ids = v.encode(&["a", "zz", "e"]);
        assert_eq!(ids, vec![4, i64::from(UNK), 8]);
        assert_eq!(v.decode(&[1, 4, 0, 5, 2, 6]), vec!["a", "b"]);
        assert_eq!(
            v.decode(&[4, 3, 99, -1]),
            vec!["a", "<unk>", "<unk>", "<unk>"]
        );
        assert!(v.decode(&[2, 4]).is_empty());
    }

    #[test]
    fn from_tokens_keeps_the_order_and_checks_it() {
        let toks = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let v = Vocab::from_tokens(toks(&["<pad>", "<s>", "</s>", "<unk>", "z", "a"])).unwrap();
        assert_eq!((v.id("z"), v.id("a")), (Some(4), Some(5)));
        assert!(Vocab::from_tokens(toks(&["a"]))
            .unwrap_err()
            .contains("specials"));
        let dup = toks(&["<pad>", "<s>", "</s>", "<unk>", "a", "a"]);
        assert!(Vocab::from_tokens(dup).unwrap_err().contains("duplicate"));
    }

    #[test]
    fn save_load_round_trip() {
        let v = sample();
        let dir = std::env::temp_dir().join(format!("recur-vocab-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("v.json");
        v.save(&path).unwrap();
        assert_eq!(Vocab::load(&path).unwrap(), v);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_files_are_clear_errors() {
        let p = Path::new("v.json");
        let cases = [
            (
                "{\"format\": \"recur-vocab-v1\", \"tokens\": [",
                "corrupt vocabulary",
            ),
            ("[1, 2]", "corrupt vocabulary"),
            (r#"{"format":"other","tokens":[]}"#, "format is \"other\""),
            (r#"{"format":"recur-vocab-v1","tokens":["a"]}"#, "specials"),
            (
                r#"{"format":"recur-vocab-v1","tokens":["<pad>","<s>","</s>","<unk>","a","a"]}"#,
                "duplicate",
            ),
        ];
        for (text, want) in cases {
            let err = Vocab::from_json(text, p).unwrap_err();
            assert!(matches!(err, Error::Parse { .. }));
            let msg = err.to_string();
            assert!(msg.starts_with("v.json") && msg.contains(want), "{msg}");
        }
        assert!(matches!(
            Vocab::load("/nonexistent/v.json"),
            Err(Error::Io { .. })
        ));
    }
}
