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

use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Bytes of one lexicon file (the full CMUdict is about 3.3 MB).
pub const MAX_LEXICON_BYTES: u64 = 64 << 20;
/// Bytes of one line.
pub const MAX_LINE_BYTES: usize = 4096;
/// Bytes of a lexicon's keys and outputs as its owner's rules wrote them.
const MAX_TEXT: usize = 1 << 30;

/// A map from source words to their outputs, best first.
///
/// Stored as one text holding every key and output and a table of words sorted by key, looked
/// up by binary search: CMUdict's 126,000 words load with two allocations, where a hash map of
/// strings spent most of a model's load time allocating (and, at exit, freeing) them.
#[derive(Clone, Debug, Default)]
pub struct Lexicon {
    /// Keys and outputs, back to back.
    text: String,
    /// One per word, sorted by key, no key twice.
    words: Vec<Word>,
    origin: PathBuf,
}

/// One word of a [`Lexicon`]: where its key and its outputs (joined by [`SEPARATOR`]) are in
/// the lexicon's text.
#[derive(Clone, Copy, Debug)]
struct Word {
    key: Span,
    outputs: Span,
}

/// A range of a lexicon's text (see [`Lexicon::push`] for why u32 suffices).
#[derive(Clone, Copy, Debug)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    fn range(self) -> Range<usize> {
        self.start as usize..self.start as usize + self.len as usize
    }
}

/// What the owner's rules make of one line: they write the lookup key and the target into the
/// two buffers (given empty), or say why the line is refused.
pub type EntryRule<'a> =
    dyn Fn(&str, &str, &mut String, &mut String) -> std::result::Result<(), String> + 'a;

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
        let mut lexicon = Lexicon {
            text: String::with_capacity(bytes.len()),
            words: Vec::with_capacity(bytes.iter().filter(|&&b| b == b'\n').count() + 1),
            origin: origin.to_path_buf(),
        };
        let (mut key, mut output) = (String::new(), String::new());
        for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let number = index + 1;
            let Some((word, target)) = split_line(raw).map_err(|msg| bad(Some(number), msg))?
            else {
                continue;
            };
            key.clear();
            output.clear();
            rule(word, target, &mut key, &mut output).map_err(|msg| bad(Some(number), msg))?;
            if key.is_empty() || output.is_empty() || output.contains(SEPARATOR) {
                let msg = "the entry is empty or holds a tab after the model's rules".to_string();
                return Err(bad(Some(number), msg));
            }
            if lexicon.text.len() + key.len() + output.len() > MAX_TEXT {
                let msg = "the lexicon grew beyond 1 GiB under the model's rules".to_string();
                return Err(bad(Some(number), msg));
            }
            let word = Word {
                key: lexicon.push(&key),
                outputs: lexicon.push(&output),
            };
            lexicon.words.push(word);
        }
        lexicon.sort_and_merge();
        Ok(lexicon)
    }

    /// Appends `s` to the text. Offsets fit in u32: parsing keeps a lexicon's lines within
    /// [`MAX_TEXT`], merging a word's lines at most doubles that, and
    /// [`Lexicon::overridden_by`] copies at most the words of two lexicons.
    fn push(&mut self, s: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        Span {
            start,
            len: s.len() as u32,
        }
    }

    fn str(&self, span: Span) -> &str {
        &self.text[span.range()]
    }

    /// Sorts the lines' entries by key (stably: a word's entries keep the file's order) and
    /// makes one word of each key, its outputs in order without repeats.
    fn sort_and_merge(&mut self) {
        let mut words = std::mem::take(&mut self.words);
        // CMUdict's file is sorted already; checking is cheaper than sorting.
        if !words.is_sorted_by(|a, b| self.str(a.key) <= self.str(b.key)) {
            words.sort_by(|a, b| self.str(a.key).cmp(self.str(b.key)));
        }
        let mut merged: Vec<Word> = Vec::with_capacity(words.len());
        let mut start = 0;
        while start < words.len() {
            let key = self.str(words[start].key);
            let mut end = start + 1;
            while words.get(end).is_some_and(|w| self.str(w.key) == key) {
                end += 1;
            }
            let mut word = words[start];
            if end - start > 1 {
                let mut outputs: Vec<&str> = Vec::new();
                for w in &words[start..end] {
                    let output = self.str(w.outputs);
                    if !outputs.contains(&output) {
                        outputs.push(output);
                    }
                }
                let joined = outputs.join(&SEPARATOR.to_string());
                word.outputs = self.push(&joined);
            }
            merged.push(word);
            start = end;
        }
        self.words = merged;
    }

    fn find(&self, key: &str) -> Option<&Word> {
        let i = self
            .words
            .binary_search_by(|w| self.str(w.key).cmp(key))
            .ok()?;
        self.words.get(i)
    }

    /// The outputs of a word (its key: after the owner's preprocessing), best first.
    pub fn get(&self, key: &str) -> Option<impl Iterator<Item = &str> + '_> {
        self.find(key).map(|w| self.str(w.outputs).split(SEPARATOR))
    }

    /// Whether the lexicon has the word (its key).
    pub fn contains(&self, key: &str) -> bool {
        self.find(key).is_some()
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether it has no words.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The file it was read from (or `bundled:NAME/FILE`), for messages.
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// Every word's key and outputs, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, impl Iterator<Item = &str> + '_)> + '_ {
        self.words
            .iter()
            .map(|w| (self.str(w.key), self.str(w.outputs).split(SEPARATOR)))
    }

    /// This lexicon with `other`'s words on top: a word `other` has gets `other`'s entries
    /// only (a user's lexicon overrides the model's for the words it lists).
    pub fn overridden_by(self, other: Lexicon) -> Lexicon {
        use std::cmp::Ordering;
        let mut merged = Lexicon {
            text: String::with_capacity(self.text.len() + other.text.len()),
            words: Vec::with_capacity(self.words.len() + other.words.len()),
            origin: other.origin.clone(),
        };
        let (mut i, mut j) = (0, 0);
        loop {
            let order = match (self.words.get(i), other.words.get(j)) {
                (None, None) => break,
                (Some(a), Some(b)) => self.str(a.key).cmp(other.str(b.key)),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
            };
            if order != Ordering::Greater {
                i += 1;
            }
            let (from, word) = match order {
                Ordering::Less => (&self, self.words[i - 1]),
                _ => {
                    j += 1;
                    (&other, other.words[j - 1])
                }
            };
            let word = Word {
                key: merged.push(from.str(word.key)),
                outputs: merged.push(from.str(word.outputs)),
            };
            merged.words.push(word);
        }
        merged
    }
}

