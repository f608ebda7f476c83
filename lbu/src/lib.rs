//! `lbu`, Alpine's local backup utility, rebuilt on the `overlays` crate (lbu.md).
//!
//! Same commands, files, selection and archive format as alpine-conf's lbu, without its data-loss
//! bugs (lbu.md §10): commits are crash-safe (temp file, fsync, verify, backup by hardlink or
//! copy, rename, fsync the directory), `-d` deletes only after the new overlay is durable,
//! `lbu.conf` is data, passwords stay off the command line when possible, `status` compares
//! content and metadata, and overlays can be signed (ed25519) and encrypted with age. This crate
//! owns the command-line behaviour and the medium; selecting, writing, reading and signing the
//! archive are the `overlays` crate's.

#![deny(missing_docs)]

pub mod backup;
pub mod cleanup;
pub mod cli;
pub mod commit;
pub mod config;
pub mod hooks;
pub mod list;
pub mod media;
pub mod secret;
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

/// Run a parsed command line; returns the exit status.
pub fn run(cli: cli::Cli) -> Result<u8, Error> {
    use cli::Cmd;
    let env: std::collections::HashMap<String, String> = std::env::vars().collect();
    let root = cli
        .root
        .clone()
        .or_else(|| env.get("ROOT").filter(|r| !r.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/"));
    let root = std::path::absolute(&root).unwrap_or(root);
    let cfg = config::Config::load(&root, &env);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cli.cmd {
        Cmd::Include(ref a) | Cmd::Exclude(ref a) if a.list => {
            let sign = if matches!(cli.cmd, Cmd::Include(_)) {
                b'+'
            } else {
                b'-'
            };
            list::show(&root, sign, a.verbose, &mut out)?;
        }
        Cmd::Include(ref a) => list::edit(&root, b'+', &a.paths, a.remove, a.verbose, &mut out)?,
        Cmd::Exclude(ref a) => list::edit(&root, b'-', &a.paths, a.remove, a.verbose, &mut out)?,
        Cmd::List(_) => {
            let sel = overlays::selection(&root)?;
            for n in sel.names {
                use std::io::Write;
                writeln!(out, "{n}").at("stdout")?;
            }
        }
        Cmd::Package(a) => commit::package(&cfg, &a, &mut out)?,
        Cmd::Commit(a) => commit::commit(&cfg, &a, &mut out)?,
        Cmd::Status(a) => status::status(&cfg, &a, &mut out)?,
        Cmd::Diff(a) => return status::diff(&cfg, &a),
        Cmd::ListBackup(a) => backup::list_backup(&cfg, a.media.as_deref(), &mut out)?,
        Cmd::Revert(a) => backup::revert(&cfg, &a)?,
    }
    Ok(0)
}
