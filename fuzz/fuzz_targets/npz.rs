//! `recur_import::read_npz_bytes` on the input (an `.npz` archive's content).
#![no_main]
use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = recur_import::read_npz_bytes(data, Path::new("fuzz.npz"));
});
