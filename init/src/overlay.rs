//! The overlay seam: what the boot decided about the apkovl, handed to the crate that applies it.
//!
//! The init chooses the overlay file, its detached signature, the encryption (by file name), the
//! trust policy and the target root ([`crate::plan`]); an [`OverlayApplier`] (the `overlays` crate,
//! linked by the lead) reads the file once, checks the signature, asks the init's policy
//! ([`OverlayRequest::judge`]) **before extracting anything**, decrypts (asking the console for the
//! passphrase through [`PassphrasePrompt`]) and extracts safely under the root. The init checks the
//! returned [`OverlayReport`] against the policy again (belt and braces: a refused overlay fails
//! the boot even if an applier extracted it by mistake).
use std::path::PathBuf;

pub use crate::cmdline::VerifyPolicy;
pub use crate::plan::Acceptance;
pub use crate::step::StepError;

/// How the overlay file is encrypted, from its name (text after `.apkovl.tar.gz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryption {
    /// `NAME.apkovl.tar.gz`: plain gzip tar.
    None,
    /// `NAME.apkovl.tar.gz.age`: age (passphrase/scrypt or recipient), authenticated.
    Age,
    /// `NAME.apkovl.tar.gz.<cipher>`: legacy `openssl enc -<cipher>` (`Salted__`, lbu.md §7).
    OpensslEnc {
        /// The cipher name (`aes-256-cbc`).
        cipher: String,
    },
}

/// Everything the boot decided about applying the overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayRequest {
    /// The overlay file (`/media/vda1/host.apkovl.tar.gz`).
    pub file: PathBuf,
    /// Its detached signature (`<file>.sig`) when present.
    pub signature: Option<PathBuf>,
    /// Encryption, from the file name.
    pub encryption: Encryption,
    /// The new root to extract into (`/sysroot`).
    pub root: PathBuf,
    /// Trusted overlay public keys (`/etc/apkovl/keys`, ed25519 PEM, in the initramfs).
    pub trusted_keys_dir: PathBuf,
    /// The effective `apkovl_verify` policy.
    pub policy: VerifyPolicy,
    /// `quiet` on the command line.
    pub quiet: bool,
}

impl OverlayRequest {
    /// The init's verdict on a signature check. An applier must call this after checking and
    /// before extracting, and stop with the returned error when it refuses.
    pub fn judge(&self, check: &SignatureCheck) -> Result<Acceptance, StepError> {
        crate::plan::judge_signature(self.policy, check, &self.file)
    }
}

/// Result of the signature check. What an applier reports:
/// - no `req.signature` → `Unsigned`;
/// - a signature that verifies (ed25519, strict) with a key in `req.trusted_keys_dir` →
///   `Verified`;
/// - a signature that verifies with none of them (tampered file, foreign key, malformed `.sig`,
///   or no trusted keys at all) → `Bad`; except with `req.policy == Off` and no trusted keys,
///   where there is nothing to check against → `Unsigned`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureCheck {
    /// A valid signature by a trusted key.
    Verified {
        /// Which key (file name or fingerprint).
        key: String,
    },
    /// No signature (or not checked because the policy is `off` and there is none).
    Unsigned,
    /// A signature that does not verify (wrong key, tampered file, malformed).
    Bad {
        /// Why.
        reason: String,
    },
}

/// What applying the overlay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayReport {
    /// The signature check the applier made (and judged).
    pub signature: SignatureCheck,
    /// Extracted member names relative to the root, directories with a trailing `/` (the
    /// "overlay file list" that the installer protects, boot-params §3.6).
    pub files: Vec<String>,
    /// Bytes extracted.
    pub bytes: u64,
    /// Paths of the overlay's deletion manifest, removed after the package install
    /// ([`OverlayApplier::after_install`]).
    pub deletions: Vec<String>,
    /// Non-fatal problems for the console (e.g. members refused by the safe extraction).
    pub warnings: Vec<String>,
}

/// A passphrase, wiped from memory when dropped.
pub struct Secret(String);

impl Secret {
    /// Wraps a passphrase.
    pub fn new(s: String) -> Self {
        Self(s)
    }

    /// The passphrase.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.fill(0);
        // Keep the zeroing from being optimised away as a dead store.
        std::hint::black_box(&bytes);
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Asks for the overlay passphrase.
pub trait PassphrasePrompt {
    /// Returns the next passphrase to try, or `None` when the attempts are used up or there is
    /// no console to ask on. `what` names the overlay in the prompt.
    fn ask(&mut self, what: &str) -> Option<Secret>;
}

/// Applies an overlay to the new root (implemented with the `overlays` crate).
pub trait OverlayApplier {
    /// Reads `req.file` once, checks its signature, calls [`OverlayRequest::judge`] and stops if
    /// it refuses, decrypts (calling `prompt.ask` until a passphrase works or it returns `None`),
    /// extracts under `req.root` safely, and reports what it extracted.
    fn apply(
        &mut self,
        req: &OverlayRequest,
        prompt: &mut dyn PassphrasePrompt,
    ) -> Result<OverlayReport, StepError>;

    /// Called once the packages are installed (still before `switch_root`): the overlay's
    /// deletion manifest (`report.deletions`) is applied here, so that files the user deleted
    /// stay deleted even when a package ships them.
    fn after_install(
        &mut self,
        req: &OverlayRequest,
        report: &OverlayReport,
    ) -> Result<(), StepError>;
}
