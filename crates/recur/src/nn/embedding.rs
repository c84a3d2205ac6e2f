//! `torch.nn.Embedding`: a lookup table of rows, with an optional padding row that never
//! receives gradient.

use crate::error::{Error, Result};
use crate::module::{Init, Module, Param};
use crate::tensor::{fmt_shape, Tensor};

/// A lookup table `weight` `[num_embeddings, embedding_dim]` (PyTorch name `weight`).
#[derive(Clone, Debug)]
pub struct Embedding {
    /// `[num_embeddings, embedding_dim]`.
    pub weight: Param,
    /// The row that is zero at init and never updated by backward.
    pub padding_idx: Option<usize>,
}

impl Embedding {
    /// A table initialised like PyTorch: N(0, 1), with the padding row zeroed.
    pub fn new(
        num_embeddings: usize,
        embedding_dim: usize,
        padding_idx: Option<usize>,
        rng: &mut impl Init,
    ) -> Result<Self> {
        let mut weight = Tensor::zeros(&[num_embeddings, embedding_dim]);
        rng.normal(weight.data_mut());
        let mut e = Embedding::from_weight(weight, padding_idx)?;
        if let Some(p) = padding_idx {
            e.weight.value.data_mut()[p * embedding_dim..(p + 1) * embedding_dim].fill(0.0);
        }
        Ok(e)
    }

    /// A table from a given weight `[num, dim]` (kept as is, padding row included).
    pub fn from_weight(weight: Tensor, padding_idx: Option<usize>) -> Result<Self> {
        if weight.rank() != 2 {
            return Err(Error::shape(
                "Embedding::from_weight",
                "weight of rank 2 (num_embeddings, embedding_dim)",
                fmt_shape(weight.shape()),
            ));
        }
        if let Some(p) = padding_idx {
            if p >= weight.dim(0) {
                return Err(Error::arg(
                    "Embedding::new",
                    "padding_idx",
                    format!("< num_embeddings = {}", weight.dim(0)),
                    p,
                ));
            }
        }
        Ok(Embedding {
            weight: Param::new("weight", weight),
            padding_idx,
        })
    }

    /// `num_embeddings`.
    pub fn num_embeddings(&self) -> usize {
        self.weight.value.dim(0)
    }

    /// `embedding_dim`.
    pub fn embedding_dim(&self) -> usize {
        self.weight.value.dim(1)
    }

    /// Checks one id against `0..num_embeddings`.
    fn index(&self, op: &'static str, id: i64) -> Result<usize> {
        let size = self.num_embeddings();
        if id < 0 || id as u64 >= size as u64 {
            return Err(Error::IndexOutOfRange {
                op,
                index: id,
                size,
            });
        }
        Ok(id as usize)
    }

    fn check_ids(&self, op: &'static str, ids: &[i64], shape: &[usize]) -> Result<()> {
        if shape.iter().product::<usize>() != ids.len() {
            return Err(Error::shape(
                op,
                format!(
                    "{} ids for shape {}",
                    shape.iter().product::<usize>(),
                    fmt_shape(shape)
                ),
                format!("{} ids", ids.len()),
            ));
        }
        Ok(())
    }

    /// Forward: `ids` of shape `shape` (any rank) → `(*shape, embedding_dim)`.
    pub fn forward(&self, ids: &[i64], shape: &[usize]) -> Result<Tensor> {
        let op = "Embedding.forward";
        self.check_ids(op, ids, shape)?;
        let dim = self.embedding_dim();
        let mut out_shape = shape.to_vec();
        out_shape.push(dim);
        let mut out = Tensor::zeros(&out_shape);
        let w = self.weight.value.data();
        for (&id, row) in ids.iter().zip(out.data_mut().chunks_exact_mut(dim.max(1))) {
            let i = self.index(op, id)?;
            row.copy_from_slice(&w[i * dim..(i + 1) * dim]);
        }
        if dim == 0 {
            // No rows to copy, but ids must still be valid.
            for &id in ids {
                self.index(op, id)?;
            }
        }
        Ok(out)
    }

    /// Forward on raw ids without allocating: `out` `[ids.len(), embedding_dim]` (overwritten).
    pub fn forward_ids(&self, ids: &[usize], out: &mut [f32]) -> Result<()> {
        let op = "Embedding.forward_ids";
        let dim = self.embedding_dim();
        self.check_out(op, ids.len(), out.len())?;
        let w = self.weight.value.data();
        for (k, &id) in ids.iter().enumerate() {
            let i = self.index(op, i64::try_from(id).unwrap_or(i64::MAX))?;
            out[k * dim..(k + 1) * dim].copy_from_slice(&w[i * dim..(i + 1) * dim]);
        }
        Ok(())
    }

    fn check_out(&self, op: &'static str, n: usize, len: usize) -> Result<()> {
        let dim = self.embedding_dim();
        if len != n * dim {
            return Err(Error::shape(
                op,
                format!("{n} x {dim} = {} values", n * dim),
                format!("{len} values"),
            ));
        }
        Ok(())
    }

