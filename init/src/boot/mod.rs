//! The thin executor: walks the boot phases, calling [`crate::plan`] for decisions and
//! [`crate::sys`] for effects, timing each phase in the [`Timeline`].
//!
//! Phases: early setup → boot drivers → media discovery → network (when asked for) → tmpfs root → overlay → media
//! relocation → packages → finish → modloop → switch_root. [`run`] is `main`: it never returns; a failure
//! goes through [`crate::rescue`] (report, shell or `panic=`), and a Rust panic is sent down the
//! same path by the panic hook.
mod drivers;
mod early;
mod finish;
mod modloop;
mod network;
mod overlay;
mod packages;
mod relocate;

pub use modloop::{verify_and_mount, ModloopError, Mounted};
pub use network::{Configured, NetworkError, LINK_WAIT};
pub use overlay::{OverlayError, MAX_IDENTITY_BYTES};
pub use packages::{apk_options, InstallError};

use early::{early_setup, mount_early};
use overlay::Applied;

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bootspec::{BootPolicy, PolicyError};

use crate::cmdline::{BootConfig, PanicAction, PanicPolicy};
use crate::console;
use crate::media::{self, Medium};
use crate::modules::Loader;
use crate::plan::{self, OverlayPolicy, PlanError};
use crate::rescue;
use crate::sys::{self, rootdir::RootDir, MountFlags, SwitchRootError, SysError};
use crate::timeline::{self, Outcome, Timeline};

