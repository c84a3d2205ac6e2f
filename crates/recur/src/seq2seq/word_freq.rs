//! Target-language word frequencies for frequency-aware beam search.
//!
//! A transliteration model learns from a lexicon of distinct words, which says nothing about how
//! often each word is written: it cannot know that `में` is among the commonest Hindi words and
//! `मेन` is rare. [`WordFreq`] holds `log p(word)` from a frequency list, keyed by the word's
//! target token ids, so that beam search can add `λ · log p(word)` to a hypothesis when it
//! finishes (see [`super::search`]); a word missing from the list gets a floor probability.
//!
//! File format (UTF-8): one `word<TAB>frequency` per line, `frequency` the word's share of
//! running text in (0, 1]; empty lines and lines starting with `#` (provenance) are skipped.
//! Words with a character the target vocabulary lacks can never be produced by the model, so they
//! are dropped and counted ([`WordFreq::dropped`]), not errors. A word listed twice keeps its
//! larger frequency.
//!
//! The words also form a prefix tree whose nodes know the best `log p` of the words below them
//! ([`WordFreq::prefix_best`]): beam search uses it to stop as soon as no live hypothesis's
//! prefix can still earn enough of a bonus to matter.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::data::vocab::TokenId;
use crate::error::{Error, Result};

/// The largest word-frequency file read (bytes).
pub const MAX_FILE_BYTES: usize = 64 << 20;
/// The most words a list may hold.
pub const MAX_WORDS: usize = 2_000_000;

/// `log p(word)` by target token ids, with a floor for unlisted words.
#[derive(Clone, PartialEq)]
pub struct WordFreq {
    log_p: HashMap<Box<[TokenId]>, f32>,
    /// `ln` of the probability of a word missing from the list.
    floor: f32,
    /// The largest `log p` a word can get: the list's best, or the floor if that is higher.
    best: f32,
    dropped: usize,
    trie: Trie,
}

/// The prefix-tree node of a prefix that no listed word starts with.
pub const OFF_LIST: u32 = u32::MAX;

/// The listed words as a prefix tree: per node, its children sorted by token (in flat arrays,
/// `first_edge[n]..first_edge[n + 1]`) and the best `log p` of the listed words it starts.
#[derive(Clone, PartialEq, Default)]
struct Trie {
    first_edge: Vec<u32>,
    edge_token: Vec<TokenId>,
    edge_child: Vec<u32>,
    best: Vec<f32>,
}

impl Trie {
    fn build(log_p: &HashMap<Box<[TokenId]>, f32>, floor: f32) -> Trie {
        let mut children: Vec<BTreeMap<TokenId, u32>> = vec![BTreeMap::new()];
        let mut best = vec![floor];
        for (ids, &lp) in log_p {
            let mut node = 0;
            for &token in ids.iter() {
                let fresh = children.len() as u32;
                node = *children[node].entry(token).or_insert(fresh) as usize;
                if node == fresh as usize {
                    children.push(BTreeMap::new());
                    best.push(floor);
                }
            }
            best[node] = best[node].max(lp);
        }
        // A child is created after its parent: one backward pass carries the maxima up.
        for node in (0..children.len()).rev() {
            for &child in children[node].values() {
                best[node] = best[node].max(best[child as usize]);
            }
        }
        let mut trie = Trie {
            best,
            ..Trie::default()
        };
        for edges in &children {
            trie.first_edge.push(trie.edge_token.len() as u32);
            trie.edge_token.extend(edges.keys());
            trie.edge_child.extend(edges.values());
        }
        trie.first_edge.push(trie.edge_token.len() as u32);
        trie
    }
}

impl WordFreq {
    /// Parses a frequency file (`path` names it in errors). `encode` turns a word into target
    /// token ids, or `None` when the vocabulary lacks one of its tokens (the word is dropped).
    /// `floor` is the probability of unlisted words, in (0, 1]; `None`: the smallest listed
    /// frequency (an unlisted word is taken to be as rare as the rarest listed one).
    pub fn parse(
        bytes: &[u8],
        path: &Path,
        encode: impl Fn(&str) -> Option<Vec<TokenId>>,
        floor: Option<f32>,
    ) -> Result<Self> {
        let bad = |line: Option<usize>, msg: String| Error::Parse {
            path: path.to_path_buf(),
            line,
            msg,
        };
        if bytes.len() > MAX_FILE_BYTES {
            let msg = format!(
                "{} bytes, more than the {MAX_FILE_BYTES} allowed",
                bytes.len()
            );
            return Err(bad(None, msg));
        }
        let text = std::str::from_utf8(bytes).map_err(|e| bad(None, format!("not UTF-8: {e}")))?;
        let mut log_p: HashMap<Box<[TokenId]>, f32> = HashMap::new();
        let mut dropped = 0;
        for (i, line) in text.lines().enumerate() {
            let Some((word, freq)) = parse_line(line).map_err(|msg| bad(Some(i + 1), msg))? else {
                continue;
            };
            let Some(ids) = encode(word) else {
                dropped += 1;
                continue;
            };
            if log_p.len() == MAX_WORDS && !log_p.contains_key(ids.as_slice()) {
                let msg = format!("more than {MAX_WORDS} words");
                return Err(bad(Some(i + 1), msg));
            }
            let entry = log_p.entry(ids.into_boxed_slice()).or_insert(f32::MIN);
            *entry = entry.max(freq.ln() as f32);
        }
        if log_p.is_empty() {
            return Err(bad(None, "no word the model can write".to_string()));
        }
        WordFreq::from_log_probs(log_p, floor, dropped)
            .map_err(|msg| bad(None, format!("word_freq_floor: {msg}")))
    }

