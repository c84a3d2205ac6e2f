//! The `recur` binary end to end.

use std::path::Path;
use std::process::Command;

fn recur() -> Command {
    Command::new(env!("CARGO_BIN_EXE_recur"))
}

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

#[test]
fn conformance_prints_a_line_per_case_and_a_summary() {
    let dir = std::env::temp_dir().join(format!("recur-cli-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for case in ["lstm_packed_bidir", "gru_cell", "rnn_relu_bidir"] {
        std::fs::copy(
            fixtures().join(format!("{case}.safetensors")),
            dir.join(format!("{case}.safetensors")),
        )
        .unwrap();
    }
    let out = recur().args(["conformance"]).arg(&dir).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with("gru_cell")
            && lines[0].contains(" ok ")
            && lines[0].contains("max_abs="),
        "{text}"
    );
    assert_eq!(lines[3], "3 passed, 0 failed");

    // A case of an unsupported kind makes the run fail, with the summary still printed.
    std::fs::write(dir.join("broken.safetensors"), b"not a safetensors file").unwrap();
    let out = recur().args(["conformance"]).arg(&dir).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!out.status.success());
    assert!(text.contains("broken") && text.contains("FAIL"), "{text}");
    assert!(text.trim_end().ends_with("3 passed, 1 failed"), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}
