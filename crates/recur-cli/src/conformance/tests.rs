//! The conformance runner on the bundled PyTorch golden cases (crates/recur/tests/fixtures).

use std::path::Path;

use super::{run_dir, run_file};

fn fixtures() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../recur/tests/fixtures"
    ))
}

/// The failing cases among those whose name satisfies `select`, as report lines.
fn failures(select: impl Fn(&str) -> bool) -> Vec<String> {
    let reports = run_dir(fixtures()).unwrap();
    assert_eq!(reports.len(), 50, "all bundled cases are found");
    let chosen: Vec<_> = reports.iter().filter(|r| select(&r.name)).collect();
    assert!(!chosen.is_empty());
    chosen
        .iter()
        .filter(|r| !r.ok())
        .map(|r| r.line())
        .collect()
}

#[test]
fn every_layer_loss_and_optimizer_case_passes() {
    let failed = failures(|name| !name.starts_with("seq2seq_"));
    assert!(failed.is_empty(), "failing cases:\n{}", failed.join("\n"));
}

#[test]
fn every_seq2seq_case_passes_with_every_gradient() {
    let failed = failures(|name| name.starts_with("seq2seq_"));
    assert!(failed.is_empty(), "failing cases:\n{}", failed.join("\n"));
}

#[test]
fn an_unknown_kind_fails_instead_of_being_skipped() {
    let dir = std::env::temp_dir().join(format!("recur-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("mystery.safetensors");
    let mut meta = std::collections::HashMap::new();
    meta.insert("format".to_string(), "recur-fixture/1".to_string());
    meta.insert("case".to_string(), r#"{"kind": "transformer"}"#.to_string());
    let data = 1.0f32.to_le_bytes();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &data).unwrap();
    safetensors::serialize_to_file([("x", view)], &Some(meta), &path).unwrap();
    let r = run_file(&path);
    assert!(!r.ok());
    assert!(
        r.line().contains("FAIL") && r.line().contains("unsupported kind `transformer`"),
        "{}",
        r.line()
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_wrong_result_is_reported_as_failure() {
    // Corrupt one reference value of a real case: the runner must notice.
    let src = fixtures().join("gru_basic.safetensors");
    let bytes = std::fs::read(&src).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut owned: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    let h_n = owned.iter_mut().find(|t| t.0 == "h_n").unwrap();
    let v = f64::from_le_bytes(h_n.3[..8].try_into().unwrap()) + 1e-3;
    h_n.3[..8].copy_from_slice(&v.to_le_bytes());
    let views: Vec<(String, safetensors::tensor::TensorView)> = owned
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("recur-conf-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gru_basic.safetensors");
    safetensors::serialize_to_file(views, meta.metadata(), &path).unwrap();
    let r = run_file(&path);
    assert!(!r.ok(), "{}", r.line());
    assert!(r.line().contains("worst=h_n"), "{}", r.line());
    std::fs::remove_dir_all(&dir).ok();
}