/// The new root.
pub const SYSROOT: &str = "/sysroot";
/// Userspace kmsg rate limit switch.
const PRINTK_DEVKMSG: &str = "/proc/sys/kernel/printk_devkmsg";
/// Overlay marker asking for the default services.
pub const DEFAULT_SERVICES_MARKER: &str = "etc/.default_boot_services";
/// Largest configuration file the init reads from the new root (`etc/fstab`, `etc/apk/world`,
/// `etc/inittab`, `etc/securetty`: they may come from an overlay) or from the initramfs
/// (`etc/boot-policy`, `etc/modules`).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Why the boot stopped. The phase is added by the report.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// A syscall failed.
    #[error("{0}")]
    Sys(#[from] SysError),
    /// A boot decision refused to go on.
    #[error("{0}")]
    Plan(#[from] PlanError),
    /// The initramfs's boot policy (`etc/boot-policy`) does not parse: the boot stops rather
    /// than guess a weaker policy.
    #[error("{path}: {source}")]
    Policy {
        /// The policy file.
        path: String,
        /// Which line and why.
        source: PolicyError,
    },
    /// A sealed image refuses this boot (docs/boot.md, "Sealed images").
    #[error("{0}")]
    Sealed(#[from] plan::sealed::SealError),
    /// The overlay phase refused or failed.
    #[error("{0}")]
    Overlay(#[from] OverlayError),
    /// The network could not be configured.
    #[error("{0}")]
    Network(#[from] NetworkError),
    /// The package install failed.
    #[error("{0}")]
    Install(#[from] InstallError),
    /// The modloop was refused or missing and `modloop_verify=required`.
    #[error("{0} (modloop_verify=required)")]
    Modloop(#[from] ModloopError),
    /// `switch_root` failed.
    #[error("{0}")]
    SwitchRoot(#[from] SwitchRootError),
    /// The new root has no runnable init.
    #[error("{0} not found in new root (not an executable file)")]
    InitMissing(String),
}

/// A failure with the phase it happened in.
#[derive(Debug)]
pub struct Failure {
    /// Phase name (as in the timeline).
    pub phase: String,
    /// What went wrong.
    pub error: BootError,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.phase, self.error)
    }
}

/// What the panic hook needs: the last rendered timeline and the panic policy.
static HOOK_STATE: Mutex<Option<(String, PanicPolicy)>> = Mutex::new(None);

fn update_hook(timeline: &Timeline, policy: PanicPolicy) {
    if let Ok(mut g) = HOOK_STATE.try_lock() {
        *g = Some((timeline.render(sys::boottime()), policy));
    }
}

fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        // Never returns: PID 1 must not exit (the kernel would panic) nor unwind into unknown state.
        let msg = format!("ERROR: internal error (bug in init): {info}\n");
        console::print(&msg);
        let state = HOOK_STATE.try_lock().ok().and_then(|g| g.clone());
        let policy = match state {
            Some((text, policy)) => {
                console::print(&text);
                policy
            }
            None => POLICY_BEFORE_SEAL_CHECK,
        };
        rescue::after_bug(&policy)
    }));
}

/// What a bug does before the seal check has set the boot's failure policy: the image may be
/// sealed, so no shell (halt, as `panic=` does by default).
const POLICY_BEFORE_SEAL_CHECK: PanicPolicy = PanicPolicy {
    shell_allowed: false,
    action: PanicAction::Halt,
};
// Checked when the init is compiled: a bug before the seal check never offers a shell.
const _: () = assert!(!POLICY_BEFORE_SEAL_CHECK.shell_allowed);

/// `main`: early setup, then boot attempts until one reaches `/sbin/init`. Never returns.
pub fn run() -> ! {
    if !sys::is_pid1() {
        eprintln!(
            "init: this is the initramfs init; it must run as PID 1 (it deletes / at switch_root)"
        );
        std::process::exit(1);
    }
    console::init_logging();
    let init_start = sys::boottime();
    let mut timeline = Timeline::start(init_start, None);
    // Before any thread: a panic anywhere must reach the hook (which never returns), not end
    // PID 1.
    install_panic_hook();
    let module_db = drivers::start_reading_module_db();
    timeline.begin("early setup", init_start);
    let mut cfg = match early_setup() {
        Ok(cfg) => cfg,
        Err(e) => {
            let f = Failure {
                phase: "early setup".into(),
                error: e,
            };
            let cfg = BootConfig::default();
            report(&f, &mut timeline);
            rescue::follow_panic(cfg.panic.action)
        }
    };
    // A sealed image boots with its signed command line only, and without a rescue shell
    // unless that line asks for one: a refusal stops here, whatever the running line says.
    if let Err((e, action)) = early::apply_seal(&mut cfg) {
        let f = Failure {
            phase: "early setup".into(),
            error: e,
        };
        report(&f, &mut timeline);
        rescue::follow_panic(action)
    }
    // CLOCK_BOOTTIME and /proc/uptime are the same clock: uptime minus init's age is when init began.
    if let Some(up) = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| timeline::parse_uptime(&t))
    {
        timeline.kernel_to_init =
            Some(up.saturating_sub(sys::boottime().saturating_sub(init_start)));
    }
    update_hook(&timeline, cfg.panic);
    let coldplug = Some(media::start_coldplug(&cfg));
    let mut boot = Boot {
        cfg,
        timeline,
        overlay_policy: plan::overlay_policy(&BootPolicy::default(), false, &BootConfig::default()),
        loader: None,
        background_drivers: None,
        module_db,
        coldplug,
        attempt: 0,
        network: None,
    };
    loop {
        boot.attempt += 1;
        let Err(failure) = boot.attempt_boot();
        report(&failure, &mut boot.timeline);
        if rescue::offers_shell(&boot.cfg.panic) {
            boot.timeline.begin("rescue shell", sys::boottime());
            rescue::run_shell(&format!(
                "Launching initramfs emergency recovery shell.\n{failure}\nType 'exit' to retry the boot.\n"
            ));
            boot.timeline.end(sys::boottime(), Outcome::Done);
            // A failed switch_root may have moved /proc, /dev... into the new root.
            if let Err(e) = mount_early() {
                log::error!("{e}");
            }
            boot.cleanup_for_retry();
            continue;
        }
        rescue::follow_panic(boot.cfg.panic.action)
    }
}

/// Prints the failure line and the timeline so far.
fn report(f: &Failure, timeline: &mut Timeline) {
    let now = sys::boottime();
    timeline.end(now, Outcome::Failed);
    console::print(&format!("ERROR: {f}\n"));
    console::print(&timeline.render(now));
}

