//! Pure boot decisions: which overlay, which trust verdict, which packages in which order, which
//! services, which mount points and fstab/inittab/repositories lines.
//!
//! Nothing here touches the system; every function takes the facts it needs (the command line,
//! the media found, file contents, a "does this path exist" callback) and returns a value, so
//! each Alpine rule (boot-params.md §3.5–§3.11) and each documented deviation (§8) is a unit test.
//! This module decides what to boot from (supported modes, overlay choice and trust verdict,
//! repositories); `packages` decides what to install; `newroot` what to write into the new root.
mod newroot;
mod packages;

pub use newroot::*;
pub use packages::*;

use std::path::{Component, Path, PathBuf};

use crate::cmdline::{ApkovlSpec, BootConfig, VerifyPolicy};
use crate::media::Medium;
use crate::overlay::{Encryption, SignatureCheck};
use crate::step::StepError;

/// A decision that stops the boot, with what and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// `root=` asks for root-device mode, which this init does not implement.
    #[error(
        "root={0}: root-device mode is not supported by this init (diskless only); remove root="
    )]
    RootMode(String),
    /// `apkovl=` is a URL.
    #[error("apkovl={0}: network overlays are not supported (no network at boot); use DEV:PATH or a path")]
    UrlOverlay(String),
    /// `alpine_repo=` holds a URL.
    #[error("alpine_repo={0}: network repositories are not supported (no network at boot); use a local path")]
    UrlRepository(String),
    /// `alpine_repo=` holds a relative path.
    #[error("alpine_repo={0}: not an absolute path")]
    RelativeRepository(String),
    /// An `alpine_repo=` path does not exist after discovery.
    #[error("alpine_repo={}: not found on the boot media", .0.display())]
    RepositoryMissing(PathBuf),
    /// The device named by `apkovl=DEV:PATH` did not appear.
    #[error("apkovl={0}: device not found")]
    OverlayDeviceMissing(String),
    /// The path in `apkovl=DEV:PATH` leaves the device.
    #[error("apkovl=…:{0}: path must stay on the device (no ..)")]
    OverlayPathEscapes(String),
    /// The chosen overlay is not a regular file (upstream silently boots without it, §8.5).
    #[error("{}: apkovl is not a regular file", .0.display())]
    OverlayNotAFile(PathBuf),
    /// Several overlays were found and none was selected (upstream takes the first, §8.8).
    #[error("ambiguous apkovl: {} found ({}); select one with apkovl=", .0.len(), list_paths(.0))]
    AmbiguousOverlay(Vec<PathBuf>),
    /// `alpine_dev=` named a device that did not appear.
    #[error("alpine_dev={0}: device not found")]
    SelectedDeviceMissing(String),
    /// Nothing to boot from.
    #[error("no boot medium found: no boot repository and no apkovl on {0} block device(s)")]
    NoMedium(usize),
}

fn list_paths(p: &[PathBuf]) -> String {
    p.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Refuses command lines this init cannot honour, before any device is touched.
pub fn check_supported(cfg: &BootConfig) -> Result<(), PlanError> {
    if let Some(root) = &cfg.root {
        return Err(PlanError::RootMode(root.clone()));
    }
    if let Some(ApkovlSpec::Url(u)) = &cfg.apkovl {
        return Err(PlanError::UrlOverlay(u.clone()));
    }
    for r in &cfg.alpine_repo {
        if r.contains("://") {
            return Err(PlanError::UrlRepository(r.clone()));
        }
        if !r.starts_with('/') {
            return Err(PlanError::RelativeRepository(r.clone()));
        }
    }
    Ok(())
}

/// tmpfs options of the new root: `mode=0755[,size=<root_size>][,<rootflags>]` (§3.4).
pub fn tmpfs_options(cfg: &BootConfig) -> String {
    let mut opts = String::from("mode=0755");
    if let Some(size) = &cfg.root_size {
        opts.push_str(",size=");
        opts.push_str(size);
    }
    if let Some(flags) = cfg.rootflags.as_deref().filter(|f| !f.is_empty()) {
        opts.push(',');
        opts.push_str(flags);
    }
    opts
}

/// The effective `apkovl_verify`: the command line, else `required` when the initramfs holds
/// overlay keys (whoever built it wants signed overlays), else `off` (Alpine's behaviour).
pub fn effective_verify_policy(param: Option<VerifyPolicy>, keys_present: bool) -> VerifyPolicy {
    match param {
        Some(p) => p,
        None if keys_present => VerifyPolicy::Required,
        None => VerifyPolicy::Off,
    }
}

/// Why an overlay was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acceptance {
    /// Signed by a trusted key.
    Verified {
        /// The key.
        key: String,
    },
    /// Unsigned, accepted under `optional` (the caller prints a warning).
    UnsignedWarn,
    /// Unsigned, accepted under `off`.
    Unsigned,
}

