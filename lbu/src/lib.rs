//! `lbu`, Alpine's local backup utility, rebuilt on the `overlays` crate (lbu/README.md is the
//! user's reference: commands, configuration, crash safety, trust, differences from Alpine).
//!
//! Same commands, files, selection and archive format as alpine-conf's lbu, without its data-loss
//! bugs: commits are crash-safe ([`publish`]: temp file, fsync, verify, backup by hardlink or
//! copy, rename, fsync the directory, synchronous updates on the medium), `-d` and `revert`
//! never leave two overlays visible to the boot, `lbu.conf` is data, lbu's own keys and
//! passwords are never saved ([`secrets`]), passwords stay off the command line when possible
//! and are zeroed after use, `status` compares content and metadata, `diff` never reads outside
//! the overlay, hooks run chrooted into the saved system and only for `commit`/`package`, and
//! overlays can be signed (a statement binding host and generation) and encrypted with age.
//! This crate owns the command behaviour and the medium; selecting, writing, reading and signing
//! the archive are the `overlays` crate's. The library takes option structs ([`Invocation`]);
//! only the binary parses arguments.

#![deny(missing_docs)]

pub mod advice;
pub mod backup;
pub mod build;
pub mod cleanup;
pub mod commit;
pub mod config;
pub mod diff;
pub mod durable;
pub mod hooks;
pub mod list;
pub mod media;
pub mod password;
pub mod publish;
pub mod revert;
pub mod secrets;
pub mod status;
pub mod wrap;

use std::path::PathBuf;

/// Everything lbu can fail with. The message names its subject first.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// I/O on a file.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Creating, reading or signing an overlay failed.
    #[error("{0}")]
    Overlay(#[from] overlays::Error),
    /// Neither a medium nor `LBU_BACKUPDIR` is configured.
    #[error("no medium: give MEDIA, or set LBU_MEDIA or LBU_BACKUPDIR in lbu.conf")]
    NoMedia,
    /// The system booted from the network: there is no boot medium to commit to.
    #[error("no medium: this system booted from the network and has no boot medium to commit to; run `lbu package -` (or `lbu package DIR`) and put the overlay on the boot server, or set LBU_BACKUPDIR")]
    Netbooted,
    /// `/media/<name>` is not a directory.
    #[error("/media/{0}: not a directory (no such medium)")]
    BadMedia(String),
    /// Mounting failed.
    #[error("failed to mount {}", .0.display())]
    Mount(PathBuf),
    /// Other apkovls on the target (another host, a renamed host, another cipher).
    #[error("The following apkovl file(s) were found:\n{}\n\nPlease use -d to replace (the boot picks only one overlay; -d removes these after the new one is saved).", .0.join("\n"))]
    Conflict(Vec<String>),
    /// A pre-package hook failed.
    #[error("{}: hook failed ({reason})", .path.display())]
    Hook {
        /// The hook.
        path: PathBuf,
        /// Exit status or spawn error.
        reason: String,
    },
    /// Password problem.
    #[error("password: {0}")]
    Password(String),
    /// `revert`: the named backup does not exist.
    #[error("file not found: {}", .0.display())]
    NotFound(PathBuf),
    /// `revert`: a name that is not a plain file name on the medium.
    #[error("{0}: not a backup name on the medium")]
    BadRevision(String),
    /// The new overlay did not read back as written.
    #[error("{}: verification failed: {reason}", .path.display())]
    Verify {
        /// The temporary file.
        path: PathBuf,
        /// What differed.
        reason: String,
    },
    /// The committed overlay could not be decrypted (upstream: `Failed to unpack <path>`).
    #[error("Failed to unpack {}: {source}", .path.display())]
    Unpack {
        /// The overlay.
        path: PathBuf,
        /// Why.
        source: overlays::Error,
    },
    /// A key could not be loaded.
    #[error("{0}")]
    Key(#[from] apk::trust::KeyError),
    /// A commit or package step failed; the previous overlay is untouched.
    #[error("{0}\nProblems creating archive. aborting")]
    Aborted(Box<Error>),
    /// `diff` could not run.
    #[error("diff: {0}")]
    Diff(String),
    /// `revert` refuses a backup (signature, signing key).
    #[error("revert: {0}")]
    Revert(String),
}

/// Wrap an `io::Error` with its path.
pub(crate) trait IoResultExt<T> {
    /// Attach `path`.
    fn at(self, path: impl Into<PathBuf>) -> Result<T, Error>;
}

impl<T> IoResultExt<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T, Error> {
        self.map_err(|source| Error::Io {
            path: path.into(),
            source,
        })
    }
}

/// The kernel's node name (Alpine names overlays after `uname -n`, not `/etc/hostname`).
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// What to do.
pub enum Command {
    /// `include PATH...` (`-r` removes).
    Include(list::EditOptions),
    /// `exclude PATH...` (`-r` removes).
    Exclude(list::EditOptions),
    /// `include -l`.
    ShowIncludes {
        /// Print the heading.
        verbose: bool,
    },
    /// `exclude -l`.
    ShowExcludes {
        /// Print the heading.
        verbose: bool,
    },
    /// `list`.
    List,
    /// `package`.
    Package(commit::PackageOptions),
    /// `commit`.
    Commit(commit::CommitOptions),
    /// `status`.
    Status(status::StatusOptions),
    /// `diff`.
    Diff(diff::DiffOptions),
    /// `list-backup [MEDIA]`.
    ListBackup {
        /// Medium name under `/media`.
        media: Option<String>,
    },
    /// `revert`.
    Revert(revert::RevertOptions),
}

/// A command and the system it works on.
pub struct Invocation {
    /// `--root DIR` (else `$ROOT`, else `/`).
    pub root: Option<PathBuf>,
    /// The command.
    pub command: Command,
}

/// Abort the process at a named point of a commit when `LBU_FAULT` says so (fault-injection
/// tests; compiled only with the `fault-injection` feature).
#[cfg(feature = "fault-injection")]
pub(crate) fn fault(point: &str) {
    if std::env::var("LBU_FAULT").is_ok_and(|v| v == point) {
        std::process::abort();
    }
}

/// Without the `fault-injection` feature (the shipped binary) there is no such switch.
#[cfg(not(feature = "fault-injection"))]
pub(crate) fn fault(_point: &str) {}

/// Run a command; returns the exit status.
pub fn run(inv: Invocation) -> Result<u8, Error> {
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    let root = inv
        .root
        .or_else(|| env.get("ROOT").filter(|r| !r.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/"));
    let root = std::path::absolute(&root).unwrap_or(root);
    let cfg = config::Config::load(&root, &env);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match inv.command {
        Command::ShowIncludes { verbose } => list::show(&root, b'+', verbose, &mut out)?,
        Command::ShowExcludes { verbose } => list::show(&root, b'-', verbose, &mut out)?,
        Command::Include(e) => list::edit(&root, b'+', &e, &mut out)?,
        Command::Exclude(e) => list::edit(&root, b'-', &e, &mut out)?,
        Command::List => list::list(&cfg, &mut out)?,
        Command::Package(o) => commit::package(&cfg, &o, &mut out)?,
        Command::Commit(o) => commit::commit(&cfg, &o, &mut out)?,
        Command::Status(o) => status::status(&cfg, &o, &mut out)?,
        Command::Diff(o) => return diff::diff(&cfg, &o),
        Command::ListBackup { media } => backup::list_backup(&cfg, media.as_deref(), &mut out)?,
        Command::Revert(o) => revert::revert(&cfg, &o)?,
    }
    Ok(0)
}