/// Rounds of coldplug after the background drivers: a driver's devices may need drivers of
/// their own (an IDE controller, its CD drive), each round a level deeper.
const MAX_LATE_COLDPLUGS: usize = 4;

/// The executor's state across attempts. Each phase is one method (in the module of its name),
/// each decision one call into [`crate::plan`].
struct Boot {
    cfg: BootConfig,
    timeline: Timeline,
    /// The effective overlay policy (boot options phase, re-read at every attempt: the rescue
    /// shell may have fixed the policy file).
    overlay_policy: OverlayPolicy,
    loader: Option<Loader>,
    /// The loader while it loads, in a thread of its own, the drivers media discovery left
    /// queued ([`media::Found::pending_drivers`]); [`Boot::settle_drivers`] takes it back.
    background_drivers: Option<std::thread::JoinHandle<Option<Loader>>>,
    /// The module database being read since the boot began
    /// ([`drivers::start_reading_module_db`]); the boot drivers phase takes it.
    module_db: Option<std::thread::JoinHandle<drivers::ModuleDbRead>>,
    /// Coldplug started right after the early setup (the uevent socket open, `/sys` walked in a
    /// thread while the boot options are read); the first attempt's discovery takes it, a retry
    /// starts its own.
    coldplug: Option<media::Coldplug>,
    attempt: u32,
    /// The network the network phases configured in this attempt.
    network: Option<Configured>,
}

/// The state carried from one phase to the next within an attempt.
struct Prepared {
    media: Vec<Medium>,
    /// Kernel name of the home medium ([`plan::home_medium`]).
    home: Option<String>,
    overlay: Option<Applied>,
    repositories: Vec<PathBuf>,
}

impl Prepared {
    /// The overlay file list (`None`: no overlay was applied).
    fn overlay_files(&self) -> Option<&[String]> {
        self.overlay.as_ref().map(|a| a.files.as_slice())
    }
}

impl Boot {
    fn phase(&mut self, name: &str) {
        self.timeline.begin(name, sys::boottime());
        update_hook(&self.timeline, self.cfg.panic);
        sys::reap_zombies();
    }

    fn fail<T>(&self, error: impl Into<BootError>) -> Result<T, Failure> {
        let phase = self
            .timeline
            .phases
            .last()
            .map(|p| p.name.clone())
            .unwrap_or_default();
        Err(Failure {
            phase,
            error: error.into(),
        })
    }

