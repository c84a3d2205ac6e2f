//! Encoder-decoder models with attention, to the spec of `reference/seq2seq.py`.
//!
//! One paper concept per file: [`config`], [`encoder`], [`attention`], [`decoder`] (one step
//! shared by training and search), [`model`] (training pass); [`search`] decodes any
//! [`search::StepModel`], [`inference`] makes one of a trained model, [`ensemble`] of several.

pub mod attention;
pub mod config;
pub mod decoder;
pub mod encoder;
pub mod ensemble;
pub mod inference;
pub mod model;
pub mod search;
pub mod word_freq;

pub use config::{AttentionKind, Seq2SeqConfig, TokenId, BOS, EOS, PAD, UNK};
pub use model::{Seq2Seq, Seq2SeqPacked, TokenBatch, TrainOptions, TrainOutput};
