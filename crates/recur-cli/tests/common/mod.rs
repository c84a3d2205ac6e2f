//! Helpers shared by the integration-test crates (`mod common;` in each).

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `cmd` with `input` on its standard input; returns its output (stdout and stderr
/// captured).
pub fn with_stdin(cmd: &mut Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
