//! `recur import g2p-en`: parity with g2p_en 2.1.0's own `predict` on every word of
//! tests/data/g2p_en/expected.tsv (see make_expected.py there), and clear errors for
//! checkpoints that are not g2p_en's.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use npyz::WriterBuilder;
use recur::transducer::Transducer;
use recur_import::g2p_en;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../recur-import/tests/data/g2p_en")
        .join(name)
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("recur-g2p-en-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// (word, g2p_en's phonemes) pairs.
fn expected() -> Vec<(String, String)> {
    std::fs::read_to_string(data("expected.tsv"))
        .unwrap()
        .lines()
        .map(|l| {
            let (w, p) = l.split_once('\t').expect("word<TAB>phonemes");
            (w.to_owned(), p.to_owned())
        })
        .collect()
}

fn recur(args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_recur"));
    let out = common::with_stdin(cmd.args(["--threads", "1"]).args(args), stdin);
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The CLI end to end: `recur import g2p-en` then `recur translate` with no decoding options
/// (the model directory's defaults: greedy, at most 20 phonemes, `</s>` appended to the word).
#[test]
fn cli_translate_equals_g2p_en_predict_on_every_word() {
    let dir = temp_dir("cli");
    let model = dir.join("model");
    let npz = data("checkpoint20.npz");
    let (ok, _, err) = recur(
        &[
            "import",
            "g2p-en",
            npz.to_str().unwrap(),
            "--out",
            model.to_str().unwrap(),
        ],
        "",
    );
    assert!(ok, "import failed: {err}");
    let exp = expected();
    let input: String = exp.iter().map(|(w, _)| format!("{w}\n")).collect();
    let (ok, out, err) = recur(&["translate", "--model", model.to_str().unwrap()], &input);
    assert!(ok, "translate failed: {err}");
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got.len(), exp.len());
    let diffs: Vec<String> = exp
        .iter()
        .zip(&got)
        .filter(|((_, want), got)| want != *got)
        .map(|((w, want), got)| format!("{w}: g2p_en {want:?}, recur {got:?}"))
        .collect();
    assert!(
        diffs.is_empty(),
        "{} of {} words differ:\n{}",
        diffs.len(),
        exp.len(),
        diffs.join("\n")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The library: the imported model's settings, and a batch decoded at once gives the same.
#[test]
fn import_sets_eos_greedy_and_20_steps() {
    let t = g2p_en::import(data("checkpoint20.npz")).unwrap();
    assert!(t.config.data.src_eos && !t.config.data.lowercase_src);
    assert_eq!(
        (t.config.decode.beam, t.config.decode.max_len),
        (Some(1), Some(20))
    );
    assert_eq!((t.src_vocab.len(), t.tgt_vocab.len()), (30, 74));
    // Round trip through the model directory.
    let dir = temp_dir("lib");
    t.save(dir.join("m"), None).unwrap();
    let t = Transducer::load(dir.join("m")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let exp = expected();
    let words: Vec<&str> = exp.iter().map(|(w, _)| w.as_str()).collect();
    let opts = recur::seq2seq::search::DecodeOptions {
        beam_size: 1,
        max_len: recur::seq2seq::search::MaxLen::Fixed(20),
        ..Default::default()
    };
    let outs = t.translate(&words, &opts).unwrap();
    for ((w, want), o) in exp.iter().zip(&outs) {
        assert_eq!(&o[0].text, want, "{w}");
        assert_eq!(o[0].truncated, want.split(' ').count() == 20, "{w}");
    }
}

/// Copies checkpoint20.npz without `drop`, then adds `add` (name, shape) arrays of zeros.
fn edited_npz(path: &Path, drop: &str, add: &[(&str, &[u64])]) {
    let mut src =
        zip::ZipArchive::new(std::fs::File::open(data("checkpoint20.npz")).unwrap()).unwrap();
    let mut out = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..src.len() {
        let f = src.by_index_raw(i).unwrap();
        if f.name() != format!("{drop}.npy") {
            out.raw_copy_file(f).unwrap();
        }
    }
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, shape) in add {
        out.start_file(format!("{name}.npy"), opts).unwrap();
        let mut w = npyz::WriteOptions::<f32>::new()
            .default_dtype()
            .shape(shape)
            .writer(&mut out)
            .begin_nd()
            .unwrap();
        w.extend(std::iter::repeat_n(
            0.0f32,
            shape.iter().product::<u64>() as usize,
        ))
        .unwrap();
        w.finish().unwrap();
    }
    out.finish().unwrap();
}

fn import_error(drop: &str, add: &[(&str, &[u64])]) -> String {
    let dir = temp_dir(&format!("bad-{drop}-{}", add.len()));
    let path = dir.join("bad.npz");
    edited_npz(&path, drop, add);
    let err = g2p_en::import(&path).unwrap_err().to_string();
    std::fs::remove_dir_all(&dir).unwrap();
    err
}

#[test]
fn missing_array_is_named() {
    let err = import_error("dec_w_hh", &[]);
    assert!(err.contains("missing array(s) dec_w_hh"), "{err}");
}

#[test]
fn unexpected_array_is_named() {
    let err = import_error("", &[("attn_w", &[3, 4])]);
    assert!(err.contains("unexpected array(s) attn_w"), "{err}");
}

#[test]
fn wrong_shape_names_the_array_and_both_shapes() {
    let err = import_error("fc_w", &[("fc_w", &[74, 128])]);
    assert!(
        err.contains("fc_w") && err.contains("(74, 128)") && err.contains("(74, 256)"),
        "{err}"
    );
}
