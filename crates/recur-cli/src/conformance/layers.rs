//! Linear and embedding cases: forward `output`, then backward of `sum(output * grad_output)`.

use super::Checker;
use recur::error::{Error, Result};
use recur::fixture::{Fixture, Tolerance};
use recur::module::Module;
use recur::nn::{Embedding, Linear};

pub(super) fn run_linear(fx: &Fixture, chk: &mut Checker) -> Result<()> {
    let bias = if fx.arg_bool("bias", true) {
        Some(fx.tensor("bias")?)
    } else {
        None
    };
    let mut layer = Linear::from_params(fx.tensor("weight")?, bias)?;
    let (inf, outf) = (
        fx.arg_usize("in_features", 0),
        fx.arg_usize("out_features", 0),
    );
    if (layer.in_features(), layer.out_features()) != (inf, outf) {
        return Err(Error::tensor(
            "conformance",
            "weight",
            format!("does not match in_features={inf}, out_features={outf}"),
        ));
    }
    let x = fx.tensor("input")?;
    let y = layer.forward(&x)?;
    chk.tensor("output", &y, Tolerance::OUTPUT)?;
    let gx = layer.backward(&x, &fx.tensor("grad_output")?)?;
    chk.tensor("grad.input", &gx, Tolerance::OUTPUT)?;
    chk.param_grads(layer.params(), Tolerance::OUTPUT)
}

pub(super) fn run_embedding(fx: &Fixture, chk: &mut Checker) -> Result<()> {
    let padding_idx = match fx.case.get("padding_idx").and_then(|v| v.as_i64()) {
        None => None,
        Some(p) => Some(
            usize::try_from(p)
                .map_err(|_| Error::arg("conformance", "padding_idx", "a non-negative index", p))?,
        ),
    };
    let mut emb = Embedding::from_weight(fx.tensor("weight")?, padding_idx)?;
    let (shape, ids) = fx.ints("input")?;
    let y = emb.forward(&ids, &shape)?;
    chk.tensor("output", &y, Tolerance::OUTPUT)?;
    emb.backward(&ids, &fx.tensor("grad_output")?)?;
    chk.param_grads(emb.params(), Tolerance::OUTPUT)
}
