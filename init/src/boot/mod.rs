//! The thin executor: walks the boot phases, calling [`crate::plan`] for decisions and
//! [`crate::sys`] for effects, timing each phase in the [`Timeline`].
//!
//! Phases: early setup → boot drivers → media discovery → tmpfs root → overlay → media
//! relocation → packages → finish → switch_root. [`run`] is `main`: it never returns; a failure
//! goes through [`crate::rescue`] (report, shell or `panic=`), and a Rust panic is sent down the
//! same path by the panic hook.
mod early;
mod newroot;

use early::{early_setup, mount_early};

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::cmdline::{BootConfig, PanicPolicy};
use crate::console::{self, ConsolePassphrase};
use crate::install::PackageInstaller;
use crate::media::{self, Medium};
use crate::modules::{self, Loader, ModuleDb};
use crate::overlay::{OverlayApplier, OverlayReport, OverlayRequest};
use crate::plan::{self, Acceptance, Kind, PlanError};
use crate::rescue;
use crate::step::StepError;
use crate::sys::{self, rootdir::RootDir, MountFlags, SwitchRootError, SysError};
use crate::timeline::{self, Outcome, Timeline};

/// The new root.
pub const SYSROOT: &str = "/sysroot";
/// Index keys in the initramfs (copied into the new root).
pub const APK_KEYS: &str = "/etc/apk/keys";
/// Trusted overlay keys in the initramfs.
pub const APKOVL_KEYS: &str = "/etc/apkovl/keys";
/// Userspace kmsg rate limit switch.
const PRINTK_DEVKMSG: &str = "/proc/sys/kernel/printk_devkmsg";
/// Overlay marker asking for the default services.
pub const DEFAULT_SERVICES_MARKER: &str = "etc/.default_boot_services";

/// Why the boot stopped. The phase is added by the report.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// A syscall failed.
    #[error("{0}")]
    Sys(#[from] SysError),
    /// A boot decision refused to go on.
    #[error("{0}")]
    Plan(#[from] PlanError),
    /// The overlay or install step failed.
    #[error("{0}")]
    Step(#[from] StepError),
    /// `switch_root` failed.
    #[error("{0}")]
    SwitchRoot(#[from] SwitchRootError),
    /// The new root has no runnable init.
    #[error("{0} not found in new root (not an executable file)")]
    InitMissing(String),
    /// An applier returned an overlay the policy refuses (it should have stopped before extracting).
    #[error("{}: overlay applier ignored the signature policy: {refusal}", file.display())]
    PolicyIgnored {
        /// The overlay.
        file: PathBuf,
        /// The policy's verdict.
        refusal: StepError,
    },
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
            None => PanicPolicy::default(),
        };
        rescue::after_bug(&policy)
    }));
}

