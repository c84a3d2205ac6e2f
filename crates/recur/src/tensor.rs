//! A minimal dense, row-major f32 tensor: a shape and a contiguous buffer. recur's kernels work
//! on slices; this type only carries shapes across API boundaries and checks them.

use crate::error::{Error, Result};

/// A dense row-major f32 tensor.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

/// Formats a shape the way PyTorch prints it: `(5, 3, 10)`.
pub fn fmt_shape(shape: &[usize]) -> String {
    let inner: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    if shape.len() == 1 {
        format!("({},)", inner[0])
    } else {
        format!("({})", inner.join(", "))
    }
}

impl Tensor {
    /// A tensor of zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Tensor {
            shape: shape.to_vec(),
            data: vec![0.0; shape.iter().product()],
        }
    }

    /// A tensor filled with `value`.
    pub fn full(shape: &[usize], value: f32) -> Self {
        Tensor {
            shape: shape.to_vec(),
            data: vec![value; shape.iter().product()],
        }
    }

    /// Wraps a buffer; errors if its length does not match the shape.
    pub fn from_vec(shape: &[usize], data: Vec<f32>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::shape(
                "Tensor::from_vec",
                format!("{} elements for shape {}", n, fmt_shape(shape)),
                format!("{} elements", data.len()),
            ));
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            data,
        })
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Size of dimension `i`.
    pub fn dim(&self, i: usize) -> usize {
        self.shape[i]
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The elements, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The elements, row-major, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Consumes the tensor, returning its buffer.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// The same elements under another shape with as many elements.
    pub fn reshape(mut self, shape: &[usize]) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != self.data.len() {
            return Err(Error::shape(
                "Tensor::reshape",
                format!("a shape with {} elements", self.data.len()),
                fmt_shape(shape),
            ));
        }
        self.shape = shape.to_vec();
        Ok(self)
    }

    /// Sets every element to zero, keeping the allocation.
    pub fn zero_(&mut self) {
        self.data.fill(0.0);
    }

    /// Swaps the first two dimensions: `(a, b, ...)` → `(b, a, ...)` (batch-first ↔ time-major).
    pub fn transpose01(&self) -> Tensor {
        assert!(self.rank() >= 2, "transpose01 needs rank >= 2");
        let (a, b) = (self.shape[0], self.shape[1]);
        let inner: usize = self.shape[2..].iter().product();
        let mut out = vec![0.0; self.data.len()];
        for i in 0..a {
            for j in 0..b {
                let src = (i * b + j) * inner;
                let dst = (j * a + i) * inner;
                out[dst..dst + inner].copy_from_slice(&self.data[src..src + inner]);
            }
        }
        let mut shape = self.shape.clone();
        shape.swap(0, 1);
        Tensor { shape, data: out }
    }

    /// `sum(self * other)`, accumulated in f64 (used for the `sum(out * dout)` loss of tests).
    pub fn dot(&self, other: &Tensor) -> f64 {
        self.data
            .iter()
            .zip(&other.data)
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum()
    }
}
