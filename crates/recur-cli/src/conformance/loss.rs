//! Cross entropy cases: `loss` and `grad.logits`.

use super::Checker;
use recur::error::Result;
use recur::fixture::{Fixture, Tolerance};
use recur::loss::cross_entropy_tensor;

pub(super) fn run(fx: &Fixture, chk: &mut Checker) -> Result<()> {
    let logits = fx.tensor("logits")?;
    let (_, target) = fx.ints("target")?;
    let ignore_index = fx.case.get("ignore_index").and_then(|v| v.as_i64());
    let smoothing = fx.arg_f64("label_smoothing", 0.0) as f32;
    let (loss, grad) = cross_entropy_tensor(&logits, &target, ignore_index, smoothing)?;
    chk.slice("loss", &[loss], &[1], Tolerance::OUTPUT)?;
    chk.tensor("grad.logits", &grad, Tolerance::OUTPUT)
}