    /// The table of `log_p`, with the floor checked (probability in (0, 1]) or derived.
    fn from_log_probs(
        log_p: HashMap<Box<[TokenId]>, f32>,
        floor: Option<f32>,
        dropped: usize,
    ) -> std::result::Result<Self, String> {
        let least = log_p.values().copied().fold(f32::INFINITY, f32::min);
        let most = log_p.values().copied().fold(f32::NEG_INFINITY, f32::max);
        let floor = match floor {
            None => least,
            Some(p) if p > 0.0 && p <= 1.0 => p.ln(),
            Some(p) => return Err(format!("expected a probability in (0, 1], got {p}")),
        };
        Ok(WordFreq {
            trie: Trie::build(&log_p, floor),
            log_p,
            floor,
            best: most.max(floor),
            dropped,
        })
    }

    /// `log p(word)`, or the floor when the list does not have the word.
    pub fn log_p(&self, word: &[TokenId]) -> f32 {
        self.log_p.get(word).copied().unwrap_or(self.floor)
    }

    /// The largest value [`Self::log_p`] can return (bounds what a bonus can add).
    pub fn best_log_p(&self) -> f32 {
        self.best
    }

    /// `ln` of the floor probability of unlisted words.
    pub fn floor(&self) -> f32 {
        self.floor
    }

    /// Words in the table.
    pub fn len(&self) -> usize {
        self.log_p.len()
    }

    /// Whether the table is empty (never, for a parsed list).
    pub fn is_empty(&self) -> bool {
        self.log_p.is_empty()
    }

    /// Words of the file dropped because the target vocabulary lacks one of their tokens.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// The prefix-tree node of the empty prefix.
    pub fn prefix_root(&self) -> u32 {
        0
    }

    /// The node of `node`'s prefix followed by `token` ([`OFF_LIST`] when no listed word starts
    /// so).
    pub fn prefix_child(&self, node: u32, token: TokenId) -> u32 {
        let Some(range) = self.edges(node) else {
            return OFF_LIST;
        };
        let tokens = &self.trie.edge_token[range.clone()];
        match tokens.binary_search(&token) {
            Ok(i) => self.trie.edge_child[range.start + i],
            Err(_) => OFF_LIST,
        }
    }

    /// The best `log p` of a listed word that starts with `node`'s prefix (the floor for
    /// [`OFF_LIST`]): what any completion of the prefix can get at most.
    pub fn prefix_best(&self, node: u32) -> f32 {
        let best = self.trie.best.get(node as usize).copied();
        best.unwrap_or(self.floor).max(self.floor)
    }

    /// The edge range of a node, `None` for [`OFF_LIST`].
    fn edges(&self, node: u32) -> Option<std::ops::Range<usize>> {
        let n = node as usize;
        let (a, b) = (
            self.trie.first_edge.get(n)?,
            self.trie.first_edge.get(n + 1)?,
        );
        Some(*a as usize..*b as usize)
    }
}

/// A summary: the table itself is tens of thousands of entries.
impl std::fmt::Debug for WordFreq {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WordFreq")
            .field("words", &self.log_p.len())
            .field("floor", &self.floor)
            .field("best", &self.best)
            .field("dropped", &self.dropped)
            .finish()
    }
}

