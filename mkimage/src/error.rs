//! What can make `mkimage` fail, one variant per kind of subject.
//!
//! Every message names its subject first (an option and its file, an index, a package, a tool)
//! and then the reason, so the binary prints it as one line `mkimage: ERROR: <subject>: <why>`.
//! The only multi-line message is the solver's, which carries apk's `unable to select packages`
//! block verbatim after the first line, as apk prints it.

use std::io;
use std::path::{Path, PathBuf};

/// Why a medium could not be built.
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
    /// A file given on the command line cannot be used (missing, not a regular file, badly named).
    #[error("{option} {}: {reason}", .path.display())]
    Input {
        /// The option that named the file (`--kernel`, `--apkovl`, ...).
        option: &'static str,
        /// The file as given.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// An option has a value we refuse.
    #[error("{option}: {reason}")]
    Setting {
        /// The option (`--size`, `--label`, ...).
        option: &'static str,
        /// Why the value is refused.
        reason: String,
    },
    /// A source repository's index could not be read or is not trusted.
    #[error("{index}: {reason}")]
    Repository {
        /// The index file as apk names it.
        index: String,
        /// apk's reason (e.g. `UNTRUSTED signature`), with a hint where one helps.
        reason: String,
    },
    /// The world cannot be resolved; `report` is apk's block (already indented, several lines).
    #[error("{option}: unable to select packages:\n{}", .report.trim_end())]
    Unsatisfiable {
        /// `--world` or `--world-extra`.
        option: &'static str,
        /// apk's `unable to select packages` block.
        report: String,
    },
    /// A package file of the closure is missing or does not match its source index.
    #[error("{}: {reason}", .path.display())]
    Package {
        /// The package file in the source repository.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The index signing key cannot be used.
    #[error("--sign-key {}: {reason}", .path.display())]
    Key {
        /// The private key file.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// The content does not fit the requested image size.
    #[error("--size {size}: too small for the content (needs at least {needed})")]
    TooSmall {
        /// The requested size, as displayed.
        size: String,
        /// The smallest size that would fit, as displayed.
        needed: String,
    },
    /// A host tool is missing or failed.
    #[error("{tool}: {reason}")]
    Tool {
        /// The program (`xorriso`).
        tool: &'static str,
        /// Not found, or its exit status and last error line.
        reason: String,
    },
    /// Writing the FAT file system failed (the FAT writer's own error, with the file it was at).
    #[error("{}: {path}: {reason}", .image.display())]
    Fat {
        /// The image being written.
        image: PathBuf,
        /// The path inside the image.
        path: String,
        /// The FAT writer's reason.
        reason: String,
    },
    /// A private key among the inputs: a file the medium would carry, or a directory of trusted
    /// keys (secrets never travel; see `mkinitfs::secret`).
    #[error("{option} {}: {secret}: {reason}", .path.display())]
    Secret {
        /// The option that named the file or its directory (`--keys-dir`, `--cache`, ...).
        option: &'static str,
        /// The file.
        path: PathBuf,
        /// What kind of key it is.
        secret: mkinitfs::secret::Secret,
        /// Why it is refused there.
        reason: &'static str,
    },
    /// An initramfs mkimage cannot read to its end, so it cannot check it for private keys.
    #[error("--initramfs {}: cannot be checked for private keys ({reason}): rebuild it with gzip, zstd, xz or no compression", .path.display())]
    InitramfsUnreadable {
        /// The initramfs file.
        path: PathBuf,
        /// Why it could not be read to its end.
        reason: String,
    },
    /// A private key inside the initramfs (other than the age identity at
    /// `etc/apkovl/identity`, which is allowed on purpose).
    #[error("--initramfs {}: /{entry}: {secret}: only public keys may enter an image", .path.display())]
    InitramfsSecret {
        /// The initramfs file.
        path: PathBuf,
        /// The entry holding the key.
        entry: String,
        /// What kind of key it is.
        secret: mkinitfs::secret::Secret,
    },
    /// An appliance profile is refused: `at` is `DIR/profile.toml:LINE` (or the file, or the
    /// step of `mkimage --profile` that failed).
    #[error("{at}: {reason}")]
    Profile {
        /// Where: the profile file and line, or the build step.
        at: String,
        /// Why.
        reason: String,
    },
    /// The output path cannot receive the medium.
    #[error("-o {}: {reason}", .path.display())]
    Output {
        /// The output path.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
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

impl Error {
    /// Shorthand for a refused option value.
    pub(crate) fn setting(option: &'static str, reason: impl Into<String>) -> Self {
        Error::Setting {
            option,
            reason: reason.into(),
        }
    }
}