    /// Backward for `ids` and `grad_out` `(*ids_shape, embedding_dim)`: adds each gradient row
    /// into its weight row, skipping `padding_idx`.
    pub fn backward(&mut self, ids: &[i64], grad_out: &Tensor) -> Result<()> {
        let op = "Embedding.backward";
        self.check_out(op, ids.len(), grad_out.numel())?;
        // Validate every id first so an error leaves the gradient untouched.
        let idx = ids
            .iter()
            .map(|&id| self.index(op, id))
            .collect::<Result<Vec<_>>>()?;
        self.accumulate(&idx, grad_out.data());
        Ok(())
    }

    /// Backward on raw ids without allocating: `grad_out` `[ids.len(), embedding_dim]`.
    pub fn backward_ids(&mut self, ids: &[usize], grad_out: &[f32]) -> Result<()> {
        let op = "Embedding.backward_ids";
        self.check_out(op, ids.len(), grad_out.len())?;
        for &id in ids {
            self.index(op, i64::try_from(id).unwrap_or(i64::MAX))?;
        }
        self.accumulate(ids, grad_out);
        Ok(())
    }

    fn accumulate(&mut self, ids: &[usize], grad_out: &[f32]) {
        let dim = self.embedding_dim();
        let g = self.weight.grad.data_mut();
        for (k, &i) in ids.iter().enumerate() {
            if Some(i) == self.padding_idx {
                continue;
            }
            for (a, &b) in g[i * dim..(i + 1) * dim]
                .iter_mut()
                .zip(&grad_out[k * dim..(k + 1) * dim])
            {
                *a += b;
            }
        }
    }
}

impl Module for Embedding {
    fn params(&self) -> Vec<&Param> {
        vec![&self.weight]
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        vec![&mut self.weight]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::module::seeded_rng;

    #[test]
    fn init_is_standard_normal_with_zero_padding_row() {
        let mut rng = seeded_rng(7);
        let e = Embedding::new(200, 50, Some(3), &mut rng).unwrap();
        let w = e.weight.value.data();
        assert!(w[150..200].iter().all(|&v| v == 0.0));
        let rest: Vec<f64> = w[..150]
            .iter()
            .chain(&w[200..])
            .map(|&v| v as f64)
            .collect();
        let n = rest.len() as f64;
        let mean = rest.iter().sum::<f64>() / n;
        let var = rest.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.05, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
    }

    #[test]
    fn forward_looks_up_rows_and_backward_sums_them() {
        let w = Tensor::from_vec(&[3, 2], vec![1., 2., 3., 4., 5., 6.]).unwrap();
        let mut e = Embedding::from_weight(w, Some(0)).unwrap();
        let ids = [2i64, 0, 2, 1];
        let y = e.forward(&ids, &[2, 2]).unwrap();
        assert_eq!(y.shape(), [2, 2, 2]);
        assert_eq!(y.data(), [5., 6., 1., 2., 5., 6., 3., 4.]);
        let g = Tensor::from_vec(&[2, 2, 2], (1..=8).map(|v| v as f32).collect()).unwrap();
        e.backward(&ids, &g).unwrap();
        // Row 0 is padding: no gradient; row 2 is used twice.
        assert_eq!(e.weight.grad.data(), [0., 0., 7., 8., 6., 8.]);
        let mut out = vec![0.0; 4];
        e.forward_ids(&[1, 2], &mut out).unwrap();
        assert_eq!(out, [3., 4., 5., 6.]);
        e.backward_ids(&[1], &[1., 1.]).unwrap();
        assert_eq!(e.weight.grad.data(), [0., 0., 8., 9., 6., 8.]);
    }

    #[test]
    fn bad_ids_and_args_are_errors() {
        let mut rng = seeded_rng(8);
        let mut e = Embedding::new(4, 2, None, &mut rng).unwrap();
        let err = e.forward(&[1, 4], &[2]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::IndexOutOfRange {
                    index: 4,
                    size: 4,
                    ..
                }
            ),
            "{err}"
        );
        assert!(matches!(
            e.forward(&[-1], &[1]).unwrap_err(),
            Error::IndexOutOfRange { index: -1, .. }
        ));
        assert!(e.forward(&[1, 2], &[3]).is_err());
        assert!(e.forward_ids(&[9], &mut [0.0; 2]).is_err());
        assert!(e.forward_ids(&[1], &mut [0.0; 3]).is_err());
        assert!(e.backward(&[0, 7], &Tensor::zeros(&[2, 2])).is_err());
        assert!(e.weight.grad.data().iter().all(|&v| v == 0.0));
        assert!(e.backward_ids(&[5], &[0.0; 2]).is_err());
        assert!(Embedding::new(4, 2, Some(4), &mut rng).is_err());
    }
}
