//! `recur translate`: one output line per input line, in order, decoded in batches.

use std::io::{BufRead, Read, Write};

use anyhow::{bail, Context, Result};
use recur::limits;
use recur::seq2seq::search::DecodeOptions;
use recur::text::Piece;
use recur::transducer::{Origin, Output, Transducer};

/// How to print.
pub struct Format {
    /// Sentence mode: transliterate each word, keep spacing and punctuation.
    pub sentences: bool,
    /// Print `output<TAB>score` (n-best: one line per hypothesis, blank line between inputs).
    pub scores: bool,
    /// Print the attention alignment (argmax source position per output token) after a tab.
    pub alignments: bool,
    /// Lines decoded together.
    pub batch: usize,
    /// Plain lines or JSON lines.
    pub output: OutputFormat,
}

/// How `translate` writes its results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One line per input line (n-best: one line per hypothesis, a blank line after each input).
    Text,
    /// One JSON object per input line: `{"input", "hypotheses": [{"text", "score", "log_prob",
    /// "truncated", "alignment"?, "origin"?}]}`, or in sentence mode `{"input", "output",
    /// "words": [{"word", "hypotheses"}]}`; `"origin": "lexicon"` marks a lexicon entry.
    Jsonl,
}

/// A hypothesis as a JSON line shows it.
fn hypothesis_json(o: &Output, alignments: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "text": o.text,
        "score": o.score,
        "log_prob": o.log_prob,
        "truncated": o.truncated,
    });
    if alignments {
        v["alignment"] = serde_json::json!(alignment(o));
    }
    if o.origin == Origin::Lexicon {
        v["origin"] = serde_json::json!(o.origin);
    }
    v
}

/// The source position with the highest attention weight, per output token.
fn alignment(o: &Output) -> Vec<usize> {
    o.attention
        .iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::MIN), |b, (j, &a)| if a > b.1 { (j, a) } else { b })
                .0
        })
        .collect()
}

/// Characters of input decoded together at most (so that a batch of long lines stays small).
const BATCH_CHARS: usize = 1 << 16;

/// Reads `input` line by line and writes the outputs to `out`, in batches of `fmt.batch`
/// lines (and at most [`BATCH_CHARS`] characters); `interactive` answers each line at once.
///
/// Memory is bounded: a line is read up to [`limits::MAX_LINE_BYTES`], and a source longer
/// than [`limits::MAX_SOURCE_CHARS`] characters (a line in word mode, a word in sentence mode)
/// is an error naming its line. A byte-order mark starting the input is dropped.
pub fn run(
    t: &Transducer,
    mut input: impl BufRead,
    mut out: impl Write,
    opts: &DecodeOptions,
    fmt: &Format,
    interactive: bool,
) -> Result<()> {
    // Word mode reads a batch per kernel thread at a time: the threads decode different
    // batches (`Transducer::translate_in_batches`). Sentence mode reads one batch of lines,
    // whose words the library already spreads over the threads.
    let per_read = match fmt.sentences {
        true => 1,
        false => recur::gemm::num_threads().max(1),
    };
    // The library decodes at most DECODE_CHUNK inputs together whatever `--batch` says.
    let decoded_together = fmt.batch.clamp(1, recur::transducer::DECODE_CHUNK);
    let batch = match interactive {
        true => 1,
        false => decoded_together * per_read,
    };
    let batch_chars = BATCH_CHARS.saturating_mul(per_read);
    let mut lines: Vec<String> = Vec::with_capacity(batch);
    let (mut chars, mut raw) = (0usize, Vec::new());
    for number in 1.. {
        if !read_line(&mut input, &mut raw).with_context(|| format!("input line {number}"))? {
            break;
        }
        let mut line = String::from_utf8(std::mem::take(&mut raw))
            .map_err(|_| anyhow::anyhow!("input line {number}: not valid UTF-8"))?;
        if number == 1 && line.starts_with('\u{feff}') {
            line.drain(..'\u{feff}'.len_utf8());
        }
        check_sources(t, &line, fmt.sentences).with_context(|| format!("input line {number}"))?;
        chars += line.len();
        lines.push(line);
        if lines.len() >= batch || chars >= batch_chars {
            emit(t, &lines, &mut out, opts, fmt)?;
            out.flush()?;
            (lines, chars) = (Vec::with_capacity(batch), 0);
        }
    }
    emit(t, &lines, &mut out, opts, fmt)?;
    out.flush()?;
    Ok(())
}

