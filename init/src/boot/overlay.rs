//! The overlay phase (docs/boot.md, "Overlay"): choose the file ([`plan::choose_overlay`]), read
//! it once (bounded), verify its signature as stored ([`overlays::verify`]), ask the one verdict
//! ([`plan::judge`]) before anything is decrypted or extracted, decrypt (the initramfs's age
//! identity, else a passphrase asked on the console), apply it beneath the new root
//! ([`overlays::apply`]); after the package install, the overlay's deletion manifest
//! ([`overlays::apply_deletions`]).
use std::path::{Path, PathBuf};

use overlays::{OverlayKind, Secret, Verification};
use zeroize::Zeroizing;

use super::{Boot, BootError, SYSROOT};
use crate::cmdline::ApkovlSpec;
use crate::console;
use crate::media::Medium;
use crate::plan::{self, Acceptance, Kind, OverlayChoice, Refusal};
use crate::sys::{self, rootdir::RootDir};
use crate::timeline;

/// Largest age identity file in the initramfs (the overlay, its `.sig` and the generation file
/// are read with the overlays crate's bounds).
pub const MAX_IDENTITY_BYTES: u64 = 64 << 10;
/// Where `apkovl=URL` is saved (in the initramfs, freed at switch_root).
const DOWNLOAD_DIR: &str = "/apkovl-download";
/// The machine's UUID for `{UUID}`.
const DMI_UUID: &str = "/sys/class/dmi/id/product_uuid";
/// How many passphrases are asked before giving up (Alpine: 3).
const ATTEMPTS: usize = 3;

/// Why the overlay phase stopped. Each names the overlay file first.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// The overlay, its `.sig` or the generation file could not be read, or is larger than
    /// the overlays crate reads (the error names the file).
    #[error("{0}")]
    Read(overlays::Error),
    /// `apkovl=URL`: the overlay or its `.sig` could not be downloaded (the error names the URL
    /// and why, after the client's bounded retries).
    #[error("{0}")]
    Download(apk::http::HttpError),
    /// The verdict refused the overlay (nothing of it was used).
    #[error("{}: {refusal}", file.display())]
    Refused {
        /// The overlay.
        file: PathBuf,
        /// Which rule refused it.
        refusal: Refusal,
    },
    /// No secret opened the encrypted overlay.
    #[error("{}: could not decrypt: {reason}", file.display())]
    Decrypt {
        /// The overlay.
        file: PathBuf,
        /// Why (the last attempt's error, no console, no identity).
        reason: String,
    },
    /// The decrypted archive could not be applied (broken gzip/tar, too large, I/O).
    #[error("{}: {source}", file.display())]
    Apply {
        /// The overlay.
        file: PathBuf,
        /// The `overlays` crate's error.
        source: overlays::Error,
    },
    /// A path of the deletion manifest could not be deleted.
    #[error("overlay deletion {name}: {reason}")]
    Deletion {
        /// The path, relative to the new root.
        name: String,
        /// Why.
        reason: String,
    },
}

/// What the overlay phase leaves for the later phases.
pub(super) struct Applied {
    /// The overlay file.
    pub file: PathBuf,
    /// Extracted names relative to the root (apk's overlay file list: these win over packages).
    pub files: Vec<String>,
    /// Paths to delete after the package install.
    pub deletions: Vec<String>,
}

