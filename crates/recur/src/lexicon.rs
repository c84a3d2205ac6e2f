//! Lexicons: source words with known outputs, consulted before the model (as g2p_en consults
//! CMUdict before its network).
//!
//! A lexicon is a UTF-8 TSV file, one entry a line:
//!
//! ```text
//! word<TAB>target
//! ```
//!
//! Several lines for one word are several entries, best first (CMUdict's `word(2)` variants
//! become such lines when converted by `scripts/cmudict_to_lexicon.py`; the CMUdict form itself
//! is not read). Blank lines and lines starting with `#` are skipped; a `\r` before the `\n`
//! and a byte-order mark are dropped. Words are looked up after the model's source
//! preprocessing (lowercasing when `[data] lowercase_src`), with `’` read as `'`; the owner of
//! the lexicon (a [`crate::transducer::Transducer`]) supplies that rule as the `key` function of
//! [`Lexicon::parse`], and checks the targets against its target vocabulary.
//!
//! Inputs are bounded: a file has at most [`MAX_LEXICON_BYTES`] bytes, a line at most
//! [`MAX_LINE_BYTES`]; every error names the file and the line.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Bytes of one lexicon file (the full CMUdict is about 3.3 MB).
pub const MAX_LEXICON_BYTES: u64 = 64 << 20;
/// Bytes of one line.
pub const MAX_LINE_BYTES: usize = 4096;

/// A map from source words to their outputs, best first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lexicon {
    /// Each word's outputs joined by tabs (a target never holds one): one allocation per word,
    /// where a list of strings made loading CMUdict's 126,000 words three times slower.
    entries: HashMap<Box<str>, Box<str>>,
    origin: PathBuf,
}

/// What the owner's rules made of one line: the lookup key and the target, or why the line is
/// refused.
pub type EntryRule<'a> = dyn Fn(&str, &str) -> std::result::Result<(String, String), String> + 'a;

impl Lexicon {
    /// Reads the lexicon file `path` (see the [module docs](self)), each line's word and target
    /// turned into a key and an output by `rule` (which may refuse the line with a message).
    pub fn read(path: &Path, rule: &EntryRule) -> Result<Lexicon> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut bytes = Vec::new();
        file.take(MAX_LEXICON_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(path, e))?;
        Lexicon::parse(&bytes, path, rule)
    }

    /// Parses the bytes of a lexicon file; `origin` names it in errors.
    pub fn parse(bytes: &[u8], origin: &Path, rule: &EntryRule) -> Result<Lexicon> {
        let bad = |line: Option<usize>, msg: String| Error::Parse {
            path: origin.to_path_buf(),
            line,
            msg,
        };
        if bytes.len() as u64 > MAX_LEXICON_BYTES {
            let msg = format!("larger than the limit of {MAX_LEXICON_BYTES} bytes");
            return Err(bad(None, msg));
        }
        let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
        // Sized once: growing a map of CMUdict's 126,000 words rehashes it many times.
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
        let mut lexicon = Lexicon {
            entries: HashMap::with_capacity(lines),
            origin: origin.to_path_buf(),
        };
        for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let number = index + 1;
            let Some((word, target)) = split_line(raw).map_err(|msg| bad(Some(number), msg))?
            else {
                continue;
            };
            let (key, output) = rule(word, target).map_err(|msg| bad(Some(number), msg))?;
            lexicon.add(key, output);
        }
        Ok(lexicon)
    }

    /// Adds an entry for `key` after its others (an entry it already has is not repeated).
    fn add(&mut self, key: String, output: String) {
        debug_assert!(!output.contains(SEPARATOR));
        match self.entries.get_mut(key.as_str()) {
            None => {
                self.entries
                    .insert(key.into_boxed_str(), output.into_boxed_str());
            }
            Some(outputs) => {
                if !outputs.split(SEPARATOR).any(|o| o == output) {
                    *outputs = format!("{outputs}{SEPARATOR}{output}").into_boxed_str();
                }
            }
        }
    }

    /// The outputs of a word (its key: after the owner's preprocessing), best first.
    pub fn get(&self, key: &str) -> Option<impl Iterator<Item = &str> + '_> {
        self.entries.get(key).map(|o| o.split(SEPARATOR))
    }

    /// Whether the lexicon has the word (its key).
    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it has no words.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The file it was read from (or `bundled:NAME/FILE`), for messages.
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// This lexicon with `other`'s words on top: a word `other` has gets `other`'s entries
    /// only (a user's lexicon overrides the model's for the words it lists).
    pub fn overridden_by(mut self, other: Lexicon) -> Lexicon {
        self.entries.extend(other.entries);
        self.origin = other.origin;
        self
    }
}

