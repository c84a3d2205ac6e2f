//! Layers with PyTorch's constructor arguments, semantics, shapes and parameter names.

pub mod rnn;

pub use rnn::{Rnn, RnnConfig, RnnMode};
