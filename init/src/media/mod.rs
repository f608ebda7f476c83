//! Boot media discovery, the way nlplug-findfs does it, but event-driven and deterministic.
//!
//! Block devices are taken from `/sys/class/block` at start (coldplug) and whenever a uevent says
//! one was added or changed (hotplug). Each is probed ([`crate::probe`]): a whole disk with a
//! partition table is skipped (its partitions are probed); the partitions of a whole disk that
//! itself holds a filesystem (isohybrid images) are skipped; anything else with a known filesystem
//! is mounted read-only at `/media/<kernel name>`. Its **top level** is examined: a directory
//! holding `.boot_repository` is a boot repository, a non-directory named `*.apkovl.tar.gz*` an
//! overlay (except `*.sig`, which is an overlay's detached signature, and hidden names, which are
//! temporary files), a `cache/` directory Alpine's local package cache. Media with nothing for the
//! boot are unmounted again. With `alpine_dev=` only that device is used.
//!
//! When to stop ([`Discovery`], pure and unit-tested): as soon as what the command line asks for
//! is there: the `alpine_dev=` device, or a boot repository (or every `alpine_repo=` path) plus the
//! overlay (`apkovl=` path/device, else any). Otherwise after an idle time with no new block
//! device: 5 s (+ `usbdelay`) while nothing useful was found, 250 ms (or `usbdelay` seconds, when
//! given) after a repository appeared (an overlay may be on a slower second device), plus 1 s once
//! `usb-storage` is loaded (USB disks appear after the controller settles). Upstream documents
//! `usbdelay` as "wait N seconds for USB" but applies it only after a repository is found; here it
//! extends both waits. Devices are handled in natural name order (`sda` < `sda2` < `sda10` <
//! `sdb`), every candidate is reported, and the resulting media list is sorted by name.
mod scan;
mod wait;

pub use scan::{coldplug, discover, start_coldplug, Coldplug, NLS_MODULES};
pub use wait::{Discovery, WaitPolicy};

use std::path::{Path, PathBuf};

use crate::cmdline::DeviceSpec;
use crate::probe::FsInfo;

/// Where media are mounted while the boot runs.
pub const MEDIA_DIR: &str = "/media";

/// A mounted boot medium and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Medium {
    /// Kernel device name (`vda1`, `sr0`).
    pub name: String,
    /// Filesystem type (`vfat`, `iso9660`, ...).
    pub fstype: String,
    /// Filesystem label.
    pub label: Option<String>,
    /// Filesystem UUID.
    pub uuid: Option<String>,
    /// Where it is mounted now (`/media/vda1`).
    pub mount_point: PathBuf,
    /// Boot repositories (absolute directories holding `.boot_repository`).
    pub repositories: Vec<PathBuf>,
    /// Overlay files (absolute).
    pub overlays: Vec<PathBuf>,
    /// Alpine's local package cache (`cache/` at the top level).
    pub cache: Option<PathBuf>,
}

impl Medium {
    /// `vfat LABEL=X UUID=Y`
    pub fn identity(&self) -> String {
        let mut s = self.fstype.clone();
        if let Some(l) = &self.label {
            s.push_str(&format!(" LABEL={l}"));
        }
        if let Some(u) = &self.uuid {
            s.push_str(&format!(" UUID={u}"));
        }
        s
    }

    /// Whether `spec` names this medium.
    pub fn matches(&self, spec: &DeviceSpec) -> bool {
        spec.matches(&self.name, self.label.as_deref(), self.uuid.as_deref())
    }
}

/// What the top level of a mounted filesystem holds (names, sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contents {
    /// Directories holding a regular file `.boot_repository`.
    pub repositories: Vec<String>,
    /// Overlay files.
    pub overlays: Vec<String>,
    /// Whether a `cache` directory exists.
    pub cache: bool,
}

impl Contents {
    /// Whether anything here matters to the boot.
    pub fn is_empty(&self) -> bool {
        self.repositories.is_empty() && self.overlays.is_empty()
    }
}

/// Whether a top-level file name is an overlay: what the `overlays` crate calls one
/// ([`overlays::kind_of`]: `NAME.apkovl.tar.gz` or with one more suffix, `age` or an
/// `openssl enc` cipher; not a `.sig`, a generation file or a copy such as `.gz.1.bak`), except
/// hidden names (temporary files of an interrupted commit). nlplug-findfs's glob
/// `*.apkovl.tar.gz*` took all of these.
pub fn is_overlay_name(name: &str) -> bool {
    !name.starts_with('.') && overlays::kind_of(name).is_some()
}

