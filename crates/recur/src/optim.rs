//! Optimizers with PyTorch's exact update rules (`torch.optim.SGD`, `Adam`, `AdamW`, single-tensor
//! path, `maximize=False`, `amsgrad=False`) and `torch.nn.utils.clip_grad_norm_`.
//!
//! State is keyed by parameter name and exported as named tensors (`step.<name>`,
//! `exp_avg.<name>`, `exp_avg_sq.<name>`, `momentum_buffer.<name>`), so a checkpoint resumes
//! training bit-exactly.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::module::Param;
use crate::tensor::{fmt_shape, Tensor};

/// A first-order optimizer over named parameters.
pub trait Optimizer {
    /// Applies one update to every parameter from its `grad` (gradients are left untouched).
    fn step(&mut self, params: &mut [&mut Param]) -> Result<()>;
    /// The current learning rate.
    fn lr(&self) -> f32;
    /// Sets the learning rate (for schedulers).
    fn set_lr(&mut self, lr: f32);
    /// The per-parameter state as named tensors (sorted by name).
    fn state_dict(&self) -> Vec<(String, Tensor)>;
    /// Replaces the state with one exported by [`Optimizer::state_dict`].
    fn load_state_dict(&mut self, state: &[(String, Tensor)]) -> Result<()>;
}

fn check_non_negative(op: &'static str, arg: &'static str, v: f32) -> Result<()> {
    if v >= 0.0 {
        Ok(())
    } else {
        Err(Error::arg(op, arg, ">= 0", v))
    }
}

/// Checks that names are unique (state is keyed by name) and that each grad matches its value.
fn check_params(op: &'static str, params: &[&mut Param]) -> Result<()> {
    let mut seen = HashSet::with_capacity(params.len());
    for p in params {
        if !seen.insert(p.name.as_str()) {
            return Err(Error::tensor(
                op,
                p.name.clone(),
                "parameter name is not unique",
            ));
        }
        if p.grad.shape() != p.value.shape() {
            return Err(Error::shape(
                op,
                format!("grad of `{}` shaped {}", p.name, fmt_shape(p.value.shape())),
                fmt_shape(p.grad.shape()),
            ));
        }
    }
    Ok(())
}

fn check_state_shape(op: &'static str, p: &Param, key: &str, t: &Tensor) -> Result<()> {
    if t.shape() != p.value.shape() {
        return Err(Error::tensor(
            op,
            format!("{key}.{}", p.name),
            format!(
                "state shaped {} does not match parameter {}",
                fmt_shape(t.shape()),
                fmt_shape(p.value.shape())
            ),
        ));
    }
    Ok(())
}

/// Splits `kind.param_name` on the first dot; errors on a kind outside `kinds`.
fn split_key<'a>(op: &'static str, key: &'a str, kinds: &[&str]) -> Result<(&'a str, &'a str)> {
    match key.split_once('.') {
        Some((k, name)) if kinds.contains(&k) => Ok((k, name)),
        _ => Err(Error::tensor(
            op,
            key,
            format!("unexpected optimizer state (expected one of {kinds:?} + `.<param>`)"),
        )),
    }
}

fn step_tensor(step: u64) -> Tensor {
    // PyTorch also keeps `step` as a float32 tensor: exact up to 2^24 steps.
    Tensor::full(&[1], step as f32)
}

fn parse_step(op: &'static str, key: &str, t: &Tensor) -> Result<u64> {
    match t.data() {
        [s] if *s >= 0.0 && s.fract() == 0.0 => Ok(*s as u64),
        _ => Err(Error::tensor(
            op,
            key,
            "expected one non-negative integer step",
        )),
    }
}

/// `torch.optim.SGD` hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f32,
    /// Momentum factor (0 = plain SGD).
    pub momentum: f32,
    /// Dampening for momentum.
    pub dampening: f32,
    /// Nesterov momentum (needs `momentum > 0` and `dampening == 0`).
    pub nesterov: bool,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

/// SGD with momentum, exactly as `torch.optim.SGD`.
#[derive(Clone, Debug)]
pub struct Sgd {
    cfg: SgdConfig,
    momentum_buffer: BTreeMap<String, Tensor>,
}

