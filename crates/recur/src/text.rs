//! Sentence mode: a line of real text split into the words a model can transduce and everything
//! else, which passes through unchanged, with per-model rules for punctuation, digits and word
//! boundaries (TOML section `[text]` of the model's config).
//!
//! A **word** is a maximal run of characters the model's source alphabet covers; an apostrophe
//! or hyphen inside a word belongs to it only when the alphabet has it (`don't` is one word for
//! a CMUdict model, two words around a kept `'` for a Hindi one). Digits, other scripts
//! (including text already in the target script), emoji, symbols, URLs and e-mail addresses are
//! not words and pass through.

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
fn is_address(token: &str) -> bool {
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
    let mut pieces = Vec::new();
    let mut keep_from = 0; // start of the pending Keep piece
    let mut i = 0;
    let bytes_at = |i: usize| line[i..].chars().next();
    while let Some(c) = bytes_at(i) {
        // A URL or address: the whole white-space-delimited token is kept.
        let token_start = i == 0 || line[..i].ends_with(char::is_whitespace);
        if token_start && !c.is_whitespace() {
            let end = line[i..]
                .find(char::is_whitespace)
                .map_or(line.len(), |e| i + e);
            if is_address(&line[i..end]) {
                i = end;
                continue;
            }
        }
        if !covers(c) {
            i += c.len_utf8();
            continue;
        }
        // A word: covered characters, with inner joiners the alphabet also covers.
        let start = i;
        let mut end = i + c.len_utf8();
        while let Some(n) = bytes_at(end) {
            if covers(n) && !matches!(n, '\'' | '’' | '-') {
                end += n.len_utf8();
            } else if matches!(n, '\'' | '’' | '-') && covers(n) {
                match bytes_at(end + n.len_utf8()) {
                    Some(after) if covers(after) && !matches!(after, '\'' | '’' | '-') => {
                        end += n.len_utf8();
                    }
                    _ => break,
                }
            } else {
                break;
            }
        }
        if matches!(c, '\'' | '’' | '-') {
            // A joiner cannot start a word.
            i = start + c.len_utf8();
            continue;
        }
        if keep_from < start {
            pieces.push(Piece::Keep(&line[keep_from..start]));
        }
        pieces.push(Piece::Word(&line[start..end]));
        (i, keep_from) = (end, end);
    }
    if keep_from < line.len() {
        pieces.push(Piece::Keep(&line[keep_from..]));
    }
    pieces
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

    #[test]
    fn digits_other_scripts_addresses_and_emoji_pass_through() {
        let line = "मैं office जा 25 rupaye, mail a@b.com or https://x.org/a-b 🙂 ok.";
        let p = segment(line, latin);
        assert_eq!(words(&p), ["office", "rupaye", "mail", "or", "ok"]);
        let rebuilt: String = p
            .iter()
            .map(|p| match p {
                Piece::Word(w) | Piece::Keep(w) => *w,
            })
            .collect();
        assert_eq!(rebuilt, line, "nothing is lost");
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
    fn rules_replace_sentence_ends_digits_and_separators() {
        let hi = TextConfig {
            sentence_end: vec![(".".into(), "।".into())],
            digits: Digits::Devanagari,
            word_separator: None,
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
