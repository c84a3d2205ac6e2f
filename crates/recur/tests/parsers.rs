//! The parsers on hostile input: the inputs the fuzz targets (`fuzz/`, see its README) found
//! crashing, as regression tests, and a replay of every file of `fuzz/regressions/<target>/`
//! through its parser, so that CI checks them without a fuzzer.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use recur::checkpoint::tensors_from_bytes;
use recur::data::tsv::parse_parallel_tsv;
use recur::data::{TsvOptions, Vocab};
use recur::models::ModelFiles;
use recur::nn::RnnMode;
use recur::seq2seq::config::MAX_PARAM_BYTES;
use recur::seq2seq::{AttentionKind, Seq2Seq, Seq2SeqConfig};
use recur::transducer::{RunConfig, Transducer};
use recur::{seeded_rng, Error, Module};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `fuzz/regressions/<target>/` (none if the directory is absent).
fn regressions(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = fuzz_dir().join("regressions").join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// The tiny valid model of `fuzz/seeds/tiny_model/`: `(config, src_vocab, tgt_vocab, weights)`.
fn tiny_model() -> [Vec<u8>; 4] {
    let dir = fuzz_dir().join("seeds/tiny_model");
    [
        "config.json",
        "src_vocab.json",
        "tgt_vocab.json",
        "model.safetensors",
    ]
    .map(|f| std::fs::read(dir.join(f)).unwrap())
}

fn from_files(config: &[u8], src: &[u8], tgt: &[u8], weights: &[u8]) -> recur::Result<Transducer> {
    Transducer::from_files(&ModelFiles {
        origin: PathBuf::from("fuzz_model"),
        config: Cow::Borrowed(config),
        src_vocab: Cow::Borrowed(src),
        tgt_vocab: Cow::Borrowed(tgt),
        weights: Cow::Borrowed(weights),
        lexicon: None,
        word_freq: None,
    })
}

// ---- The decoding of each fuzz target's input (kept equal to `fuzz/fuzz_targets/*.rs`). ----

fn tsv_input(data: &[u8]) -> Option<recur::Result<recur::data::TsvReport>> {
    let (&b, file) = data.split_first()?;
    let (mut src, mut tgt) = ((b & 7) as usize, ((b >> 3) & 7) as usize);
    if b & 0x80 != 0 {
        (src, tgt) = (usize::MAX - src, usize::MAX - tgt);
    }
    let opts = TsvOptions {
        skip_bad_lines: b & 0x40 != 0,
        ..TsvOptions::new(src, tgt)
    };
    Some(parse_parallel_tsv(file, Path::new("fuzz.tsv"), &opts))
}

fn lexicon_input(data: &[u8]) -> recur::Result<recur::lexicon::Lexicon> {
    let keep = |w: &str, t: &str, key: &mut String, out: &mut String| {
        key.push_str(&w.to_lowercase());
        out.push_str(t);
        Ok(())
    };
    recur::lexicon::Lexicon::parse(data, Path::new("fuzz_lexicon.tsv"), &keep)
}

fn sentence_text_input(data: &[u8]) {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let spelled = recur::numbers::spell_numbers(line);
    let covers = |c: char| c.is_ascii_lowercase() || c == '\'';
    let known = |w: &str| w.len().is_multiple_of(3);
    let rebuilt: String = recur::text::segment_with(&spelled, covers, known)
        .iter()
        .map(|p| match p {
            recur::text::Piece::Word(w) | recur::text::Piece::Keep(w) => *w,
        })
        .collect();
    assert_eq!(rebuilt, spelled);
}

fn run_config_input(data: &[u8], file: &Path) -> recur::Result<RunConfig> {
    let mut pieces = data.split(|&b| b == 0);
    let toml = pieces.next().unwrap_or_default();
    let overrides: Vec<String> = pieces
        .filter_map(|p| std::str::from_utf8(p).ok())
        .map(str::to_owned)
        .collect();
    std::fs::write(file, toml).unwrap();
    let _ = RunConfig::load(None, &overrides);
    RunConfig::load(Some(file), &overrides)
}

fn model_files_input(data: &[u8]) -> recur::Result<Transducer> {
    let (head, mut rest) = data.split_at(data.len().min(12));
    let mut lens = [0u8; 12];
    lens[..head.len()].copy_from_slice(head);
    let mut part = |i: usize| {
        let n = u32::from_le_bytes(lens[4 * i..4 * i + 4].try_into().unwrap()) as usize;
        let (file, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        file
    };
    let (config, src, tgt) = (part(0), part(1), part(2));
    from_files(config, src, tgt, rest)
}

// ---- Replays of the saved inputs: no panic, no unbounded allocation. ----

#[test]
fn replay_tsv_regressions() {
    for (path, data) in regressions("tsv") {
        println!("{}", path.display());
        let _ = tsv_input(&data);
    }
}

#[test]
fn replay_vocab_json_regressions() {
    for (path, data) in regressions("vocab_json") {
        if let Ok(text) = std::str::from_utf8(&data) {
            let _ = Vocab::from_json(text, &path);
        }
    }
}

#[test]
fn replay_run_config_toml_regressions() {
    let file = std::env::temp_dir().join(format!("recur-parsers-{}.toml", std::process::id()));
    for (_, data) in regressions("run_config_toml") {
        let _ = run_config_input(&data, &file);
    }
    let _ = std::fs::remove_file(file);
}

#[test]
fn replay_model_config_json_regressions() {
    let [_, src, tgt, weights] = tiny_model();
    for (_, data) in regressions("model_config_json") {
        let _ = from_files(&data, &src, &tgt, &weights);
    }
}

#[test]
fn replay_model_files_regressions() {
    for (_, data) in regressions("model_files") {
        let _ = model_files_input(&data);
    }
}

#[test]
fn replay_lexicon_and_sentence_text_inputs() {
    for target in ["lexicon_tsv", "sentence_text"] {
        let seeds = fuzz_dir().join("seeds").join(target);
        let mut inputs = regressions(target);
        for e in std::fs::read_dir(&seeds).unwrap() {
            let path = e.unwrap().path();
            inputs.push((path.clone(), std::fs::read(&path).unwrap()));
        }
        assert!(inputs.len() >= 2, "{target}: the seeds are there");
        for (_, data) in inputs {
            let _ = lexicon_input(&data);
            sentence_text_input(&data);
        }
    }
}

#[test]
fn replay_safetensors_regressions() {
    for (path, data) in regressions("safetensors") {
        let _ = tensors_from_bytes(&data, &path);
    }
}

// ---- Crashes the fuzzers found, each a clean error now. ----

/// Found by the `tsv` target: a column index of `usize::MAX` (a config's `data.src_col`)
/// overflowed `max(src_col, tgt_col) + 1` (a panic with overflow checks, an out-of-bounds index
/// without). `fuzz/regressions/tsv/column_usize_max`.
#[test]
fn tsv_column_usize_max_is_an_error() {
    let data = std::fs::read(fuzz_dir().join("regressions/tsv/column_usize_max")).unwrap();
    let err = tsv_input(&data).unwrap().unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Parse { line: None, .. }), "{msg}");
    assert!(
        msg.starts_with("fuzz.tsv: source column 18446744073709551615"),
        "{msg}"
    );
    let err = parse_parallel_tsv(
        b"a\tb\n",
        Path::new("x.tsv"),
        &TsvOptions::new(0, usize::MAX),
    )
    .unwrap_err();
    assert!(err.to_string().contains("must be below"), "{err}");
}