/// `main`: early setup, then boot attempts until one reaches `/sbin/init`. Never returns.
pub fn run(applier: &mut dyn OverlayApplier, installer: &mut dyn PackageInstaller) -> ! {
    if !sys::is_pid1() {
        eprintln!(
            "init: this is the initramfs init; it must run as PID 1 (it deletes / at switch_root)"
        );
        std::process::exit(1);
    }
    console::init_logging();
    let init_start = sys::boottime();
    let mut timeline = Timeline::start(init_start, None);
    install_panic_hook();
    timeline.begin("early setup", init_start);
    let cfg = match early_setup() {
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
    // CLOCK_BOOTTIME and /proc/uptime are the same clock: uptime minus init's age is when init began.
    if let Some(up) = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| timeline::parse_uptime(&t))
    {
        timeline.kernel_to_init =
            Some(up.saturating_sub(sys::boottime().saturating_sub(init_start)));
    }
    update_hook(&timeline, cfg.panic);
    let mut boot = Boot {
        cfg,
        timeline,
        applier,
        installer,
        loader: None,
        attempt: 0,
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

struct Boot<'a> {
    cfg: BootConfig,
    timeline: Timeline,
    applier: &'a mut dyn OverlayApplier,
    installer: &'a mut dyn PackageInstaller,
    loader: Option<Loader>,
    attempt: u32,
}

/// An applied overlay: what was asked and what the applier did.
struct Applied {
    req: OverlayRequest,
    report: OverlayReport,
}

/// The state carried from one phase to the next within an attempt.
struct Prepared {
    media: Vec<Medium>,
    overlay: Option<Applied>,
    repositories: Vec<PathBuf>,
}

impl Prepared {
    /// The overlay file list (`None`: no overlay was applied).
    fn overlay_files(&self) -> Option<&[String]> {
        self.overlay.as_ref().map(|a| a.report.files.as_slice())
    }
}

impl Boot<'_> {
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
        if let Err(e) = plan::check_supported(&self.cfg) {
            return Err(Failure {
                phase: "boot options".into(),
                error: e.into(),
            });
        }
        self.phase("boot drivers");
        self.load_boot_drivers();

        self.phase("media discovery");
        log::info!("Mounting boot media");
        let found = media::discover(&self.cfg, self.loader.as_mut());
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
        if let Err(e) = self.finish(&prepared, &root) {
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

    fn load_boot_drivers(&mut self) {
        if self.loader.is_none() {
            let Some(kver) = sys::kernel_release() else {
                log::warn!("uname: no kernel release; only built-in drivers");
                return;
            };
            let dir = Path::new("/lib/modules").join(&kver);
            match ModuleDb::load(&dir) {
                Ok(mut db) => {
                    db.add_modprobe_dir(Path::new("/etc/modprobe.d"));
                    self.loader = Some(Loader::new(db, &self.cfg.blacklist));
                }
                Err(e) => {
                    log::warn!("{e}; only built-in drivers are available");
                    return;
                }
            }
        }
        let Some(loader) = self.loader.as_mut() else {
            return;
        };
        log::info!("Loading boot drivers");
        let before = loader.loaded().len();
        for m in &self.cfg.modules {
            if let modules::Loaded::NoMatch = loader.load_name(m, "") {
                log::warn!("modules={m}: no such module");
            }
        }
        // Upstream always asks for these (modloop needs loop + squashfs; simpledrm gives a console).
        for m in ["loop", "squashfs", "simpledrm"] {
            loader.load_quietly(m);
        }
        if let Ok(text) = std::fs::read_to_string("/etc/modules") {
            for (m, params) in modules::parse_etc_modules(&text) {
                loader.load_name(&m, &params);
            }
        }
        let n = loader.loaded().len().saturating_sub(before);
        self.timeline.note(format!("{n} module(s)"));
    }

    /// Chooses, verifies and applies the overlay (`None`: there is none).
    fn apply_overlay(
        &mut self,
        media: &[Medium],
        root: &RootDir,
    ) -> Result<Option<Applied>, BootError> {
        let kind = |p: &Path| match std::fs::metadata(p) {
            Ok(m) if m.is_file() => Some(Kind::File),
            Ok(_) => Some(Kind::Other),
            Err(_) => None,
        };
        let Some(choice) = plan::choose_overlay(self.cfg.apkovl.as_ref(), media, &kind)? else {
            log::info!("no apkovl found: default configuration");
            self.timeline.note("none");
            return Ok(None);
        };
        let keys_present = std::fs::read_dir(APKOVL_KEYS)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        let policy = plan::effective_verify_policy(self.cfg.apkovl_verify, keys_present);
        log::info!(
            "Loading user settings from {} (apkovl_verify={policy})",
            choice.file.display()
        );
        let req = OverlayRequest {
            file: choice.file.clone(),
            signature: choice.signature.clone(),
            encryption: choice.encryption.clone(),
            root: PathBuf::from(SYSROOT),
            trusted_keys_dir: PathBuf::from(APKOVL_KEYS),
            policy,
            quiet: self.cfg.quiet,
        };
        let report = self.applier.apply(&req, &mut ConsolePassphrase::new())?;
        // Belt and braces: the applier was to refuse before extracting; if it did not, stop here.
        let trust = match req.judge(&report.signature) {
            Ok(Acceptance::Verified { key }) => {
                log::info!("apkovl signature verified (key {key})");
                format!("signature verified ({key})")
            }
            Ok(Acceptance::UnsignedWarn) => {
                log::warn!(
                    "{}: apkovl is not signed (apkovl_verify=optional)",
                    req.file.display()
                );
                "unsigned".to_string()
            }
            Ok(Acceptance::Unsigned) => {
                log::debug!("apkovl is not signed (apkovl_verify=off)");
                "unsigned".to_string()
            }
            Err(e) => {
                return Err(BootError::PolicyIgnored {
                    file: req.file.clone(),
                    refusal: e,
                })
            }
        };
        for w in &report.warnings {
            log::warn!("{}: {w}", req.file.display());
        }
        // Overlays do not store parent directories; /root must not be world-readable (§3.6).
        root.chmod_dir("root", 0o700)?;
        if let Some(fstab) = root.read_string("etc/fstab")? {
            if let Some(opts) = plan::root_remount_options(&fstab) {
                log::info!("remounting {SYSROOT} with the overlay's fstab options {opts}");
                sys::remount(Path::new(SYSROOT), &opts)?;
            }
        }
        self.timeline.note(format!(
            "{} entries, {}, {trust}",
            report.files.len(),
            timeline::human_bytes(report.bytes)
        ));
        Ok(Some(Applied { req, report }))
    }

    /// Moves media to their final `/media/<name>` and resolves the repositories there.
    fn relocate_media(
        &mut self,
        media: Vec<Medium>,
        overlay: Option<Applied>,
        root: &RootDir,
    ) -> Result<Prepared, BootError> {
        let overlay_fstab = if overlay.is_some() {
            root.read_string("etc/fstab")?
        } else {
            None
        };
        let moves = plan::media_moves(&media, overlay_fstab.as_deref());
        for mv in moves.iter().filter(|m| m.from != m.to) {
            sys::make_dirs(&mv.to)?;
            sys::move_mount(&mv.from, &mv.to)?;
            let _ = std::fs::remove_dir(&mv.from);
            log::debug!("media: {} moved to {}", mv.from.display(), mv.to.display());
        }
        let media: Vec<Medium> = media
            .into_iter()
            .map(|mut m| {
                m.mount_point = plan::relocate(&m.mount_point, &moves);
                m.repositories = m
                    .repositories
                    .iter()
                    .map(|r| plan::relocate(r, &moves))
                    .collect();
                m.overlays = m
                    .overlays
                    .iter()
                    .map(|o| plan::relocate(o, &moves))
                    .collect();
                m.cache = m.cache.as_ref().map(|c| plan::relocate(c, &moves));
                m
            })
            .collect();
        let mut cfg = self.cfg.clone();
        cfg.alpine_repo = cfg
            .alpine_repo
            .iter()
            .map(|r| plan::relocate(Path::new(r), &moves).display().to_string())
            .collect();
        let repositories = plan::repositories(&cfg, &media, &|p: &Path| p.is_dir())?;
        for r in &repositories {
            log::info!("boot repository {}", r.display());
        }
        Ok(Prepared {
            media,
            overlay,
            repositories,
        })
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