/// Between the outputs of one word in a [`Lexicon`]'s text (a target never holds one).
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

    fn as_is(
        word: &str,
        target: &str,
        key: &mut String,
        output: &mut String,
    ) -> std::result::Result<(), String> {
        key.push_str(&word.to_lowercase());
        output.push_str(target);
        Ok(())
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
        let refuse = |_: &str, t: &str, _: &mut String, _: &mut String| {
            Err(format!("`{t}` is not a target"))
        };
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
        let model = parse("b\tB\nd\tD\nf\tF\n").unwrap();
        let user = parse("a\tA\nd\tX\nd\tY\ng\tG\n").unwrap();
        let both = model.overridden_by(user);
        let words: Vec<(&str, Vec<&str>)> = both.iter().map(|(k, o)| (k, o.collect())).collect();
        let want = [("a", vec!["A"]), ("b", vec!["B"]), ("d", vec!["X", "Y"])];
        assert_eq!(words[..3], want);
        assert_eq!(words[3..], [("f", vec!["F"]), ("g", vec!["G"])]);
        assert_eq!(both.len(), 5);
    }

    #[test]
    fn unsorted_lines_are_found_and_a_words_lines_keep_their_order() {
        let lex = parse("zeta\tZ\nalpha\tA1\nmid\tM\nAlpha\tA2\nalpha\tA1\nbeta\tB\n").unwrap();
        assert_eq!(get(&lex, "alpha"), ["A1", "A2"]);
        for (key, want) in [("zeta", "Z"), ("mid", "M"), ("beta", "B")] {
            assert_eq!(get(&lex, key), [want]);
        }
        assert!(!lex.contains("alph") && !lex.contains("zz") && !lex.contains(""));
        let keys: Vec<&str> = lex.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["alpha", "beta", "mid", "zeta"]);
    }
}
