//! # recur
//!
//! PyTorch-exact recurrent networks (RNN, LSTM, GRU, their cells), the layers around them
//! (embedding, linear, dropout), cross entropy, optimizers, and sequence-to-sequence models with
//! attention, on fast fused CPU kernels with hand-written backward passes.
//!
//! Layout: `kernels` (fused element-wise maths, no knowledge of layers) → `nn` (layers with
//! PyTorch's names and shapes) → `seq2seq` (models) → the `recur` binary (CLI).
#![warn(missing_docs)]

pub mod average;
pub mod checkpoint;
pub mod chunks;
pub mod collective;
pub mod data;
pub mod error;
pub mod eval;
pub mod fixture;
pub mod gemm;
pub mod kernels;
pub mod lexicon;
pub mod limits;
pub mod lock;
pub mod loss;
pub mod metrics_log;
pub mod models;
pub mod module;
pub mod nn;
pub mod numbers;
pub mod optim;
pub mod seq2seq;
pub mod session;
pub mod team;
pub mod tensor;
pub mod text;
pub mod train;
pub mod transducer;

pub use error::{Error, Result};
pub use module::{seeded_rng, Module, Param, Rng64};
pub use tensor::Tensor;