/// Between the outputs of one word in [`Lexicon::entries`].
const SEPARATOR: char = '\t';

/// One line → `(word, target)`, `None` for a blank or comment line, or what is wrong with it.
fn split_line(raw: &[u8]) -> std::result::Result<Option<(&str, &str)>, String> {
    if raw.len() > MAX_LINE_BYTES {
        return Err(format!("longer than the limit of {MAX_LINE_BYTES} bytes"));
    }
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let line = std::str::from_utf8(raw).map_err(|e| format!("not UTF-8: {e}"))?;
    if line.trim().is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let mut columns = line.split('\t');
    let (word, target) = match (columns.next(), columns.next(), columns.next()) {
        (Some(w), Some(t), None) => (w.trim(), t.trim()),
        _ => return Err("expected two columns: word<TAB>target".to_string()),
    };
    if word.is_empty() || target.is_empty() {
        return Err("empty word or target (expected word<TAB>target)".to_string());
    }
    Ok(Some((word, target)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_is(word: &str, target: &str) -> std::result::Result<(String, String), String> {
        Ok((word.to_lowercase(), target.to_string()))
    }

    fn get<'a>(lex: &'a Lexicon, key: &str) -> Vec<&'a str> {
        lex.get(key).map(Iterator::collect).unwrap_or_default()
    }

    fn parse(text: &str) -> Result<Lexicon> {
        Lexicon::parse(text.as_bytes(), Path::new("lex.tsv"), &as_is)
    }

    #[test]
    fn lines_of_one_word_are_its_entries_in_order() {
        let lex =
            parse("\u{feff}# comment\nread\tR IY D\r\nREAD\tR EH D\n\nread\tR IY D\nthe\tDH AH\n")
                .unwrap();
        assert_eq!(get(&lex, "read"), ["R IY D", "R EH D"], "no repeats");
        assert_eq!(get(&lex, "the"), ["DH AH"]);
        assert_eq!(
            (lex.len(), lex.get("READ").is_none()),
            (2, true),
            "keys are the rule's"
        );
    }

    #[test]
    fn malformed_lines_are_errors_naming_file_and_line() {
        for (text, line, what) in [
            ("a\tA\nb\n", 2, "two columns"),
            ("a\tA\tB\n", 1, "two columns"),
            ("a\tA\n\t B\n", 2, "empty word"),
            ("a\t \n", 1, "empty"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.starts_with(&format!("lex.tsv:{line}: ")), "{e}");
            assert!(e.contains(what), "{e}");
        }
        let e = Lexicon::parse(b"a\tA\n\xff\tB\n", Path::new("x.tsv"), &as_is).unwrap_err();
        assert!(e.to_string().starts_with("x.tsv:2: not UTF-8"), "{e}");
    }

    #[test]
    fn limits_and_refusals_are_errors() {
        let long = format!("a\t{}\n", "B ".repeat(MAX_LINE_BYTES));
        let e = parse(&long).unwrap_err().to_string();
        assert!(e.contains("lex.tsv:1: longer than"), "{e}");
        let refuse = |_: &str, t: &str| Err(format!("`{t}` is not a target"));
        let e = Lexicon::parse(b"a\tX9\n", Path::new("l.tsv"), &refuse).unwrap_err();
        assert_eq!(e.to_string(), "l.tsv:1: `X9` is not a target");
        let e = Lexicon::read(Path::new("/no/such/lexicon.tsv"), &as_is).unwrap_err();
        assert!(e.to_string().starts_with("/no/such/lexicon.tsv: "), "{e}");
    }

    #[test]
    fn an_overriding_lexicon_replaces_whole_words() {
        let model = parse("a\tA\na\tB\nc\tC\n").unwrap();
        let user = parse("a\tX\n").unwrap();
        let both = model.overridden_by(user);
        assert_eq!(get(&both, "a"), ["X"]);
        assert_eq!(get(&both, "c"), ["C"]);
    }
}