    fn attempt_boot(&mut self) -> Result<Infallible, Failure> {
        if self.attempt > 1 {
            log::info!("retrying the boot (attempt {})", self.attempt);
        }
        self.phase("boot options");
        if let Err(e) = self.boot_options() {
            return self.fail(e);
        }

        self.phase("boot drivers");
        // Coldplug's walk of /sys runs while the boot options are read and the boot drivers
        // load; a retry walks again (devices may have come and gone in the rescue shell).
        if self.attempt > 1 {
            self.coldplug = None;
            // Read before the rescue shell: read again (load_boot_drivers), should the shell
            // have changed it or the first read have failed.
            self.module_db = None;
        }
        let mut coldplug = self
            .coldplug
            .take()
            .unwrap_or_else(|| media::start_coldplug(&self.cfg));
        self.load_boot_drivers();

        self.phase("media discovery");
        log::info!("Mounting boot media");
        let found = media::discover(&self.cfg, self.loader.as_mut(), &mut coldplug);
        self.load_in_background(found.pending_drivers.clone(), coldplug);
        let checked = plan::check_found(&self.cfg, &found.media, found.candidates.len());
        // Every candidate is reported (quiet: only when nothing usable was found).
        if console::verbose() || checked.is_err() {
            console::print(&found.report());
        }
        self.timeline.note(format!(
            "{} device(s), {} medium(s)",
            found.candidates.len(),
            found.media.len()
        ));
        if let Err(e) = checked {
            return self.fail(e);
        }

        // "network link" and "dhcp" / "network address", when the network is needed.
        if let Err(e) = self.bring_up_network() {
            return self.fail(e);
        }

        self.phase("tmpfs root");
        let opts = plan::tmpfs_options(&self.cfg);
        if let Err(e) = sys::mount_fs(
            "tmpfs",
            Path::new(SYSROOT),
            "tmpfs",
            MountFlags::default(),
            Some(&opts),
        ) {
            return self.fail(e);
        }
        let root = match RootDir::open(Path::new(SYSROOT)) {
            Ok(r) => r,
            Err(e) => return self.fail(e),
        };

        self.phase("overlay");
        let overlay = match self.apply_overlay(&found.media, &root) {
            Ok(f) => f,
            Err(e) => return self.fail(e),
        };

        self.phase("media relocation");
        let prepared = match self.relocate_media(found.media, overlay, &root) {
            Ok(p) => p,
            Err(e) => return self.fail(e),
        };

        self.phase("packages");
        if let Err(e) = self.install_packages(&prepared, &root) {
            return self.fail(e);
        }

        self.phase("finish");
        self.drivers();
        if let Err(e) = self.finish(&prepared, &root) {
            return self.fail(e);
        }

        self.phase("modloop");
        if let Err(e) = self.modloop(&prepared, &root) {
            return self.fail(e);
        }

        if self.cfg.single {
            if rescue::shell_present() {
                self.timeline.begin("single-mode shell", sys::boottime());
                rescue::run_shell("Entering single mode. Type 'exit' to continue booting.\n");
            } else {
                log::warn!(
                    "single mode requested, but the initramfs has no {}",
                    rescue::SHELL
                );
            }
        }

        self.phase("switch_root");
        let err = self.switch_root(&root);
        self.fail(err)
    }