impl Boot {
    /// Chooses, verifies and applies the overlay (`None`: there is none).
    pub(super) fn apply_overlay(
        &mut self,
        media: &[Medium],
        root: &RootDir,
    ) -> Result<Option<Applied>, BootError> {
        let kind = |p: &Path| match std::fs::metadata(p) {
            Ok(m) if m.is_file() => Some(Kind::File),
            Ok(_) => Some(Kind::Other),
            Err(_) => None,
        };
        let (downloaded, url) = match &self.cfg.apkovl {
            Some(ApkovlSpec::Url(template)) => {
                let (spec, url) = self.download_overlay(&template.clone())?;
                (Some(spec), Some(url))
            }
            _ => (None, None),
        };
        let spec = downloaded.as_ref().or(self.cfg.apkovl.as_ref());
        let Some(choice) = plan::choose_overlay(spec, media, &kind)? else {
            log::info!("no apkovl found: default configuration");
            self.timeline.note("none");
            return Ok(None);
        };
        log::info!("Loading user settings from {}", choice.file.display());
        // What messages name: a downloaded overlay by its URL (the saved copy is ours).
        let shown = url
            .map(|u| PathBuf::from(apk::http::url::display(&u)))
            .unwrap_or_else(|| choice.file.clone());
        let data = overlays::read_file(&choice.file).map_err(OverlayError::Read)?;
        let verification = self.verify(&choice, &data)?;
        let facts = plan::OverlayFacts {
            kind: choice.kind.as_ref(),
            host: &choice.host,
            min_generation: min_generation(&choice, &verification)?,
        };
        let acceptance =
            plan::judge(&self.overlay_policy, &facts, &verification).map_err(|refusal| {
                OverlayError::Refused {
                    file: shown.clone(),
                    refusal,
                }
            })?;
        match &acceptance {
            Acceptance::Verified { key } => log::info!("apkovl signature verified (key {key})"),
            Acceptance::UnsignedWarn => log::warn!(
                "{}: apkovl is not signed (apkovl_verify=optional)",
                shown.display()
            ),
            Acceptance::Unsigned => log::debug!("apkovl is not signed"),
        }
        let recipient_ok = plan::check_recipient_overlay(&self.overlay_policy, &acceptance);
        let gz = decrypt(&choice, &shown, data, recipient_ok)?;
        let report = overlays::apply(&gz, Path::new(SYSROOT), &overlays::ApplyPolicy::default())
            .map_err(|source| OverlayError::Apply {
                file: shown.clone(),
                source,
            })?;
        for r in &report.refused {
            log::warn!("{}: refused {r}", shown.display());
        }
        if let Some(fstab) = root.read_string("etc/fstab", super::MAX_CONFIG_BYTES)? {
            if let Some(opts) = plan::root_remount_options(&fstab) {
                log::info!("remounting {SYSROOT} with the overlay's fstab options {opts}");
                sys::remount(Path::new(SYSROOT), &opts)?;
            }
        }
        self.timeline.note(format!(
            "{} entries, {}, {}",
            report.extracted.len(),
            timeline::human_bytes(gz.len() as u64),
            acceptance.note()
        ));
        Ok(Some(Applied {
            file: choice.file,
            files: report.extracted,
            deletions: report.deletions,
        }))
    }

    /// `apkovl=URL` (docs/boot.md, "Network: overlay"): the overlay and `URL.sig` are downloaded
    /// (bounded as a medium's files are read; a missing `.sig` is no signature) into the
    /// initramfs under the URL's file name, which the overlay phase then reads exactly as a file
    /// named by `apkovl=PATH`: the same verification, verdict and application.
    fn download_overlay(&mut self, template: &str) -> Result<(ApkovlSpec, String), BootError> {
        let mac = self.network.as_ref().and_then(|n| n.mac);
        let uuid = sys::read_file(Path::new(DMI_UUID), 256)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        let (url, name) = plan::overlay_url(template, mac, uuid.as_deref())?;
        if let Some(w) = plan::shared_name_warning(template) {
            log::warn!("{w}");
        }
        log::info!(
            "Downloading user settings from {}",
            apk::http::url::display(&url)
        );
        let client = apk::http::Client::new(super::network::http_options());
        let get = |u: &str, limit: u64| client.get_bytes(u, &apk::http::Get::limited(limit));
        let limit = plan::overlay_download_limit(sys::memfd::ram_unused());
        let data = get(&url, limit).map_err(OverlayError::Download)?;
        let sig_url = plan::signature_url(&url);
        let sig = match get(&sig_url, overlays::sign::MAX_SIGNATURE_BYTES as u64) {
            Ok(s) => Some(s),
            Err(e)
                if matches!(
                    e.kind,
                    apk::http::HttpErrorKind::Status {
                        code: 404 | 410,
                        ..
                    }
                ) =>
            {
                None
            }
            Err(e) => return Err(OverlayError::Download(e).into()),
        };
        let dir = Path::new(DOWNLOAD_DIR);
        let _ = std::fs::remove_dir_all(dir);
        sys::make_dirs(dir)?;
        let file = dir.join(&name);
        sys::write_file(&file, &data)?;
        if let Some(s) = sig {
            sys::write_file(&dir.join(format!("{name}.sig")), &s)?;
        }
        self.timeline.note(format!(
            "{} downloaded",
            timeline::human_bytes(data.len() as u64)
        ));
        Ok((ApkovlSpec::Path(file), url))
    }

