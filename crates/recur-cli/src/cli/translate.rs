//! `recur translate`: one output line per input line, in order, decoded in batches.

use std::io::{BufRead, Write};

use anyhow::{Context, Result};
use recur::seq2seq::search::DecodeOptions;
use recur::transducer::Transducer;

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
}

/// Reads `input` line by line and writes the outputs to `out`.
pub fn run(
    t: &Transducer,
    input: impl BufRead,
    mut out: impl Write,
    opts: &DecodeOptions,
    fmt: &Format,
) -> Result<()> {
    let mut lines = Vec::with_capacity(fmt.batch);
    for (i, line) in input.lines().enumerate() {
        lines.push(line.with_context(|| format!("input line {}: not valid UTF-8", i + 1))?);
        if lines.len() == fmt.batch {
            emit(t, &lines, &mut out, opts, fmt)?;
            lines.clear();
        }
    }
    emit(t, &lines, &mut out, opts, fmt)?;
    out.flush()?;
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
    if fmt.sentences {
        for s in t.translate_sentences(&refs, opts)? {
            writeln!(out, "{s}")?;
        }
        return Ok(());
    }
    let nbest = opts.nbest > 1;
    for outs in t.translate(&refs, opts)? {
        for o in outs.iter().take(opts.nbest.max(1)) {
            let mut line = o.text.clone();
            if fmt.scores || nbest {
                line.push_str(&format!("\t{:.4}", o.score));
            }
            if fmt.alignments {
                let al: Vec<String> = o
                    .attention
                    .iter()
                    .map(|row| {
                        row.iter()
                            .enumerate()
                            .fold((0, f32::MIN), |b, (j, &a)| if a > b.1 { (j, a) } else { b })
                            .0
                            .to_string()
                    })
                    .collect();
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
