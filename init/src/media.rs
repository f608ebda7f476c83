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
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cmdline::{ApkovlSpec, BootConfig, DeviceSpec};
use crate::modules::Loader;
use crate::probe::{self, FsInfo, Probe};
use crate::sys::{self, MountFlags, UeventSocket};
use crate::uevent::Uevent;

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

/// Whether a top-level file name is an overlay: `*.apkovl.tar.gz*` as nlplug-findfs matches it,
/// but not a detached signature (`.sig`) and not a hidden (temporary) file.
pub fn is_overlay_name(name: &str) -> bool {
    name.contains(".apkovl.tar.gz") && !name.starts_with('.') && !name.ends_with(".sig")
}

/// Examines the top level of `root` (a mounted medium).
pub fn scan_top_level(root: &Path) -> std::io::Result<Contents> {
    let mut c = Contents::default();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            let marker = entry.path().join(".boot_repository");
            if std::fs::symlink_metadata(&marker)
                .map(|m| m.is_file())
                .unwrap_or(false)
            {
                c.repositories.push(name.clone());
            }
            if name == "cache" {
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

/// The waits of media discovery (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPolicy {
    /// Idle time while nothing useful was found.
    pub initial_idle: Duration,
    /// Idle time once a repository (or the `alpine_dev=` device) was found.
    pub after_repository: Duration,
    /// Extra time once `usb-storage` is loaded.
    pub usb_settle: Duration,
}

impl WaitPolicy {
    /// The policy for a command line: 5 s (+ `usbdelay`), 250 ms (or `usbdelay`), 1 s.
    pub fn from_config(cfg: &BootConfig) -> Self {
        let delay = cfg.usbdelay.map(|s| Duration::from_secs(s as u64));
        Self {
            initial_idle: Duration::from_secs(5) + delay.unwrap_or_default(),
            after_repository: delay.unwrap_or(Duration::from_millis(250)),
            usb_settle: Duration::from_secs(1),
        }
    }
}

/// What the overlay part of the goal is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OverlayGoal {
    /// Any overlay (none given).
    Any,
    /// The device of `apkovl=DEV:...` must appear.
    Device(DeviceSpec),
    /// The file of `apkovl=PATH` must exist.
    Path(PathBuf),
    /// Nothing to wait for (`apkovl=` URL, reported later).
    Nothing,
}

/// The stop rule of media discovery, as a pure state machine over boot times.
#[derive(Debug, Clone)]
pub struct Discovery {
    policy: WaitPolicy,
    selector: Option<DeviceSpec>,
    overlay: OverlayGoal,
    repo_paths: Vec<PathBuf>,
    last_activity: Duration,
    repo_found: bool,
    overlay_found: bool,
    selected_found: bool,
    overlay_device_found: bool,
    usb_storage: bool,
}

impl Discovery {
    /// Starts the clock at `now`.
    pub fn new(cfg: &BootConfig, policy: WaitPolicy, now: Duration) -> Self {
        let overlay = match &cfg.apkovl {
            None => OverlayGoal::Any,
            Some(ApkovlSpec::OnDevice { dev, .. }) => OverlayGoal::Device(dev.clone()),
            Some(ApkovlSpec::Path(p)) => OverlayGoal::Path(p.clone()),
            Some(ApkovlSpec::Url(_)) => OverlayGoal::Nothing,
        };
        Self {
            policy,
            selector: cfg.alpine_dev.clone(),
            overlay,
            repo_paths: cfg
                .alpine_repo
                .iter()
                .filter(|r| r.starts_with('/'))
                .map(PathBuf::from)
                .collect(),
            last_activity: now,
            repo_found: false,
            overlay_found: false,
            selected_found: false,
            overlay_device_found: false,
            usb_storage: false,
        }
    }

