//! One error type for everything a user can cause. Each variant prints as one line that names
//! the file (or the adapter) and the problem; the CLI turns any of them into exit code 2.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A problem with an input file: corrupt, truncated, wrong shape, malformed line, ...
    #[error("{}: {msg}", path.display())]
    Input { path: PathBuf, msg: String },
    /// No usable GPU adapter, or the device could not be created.
    #[error("{0}")]
    Adapter(String),
    /// A request the chosen adapter cannot serve (a tensor over its binding limit, ...).
    #[error("{0}")]
    Limit(String),
    /// Bad arguments that are not tied to a file.
    #[error("{0}")]
    Usage(String),
    /// Writing an output failed.
    #[error("{}: {msg}", path.display())]
    Output { path: PathBuf, msg: String },
}

impl Error {
    pub fn input(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::Input {
            path: path.as_ref().to_path_buf(),
            msg: msg.into(),
        }
    }
    pub fn output(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::Output {
            path: path.as_ref().to_path_buf(),
            msg: msg.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
