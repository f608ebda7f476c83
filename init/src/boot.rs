//! The thin executor: walks the boot phases, calling [`crate::plan`] for decisions and
//! [`crate::sys`] for effects, timing each phase in the [`Timeline`].
//!
//! Phases: early setup → boot drivers → media discovery → tmpfs root → overlay → media
//! relocation → packages → finish → switch_root. [`run`] is `main`: it never returns; a failure
//! goes through [`crate::rescue`] (report, shell or `panic=`), and a Rust panic is sent down the
//! same path by the panic hook.
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::cmdline::{BootConfig, PanicPolicy};
use crate::console::{self, ConsolePassphrase, ConsoleProgress};
use crate::install::{InstallRequest, PackageInstaller};
use crate::media::{self, Medium};
use crate::modules::{self, Loader, ModuleDb};
use crate::overlay::{OverlayApplier, OverlayRequest};
use crate::plan::{self, Acceptance, Kind, PackageInputs, PlanError};
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
        eprintln!("init: this is the initramfs init; it must run as PID 1 (it deletes / at switch_root)");
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
            let f = Failure { phase: "early setup".into(), error: e };
            let cfg = BootConfig::default();
            report(&f, &mut timeline);
            rescue::follow_panic(cfg.panic.action)
        }
    };
    // CLOCK_BOOTTIME and /proc/uptime are the same clock: uptime minus init's age is when init began.
    if let Some(up) = std::fs::read_to_string("/proc/uptime").ok().and_then(|t| timeline::parse_uptime(&t)) {
        timeline.kernel_to_init = Some(up.saturating_sub(sys::boottime().saturating_sub(init_start)));
    }
    update_hook(&timeline, cfg.panic);
    let mut boot = Boot { cfg, timeline, applier, installer, loader: None, attempt: 0 };
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

/// Mounts `/proc`, `/sys`, `/dev` (+ `pts`, `shm`), `/run`, puts the console on fds 0-2, opens
/// kmsg and reads the command line. Idempotent (a retried boot may call it again).
fn early_setup() -> Result<BootConfig, BootError> {
    for d in ["/proc", "/sys", "/dev", "/run", SYSROOT, media::MEDIA_DIR, "/tmp"] {
        sys::make_dirs(Path::new(d))?;
    }
    mount_once("proc", "/proc", "proc", MountFlags::PSEUDO, None)?;
    mount_once("sysfs", "/sys", "sysfs", MountFlags::PSEUDO, None)?;
    let dev_flags = MountFlags { nosuid: true, ..MountFlags::default() };
    if let Err(e) = mount_once("devtmpfs", "/dev", "devtmpfs", dev_flags, Some("mode=0755,size=2M")) {
        // Without devtmpfs no block device nodes appear; keep going with a tmpfs so the failure
        // report can still reach the console.
        mount_once("tmpfs", "/dev", "tmpfs", dev_flags, Some("mode=0755,size=2M"))?;
        log::warn!("{e}; using a tmpfs /dev");
    }
    sys::ensure_char_device(Path::new("/dev/console"), 5, 1, 0o600)?;
    sys::ensure_char_device(Path::new("/dev/null"), 1, 3, 0o666)?;
    sys::ensure_char_device(Path::new("/dev/kmsg"), 1, 11, 0o660)?;
    sys::ensure_char_device(Path::new("/dev/ptmx"), 5, 2, 0o666)?;
    for d in ["/dev/pts", "/dev/shm"] {
        sys::make_dirs(Path::new(d))?;
    }
    mount_once("devpts", "/dev/pts", "devpts", MountFlags { noexec: true, nosuid: true, ..MountFlags::default() }, Some("gid=5,mode=0620"))?;
    mount_once("shm", "/dev/shm", "tmpfs", MountFlags::PSEUDO, None)?;
    mount_once("tmpfs", "/run", "tmpfs", MountFlags { nosuid: true, nodev: true, ..MountFlags::default() }, Some("mode=0755"))?;
    // The kernel may have started us without fds 0-2 (no /dev/console in the cpio).
    sys::reopen_console(Path::new("/dev/console"))?;
    console::attach_kmsg(sys::open_kmsg());
    let cmdline = match std::fs::read("/proc/cmdline") {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            log::warn!("/proc/cmdline: {e}; using defaults");
            String::new()
        }
    };
    let cfg = BootConfig::from_cmdline(&cmdline);
    console::set_verbosity(cfg.quiet, cfg.debug_init);
    log::info!("Alpine-compatible init {} (diskless)", env!("CARGO_PKG_VERSION"));
    for w in &cfg.warnings {
        log::warn!("{w}");
    }
    log::debug!("effective boot options:\n{}", cfg.describe());
    Ok(cfg)
}

