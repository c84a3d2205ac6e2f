//! Recurrent layers (`lstm`, `gru`, `rnn`) and cells (`*_cell`).

use super::Checker;
use recur::error::Result;
use recur::fixture::{Fixture, Tolerance};
use recur::module::{load_params, seeded_rng, Module};
use recur::nn::rnn::{RnnConfig, RnnMode, RnnState};
use recur::nn::RnnCell;

fn mode(fx: &Fixture) -> RnnMode {
    match (
        fx.kind().trim_end_matches("_cell"),
        fx.arg_str("nonlinearity"),
    ) {
        ("lstm", _) => RnnMode::Lstm,
        ("gru", _) => RnnMode::Gru,
        (_, Some("relu")) => RnnMode::RnnRelu,
        _ => RnnMode::RnnTanh,
    }
}

/// Gradient tolerance: the README's looser one for the long (40-step) cases.
fn grad_tolerance(fx: &Fixture) -> Tolerance {
    if fx.arg_usize("seq_len", 0) >= 40 {
        Tolerance::LONG_GRADIENT
    } else {
        Tolerance::OUTPUT
    }
}

pub(super) fn run_layer(fx: &Fixture, chk: &mut Checker) -> Result<()> {
    let mut cfg = RnnConfig::lstm(
        fx.arg_usize("input_size", 0),
        fx.arg_usize("hidden_size", 0),
    )
    .num_layers(fx.arg_usize("num_layers", 1))
    .bias(fx.arg_bool("bias", true))
    .batch_first(fx.arg_bool("batch_first", false))
    .bidirectional(fx.arg_bool("bidirectional", false))
    .proj_size(fx.arg_usize("proj_size", 0));
    cfg.mode = mode(fx);
    let mut rnn = cfg.build(&mut seeded_rng(0))?;
    load_params(&mut rnn, |name| fx.tensor(name).ok())?;

    let input = fx.tensor("input")?;
    let lengths: Option<Vec<usize>> = if fx.has("lengths") {
        Some(fx.ints("lengths")?.1.iter().map(|&l| l as usize).collect())
    } else {
        None
    };
    let h0 = fx.tensor_opt("h0")?;
    let state = h0.map(|h| RnnState {
        h,
        c: fx.tensor_opt("c0").ok().flatten(),
    });
    let (out, cache) = rnn.forward_train(
        &input,
        lengths.as_deref(),
        state.as_ref(),
        &mut seeded_rng(0),
    )?;

    // The inference path must agree with the training path exactly.
    let infer = rnn.forward(&input, lengths.as_deref(), state.as_ref())?;
    if infer != out {
        return Err(recur::Error::tensor(
            "conformance",
            "output",
            "inference forward differs from training forward",
        ));
    }

    chk.tensor("output", &out.output, Tolerance::OUTPUT)?;
    chk.tensor("h_n", &out.h_n, Tolerance::OUTPUT)?;
    if let Some(c_n) = &out.c_n {
        chk.tensor("c_n", c_n, Tolerance::OUTPUT)?;
    }

    let grads = rnn.backward(
        &cache,
        fx.tensor_opt("grad_output")?.as_ref(),
        fx.tensor_opt("grad_h_n")?.as_ref(),
        fx.tensor_opt("grad_c_n")?.as_ref(),
    )?;
    let tol = grad_tolerance(fx);
    chk.tensor("grad.input", &grads.input, tol)?;
    if fx.has("grad.h0") {
        chk.tensor("grad.h0", &grads.h0, tol)?;
    }
    if let (true, Some(c0)) = (fx.has("grad.c0"), &grads.c0) {
        chk.tensor("grad.c0", c0, tol)?;
    }
    chk.param_grads(rnn.params(), tol)
}

pub(super) fn run_cell(fx: &Fixture, chk: &mut Checker) -> Result<()> {
    let m = mode(fx);
    let mut cell = RnnCell::new(
        m,
        fx.arg_usize("input_size", 0),
        fx.arg_usize("hidden_size", 0),
        fx.arg_bool("bias", true),
        &mut seeded_rng(0),
    )?;
    load_params(&mut cell, |name| fx.tensor(name).ok())?;
    let input = fx.tensor("input")?;
    let h0 = fx.tensor_opt("h0")?;
    let c0 = fx.tensor_opt("c0")?;
    let (h1, c1, cache) = cell.forward_train(&input, h0.as_ref(), c0.as_ref())?;
    chk.tensor("h1", &h1, Tolerance::OUTPUT)?;
    if let Some(c1) = &c1 {
        chk.tensor("c1", c1, Tolerance::OUTPUT)?;
    }
    let g = cell.backward(
        &cache,
        fx.tensor_opt("grad_h1")?.as_ref(),
        fx.tensor_opt("grad_c1")?.as_ref(),
    )?;
    chk.tensor("grad.input", &g.input, Tolerance::OUTPUT)?;
    if fx.has("grad.h0") {
        chk.tensor("grad.h0", &g.h0, Tolerance::OUTPUT)?;
    }
    if let (true, Some(c0)) = (fx.has("grad.c0"), &g.c0) {
        chk.tensor("grad.c0", c0, Tolerance::OUTPUT)?;
    }
    chk.param_grads(cell.params(), Tolerance::OUTPUT)
}
