//! Why the edge's state could not be built from a configuration. A leaf.

/// Why a configuration could not be turned into a running state.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{path}: cannot read {file}: {source}")]
    Read {
        path: String,
        file: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}