/// Examines the top level of `root` (a mounted medium).
pub fn scan_top_level(root: &Path) -> std::io::Result<Contents> {
    let mut c = Contents::default();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            let marker = entry.path().join(bootspec::medium::BOOT_REPOSITORY_MARKER);
            if std::fs::symlink_metadata(&marker)
                .map(|m| m.is_file())
                .unwrap_or(false)
            {
                c.repositories.push(name.clone());
            }
            if name == bootspec::medium::CACHE_DIR {
                c.cache = true;
            }
        } else if is_overlay_name(&name) {
            c.overlays.push(name);
        }
    }
    c.repositories.sort();
    c.overlays.sort();
    Ok(c)
}

/// Builds a [`Medium`] from a mount point's contents.
pub fn medium_from(name: &str, fs: &FsInfo, mount_point: &Path, contents: &Contents) -> Medium {
    Medium {
        name: name.to_string(),
        fstype: fs.fstype.to_string(),
        label: fs.label.clone(),
        uuid: fs.uuid.clone(),
        mount_point: mount_point.to_path_buf(),
        repositories: contents
            .repositories
            .iter()
            .map(|r| mount_point.join(r))
            .collect(),
        overlays: contents
            .overlays
            .iter()
            .map(|o| mount_point.join(o))
            .collect(),
        cache: contents.cache.then(|| mount_point.join("cache")),
    }
}

/// Natural order for device names: digit runs compare as numbers (`sda2` < `sda10`).
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn key(s: &str) -> Vec<(String, Option<u64>)> {
        let mut out = Vec::new();
        let mut text = String::new();
        let mut num: Option<u64> = None;
        for ch in s.chars() {
            if let Some(d) = ch.to_digit(10) {
                num = Some(num.unwrap_or(0).saturating_mul(10).saturating_add(d as u64));
            } else {
                if num.is_some() {
                    out.push((std::mem::take(&mut text), num.take()));
                }
                text.push(ch);
            }
        }
        if !text.is_empty() || num.is_some() {
            out.push((text, num));
        }
        out
    }
    key(a).cmp(&key(b)).then_with(|| a.cmp(b))
}

/// One block device seen during discovery, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Kernel name.
    pub name: String,
    /// What was found / why it was skipped.
    pub summary: String,
}

/// What discovery found.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// Mounted media, sorted by name.
    pub media: Vec<Medium>,
    /// Every block device seen, in natural name order.
    pub candidates: Vec<Candidate>,
    /// Whether discovery stopped because the goal was reached (else: timeout).
    pub complete: bool,
    /// Device modaliases whose drivers were not loaded yet when discovery stopped (the boot
    /// loads them in the background: [`DriverQueue`]).
    pub pending_drivers: Vec<String>,
}

/// The device modaliases whose drivers media discovery still has to load, one device at a time
/// between scans, so the medium is mounted as soon as its own drivers are in: a device announced
/// by a driver just loaded (virtio0 after virtio_pci, a SCSI disk after usb-storage) goes before
/// the devices still waiting from coldplug (depth first), and an IDE controller that takes its
/// time probing an empty CD drive no longer delays a virtio or USB disk found before it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DriverQueue {
    aliases: std::collections::VecDeque<String>,
}

impl DriverQueue {
    /// Appends coldplug's modaliases, in their order.
    pub fn push_back(&mut self, aliases: impl IntoIterator<Item = String>) {
        self.aliases.extend(aliases);
    }

    /// Puts what uevents announced before everything queued, in announcement order.
    pub fn push_front(&mut self, aliases: Vec<String>) {
        for a in aliases.into_iter().rev() {
            self.aliases.push_front(a);
        }
    }

    /// The next device to load drivers for.
    pub fn pop(&mut self) -> Option<String> {
        self.aliases.pop_front()
    }

    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.aliases.is_empty()
    }

    /// What is left, in order.
    pub fn into_rest(self) -> Vec<String> {
        self.aliases.into()
    }
}

impl Found {
    /// The report printed after discovery: one line per candidate.
    pub fn report(&self) -> String {
        if self.candidates.is_empty() {
            return "  (no block devices)\n".to_string();
        }
        self.candidates
            .iter()
            .map(|c| format!("  {}: {}\n", c.name, c.summary))
            .collect()
    }
}