    /// Whether the device `name` with `fs` should be mounted at all (`alpine_dev=` pins
    /// discovery to one device; the `apkovl=DEV:` device is allowed too).
    pub fn wants(&self, name: &str, fs: &FsInfo) -> bool {
        let m = |s: &DeviceSpec| s.matches(name, fs.label.as_deref(), fs.uuid.as_deref());
        match &self.selector {
            None => true,
            Some(sel) => m(sel) || matches!(&self.overlay, OverlayGoal::Device(d) if m(d)),
        }
    }

    /// Whether a medium with nothing on it must stay mounted anyway (it was asked for by name).
    pub fn keeps_empty(&self, m: &Medium) -> bool {
        self.selector.as_ref().is_some_and(|s| m.matches(s))
            || matches!(&self.overlay, OverlayGoal::Device(d) if m.matches(d))
    }

    /// A new block device appeared: restart the idle timer.
    pub fn activity(&mut self, now: Duration) {
        self.last_activity = self.last_activity.max(now);
    }

    /// `usb-storage` got loaded: USB disks need a moment to settle.
    pub fn usb_storage_loaded(&mut self) {
        self.usb_storage = true;
    }

    /// A medium was mounted and examined.
    pub fn medium_found(&mut self, m: &Medium) {
        self.repo_found |= !m.repositories.is_empty();
        self.overlay_found |= !m.overlays.is_empty();
        if let Some(sel) = &self.selector {
            self.selected_found |= m.matches(sel);
        }
        if let OverlayGoal::Device(d) = &self.overlay {
            self.overlay_device_found |= m.matches(d);
        }
    }

    fn repo_ok(&self, exists: &dyn Fn(&Path) -> bool) -> bool {
        if self.repo_paths.is_empty() {
            self.repo_found
        } else {
            self.repo_paths.iter().all(|p| exists(p))
        }
    }

    fn explicit_overlay_ok(&self, exists: &dyn Fn(&Path) -> bool) -> Option<bool> {
        match &self.overlay {
            OverlayGoal::Any => None,
            OverlayGoal::Nothing => Some(true),
            OverlayGoal::Device(_) => Some(self.overlay_device_found),
            OverlayGoal::Path(p) => Some(exists(p)),
        }
    }

    /// Whether everything asked for is there (stop now).
    pub fn is_complete(&self, exists: &dyn Fn(&Path) -> bool) -> bool {
        let explicit = self.explicit_overlay_ok(exists);
        if self.selector.is_some() {
            return self.selected_found && explicit.unwrap_or(true);
        }
        self.repo_ok(exists) && explicit.unwrap_or(self.overlay_found)
    }

    /// Boot time at which waiting ends if nothing new appears.
    pub fn deadline(&self, exists: &dyn Fn(&Path) -> bool) -> Duration {
        let idle = if self.repo_ok(exists) || self.selected_found {
            self.policy.after_repository
        } else {
            self.policy.initial_idle
        };
        let settle = if self.usb_storage {
            self.policy.usb_settle
        } else {
            Duration::ZERO
        };
        self.last_activity + idle + settle
    }
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

/// Mutable state of the discovery loop (the impure part).
struct Scanner<'a> {
    cfg: &'a BootConfig,
    loader: Option<&'a mut Loader>,
    handled: HashSet<String>,
    disks_with_fs: HashSet<String>,
    candidates: BTreeMap<String, String>,
    media: Vec<Medium>,
    nls_loaded: bool,
}

/// Modules the kernel's FAT defaults name (Debian: codepage 437, iocharset ascii); a vfat mount
/// fails without them (field-notes §7). Missing ones are skipped.
const NLS_MODULES: [&str; 4] = ["nls_cp437", "nls_ascii", "nls_utf8", "nls_iso8859_1"];

