//! Recurrent layers: placeholder, see issue 2.
use serde::{Deserialize, Serialize};

/// Which recurrence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RnnMode {
    /// LSTM, gates i, f, g, o.
    Lstm,
    /// GRU, gates r, z, n.
    Gru,
    /// Elman RNN with tanh.
    RnnTanh,
    /// Elman RNN with relu.
    RnnRelu,
}

/// Configuration.
#[derive(Clone, Debug)]
pub struct RnnConfig {}
/// Layer.
pub struct Rnn {}
