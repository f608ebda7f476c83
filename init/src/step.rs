//! The error of the steps the init delegates to other crates (overlay, package install).
//!
//! Kept small and string-carrying on purpose: the `overlays` and `apk` crates have their own
//! error enums; the adapters in the init map them here with their subject (file, package) and
//! their message, which is all the failure report needs.
use std::path::PathBuf;

/// A delegated step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The overlay's signature was refused by the policy.
    #[error("{}: signature check failed: {reason}", file.display())]
    SignatureRefused {
        /// The overlay.
        file: PathBuf,
        /// Why (policy and check result).
        reason: String,
    },
    /// No passphrase opened the encrypted overlay.
    #[error("{}: could not decrypt: {reason}", file.display())]
    Decrypt {
        /// The overlay.
        file: PathBuf,
        /// Why (wrong passphrase after N attempts, no console, unsupported cipher).
        reason: String,
    },
    /// Anything else, with its subject first.
    #[error("{subject}: {reason}")]
    Failed {
        /// File, package or repository concerned.
        subject: String,
        /// What went wrong.
        reason: String,
    },
}