impl Scanner<'_> {
    fn block_names() -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir("/sys/class/block")
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort_by(|a, b| natural_cmp(a, b));
        names
    }

    /// Handles every block device not yet handled; returns whether a new one appeared.
    fn scan(&mut self, disc: &mut Discovery) -> bool {
        let mut new = false;
        for name in Self::block_names() {
            if self.handled.contains(&name) {
                continue;
            }
            new = true;
            self.handled.insert(name.clone());
            let summary = self.process(&name, disc);
            log::debug!("media: {name}: {summary}");
            self.candidates.insert(name, summary);
        }
        new
    }

    /// A `change` event: probe again, unless the device is already in use as a medium.
    fn retry(&mut self, name: &str) {
        if !self.media.iter().any(|m| m.name == name) {
            self.handled.remove(name);
        }
    }

    fn load(&mut self, module: &str) {
        if let Some(l) = self.loader.as_deref_mut() {
            l.load_quietly(module);
        }
    }

    fn process(&mut self, name: &str, disc: &mut Discovery) -> String {
        let sys_dir = Path::new("/sys/class/block").join(name);
        let size: u64 = std::fs::read_to_string(sys_dir.join("size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if size == 0 {
            return "empty (no medium)".to_string();
        }
        let is_partition = sys_dir.join("partition").exists();
        if is_partition {
            let parent = std::fs::canonicalize(&sys_dir).ok().and_then(|p| {
                p.parent()
                    .and_then(|d| d.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
            });
            if let Some(parent) = parent.filter(|p| self.disks_with_fs.contains(p)) {
                return format!("skipped: part of {parent}, which holds a filesystem");
            }
        }
        let dev = Path::new("/dev").join(name);
        let fs = match probe::probe_path(&dev) {
            Ok(Probe::Filesystem(fs)) => fs,
            Ok(Probe::PartitionTable(pt)) => {
                return format!("{pt} partition table (its partitions are scanned)")
            }
            Ok(Probe::Unknown) => match self.forced_fstype(name) {
                Some(fs) => fs,
                None => return "no filesystem recognised".to_string(),
            },
            Err(e) => return format!("unreadable: {}", e.source),
        };
        if !is_partition {
            self.disks_with_fs.insert(name.to_string());
        }
        let ident = FsIdent(&fs).to_string();
        if !disc.wants(name, &fs) {
            let sel = self
                .cfg
                .alpine_dev
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default();
            return format!("{ident}: skipped, not alpine_dev={sel}");
        }
        let mount_point = Path::new(MEDIA_DIR).join(name);
        if let Err(e) = self.mount(name, &fs, &dev, &mount_point) {
            return format!("{ident}: {e}");
        }
        let contents = match scan_top_level(&mount_point) {
            Ok(c) => c,
            Err(e) => {
                let _ = sys::unmount(&mount_point);
                return format!("{ident}: {}: {e}", mount_point.display());
            }
        };
        let medium = medium_from(name, &fs, &mount_point, &contents);
        if contents.is_empty() && !disc.keeps_empty(&medium) {
            let _ = sys::unmount(&mount_point);
            let _ = std::fs::remove_dir(&mount_point);
            return format!("{ident}: nothing for the boot (no boot repository, no apkovl)");
        }
        let mut what = Vec::new();
        for r in &contents.repositories {
            what.push(format!("boot repository {r}/"));
        }
        for o in &contents.overlays {
            what.push(format!("apkovl {o}"));
        }
        if contents.cache {
            what.push("cache/".to_string());
        }
        if what.is_empty() {
            what.push("nothing for the boot, kept: named on the command line".to_string());
        }
        disc.medium_found(&medium);
        self.media.push(medium);
        format!("{ident} at {}: {}", mount_point.display(), what.join(", "))
    }

    /// `apkovl=DEV:FSTYPE:PATH` names a filesystem type we do not probe: trust it for that device.
    fn forced_fstype(&self, name: &str) -> Option<FsInfo> {
        match &self.cfg.apkovl {
            Some(ApkovlSpec::OnDevice {
                dev: DeviceSpec::Name(n),
                fstype: Some(t),
                ..
            }) if n == name => {
                let fstype: &'static str = match t.as_str() {
                    "vfat" => "vfat",
                    "iso9660" => "iso9660",
                    "ext2" => "ext2",
                    "ext3" => "ext3",
                    "ext4" => "ext4",
                    "squashfs" => "squashfs",
                    "btrfs" => "btrfs",
                    "xfs" => "xfs",
                    "f2fs" => "f2fs",
                    "exfat" => "exfat",
                    "ntfs3" => "ntfs3",
                    _ => return None,
                };
                Some(FsInfo {
                    fstype,
                    label: None,
                    uuid: None,
                })
            }
            _ => None,
        }
    }

    fn mount(
        &mut self,
        name: &str,
        fs: &FsInfo,
        dev: &Path,
        mount_point: &Path,
    ) -> Result<(), String> {
        // Load the filesystem driver first (errors ignored: it may be built in).
        self.load(fs.module());
        if fs.fstype == "vfat" && !self.nls_loaded {
            for m in NLS_MODULES {
                self.load(m);
            }
            self.nls_loaded = true;
        }
        sys::make_dirs(mount_point).map_err(|e| e.to_string())?;
        if sys::is_mount_point(mount_point) {
            return Err(format!(
                "{} is already a mount point",
                mount_point.display()
            ));
        }
        sys::mount_fs(
            &dev.to_string_lossy(),
            mount_point,
            fs.fstype,
            MountFlags::MEDIA,
            None,
        )
        .map_err(|e| {
            let _ = std::fs::remove_dir(mount_point);
            format!("mount failed: {e}")
        })?;
        log::debug!(
            "media: mounted {name} ({}) at {}",
            fs.fstype,
            mount_point.display()
        );
        Ok(())
    }
}

