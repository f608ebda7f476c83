//! Pure boot decisions: what to boot from, which overlay and whether to trust it, which
//! packages in which order, which services, mount points and fstab/inittab/repositories lines.
//!
//! Nothing here touches the system; every function takes the facts it needs (the command line,
//! the boot policy, the media found, file contents, a "does this path exist" callback) and
//! returns a value, so each rule of docs/boot.md is a unit test. Each boot phase of
//! [`crate::boot`] asks one of these modules: this one decides what to boot from (supported
//! modes, repositories); [`overlay`] which overlay file; [`trust`] the overlay policy and the one
//! verdict on an overlay; [`packages`] what to install; [`newroot`] what to write into the new
//! root; [`modloop`] which modloop, how it must verify and what it is linked to; [`sealed`] the
//! rules of an image sealed in a signed unified kernel image.
pub mod modloop;
pub mod network;
mod newroot;
mod overlay;
mod packages;
pub mod sealed;
mod trust;

pub use newroot::*;
pub use overlay::*;
pub use packages::*;
pub use trust::*;

use std::path::{Path, PathBuf};

use crate::cmdline::{ApkovlSpec, BootConfig};
use crate::media::Medium;

/// A decision that stops the boot, with what and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// `root=` asks for root-device mode, which this init does not implement.
    #[error(
        "root={0}: root-device mode is not supported by this init (diskless only); remove root="
    )]
    RootMode(String),
    /// `apkovl=URL` cannot be downloaded as it is.
    #[error("apkovl={}: {}", apk::http::url::display(.0), .1)]
    OverlayUrl(String, String),
    /// `apkovl=URL` reached the overlay choice without being downloaded (a bug).
    #[error("apkovl={}: not downloaded", apk::http::url::display(.0))]
    UrlOverlay(String),
    /// `alpine_repo=` holds a URL the apk core cannot download.
    #[error(
        "alpine_repo={}: only http:// and https:// repositories can be downloaded",
        apk::http::url::display(.0)
    )]
    UrlRepository(String),
    /// A URL needs the network, and `ip=off` forbids it.
    #[error("{0} needs the network, but ip=off")]
    NetworkOff(String),
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
    /// The chosen overlay is not a regular file (upstream silently boots without it).
    #[error("{}: apkovl is not a regular file", .0.display())]
    OverlayNotAFile(PathBuf),
    /// Several overlays were found and none was selected (upstream takes the first).
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
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(PlanError::OverlayUrl(
                u.clone(),
                "only http:// and https:// can be downloaded".into(),
            ));
        }
        if cfg.ip == Some(crate::cmdline::IpSpec::Off) {
            return Err(PlanError::NetworkOff(format!(
                "apkovl={}",
                apk::http::url::display(u)
            )));
        }
    }
    for r in &cfg.alpine_repo {
        if network::is_url(r) {
            if !(r.starts_with("http://") || r.starts_with("https://")) {
                return Err(PlanError::UrlRepository(r.clone()));
            }
            if cfg.ip == Some(crate::cmdline::IpSpec::Off) {
                return Err(PlanError::NetworkOff(format!(
                    "alpine_repo={}",
                    apk::http::url::display(r)
                )));
            }
            continue;
        }
        if r.contains("://") {
            return Err(PlanError::UrlRepository(r.clone()));
        }
        if !r.starts_with('/') {
            return Err(PlanError::RelativeRepository(r.clone()));
        }
    }
    Ok(())
}

/// tmpfs options of the new root: `mode=0755[,size=<root_size>][,<rootflags>]` (docs/boot.md,
/// "tmpfs root").
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

/// The boot repositories: `alpine_repo=` paths (each must exist) and URLs (downloaded by the
/// apk core), else every repository found on the media, in media order.
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
        .map(|r| {
            let p = PathBuf::from(r);
            if network::is_url(r) || exists(&p) {
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

    #[test]
    fn unsupported_modes_are_refused_up_front() {
        assert_eq!(check_supported(&BootConfig::from_cmdline("quiet")), Ok(()));
        assert!(matches!(
            check_supported(&BootConfig::from_cmdline("root=/dev/sda2")),
            Err(PlanError::RootMode(_))
        ));
        assert_eq!(
            check_supported(&BootConfig::from_cmdline(
                "apkovl=https://x/{MAC}.apkovl.tar.gz"
            )),
            Ok(())
        );
        assert!(matches!(
            check_supported(&BootConfig::from_cmdline("apkovl=ftp://x/a.apkovl.tar.gz")),
            Err(PlanError::OverlayUrl(..))
        ));
        assert!(matches!(
            check_supported(&BootConfig::from_cmdline(
                "ip=off apkovl=http://x/a.apkovl.tar.gz"
            )),
            Err(PlanError::NetworkOff(_))
        ));
        assert_eq!(
            check_supported(&BootConfig::from_cmdline(
                "alpine_repo=/media/a/apks,http://dl-cdn/x,https://mirror/y"
            )),
            Ok(())
        );
        assert_eq!(
            check_supported(&BootConfig::from_cmdline("alpine_repo=ftp://mirror/x"))
                .unwrap_err()
                .to_string(),
            "alpine_repo=ftp://mirror/x: only http:// and https:// repositories can be downloaded"
        );
        assert_eq!(
            check_supported(&BootConfig::from_cmdline("ip=off alpine_repo=http://m/x")),
            Err(PlanError::NetworkOff("alpine_repo=http://m/x".into()))
        );
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
        // URLs are not looked for on the media.
        let cfg = BootConfig::from_cmdline("alpine_repo=http://10.0.2.2:8080/apks");
        assert_eq!(
            repositories(&cfg, &media, &|_| false).unwrap(),
            vec![PathBuf::from("http://10.0.2.2:8080/apks")]
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
