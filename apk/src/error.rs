//! The apk core's one error type: every failure an applet or the init can meet, each variant
//! naming its subject, composed from the module errors with `#[from]`. The messages are apk-tools'
//! where apk-tools has one (the CLI and oracle tests pin them byte for byte).

use crate::archive::ArchiveError;
use crate::audit::AuditError;
use crate::db::DbError;
use crate::mkpkg::MkpkgError;
use crate::trust::KeyError;
use std::path::PathBuf;

/// Errors of the apk core, each naming its subject.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Database problem.
    #[error("{0}")]
    Db(#[from] DbError),
    /// A file could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A package file failed verification.
    #[error("{}: {err}", .path.display())]
    Package {
        /// The file.
        path: PathBuf,
        /// Cause.
        err: ArchiveError,
    },
    /// A key could not be loaded, generated or used (the error names the key file).
    #[error("{0}")]
    Key(#[from] KeyError),
    /// Building a package failed (the error names the file or field).
    #[error("{0}")]
    Mkpkg(#[from] MkpkgError),
    /// Auditing the root failed (the error names the path).
    #[error("{0}")]
    Audit(#[from] AuditError),
    /// A CA bundle (`--ca`, `SSL_CERT_FILE`) could not be used.
    #[error("{0}")]
    Ca(#[from] crate::http::CaError),
    /// A path that must be a directory is not one.
    #[error("{}: not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// A named package is not installed (`apk upgrade NAME`, `apk fix NAME`).
    #[error("Package '{0}' not found")]
    PackageNotFound(String),
    /// A package from outside the repositories would vanish with the next boot of a tmpfs root.
    #[error("You tried to add a non-repository package to system, but it would be lost on next reboot. Enable package caching (apk cache --help) or use --force-non-repository if you know what you are doing.")]
    NonRepositoryOnTmpfs,
    /// World entries name repository tags that no repository carries.
    #[error("Not committing changes due to missing repository tags.")]
    MissingRepositoryTags,
    /// The same, found by `apk upgrade` before it starts.
    #[error("Not continuing with upgrade due to missing repository tags.")]
    UpgradeMissingTags,
    /// `--initdb` together with `--simulate` on a root without a database.
    #[error("unable to create database under --simulate")]
    SimulateInitdb,
    /// An operation that needs the installed database ran in a session opened without it.
    #[error("database not open")]
    NoDatabase,
    /// The solver found no valid selection (the report follows on stderr).
    #[error("unable to select packages:\n{0}")]
    Unsatisfiable(String),
    /// A world dependency given to `apk add` does not parse.
    #[error("'{0}' is not a valid world dependency, format is name(@tag)([<>~=]version)")]
    BadWorldDependency(String),
    /// A dependency of a virtual package (`apk add -t`) does not parse.
    #[error("'{0}' is not a valid package dependency, format is name([<>~=]version)")]
    BadDependency(String),
    /// The name of a virtual package (`apk add -t NAME[=VERSION]`) is not usable.
    #[error("{0}: bad package specifier")]
    BadVirtualPackage(String),
}
