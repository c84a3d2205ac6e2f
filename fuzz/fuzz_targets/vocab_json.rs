//! `recur::data::Vocab::from_json` on the input (inputs that are not UTF-8 are skipped: the
//! function takes `&str`; `model_files` covers the UTF-8 check before it).
#![no_main]
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use recur::data::vocab::Vocab;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Vocab::from_json(text, Path::new("fuzz_vocab.json"));
    }
});
