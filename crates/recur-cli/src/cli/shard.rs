//! `recur translate --shard I/N`: the I-th of N contiguous blocks of an input file's lines.
//!
//! N processes (on N machines, or the ranks of one `mpirun`) each translate their block; the
//! outputs concatenated in shard order (`cat out.0 out.1 ...`) are what one process writes for
//! the whole file, in input order. Blocks differ by at most one line. The block is streamed
//! from its byte range, so no process holds more than its batch in memory.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::str::FromStr;

use anyhow::{bail, Context, Result};

/// Which block of the input this process translates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This block, `0..count`.
    pub index: usize,
    /// The number of blocks.
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = || format!("expected I/N with 0 <= I < N (e.g. 0/4), got {s:?}");
        let (i, n) = s.split_once('/').ok_or_else(expected)?;
        let (index, count) = (
            i.trim().parse::<usize>().map_err(|_| expected())?,
            n.trim().parse::<usize>().map_err(|_| expected())?,
        );
        if index >= count {
            return Err(expected());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// The first line and the line after the last of this block, of `lines` lines.
    fn lines_of(&self, lines: u64) -> (u64, u64) {
        let at = |k: usize| lines * k as u64 / self.count as u64;
        (at(self.index), at(self.index + 1))
    }
}

/// Calls `on_line_start(line, offset)` for the byte offset where every line of `reader` starts
/// (line 0 at offset 0, and one past the end when the text ends with a newline or is
/// non-empty), stopping early when it returns `false`; returns the number of lines.
fn scan_lines(reader: impl Read, mut on_line_start: impl FnMut(u64, u64) -> bool) -> Result<u64> {
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let (mut offset, mut lines, mut last) = (0u64, 0u64, b'\n');
    if !on_line_start(0, 0) {
        return Ok(0);
    }
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        for (i, &b) in buf.iter().enumerate() {
            if b == b'\n' {
                lines += 1;
                if !on_line_start(lines, offset + i as u64 + 1) {
                    return Ok(lines);
                }
            }
        }
        let n = buf.len();
        last = buf[n - 1];
        offset += n as u64;
        reader.consume(n);
    }
    // A last line without a newline is a line too.
    if last != b'\n' {
        lines += 1;
        on_line_start(lines, offset);
    }
    Ok(lines)
}

/// A reader of `shard`'s block of the lines of the file `path`.
pub fn open_block(path: &Path, shard: Shard) -> Result<impl BufRead> {
    let open = || File::open(path).with_context(|| format!("{}: cannot open", path.display()));
    let cannot_read = || format!("{}: cannot read", path.display());
    let total = scan_lines(open()?, |_, _| true).with_context(cannot_read)?;
    let (first, end) = shard.lines_of(total);
    let (mut start_byte, mut end_byte) = (None, None);
    scan_lines(open()?, |line, offset| {
        if line == first {
            start_byte = Some(offset);
        }
        if line == end {
            end_byte = Some(offset);
        }
        line < end
    })
    .with_context(cannot_read)?;
    let (Some(start), Some(stop)) = (start_byte, end_byte) else {
        bail!("{}: changed while it was read", path.display());
    };
    let mut file = open()?;
    file.seek(SeekFrom::Start(start))
        .with_context(cannot_read)?;
    Ok(BufReader::new(file.take(stop - start)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(text: &str, count: usize) -> Vec<String> {
        let path =
            std::env::temp_dir().join(format!("recur-shard-{}-{}", std::process::id(), text.len()));
        std::fs::write(&path, text).unwrap();
        let out = (0..count)
            .map(|index| {
                let mut s = String::new();
                open_block(&path, Shard { index, count })
                    .unwrap()
                    .read_to_string(&mut s)
                    .unwrap();
                s
            })
            .collect();
        std::fs::remove_file(&path).unwrap();
        out
    }

    #[test]
    fn blocks_concatenate_to_the_file_in_order() {
        for text in ["a\nb\nc\nd\ne\n", "a\nb\nc", "", "one\n", "\n\n\n"] {
            for count in 1..=4 {
                let b = blocks(text, count);
                assert_eq!(b.concat(), text, "{text:?} in {count}");
                let lines: Vec<usize> = b.iter().map(|s| s.lines().count()).collect();
                let (min, max) = (lines.iter().min(), lines.iter().max());
                assert!(max.unwrap() - min.unwrap() <= 1, "{text:?}: {lines:?}");
            }
        }
    }

    #[test]
    fn shard_syntax() {
        assert_eq!("1/4".parse(), Ok(Shard { index: 1, count: 4 }));
        for bad in ["4/4", "1", "a/2", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