/// A `config.json` asking for a model of terabytes (hidden_size 1e8, the tiny model's
/// vocabularies) is refused by `Seq2SeqConfig::validate` before anything is allocated.
/// `fuzz/regressions/model_config_json/hidden_size_1e8.json`.
#[test]
fn config_of_a_gigantic_model_is_an_error() {
    let [_, src, tgt, weights] = tiny_model();
    let config =
        std::fs::read(fuzz_dir().join("regressions/model_config_json/hidden_size_1e8.json"))
            .unwrap();
    let Err(err) = from_files(&config, &src, &tgt, &weights) else {
        panic!("a model of terabytes must be refused");
    };
    let msg = err.to_string();
    assert!(msg.contains("model size"), "{msg}");
    assert!(msg.contains("hidden_size 100000000"), "{msg}");
    assert!(
        msg.contains(&format!("at most {MAX_PARAM_BYTES} bytes")),
        "{msg}"
    );
}

/// Found by the `model_config_json` target (run without the check above): hidden_size 4444
/// with the tiny model's vocabularies is a model of 3.2 GB, under the 4 GiB limit, which
/// `Transducer::from_files` allocated and initialised before finding that the 6 kB weights
/// file cannot hold it (out of memory at the fuzzer's 2 GB). Now refused before allocating:
/// the weights file must hold every parameter.
/// `fuzz/regressions/model_config_json/hidden_size_4444_oom.json`.
#[test]
fn config_of_a_model_larger_than_its_weights_file_is_an_error() {
    let [_, src, tgt, weights] = tiny_model();
    let config =
        std::fs::read(fuzz_dir().join("regressions/model_config_json/hidden_size_4444_oom.json"))
            .unwrap();
    let start = std::time::Instant::now();
    let Err(err) = from_files(&config, &src, &tgt, &weights) else {
        panic!("a model larger than its weights file must be refused");
    };
    assert!(start.elapsed().as_secs() < 1, "{:?}", start.elapsed());
    let msg = err.to_string();
    assert!(
        msg.starts_with("fuzz_model/config.json: the model needs"),
        "{msg}"
    );
    let stored: usize = tensors_from_bytes(&weights, Path::new("w"))
        .unwrap()
        .iter()
        .map(|(_, t)| t.numel())
        .sum();
    assert!(
        msg.ends_with(&format!("but model.safetensors holds {stored}")),
        "{msg}"
    );
}

