//! Errors as values, each with a message a user can act on: what failed, on which input, what to do.

/// Everything that can go wrong in the lab's core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that does not fit what an operation needs (shape, range, format).
    #[error("{0}")]
    Invalid(String),
    /// A file or payload that could not be decoded.
    #[error("could not decode {what}: {reason}")]
    Decode { what: String, reason: String },
    /// A failure of the GPU device or one of its kernels.
    #[error("GPU: {0}")]
    Gpu(String),
    /// A failure in the tensor library (candle).
    #[error("tensor computation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    /// A download or server that failed (after retries), with the URL.
    #[error("{0}")]
    Network(String),
    /// The user stopped the work.
    #[error("cancelled")]
    Cancelled,
    /// File-system or network I/O.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }

    pub fn decode(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Error::Decode {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
