//! The phases that finish and enter the new root (docs/boot.md, "The new root"): finish
//! (runlevels, hostname, ssh key, fstab, repositories, inittab, securetty, the init check) and
//! switch_root (timeline file, the initramfs's mounts moved into the new root beneath it,
//! `switch_root`).
use std::path::{Path, PathBuf};

use super::{
    list_dir, mounts_to_move, Boot, BootError, Prepared, DEFAULT_SERVICES_MARKER, MAX_CONFIG_BYTES,
    PRINTK_DEVKMSG, SYSROOT,
};
use crate::console;
use crate::media::Medium;
use crate::plan;
use crate::sys::{self, rootdir::RootDir};
use crate::timeline;

impl Boot {
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
        let fstab = root
            .read_string("etc/fstab", MAX_CONFIG_BYTES)?
            .unwrap_or_default();
        if let Some(new) = plan::update_fstab(&fstab, &moved) {
            let mode = root.mode("etc/fstab").unwrap_or(0o644);
            root.write_atomic("etc/fstab", new.as_bytes(), mode)?;
        }
        // The network the init configured stays up in the new root: so do its name servers
        // (unless the overlay brought its own resolv.conf).
        if let Some(text) = self.network.as_ref().and_then(|n| n.resolv_conf.as_deref()) {
            if !root.exists_nofollow("etc/resolv.conf") {
                root.write_atomic("etc/resolv.conf", text.as_bytes(), 0o644)?;
            }
        }
        if !root.exists_nofollow("etc/apk/repositories") && !p.repositories.is_empty() {
            root.write_atomic(
                "etc/apk/repositories",
                plan::repositories_file(&p.repositories).as_bytes(),
                plan::repositories_mode(&p.repositories),
            )?;
        }
        match root.read_string("etc/inittab", MAX_CONFIG_BYTES)? {
            Some(text) => {
                let add = plan::inittab_additions(&text, &self.cfg.consoles);
                if !add.is_empty() {
                    root.append("etc/inittab", &add, MAX_CONFIG_BYTES)?;
                }
            }
            None if !plan::getty_consoles(&self.cfg.consoles).is_empty() => {
                log::warn!("no etc/inittab in the new root: no getty added for the serial console");
            }
            None => {}
        }
        if let Some(text) = root.read_string("etc/securetty", MAX_CONFIG_BYTES)? {
            let add = plan::securetty_additions(&text, &self.cfg.consoles);
            if !add.is_empty() {
                root.append(
                    "etc/securetty",
                    &add.iter().map(|t| format!("{t}\n")).collect::<String>(),
                    MAX_CONFIG_BYTES,
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
        // Each mount lands on the same path beneath the new root, never through a symlink the
        // overlay or a package planted there.
        for p in mounts_to_move(&points) {
            let rel = p.to_string_lossy();
            if let Err(e) = root
                .mount_point(&rel)
                .and_then(|target| sys::move_into(&p, &target))
            {
                return e.into();
            }
        }
        sys::sync();
        let console = self.cfg.console_device();
        let console = if console.exists() || root.exists(&console.to_string_lossy()) {
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
