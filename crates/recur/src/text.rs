//! Sentence mode: a line of real text split into the words a model can transduce and everything
//! else, which passes through unchanged, with per-model rules for punctuation, digits and word
//! boundaries (TOML section `[text]` of the model's config).
//!
//! A **word** is a maximal run of characters the model's source alphabet covers; an apostrophe
//! (`'` or `’`) or hyphen inside a word belongs to it when the alphabet has it (`don't` is one
//! word for a CMUdict model, two words around a kept `'` for a Hindi one), or when the model's
//! lexicon has the word with it (`don’t`, `o'clock`, `well-known`, and a leading `'em` or
//! `'cause`: see [`segment_with`]).
//! Digits, other scripts (including text already in the target script), emoji, symbols, URLs
//! and e-mail addresses are not words and pass through, unless `numbers = "english"` spells
//! the numbers out first (see [`crate::numbers`]).

use serde::{Deserialize, Serialize};

/// What to do with ASCII digits in sentence mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Digits {
    /// Keep them as they are.
    #[default]
    Keep,
    /// Write them with the Devanagari digits `०`–`९`.
    Devanagari,
}

/// Numbers in sentence mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Numbers {
    /// Left to the `digits` rule.
    #[default]
    Keep,
    /// Spelled out in English words before the words are found (`25` → `twenty five`), for
    /// English G2P: see [`crate::numbers`].
    English,
}

/// Per-model rules of sentence mode (TOML section `[text]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TextConfig {
    /// Replacements of a sentence-final punctuation mark (one ending the line or followed by
    /// white space), e.g. `[[".", "।"]]` for Hindi.
    pub sentence_end: Vec<(String, String)>,
    /// ASCII digits: kept, or written in the target script.
    pub digits: Digits,
    /// Between the outputs of two words, in place of the white space that separated them
    /// (for symbol targets, where the words' phonemes would otherwise run together), e.g.
    /// `" | "`; unset: the white space is kept.
    pub word_separator: Option<String>,
    /// Numbers: kept (`"keep"`, the default) or spelled out (`"english"`).
    pub numbers: Numbers,
    /// The model's default lexicon: a file name in the model directory (`"lexicon.tsv"`;
    /// see [`crate::lexicon`]), consulted before the model in word and sentence mode.
    pub lexicon: Option<String>,
}

/// A piece of a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A word for the model.
    Word(&'a str),
    /// Text that passes through (after the config's rules).
    Keep(&'a str),
}

/// Whether a white-space-delimited token is a URL or an e-mail address (kept whole).
pub(crate) fn is_address(token: &str) -> bool {
    let t = token.to_ascii_lowercase();
    if t.contains("://") || t.starts_with("www.") {
        return true;
    }
    match t.split_once('@') {
        Some((user, host)) => !user.is_empty() && host.contains('.') && !host.ends_with('.'),
        None => false,
    }
}

/// Splits `line` into words (runs of characters `covers` accepts, with inner `'`/`-` as said
/// in the [module docs](self)) and pieces to keep.
pub fn segment<'a>(line: &'a str, covers: impl Fn(char) -> bool) -> Vec<Piece<'a>> {
    segment_with(line, covers, |_| false)
}

/// [`segment`], where a run of words joined by single apostrophes or hyphens that the alphabet
/// lacks is one word when `known` says so (the longest such run from a word's start: `don’t`,
/// `o'clock's`, `well-known` when a lexicon has them).
pub fn segment_with<'a>(
    line: &'a str,
    covers: impl Fn(char) -> bool,
    known: impl Fn(&str) -> bool,
) -> Vec<Piece<'a>> {
    let mut pieces = Vec::new();
    let mut keep_from = 0; // start of the pending Keep piece
    let mut i = 0;
    while let Some(c) = line[i..].chars().next() {
        // A URL or address: the whole white-space-delimited token is kept.
        if let Some(end) = address_at(line, i) {
            i = end;
            continue;
        }
        // A joiner cannot start a word, but for an elision a lexicon has (`'em`, `'cause`).
        let elision = elision_end(line, i, &covers, &known);
        if elision.is_none() && (!covers(c) || is_joiner(c)) {
            i += c.len_utf8();
            continue;
        }
        let end = elision.unwrap_or_else(|| word_end(line, i, &covers, &known));
        let end = abbreviation_end(line, i, end, &covers, &known);
        if keep_from < i {
            pieces.push(Piece::Keep(&line[keep_from..i]));
        }
        pieces.push(Piece::Word(&line[i..end]));
        (i, keep_from) = (end, end);
    }
    if keep_from < line.len() {
        pieces.push(Piece::Keep(&line[keep_from..]));
    }
    pieces
}

/// Bytes of the longest word joined across apostrophes or hyphens the alphabet lacks that a
/// lexicon can make one word (CMUdict's longest such words have 20).
pub const MAX_JOINED_BYTES: usize = 64;

/// An apostrophe or hyphen: inside a word only between two letters.
fn is_joiner(c: char) -> bool {
    matches!(c, '\'' | '’' | '-')
}

