//! Tokenization of one side of a pair.
//!
//! [`Tokenizer::Chars`] splits into Unicode scalar values (Rust `char`s) **without Unicode
//! normalization**: the bundled Dakshina data is already NFC and CMUdict is ASCII, and
//! normalizing would need an extra dependency. Feed NFC text if your data mixes forms, or the
//! same letter can get two vocabularies entries. Combining marks (Devanagari matras, virama) are
//! their own scalar values, hence their own tokens; whitespace characters are kept as tokens so
//! that sentence-level text detokenizes exactly.
//!
//! [`Tokenizer::Symbols`] splits on runs of Unicode whitespace (phonemes, words); detokenizing
//! joins with single spaces, so spacing is normalized.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a side is split into tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tokenizer {
    /// One token per Unicode scalar value, no normalization.
    Chars,
    /// Whitespace-separated symbols.
    Symbols,
}

impl Tokenizer {
    /// Splits `text` into tokens that borrow from it.
    pub fn tokenize<'a>(&self, text: &'a str) -> Vec<&'a str> {
        self.tokens(text).collect()
    }

    /// The tokens of `text`, one at a time (no allocation).
    pub fn tokens<'a>(&self, text: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let chars = matches!(self, Tokenizer::Chars);
        let symbols = if chars { "" } else { text };
        let letters = if chars { text } else { "" };
        letters
            .char_indices()
            .map(move |(i, c)| &letters[i..i + c.len_utf8()])
            .chain(symbols.split_whitespace())
    }

    /// What [`Self::detokenize`] puts between tokens.
    pub fn separator(&self) -> &'static str {
        match self {
            Tokenizer::Chars => "",
            Tokenizer::Symbols => " ",
        }
    }

    /// Joins tokens back: concatenated for `Chars`, single spaces for `Symbols`.
    pub fn detokenize<S: AsRef<str>>(&self, tokens: &[S]) -> String {
        let sep = self.separator();
        let mut out = String::new();
        for (i, t) in tokens.iter().enumerate() {
            if i > 0 {
                out.push_str(sep);
            }
            out.push_str(t.as_ref());
        }
        out
    }
}

impl fmt::Display for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tokenizer::Chars => "chars",
            Tokenizer::Symbols => "symbols",
        })
    }
}

impl FromStr for Tokenizer {
    type Err = Error;

    /// Parses `chars` or `symbols` (the CLI spelling).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "chars" => Ok(Tokenizer::Chars),
            "symbols" => Ok(Tokenizer::Symbols),
            _ => Err(Error::arg(
                "Tokenizer::from_str",
                "tokenizer",
                "`chars` or `symbols`",
                s,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chars_are_scalar_values_and_round_trip() {
        let t = Tokenizer::Chars;
        // क + ् + ष: the virama is its own scalar value.
        assert_eq!(t.tokenize("क्ष"), vec!["क", "\u{94d}", "ष"]);
        assert_eq!(t.tokenize("a b"), vec!["a", " ", "b"]);
        assert!(t.tokenize("").is_empty());
        for s in ["अंकगणित", "THIS-IS-A-SECRET", "a b", ""] {
            assert_eq!(t.detokenize(&t.tokenize(s)), s);
        }
    }

    #[test]
    fn symbols_split_on_whitespace_and_join_with_one_space() {
        let t = Tokenizer::Symbols;
        assert_eq!(t.tokenize(" AH  B\tAE D "), vec!["AH", "B", "AE", "D"]);
        assert_eq!(t.detokenize(&t.tokenize(" AH  B\tAE D ")), "AH B AE D");
        assert_eq!(t.detokenize::<&str>(&[]), "");
    }

    #[test]
    fn parses_and_displays() {
        for t in [Tokenizer::Chars, Tokenizer::Symbols] {
            assert_eq!(t.to_string().parse::<Tokenizer>().unwrap(), t);
        }
        assert!("words".parse::<Tokenizer>().is_err());
        assert_eq!(
            serde_json::to_string(&Tokenizer::Chars).unwrap(),
            "\"chars\""
        );
    }
}
