//! Errors of reading or writing a trace.

use std::path::PathBuf;

/// What went wrong with a trace, and where.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The directory holds no `invocations_per_function_md.anon.dNN.csv`.
    #[error(
        "{dir}: no trace days found: expected files named \
         invocations_per_function_md.anon.dNN.csv (e.g. from `forewarm trace gen`)"
    )]
    NoDays {
        /// The directory searched.
        dir: PathBuf,
    },
    /// A day has invocations but lacks one of its companion files.
    #[error("{path}: missing: day {day:02} needs it beside its invocations file")]
    MissingFile {
        /// The expected path.
        path: PathBuf,
        /// The day number.
        day: u32,
    },
    /// A cell, row or header is not what the format requires.
    #[error("{path}:{line}:{column}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: usize,
        /// What was wrong, with the column's name.
        message: String,
    },
    /// The generator was asked for something it cannot make.
    #[error("invalid generator settings: {0}")]
    InvalidConfig(String),
}
