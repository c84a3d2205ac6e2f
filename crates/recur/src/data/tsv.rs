//! Parallel TSV reading: one example per line, source and target taken from user-chosen columns.
//!
//! Rules (deliberate, so every corpus is read the same way):
//! - Lines end in LF or CRLF; a final line without a newline is read; the empty piece after a
//!   trailing newline is not a line.
//! - A UTF-8 byte-order mark at the start of the file is ignored.
//! - Blank lines (empty or only whitespace) are skipped silently and counted in
//!   [`TsvReport::blank_lines`]: they carry no example, and editors often leave them at the end.
//! - Fields are taken verbatim (no trimming), because spaces can be tokens in sentence-level data.
//! - A line is bad if it is not UTF-8, lacks a needed column, or the needed column is empty.
//!   A bad line is an [`Error::Parse`] naming file and line, or with
//!   [`TsvOptions::skip_bad_lines`] it is skipped and reported in [`TsvReport::skipped`].
//! - A file that yields no example at all is an error even with `skip_bad_lines`, since training
//!   or evaluating on nothing is always a mistake.

use std::path::Path;

use crate::error::{Error, Result};

/// Which columns to read and how strict to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsvOptions {
    /// 0-based index of the source column (Dakshina roman→native: 1; CMUdict: 0).
    pub src_col: usize,
    /// 0-based index of the target column (Dakshina roman→native: 0; CMUdict: 1).
    pub tgt_col: usize,
    /// Skip and report bad lines instead of failing on the first one.
    pub skip_bad_lines: bool,
}

impl TsvOptions {
    /// Strict reading of the given source and target columns.
    pub fn new(src_col: usize, tgt_col: usize) -> Self {
        TsvOptions {
            src_col,
            tgt_col,
            skip_bad_lines: false,
        }
    }
}

/// One source/target pair and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    /// The source text (the source column, verbatim).
    pub src: String,
    /// The target text (the target column, verbatim).
    pub tgt: String,
    /// 1-based line number in the file.
    pub line: usize,
}

/// A line skipped under [`TsvOptions::skip_bad_lines`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedLine {
    /// 1-based line number.
    pub line: usize,
    /// Why it was skipped (same text as the error it would have raised).
    pub reason: String,
}

/// What a TSV file yielded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TsvReport {
    /// The pairs, in file order.
    pub pairs: Vec<Pair>,
    /// Bad lines that were skipped (empty unless `skip_bad_lines`).
    pub skipped: Vec<SkippedLine>,
    /// Blank lines, skipped silently.
    pub blank_lines: usize,
}

/// Reads a parallel TSV file. See the module docs for the exact rules.
pub fn read_parallel_tsv(path: impl AsRef<Path>, opts: &TsvOptions) -> Result<TsvReport> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_parallel_tsv(&bytes, path, opts)
}

/// Parses TSV content already in memory; `path` is only used in error messages.
pub fn parse_parallel_tsv(bytes: &[u8], path: &Path, opts: &TsvOptions) -> Result<TsvReport> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut report = TsvReport::default();
    // A column index comes from a config file: `usize::MAX` must be an error, not an overflow.
    let need = opts
        .src_col
        .max(opts.tgt_col)
        .checked_add(1)
        .ok_or_else(|| Error::Parse {
            path: path.to_path_buf(),
            line: None,
            msg: format!(
                "source column {} / target column {}: a column index must be below {}",
                opts.src_col,
                opts.tgt_col,
                usize::MAX
            ),
        })?;
    let mut rest = bytes;
    let mut line_no = 0;
    while !rest.is_empty() {
        line_no += 1;
        let (raw, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = next;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        match parse_line(raw, need, opts) {
            Ok(Some((src, tgt))) => report.pairs.push(Pair {
                src,
                tgt,
                line: line_no,
            }),
            Ok(None) => report.blank_lines += 1,
            Err(msg) if opts.skip_bad_lines => report.skipped.push(SkippedLine {
                line: line_no,
                reason: msg,
            }),
            Err(msg) => {
                return Err(Error::Parse {
                    path: path.to_path_buf(),
                    line: Some(line_no),
                    msg,
                })
            }
        }
    }
    if report.pairs.is_empty() {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            line: None,
            msg: format!(
                "no examples: file has {line_no} lines ({} blank, {} skipped as bad)",
                report.blank_lines,
                report.skipped.len()
            ),
        });
    }
    Ok(report)
}

/// `Ok(None)` for a blank line, `Err(reason)` for a bad one.
fn parse_line(
    raw: &[u8],
    need: usize,
    opts: &TsvOptions,
) -> Result<Option<(String, String)>, String> {
    let line = std::str::from_utf8(raw)
        .map_err(|e| format!("invalid UTF-8 at byte {} of the line", e.valid_up_to() + 1))?;
    if line.trim().is_empty() {
        return Ok(None);
    }
    let fields: Vec<&str> = line.split('\t').collect();
    if fields.len() < need {
        return Err(format!(
            "expected at least {need} tab-separated columns (source column {}, target column {}), found {}",
            opts.src_col,
            opts.tgt_col,
            fields.len()
        ));
    }
    let (src, tgt) = (fields[opts.src_col], fields[opts.tgt_col]);
    for (side, col, text) in [("source", opts.src_col, src), ("target", opts.tgt_col, tgt)] {
        if text.is_empty() {
            return Err(format!("{side} column {col} is empty"));
        }
    }
    Ok(Some((src.to_owned(), tgt.to_owned())))
}