/// The signature verdict. A bad signature is never accepted, whatever the policy: a signature
/// that is present and wrong means tampering or a wrong key, both worth stopping for.
pub fn judge_signature(
    policy: VerifyPolicy,
    check: &SignatureCheck,
    file: &Path,
) -> Result<Acceptance, StepError> {
    let refuse = |reason: String| StepError::SignatureRefused {
        file: file.to_path_buf(),
        reason,
    };
    match (policy, check) {
        (_, SignatureCheck::Bad { reason }) => Err(refuse(format!("bad signature: {reason}"))),
        (_, SignatureCheck::Verified { key }) => Ok(Acceptance::Verified { key: key.clone() }),
        (VerifyPolicy::Required, SignatureCheck::Unsigned) => Err(refuse(
            "unsigned, and apkovl_verify=required (sign it, or boot with apkovl_verify=optional)"
                .into(),
        )),
        (VerifyPolicy::Optional, SignatureCheck::Unsigned) => Ok(Acceptance::UnsignedWarn),
        (VerifyPolicy::Off, SignatureCheck::Unsigned) => Ok(Acceptance::Unsigned),
    }
}

/// Encryption of an overlay from its name: nothing after `.apkovl.tar.gz` → none, `.age` → age,
/// anything else → legacy `openssl enc` with that cipher (upstream's rule: the suffix is the cipher).
pub fn encryption_of(file: &Path) -> Encryption {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let suffix = name
        .split_once(".apkovl.tar.gz")
        .map(|(_, s)| s)
        .unwrap_or("");
    match suffix.strip_prefix('.') {
        None | Some("") => Encryption::None,
        Some("age") => Encryption::Age,
        Some(cipher) => Encryption::OpensslEnc {
            cipher: cipher.to_string(),
        },
    }
}

/// The chosen overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayChoice {
    /// The file.
    pub file: PathBuf,
    /// `<file>.sig`, when it exists.
    pub signature: Option<PathBuf>,
    /// From the name.
    pub encryption: Encryption,
}

/// What a path is, for decisions that depend on the filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Regular file.
    File,
    /// Anything else that exists.
    Other,
}

/// Picks the overlay (§3.5, with §8.5/§8.8 fixed): `apkovl=DEV:PATH` → PATH on that medium;
/// `apkovl=PATH` → that path; nothing → the single overlay found on the media, none when there is
/// none, an error when there are several. An explicit overlay that is not a regular file is an
/// error (upstream boots without it, silently).
pub fn choose_overlay(
    spec: Option<&ApkovlSpec>,
    media: &[Medium],
    kind: &dyn Fn(&Path) -> Option<Kind>,
) -> Result<Option<OverlayChoice>, PlanError> {
    let file = match spec {
        Some(ApkovlSpec::Url(u)) => return Err(PlanError::UrlOverlay(u.clone())),
        Some(ApkovlSpec::OnDevice { dev, path, .. }) => {
            let medium = media
                .iter()
                .find(|m| m.matches(dev))
                .ok_or_else(|| PlanError::OverlayDeviceMissing(dev.to_string()))?;
            let rel = Path::new(path.trim_start_matches('/'));
            if rel.components().any(|c| !matches!(c, Component::Normal(_)))
                || rel.as_os_str().is_empty()
            {
                return Err(PlanError::OverlayPathEscapes(path.clone()));
            }
            medium.mount_point.join(rel)
        }
        Some(ApkovlSpec::Path(p)) => p.clone(),
        None => {
            let all: Vec<PathBuf> = media
                .iter()
                .flat_map(|m| m.overlays.iter().cloned())
                .collect();
            match all.len() {
                0 => return Ok(None),
                1 => all[0].clone(),
                _ => return Err(PlanError::AmbiguousOverlay(all)),
            }
        }
    };
    if kind(&file) != Some(Kind::File) {
        return Err(PlanError::OverlayNotAFile(file));
    }
    let mut sig = file.clone().into_os_string();
    sig.push(".sig");
    let sig = PathBuf::from(sig);
    let signature = (kind(&sig) == Some(Kind::File)).then_some(sig);
    let encryption = encryption_of(&file);
    Ok(Some(OverlayChoice {
        file,
        signature,
        encryption,
    }))
}