struct FsIdent<'a>(&'a FsInfo);

impl std::fmt::Display for FsIdent<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.fstype)?;
        if let Some(l) = &self.0.label {
            write!(f, " LABEL={l}")?;
        }
        if let Some(u) = &self.0.uuid {
            write!(f, " UUID={u}")?;
        }
        Ok(())
    }
}

/// Coldplug: load the drivers of every device already present (`modalias` files under `/sys`).
pub fn coldplug(loader: &mut Loader) -> usize {
    let aliases = crate::modules::collect_modaliases(Path::new("/sys/devices"));
    let n = aliases.len();
    for a in aliases {
        loader.load_alias(&a);
    }
    n
}

/// Runs discovery: uevent socket, coldplug, block devices, until [`Discovery`] says stop.
pub fn discover(cfg: &BootConfig, mut loader: Option<&mut Loader>) -> Found {
    // Open the socket before coldplug so nothing that appears meanwhile is lost.
    let socket = match UeventSocket::open(cfg.uevent_buf_size) {
        Ok(s) => Some(s),
        Err(e) => {
            log::warn!("{e}; falling back to polling /sys/class/block");
            None
        }
    };
    if let Some(l) = loader.as_deref_mut() {
        let n = coldplug(l);
        log::debug!("coldplug: {n} modaliases");
    }
    let policy = WaitPolicy::from_config(cfg);
    let exists = |p: &Path| p.exists();
    let mut disc = Discovery::new(cfg, policy, sys::boottime());
    let mut scanner = Scanner {
        cfg,
        loader,
        handled: HashSet::new(),
        disks_with_fs: HashSet::new(),
        candidates: BTreeMap::new(),
        media: Vec::new(),
        nls_loaded: false,
    };
    scanner.scan(&mut disc);
    disc.activity(sys::boottime());
    let mut buf = vec![0u8; crate::uevent::MAX_LEN + 1];
    let complete = loop {
        sys::reap_zombies();
        if scanner
            .loader
            .as_deref()
            .is_some_and(|l| l.is_loaded("usb_storage"))
        {
            disc.usb_storage_loaded();
        }
        if disc.is_complete(&exists) {
            break true;
        }
        let now = sys::boottime();
        let deadline = disc.deadline(&exists);
        if now >= deadline {
            break false;
        }
        let wait = (deadline - now).min(Duration::from_millis(250));
        match &socket {
            Some(s) => {
                if let Err(e) = s.wait(wait) {
                    log::warn!("{e}");
                    std::thread::sleep(wait);
                }
            }
            None => std::thread::sleep(wait),
        }
        if let Some(s) = &socket {
            drain_events(s, &mut buf, &mut scanner, &mut disc);
        }
        if scanner.scan(&mut disc) {
            disc.activity(sys::boottime());
        }
    };
    let mut media = scanner.media;
    media.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    let mut candidates: Vec<Candidate> = scanner
        .candidates
        .into_iter()
        .map(|(name, summary)| Candidate { name, summary })
        .collect();
    candidates.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    Found {
        media,
        candidates,
        complete,
    }
}