/// One line: `Ok(None)` for a comment or an empty line, else the word and its frequency.
fn parse_line(line: &str) -> std::result::Result<Option<(&str, f64)>, String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.trim().is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (word, freq) = line.split_once('\t').ok_or("expected word<TAB>frequency")?;
    if word.is_empty() {
        return Err("empty word".to_string());
    }
    let freq: f64 = freq
        .trim()
        .parse()
        .map_err(|_| format!("frequency {freq:?} is not a number"))?;
    if !(freq > 0.0 && freq <= 1.0) {
        return Err(format!("frequency {freq} is not in (0, 1]"));
    }
    Ok(Some((word, freq)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Characters a..z as ids 4.. (a toy target vocabulary).
    fn encode(word: &str) -> Option<Vec<TokenId>> {
        word.chars()
            .map(|c| c.is_ascii_lowercase().then(|| 4 + (c as u32 - 'a' as u32)))
            .collect()
    }

    fn parse(text: &str, floor: Option<f32>) -> Result<WordFreq> {
        WordFreq::parse(text.as_bytes(), Path::new("f.tsv"), encode, floor)
    }

    fn ids(word: &str) -> Vec<TokenId> {
        encode(word).unwrap()
    }

    #[test]
    fn loads_words_with_log_probabilities_and_a_floor() {
        let text = "# provenance\n\nab\t0.5\r\ncd\t0.25\nxY\t0.1\nab\t0.01\n";
        let t = parse(text, Some(1e-6)).unwrap();
        assert_eq!((t.len(), t.dropped()), (2, 1), "xY has a character outside");
        assert_eq!(
            t.log_p(&ids("ab")),
            0.5f64.ln() as f32,
            "the larger of a duplicate"
        );
        assert_eq!(t.log_p(&ids("cd")), 0.25f64.ln() as f32);
        assert_eq!(t.log_p(&ids("zz")), 1e-6f32.ln());
        assert_eq!(t.log_p(&[]), t.floor());
        assert_eq!(t.best_log_p(), 0.5f64.ln() as f32);
    }

    #[test]
    fn the_default_floor_is_the_rarest_listed_word() {
        let t = parse("ab\t0.5\ncd\t0.25\n", None).unwrap();
        assert_eq!(t.floor(), 0.25f64.ln() as f32);
        let high = parse("ab\t0.5\n", Some(0.9)).unwrap();
        assert_eq!(
            high.best_log_p(),
            0.9f32.ln(),
            "a floor above the list bounds the bonus"
        );
    }

    #[test]
    fn prefixes_know_the_best_word_below_them() {
        let t = parse("ab\t0.5\nabc\t0.25\nb\t0.125\n", Some(1e-6)).unwrap();
        let lp = |p: f64| p.ln() as f32;
        let walk = |word: &str| {
            ids(word)
                .iter()
                .fold(t.prefix_root(), |n, &tok| t.prefix_child(n, tok))
        };
        assert_eq!(t.prefix_best(t.prefix_root()), lp(0.5));
        assert_eq!(t.prefix_best(walk("a")), lp(0.5));
        assert_eq!(t.prefix_best(walk("abc")), lp(0.25));
        assert_eq!(t.prefix_best(walk("b")), lp(0.125));
        assert_eq!(walk("c"), OFF_LIST);
        assert_eq!(walk("abcd"), OFF_LIST);
        assert_eq!(t.prefix_child(OFF_LIST, 4), OFF_LIST);
        assert_eq!(t.prefix_best(OFF_LIST), t.floor());
        let high_floor = parse("ab\t0.5\n", Some(0.9)).unwrap();
        assert_eq!(
            high_floor.prefix_best(0),
            0.9f32.ln(),
            "never below the floor"
        );
    }

    #[test]
    fn bad_files_are_errors_naming_the_line() {
        let cases = [
            ("ab\t0.5\nab 0.5\n", "f.tsv:2:", "TAB"),
            ("ab\tx\n", "f.tsv:1:", "not a number"),
            ("ab\t0\n", "f.tsv:1:", "(0, 1]"),
            ("ab\t1.5\n", "f.tsv:1:", "(0, 1]"),
            ("ab\tNaN\n", "f.tsv:1:", "(0, 1]"),
            ("\t0.5\n", "f.tsv:1:", "empty word"),
            (
                "# nothing\nXY\t0.5\n",
                "f.tsv",
                "no word the model can write",
            ),
        ];
        for (text, place, what) in cases {
            let e = parse(text, None).unwrap_err().to_string();
            assert!(e.contains(place) && e.contains(what), "{text:?}: {e}");
        }
        for floor in [0.0, -1.0, 2.0, f32::NAN] {
            let e = parse("ab\t0.5\n", Some(floor)).unwrap_err().to_string();
            assert!(e.contains("word_freq_floor"), "{e}");
        }
        let e = WordFreq::parse(&[0xff, b'\t'], Path::new("f.tsv"), encode, None).unwrap_err();
        assert!(e.to_string().contains("UTF-8"), "{e}");
    }

    #[test]
    fn an_oversized_file_is_refused_before_parsing() {
        let big = vec![b'#'; MAX_FILE_BYTES + 1];
        let e = WordFreq::parse(&big, Path::new("f.tsv"), encode, None).unwrap_err();
        assert!(e.to_string().contains("allowed"), "{e}");
    }
}
