//! apkovl configuration overlays: the archive `lbu` commits and the boot init applies
//! (overlays/README.md is the reference for the format, signatures, trust and bounds).
//!
//! This crate owns the apkovl file itself: which files of a root go into it ([`select`], through
//! the apk core's `apk audit --backup` semantics), writing it as Alpine's busybox would
//! ([`create`]: old-GNU tar, busybox-like gzip), reading it with one reader ([`archive`]) that
//! refuses hostile member names everywhere, applying it under a root without ever leaving it
//! ([`apply`]), listing it ([`members`]), the deletion manifest the project adds ([`deleted`]),
//! file names ([`kind`]), detached ed25519 signatures over a signed statement ([`sign`],
//! [`statement`]), the generation file beside the overlay ([`generation`]) and encryption
//! ([`crypt`]: Alpine's legacy `openssl enc` files and `age`). Mounting media, choosing a file
//! and asking for passwords are left to the callers (`lbu`, the init); no function here spawns a
//! process, so the static PID 1 can link everything.
//!
//! Input is bounded ([`MAX_OVERLAY_BYTES`], [`MAX_UNPACKED_BYTES`], [`MAX_SCRYPT_WORK_FACTOR`],
//! [`sign::MAX_SIGNATURE_BYTES`], [`generation::MAX_BYTES`]), so a hostile medium gives an error,
//! never an out-of-memory abort of PID 1.
//!
//! What the boot init does with an overlay file `DIR/HOST.apkovl.tar.gz[.age]`, in order:
//! ```no_run
//! use overlays::{ApplyPolicy, OverlayKind, Secret, Verification};
//! use std::path::Path;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = Path::new("/media/usb");
//! let name = "fw1.apkovl.tar.gz.age";
//! let kind = overlays::kind_of(name).expect("an overlay name");
//! let host = overlays::host_of(name).expect("an overlay name");
//! let data = overlays::read_file(&dir.join(name))?; // bounded by MAX_OVERLAY_BYTES
//! let sig = overlays::read_signature(&dir.join(format!("{name}.sig")))?; // None: no .sig
//! let v = overlays::verify(&data, sig.as_deref(), Path::new("/etc/apkovl/keys"));
//! match &v {
//!     Verification::Verified { key, .. } => println!("overlay signed by {key}"),
//!     Verification::Unsigned => { /* policy: refuse or accept */ }
//!     Verification::Bad { reason } => return Err(format!("signature check failed: {reason}").into()),
//! }
//! // The medium's record of the newest generation committed for this host.
//! let min_generation = overlays::generation::read(dir, host)?;
//! overlays::check_binding(&v, host, min_generation, /* accept_legacy: */ false)?;
//! let gz = if overlays::crypt::age_is_passphrase(&data)? {
//!     overlays::decrypt(&data, &kind, &Secret::Passphrase("asked on the console"))?
//! } else {
//!     let identity = std::fs::read_to_string("/etc/apkovl/identity")?;
//!     overlays::decrypt(&data, &kind, &Secret::AgeIdentity(&identity))?
//! };
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
pub mod archive;
pub mod create;
pub mod crypt;
pub mod deleted;
pub mod generation;
pub mod kind;
pub mod members;
pub mod passphrase;
pub mod select;
pub mod sign;
pub mod statement;

pub use apply::{apply, ApplyPolicy, ApplyReport, Refused};
pub use create::{create, CreateOptions, Overlay};
pub use crypt::{decrypt, encrypt_age, encrypt_legacy, AgeKey, Cipher, Secret};
pub use deleted::{apply_deletions, DeletionReport, MANIFEST};
pub use kind::{host_of, kind_of, OverlayKind};
pub use members::{read_contents, read_members, Member, MemberKind};
pub use passphrase::{read_passphrase_file, PassphraseFileError, MAX_PASSPHRASE};
pub use select::{selection, Selection};
pub use sign::{sign, sign_statement, verify, verify_with, Verification};
pub use statement::{check_binding, BindingError, Statement};

/// Largest overlay file accepted (as stored: compressed, and encrypted for `.age` and legacy
/// ciphers). Configuration overlays are kilobytes; this leaves room for a generous `/root`.
pub const MAX_OVERLAY_BYTES: u64 = 32 << 20;

/// Largest decompressed archive accepted by [`apply`], [`read_members`] and [`read_contents`].
pub const MAX_UNPACKED_BYTES: u64 = 128 << 20;

/// Largest age scrypt work factor (log2 N) accepted when decrypting, and the one `lbu` writes by
/// default: 2^18 needs 256 MiB and about a second on a small x86 box; more would let a hostile
/// medium make PID 1 allocate gigabytes.
pub const MAX_SCRYPT_WORK_FACTOR: u8 = 18;

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
    /// The overlay file (as stored) is larger than [`MAX_OVERLAY_BYTES`].
    #[error("overlay: file of {size} bytes is larger than the limit of {MAX_OVERLAY_BYTES} bytes")]
    OverlayTooLarge {
        /// Its size.
        size: u64,
    },
    /// A file read with a bound is larger than it.
    #[error("{}: larger than the limit of {limit} bytes", .path.display())]
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// The bound.
        limit: u64,
    },
    /// A member name that would leave the tree (absolute, `..`, through a symlink of the same
    /// overlay): the reader refuses the whole overlay.
    #[error("overlay: member {name}: {reason}")]
    UnsafeMember {
        /// The name as stored.
        name: String,
        /// Why.
        reason: String,
    },
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
    /// A statement cannot be made (a host name that cannot be a file stem).
    #[error("statement: {0}")]
    Statement(String),
    /// A generation file does not hold a number.
    #[error("{subject}: {reason}")]
    Generation {
        /// The file (or "generation file" when parsing bytes).
        subject: String,
        /// Why.
        reason: &'static str,
    },
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

/// Read a regular file of at most `limit` bytes (never more into memory). A FIFO or a device on
/// the medium is refused without blocking ([`apk::limits::open`]): the boot reads these files.
pub(crate) fn read_bounded(path: &std::path::Path, limit: u64) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let f = apk::limits::open(path).at(path)?;
    let mut out = Vec::new();
    f.take(limit + 1).read_to_end(&mut out).at(path)?;
    if out.len() as u64 > limit {
        return Err(Error::FileTooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(out)
}

/// Read an overlay file, refusing more than [`MAX_OVERLAY_BYTES`] (never read further).
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>, Error> {
    read_bounded(path, MAX_OVERLAY_BYTES)
}

/// Read a `.sig` file, refusing more than [`sign::MAX_SIGNATURE_BYTES`]; `None` when there is
/// none.
pub fn read_signature(path: &std::path::Path) -> Result<Option<Vec<u8>>, Error> {
    match read_bounded(path, sign::MAX_SIGNATURE_BYTES as u64) {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
        other => other.map(Some),
    }
}
