//! Layers with PyTorch's constructor arguments, semantics, shapes and parameter names.

pub mod cell;
mod recurrence;
pub mod rnn;

pub use cell::RnnCell;
pub use rnn::{Rnn, RnnCache, RnnConfig, RnnGrads, RnnMode, RnnOutput, RnnState};
