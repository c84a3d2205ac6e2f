//! `recur::data::parse_parallel_tsv`. Byte 0 is the options (bits 0-2: source column, 3-5:
//! target column, 6: `skip_bad_lines`, 7: columns counted from `usize::MAX` down), the rest is
//! the file. `crates/recur/tests/parsers.rs` decodes its regression inputs the same way.
#![no_main]
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use recur::data::tsv::{parse_parallel_tsv, TsvOptions};

fuzz_target!(|data: &[u8]| {
    let Some((&b, file)) = data.split_first() else {
        return;
    };
    let (mut src, mut tgt) = ((b & 7) as usize, ((b >> 3) & 7) as usize);
    if b & 0x80 != 0 {
        (src, tgt) = (usize::MAX - src, usize::MAX - tgt);
    }
    let opts = TsvOptions {
        skip_bad_lines: b & 0x40 != 0,
        ..TsvOptions::new(src, tgt)
    };
    let _ = parse_parallel_tsv(file, Path::new("fuzz.tsv"), &opts);
});