/// Splits `pairs` into (train, dev) by holding out `n` distinct sources, chosen by a seeded
/// shuffle, together with every pair of each chosen source: a word with several pronunciations or
/// romanizations is wholly on one side, so dev never sees a training source. Order within each
/// side is the file's order. For corpora without a dev file, such as the CMUdict split.
pub fn hold_out_sources(pairs: Vec<Pair>, n: usize, seed: u64) -> (Vec<Pair>, Vec<Pair>) {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut sources: Vec<&str> = pairs.iter().map(|p| p.src.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    sources.shuffle(&mut rng);
    let held: std::collections::HashSet<String> =
        sources.iter().take(n).map(|s| s.to_string()).collect();
    pairs.into_iter().partition(|p| !held.contains(&p.src))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8], opts: &TsvOptions) -> Result<TsvReport> {
        parse_parallel_tsv(text, Path::new("mem.tsv"), opts)
    }

    #[test]
    fn reads_columns_with_line_numbers_crlf_and_blank_lines() {
        let text = "अं\tan\t3\r\n\r\n  \nअंकल\tuncle\t4";
        let r = parse(text.as_bytes(), &TsvOptions::new(1, 0)).unwrap();
        assert_eq!(r.blank_lines, 2);
        assert!(r.skipped.is_empty());
        assert_eq!(
            r.pairs,
            vec![
                Pair {
                    src: "an".into(),
                    tgt: "अं".into(),
                    line: 1
                },
                Pair {
                    src: "uncle".into(),
                    tgt: "अंकल".into(),
                    line: 4
                },
            ]
        );
    }

    #[test]
    fn trailing_newline_and_bom_are_not_lines() {
        let r = parse(
            b"\xEF\xBB\xBFAAA\tT R IH P\nAB\tAE B\n",
            &TsvOptions::new(0, 1),
        )
        .unwrap();
        assert_eq!(r.pairs.len(), 2);
        assert_eq!(r.pairs[0].src, "AAA");
        assert_eq!(r.pairs[1].tgt, "AE B");
        assert_eq!(r.blank_lines, 0);
    }

    #[test]
    fn missing_column_names_file_and_line() {
        let err = parse(b"a\tb\n\nc\n", &TsvOptions::new(0, 1)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("mem.tsv:3: expected at least 2"), "{msg}");
        assert!(matches!(err, Error::Parse { line: Some(3), .. }));
    }

    #[test]
    fn empty_field_is_bad() {
        let err = parse(b"a\t\n", &TsvOptions::new(0, 1)).unwrap_err();
        assert!(
            err.to_string()
                .contains("mem.tsv:1: target column 1 is empty"),
            "{err}"
        );
    }

    #[test]
    fn invalid_utf8_names_line() {
        let err = parse(b"a\tb\nc\t\xFFd\n", &TsvOptions::new(0, 1)).unwrap_err();
        assert!(matches!(err, Error::Parse { line: Some(2), .. }), "{err}");
        assert!(err.to_string().contains("invalid UTF-8 at byte 3"), "{err}");
    }

    #[test]
    fn empty_file_is_an_error() {
        for text in [&b""[..], b"\n\n", b"\r\n"] {
            let err = parse(text, &TsvOptions::new(0, 1)).unwrap_err();
            assert!(matches!(err, Error::Parse { line: None, .. }), "{err}");
            assert!(err.to_string().starts_with("mem.tsv: no examples"), "{err}");
        }
    }

    #[test]
    fn skip_bad_lines_counts_and_reports() {
        let opts = TsvOptions {
            skip_bad_lines: true,
            ..TsvOptions::new(0, 2)
        };
        let r = parse(b"a\tx\tb\nonly\n\nc\t\xFF\td\ne\tf\tg\n", &opts).unwrap();
        assert_eq!(r.pairs.len(), 2);
        assert_eq!((r.pairs[1].src.as_str(), r.pairs[1].line), ("e", 5));
        assert_eq!(r.blank_lines, 1);
        let lines: Vec<usize> = r.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, vec![2, 4]);
        assert!(r.skipped[0].reason.contains("found 1"));
        // Everything bad: still an error, with the count in the message.
        let err = parse(b"x\ny\n", &opts).unwrap_err();
        assert!(err.to_string().contains("2 skipped as bad"), "{err}");
    }

    #[test]
    fn missing_file_is_io_error() {
        let err = read_parallel_tsv("/nonexistent/x.tsv", &TsvOptions::new(0, 1)).unwrap_err();
        assert!(matches!(err, Error::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/x.tsv"));
    }

    #[test]
    fn hold_out_keeps_each_source_on_one_side() {
        let pair = |s: &str, t: &str| Pair {
            src: s.into(),
            tgt: t.into(),
            line: 0,
        };
        let words = ["a", "b", "c", "d", "e", "f", "g", "h"];
        let mut pairs: Vec<Pair> = words.iter().map(|w| pair(w, "1")).collect();
        pairs.push(pair("c", "2"));
        pairs.push(pair("f", "2"));
        let (train, dev) = hold_out_sources(pairs.clone(), 3, 7);
        let dev_src: std::collections::HashSet<_> = dev.iter().map(|p| p.src.clone()).collect();
        assert_eq!(dev_src.len(), 3);
        assert_eq!(train.len() + dev.len(), pairs.len());
        assert!(train.iter().all(|p| !dev_src.contains(&p.src)));
        // The same seed gives the same split; another seed (here) another one.
        let (train2, dev2) = hold_out_sources(pairs.clone(), 3, 7);
        assert_eq!((train, dev), (train2, dev2));
        let (_, dev3) = hold_out_sources(pairs.clone(), 3, 8);
        assert_ne!(
            dev3.iter()
                .map(|p| p.src.clone())
                .collect::<std::collections::HashSet<_>>(),
            dev_src
        );
        assert_eq!(hold_out_sources(pairs.clone(), 0, 7).1, vec![]);
        assert_eq!(hold_out_sources(pairs, 100, 7).0, vec![]);
    }
}