fn mount_once(source: &str, target: &str, fstype: &str, flags: MountFlags, data: Option<&str>) -> Result<(), SysError> {
    let t = Path::new(target);
    if sys::is_mount_point(t) {
        return Ok(());
    }
    sys::mount_fs(source, t, fstype, flags, data)
}

struct Boot<'a> {
    cfg: BootConfig,
    timeline: Timeline,
    applier: &'a mut dyn OverlayApplier,
    installer: &'a mut dyn PackageInstaller,
    loader: Option<Loader>,
    attempt: u32,
}

/// The state carried from one phase to the next within an attempt.
struct Prepared {
    media: Vec<Medium>,
    overlay_files: Option<Vec<String>>,
    repositories: Vec<PathBuf>,
}

impl Boot<'_> {
    fn phase(&mut self, name: &str) {
        self.timeline.begin(name, sys::boottime());
        update_hook(&self.timeline, self.cfg.panic);
        sys::reap_zombies();
    }

    fn fail<T>(&self, error: impl Into<BootError>) -> Result<T, Failure> {
        let phase = self.timeline.phases.last().map(|p| p.name.clone()).unwrap_or_default();
        Err(Failure { phase, error: error.into() })
    }

    fn attempt_boot(&mut self) -> Result<Infallible, Failure> {
        if self.attempt > 1 {
            log::info!("retrying the boot (attempt {})", self.attempt);
        }
        if let Err(e) = plan::check_supported(&self.cfg) {
            return Err(Failure { phase: "boot options".into(), error: e.into() });
        }
        self.phase("boot drivers");
        self.load_boot_drivers();

        self.phase("media discovery");
        log::info!("Mounting boot media");
        let found = media::discover(&self.cfg, self.loader.as_mut());
        console::print(&found.report());
        self.timeline.note(format!("{} device(s), {} medium(s)", found.candidates.len(), found.media.len()));
        if let Err(e) = plan::check_found(&self.cfg, &found.media, found.candidates.len()) {
            return self.fail(e);
        }

        self.phase("tmpfs root");
        let opts = plan::tmpfs_options(&self.cfg);
        if let Err(e) = sys::mount_fs("tmpfs", Path::new(SYSROOT), "tmpfs", MountFlags::default(), Some(&opts)) {
            return self.fail(e);
        }
        let root = match RootDir::open(Path::new(SYSROOT)) {
            Ok(r) => r,
            Err(e) => return self.fail(e),
        };

        self.phase("overlay");
        let overlay_files = match self.apply_overlay(&found.media, &root) {
            Ok(f) => f,
            Err(e) => return self.fail(e),
        };

        self.phase("media relocation");
        let prepared = match self.relocate_media(found.media, overlay_files, &root) {
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
                log::warn!("single mode requested, but the initramfs has no {}", rescue::SHELL);
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
        let Some(loader) = self.loader.as_mut() else { return };
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

    /// Chooses, verifies and applies the overlay. Returns the overlay file list (None: no overlay).
    fn apply_overlay(&mut self, media: &[Medium], root: &RootDir) -> Result<Option<Vec<String>>, BootError> {
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
        let keys_present = std::fs::read_dir(APKOVL_KEYS).map(|mut d| d.next().is_some()).unwrap_or(false);
        let policy = plan::effective_verify_policy(self.cfg.apkovl_verify, keys_present);
        log::info!("Loading user settings from {} (apkovl_verify={policy})", choice.file.display());
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
        match req.judge(&report.signature) {
            Ok(Acceptance::Verified { key }) => log::info!("apkovl signature verified (key {key})"),
            Ok(Acceptance::UnsignedWarn) => log::warn!("{}: apkovl is not signed (apkovl_verify=optional)", req.file.display()),
            Ok(Acceptance::Unsigned) => log::debug!("apkovl is not signed (apkovl_verify=off)"),
            Err(e) => return Err(BootError::PolicyIgnored { file: req.file.clone(), refusal: e }),
        }
        // Overlays do not store parent directories; /root must not be world-readable (§3.6).
        root.chmod_dir("root", 0o700)?;
        if let Some(fstab) = root.read_string("etc/fstab")? {
            if let Some(opts) = plan::root_remount_options(&fstab) {
                log::info!("remounting {SYSROOT} with the overlay's fstab options {opts}");
                sys::remount(Path::new(SYSROOT), &opts)?;
            }
        }
        self.timeline.note(format!("{} entries, {}", report.files.len(), timeline::human_bytes(report.bytes)));
        Ok(Some(report.files))
    }

    /// Moves media to their final `/media/<name>` and resolves the repositories there.
    fn relocate_media(&mut self, media: Vec<Medium>, overlay_files: Option<Vec<String>>, root: &RootDir) -> Result<Prepared, BootError> {
        let overlay_fstab = if overlay_files.is_some() { root.read_string("etc/fstab")? } else { None };
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
                m.repositories = m.repositories.iter().map(|r| plan::relocate(r, &moves)).collect();
                m.overlays = m.overlays.iter().map(|o| plan::relocate(o, &moves)).collect();
                m.cache = m.cache.as_ref().map(|c| plan::relocate(c, &moves));
                m
            })
            .collect();
        let mut cfg = self.cfg.clone();
        cfg.alpine_repo = cfg.alpine_repo.iter().map(|r| plan::relocate(Path::new(r), &moves).display().to_string()).collect();
        let repositories = plan::repositories(&cfg, &media, &|p: &Path| p.is_dir())?;
        for r in &repositories {
            log::info!("boot repository {}", r.display());
        }
        Ok(Prepared { media, overlay_files, repositories })
    }

    fn install_packages(&mut self, p: &Prepared, root: &RootDir) -> Result<(), BootError> {
        // apk looks keys up under --root: without these every index is untrusted (§3.9).
        for name in list_dir(Path::new(APK_KEYS)) {
            root.copy_in(&Path::new(APK_KEYS).join(&name), &format!("etc/apk/keys/{name}"))?;
        }
        let mut modloop_keys = false;
        for name in list_dir(Path::new("/var/cache/misc")).into_iter().filter(|n| plan::is_modloop_key(n)) {
            root.copy_in(&Path::new("/var/cache/misc").join(&name), &format!("var/cache/misc/{name}"))?;
            modloop_keys = true;
        }
        if root.exists("etc/apk/arch") {
            root.write_atomic("etc/apk/arch", format!("{}\n", std::env::consts::ARCH).as_bytes(), 0o644)?;
        }
        let default_services = self.default_services(p, root);
        let world = if p.overlay_files.is_some() { root.read_string("etc/apk/world")? } else { None };
        let pkgs = plan::package_list(&self.cfg, PackageInputs { world: world.as_deref(), default_services, modloop_keys });
        for bad in &pkgs.rejected {
            log::error!("{bad}");
        }
        log::info!("Installing packages to root filesystem");
        let req = InstallRequest {
            root: PathBuf::from(SYSROOT),
            repositories: p.repositories.clone(),
            cache_dirs: p.media.iter().filter_map(|m| m.cache.clone()).collect(),
            packages: pkgs.packages,
            keys_dir: PathBuf::from(SYSROOT).join("etc/apk/keys"),
            arch: std::env::consts::ARCH.to_string(),
            clean_protected: !self.cfg.keep_apk_new,
            overlay_files: if self.cfg.keep_apk_new { None } else { p.overlay_files.clone() },
            no_network: true,
            initramfs_diskless_boot: true,
            quiet: self.cfg.quiet,
        };
        // Package scripts run chrooted and need /proc, /sys and /dev.
        let mut bound = Vec::new();
        let mut result = Ok(());
        for d in ["sys", "proc", "dev"] {
            let target = Path::new(SYSROOT).join(d);
            if let Err(e) = root.create_dir_all(d, 0o755).map(drop).and_then(|_| sys::bind_mount(&Path::new("/").join(d), &target)) {
                result = Err(e);
                break;
            }
            bound.push(target);
        }
        let install = result.map_err(BootError::from).and_then(|()| {
            self.installer.install(&req, &mut ConsoleProgress::new(self.cfg.quiet)).map_err(BootError::from)
        });
        for target in bound.iter().rev() {
            if sys::unmount(target).is_err() {
                let _ = sys::unmount_detach(target);
            }
        }
        // Scripts may have left children behind; they are ours now.
        sys::reap_zombies();
        let report = install?;
        for w in &report.warnings {
            log::warn!("{w}");
        }
        self.timeline.set_installed(report.packages, report.bytes);
        self.timeline.note(format!("{} packages, {}", report.packages, timeline::human_bytes(report.bytes)));
        Ok(())
    }

    fn default_services(&self, p: &Prepared, root: &RootDir) -> bool {
        plan::default_services_apply(p.overlay_files.is_some(), root.exists_nofollow(DEFAULT_SERVICES_MARKER))
    }

    fn finish(&mut self, p: &Prepared, root: &RootDir) -> Result<(), BootError> {
        let default_services = self.default_services(p, root);
        if default_services {
            root.remove_file(DEFAULT_SERVICES_MARKER)?;
        }
        let rtc = plan::has_rtc(&list_dir(Path::new("/dev")));
        for (level, svc) in plan::service_links(default_services, self.cfg.ssh_key.is_some(), rtc) {
            root.symlink(&format!("etc/runlevels/{level}/{svc}"), &format!("/etc/init.d/{svc}"))?;
        }
        if let Some(h) = plan::hostname_file(&self.cfg, p.overlay_files.as_deref()) {
            root.write_atomic("etc/hostname", h.as_bytes(), 0o644)?;
        }
        if let Some(key) = plan::authorized_key(&self.cfg) {
            if !root.exists_nofollow("root/.ssh/authorized_keys") {
                root.create_dir_all("root/.ssh", 0o700)?;
                root.chmod_dir("root", 0o700)?;
                root.chmod_dir("root/.ssh", 0o700)?;
                root.write_atomic("root/.ssh/authorized_keys", key.as_bytes(), 0o600)?;
            }
        }
        let moved: Vec<(&Medium, &Path)> = p.media.iter().map(|m| (m, m.mount_point.as_path())).collect();
        let fstab = root.read_string("etc/fstab")?.unwrap_or_default();
        if let Some(new) = plan::update_fstab(&fstab, &moved) {
            let mode = root.mode("etc/fstab").unwrap_or(0o644);
            root.write_atomic("etc/fstab", new.as_bytes(), mode)?;
        }
        if !root.exists_nofollow("etc/apk/repositories") && !p.repositories.is_empty() {
            root.write_atomic("etc/apk/repositories", plan::repositories_file(&p.repositories).as_bytes(), 0o644)?;
        }
        match root.read_string("etc/inittab")? {
            Some(text) => {
                let add = plan::inittab_additions(&text, &self.cfg.consoles);
                if !add.is_empty() {
                    root.append("etc/inittab", &add)?;
                }
            }
            None if !plan::getty_consoles(&self.cfg.consoles).is_empty() => {
                log::warn!("no etc/inittab in the new root: no getty added for the serial console");
            }
            None => {}
        }
        if let Some(text) = root.read_string("etc/securetty")? {
            let add = plan::securetty_additions(&text, &self.cfg.consoles);
            if !add.is_empty() {
                root.append("etc/securetty", &add.iter().map(|t| format!("{t}\n")).collect::<String>())?;
            }
        }
        if !root.is_executable(&self.cfg.init) {
            return Err(BootError::InitMissing(self.cfg.init.clone()));
        }
        Ok(())
    }

    fn switch_root(&mut self, root: &RootDir) -> BootError {
        let now = sys::boottime();
        self.timeline.note(format!("exec {}", self.cfg.init));
        let text = self.timeline.render(now);
        if let Err(e) = root.write_atomic(timeline::TIMELINE_FILE, text.as_bytes(), 0o644) {
            log::warn!("{e}");
        }
        if console::verbose() {
            console::print(&text);
        }
        let points = match sys::mount_points() {
            Ok(p) => p,
            Err(e) => return e.into(),
        };
        for p in mounts_to_move(&points) {
            let rel = p.strip_prefix("/").unwrap_or(&p).to_string_lossy().into_owned();
            if let Err(e) = root.create_dir_all(&rel, 0o755) {
                return e.into();
            }
            if let Err(e) = sys::move_mount(&p, &Path::new(SYSROOT).join(&rel)) {
                return e.into();
            }
        }
        sys::sync();
        let console = self.cfg.console_device();
        let console = if console.exists() || Path::new(SYSROOT).join(console.strip_prefix("/").unwrap_or(&console)).exists() {
            console
        } else {
            PathBuf::from("/dev/console")
        };
        match sys::switch_root(Path::new(SYSROOT), &self.cfg.init, &self.cfg.init_args, &console) {
            Ok(never) => match never {},
            Err(e) => e.into(),
        }
    }

    /// Undoes the mounts of a failed attempt so the next one starts clean.
    fn cleanup_for_retry(&mut self) {
        let Ok(points) = sys::mount_points() else { return };
        let mut ours: Vec<&PathBuf> = points
            .iter()
            .filter(|p| p.starts_with(SYSROOT) || (p.starts_with(media::MEDIA_DIR) && p.as_path() != Path::new(media::MEDIA_DIR)))
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
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_top_level_mounts_only() {
        let points: Vec<PathBuf> = ["/", "/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/run", "/media/usb", "/sysroot", "/sysroot/proc", "/media/cdrom"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let moved: Vec<String> = mounts_to_move(&points).iter().map(|p| p.display().to_string()).collect();
        assert_eq!(moved, vec!["/proc", "/sys", "/dev", "/run", "/media/usb", "/media/cdrom"]);
    }

    #[test]
    fn failure_line_names_the_phase() {
        let f = Failure { phase: "media discovery".into(), error: PlanError::NoMedium(0).into() };
        assert_eq!(
            f.to_string(),
            "media discovery: no boot medium found: no boot repository and no apkovl on 0 block device(s)"
        );
        let f = Failure { phase: "finish".into(), error: BootError::InitMissing("/sbin/init".into()) };
        assert_eq!(f.to_string(), "finish: /sbin/init not found in new root (not an executable file)");
    }
}
