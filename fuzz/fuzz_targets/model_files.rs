//! `recur::transducer::Transducer::from_files` with all four files of a model directory taken
//! from the input: three little-endian u32 lengths (config.json, src_vocab.json,
//! tgt_vocab.json; a missing byte is 0, a length is cut to what remains), the three files, then
//! model.safetensors (the rest).
#![no_main]
use std::borrow::Cow;
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use recur::models::ModelFiles;
use recur::transducer::Transducer;

fuzz_target!(|data: &[u8]| {
    let (head, mut rest) = data.split_at(data.len().min(12));
    let mut lens = [0u8; 12];
    lens[..head.len()].copy_from_slice(head);
    let mut part = |i: usize| {
        let n = u32::from_le_bytes(lens[4 * i..4 * i + 4].try_into().unwrap()) as usize;
        let (file, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        file
    };
    let (config, src_vocab, tgt_vocab) = (part(0), part(1), part(2));
    let files = ModelFiles {
        origin: PathBuf::from("fuzz_model"),
        config: Cow::Borrowed(config),
        src_vocab: Cow::Borrowed(src_vocab),
        tgt_vocab: Cow::Borrowed(tgt_vocab),
        weights: Cow::Borrowed(rest),
        lexicon: None,
        word_freq: None,
    };
    let _ = Transducer::from_files(&files);
});
