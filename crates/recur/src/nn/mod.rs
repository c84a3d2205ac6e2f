//! Layers with PyTorch's constructor arguments, semantics, shapes and parameter names.

pub mod cell;
pub mod dropout;
pub mod embedding;
pub mod linear;
mod recurrence;
pub mod rnn;

pub use cell::RnnCell;
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use linear::Linear;
pub use rnn::{
    Rnn, RnnCache, RnnConfig, RnnDeferred, RnnGrads, RnnMode, RnnOutput, RnnPacked, RnnScratch,
    RnnState, StepInput,
};