/// The end of the word after an apostrophe starting a white-space-delimited token at `i` when
/// `known` has the word with its apostrophe (`'em`, `'til`), else `None`.
fn elision_end(
    line: &str,
    i: usize,
    covers: &impl Fn(char) -> bool,
    known: &impl Fn(&str) -> bool,
) -> Option<usize> {
    let token_start = i == 0 || line[..i].ends_with(char::is_whitespace);
    let apostrophe = line[i..]
        .chars()
        .next()
        .filter(|&c| matches!(c, '\'' | '’'))?;
    let after = i + apostrophe.len_utf8();
    let letter_follows = line[after..].starts_with(|c: char| covers(c) && !is_joiner(c));
    if !token_start || !letter_follows {
        return None;
    }
    let end = word_end(line, after, covers, known);
    known(&line[i..end]).then_some(end)
}

/// The end of the longest abbreviation with periods (`a.m.`, `u.s.`, `mr.`) that `known` has,
/// starting with the word at `start..end`, else `end`: letters and periods alternating, the
/// alphabet lacking `.`.
fn abbreviation_end(
    line: &str,
    start: usize,
    end: usize,
    covers: &impl Fn(char) -> bool,
    known: &impl Fn(&str) -> bool,
) -> usize {
    let (mut at, mut longest) = (end, end);
    while line[at..].starts_with('.') && !covers('.') && at + 1 - start <= MAX_JOINED_BYTES {
        at += 1;
        if known(&line[start..at]) {
            longest = at;
        }
        let letters = line[at..]
            .char_indices()
            .find(|&(_, c)| !covers(c) || is_joiner(c))
            .map_or(line.len() - at, |(k, _)| k);
        if letters == 0 {
            break;
        }
        at += letters;
    }
    longest
}

/// The end of the URL or e-mail address starting a white-space-delimited token at `i`.
fn address_at(line: &str, i: usize) -> Option<usize> {
    let token_start = i == 0 || line[..i].ends_with(char::is_whitespace);
    if !token_start || line[i..].starts_with(char::is_whitespace) {
        return None;
    }
    let end = line[i..]
        .find(char::is_whitespace)
        .map_or(line.len(), |e| i + e);
    is_address(&line[i..end]).then_some(end)
}

/// The end of the word starting at `start`: letters, and joiners between letters that the
/// alphabet covers; or, longer, joiners it lacks when `known` has the whole run.
fn word_end(
    line: &str,
    start: usize,
    covers: &impl Fn(char) -> bool,
    known: &impl Fn(&str) -> bool,
) -> usize {
    let letter = |c: char| covers(c) && !is_joiner(c);
    let letters_from = |at: usize| {
        line[at..]
            .char_indices()
            .find(|&(_, c)| !letter(c))
            .map_or(line.len(), |(k, _)| at + k)
    };
    // Joiner positions where the word could end: (end, whether the alphabet covers every
    // joiner so far).
    let mut end = letters_from(start);
    let mut covered_end = end;
    let mut all_covered = true;
    let mut known_end = None;
    while let Some(j) = line[end..].chars().next().filter(|&c| is_joiner(c)) {
        let after = end + j.len_utf8();
        // Past a joiner the alphabet lacks, only a known word extends the word: a run longer
        // than any such word is not walked (the walk would repeat from every word of a line
        // like `a-a-a-…`).
        let too_long = !all_covered && after - start > MAX_JOINED_BYTES;
        if too_long || !line[after..].starts_with(letter) {
            break;
        }
        all_covered &= covers(j);
        end = letters_from(after);
        if all_covered {
            covered_end = end;
        } else if known(&line[start..end]) {
            known_end = Some(end);
        }
    }
    known_end.map_or(covered_end, |k| k.max(covered_end))
}

