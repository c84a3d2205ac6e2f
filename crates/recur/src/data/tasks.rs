//! The tutorials' toy tasks, generated from a seed (ChaCha8, so the same seed gives the same
//! file on every platform).
//!
//! - **Cipher**: the source is a random string over [`CIPHER_ALPHABET`] (`-` and `A`–`Z`), the
//!   target its ROT13 over those 27 symbols (index + 13 mod 27). With 27 symbols ROT13 is *not*
//!   its own inverse: decoding shifts by −13. Use [`Tokenizer::Chars`](super::Tokenizer) on both
//!   sides.
//! - **Double**: the source is a few words from a built-in lowercase word list, the target every
//!   word repeated (`ab cd` → `ab ab cd cd`). Use [`Tokenizer::Symbols`](super::Tokenizer).
//!
//! Output is TSV, `source<TAB>target` per line, readable with
//! [`TsvOptions::new(0, 1)`](super::TsvOptions::new).

use std::io::Write;

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// The cipher's 27 symbols, in index order.
pub const CIPHER_ALPHABET: &str = "-ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// The doubler's vocabulary: short, common, lowercase words.
pub const DOUBLE_WORDS: &[&str] = &[
    "a", "about", "all", "an", "and", "are", "as", "at", "be", "big", "but", "by", "can", "cat",
    "day", "do", "dog", "for", "from", "go", "good", "have", "he", "her", "his", "i", "in", "is",
    "it", "just", "like", "man", "me", "my", "new", "no", "not", "now", "of", "old", "on", "one",
    "or", "out", "red", "run", "say", "see", "she", "so", "sun", "that", "the", "they", "this",
    "time", "to", "two", "up", "was", "way", "we", "with", "you",
];

/// Lengths for [`cipher_pairs`]: characters per source, inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CipherOptions {
    /// Shortest source, in characters (>= 1).
    pub min_len: usize,
    /// Longest source, in characters.
    pub max_len: usize,
}

impl Default for CipherOptions {
    fn default() -> Self {
        CipherOptions {
            min_len: 4,
            max_len: 16,
        }
    }
}

/// Lengths for [`double_pairs`]: words per source, inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DoubleOptions {
    /// Fewest words (>= 1).
    pub min_words: usize,
    /// Most words.
    pub max_words: usize,
}

impl Default for DoubleOptions {
    fn default() -> Self {
        DoubleOptions {
            min_words: 1,
            max_words: 5,
        }
    }
}

fn shift(text: &str, by: usize) -> Result<String> {
    let alphabet = CIPHER_ALPHABET.as_bytes();
    text.chars()
        .map(|c| {
            let i = alphabet
                .iter()
                .position(|&a| char::from(a) == c)
                .ok_or_else(|| {
                    Error::arg(
                        "cipher",
                        "text",
                        format!("only {CIPHER_ALPHABET:?}"),
                        format!("{c:?}"),
                    )
                })?;
            Ok(char::from(alphabet[(i + by) % alphabet.len()]))
        })
        .collect()
}

/// ROT13 over [`CIPHER_ALPHABET`]: `THIS-IS-A-SECRET` → `FUVEMVEMNMERPDRF`.
pub fn cipher_encode(text: &str) -> Result<String> {
    shift(text, 13)
}

/// The inverse of [`cipher_encode`] (a shift by 14 = −13 mod 27).
pub fn cipher_decode(text: &str) -> Result<String> {
    shift(text, 27 - 13)
}

/// Every word repeated: `ab cd` → `ab ab cd cd` (whitespace-separated, single spaces out).
pub fn double_words(text: &str) -> String {
    let mut out = Vec::new();
    for w in text.split_whitespace() {
        out.push(w);
        out.push(w);
    }
    out.join(" ")
}

fn check_range(op: &'static str, arg: &'static str, min: usize, max: usize) -> Result<()> {
    if min == 0 || min > max {
        return Err(Error::arg(
            op,
            arg,
            "1 <= min <= max",
            format!("{min}..={max}"),
        ));
    }
    Ok(())
}

/// `n` random (source, target) cipher pairs from `seed`.
pub fn cipher_pairs(n: usize, seed: u64, opts: &CipherOptions) -> Result<Vec<(String, String)>> {
    Ok(cipher_stream(seed, opts)?.take(n).collect())
}

