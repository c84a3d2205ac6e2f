//! The one error type of the crate: every variant names the operation, what it expected and
//! what it got, so a message is actionable without a backtrace.

use std::path::PathBuf;

/// Result alias used throughout recur.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in recur.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor had the wrong shape (rank, feature size, state shape, ...).
    #[error("{op}: expected shape {expected}, got {got}")]
    Shape {
        /// The operation that checked the shape, e.g. `LSTM.forward`.
        op: &'static str,
        /// What it expected, in words or as a shape.
        expected: String,
        /// What it got.
        got: String,
    },
    /// A constructor or call argument is out of its valid range.
    #[error("{op}: invalid {arg}: expected {expected}, got {got}")]
    InvalidArgument {
        /// The operation, e.g. `LSTM::new`.
        op: &'static str,
        /// The argument name, e.g. `dropout`.
        arg: &'static str,
        /// The valid range or rule.
        expected: String,
        /// The value that was given.
        got: String,
    },
    /// An index (token id, class id) outside `0..size`.
    #[error("{op}: index {index} out of range for size {size}")]
    IndexOutOfRange {
        /// The operation, e.g. `Embedding.forward`.
        op: &'static str,
        /// The offending index.
        index: i64,
        /// The number of valid indices.
        size: usize,
    },
    /// A named tensor was missing, extra or malformed in a checkpoint or fixture.
    #[error("{op}: tensor `{name}`: {msg}")]
    Tensor {
        /// The operation, e.g. `load_state_dict`.
        op: &'static str,
        /// The tensor's name.
        name: String,
        /// What is wrong with it.
        msg: String,
    },
    /// A file could not be parsed; names the file (and line when there is one).
    #[error("{path}{}: {msg}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The 1-based line, when the format has lines.
        line: Option<usize>,
        /// What is wrong.
        msg: String,
    },
    /// An I/O error on a named file. (The OS error is part of the message, not a `source`,
    /// so that error chains print it once.)
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// A directory is locked by another writer (see [`crate::lock`]).
    #[error("{}: another process{} is writing there", path.display(), pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked {
        /// The directory.
        path: PathBuf,
        /// The holder's process id, when it could be read.
        pid: Option<u32>,
    },
}

impl Error {
    /// Shorthand for [`Error::Shape`].
    pub fn shape(op: &'static str, expected: impl Into<String>, got: impl Into<String>) -> Self {
        Error::Shape {
            op,
            expected: expected.into(),
            got: got.into(),
        }
    }

    /// Shorthand for [`Error::InvalidArgument`].
    pub fn arg(
        op: &'static str,
        arg: &'static str,
        expected: impl Into<String>,
        got: impl std::fmt::Display,
    ) -> Self {
        Error::InvalidArgument {
            op,
            arg,
            expected: expected.into(),
            got: got.to_string(),
        }
    }

    /// Shorthand for [`Error::Tensor`].
    pub fn tensor(op: &'static str, name: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Tensor {
            op,
            name: name.into(),
            msg: msg.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }
}
