//! Inverted dropout (`torch.nn.Dropout`): in training each element survives with probability
//! `1 - p` and is scaled by `1 / (1 - p)`; in eval it is the identity.
//!
//! The mask holds the scaled multipliers (`0` or `1/(1-p)`), so forward is `x * mask` and
//! backward is `grad * mask`; layers that drop out internally (between RNN layers) keep the mask.

use rand::Rng;

use crate::error::{Error, Result};
use crate::module::Rng64;
use crate::tensor::Tensor;

/// Dropout with probability `p`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    p: f32,
}

impl Dropout {
    /// Dropout with probability `p` in `[0, 1]`.
    pub fn new(p: f32) -> Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::arg(
                "Dropout::new",
                "p",
                "a probability in [0, 1]",
                p,
            ));
        }
        Ok(Dropout { p })
    }

    /// The drop probability.
    pub fn p(&self) -> f32 {
        self.p
    }

    /// Whether dropout changes anything: training mode and `p > 0`.
    pub fn is_active(&self, training: bool) -> bool {
        training && self.p > 0.0
    }

    /// Fills `mask` with multipliers: `0` with probability `p`, else `1 / (1 - p)`.
    pub fn fill_mask(&self, mask: &mut [f32], rng: &mut Rng64) {
        if self.p >= 1.0 {
            // PyTorch returns zeros for p = 1 (the scale would be infinite).
            mask.fill(0.0);
            return;
        }
        let scale = 1.0 / (1.0 - self.p);
        for m in mask {
            *m = if rng.gen::<f32>() < self.p {
                0.0
            } else {
                scale
            };
        }
    }

    /// Applies dropout to `x` in place and returns the mask, or `None` (identity) when inactive.
    pub fn forward_inplace(
        &self,
        x: &mut [f32],
        training: bool,
        rng: &mut Rng64,
    ) -> Option<Vec<f32>> {
        if !self.is_active(training) {
            return None;
        }
        let mut mask = vec![0.0; x.len()];
        self.fill_mask(&mut mask, rng);
        apply_mask(x, &mask);
        Some(mask)
    }

    /// Forward: `x` any shape → same shape, plus the mask (`None` when inactive) for backward.
    pub fn forward(
        &self,
        x: &Tensor,
        training: bool,
        rng: &mut Rng64,
    ) -> (Tensor, Option<Vec<f32>>) {
        let mut y = x.clone();
        let mask = self.forward_inplace(y.data_mut(), training, rng);
        (y, mask)
    }

    /// Backward: `grad` any shape → `grad * mask` (identity when `mask` is `None`).
    pub fn backward(grad: &Tensor, mask: Option<&[f32]>) -> Result<Tensor> {
        let mut g = grad.clone();
        if let Some(m) = mask {
            if m.len() != g.numel() {
                return Err(Error::shape(
                    "Dropout.backward",
                    format!("a mask of {} elements", g.numel()),
                    format!("{} elements", m.len()),
                ));
            }
            apply_mask(g.data_mut(), m);
        }
        Ok(g)
    }
}

/// `x *= mask` elementwise (forward and backward of dropout alike); lengths must match.
pub fn apply_mask(x: &mut [f32], mask: &[f32]) {
    debug_assert_eq!(x.len(), mask.len());
    for (v, &m) in x.iter_mut().zip(mask) {
        *v *= m;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module::seeded_rng;

    #[test]
    fn training_drops_about_p_and_preserves_the_mean() {
        let mut rng = seeded_rng(11);
        let d = Dropout::new(0.3).unwrap();
        let x = Tensor::full(&[100_000], 1.0);
        let (y, mask) = d.forward(&x, true, &mut rng);
        let mask = mask.unwrap();
        let dropped = y.data().iter().filter(|&&v| v == 0.0).count() as f64 / 1e5;
        assert!((dropped - 0.3).abs() < 0.01, "dropped {dropped}");
        let mean = y.data().iter().map(|&v| v as f64).sum::<f64>() / 1e5;
        assert!((mean - 1.0).abs() < 0.02, "mean {mean}");
        assert!(y
            .data()
            .iter()
            .all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
        // Backward multiplies by the same mask.
        let g = Dropout::backward(&Tensor::full(&[100_000], 2.0), Some(&mask)).unwrap();
        for (a, b) in g.data().iter().zip(y.data()) {
            assert_eq!(*a, 2.0 * b);
        }
    }

    #[test]
    fn eval_is_identity_and_p_one_zeroes() {
        let mut rng = seeded_rng(12);
        let x = Tensor::from_vec(&[2, 2], vec![1., -2., 3., 4.]).unwrap();
        let (y, m) = Dropout::new(0.5).unwrap().forward(&x, false, &mut rng);
        assert_eq!((y, m), (x.clone(), None));
        let (y, m) = Dropout::new(0.0).unwrap().forward(&x, true, &mut rng);
        assert_eq!((y, m), (x.clone(), None));
        let (y, m) = Dropout::new(1.0).unwrap().forward(&x, true, &mut rng);
        assert!(y.data().iter().all(|&v| v == 0.0));
        assert_eq!(m.unwrap(), [0.0; 4]);
    }

    #[test]
    fn same_seed_same_mask_and_invalid_p() {
        let d = Dropout::new(0.5).unwrap();
        let (mut a, mut b) = (vec![0.0; 64], vec![0.0; 64]);
        d.fill_mask(&mut a, &mut seeded_rng(5));
        d.fill_mask(&mut b, &mut seeded_rng(5));
        assert_eq!(a, b);
        for p in [-0.1, 1.5, f32::NAN] {
            assert!(Dropout::new(p).is_err());
        }
        assert!(Dropout::backward(&Tensor::zeros(&[3]), Some(&[1.0; 2])).is_err());
    }
}
