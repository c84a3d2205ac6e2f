//! `torch.nn.Linear`: `y = x · Wᵀ + b` over the last dimension, with its backward pass.

use crate::error::{Error, Result};
use crate::gemm::{matmul, matmul_packed, num_threads, PackedB, Trans};
use crate::module::{Init, Module, Param};
use crate::tensor::{fmt_shape, Tensor};

/// A fully connected layer with PyTorch's parameter names (`weight` `[out, in]`, `bias` `[out]`).
#[derive(Clone, Debug)]
pub struct Linear {
    /// `[out_features, in_features]`.
    pub weight: Param,
    /// `[out_features]`, when the layer has a bias.
    pub bias: Option<Param>,
}

impl Linear {
    /// A layer initialised like PyTorch: weight and bias from U(-1/√in, 1/√in).
    pub fn new(in_features: usize, out_features: usize, bias: bool, rng: &mut impl Init) -> Self {
        // PyTorch's kaiming_uniform_(a=√5) reduces to this bound; with no inputs there is no
        // fan-in and PyTorch leaves the bias bound at 0.
        let bound = if in_features > 0 {
            1.0 / (in_features as f32).sqrt()
        } else {
            0.0
        };
        let mut uniform = |name: &str, shape: &[usize]| {
            if bound > 0.0 {
                Param::uniform(name, shape, bound, rng)
            } else {
                Param::new(name, Tensor::zeros(shape))
            }
        };
        let weight = uniform("weight", &[out_features, in_features]);
        let bias = bias.then(|| uniform("bias", &[out_features]));
        Linear { weight, bias }
    }

    /// A layer from given values: `weight` `[out, in]`, `bias` `[out]`.
    pub fn from_params(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        if weight.rank() != 2 {
            return Err(Error::shape(
                "Linear::from_params",
                "weight of rank 2 (out, in)",
                fmt_shape(weight.shape()),
            ));
        }
        if let Some(b) = &bias {
            if b.shape() != [weight.dim(0)] {
                return Err(Error::shape(
                    "Linear::from_params",
                    format!("bias {}", fmt_shape(&[weight.dim(0)])),
                    fmt_shape(b.shape()),
                ));
            }
        }
        Ok(Linear {
            weight: Param::new("weight", weight),
            bias: bias.map(|b| Param::new("bias", b)),
        })
    }

    /// `in_features`.
    pub fn in_features(&self) -> usize {
        self.weight.value.dim(1)
    }

    /// `out_features`.
    pub fn out_features(&self) -> usize {
        self.weight.value.dim(0)
    }

    /// Number of rows of `x` `(..., in)`, checking its last dimension.
    fn rows_of(&self, op: &'static str, x: &Tensor) -> Result<usize> {
        let inf = self.in_features();
        if x.rank() == 0 || x.shape()[x.rank() - 1] != inf {
            return Err(Error::shape(
                op,
                format!("input (..., {inf})"),
                fmt_shape(x.shape()),
            ));
        }
        Ok(x.numel() / inf.max(1))
    }

    fn check_rows(
        &self,
        op: &'static str,
        what: &str,
        len: usize,
        rows: usize,
        width: usize,
    ) -> Result<()> {
        if len != rows * width {
            return Err(Error::shape(
                op,
                format!("{what} of {rows} x {width} = {} elements", rows * width),
                format!("{len} elements"),
            ));
        }
        Ok(())
    }

