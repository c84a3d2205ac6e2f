//! Layers with PyTorch's constructor arguments, semantics, shapes and parameter names.

pub mod dropout;
pub mod embedding;
pub mod linear;
pub mod rnn;

pub use dropout::Dropout;
pub use embedding::Embedding;
pub use linear::Linear;
pub use rnn::{Rnn, RnnConfig, RnnMode};