    /// The signature check of the file as stored. Without overlay keys in the initramfs there is
    /// nothing to check a signature against: the overlay counts as unsigned (the policy then
    /// refuses it exactly when a signature is required).
    fn verify(&self, choice: &OverlayChoice, data: &[u8]) -> Result<Verification, BootError> {
        if !self.overlay_policy.keys {
            if choice.signature.is_some() {
                log::debug!("no overlay keys in the initramfs: signature not checked");
            }
            return Ok(Verification::Unsigned);
        }
        let sig = match &choice.signature {
            Some(p) => overlays::read_signature(p).map_err(OverlayError::Read)?,
            None => None,
        };
        Ok(overlays::verify(
            data,
            sig.as_deref(),
            Path::new(&bootspec::initramfs::absolute(
                bootspec::initramfs::APKOVL_KEYS,
            )),
        ))
    }

    /// Applies the overlay's deletion manifest once the packages are installed, so that files
    /// the user deleted stay deleted even when a package ships them.
    pub(super) fn apply_deletions(&self, applied: &Applied) -> Result<(), BootError> {
        if applied.deletions.is_empty() {
            return Ok(());
        }
        let rep = overlays::apply_deletions(Path::new(SYSROOT), &applied.deletions).map_err(
            |source| OverlayError::Apply {
                file: applied.file.clone(),
                source,
            },
        )?;
        if let Some(r) = rep.refused.first() {
            return Err(OverlayError::Deletion {
                name: r.name.clone(),
                reason: r.reason.clone(),
            }
            .into());
        }
        Ok(())
    }
}

/// The newest generation the medium records for the overlay's host (`HOST.apkovl.generation`
/// beside the overlay), when a signed statement is there to be checked against it. A file that
/// does not hold a number stops the boot (fail closed).
fn min_generation(
    choice: &OverlayChoice,
    verification: &Verification,
) -> Result<Option<u64>, OverlayError> {
    let Verification::Verified {
        statement: Some(_), ..
    } = verification
    else {
        return Ok(None);
    };
    let dir = choice.file.parent().unwrap_or(Path::new("/"));
    overlays::generation::read(dir, &choice.host).map_err(OverlayError::Read)
}

/// The gzip bytes of the overlay: plain ones as they are; age ones with the initramfs's identity
/// when there is one and the file is encrypted to recipients (and `recipient_ok`, see
/// [`plan::check_recipient_overlay`]), else with a passphrase; Alpine's `openssl enc` ones with a
/// passphrase.
/// `shown`: the name messages give the overlay (its URL when downloaded).
fn decrypt(
    choice: &OverlayChoice,
    shown: &Path,
    data: Vec<u8>,
    recipient_ok: Result<(), String>,
) -> Result<Vec<u8>, OverlayError> {
    let fail = |reason: String| OverlayError::Decrypt {
        file: shown.to_path_buf(),
        reason,
    };
    let Some(kind) = choice.kind.as_ref().filter(|k| **k != OverlayKind::Plain) else {
        return Ok(data);
    };
    let passphrase = match kind {
        // The header says how the key is wrapped; one that does not parse is reported here.
        OverlayKind::Age => {
            overlays::crypt::age_is_passphrase(&data).map_err(|e| fail(e.to_string()))?
        }
        _ => true,
    };
    if !passphrase {
        recipient_ok.map_err(fail)?;
        let identity = identity().map_err(fail)?;
        let Some(identity) = identity else {
            return Err(fail(format!(
                "encrypted to an age recipient, and the initramfs holds no identity ({}; \
                 mkinitfs --ovl-identity)",
                bootspec::initramfs::APKOVL_IDENTITY
            )));
        };
        log::info!("decrypting with the initramfs's age identity");
        return overlays::decrypt(&data, kind, &Secret::AgeIdentity(&identity))
            .map_err(|e| fail(e.to_string()));
    }
    let prompt = format!("Enter passphrase for {}: ", choice.file.display());
    let mut last = String::from("no passphrase given (no console to ask on)");
    for _ in 0..ATTEMPTS {
        let Some(passphrase) = console::ask_passphrase(&prompt) else {
            break;
        };
        match overlays::decrypt(&data, kind, &Secret::Passphrase(&passphrase)) {
            Ok(plain) => return Ok(plain),
            Err(e) => {
                last = e.to_string();
                log::warn!("{last}");
            }
        }
    }
    Err(fail(last))
}

/// The embedded age identity, if any, zeroed when dropped.
fn identity() -> Result<Option<Zeroizing<String>>, String> {
    let path = PathBuf::from(bootspec::initramfs::absolute(
        bootspec::initramfs::APKOVL_IDENTITY,
    ));
    let Some(bytes) = sys::read_file(&path, MAX_IDENTITY_BYTES).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Some(Zeroizing::new(text))),
        Err(e) => {
            zeroize::Zeroize::zeroize(&mut e.into_bytes());
            Err(format!(
                "{}: not an age identity (not UTF-8)",
                path.display()
            ))
        }
    }
}
