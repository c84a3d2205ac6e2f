//! Optimizer cases (`param` stepped by `grad1..gradN`, compared with `param1..paramN`) and
//! gradient clipping (`clipped0/1`, `total_norm`).

use super::Checker;
use recur::error::{Error, Result};
use recur::fixture::{Fixture, Tolerance};
use recur::module::Param;
use recur::optim::{clip_grad_norm, Adam, AdamConfig, AdamW, Optimizer, Sgd, SgdConfig};

fn adam_config(fx: &Fixture, default_wd: f32) -> Result<AdamConfig> {
    let d = AdamConfig::default();
    let betas = match fx.case.get("betas") {
        None => d.betas,
        Some(v) => match v
            .as_array()
            .map(|a| a.iter().filter_map(|b| b.as_f64()).collect::<Vec<_>>())
        {
            Some(b) if b.len() == 2 => (b[0] as f32, b[1] as f32),
            _ => return Err(Error::arg("conformance", "betas", "[beta1, beta2]", v)),
        },
    };
    Ok(AdamConfig {
        lr: fx.arg_f64("lr", d.lr as f64) as f32,
        betas,
        eps: fx.arg_f64("eps", d.eps as f64) as f32,
        weight_decay: fx.arg_f64("weight_decay", default_wd as f64) as f32,
    })
}

pub(super) fn run_optimizer(fx: &Fixture, chk: &mut Checker) -> Result<()> {
    let mut opt: Box<dyn Optimizer> = match fx.kind() {
        "sgd" => {
            let d = SgdConfig::default();
            Box::new(Sgd::new(SgdConfig {
                lr: fx.arg_f64("lr", d.lr as f64) as f32,
                momentum: fx.arg_f64("momentum", d.momentum as f64) as f32,
                dampening: fx.arg_f64("dampening", d.dampening as f64) as f32,
                nesterov: fx.arg_bool("nesterov", d.nesterov),
                weight_decay: fx.arg_f64("weight_decay", d.weight_decay as f64) as f32,
            })?)
        }
        "adam" => Box::new(Adam::new(adam_config(fx, 0.0)?)?),
        _ => Box::new(AdamW::new(adam_config(
            fx,
            AdamW::default_config().weight_decay,
        )?)?),
    };
    let mut p = Param::new("param", fx.tensor("param")?);
    let steps = fx.arg_usize("steps", 0);
    if steps == 0 {
        return Err(Error::arg("conformance", "steps", ">= 1", steps));
    }
    for k in 1..=steps {
        p.grad = fx.tensor(&format!("grad{k}"))?;
        opt.step(&mut [&mut p])?;
        chk.tensor(&format!("param{k}"), &p.value, Tolerance::OUTPUT)?;
    }
    Ok(())
}

pub(super) fn run_clip(fx: &Fixture, chk: &mut Checker) -> Result<()> {
    let norm_type = fx.arg_f64("norm_type", 2.0);
    if norm_type != 2.0 {
        return Err(Error::arg("conformance", "norm_type", "2", norm_type));
    }
    let mut ps = Vec::new();
    for i in 0..2 {
        let g = fx.tensor(&format!("grad{i}"))?;
        let mut p = Param::new(format!("p{i}"), recur::tensor::Tensor::zeros(g.shape()));
        p.grad = g;
        ps.push(p);
    }
    let mut refs: Vec<&mut Param> = ps.iter_mut().collect();
    let total = clip_grad_norm(&mut refs, fx.arg_f64("max_norm", 1.0) as f32);
    chk.slice("total_norm", &[total], &[1], Tolerance::OUTPUT)?;
    for (i, p) in ps.iter().enumerate() {
        chk.tensor(&format!("clipped{i}"), &p.grad, Tolerance::OUTPUT)?;
    }
    Ok(())
}
