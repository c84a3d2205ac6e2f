//! PyTorch → recur: models trained in PyTorch and saved as safetensors by
//! `interop/roundtrip.py from-torch` (tests/data/torch_roundtrip/*) load into recur and decode
//! exactly as PyTorch did: the same greedy outputs, truncation flags and log-probabilities.
//! The other direction (recur → PyTorch) needs PyTorch and is run by the script's `to-torch`.

use std::path::{Path, PathBuf};

use recur::fixture::Tolerance;
use recur::seq2seq::search::{DecodeOptions, MaxLen};
use recur::transducer::Transducer;

fn model_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/torch_roundtrip");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// One row of expected.tsv: input, PyTorch's output, its log-probability, truncated (0/1).
struct Expected {
    input: String,
    output: String,
    log_prob: f64,
    truncated: bool,
}

fn expected(dir: &Path) -> Vec<Expected> {
    std::fs::read_to_string(dir.join("expected.tsv"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 4, "{}: bad line {l:?}", dir.display());
            Expected {
                input: f[0].to_owned(),
                output: f[1].to_owned(),
                log_prob: f[2].parse().unwrap(),
                truncated: f[3] == "1",
            }
        })
        .collect()
}

#[test]
fn pytorch_trained_models_decode_as_in_pytorch() {
    let dirs = model_dirs();
    // LSTM + Bahdanau, GRU + Luong general, tanh RNN without attention.
    assert_eq!(dirs.len(), 3, "{dirs:?}");
    let greedy = DecodeOptions {
        beam_size: 1,
        max_len: MaxLen::PerSource {
            ratio: 3.0,
            offset: 5,
            limit: 100,
        },
        ..DecodeOptions::default()
    };
    for dir in dirs {
        let model = Transducer::load(&dir).unwrap();
        let rows = expected(&dir);
        assert!(rows.len() >= 100, "{}", dir.display());
        let inputs: Vec<&str> = rows.iter().map(|r| r.input.as_str()).collect();
        let outputs = model.translate(&inputs, &greedy).unwrap();
        for (row, outs) in rows.iter().zip(outputs) {
            let got = &outs[0];
            let at = format!("{}: {:?}", dir.display(), row.input);
            assert_eq!(got.text, row.output, "{at}");
            assert_eq!(got.truncated, row.truncated, "{at}");
            assert!(
                Tolerance::OUTPUT.accepts(got.log_prob as f64, row.log_prob),
                "{at}: log-probability {} vs PyTorch's {}",
                got.log_prob,
                row.log_prob
            );
        }
    }
}
