//! Parse errors. The parsers see text, not files: a [`ParseError`] names the line, and the
//! caller, who knows the path, puts it in front ([`FileError`] names the metadata file when
//! several are parsed together).

/// A line that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with the line.
    pub reason: String,
}

impl ParseError {
    pub(crate) fn new(line: usize, reason: impl Into<String>) -> Self {
        ParseError {
            line,
            reason: reason.into(),
        }
    }
}

/// A parse error in one of the metadata files of an [`crate::Index`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {error}")]
pub struct FileError {
    /// The file name (`modules.dep`, `modules.alias`, `modules.softdep`).
    pub file: &'static str,
    /// The line and the reason.
    pub error: ParseError,
}
