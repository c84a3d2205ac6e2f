//! `recur::transducer::Transducer::from_files` with the input as `config.json` and the
//! vocabularies and weights of the tiny valid model in `fuzz/seeds/tiny_model/`: reaches model
//! building (sizes from the config) and weight checking.
#![no_main]
use std::borrow::Cow;
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use recur::models::ModelFiles;
use recur::transducer::Transducer;

fuzz_target!(|data: &[u8]| {
    let files = ModelFiles {
        origin: PathBuf::from("fuzz_model"),
        config: Cow::Borrowed(data),
        src_vocab: Cow::Borrowed(include_bytes!("../seeds/tiny_model/src_vocab.json")),
        tgt_vocab: Cow::Borrowed(include_bytes!("../seeds/tiny_model/tgt_vocab.json")),
        weights: Cow::Borrowed(include_bytes!("../seeds/tiny_model/model.safetensors")),
        lexicon: None,
        word_freq: None,
    };
    let _ = Transducer::from_files(&files);
});