/// An endless stream of the random cipher pairs of [`cipher_pairs`] (the same pairs, in
/// order), for writing any number of them in constant memory.
pub fn cipher_stream(
    seed: u64,
    opts: &CipherOptions,
) -> Result<impl Iterator<Item = (String, String)>> {
    check_range("cipher_pairs", "length", opts.min_len, opts.max_len)?;
    let (min, max) = (opts.min_len, opts.max_len);
    let alphabet = CIPHER_ALPHABET.as_bytes();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Ok(std::iter::repeat_with(move || {
        let len = rng.gen_range(min..=max);
        let idx: Vec<usize> = (0..len).map(|_| rng.gen_range(0..alphabet.len())).collect();
        let letter = |i: usize| char::from(alphabet[i % alphabet.len()]);
        let src = idx.iter().map(|&i| letter(i)).collect();
        let tgt = idx.iter().map(|&i| letter(i + 13)).collect(); // cipher_encode, letter by letter
        (src, tgt)
    }))
}

/// `n` random (source, target) doubler pairs from `seed`.
pub fn double_pairs(n: usize, seed: u64, opts: &DoubleOptions) -> Result<Vec<(String, String)>> {
    Ok(double_stream(seed, opts)?.take(n).collect())
}

/// An endless stream of the random doubler pairs of [`double_pairs`] (the same pairs, in
/// order), for writing any number of them in constant memory.
pub fn double_stream(
    seed: u64,
    opts: &DoubleOptions,
) -> Result<impl Iterator<Item = (String, String)>> {
    check_range("double_pairs", "words", opts.min_words, opts.max_words)?;
    let (min, max) = (opts.min_words, opts.max_words);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Ok(std::iter::repeat_with(move || {
        let len = rng.gen_range(min..=max);
        let words: Vec<&str> = (0..len)
            .map(|_| DOUBLE_WORDS[rng.gen_range(0..DOUBLE_WORDS.len())])
            .collect();
        let src = words.join(" ");
        let tgt = double_words(&src);
        (src, tgt)
    }))
}

/// Writes pairs as `source<TAB>target\n` lines. The caller wraps errors with the file name
/// ([`Error::io`]).
pub fn write_tsv<W: Write>(mut out: W, pairs: &[(String, String)]) -> std::io::Result<()> {
    for (s, t) in pairs {
        writeln!(out, "{s}\t{t}")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::tsv::{parse_parallel_tsv, TsvOptions};

    #[test]
    fn cipher_secret_both_directions() {
        assert_eq!(
            cipher_encode("THIS-IS-A-SECRET").unwrap(),
            "FUVEMVEMNMERPDRF"
        );
        assert_eq!(
            cipher_decode("FUVEMVEMNMERPDRF").unwrap(),
            "THIS-IS-A-SECRET"
        );
        assert!(cipher_encode("lower").is_err());
        assert_eq!(cipher_encode("").unwrap(), "");
    }

    #[test]
    fn doubler_repeats_every_word() {
        assert_eq!(double_words("ab cd"), "ab ab cd cd");
        assert_eq!(double_words(" x  "), "x x");
    }

    #[test]
    fn generators_are_seeded_and_valid() {
        let c = cipher_pairs(200, 1, &CipherOptions::default()).unwrap();
        assert_eq!(c, cipher_pairs(200, 1, &CipherOptions::default()).unwrap());
        assert_ne!(c, cipher_pairs(200, 2, &CipherOptions::default()).unwrap());
        for (s, t) in &c {
            assert!((4..=16).contains(&s.len()));
            assert_eq!(&cipher_decode(t).unwrap(), s);
        }
        let opts = DoubleOptions {
            min_words: 2,
            max_words: 3,
        };
        let d = double_pairs(200, 1, &opts).unwrap();
        assert_eq!(d, double_pairs(200, 1, &opts).unwrap());
        for (s, t) in &d {
            let n = s.split(' ').count();
            assert!((2..=3).contains(&n));
            assert_eq!(t.split(' ').count(), 2 * n);
        }
        assert!(cipher_pairs(
            1,
            0,
            &CipherOptions {
                min_len: 0,
                max_len: 3
            }
        )
        .is_err());
        assert!(double_pairs(
            1,
            0,
            &DoubleOptions {
                min_words: 3,
                max_words: 2
            }
        )
        .is_err());
    }

    #[test]
    fn written_tsv_reads_back() {
        let pairs = double_pairs(50, 9, &DoubleOptions::default()).unwrap();
        let mut buf = Vec::new();
        write_tsv(&mut buf, &pairs).unwrap();
        let r = parse_parallel_tsv(&buf, "d.tsv".as_ref(), &TsvOptions::new(0, 1)).unwrap();
        let back: Vec<(String, String)> = r.pairs.into_iter().map(|p| (p.src, p.tgt)).collect();
        assert_eq!(back, pairs);
    }
}