    /// The boot options phase: what this init cannot honour, and the effective overlay policy
    /// from the initramfs's `etc/boot-policy` (absent: the default; unreadable or malformed:
    /// the boot stops, fail closed), its overlay keys and the command line.
    fn boot_options(&mut self) -> Result<(), BootError> {
        plan::check_supported(&self.cfg)?;
        let path = bootspec::initramfs::absolute(bootspec::initramfs::POLICY);
        let image = match sys::read_file(Path::new(&path), MAX_CONFIG_BYTES)? {
            None => BootPolicy::default(),
            Some(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                BootPolicy::parse(&text).map_err(|source| BootError::Policy {
                    path: path.clone(),
                    source,
                })?
            }
        };
        let keys_dir = bootspec::initramfs::absolute(bootspec::initramfs::APKOVL_KEYS);
        let keys = std::fs::read_dir(&keys_dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        self.overlay_policy = plan::overlay_policy(&image, keys, &self.cfg);
        for w in &self.overlay_policy.ignored {
            log::warn!("{w}");
        }
        log::debug!("effective boot policy:\n{}", self.overlay_policy);
        Ok(())
    }

    /// Hands to a thread of its own the modules upstream always loads ([`drivers::ALWAYS`]) and
    /// the drivers of `aliases` (what media discovery left queued: devices that are not the
    /// medium), then those of the devices these drivers create, while the overlay is applied and
    /// the packages installed; [`Boot::settle_drivers`] waits for it. The thread keeps the boot's
    /// priority: most of its time is spent asleep in the drivers' probes, and at a lower one
    /// (nice 10) a single CPU gave it its turns only once the install was done, so that the
    /// finish phase waited 0.41 s for the probes (docs/boot.md, "Boot speed").
    fn load_in_background(&mut self, aliases: Vec<String>, coldplug: media::Coldplug) {
        let Some(mut loader) = self.loader.take() else {
            return;
        };
        log::debug!(
            "drivers of {} device(s) load in the background",
            aliases.len()
        );
        // The loader goes to the thread once it runs: if no thread can be made, it is still ours.
        let (tx, rx) = std::sync::mpsc::channel::<Loader>();
        let pending = aliases.clone();
        let spawned = std::thread::Builder::new()
            .name("drivers".into())
            .spawn(move || {
                let mut loader = rx.recv().ok()?;
                loader.load_quietly_all(&drivers::ALWAYS);
                // Devices these drivers create (the CD drive behind an IDE controller) are
                // announced on discovery's uevent socket, which is read no more by discovery.
                coldplug.late_drivers(&mut loader, &pending, MAX_LATE_COLDPLUGS);
                Some(loader)
            });
        match spawned {
            Ok(handle) => {
                // The thread holds the receiver until it has the loader: the send succeeds.
                let _ = tx.send(loader);
                self.background_drivers = Some(handle);
            }
            Err(e) => {
                log::debug!("no thread for the remaining drivers ({e}): loading them now");
                loader.load_quietly_all(&drivers::ALWAYS);
                loader.load_aliases(&aliases);
                self.loader = Some(loader);
            }
        }
    }

    /// Waits for the drivers loading in the background, if any, and takes the loader back.
    fn settle_drivers(&mut self) {
        if let Some(handle) = self.background_drivers.take() {
            let start = sys::boottime();
            match handle.join() {
                Ok(loader) => self.loader = loader,
                Err(_) => {
                    log::warn!("the driver loading thread failed: only the drivers loaded so far")
                }
            }
            log::debug!(
                "background drivers settled after {} ms",
                sys::boottime().saturating_sub(start).as_millis()
            );
        }
    }

    /// The module loader, once the background drivers are settled.
    fn drivers(&mut self) -> Option<&mut Loader> {
        self.settle_drivers();
        let loader = self.loader.as_mut()?;
        loader.settle_preload();
        Some(loader)
    }

    /// Undoes the mounts of a failed attempt so the next one starts clean.
    fn cleanup_for_retry(&mut self) {
        let Ok(points) = sys::mount_points() else {
            return;
        };
        let mut ours: Vec<&PathBuf> = points
            .iter()
            .filter(|p| {
                p.starts_with(SYSROOT)
                    || (p.starts_with(media::MEDIA_DIR)
                        && p.as_path() != Path::new(media::MEDIA_DIR))
            })
            .collect();
        // Deepest first.
        ours.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for p in ours {
            if sys::unmount(p).is_err() {
                let _ = sys::unmount_detach(p);
            }
        }
    }
}

/// The top-level mounts to carry into the new root: everything but `/` and the new root itself,
/// without the submounts of a mount that moves anyway (`/dev/pts` goes with `/dev`).
pub fn mounts_to_move(points: &[PathBuf]) -> Vec<PathBuf> {
    let mut candidates: Vec<&PathBuf> = points
        .iter()
        .filter(|p| p.as_path() != Path::new("/") && !p.starts_with(SYSROOT))
        .collect();
    candidates.sort_by_key(|p| p.components().count());
    let mut out: Vec<PathBuf> = Vec::new();
    for p in candidates {
        if !out.iter().any(|q| p.starts_with(q)) {
            out.push(p.clone());
        }
    }
    out
}

/// Sorted names in `dir` (empty when missing).
fn list_dir(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_top_level_mounts_only() {
        let points: Vec<PathBuf> = [
            "/",
            "/proc",
            "/sys",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/run",
            "/media/usb",
            "/sysroot",
            "/sysroot/proc",
            "/media/cdrom",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        let moved: Vec<String> = mounts_to_move(&points)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            moved,
            vec![
                "/proc",
                "/sys",
                "/dev",
                "/run",
                "/media/usb",
                "/media/cdrom"
            ]
        );
    }

    #[test]
    fn failure_line_names_the_phase() {
        let f = Failure {
            phase: "media discovery".into(),
            error: PlanError::NoMedium(0).into(),
        };
        assert_eq!(
            f.to_string(),
            "media discovery: no boot medium found: no boot repository and no apkovl on 0 block device(s)"
        );
        let f = Failure {
            phase: "finish".into(),
            error: BootError::InitMissing("/sbin/init".into()),
        };
        assert_eq!(
            f.to_string(),
            "finish: /sbin/init not found in new root (not an executable file)"
        );
    }
}