impl TextConfig {
    /// A kept piece after the rules; `last` says whether it ends the line.
    pub fn keep(&self, piece: &str, last: bool) -> String {
        let mut out = String::with_capacity(piece.len());
        let chars: Vec<char> = piece.chars().collect();
        for (k, &c) in chars.iter().enumerate() {
            let next = chars.get(k + 1);
            let prev = k.checked_sub(1).map(|p| chars[p]);
            let ends_sentence = next.map_or(last, |n| n.is_whitespace())
                && !prev
                    .is_some_and(|p| p.is_ascii_digit() && next.is_some_and(char::is_ascii_digit));
            let replaced = ends_sentence
                .then(|| {
                    self.sentence_end
                        .iter()
                        .find(|(from, _)| from.chars().eq(std::iter::once(c)))
                })
                .flatten();
            match (replaced, c) {
                (Some((_, to)), _) => out.push_str(to),
                (None, '0'..='9') if self.digits == Digits::Devanagari => {
                    let d = c as u32 - '0' as u32;
                    out.push(char::from_u32(0x0966 + d).unwrap_or(c));
                }
                _ => out.push(c),
            }
        }
        if let Some(sep) = &self.word_separator {
            if !out.is_empty() && out.chars().all(char::is_whitespace) && !last {
                return sep.clone();
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latin(c: char) -> bool {
        c.is_ascii_lowercase() || c.is_ascii_uppercase()
    }

    fn words<'a>(pieces: &[Piece<'a>]) -> Vec<&'a str> {
        pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Word(w) => Some(*w),
                Piece::Keep(_) => None,
            })
            .collect()
    }

    /// The pieces put back together: the line they came from.
    fn joined(pieces: &[Piece<'_>]) -> String {
        pieces
            .iter()
            .map(|p| match p {
                Piece::Word(w) | Piece::Keep(w) => *w,
            })
            .collect()
    }

    #[test]
    fn digits_other_scripts_addresses_and_emoji_pass_through() {
        let line = "मैं office जा 25 rupaye, mail a@b.com or https://x.org/a-b 🙂 ok.";
        let p = segment(line, latin);
        assert_eq!(words(&p), ["office", "rupaye", "mail", "or", "ok"]);
        assert_eq!(joined(&p), line, "nothing is lost");
    }

    #[test]
    fn inner_apostrophes_and_hyphens_join_only_when_covered() {
        let with = |c: char| latin(c) || c == '\'' || c == '-';
        assert_eq!(
            words(&segment("don't stop 'quoted' well-known -x", with)),
            ["don't", "stop", "quoted", "well-known", "x"]
        );
        assert_eq!(words(&segment("don't", latin)), ["don", "t"]);
    }

    #[test]
    fn abbreviations_with_periods_are_words_when_a_lexicon_has_them() {
        let known = |w: &str| ["a.m.", "p.m.", "u.s.", "mr."].contains(&w);
        assert_eq!(
            words(&segment_with(
                "at 7 p.m. Mr. Smith went to the U.S. at 9 a.m., not 9 am. e.g. x.y.z",
                latin,
                |w: &str| known(&w.to_lowercase())
            )),
            [
                "at", "p.m.", "Mr.", "Smith", "went", "to", "the", "U.S.", "at", "a.m.", "not",
                "am"
            ]
            .into_iter()
            .chain(["e", "g", "x", "y", "z"])
            .collect::<Vec<_>>()
        );
        let line = "p.m. end.";
        assert_eq!(
            joined(&segment_with(line, latin, known)),
            line,
            "nothing is lost"
        );
    }

    #[test]
    fn joiners_the_alphabet_lacks_join_words_a_lexicon_has() {
        let known = |w: &str| ["don’t", "o'clock", "well-known", "rock'n'roll"].contains(&w);
        let apostrophe = |c: char| latin(c) || c == '\'';
        assert_eq!(
            words(&segment_with(
                "don’t, at 5 o'clock well-known rock'n'roll's x-y",
                latin,
                known
            )),
            [
                "don’t",
                "at",
                "o'clock",
                "well-known",
                "rock'n'roll",
                "s",
                "x",
                "y"
            ]
        );
        assert_eq!(
            words(&segment_with(
                "o'clock-x it's-well-known",
                apostrophe,
                known
            )),
            ["o'clock", "x", "it's", "well-known"],
            "a covered joiner joins as before; a lacking one only for a known run"
        );
        assert_eq!(
            words(&segment_with("'em don'", latin, known)),
            ["em", "don"]
        );
        let elisions = |w: &str| ["'em", "’cause"].contains(&w);
        assert_eq!(
            words(&segment_with(
                "get 'em ’cause 'tis x'em",
                apostrophe,
                elisions
            )),
            ["get", "'em", "’cause", "tis", "x'em"],
            "a leading apostrophe belongs to a word the lexicon has with it"
        );
    }

    #[test]
    fn long_hyphenated_runs_take_linear_time() {
        let line = "a-".repeat(200_000);
        let calls = std::cell::Cell::new(0usize);
        let known = |_: &str| {
            calls.set(calls.get() + 1);
            false
        };
        assert_eq!(words(&segment_with(&line, latin, known)).len(), 200_000);
        assert!(calls.get() <= 200_000 * MAX_JOINED_BYTES, "{}", calls.get());
    }

    #[test]
    fn rules_replace_sentence_ends_digits_and_separators() {
        let hi = TextConfig {
            sentence_end: vec![(".".into(), "।".into())],
            digits: Digits::Devanagari,
            ..TextConfig::default()
        };
        assert_eq!(hi.keep(" 10.5 ", false), " १०.५ ");
        assert_eq!(hi.keep(".", true), "।");
        assert_eq!(hi.keep(". ", false), "। ");
        assert_eq!(hi.keep(".", false), ".", "not followed by white space");
        let g2p = TextConfig {
            word_separator: Some(" | ".into()),
            ..TextConfig::default()
        };
        assert_eq!(g2p.keep(" ", false), " | ");
        assert_eq!(g2p.keep(", ", false), ", ");
        assert_eq!(g2p.keep(" ", true), " ");
    }
}
