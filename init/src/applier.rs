//! The overlay applier of the real boot: the `overlays` crate verifies the detached signature,
//! decrypts (`.age`, or Alpine's `openssl enc` formats) with a passphrase asked on the console,
//! and extracts the apkovl safely into the new root; after the package install it performs the
//! deletions the overlay recorded.

use crate::overlay::{
    Encryption, OverlayApplier, OverlayReport, OverlayRequest, PassphrasePrompt, SignatureCheck,
    VerifyPolicy,
};
use crate::step::StepError;
use overlays::crypt::{self, Cipher, Secret};
use overlays::sign::Verification;

/// [`OverlayApplier`] backed by the `overlays` crate.
#[derive(Debug, Default)]
pub struct OverlaysApplier;

/// How many passphrases to try before giving up (Alpine: 3).
const ATTEMPTS: usize = 3;

impl OverlaysApplier {
    fn check_signature(req: &OverlayRequest, bytes: &[u8]) -> Result<SignatureCheck, StepError> {
        let sig = match &req.signature {
            Some(p) => match std::fs::read(p) {
                Ok(b) => Some(b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    return Err(StepError::Failed {
                        subject: p.display().to_string(),
                        reason: e.to_string(),
                    })
                }
            },
            None => None,
        };
        let have_keys = std::fs::read_dir(&req.trusted_keys_dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        if sig.is_some() && !have_keys && req.policy == VerifyPolicy::Off {
            // Nothing to check against, and the policy asks for nothing.
            return Ok(SignatureCheck::Unsigned);
        }
        Ok(
            match overlays::sign::verify(bytes, sig.as_deref(), &req.trusted_keys_dir) {
                Verification::Verified { key, .. } => SignatureCheck::Verified { key },
                Verification::Unsigned => SignatureCheck::Unsigned,
                Verification::Bad { reason } => SignatureCheck::Bad { reason },
            },
        )
    }

    fn decrypt(
        req: &OverlayRequest,
        bytes: Vec<u8>,
        prompt: &mut dyn PassphrasePrompt,
    ) -> Result<Vec<u8>, StepError> {
        let decrypt_err = |reason: String| StepError::Decrypt {
            file: req.file.clone(),
            reason,
        };
        let cipher = match &req.encryption {
            Encryption::None => return Ok(bytes),
            Encryption::Age => None,
            Encryption::OpensslEnc { cipher } => Some(
                Cipher::from_name(cipher)
                    .ok_or_else(|| decrypt_err(format!("Cipher {cipher} is not supported")))?,
            ),
        };
        let what = format!("Enter passphrase for {}: ", req.file.display());
        let mut last = String::from("no passphrase given");
        for _ in 0..ATTEMPTS {
            let Some(secret) = prompt.ask(&what) else {
                break;
            };
            let pw = secret.expose();
            let res = match cipher {
                None => crypt::decrypt_age(&bytes, &Secret::Passphrase(pw)),
                Some(c) => crypt::decrypt_legacy(&bytes, c, pw),
            };
            match res {
                Ok(plain) => return Ok(plain),
                Err(e) => last = e.to_string(),
            }
        }
        Err(decrypt_err(last))
    }
}

impl OverlayApplier for OverlaysApplier {
    fn apply(
        &mut self,
        req: &OverlayRequest,
        prompt: &mut dyn PassphrasePrompt,
    ) -> Result<OverlayReport, StepError> {
        let bytes = std::fs::read(&req.file).map_err(|e| StepError::Failed {
            subject: req.file.display().to_string(),
            reason: e.to_string(),
        })?;
        // The signature covers the bytes on the medium; judge it before anything is decrypted
        // or extracted.
        let check = Self::check_signature(req, &bytes)?;
        req.judge(&check)?;
        let plain = Self::decrypt(req, bytes, prompt)?;
        let policy = overlays::ApplyPolicy::default();
        let rep = overlays::apply(&plain, &req.root, &policy).map_err(|e| StepError::Failed {
            subject: req.file.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(OverlayReport {
            signature: check,
            files: rep.extracted,
            bytes: plain.len() as u64,
            deletions: rep.deletions,
            warnings: rep.refused.iter().map(|r| format!("refused {r}")).collect(),
        })
    }

    fn after_install(
        &mut self,
        req: &OverlayRequest,
        report: &OverlayReport,
    ) -> Result<(), StepError> {
        if report.deletions.is_empty() {
            return Ok(());
        }
        let rep = overlays::apply_deletions(&req.root, &report.deletions).map_err(|e| {
            StepError::Failed {
                subject: "overlay deletions".into(),
                reason: e.to_string(),
            }
        })?;
        if let Some(r) = rep.refused.first() {
            return Err(StepError::Failed {
                subject: format!("overlay deletion {}", r.name),
                reason: r.reason.clone(),
            });
        }
        Ok(())
    }
}
