//! The discovery loop (the impure part): uevent socket, coldplug, probing, mounting, examining.
//! Covered by the qemu tests; its decisions come from [`super::wait`] and [`super::scan_top_level`].
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use super::{
    medium_from, natural_cmp, scan_top_level, Candidate, Discovery, DriverQueue, Found, Medium,
    WaitPolicy, MEDIA_DIR,
};
use crate::cmdline::{ApkovlSpec, BootConfig, DeviceSpec};
use crate::modules::{Loader, FIRST_BUSES};
use crate::probe::{self, FsInfo, Probe};
use crate::sys::{self, MountFlags, UeventSocket};
use crate::uevent::Uevent;

/// Summary of a device without media (an empty CD drive, an unused loop device).
const EMPTY: &str = "empty (no medium)";

/// Loop, RAM and zram devices: only interesting once they have a size.
fn is_virtual(name: &str) -> bool {
    ["loop", "ram", "zram"].iter().any(|p| {
        name.strip_prefix(p)
            .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
    })
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
/// fails without them. Missing ones are skipped.
pub const NLS_MODULES: [&str; 4] = ["nls_cp437", "nls_ascii", "nls_utf8", "nls_iso8859_1"];

/// How a device that could not be read starts its summary (it is probed again).
const UNREADABLE: &str = "unreadable: ";

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
        let names: Vec<String> = Self::block_names()
            .into_iter()
            .filter(|n| !self.handled.contains(n))
            .collect();
        // Every new device's superblock is read at the same time: an empty CD drive that takes
        // its time to say so no longer holds up the stick after it. They are handled in order.
        let mut probes = probe_all(&names);
        for name in names {
            self.handled.insert(name.clone());
            let probed = probes.remove(&name);
            let summary = self.process(&name, disc, probed);
            log::debug!("media: {name}: {summary}");
            // A device that cannot be read yet (a USB stick whose medium is not ready answers
            // ENXIO for a while) is probed again at the next scan, for as long as discovery
            // waits; it counts as new activity only when it becomes readable (a device whose
            // error keeps changing must not keep discovery waiting).
            let before = self.candidates.get(&name);
            if summary.starts_with(UNREADABLE) {
                self.handled.remove(&name);
                if before.is_some_and(|b| b.starts_with(UNREADABLE)) {
                    self.candidates.insert(name, summary);
                    continue;
                }
            }
            // Probed again after a `change` event and saying the same: nothing new.
            if before == Some(&summary) {
                continue;
            }
            // Unused loop/ram devices (8 loop devices once `loop` is loaded) are never boot
            // media: they neither count as activity nor clutter the report.
            if summary == EMPTY && is_virtual(&name) {
                self.candidates.remove(&name);
                continue;
            }
            new = true;
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

    /// `probed`: the device's probe made beforehand ([`probe_all`]), if any.
    fn process(
        &mut self,
        name: &str,
        disc: &mut Discovery,
        probed: Option<Result<Probe, probe::ProbeError>>,
    ) -> String {
        let sys_dir = Path::new("/sys/class/block").join(name);
        let size: u64 = std::fs::read_to_string(sys_dir.join("size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if size == 0 {
            return EMPTY.to_string();
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
        let fs = match probed.unwrap_or_else(|| probe::probe_path(&dev)) {
            Ok(Probe::Filesystem(fs)) => fs,
            Ok(Probe::PartitionTable(pt)) => {
                return format!("{pt} partition table (its partitions are scanned)")
            }
            Ok(Probe::Unknown) => match self.forced_fstype(name) {
                Some(fs) => fs,
                None => return "no filesystem recognised".to_string(),
            },
            Err(e) => return format!("{UNREADABLE}{}", e.source),
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
        // Load the filesystem driver first (errors ignored: it may be built in), with the
        // codepages vfat needs, in one batch.
        let mut wanted = vec![fs.module()];
        if fs.fstype == "vfat" && !self.nls_loaded {
            wanted.extend(NLS_MODULES);
            self.nls_loaded = true;
        }
        if let Some(l) = self.loader.as_deref_mut() {
            l.load_quietly_all(&wanted);
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

/// Probes `names` (`/dev/NAME`) at the same time, one thread each (at most [`MAX_PROBES`] at
/// once); devices without a size (an empty loop device) are left to [`Scanner::process`].
fn probe_all(names: &[String]) -> HashMap<String, Result<Probe, probe::ProbeError>> {
    let sized: Vec<&String> = names
        .iter()
        .filter(|n| {
            std::fs::read_to_string(Path::new("/sys/class/block").join(n).join("size"))
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .is_some_and(|s| s > 0)
        })
        .collect();
    let mut out = HashMap::new();
    if sized.len() < 2 {
        return out;
    }
    for batch in sized.chunks(MAX_PROBES) {
        std::thread::scope(|scope| {
            let handles: Vec<_> = batch
                .iter()
                .map(|n| {
                    let dev = Path::new("/dev").join(n.as_str());
                    (n, scope.spawn(move || probe::probe_path(&dev)))
                })
                .collect();
            for (n, h) in handles {
                if let Ok(r) = h.join() {
                    out.insert((*n).clone(), r);
                }
            }
        });
    }
    out
}

/// Devices probed at once.
const MAX_PROBES: usize = 16;

/// Coldplug: loads the drivers of every device present (`modalias` files under `/sys`) whose
/// modalias was not handled yet, in one batch ([`Loader::load_aliases`]); returns how many
/// modules that loaded.
pub fn coldplug(loader: &mut Loader) -> usize {
    let aliases = crate::modules::collect_modaliases(Path::new("/sys"));
    loader.load_aliases(&aliases).len()
}

/// Coldplug started ahead of discovery ([`start_coldplug`]): the uevent socket, open before
/// `/sys` is walked so that nothing appearing meanwhile is lost, and the walk itself, running in a
/// thread of its own while the boot drivers load.
pub struct Coldplug {
    socket: Option<UeventSocket>,
    walk: Option<Walk>,
}

/// The walk of `/sys` in its thread: it sends the modaliases of the [`FIRST_BUSES`] as soon as
/// they are read, then returns those of the rest of `/sys` (each device is read once).
struct Walk {
    first: mpsc::Receiver<Vec<String>>,
    /// The rest of the walk (without the first buses) and the whole walk's time.
    rest: std::thread::JoinHandle<(Vec<String>, Duration)>,
}

impl Walk {
    /// Waits for the whole walk and returns its rest; `None` if its thread died (an unwinding
    /// build: in the init a panic runs the hook, which never returns, in that thread).
    fn join(self) -> Option<(Vec<String>, Duration)> {
        self.rest.join().ok()
    }
}

/// Opens the uevent socket, then reads the devices' modaliases
/// ([`crate::modules::collect_bus_modaliases`], then
/// [`crate::modules::collect_modaliases_except`] those buses) in a thread (reading sysfs
/// takes a while under emulation; the boot drivers phase loads its modules meanwhile), the
/// [`FIRST_BUSES`] first. Devices those modules create after the walk saw their directory are
/// announced on the socket, which discovery reads; a modalias seen twice is handled once
/// ([`Loader::load_aliases`]).
pub fn start_coldplug(cfg: &BootConfig) -> Coldplug {
    let socket = match UeventSocket::open(cfg.uevent_buf_size) {
        Ok(s) => Some(s),
        Err(e) => {
            log::warn!("{e}; falling back to polling /sys/class/block");
            None
        }
    };
    let (tx, first) = mpsc::channel();
    let walk = move || {
        let started = sys::boottime();
        let sysfs = Path::new("/sys");
        let buses = FIRST_BUSES
            .iter()
            .flat_map(|bus| crate::modules::collect_bus_modaliases(sysfs, bus))
            .collect();
        // Discovery may be gone (no loader): nobody to tell.
        let _ = tx.send(buses);
        let aliases = crate::modules::collect_modaliases_except(sysfs, &FIRST_BUSES);
        (aliases, sys::boottime().saturating_sub(started))
    };
    let walk = std::thread::Builder::new()
        .name("coldplug".into())
        .spawn(walk)
        .map_err(|e| log::debug!("no thread for the coldplug walk ({e}): walking at discovery"))
        .ok()
        .map(|rest| Walk { first, rest });
    Coldplug { socket, walk }
}

/// Walks `/sys` here and now ([`crate::modules::collect_modaliases`]), timed.
fn walk_now() -> (Vec<String>, Duration) {
    let started = sys::boottime();
    let aliases = crate::modules::collect_modaliases(Path::new("/sys"));
    (aliases, sys::boottime().saturating_sub(started))
}

/// What the walk found beyond what was queued from its first part, in the walk's order.
fn rest_of_walk(all: Vec<String>, first: &HashSet<String>) -> Vec<String> {
    all.into_iter().filter(|a| !first.contains(a)).collect()
}

impl Coldplug {
    /// Loads the drivers of `aliases` (what discovery left queued), then, up to `rounds` times,
    /// those of the devices the drivers just loaded created (the CD drive behind an IDE
    /// controller), as the uevents announced them: a driver's devices exist, and their events
    /// are queued, when its module init returns (the kernel waits for the probes it scheduled).
    /// Without a socket, or when events were lost, `/sys` is walked instead ([`coldplug`]).
    pub fn late_drivers(&self, loader: &mut Loader, aliases: &[String], rounds: usize) {
        let mut loaded = loader.load_aliases(aliases).len();
        let mut buf = vec![0u8; crate::uevent::MAX_LEN + 1];
        for _ in 0..rounds {
            let announced = self.socket.as_ref().and_then(|s| announced(s, &mut buf));
            loaded = match announced {
                Some(aliases) => loader.load_aliases(&aliases).len(),
                // After a round that loaded nothing no device can have appeared: the walk is
                // the fallback, not a poll.
                None if loaded > 0 => coldplug(loader),
                None => 0,
            };
            if loaded == 0 {
                break;
            }
        }
    }
}

/// The modaliases of every uevent queued on `s` (`None`: events were lost, or the socket
/// failed: only a walk of `/sys` can tell).
fn announced(s: &UeventSocket, buf: &mut [u8]) -> Option<Vec<String>> {
    let mut aliases = Vec::new();
    loop {
        match s.recv(buf) {
            Ok(Some(msg)) => {
                if let Some(alias) = Uevent::parse(msg).as_ref().and_then(|ev| ev.modalias()) {
                    aliases.push(alias.to_string());
                }
            }
            Ok(None) => return Some(aliases),
            Err(e) => {
                log::debug!("{e}: walking /sys for the late drivers");
                return None;
            }
        }
    }
}

/// Runs discovery: uevent socket, coldplug, block devices, until [`Discovery`] says stop.
///
/// Coldplug's drivers are loaded one device at a time through a [`DriverQueue`], the block
/// devices scanned after each: the medium is used as soon as its own drivers are in. Discovery
/// never stops for idleness while drivers are queued (the idle clock starts once the queue is
/// empty, as it did after a whole coldplug); what is still queued when the goal is reached is
/// returned in [`Found::pending_drivers`]. A device whose drivers load nothing and bring no
/// uevent changes nothing: the block devices are scanned again only after a load or an event.
///
/// The uevent socket stays in `started`: the drivers left queued load later
/// ([`Coldplug::late_drivers`]) and read on it what those drivers created.
pub fn discover(cfg: &BootConfig, loader: Option<&mut Loader>, started: &mut Coldplug) -> Found {
    let mut walk = started.walk.take();
    let socket = started.socket.as_ref();
    let mut queue = DriverQueue::default();
    // What was queued from the walk's first part: the rest of the walk leaves it out.
    let mut first = HashSet::new();
    if loader.is_some() {
        match walk.as_ref().and_then(|w| w.first.recv().ok()) {
            Some(buses) => {
                log::debug!(
                    "coldplug: {} modaliases on {} first",
                    buses.len(),
                    FIRST_BUSES.join(", ")
                );
                first.extend(buses.iter().cloned());
                queue.push_back(buses);
            }
            None => {
                walk = None;
                absorb_walk(walk_now(), &first, &mut queue);
            }
        }
    } else {
        walk = None;
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
        if disc.past_max_wait(sys::boottime()) {
            break false;
        }
        // The rest of the walk joins the queue when it is done, or when the queue runs dry
        // (discovery never idles while coldplug may still have drivers to load).
        if walk
            .as_ref()
            .is_some_and(|w| queue.is_empty() || w.rest.is_finished())
        {
            let whole = walk.take().and_then(Walk::join);
            absorb_walk(whole.unwrap_or_else(walk_now), &first, &mut queue);
            // The idle time counts from when nothing is left, the walk included.
            disc.activity(sys::boottime());
            continue;
        }
        if let Some(alias) = queue.pop() {
            let loaded = match scanner.loader.as_deref_mut() {
                Some(l) => !l.load_aliases(&[alias]).is_empty(),
                None => false,
            };
            // Without a socket only a scan can tell what appeared.
            let events = match socket {
                Some(s) => drain_events(s, &mut buf, &mut scanner, &mut disc, &mut queue),
                None => true,
            };
            let new = (loaded || events) && scanner.scan(&mut disc);
            if new || queue.is_empty() {
                disc.activity(sys::boottime());
            }
            continue;
        }
        let now = sys::boottime();
        let deadline = disc.deadline(&exists);
        if now >= deadline {
            break false;
        }
        let wait = (deadline - now).min(Duration::from_millis(250));
        match socket {
            Some(s) => {
                if let Err(e) = s.wait(wait) {
                    log::warn!("{e}");
                    std::thread::sleep(wait);
                }
            }
            None => std::thread::sleep(wait),
        }
        match socket {
            Some(s) => {
                drain_events(s, &mut buf, &mut scanner, &mut disc, &mut queue);
            }
            // Without uevents, devices created by newly loaded drivers (virtio_pci → virtio0)
            // are only found by walking /sys again.
            None => {
                if let Some(l) = scanner.loader.as_deref_mut() {
                    coldplug(l);
                }
            }
        }
        if scanner.scan(&mut disc) {
            disc.activity(sys::boottime());
        }
    };
    // The medium was complete before the walk ended (the walk takes tens of milliseconds, a
    // medium's drivers longer): its end is waited for here, and its rest loads in the background.
    if let Some(w) = walk {
        let whole = w.join();
        absorb_walk(whole.unwrap_or_else(walk_now), &first, &mut queue);
    }
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
        pending_drivers: queue.into_rest(),
    }
}

/// Queues what the walk found beyond its first part (`first`; the thread's walk does not read
/// those buses again, a walk here and now does), after what is queued.
fn absorb_walk(whole: (Vec<String>, Duration), first: &HashSet<String>, queue: &mut DriverQueue) {
    let (aliases, took) = whole;
    let rest = rest_of_walk(aliases, first);
    log::debug!(
        "coldplug: {} modaliases besides the first buses' {} ({} ms)",
        rest.len(),
        first.len(),
        took.as_millis()
    );
    queue.push_back(rest);
}

/// Reads every queued uevent: `change` events of block devices are probed again, the modaliases
/// the events announce go before everything in `queue` (their drivers are loaded next). Returns
/// whether anything was read (or lost: an overflow).
fn drain_events(
    s: &UeventSocket,
    buf: &mut [u8],
    scanner: &mut Scanner<'_>,
    disc: &mut Discovery,
    queue: &mut DriverQueue,
) -> bool {
    let mut aliases = Vec::new();
    let mut any = false;
    loop {
        match s.recv(buf) {
            Ok(Some(msg)) => {
                any = true;
                let Some(ev) = Uevent::parse(msg) else {
                    continue;
                };
                if let Some(alias) = ev.modalias() {
                    aliases.push(alias.to_string());
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
                any = true;
                // Events were lost: rebuild the picture from /sys instead of failing (docs/boot.md, "Media").
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
                // The socket failed: only a scan can tell what appeared.
                any = true;
                break;
            }
        }
    }
    queue.push_front(aliases);
    any
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rest_of_the_walk_leaves_out_its_first_part_in_order() {
        let first: HashSet<String> = ["pci:b".to_string()].into();
        let all = ["acpi:a", "pci:b", "pci:c", "virtio:d"]
            .map(String::from)
            .to_vec();
        assert_eq!(rest_of_walk(all, &first), ["acpi:a", "pci:c", "virtio:d"]);
    }

    #[test]
    fn virtual_devices() {
        for v in ["loop0", "loop12", "ram0", "zram0", "loop"] {
            assert!(is_virtual(v), "{v}");
        }
        for d in ["sda", "sr0", "vda1", "loopy", "nvme0n1", "mmcblk0"] {
            assert!(!is_virtual(d), "{d}");
        }
    }
}
