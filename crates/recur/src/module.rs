//! Parameters and the small [`Module`] trait that every layer implements.
//!
//! A [`Param`] owns its value and its gradient and carries its PyTorch `state_dict` name, so
//! optimizers, checkpoints and golden tests all address parameters the way PyTorch does.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;

use crate::tensor::Tensor;

/// The RNG used for initialisation and dropout: ChaCha8, portable and seedable.
pub type Rng64 = rand_chacha::ChaCha8Rng;

/// Where a new layer's first values come from: a seeded [`Rng64`] draws them as PyTorch's
/// initialisers do; [`Unset`] leaves them zero for parameters that are loaded right after.
pub trait Init {
    /// Fills `values` from U(-bound, bound).
    fn uniform(&mut self, values: &mut [f32], bound: f32);
    /// Fills `values` from N(0, 1).
    fn normal(&mut self, values: &mut [f32]);
}

impl Init for Rng64 {
    fn uniform(&mut self, values: &mut [f32], bound: f32) {
        for v in values {
            *v = self.gen_range(-bound..bound);
        }
    }

    /// Box–Muller (PyTorch's `normal_` init; the stream differs from torch's).
    fn normal(&mut self, values: &mut [f32]) {
        for v in values {
            // 1 - u lies in (0, 1], so the log is finite.
            let u1: f64 = 1.0 - self.gen::<f64>();
            let u2: f64 = self.gen::<f64>();
            *v = ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32;
        }
    }
}

/// No initial values: every parameter stays zero. For a model built only to have its
/// parameters loaded next ([`crate::transducer::Transducer::from_files`]): drawing en-g2p's
/// 3.2 million random values took a third of its load time.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unset;

impl Init for Unset {
    fn uniform(&mut self, _: &mut [f32], _: f32) {}
    fn normal(&mut self, _: &mut [f32]) {}
}

/// A seeded RNG: the same seed gives the same weights and dropout masks on every platform.
pub fn seeded_rng(seed: u64) -> Rng64 {
    use rand::SeedableRng;
    Rng64::seed_from_u64(seed)
}

/// A trainable tensor, its gradient (same shape; backward passes *add* into it) and its name.
#[derive(Clone, Debug)]
pub struct Param {
    /// The PyTorch `state_dict` name, e.g. `weight_ih_l0` or `encoder.rnn.bias_hh_l1_reverse`.
    pub name: String,
    /// The value.
    pub value: Tensor,
    /// The accumulated gradient.
    pub grad: Tensor,
    /// Which values `value` holds: unique to this parameter's current values (see
    /// [`Param::touch`]); packed weights record it to detect that they are stale.
    version: u64,
}

/// Source of [`Param`] versions: every new value gets a number never used before.
static NEXT_VERSION: AtomicU64 = AtomicU64::new(1);

impl Param {
    /// A parameter with a zero gradient.
    pub fn new(name: impl Into<String>, value: Tensor) -> Self {
        let grad = Tensor::zeros(value.shape());
        Param {
            name: name.into(),
            value,
            grad,
            version: NEXT_VERSION.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The version of the current values: changes at every [`Param::touch`].
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Records that `value` changed (optimizer steps and loads call it; so must any other code
    /// that writes `value`), so that weights packed from the old values are detected as stale.
    pub fn touch(&mut self) {
        self.version = NEXT_VERSION.fetch_add(1, Ordering::Relaxed);
    }

    /// A parameter drawn from U(-bound, bound), PyTorch's default for linear and recurrent layers.
    pub fn uniform(
        name: impl Into<String>,
        shape: &[usize],
        bound: f32,
        init: &mut impl Init,
    ) -> Self {
        let mut value = Tensor::zeros(shape);
        init.uniform(value.data_mut(), bound);
        Param::new(name, value)
    }
}

/// Folds `p`'s version into `stamp`: a fingerprint of the versions of a set of parameters
/// (start from 0), which changes when any of them is updated. Packed weights keep one.
pub fn mix_version(stamp: u64, p: &Param) -> u64 {
    (stamp ^ p.version)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(29)
}

/// A layer or model that owns parameters.
pub trait Module {
    /// Every parameter, in a fixed order.
    fn params(&self) -> Vec<&Param>;
    /// Every parameter, mutable, in the same order as [`Module::params`].
    fn params_mut(&mut self) -> Vec<&mut Param>;

    /// Sets every gradient to zero.
    fn zero_grad(&mut self) {
        for p in self.params_mut() {
            p.grad.zero_();
        }
    }

    /// Prepends `prefix` to every parameter name (`weight_ih_l0` → `encoder.rnn.weight_ih_l0`).
    fn prefix_names(&mut self, prefix: &str) {
        for p in self.params_mut() {
            p.name = format!("{prefix}{}", p.name);
        }
    }

    /// The number of trainable scalars.
    fn num_parameters(&self) -> usize {
        self.params().iter().map(|p| p.value.numel()).sum()
    }
}

/// Loads every parameter of `module` from `source` (name → tensor), checking shapes.
///
/// A parameter that `source` lacks, or whose shape differs, is an error naming it.
pub fn load_params<M: Module + ?Sized>(
    module: &mut M,
    mut source: impl FnMut(&str) -> Option<Tensor>,
) -> crate::Result<()> {
    for p in module.params_mut() {
        let t = source(&p.name)
            .ok_or_else(|| crate::Error::tensor("load_params", &p.name, "missing"))?;
        if t.shape() != p.value.shape() {
            return Err(crate::Error::tensor(
                "load_params",
                &p.name,
                format!(
                    "expected shape {}, got {}",
                    crate::tensor::fmt_shape(p.value.shape()),
                    crate::tensor::fmt_shape(t.shape())
                ),
            ));
        }
        p.value = t;
        p.touch();
    }
    Ok(())
}
