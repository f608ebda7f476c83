//! The crate's one error type.
//!
//! Every variant names its subject first (a path, a feature, a module) and then the reason, so the
//! binary can print it as `mkinitfs: ERROR: <subject>: <why>` on one line. Parsers with several
//! failure modes return `Error::Parse` with the file and line; I/O errors always carry the path
//! (`IoResultExt::at`), never a bare `io::Error`.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can make a build fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing `path` failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's reason.
        source: io::Error,
    },
    /// A text file (config, features, modules metadata) has a line we cannot accept.
    #[error("{}: line {line}: {reason}", .path.display())]
    Parse {
        /// The file being parsed.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        reason: String,
    },
    /// A feature named in the config or on the command line exists in no features directory.
    #[error("{name}: unknown feature (no {name}.files or {name}.modules in {dirs})")]
    UnknownFeature {
        /// The feature name.
        name: String,
        /// The directories searched, for the message.
        dirs: String,
    },
    /// `lib/modules/<kver>` is missing under the base directory.
    #[error("{}: does not exist or is not a directory", .path.display())]
    NoKernel {
        /// The expected modules directory.
        path: PathBuf,
    },
    /// A module that must go in (a dependency or a boot module) is not available.
    #[error("{name}: {reason}")]
    MissingModule {
        /// Module name or path relative to `lib/modules/<kver>`.
        name: String,
        /// Why it is missing.
        reason: String,
    },
    /// A file that must be embedded cannot be used (e.g. `/init` missing or not a regular file).
    #[error("{}: {reason}", .path.display())]
    BadInput {
        /// The offending file.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// An ELF file could not be parsed or one of its libraries cannot be found.
    #[error("{}: {reason}", .path.display())]
    Elf {
        /// The ELF file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// A setting has a value we do not support.
    #[error("{key}: {reason}")]
    Setting {
        /// The option or config key.
        key: String,
        /// Why the value is refused.
        reason: String,
    },
    /// A private key would enter the image (secrets never travel; see [`crate::secret`]).
    #[error("{}: {secret}: only public keys may enter an image (it would be /{entry})", .path.display())]
    PrivateKey {
        /// The host file (or the image path, for content mkinitfs generated).
        path: PathBuf,
        /// Where it would be in the image.
        entry: String,
        /// What kind of key it is.
        secret: crate::secret::Secret,
    },
    /// A path in the image would be too large or not representable in newc.
    #[error("{path}: {reason}")]
    Archive {
        /// The image path.
        path: String,
        /// Why it cannot be archived.
        reason: String,
    },
}

impl Error {
    /// Shorthand for a parse error.
    pub(crate) fn parse(path: &Path, line: usize, reason: impl Into<String>) -> Self {
        Error::Parse {
            path: path.to_path_buf(),
            line,
            reason: reason.into(),
        }
    }
}

/// Attaches a path to an `io::Error` (`fs::read(&p).at(&p)?`).
pub(crate) trait IoResultExt<T> {
    /// Wraps the error into `Error::Io` naming `path`.
    fn at(self, path: &Path) -> Result<T, Error>;
}

impl<T> IoResultExt<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T, Error> {
        self.map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
