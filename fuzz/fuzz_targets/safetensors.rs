//! `recur::checkpoint::tensors_from_bytes` on the input (a `.safetensors` file's content).
#![no_main]
use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = recur::checkpoint::tensors_from_bytes(data, Path::new("fuzz.safetensors"));
});
