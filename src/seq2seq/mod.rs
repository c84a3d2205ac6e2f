//! Sequence-to-sequence models and decoding.

pub mod search;