    /// Forward: `x` `(..., in)` → `(..., out)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let rows = self.rows_of("Linear.forward", x)?;
        let mut shape = x.shape().to_vec();
        *shape.last_mut().expect("rank checked") = self.out_features();
        let mut out = Tensor::zeros(&shape);
        self.forward_rows(x.data(), rows, out.data_mut())?;
        Ok(out)
    }

    /// Forward on raw rows without allocating: `x` `[rows, in]` → `out` `[rows, out]` (overwritten).
    pub fn forward_rows(&self, x: &[f32], rows: usize, out: &mut [f32]) -> Result<()> {
        self.forward_rows_with(None, x, rows, out)
    }

    /// The weight packed for [`Linear::forward_rows_with`] (`op = Wᵀ`): pack once, then run many
    /// forwards (decoder steps) without re-packing. Stale once the weight changes.
    pub fn pack(&self) -> PackedB {
        let (inf, outf) = (self.in_features(), self.out_features());
        PackedB::new(self.weight.value.data(), Trans::T, inf, outf)
    }

    /// [`Linear::forward_rows`] with the weight packed by [`Linear::pack`] when given (the same
    /// results, bit for bit); `None` packs it for this call.
    pub fn forward_rows_with(
        &self,
        packed: Option<&PackedB>,
        x: &[f32],
        rows: usize,
        out: &mut [f32],
    ) -> Result<()> {
        let (inf, outf) = (self.in_features(), self.out_features());
        self.check_rows("Linear.forward_rows", "x", x.len(), rows, inf)?;
        self.check_rows("Linear.forward_rows", "out", out.len(), rows, outf)?;
        if let Some(p) = packed {
            if (p.k(), p.n()) != (inf, outf) {
                return Err(Error::shape(
                    "Linear.forward_rows_with",
                    format!("a packed weight of {inf} x {outf}"),
                    format!("{} x {}", p.k(), p.n()),
                ));
            }
        }
        // Start from the bias so the GEMM adds x·Wᵀ in the same pass.
        let accumulate = match &self.bias {
            Some(b) => {
                for row in out.chunks_exact_mut(outf.max(1)) {
                    row.copy_from_slice(b.value.data());
                }
                true
            }
            None => false,
        };
        match packed {
            Some(p) => matmul_packed(out, x, Trans::N, p, rows, accumulate, num_threads()),
            None => matmul(
                out,
                x,
                Trans::N,
                self.weight.value.data(),
                Trans::T,
                rows,
                outf,
                inf,
                accumulate,
                num_threads(),
            ),
        }
        Ok(())
    }

    /// Backward for `x` `(..., in)` and `grad_out` `(..., out)`: adds into the weight and bias
    /// gradients and returns the gradient of `x` (same shape as `x`).
    pub fn backward(&mut self, x: &Tensor, grad_out: &Tensor) -> Result<Tensor> {
        let rows = self.rows_of("Linear.backward", x)?;
        let mut want = x.shape().to_vec();
        *want.last_mut().expect("rank checked") = self.out_features();
        if grad_out.shape() != want.as_slice() {
            return Err(Error::shape(
                "Linear.backward",
                format!("grad_out {}", fmt_shape(&want)),
                fmt_shape(grad_out.shape()),
            ));
        }
        let mut grad_in = Tensor::zeros(x.shape());
        self.backward_rows(x.data(), grad_out.data(), rows, Some(grad_in.data_mut()))?;
        Ok(grad_in)
    }

    /// Backward on raw rows without allocating: `x` `[rows, in]`, `grad_out` `[rows, out]`.
    /// Adds into the parameter gradients and, when given, ADDS the input gradient into `grad_in`
    /// `[rows, in]` (so callers can sum gradients from several consumers of `x`).
    pub fn backward_rows(
        &mut self,
        x: &[f32],
        grad_out: &[f32],
        rows: usize,
        grad_in: Option<&mut [f32]>,
    ) -> Result<()> {
        let (inf, outf) = (self.in_features(), self.out_features());
        let op = "Linear.backward_rows";
        self.check_rows(op, "x", x.len(), rows, inf)?;
        self.check_rows(op, "grad_out", grad_out.len(), rows, outf)?;
        if let Some(gi) = &grad_in {
            self.check_rows(op, "grad_in", gi.len(), rows, inf)?;
        }
        let threads = num_threads();
        // dW[out, in] += dYᵀ · X
        matmul(
            self.weight.grad.data_mut(),
            grad_out,
            Trans::T,
            x,
            Trans::N,
            outf,
            inf,
            rows,
            true,
            threads,
        );
        if let Some(b) = &mut self.bias {
            // Column sums of dY: a streaming pass, cheaper than a GEMM against a ones vector
            // (which would need an allocation).
            let gb = b.grad.data_mut();
            for row in grad_out.chunks_exact(outf.max(1)) {
                for (g, &d) in gb.iter_mut().zip(row) {
                    *g += d;
                }
            }
        }
        if let Some(gi) = grad_in {
            // dX[rows, in] += dY · W
            matmul(
                gi,
                grad_out,
                Trans::N,
                self.weight.value.data(),
                Trans::N,
                rows,
                inf,
                outf,
                true,
                threads,
            );
        }
        Ok(())
    }
}

