//! `recur::transducer::RunConfig::load`: the input up to the first NUL byte is the TOML file
//! (written to a file in /dev/shm, one per process), each further NUL-separated piece one
//! `--set section.key=value` override (pieces that are not UTF-8 are dropped).
#![no_main]
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use recur::transducer::RunConfig;

fn file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("recur-fuzz-{}.toml", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let mut pieces = data.split(|&b| b == 0);
    let toml = pieces.next().unwrap_or_default();
    let overrides: Vec<String> = pieces
        .filter_map(|p| std::str::from_utf8(p).ok())
        .map(str::to_owned)
        .collect();
    std::fs::write(file(), toml).expect("writing the fuzz input file");
    let _ = RunConfig::load(Some(file()), &overrides);
    let _ = RunConfig::load(None, &overrides);
});