/// Reads one line without its `\n` / `\r\n` into `buf` (cleared first), refusing lines longer
/// than [`limits::MAX_LINE_BYTES`]; `false` at the end of the input.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>) -> Result<bool> {
    buf.clear();
    let limit = limits::MAX_LINE_BYTES as u64;
    let n = Read::take(&mut *input, limit + 1).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(false);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    } else if n as u64 > limit {
        bail!("longer than {} bytes", limits::MAX_LINE_BYTES);
    }
    Ok(true)
}

/// Checks the sources of one line against [`limits::MAX_SOURCE_CHARS`].
fn check_sources(t: &Transducer, line: &str, sentences: bool) -> Result<()> {
    let max = limits::MAX_SOURCE_CHARS;
    let longest = if sentences {
        t.segment(line)
            .iter()
            .filter_map(|p| match p {
                Piece::Word(w) => Some(w.chars().count()),
                Piece::Keep(_) => None,
            })
            .max()
            .unwrap_or(0)
    } else {
        line.chars().count()
    };
    if longest > max {
        let what = if sentences { "a word" } else { "the line" };
        bail!("{what} has {longest} characters, more than the limit of {max}");
    }
    Ok(())
}

fn emit(
    t: &Transducer,
    lines: &[String],
    out: &mut impl Write,
    opts: &DecodeOptions,
    fmt: &Format,
) -> Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let refs: Vec<&str> = lines.iter().map(|s| s.as_str()).collect();
    if fmt.output == OutputFormat::Jsonl {
        return emit_jsonl(t, &refs, out, opts, fmt);
    }
    if fmt.sentences {
        for s in t.translate_sentences(&refs, opts)? {
            writeln!(out, "{s}")?;
        }
        return Ok(());
    }
    let nbest = opts.nbest > 1;
    for outs in t.translate_in_batches(&refs, opts, fmt.batch)? {
        for o in outs.iter().take(opts.nbest.max(1)) {
            let mut line = o.text.clone();
            if fmt.scores || nbest {
                line.push_str(&format!("\t{:.4}", o.score));
            }
            if fmt.alignments {
                let al: Vec<String> = alignment(o).iter().map(usize::to_string).collect();
                line.push_str(&format!("\t{}", al.join(" ")));
            }
            if o.truncated {
                eprintln!(
                    "warning: output truncated at the maximum length: {}",
                    o.text
                );
            }
            writeln!(out, "{line}")?;
        }
        if nbest {
            writeln!(out)?;
        }
    }
    Ok(())
}

/// JSON lines: one object per input line, hypotheses with scores (and alignments).
fn emit_jsonl(
    t: &Transducer,
    lines: &[&str],
    out: &mut impl Write,
    opts: &DecodeOptions,
    fmt: &Format,
) -> Result<()> {
    let hyps = |outs: &[Output]| -> Vec<serde_json::Value> {
        outs.iter()
            .take(opts.nbest)
            .map(|o| hypothesis_json(o, fmt.alignments))
            .collect()
    };
    if fmt.sentences {
        for (line, s) in lines
            .iter()
            .zip(t.translate_sentences_detailed(lines, opts)?)
        {
            let words: Vec<serde_json::Value> = s
                .words
                .iter()
                .map(|w| serde_json::json!({"word": w.word, "hypotheses": hyps(&w.outputs)}))
                .collect();
            let v = serde_json::json!({"input": line, "output": s.output, "words": words});
            writeln!(out, "{v}")?;
        }
        return Ok(());
    }
    for (line, outs) in lines
        .iter()
        .zip(t.translate_in_batches(lines, opts, fmt.batch)?)
    {
        let v = serde_json::json!({"input": line, "hypotheses": hyps(&outs)});
        writeln!(out, "{v}")?;
    }
    Ok(())
}
