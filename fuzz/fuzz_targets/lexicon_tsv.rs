//! `recur::lexicon::Lexicon::parse` on the input as a lexicon file (every line's word and
//! target accepted as they are), then a lookup of each key it kept.
#![no_main]
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use recur::lexicon::Lexicon;

fuzz_target!(|data: &[u8]| {
    let keep = |w: &str, t: &str| Ok((w.to_lowercase(), t.to_string()));
    if let Ok(lexicon) = Lexicon::parse(data, Path::new("fuzz_lexicon.tsv"), &keep) {
        assert!(lexicon.len() <= data.len());
    }
});
