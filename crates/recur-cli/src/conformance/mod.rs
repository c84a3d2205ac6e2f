//! `recur conformance`: runs PyTorch golden cases and reports, per case, the worst tensor.
//!
//! One file per family of kinds; each runner rebuilds the layer from the case's arguments and
//! stored parameters, runs forward and backward, and hands every result to a [`Checker`].

mod layers;
mod loss;
mod optim;
mod rnn;
mod seq2seq;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use recur::error::{Error, Result};
use recur::fixture::{compare, Fixture, TensorCheck, Tolerance};
use recur::tensor::Tensor;

/// Collects the comparisons of one case.
pub struct Checker<'a> {
    fx: &'a Fixture,
    /// Every comparison made so far.
    pub checks: Vec<TensorCheck>,
}

impl<'a> Checker<'a> {
    /// A checker for one fixture.
    pub fn new(fx: &'a Fixture) -> Self {
        Checker {
            fx,
            checks: Vec::new(),
        }
    }

    /// Compares a computed tensor with the reference array `name`.
    pub fn tensor(&mut self, name: &str, got: &Tensor, tol: Tolerance) -> Result<()> {
        self.slice(name, got.data(), got.shape(), tol)
    }

    /// Compares a computed buffer of the given shape with the reference array `name`.
    pub fn slice(
        &mut self,
        name: &str,
        got: &[f32],
        shape: &[usize],
        tol: Tolerance,
    ) -> Result<()> {
        let (want_shape, want) = self.fx.reference(name)?;
        self.checks
            .push(compare(name, got, shape, &want, &want_shape, tol));
        Ok(())
    }

    /// Compares every stored `grad.<name>` of parameters with the computed gradients.
    pub fn param_grads<'p>(
        &mut self,
        params: impl IntoIterator<Item = &'p recur::module::Param>,
        tol: Tolerance,
    ) -> Result<()> {
        for p in params {
            let key = format!("grad.{}", p.name);
            if self.fx.has(&key) {
                self.tensor(&key, &p.grad, tol)?;
            }
        }
        Ok(())
    }

    /// Fails unless every `grad.*` reference of the fixture has been compared.
    pub fn require_all_grads_checked(&mut self) -> Result<()> {
        for name in self.fx.names() {
            if name.starts_with("grad.") && !self.checks.iter().any(|c| c.name == name) {
                return Err(Error::tensor(
                    "conformance",
                    name,
                    "reference gradient was not checked",
                ));
            }
        }
        Ok(())
    }
}

/// The outcome of one case.
#[derive(Debug)]
pub struct CaseReport {
    /// The case name (file stem).
    pub name: String,
    /// Comparisons made (empty when the case errored).
    pub checks: Vec<TensorCheck>,
    /// An error that stopped the case (unsupported kind, bad file, shape error).
    pub error: Option<String>,
}

impl CaseReport {
    /// Whether the case passed.
    pub fn ok(&self) -> bool {
        self.error.is_none() && !self.checks.is_empty() && self.checks.iter().all(|c| c.ok)
    }

    /// The comparison closest to (or furthest past) its tolerance.
    pub fn worst(&self) -> Option<&TensorCheck> {
        self.checks
            .iter()
            .max_by(|a, b| a.worst_ratio.total_cmp(&b.worst_ratio))
    }

    /// One line: `name ok|FAIL worst=<tensor> max_abs=.. max_rel=..`.
    pub fn line(&self) -> String {
        let status = if self.ok() { "ok" } else { "FAIL" };
        if let Some(e) = &self.error {
            return format!("{:<36} {status:<4} {e}", self.name);
        }
        match self.worst() {
            Some(w) => format!(
                "{:<36} {status:<4} worst={} max_abs={:.3e} max_rel={:.3e}{}",
                self.name,
                w.name,
                w.max_abs,
                w.max_rel,
                w.note
                    .as_ref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ),
            None => format!("{:<36} {status:<4} nothing compared", self.name),
        }
    }
}

/// Runs one fixture file.
pub fn run_file(path: &Path) -> CaseReport {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let fx = match Fixture::load(path) {
        Ok(fx) => fx,
        Err(e) => {
            return CaseReport {
                name,
                checks: vec![],
                error: Some(e.to_string()),
            }
        }
    };
    let mut chk = Checker::new(&fx);
    let result = run_case(&fx, &mut chk).and_then(|_| chk.require_all_grads_checked());
    CaseReport {
        name,
        checks: chk.checks,
        error: result.err().map(|e| e.to_string()),
    }
}

fn run_case(fx: &Fixture, chk: &mut Checker) -> Result<()> {
    match fx.kind() {
        "lstm" | "gru" | "rnn" => rnn::run_layer(fx, chk),
        "lstm_cell" | "gru_cell" | "rnn_cell" => rnn::run_cell(fx, chk),
        "linear" => layers::run_linear(fx, chk),
        "embedding" => layers::run_embedding(fx, chk),
        "cross_entropy" => loss::run(fx, chk),
        "sgd" | "adam" | "adamw" => optim::run_optimizer(fx, chk),
        "clip_grad_norm" => optim::run_clip(fx, chk),
        "seq2seq" => seq2seq::run(fx, chk),
        other => Err(Error::tensor(
            "conformance",
            "case.kind",
            format!("unsupported kind `{other}`"),
        )),
    }
}

/// Every `*.safetensors` file in `dir`, sorted by name.
pub fn case_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    Ok(files)
}

/// Runs every case in `dir`.
pub fn run_dir(dir: &Path) -> Result<Vec<CaseReport>> {
    Ok(case_files(dir)?.iter().map(|p| run_file(p)).collect())
}
