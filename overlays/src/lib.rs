//! apkovl configuration overlays: the archive `lbu` commits and the boot init applies.
//!
//! This crate owns the apkovl file itself: which files of a root go into it ([`select`], through
//! the apk core's `apk audit --backup` semantics), writing it as Alpine's busybox would
//! ([`create`]: old-GNU tar, busybox-like gzip), applying it under a root without ever leaving it
//! ([`apply`]), the deletion manifest the project adds ([`deleted`]), detached ed25519 signatures
//! ([`sign`]) and encryption ([`crypt`]: Alpine's legacy `openssl enc` files and `age`). Mounting
//! media, choosing a file and asking for passwords are left to the callers (`lbu`, the init); no
//! function here spawns a process, so the static PID 1 can link everything.
//!
//! What the boot init does with an overlay file, in order:
//! ```no_run
//! use overlays::{ApplyPolicy, OverlayKind, Secret, Verification};
//! use std::path::Path;
//! # fn main() -> Result<(), overlays::Error> {
//! let file = Path::new("/media/usb/host.apkovl.tar.gz.age");
//! let kind = overlays::kind_of(&file.to_string_lossy()).expect("an overlay name");
//! let data = std::fs::read(file).map_err(|source| overlays::Error::Io { path: file.into(), source })?;
//! let sig = std::fs::read(format!("{}.sig", file.display())).ok();
//! match overlays::verify(&data, sig.as_deref(), Path::new("/etc/apkovl/keys")) {
//!     Verification::Verified { key } => println!("overlay signed by {key}"),
//!     Verification::Unsigned => { /* policy: refuse or accept */ }
//!     Verification::Bad { reason } => panic!("overlay: signature check failed: {reason}"),
//! }
//! let gz = overlays::decrypt(&data, &kind, &Secret::Passphrase("asked on the console"))?;
//! let report = overlays::apply(&gz, Path::new("/sysroot"), &ApplyPolicy::default())?;
//! for r in &report.refused {
//!     eprintln!("overlay: refused {r}");
//! }
//! // `report.extracted` is apk's overlay file list; install packages, then:
//! overlays::apply_deletions(Path::new("/sysroot"), &report.deletions)?;
//! # let _ = OverlayKind::Plain;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

pub mod apply;
pub mod create;
pub mod crypt;
pub mod deleted;
pub mod kind;
pub mod members;
pub mod select;
pub mod sign;

pub use apply::{apply, ApplyPolicy, ApplyReport, Refused};
pub use create::{create, CreateOptions, Overlay};
pub use crypt::{decrypt, encrypt_age, encrypt_legacy, AgeKey, Cipher, Secret};
pub use deleted::{apply_deletions, DeletionReport, MANIFEST};
pub use kind::{kind_of, OverlayKind};
pub use members::{read_members, Member, MemberKind};
pub use select::{selection, Selection};
pub use sign::{sign, verify, Verification};

use std::path::PathBuf;

/// Everything that can go wrong with an overlay. Each variant names its subject first.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// I/O on a file or directory.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The installed database could not be read (selection needs it).
    #[error("{0}")]
    Database(#[from] apk::db::DbError),
    /// `apk audit` failed.
    #[error("audit failed: {0}")]
    Audit(#[from] apk::audit::AuditError),
    /// A file that should be saved cannot be read.
    #[error("{}: cannot read file to archive", .0.display())]
    Unreadable(PathBuf),
    /// A selected name cannot be stored (not UTF-8: apk's overlay list is text).
    #[error("{}: file name is not valid UTF-8", .0.display())]
    BadName(PathBuf),
    /// The selection is empty (nothing would be saved; refusing to write an empty overlay).
    #[error("{}: nothing to archive (empty selection)", .0.display())]
    EmptySelection(PathBuf),
    /// The compressed stream is broken (truncated gzip, bad CRC, trailing garbage).
    #[error("overlay: broken gzip stream: {0}")]
    Gzip(String),
    /// The tar stream inside is broken.
    #[error("overlay: broken tar archive: {0}")]
    Tar(String),
    /// The decompressed archive exceeds the configured limit.
    #[error("overlay: archive larger than the limit of {0} bytes")]
    TooLarge(u64),
    /// Decryption failed: wrong password or key, or the file was modified.
    #[error("overlay: decryption failed: {0}")]
    Decrypt(String),
    /// Encryption failed.
    #[error("overlay: encryption failed: {0}")]
    Encrypt(String),
    /// The cipher named by the file suffix is not supported.
    #[error("Cipher {0} is not supported")]
    UnsupportedCipher(String),
    /// A signature file could not be parsed.
    #[error("signature: {0}")]
    SignatureFormat(String),
    /// A key could not be used.
    #[error("{0}")]
    Key(#[from] apk::trust::KeyError),
    /// A path of the deletion manifest is unsafe or malformed.
    #[error("{MANIFEST}: {0}")]
    Manifest(String),
}

/// Wrap an `io::Error` with the path it is about.
pub(crate) trait IoResultExt<T> {
    /// Attach `path` to the error.
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
