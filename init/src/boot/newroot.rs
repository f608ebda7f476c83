//! The phases that build and enter the new root: packages (keys, world, bind mounts, the
//! installer seam), finish (runlevels, hostname, ssh key, fstab, repositories, inittab,
//! securetty, the init check) and switch_root (timeline file, moving the mounts, `switch_root`).
use std::path::{Path, PathBuf};

use super::{
    list_dir, mounts_to_move, Boot, BootError, Prepared, APK_KEYS, DEFAULT_SERVICES_MARKER,
    PRINTK_DEVKMSG, SYSROOT,
};
use crate::console::{self, ConsoleProgress};
use crate::install::InstallRequest;
use crate::media::Medium;
use crate::plan::{self, PackageInputs};
use crate::sys::{self, rootdir::RootDir};
use crate::timeline;

impl Boot<'_> {
    pub(super) fn install_packages(
        &mut self,
        p: &Prepared,
        root: &RootDir,
    ) -> Result<(), BootError> {
        // apk looks keys up under --root: without these every index is untrusted (§3.9).
        for name in list_dir(Path::new(APK_KEYS)) {
            root.copy_in(
                &Path::new(APK_KEYS).join(&name),
                &format!("etc/apk/keys/{name}"),
            )?;
        }
        let mut modloop_keys = false;
        for name in list_dir(Path::new("/var/cache/misc"))
            .into_iter()
            .filter(|n| plan::is_modloop_key(n))
        {
            root.copy_in(
                &Path::new("/var/cache/misc").join(&name),
                &format!("var/cache/misc/{name}"),
            )?;
            modloop_keys = true;
        }
        if root.exists("etc/apk/arch") {
            root.write_atomic(
                "etc/apk/arch",
                format!("{}\n", std::env::consts::ARCH).as_bytes(),
                0o644,
            )?;
        }
        let default_services = self.default_services(p, root);
        let world = if p.overlay.is_some() {
            root.read_string("etc/apk/world")?
        } else {
            None
        };
        let pkgs = plan::package_list(
            &self.cfg,
            PackageInputs {
                world: world.as_deref(),
                default_services,
                modloop_keys,
            },
        );
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
            overlay_files: if self.cfg.keep_apk_new {
                None
            } else {
                p.overlay_files().map(<[String]>::to_vec)
            },
            no_network: true,
            initramfs_diskless_boot: true,
            quiet: self.cfg.quiet,
        };
        // Package scripts run chrooted and need /proc, /sys and /dev.
        let mut bound = Vec::new();
        let mut result = Ok(());
        for d in ["sys", "proc", "dev"] {
            let target = Path::new(SYSROOT).join(d);
            if let Err(e) = root
                .create_dir_all(d, 0o755)
                .map(drop)
                .and_then(|_| sys::bind_mount(&Path::new("/").join(d), &target))
            {
                result = Err(e);
                break;
            }
            bound.push(target);
        }
        let install = result.map_err(BootError::from).and_then(|()| {
            self.installer
                .install(&req, &mut ConsoleProgress::new(self.cfg.quiet))
                .map_err(BootError::from)
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
        // The overlay's deletions win over files the packages just installed.
        if let Some(a) = &p.overlay {
            self.applier.after_install(&a.req, &a.report)?;
        }
        self.timeline.set_installed(report.packages, report.bytes);
        self.timeline.note(format!(
            "{} packages, {}",
            report.packages,
            timeline::human_bytes(report.bytes)
        ));
        Ok(())
    }

    fn default_services(&self, p: &Prepared, root: &RootDir) -> bool {
        plan::default_services_apply(
            p.overlay.is_some(),
            root.exists_nofollow(DEFAULT_SERVICES_MARKER),
        )
    }

    pub(super) fn finish(&mut self, p: &Prepared, root: &RootDir) -> Result<(), BootError> {
        let default_services = self.default_services(p, root);
        if default_services {
            root.remove_file(DEFAULT_SERVICES_MARKER)?;
        }
        let rtc = plan::has_rtc(&list_dir(Path::new("/dev")));
        for (level, svc) in plan::service_links(default_services, self.cfg.ssh_key.is_some(), rtc) {
            root.symlink(
                &format!("etc/runlevels/{level}/{svc}"),
                &format!("/etc/init.d/{svc}"),
            )?;
        }
        if let Some(h) = plan::hostname_file(&self.cfg, p.overlay_files()) {
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
        let moved: Vec<(&Medium, &Path)> = p
            .media
            .iter()
            .map(|m| (m, m.mount_point.as_path()))
            .collect();
        let fstab = root.read_string("etc/fstab")?.unwrap_or_default();
        if let Some(new) = plan::update_fstab(&fstab, &moved) {
            let mode = root.mode("etc/fstab").unwrap_or(0o644);
            root.write_atomic("etc/fstab", new.as_bytes(), mode)?;
        }
        if !root.exists_nofollow("etc/apk/repositories") && !p.repositories.is_empty() {
            root.write_atomic(
                "etc/apk/repositories",
                plan::repositories_file(&p.repositories).as_bytes(),
                0o644,
            )?;
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
                root.append(
                    "etc/securetty",
                    &add.iter().map(|t| format!("{t}\n")).collect::<String>(),
                )?;
            }
        }
        if !root.is_executable(&self.cfg.init) {
            return Err(BootError::InitMissing(self.cfg.init.clone()));
        }
        Ok(())
    }

    pub(super) fn switch_root(&mut self, root: &RootDir) -> BootError {
        let now = sys::boottime();
        self.timeline.note(format!("exec {}", self.cfg.init));
        let text = self.timeline.render(now);
        if let Err(e) = root.write_atomic(timeline::TIMELINE_FILE, text.as_bytes(), 0o644) {
            log::warn!("{e}");
        }
        if console::verbose() {
            console::print(&text);
        }
        // Before /proc moves away.
        let _ = std::fs::write(PRINTK_DEVKMSG, "ratelimit\n");
        let points = match sys::mount_points() {
            Ok(p) => p,
            Err(e) => return e.into(),
        };
        for p in mounts_to_move(&points) {
            let rel = p
                .strip_prefix("/")
                .unwrap_or(&p)
                .to_string_lossy()
                .into_owned();
            if let Err(e) = root.create_dir_all(&rel, 0o755) {
                return e.into();
            }
            if let Err(e) = sys::move_mount(&p, &Path::new(SYSROOT).join(&rel)) {
                return e.into();
            }
        }
        sys::sync();
        let console = self.cfg.console_device();
        let console = if console.exists()
            || Path::new(SYSROOT)
                .join(console.strip_prefix("/").unwrap_or(&console))
                .exists()
        {
            console
        } else {
            PathBuf::from("/dev/console")
        };
        match sys::switch_root(
            Path::new(SYSROOT),
            &self.cfg.init,
            &self.cfg.init_args,
            &console,
        ) {
            Ok(never) => match never {},
            Err(e) => e.into(),
        }
    }
}