impl Sgd {
    /// Validates the hyper-parameters like PyTorch.
    pub fn new(cfg: SgdConfig) -> Result<Self> {
        let op = "Sgd::new";
        check_non_negative(op, "lr", cfg.lr)?;
        check_non_negative(op, "momentum", cfg.momentum)?;
        check_non_negative(op, "weight_decay", cfg.weight_decay)?;
        if !cfg.dampening.is_finite() {
            return Err(Error::arg(
                op,
                "dampening",
                "a finite number",
                cfg.dampening,
            ));
        }
        if cfg.nesterov && (cfg.momentum <= 0.0 || cfg.dampening != 0.0) {
            return Err(Error::arg(
                op,
                "nesterov",
                "momentum > 0 and dampening = 0",
                format!("momentum {} dampening {}", cfg.momentum, cfg.dampening),
            ));
        }
        Ok(Sgd {
            cfg,
            momentum_buffer: BTreeMap::new(),
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &SgdConfig {
        &self.cfg
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &mut [&mut Param]) -> Result<()> {
        let op = "Sgd.step";
        check_params(op, params)?;
        for p in params.iter() {
            if let Some(b) = self.momentum_buffer.get(&p.name) {
                check_state_shape(op, p, "momentum_buffer", b)?;
            }
        }
        let c = &self.cfg;
        let mut d = Vec::new();
        for p in params.iter_mut() {
            p.touch();
            // d = grad + wd * param
            d.clear();
            d.extend_from_slice(p.grad.data());
            if c.weight_decay != 0.0 {
                for (g, &w) in d.iter_mut().zip(p.value.data()) {
                    *g += c.weight_decay * w;
                }
            }
            if c.momentum != 0.0 {
                match self.momentum_buffer.get_mut(&p.name) {
                    // The first step copies the gradient: no dampening.
                    None => {
                        let buf = Tensor::from_vec(p.value.shape(), d.clone())?;
                        self.momentum_buffer.insert(p.name.clone(), buf);
                    }
                    Some(buf) => {
                        for (b, &g) in buf.data_mut().iter_mut().zip(&d) {
                            *b = *b * c.momentum + (1.0 - c.dampening) * g;
                        }
                    }
                }
                let buf = self.momentum_buffer[&p.name].data();
                if c.nesterov {
                    for (g, &b) in d.iter_mut().zip(buf) {
                        *g += c.momentum * b;
                    }
                } else {
                    d.copy_from_slice(buf);
                }
            }
            for (w, &g) in p.value.data_mut().iter_mut().zip(&d) {
                *w += -c.lr * g;
            }
        }
        Ok(())
    }

    fn lr(&self) -> f32 {
        self.cfg.lr
    }

    fn set_lr(&mut self, lr: f32) {
        self.cfg.lr = lr;
    }

    fn state_dict(&self) -> Vec<(String, Tensor)> {
        self.momentum_buffer
            .iter()
            .map(|(n, t)| (format!("momentum_buffer.{n}"), t.clone()))
            .collect()
    }

    fn load_state_dict(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let mut bufs = BTreeMap::new();
        for (key, t) in state {
            let (_, name) = split_key("Sgd.load_state_dict", key, &["momentum_buffer"])?;
            bufs.insert(name.to_string(), t.clone());
        }
        self.momentum_buffer = bufs;
        Ok(())
    }
}

/// `torch.optim.Adam` / `AdamW` hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f32,
    /// Decay rates of the first and second moment estimates.
    pub betas: (f32, f32),
    /// Added to the denominator for numerical stability.
    pub eps: f32,
    /// Adam: L2 penalty added to the gradient; AdamW: decoupled decay `param *= 1 - lr * wd`.
    pub weight_decay: f32,
}

impl Default for AdamConfig {
    /// PyTorch's Adam defaults (AdamW's default decay is 1e-2, see [`AdamW::default_config`]).
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

#[derive(Clone, Debug)]
struct AdamState {
    step: u64,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

/// The shared implementation of Adam and AdamW.
#[derive(Clone, Debug)]
struct AdamCore {
    cfg: AdamConfig,
    decoupled: bool,
    state: BTreeMap<String, AdamState>,
}

/// `torch.lerp` on f32, with its two formulas chosen by the weight (for bit-exactness).
#[inline]
fn lerp(start: f32, end: f32, weight: f32) -> f32 {
    if weight.abs() < 0.5 {
        start + weight * (end - start)
    } else {
        end - (end - start) * (1.0 - weight)
    }
}

impl AdamCore {
    fn new(op: &'static str, cfg: AdamConfig, decoupled: bool) -> Result<Self> {
        check_non_negative(op, "lr", cfg.lr)?;
        check_non_negative(op, "eps", cfg.eps)?;
        check_non_negative(op, "weight_decay", cfg.weight_decay)?;
        for (arg, b) in [("betas.0", cfg.betas.0), ("betas.1", cfg.betas.1)] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::arg(op, "betas", format!("{arg} in [0, 1)"), b));
            }
        }
        Ok(AdamCore {
            cfg,
            decoupled,
            state: BTreeMap::new(),
        })
    }

    fn step(&mut self, op: &'static str, params: &mut [&mut Param]) -> Result<()> {
        check_params(op, params)?;
        for p in params.iter() {
            if let Some(s) = self.state.get(&p.name) {
                check_state_shape(op, p, "exp_avg", &s.exp_avg)?;
                check_state_shape(op, p, "exp_avg_sq", &s.exp_avg_sq)?;
            }
        }
        let AdamConfig {
            lr,
            betas: (beta1, beta2),
            eps,
            weight_decay,
        } = self.cfg;
        for p in params.iter_mut() {
            let s = self
                .state
                .entry(p.name.clone())
                .or_insert_with(|| AdamState {
                    step: 0,
                    exp_avg: Tensor::zeros(p.value.shape()),
                    exp_avg_sq: Tensor::zeros(p.value.shape()),
                });
            s.step += 1;
            p.touch();
            if self.decoupled {
                let decay = 1.0 - lr * weight_decay;
                for w in p.value.data_mut() {
                    *w *= decay;
                }
            }
            // PyTorch computes the bias corrections as Python floats (f64).
            let step = s.step as f64;
            let bias_correction1 = 1.0 - (beta1 as f64).powf(step);
            let bias_correction2 = 1.0 - (beta2 as f64).powf(step);
            let step_size = (lr as f64 / bias_correction1) as f32;
            let bc2_sqrt = bias_correction2.sqrt() as f32;
            let l2 = if self.decoupled { 0.0 } else { weight_decay };
            let it = p
                .value
                .data_mut()
                .iter_mut()
                .zip(p.grad.data())
                .zip(s.exp_avg.data_mut().iter_mut().zip(s.exp_avg_sq.data_mut()));
            for ((w, &g), (m, v)) in it {
                let g = if l2 != 0.0 { g + l2 * *w } else { g };
                *m = lerp(*m, g, 1.0 - beta1);
                *v = *v * beta2 + (1.0 - beta2) * g * g;
                let denom = v.sqrt() / bc2_sqrt + eps;
                *w += -step_size * (*m / denom);
            }
        }
        Ok(())
    }

    fn state_dict(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(3 * self.state.len());
        for (n, s) in &self.state {
            out.push((format!("exp_avg.{n}"), s.exp_avg.clone()));
            out.push((format!("exp_avg_sq.{n}"), s.exp_avg_sq.clone()));
            out.push((format!("step.{n}"), step_tensor(s.step)));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn load_state_dict(&mut self, op: &'static str, state: &[(String, Tensor)]) -> Result<()> {
        type Parts = (Option<u64>, Option<Tensor>, Option<Tensor>);
        let mut parts: BTreeMap<&str, Parts> = BTreeMap::new();
        for (key, t) in state {
            let (kind, name) = split_key(op, key, &["step", "exp_avg", "exp_avg_sq"])?;
            let e = parts.entry(name).or_default();
            match kind {
                "step" => e.0 = Some(parse_step(op, key, t)?),
                "exp_avg" => e.1 = Some(t.clone()),
                _ => e.2 = Some(t.clone()),
            }
        }
        let mut new = BTreeMap::new();
        for (name, p) in parts {
            match p {
                (Some(step), Some(exp_avg), Some(exp_avg_sq)) => {
                    if exp_avg.shape() != exp_avg_sq.shape() {
                        return Err(Error::tensor(
                            op,
                            format!("exp_avg_sq.{name}"),
                            "shape differs from exp_avg",
                        ));
                    }
                    new.insert(
                        name.to_string(),
                        AdamState {
                            step,
                            exp_avg,
                            exp_avg_sq,
                        },
                    );
                }
                _ => {
                    return Err(Error::tensor(
                        op,
                        name,
                        "needs step, exp_avg and exp_avg_sq together",
                    ))
                }
            }
        }
        self.state = new;
        Ok(())
    }
}

/// Adam with L2 weight decay added to the gradient, exactly as `torch.optim.Adam`.
#[derive(Clone, Debug)]
pub struct Adam(AdamCore);

impl Adam {
    /// Validates the hyper-parameters like PyTorch.
    pub fn new(cfg: AdamConfig) -> Result<Self> {
        AdamCore::new("Adam::new", cfg, false).map(Adam)
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamConfig {
        &self.0.cfg
    }
}

/// Adam with decoupled weight decay, exactly as `torch.optim.AdamW`.
#[derive(Clone, Debug)]
pub struct AdamW(AdamCore);

impl AdamW {
    /// Validates the hyper-parameters like PyTorch.
    pub fn new(cfg: AdamConfig) -> Result<Self> {
        AdamCore::new("AdamW::new", cfg, true).map(AdamW)
    }

    /// PyTorch's AdamW defaults: Adam's, with `weight_decay = 1e-2`.
    pub fn default_config() -> AdamConfig {
        AdamConfig {
            weight_decay: 1e-2,
            ..AdamConfig::default()
        }
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &AdamConfig {
        &self.0.cfg
    }
}

/// Adam and AdamW share [`AdamCore`]; only the update rule's name differs.
macro_rules! adam_optimizer {
    ($ty:ident, $name:literal) => {
        impl Optimizer for $ty {
            fn step(&mut self, params: &mut [&mut Param]) -> Result<()> {
                self.0.step(concat!($name, ".step"), params)
            }
            fn lr(&self) -> f32 {
                self.0.cfg.lr
            }
            fn set_lr(&mut self, lr: f32) {
                self.0.cfg.lr = lr;
            }
            fn state_dict(&self) -> Vec<(String, Tensor)> {
                self.0.state_dict()
            }
            fn load_state_dict(&mut self, state: &[(String, Tensor)]) -> Result<()> {
                self.0
                    .load_state_dict(concat!($name, ".load_state_dict"), state)
            }
        }
    };
}

adam_optimizer!(Adam, "Adam");
adam_optimizer!(AdamW, "AdamW");

/// `torch.nn.utils.clip_grad_norm_` with `norm_type = 2`: scales every gradient by
/// `max_norm / (total_norm + 1e-6)` when that is below 1, and returns the total norm (over all
/// gradients, before clipping). A non-finite total norm leaves the gradients unchanged.
pub fn clip_grad_norm(params: &mut [&mut Param], max_norm: f32) -> f32 {
    let mut lanes = [0f64; SUM_LANES];
    for p in params.iter() {
        add_squares(&mut lanes, p.grad.data());
    }
    let total = lanes.iter().sum::<f64>().sqrt() as f32;
    let clip_coef = max_norm / (total + 1e-6);
    if clip_coef < 1.0 {
        for p in params.iter_mut() {
            for g in p.grad.data_mut() {
                *g *= clip_coef;
            }
        }
    }
    total
}

/// Independent partial sums of [`clip_grad_norm`]: one f64 chain over millions of gradients
/// waits on the adder's latency at every element (6 ms a step for w3's 7 million); eight
/// chains, a fixed element-to-lane assignment, give the same bits at every run.
const SUM_LANES: usize = 8;

/// Adds the squares of `values` to `lanes` (f64: a sum of many squares loses digits in f32),
/// element `i` of every `SUM_LANES`-wide chunk to lane `i`; the tail to the first lanes.
fn add_squares(lanes: &mut [f64; SUM_LANES], values: &[f32]) {
    let mut chunks = values.chunks_exact(SUM_LANES);
    for chunk in &mut chunks {
        for (lane, &g) in lanes.iter_mut().zip(chunk) {
            *lane += f64::from(g) * f64::from(g);
        }
    }
    for (lane, &g) in lanes.iter_mut().zip(chunks.remainder()) {
        *lane += f64::from(g) * f64::from(g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(name: &str, vals: &[f32]) -> Param {
        Param::new(
            name,
            Tensor::from_vec(&[vals.len()], vals.to_vec()).unwrap(),
        )
    }

    fn set_grad(p: &mut Param, step: usize) {
        for (i, g) in p.grad.data_mut().iter_mut().enumerate() {
            *g = ((i * 3 + step * 5) % 7) as f32 * 0.1 - 0.3;
        }
    }

    /// Runs `steps` steps on two params and returns their values.
    fn run(opt: &mut dyn Optimizer, ps: &mut [Param], steps: std::ops::Range<usize>) {
        for s in steps {
            for p in ps.iter_mut() {
                set_grad(p, s);
            }
            let mut refs: Vec<&mut Param> = ps.iter_mut().collect();
            opt.step(&mut refs).unwrap();
        }
    }

    fn params() -> Vec<Param> {
        vec![
            param("a", &[0.5, -1.0, 2.0]),
            param("b.weight", &[0.1, 0.2]),
        ]
    }

    #[test]
    fn sgd_matches_hand_computation() {
        // momentum 0.9, dampening 0.5, wd 0.1, lr 0.1: first step buf = d, then buf*m + (1-damp)*d.
        let cfg = SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.5,
            weight_decay: 0.1,
            nesterov: false,
        };
        let mut opt = Sgd::new(cfg).unwrap();
        let mut p = param("w", &[1.0]);
        p.grad.data_mut()[0] = 0.5;
        opt.step(&mut [&mut p]).unwrap();
        let d1 = 0.5 + 0.1 * 1.0;
        let w1 = 1.0 - 0.1 * d1;
        assert!((p.value.data()[0] - w1).abs() < 1e-7);
        opt.step(&mut [&mut p]).unwrap();
        let d2 = 0.5 + 0.1 * w1;
        let buf = 0.9 * d1 + 0.5 * d2;
        assert!((p.value.data()[0] - (w1 - 0.1 * buf)).abs() < 1e-7);
    }

    #[test]
    fn adam_first_step_moves_by_lr() {
        // With bias correction the first Adam step is lr * g / (|g| + eps') = ±lr.
        let mut opt = Adam::new(AdamConfig {
            lr: 0.01,
            ..Default::default()
        })
        .unwrap();
        let mut p = param("w", &[1.0, 1.0]);
        p.grad.data_mut().copy_from_slice(&[3.0, -0.2]);
        opt.step(&mut [&mut p]).unwrap();
        assert!((p.value.data()[0] - 0.99).abs() < 1e-6);
        assert!((p.value.data()[1] - 1.01).abs() < 1e-6);
        // AdamW with a zero gradient only decays.
        let mut opt = AdamW::new(AdamConfig {
            lr: 0.1,
            weight_decay: 0.5,
            ..Default::default()
        })
        .unwrap();
        let mut p = param("w", &[2.0]);
        opt.step(&mut [&mut p]).unwrap();
        assert!((p.value.data()[0] - 1.9).abs() < 1e-6);
    }

    #[test]
    fn state_round_trip_gives_identical_next_steps() {
        let sgd = SgdConfig {
            lr: 0.05,
            momentum: 0.5,
            nesterov: true,
            ..Default::default()
        };
        let adam = AdamConfig {
            lr: 0.01,
            weight_decay: 0.01,
            ..Default::default()
        };
        let makers: Vec<Box<dyn Fn() -> Box<dyn Optimizer>>> = vec![
            Box::new(move || Box::new(Sgd::new(sgd).unwrap())),
            Box::new(move || Box::new(Adam::new(adam).unwrap())),
            Box::new(move || Box::new(AdamW::new(adam).unwrap())),
        ];
        for make in makers {
            let mut a = make();
            let mut pa = params();
            run(a.as_mut(), &mut pa, 0..3);
            let state = a.state_dict();
            assert!(!state.is_empty());
            let mut b = make();
            b.load_state_dict(&state).unwrap();
            let mut pb = pa.clone();
            run(a.as_mut(), &mut pa, 3..6);
            run(b.as_mut(), &mut pb, 3..6);
            for (x, y) in pa.iter().zip(&pb) {
                assert_eq!(x.value, y.value, "{}", x.name);
            }
            // A fresh optimizer (no state) diverges: the state matters.
            let mut c = make();
            let mut pc = pb.clone();
            let mut pd = pb.clone();
            run(c.as_mut(), &mut pc, 6..7);
            run(b.as_mut(), &mut pd, 6..7);
            assert_ne!(pc[0].value, pd[0].value);
        }
    }

    #[test]
    fn adam_state_names() {
        let mut opt = Adam::new(AdamConfig::default()).unwrap();
        let mut ps = params();
        run(&mut opt, &mut ps, 0..2);
        let names: Vec<_> = opt.state_dict().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "exp_avg.a",
                "exp_avg.b.weight",
                "exp_avg_sq.a",
                "exp_avg_sq.b.weight",
                "step.a",
                "step.b.weight"
            ]
        );
        assert_eq!(opt.state_dict()[4].1.data(), [2.0]);
    }

    #[test]
    fn invalid_args_and_state_are_errors() {
        assert!(Sgd::new(SgdConfig {
            lr: -1.0,
            ..Default::default()
        })
        .is_err());
        assert!(Sgd::new(SgdConfig {
            nesterov: true,
            ..Default::default()
        })
        .is_err());
        assert!(Adam::new(AdamConfig {
            betas: (1.0, 0.9),
            ..Default::default()
        })
        .is_err());
        assert!(AdamW::new(AdamConfig {
            eps: -1.0,
            ..Default::default()
        })
        .is_err());
        assert!(Adam::new(AdamConfig {
            lr: f32::NAN,
            ..Default::default()
        })
        .is_err());
        let mut opt = Adam::new(AdamConfig::default()).unwrap();
        assert!(opt
            .load_state_dict(&[("exp_avg.a".into(), Tensor::zeros(&[3]))])
            .is_err());
        assert!(opt
            .load_state_dict(&[("bogus.a".into(), Tensor::zeros(&[3]))])
            .is_err());
        // State of the wrong shape is caught at step time.
        opt.load_state_dict(&[
            ("exp_avg.a".into(), Tensor::zeros(&[2])),
            ("exp_avg_sq.a".into(), Tensor::zeros(&[2])),
            ("step.a".into(), Tensor::full(&[1], 1.0)),
        ])
        .unwrap();
        let mut ps = params();
        let mut refs: Vec<&mut Param> = ps.iter_mut().collect();
        assert!(opt.step(&mut refs).is_err());
        // Duplicate names would share state.
        let (mut x, mut y) = (param("w", &[1.0]), param("w", &[2.0]));
        assert!(Sgd::new(SgdConfig::default())
            .unwrap()
            .step(&mut [&mut x, &mut y])
            .is_err());
    }

    #[test]
    fn config_serde_defaults() {
        let c: AdamConfig = serde_json::from_str(r#"{"lr": 0.1, "betas": [0.8, 0.9]}"#).unwrap();
        assert_eq!(c.betas, (0.8, 0.9));
        assert_eq!(c.eps, 1e-8);
        let s: SgdConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(s, SgdConfig::default());
    }

    #[test]
    fn clip_grad_norm_scales_only_above_max() {
        let mut a = param("a", &[0.0, 0.0]);
        let mut b = param("b", &[0.0]);
        a.grad.data_mut().copy_from_slice(&[3.0, 0.0]);
        b.grad.data_mut()[0] = 4.0;
        let n = clip_grad_norm(&mut [&mut a, &mut b], 10.0);
        assert_eq!(n, 5.0);
        assert_eq!(a.grad.data(), [3.0, 0.0]);
        let n = clip_grad_norm(&mut [&mut a, &mut b], 1.0);
        assert_eq!(n, 5.0);
        let total = (a.grad.data()[0].powi(2) + b.grad.data()[0].powi(2)).sqrt();
        assert!((total - 1.0).abs() < 1e-5, "{total}");
    }

    #[test]
    fn clip_grad_norm_lanes_give_the_plain_sum() {
        // Odd lengths put elements in every lane and in the tails.
        let mut ps: Vec<Param> = [13usize, 1, 29]
            .iter()
            .enumerate()
            .map(|(i, &n)| param(&format!("p{i}"), &vec![0.0; n]))
            .collect();
        let mut plain = 0f64;
        for (i, p) in ps.iter_mut().enumerate() {
            for (j, g) in p.grad.data_mut().iter_mut().enumerate() {
                *g = ((i * 31 + j * 7) % 17) as f32 * 0.37 - 2.5;
                plain += f64::from(*g) * f64::from(*g);
            }
        }
        let mut refs: Vec<&mut Param> = ps.iter_mut().collect();
        let n = clip_grad_norm(&mut refs, f32::INFINITY);
        assert_eq!(n, plain.sqrt() as f32);
    }
}