impl Module for Linear {
    fn params(&self) -> Vec<&Param> {
        let mut v = vec![&self.weight];
        v.extend(self.bias.as_ref());
        v
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        let mut v = vec![&mut self.weight];
        v.extend(self.bias.as_mut());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module::seeded_rng;
    use rand::Rng;

    fn randn(shape: &[usize], rng: &mut crate::module::Rng64) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec(shape, (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()).unwrap()
    }

    /// Naive f64 forward, for reference.
    fn naive(l: &Linear, x: &[f64], rows: usize) -> Vec<f64> {
        let (inf, outf) = (l.in_features(), l.out_features());
        let w = l.weight.value.data();
        let mut y = vec![0.0; rows * outf];
        for r in 0..rows {
            for o in 0..outf {
                let mut s = l.bias.as_ref().map_or(0.0, |b| b.value.data()[o] as f64);
                for i in 0..inf {
                    s += x[r * inf + i] * w[o * inf + i] as f64;
                }
                y[r * outf + o] = s;
            }
        }
        y
    }

    #[test]
    fn init_bounds_and_names() {
        let mut rng = seeded_rng(1);
        let l = Linear::new(16, 3, true, &mut rng);
        let names: Vec<_> = l.params().iter().map(|p| p.name.clone()).collect();
        assert_eq!(names, ["weight", "bias"]);
        assert_eq!(l.weight.value.shape(), [3, 16]);
        let all = l
            .weight
            .value
            .data()
            .iter()
            .chain(l.bias.as_ref().unwrap().value.data());
        assert!(all.clone().all(|v| v.abs() <= 0.25));
        assert!(all.clone().any(|v| v.abs() > 0.15), "uses the full range");
        let l = Linear::new(0, 3, true, &mut rng);
        assert!(l.bias.unwrap().value.data().iter().all(|&v| v == 0.0));
    }

    #[test]
    fn forward_matches_naive_for_3d_and_1d() {
        let mut rng = seeded_rng(2);
        for bias in [true, false] {
            let l = Linear::new(5, 4, bias, &mut rng);
            let x = randn(&[2, 3, 5], &mut rng);
            let y = l.forward(&x).unwrap();
            assert_eq!(y.shape(), [2, 3, 4]);
            let xd: Vec<f64> = x.data().iter().map(|&v| v as f64).collect();
            for (a, b) in y.data().iter().zip(naive(&l, &xd, 6)) {
                assert!((*a as f64 - b).abs() < 1e-5);
            }
            let x1 = randn(&[5], &mut rng);
            assert_eq!(l.forward(&x1).unwrap().shape(), [4]);
        }
    }

    #[test]
    fn packed_forward_is_bit_identical() {
        let mut rng = seeded_rng(6);
        for (bias, rows) in [(true, 1), (false, 1), (true, 9)] {
            let l = Linear::new(300, 37, bias, &mut rng);
            let x = randn(&[rows, 300], &mut rng);
            let (mut a, mut b) = (vec![0.0; rows * 37], vec![1.0; rows * 37]);
            l.forward_rows(x.data(), rows, &mut a).unwrap();
            l.forward_rows_with(Some(&l.pack()), x.data(), rows, &mut b)
                .unwrap();
            assert_eq!(a, b, "bias {bias}, {rows} rows");
        }
        let l = Linear::new(300, 37, true, &mut rng);
        let wrong = Linear::new(37, 300, true, &mut rng).pack();
        let mut out = [0.0; 37];
        assert!(l
            .forward_rows_with(Some(&wrong), &[0.0; 300], 1, &mut out)
            .is_err());
    }

    #[test]
    fn backward_matches_finite_differences() {
        let mut rng = seeded_rng(3);
        let mut l = Linear::new(3, 2, true, &mut rng);
        let x = randn(&[4, 3], &mut rng);
        let dy = randn(&[4, 2], &mut rng);
        let gx = l.backward(&x, &dy).unwrap();
        // L = sum(y * dy) is linear in each input, so central differences in f64 are exact up
        // to rounding.
        let loss = |l: &Linear, x: &[f64]| -> f64 {
            naive(l, x, 4)
                .iter()
                .zip(dy.data())
                .map(|(a, &b)| a * b as f64)
                .sum()
        };
        let xd: Vec<f64> = x.data().iter().map(|&v| v as f64).collect();
        let h = 1e-3;
        for i in 0..xd.len() {
            let (mut p, mut m) = (xd.clone(), xd.clone());
            p[i] += h;
            m[i] -= h;
            let fd = (loss(&l, &p) - loss(&l, &m)) / (2.0 * h);
            assert!((fd - gx.data()[i] as f64).abs() < 1e-4, "dx[{i}]");
        }
        for pi in 0..2 {
            let n = l.params()[pi].value.numel();
            for i in 0..n {
                let g = l.params()[pi].grad.data()[i] as f64;
                let orig = l.params()[pi].value.data()[i];
                l.params_mut()[pi].value.data_mut()[i] = orig + h as f32;
                let lp = loss(&l, &xd);
                l.params_mut()[pi].value.data_mut()[i] = orig - h as f32;
                let lm = loss(&l, &xd);
                l.params_mut()[pi].value.data_mut()[i] = orig;
                let fd = (lp - lm) / (2.0 * h);
                assert!((fd - g).abs() < 1e-3, "param {pi} [{i}]: {fd} vs {g}");
            }
        }
    }

    #[test]
    fn backward_rows_adds_into_grads() {
        let mut rng = seeded_rng(4);
        let mut l = Linear::new(3, 2, true, &mut rng);
        let x = randn(&[4, 3], &mut rng);
        let dy = randn(&[4, 2], &mut rng);
        let g1 = l.backward(&x, &dy).unwrap();
        let w1 = l.weight.grad.clone();
        let mut gi = g1.data().to_vec();
        l.backward_rows(x.data(), dy.data(), 4, Some(&mut gi))
            .unwrap();
        for (a, b) in gi.iter().zip(g1.data()) {
            assert!((a - 2.0 * b).abs() < 1e-6);
        }
        for (a, b) in l.weight.grad.data().iter().zip(w1.data()) {
            assert!((a - 2.0 * b).abs() < 1e-6);
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        let mut rng = seeded_rng(5);
        let mut l = Linear::new(3, 2, true, &mut rng);
        assert!(l.forward(&Tensor::zeros(&[4, 2])).is_err());
        assert!(l.forward(&Tensor::zeros(&[])).is_err());
        assert!(l
            .backward(&Tensor::zeros(&[4, 3]), &Tensor::zeros(&[4, 3]))
            .is_err());
        let mut out = vec![0.0; 7];
        assert!(l.forward_rows(&[0.0; 12], 4, &mut out).is_err());
        assert!(l
            .backward_rows(&[0.0; 12], &[0.0; 8], 4, Some(&mut [0.0; 11]))
            .is_err());
        assert!(Linear::from_params(Tensor::zeros(&[2, 3]), Some(Tensor::zeros(&[3]))).is_err());
    }
}