/// A medium mounted under `/media/<name>` for unit tests of the decisions built on media.
#[cfg(test)]
pub(crate) fn sample_medium(
    name: &str,
    fstype: &str,
    label: Option<&str>,
    repos: &[&str],
    ovls: &[&str],
) -> Medium {
    let mp = std::path::PathBuf::from("/media").join(name);
    Medium {
        name: name.into(),
        fstype: fstype.into(),
        label: label.map(str::to_string),
        uuid: Some("AB12-CD34".into()),
        mount_point: mp.clone(),
        repositories: repos.iter().map(|r| mp.join(r)).collect(),
        overlays: ovls.iter().map(|o| mp.join(o)).collect(),
        cache: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_queue_is_depth_first() {
        let mut q = DriverQueue::default();
        assert!(q.is_empty());
        q.push_back([
            "pci:virtio".to_string(),
            "pci:piix".into(),
            "pci:xhci".into(),
        ]);
        assert_eq!(q.pop().as_deref(), Some("pci:virtio"));
        // virtio_pci announced virtio0 and virtio1: both before the rest of coldplug, in order.
        q.push_front(vec!["virtio:d2".into(), "virtio:d1".into()]);
        assert_eq!(q.pop().as_deref(), Some("virtio:d2"));
        q.push_front(Vec::new());
        assert_eq!(
            q.clone().into_rest(),
            vec![
                "virtio:d1".to_string(),
                "pci:piix".into(),
                "pci:xhci".into()
            ]
        );
        assert_eq!(q.pop().as_deref(), Some("virtio:d1"));
        assert_eq!(q.pop().as_deref(), Some("pci:piix"));
        assert_eq!(q.pop().as_deref(), Some("pci:xhci"));
        assert!(q.pop().is_none() && q.is_empty());
    }

    #[test]
    fn overlay_names() {
        assert!(is_overlay_name("host.apkovl.tar.gz"));
        assert!(is_overlay_name("host.apkovl.tar.gz.age"));
        assert!(is_overlay_name("host.apkovl.tar.gz.aes-256-cbc"));
        assert!(!is_overlay_name("host.apkovl.tar.gz.sig"));
        assert!(!is_overlay_name(".host.apkovl.tar.gz.tmp"));
        assert!(!is_overlay_name("host.tar.gz"));
        assert!(!is_overlay_name("apkovl.tar"));
        assert!(!is_overlay_name("host.apkovl.tar.gz.age.sig"));
        assert!(!is_overlay_name("host.apkovl.tar.gz.1.bak"));
        assert!(!is_overlay_name("host.apkovl.tar.gzip"));
        assert!(!is_overlay_name("host.apkovl.tar.gz."));
    }

    #[test]
    fn top_level_scan_finds_repositories_overlays_and_cache() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("apks/x86_64")).unwrap();
        std::fs::write(d.join("apks/.boot_repository"), b"").unwrap();
        std::fs::create_dir_all(d.join("extra")).unwrap();
        std::fs::write(d.join("extra/.boot_repository"), b"").unwrap();
        // A marker that is a directory does not count; nor does a deeper one.
        std::fs::create_dir_all(d.join("fake/.boot_repository")).unwrap();
        std::fs::create_dir_all(d.join("deep/sub")).unwrap();
        std::fs::write(d.join("deep/sub/.boot_repository"), b"").unwrap();
        std::fs::create_dir_all(d.join("cache")).unwrap();
        std::fs::write(d.join("fw.apkovl.tar.gz"), b"x").unwrap();
        std::fs::write(d.join("fw.apkovl.tar.gz.sig"), b"x").unwrap();
        std::fs::write(d.join(".alpine-release"), b"x").unwrap();
        // A directory named like an overlay is not one.
        std::fs::create_dir_all(d.join("dir.apkovl.tar.gz")).unwrap();
        let c = scan_top_level(d).unwrap();
        assert_eq!(c.repositories, vec!["apks", "extra"]);
        assert_eq!(c.overlays, vec!["fw.apkovl.tar.gz"]);
        assert!(c.cache);
        let fs = FsInfo {
            fstype: "vfat",
            label: Some("ALPINE".into()),
            uuid: None,
        };
        let m = medium_from("vda", &fs, d, &c);
        assert_eq!(m.repositories, vec![d.join("apks"), d.join("extra")]);
        assert_eq!(m.overlays, vec![d.join("fw.apkovl.tar.gz")]);
        assert_eq!(m.cache, Some(d.join("cache")));
        assert_eq!(m.identity(), "vfat LABEL=ALPINE");
    }

    #[test]
    fn empty_medium_has_nothing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("boot")).unwrap();
        assert!(scan_top_level(dir.path()).unwrap().is_empty());
        assert!(scan_top_level(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn natural_order() {
        let mut v = vec![
            "sdb",
            "sda10",
            "sr0",
            "sda2",
            "sda",
            "vda",
            "nvme0n1p2",
            "nvme0n1",
            "loop1",
            "sda1",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            vec![
                "loop1",
                "nvme0n1",
                "nvme0n1p2",
                "sda",
                "sda1",
                "sda2",
                "sda10",
                "sdb",
                "sr0",
                "vda"
            ]
        );
    }

    #[test]
    fn report_lists_every_candidate() {
        let f = Found {
            media: vec![],
            candidates: vec![
                Candidate {
                    name: "sda".into(),
                    summary: "dos partition table (its partitions are scanned)".into(),
                },
                Candidate {
                    name: "sr0".into(),
                    summary: "empty (no medium)".into(),
                },
            ],
            complete: false,
            pending_drivers: Vec::new(),
        };
        assert_eq!(
            f.report(),
            "  sda: dos partition table (its partitions are scanned)\n  sr0: empty (no medium)\n"
        );
        assert_eq!(Found::default().report(), "  (no block devices)\n");
    }
}