fn drain_events(s: &UeventSocket, buf: &mut [u8], scanner: &mut Scanner<'_>, disc: &mut Discovery) {
    loop {
        match s.recv(buf) {
            Ok(Some(msg)) => {
                let Some(ev) = Uevent::parse(msg) else {
                    continue;
                };
                if let (Some(alias), Some(l)) = (ev.modalias(), scanner.loader.as_deref_mut()) {
                    l.load_alias(alias);
                }
                if ev.bound_driver() == Some("usb-storage") {
                    disc.usb_storage_loaded();
                }
                if let Some(dev) = ev.block_device() {
                    if ev.action == "change" {
                        scanner.retry(dev);
                    }
                }
            }
            Ok(None) => break,
            Err(sys::netlink::NetlinkError::Overflow(size)) => {
                // Events were lost: rebuild the picture from /sys instead of failing (§8.9).
                log::warn!(
                    "uevent buffer overflow (size {size} bytes): re-running coldplug; \
                     raise uevent_buf_size= if this repeats"
                );
                if let Some(l) = scanner.loader.as_deref_mut() {
                    coldplug(l);
                }
            }
            Err(e) => {
                log::warn!("{e}");
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn medium(name: &str, repos: &[&str], ovls: &[&str]) -> Medium {
        let mp = PathBuf::from("/media").join(name);
        Medium {
            name: name.into(),
            fstype: "vfat".into(),
            label: Some("ALPINE".into()),
            uuid: Some("1234-ABCD".into()),
            mount_point: mp.clone(),
            repositories: repos.iter().map(|r| mp.join(r)).collect(),
            overlays: ovls.iter().map(|o| mp.join(o)).collect(),
            cache: None,
        }
    }

    fn nothing_exists(_: &Path) -> bool {
        false
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
    fn wait_policy_values() {
        let p = WaitPolicy::from_config(&BootConfig::default());
        assert_eq!(p.initial_idle, Duration::from_secs(5));
        assert_eq!(p.after_repository, ms(250));
        let p = WaitPolicy::from_config(&BootConfig::from_cmdline("usbdelay=3"));
        assert_eq!(p.initial_idle, Duration::from_secs(8));
        assert_eq!(p.after_repository, Duration::from_secs(3));
    }

    #[test]
    fn nothing_found_waits_initial_idle_from_last_device() {
        let cfg = BootConfig::default();
        let mut d = Discovery::new(&cfg, WaitPolicy::from_config(&cfg), ms(1000));
        assert!(!d.is_complete(&nothing_exists));
        assert_eq!(d.deadline(&nothing_exists), ms(6000));
        d.activity(ms(3000));
        assert_eq!(d.deadline(&nothing_exists), ms(8000));
        d.activity(ms(2000)); // time never goes backwards
        assert_eq!(d.deadline(&nothing_exists), ms(8000));
        d.usb_storage_loaded();
        assert_eq!(d.deadline(&nothing_exists), ms(9000));
    }

    #[test]
    fn repository_and_overlay_complete_at_once() {
        let cfg = BootConfig::default();
        let mut d = Discovery::new(&cfg, WaitPolicy::from_config(&cfg), ms(0));
        d.medium_found(&medium("vda", &["apks"], &["h.apkovl.tar.gz"]));
        assert!(d.is_complete(&nothing_exists));
    }

    #[test]
    fn repository_alone_waits_briefly_for_an_overlay_elsewhere() {
        let cfg = BootConfig::default();
        let mut d = Discovery::new(&cfg, WaitPolicy::from_config(&cfg), ms(0));
        d.activity(ms(100));
        d.medium_found(&medium("vda", &["apks"], &[]));
        assert!(!d.is_complete(&nothing_exists));
        assert_eq!(d.deadline(&nothing_exists), ms(350));
        d.medium_found(&medium("vdb", &[], &["h.apkovl.tar.gz"]));
        assert!(d.is_complete(&nothing_exists));
    }

    #[test]
    fn overlay_alone_does_not_shorten_the_wait() {
        let cfg = BootConfig::default();
        let mut d = Discovery::new(&cfg, WaitPolicy::from_config(&cfg), ms(0));
        d.medium_found(&medium("vdb", &[], &["h.apkovl.tar.gz"]));
        assert!(!d.is_complete(&nothing_exists));
        assert_eq!(d.deadline(&nothing_exists), ms(5000));
    }

    #[test]
    fn alpine_dev_pins_discovery() {
        let cfg = BootConfig::from_cmdline("alpine_dev=LABEL=BOOT");
        let mut d = Discovery::new(&cfg, WaitPolicy::from_config(&cfg), ms(0));
        let other = FsInfo {
            fstype: "vfat",
            label: Some("OTHER".into()),
            uuid: None,
        };
        let boot = FsInfo {
            fstype: "vfat",
            label: Some("BOOT".into()),
            uuid: None,
        };
        assert!(!d.wants("sda1", &other));
        assert!(d.wants("sdb1", &boot));
        let mut m = medium("sdb1", &[], &[]);
        m.label = Some("BOOT".into());
        assert!(d.keeps_empty(&m));
        assert!(!d.is_complete(&nothing_exists));
        d.medium_found(&m);
        // Found, even without a repository: the device was asked for, stop now.
        assert!(d.is_complete(&nothing_exists));
    }

    #[test]
    fn apkovl_path_and_alpine_repo_goals() {
        let cfg = BootConfig::from_cmdline(
            "apkovl=/media/vdb/x.apkovl.tar.gz alpine_repo=/media/vda/apks",
        );
        let d = Discovery::new(&cfg, WaitPolicy::from_config(&cfg), ms(0));
        assert!(!d.is_complete(&nothing_exists));
        let only_repo = |p: &Path| p == Path::new("/media/vda/apks");
        assert!(!d.is_complete(&only_repo));
        assert_eq!(d.deadline(&only_repo), ms(250));
        assert!(d.is_complete(&|_: &Path| true));
    }

    #[test]
    fn apkovl_device_goal() {
        let cfg = BootConfig::from_cmdline("apkovl=UUID=5678-ef01:cfg/h.apkovl.tar.gz");
        let mut d = Discovery::new(&cfg, WaitPolicy::from_config(&cfg), ms(0));
        d.medium_found(&medium("vda", &["apks"], &[]));
        assert!(!d.is_complete(&nothing_exists));
        let mut cfgdev = medium("vdb", &[], &[]);
        cfgdev.uuid = Some("5678-EF01".into());
        assert!(d.keeps_empty(&cfgdev));
        d.medium_found(&cfgdev);
        assert!(d.is_complete(&nothing_exists));
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
        };
        assert_eq!(
            f.report(),
            "  sda: dos partition table (its partitions are scanned)\n  sr0: empty (no medium)\n"
        );
        assert_eq!(Found::default().report(), "  (no block devices)\n");
    }
}
