//! When media discovery stops: a pure state machine over boot times (see the parent module for
//! the rules), so every wait is a unit test without devices.
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Medium;
use crate::cmdline::{ApkovlSpec, BootConfig, DeviceSpec};
use crate::probe::FsInfo;

/// The waits of media discovery (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitPolicy {
    /// Idle time while nothing useful was found.
    pub initial_idle: Duration,
    /// Idle time once a repository (or the `alpine_dev=` device) was found.
    pub after_repository: Duration,
    /// Extra time once `usb-storage` is loaded.
    pub usb_settle: Duration,
    /// The longest discovery, however busy the devices keep it: a device that changes its answer
    /// forever (a failing card reader, a malicious USB device) cannot hold the boot.
    pub max_wait: Duration,
}

impl WaitPolicy {
    /// The policy for a command line: 5 s (+ `usbdelay`), 250 ms (or `usbdelay`), 1 s, at most
    /// 60 s (+ `usbdelay`) in all.
    pub fn from_config(cfg: &BootConfig) -> Self {
        let delay = cfg.usbdelay.map(|s| Duration::from_secs(s as u64));
        Self {
            initial_idle: Duration::from_secs(5) + delay.unwrap_or_default(),
            after_repository: delay.unwrap_or(Duration::from_millis(250)),
            usb_settle: Duration::from_secs(1),
            max_wait: Duration::from_secs(60) + delay.unwrap_or_default(),
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
    /// Every `alpine_repo=` is a URL.
    remote_repos: bool,
    started: Duration,
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
            remote_repos: !cfg.alpine_repo.is_empty()
                && cfg.alpine_repo.iter().all(|r| crate::cmdline::is_url(r)),
            started: now,
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
        if self.remote_repos {
            // Downloaded after the network is up: no medium to wait for.
            true
        } else if self.repo_paths.is_empty() {
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

    /// Whether discovery has run for its longest time ([`WaitPolicy::max_wait`]) at `now`, busy
    /// or not (drivers still queued do not keep it going past that).
    pub fn past_max_wait(&self, now: Duration) -> bool {
        now >= self.started + self.policy.max_wait
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
        (self.last_activity + idle + settle).min(self.started + self.policy.max_wait)
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
    fn remote_repositories_need_no_medium() {
        let cfg =
            BootConfig::from_cmdline("alpine_repo=http://10.0.2.2/apks apkovl=/x.apkovl.tar.gz");
        let d = Discovery::new(&cfg, WaitPolicy::from_config(&cfg), ms(0));
        assert!(d.is_complete(&|p: &Path| p == Path::new("/x.apkovl.tar.gz")));
        // Without an overlay the short wait applies (a medium may still bring one).
        let cfg = BootConfig::from_cmdline("alpine_repo=https://10.0.2.2/apks");
        let d = Discovery::new(&cfg, WaitPolicy::from_config(&cfg), ms(0));
        assert_eq!(d.deadline(&nothing_exists), ms(250));
        // A local repository among them is still waited for.
        let cfg = BootConfig::from_cmdline("alpine_repo=http://10.0.2.2/apks,/media/usb/apks");
        let d = Discovery::new(&cfg, WaitPolicy::from_config(&cfg), ms(0));
        assert_eq!(d.deadline(&nothing_exists), ms(5000));
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
    fn the_cap_holds_while_busy() {
        let cfg = BootConfig::from_cmdline("usbdelay=2");
        let d = Discovery::new(&cfg, WaitPolicy::from_config(&cfg), ms(1000));
        assert!(!d.past_max_wait(ms(1000)));
        assert!(!d.past_max_wait(ms(62_999)));
        assert!(d.past_max_wait(ms(63_000)));
    }

    /// Activity restarts the idle timer, but never beyond the cap from the start.
    #[test]
    fn endless_activity_ends_at_the_cap() {
        let cfg = BootConfig::from_cmdline("usbdelay=2");
        let mut d = Discovery::new(&cfg, WaitPolicy::from_config(&cfg), ms(1000));
        for t in (0..400).map(|i| ms(1000 + i * 250)) {
            d.activity(t);
        }
        assert_eq!(d.deadline(&nothing_exists), ms(1000 + 62_000));
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
}