/// The boot repositories: `alpine_repo=` paths (each must exist), else every repository found
/// on the media, in media order.
pub fn repositories(
    cfg: &BootConfig,
    media: &[Medium],
    exists: &dyn Fn(&Path) -> bool,
) -> Result<Vec<PathBuf>, PlanError> {
    if cfg.alpine_repo.is_empty() {
        return Ok(media
            .iter()
            .flat_map(|m| m.repositories.iter().cloned())
            .collect());
    }
    cfg.alpine_repo
        .iter()
        .map(PathBuf::from)
        .map(|p| {
            if exists(&p) {
                Ok(p)
            } else {
                Err(PlanError::RepositoryMissing(p))
            }
        })
        .collect()
}

/// Whether discovery found something to boot from.
pub fn check_found(
    cfg: &BootConfig,
    media: &[Medium],
    devices_seen: usize,
) -> Result<(), PlanError> {
    if let Some(sel) = &cfg.alpine_dev {
        if !media.iter().any(|m| m.matches(sel)) {
            return Err(PlanError::SelectedDeviceMissing(sel.to_string()));
        }
    }
    let anything = !cfg.alpine_repo.is_empty()
        || cfg.apkovl.is_some()
        || media
            .iter()
            .any(|m| !m.repositories.is_empty() || !m.overlays.is_empty());
    if anything {
        Ok(())
    } else {
        Err(PlanError::NoMedium(devices_seen))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::media::sample_medium as medium;

    fn files(paths: &'static [&'static str]) -> impl Fn(&Path) -> Option<Kind> {
        move |p: &Path| {
            paths
                .iter()
                .any(|x| Path::new(x) == p)
                .then_some(Kind::File)
        }
    }

    #[test]
    fn unsupported_modes_are_refused_up_front() {
        assert_eq!(check_supported(&BootConfig::from_cmdline("quiet")), Ok(()));
        assert!(matches!(
            check_supported(&BootConfig::from_cmdline("root=/dev/sda2")),
            Err(PlanError::RootMode(_))
        ));
        assert!(matches!(
            check_supported(&BootConfig::from_cmdline(
                "apkovl=https://x/a.apkovl.tar.gz"
            )),
            Err(PlanError::UrlOverlay(_))
        ));
        assert!(matches!(
            check_supported(&BootConfig::from_cmdline(
                "alpine_repo=/media/a/apks,http://dl-cdn/x"
            )),
            Err(PlanError::UrlRepository(_))
        ));
        assert!(matches!(
            check_supported(&BootConfig::from_cmdline("alpine_repo=apks")),
            Err(PlanError::RelativeRepository(_))
        ));
    }

    #[test]
    fn tmpfs_option_string() {
        assert_eq!(tmpfs_options(&BootConfig::default()), "mode=0755");
        assert_eq!(
            tmpfs_options(&BootConfig::from_cmdline("root_size=1G")),
            "mode=0755,size=1G"
        );
        assert_eq!(
            tmpfs_options(&BootConfig::from_cmdline(
                "root_size=1G rootflags=size=2G,nr_inodes=5k"
            )),
            "mode=0755,size=1G,size=2G,nr_inodes=5k"
        );
    }

    #[test]
    fn verify_policy_default_depends_on_embedded_keys() {
        assert_eq!(effective_verify_policy(None, true), VerifyPolicy::Required);
        assert_eq!(effective_verify_policy(None, false), VerifyPolicy::Off);
        assert_eq!(
            effective_verify_policy(Some(VerifyPolicy::Optional), true),
            VerifyPolicy::Optional
        );
        assert_eq!(
            effective_verify_policy(Some(VerifyPolicy::Required), false),
            VerifyPolicy::Required
        );
        assert_eq!(
            effective_verify_policy(Some(VerifyPolicy::Off), true),
            VerifyPolicy::Off
        );
    }

    #[test]
    fn signature_verdict_matrix() {
        let f = Path::new("/media/usb/h.apkovl.tar.gz");
        let verified = SignatureCheck::Verified {
            key: "admin.pub".into(),
        };
        let bad = SignatureCheck::Bad {
            reason: "wrong key".into(),
        };
        let unsigned = SignatureCheck::Unsigned;
        for policy in [
            VerifyPolicy::Required,
            VerifyPolicy::Optional,
            VerifyPolicy::Off,
        ] {
            assert_eq!(
                judge_signature(policy, &verified, f),
                Ok(Acceptance::Verified {
                    key: "admin.pub".into()
                })
            );
            let err = judge_signature(policy, &bad, f).unwrap_err();
            assert_eq!(
                err.to_string(),
                "/media/usb/h.apkovl.tar.gz: signature check failed: bad signature: wrong key",
                "{policy}"
            );
        }
        let err = judge_signature(VerifyPolicy::Required, &unsigned, f).unwrap_err();
        assert!(
            err.to_string()
                .contains("unsigned, and apkovl_verify=required"),
            "{err}"
        );
        assert_eq!(
            judge_signature(VerifyPolicy::Optional, &unsigned, f),
            Ok(Acceptance::UnsignedWarn)
        );
        assert_eq!(
            judge_signature(VerifyPolicy::Off, &unsigned, f),
            Ok(Acceptance::Unsigned)
        );
    }

    #[test]
    fn encryption_from_name() {
        assert_eq!(
            encryption_of(Path::new("/m/h.apkovl.tar.gz")),
            Encryption::None
        );
        assert_eq!(
            encryption_of(Path::new("/m/h.apkovl.tar.gz.age")),
            Encryption::Age
        );
        assert_eq!(
            encryption_of(Path::new("/m/h.apkovl.tar.gz.aes-256-cbc")),
            Encryption::OpensslEnc {
                cipher: "aes-256-cbc".into()
            }
        );
        assert_eq!(
            encryption_of(Path::new("/m/odd-name.tgz")),
            Encryption::None
        );
    }

    #[test]
    fn overlay_found_on_media() {
        let media = [medium(
            "vda",
            "vfat",
            Some("A"),
            &["apks"],
            &["h.apkovl.tar.gz"],
        )];
        let kind = files(&[
            "/media/vda/h.apkovl.tar.gz",
            "/media/vda/h.apkovl.tar.gz.sig",
        ]);
        let c = choose_overlay(None, &media, &kind).unwrap().unwrap();
        assert_eq!(c.file, PathBuf::from("/media/vda/h.apkovl.tar.gz"));
        assert_eq!(
            c.signature,
            Some(PathBuf::from("/media/vda/h.apkovl.tar.gz.sig"))
        );
        assert_eq!(c.encryption, Encryption::None);
        let kind = files(&["/media/vda/h.apkovl.tar.gz"]);
        assert_eq!(
            choose_overlay(None, &media, &kind)
                .unwrap()
                .unwrap()
                .signature,
            None
        );
    }

    #[test]
    fn no_overlay_anywhere_is_fine() {
        let media = [medium("vda", "vfat", None, &["apks"], &[])];
        assert_eq!(choose_overlay(None, &media, &files(&[])), Ok(None));
    }

    #[test]
    fn several_overlays_without_selector_are_ambiguous() {
        let media = [
            medium("vda", "vfat", None, &["apks"], &["a.apkovl.tar.gz"]),
            medium("vdb", "ext4", None, &[], &["b.apkovl.tar.gz"]),
        ];
        let err = choose_overlay(None, &media, &files(&[])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ambiguous apkovl: 2 found (/media/vda/a.apkovl.tar.gz, /media/vdb/b.apkovl.tar.gz); select one with apkovl="
        );
        // A selector resolves it.
        let spec = ApkovlSpec::parse("/media/vdb/b.apkovl.tar.gz");
        let c = choose_overlay(Some(&spec), &media, &files(&["/media/vdb/b.apkovl.tar.gz"]))
            .unwrap()
            .unwrap();
        assert_eq!(c.file, PathBuf::from("/media/vdb/b.apkovl.tar.gz"));
    }

    #[test]
    fn overlay_on_named_device() {
        let media = [
            medium("vda", "vfat", Some("BOOT"), &["apks"], &[]),
            medium("vdb", "ext4", Some("CFG"), &[], &[]),
        ];
        let spec = ApkovlSpec::parse("LABEL=CFG:/cfg/h.apkovl.tar.gz.age");
        let c = choose_overlay(
            Some(&spec),
            &media,
            &files(&["/media/vdb/cfg/h.apkovl.tar.gz.age"]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.file, PathBuf::from("/media/vdb/cfg/h.apkovl.tar.gz.age"));
        assert_eq!(c.encryption, Encryption::Age);
        let missing = ApkovlSpec::parse("LABEL=NOPE:h.apkovl.tar.gz");
        assert_eq!(
            choose_overlay(Some(&missing), &media, &files(&[])),
            Err(PlanError::OverlayDeviceMissing("LABEL=NOPE".into()))
        );
        let escape = ApkovlSpec::parse("/dev/vdb:../../etc/shadow");
        assert!(matches!(
            choose_overlay(Some(&escape), &media, &files(&[])),
            Err(PlanError::OverlayPathEscapes(_))
        ));
    }

    #[test]
    fn explicit_overlay_must_be_a_regular_file() {
        let spec = ApkovlSpec::parse("/media/vda/missing.apkovl.tar.gz");
        assert_eq!(
            choose_overlay(Some(&spec), &[], &files(&[])),
            Err(PlanError::OverlayNotAFile(
                "/media/vda/missing.apkovl.tar.gz".into()
            ))
        );
        let dir = |_: &Path| Some(Kind::Other);
        assert!(matches!(
            choose_overlay(Some(&spec), &[], &dir),
            Err(PlanError::OverlayNotAFile(_))
        ));
    }

    #[test]
    fn repositories_from_media_or_alpine_repo() {
        let media = [
            medium("vda", "vfat", None, &["apks"], &[]),
            medium("vdb", "vfat", None, &["extra"], &[]),
        ];
        let cfg = BootConfig::default();
        assert_eq!(
            repositories(&cfg, &media, &|_| true).unwrap(),
            vec![
                PathBuf::from("/media/vda/apks"),
                PathBuf::from("/media/vdb/extra")
            ]
        );
        let cfg = BootConfig::from_cmdline("alpine_repo=/media/vdb/extra");
        assert_eq!(
            repositories(&cfg, &media, &|_| true).unwrap(),
            vec![PathBuf::from("/media/vdb/extra")]
        );
        assert_eq!(
            repositories(&cfg, &media, &|_| false),
            Err(PlanError::RepositoryMissing("/media/vdb/extra".into()))
        );
    }

    #[test]
    fn nothing_found_is_no_medium() {
        let cfg = BootConfig::default();
        assert_eq!(check_found(&cfg, &[], 0), Err(PlanError::NoMedium(0)));
        assert_eq!(
            check_found(&cfg, &[], 3).unwrap_err().to_string(),
            "no boot medium found: no boot repository and no apkovl on 3 block device(s)"
        );
        assert_eq!(
            check_found(&cfg, &[medium("vda", "vfat", None, &["apks"], &[])], 1),
            Ok(())
        );
        assert_eq!(
            check_found(
                &cfg,
                &[medium("vda", "vfat", None, &[], &["h.apkovl.tar.gz"])],
                1
            ),
            Ok(())
        );
        let sel = BootConfig::from_cmdline("alpine_dev=LABEL=X");
        assert_eq!(
            check_found(&sel, &[], 2),
            Err(PlanError::SelectedDeviceMissing("LABEL=X".into()))
        );
    }
}