// ---- The tiny model the model targets start from. ----

#[test]
fn tiny_model_loads() {
    let [config, src, tgt, weights] = tiny_model();
    let t = from_files(&config, &src, &tgt, &weights).unwrap();
    assert_eq!(t.config.model.hidden_size, 4);
}

/// Writes `fuzz/seeds/tiny_model/` (run once by hand:
/// `cargo test -p recur --test parsers -- --ignored write_tiny_model`).
#[test]
#[ignore]
fn write_tiny_model() {
    let tokens = |extra: &[&str]| {
        let mut t: Vec<String> = recur::data::vocab::SPECIALS.map(String::from).to_vec();
        t.extend(extra.iter().map(|s| s.to_string()));
        Vocab::from_tokens(t).unwrap()
    };
    let config = RunConfig {
        model: Seq2SeqConfig {
            emb_dim: 3,
            hidden_size: 4,
            attn_dim: 2,
            ..Seq2SeqConfig::default()
        },
        ..RunConfig::default()
    };
    let t = Transducer::new(config, tokens(&["a", "b"]), tokens(&["x", "y", "z"])).unwrap();
    let dir = fuzz_dir().join("seeds/tiny_model");
    t.save(&dir, None).unwrap();
}

// ---- The model-size limit of `Seq2SeqConfig::validate`. ----

#[test]
fn param_count_is_the_models_parameter_count() {
    for cell in [RnnMode::Lstm, RnnMode::Gru, RnnMode::RnnTanh] {
        for attention in [
            AttentionKind::None,
            AttentionKind::Bahdanau,
            AttentionKind::LuongDot,
            AttentionKind::LuongGeneral,
        ] {
            for (layers, bidirectional) in [(1, false), (2, true), (3, false)] {
                let cfg = Seq2SeqConfig {
                    cell,
                    src_vocab: 11,
                    tgt_vocab: 7,
                    emb_dim: 5,
                    hidden_size: 6,
                    layers,
                    bidirectional,
                    attention,
                    attn_dim: 3,
                    dropout: 0.0,
                };
                let model = Seq2Seq::new(cfg.clone(), &mut seeded_rng(0)).unwrap();
                let real: usize = model.params().iter().map(|p| p.value.numel()).sum();
                assert_eq!(cfg.param_count(), real as u128, "{cfg:?}");
            }
        }
    }
}

#[test]
fn a_gigantic_model_is_refused_before_any_allocation() {
    let cfg = Seq2SeqConfig {
        src_vocab: 30,
        tgt_vocab: 67,
        hidden_size: 100_000_000,
        ..Seq2SeqConfig::default()
    };
    let err = Seq2Seq::new(cfg, &mut seeded_rng(0)).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                arg: "model size",
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("hidden_size 100000000"), "{msg}");
    // Sizes whose product overflows any integer are refused the same way.
    let cfg = Seq2SeqConfig {
        src_vocab: 5,
        tgt_vocab: 5,
        emb_dim: usize::MAX,
        hidden_size: usize::MAX,
        layers: usize::MAX,
        attn_dim: usize::MAX,
        ..Seq2SeqConfig::default()
    };
    assert!(cfg.validate().is_err());
    // The limit itself: 4 GiB of f32.
    assert_eq!(MAX_PARAM_BYTES, 4 << 30);
}
