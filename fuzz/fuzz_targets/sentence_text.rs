//! Sentence mode's text handling on the input as a line (inputs that are not UTF-8 are
//! skipped): `recur::numbers::spell_numbers`, then `recur::text::segment_with` on the result,
//! whose pieces must rebuild it exactly.
#![no_main]
use libfuzzer_sys::fuzz_target;
use recur::text::{segment_with, Piece};

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let spelled = recur::numbers::spell_numbers(line);
    let covers = |c: char| c.is_ascii_lowercase() || c == '\'';
    let known = |w: &str| w.len() % 3 == 0;
    let rebuilt: String = segment_with(&spelled, covers, known)
        .iter()
        .map(|p| match p {
            Piece::Word(w) | Piece::Keep(w) => *w,
        })
        .collect();
    assert_eq!(rebuilt, spelled);
});
