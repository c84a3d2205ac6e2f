//! Fused element-wise kernels of the recurrent cells.
//!
//! They know nothing of layers: each works on `rows` rows of contiguous row-major buffers, and
//! each forward leaves in place exactly what its backward reads. The matrix products around them
//! (input projection, recurrence) are done by the caller with [`crate::gemm::matmul`].

pub mod elman;
pub mod gru;
pub mod lstm;

/// The logistic function σ(x) = 1 / (1 + e^-x).
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}
