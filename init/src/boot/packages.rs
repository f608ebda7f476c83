//! The packages phase (docs/boot.md, "Packages"): the index keys into the new root, the install
//! list ([`plan::package_list`]), `/proc`, `/sys` and `/dev` bound into the root for package
//! scripts, and the embedded apk core installing in-process (never an external apk), as
//! Alpine's `apk add --root /sysroot --initramfs-diskless-boot --no-network [--clean-protected
//! [--overlay-from-stdin]] PACKAGES` does. apk's own lines (`( 1/25) Installing ...`) go to the
//! console. Then the overlay's deletions, which win over what the packages installed.
use std::path::{Path, PathBuf};

use apk::context::{Access, Context, Options};
use apk::extract::OverlayList;
use apk::output::Out;

use super::{
    list_dir, Boot, BootError, Prepared, DEFAULT_SERVICES_MARKER, MAX_CONFIG_BYTES, SYSROOT,
};
use crate::cmdline::BootConfig;
use crate::plan::{self, PackageInputs};
use crate::sys::{self, rootdir::RootDir};
use crate::timeline;

/// Where Alpine's initramfs keeps modloop verification keys (installed with `openssl`).
const MODLOOP_KEYS: &str = "/var/cache/misc";
/// Largest key file copied into the new root.
const MAX_KEY_BYTES: u64 = 1 << 20;

/// Why the install failed. The subject is the package list, as apk's `add` would name it.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The apk core refused or failed (unsatisfiable world, unreadable index, I/O).
    #[error("install {}: {source}", .packages.join(" "))]
    Apk {
        /// The install list.
        packages: Vec<String>,
        /// apk's error.
        source: apk::context::Error,
    },
    /// apk installed, but reported errors on the lines above (a package that failed its check).
    #[error("install {}: {count} error{} while installing (see the lines above)",
        .packages.join(" "), if *.count == 1 { "" } else { "s" })]
    Errors {
        /// The install list.
        packages: Vec<String>,
        /// How many.
        count: usize,
    },
}

/// What the boot decided about the install, as apk's options (`apk add --root /sysroot ...`).
pub fn apk_options(
    cfg: &BootConfig,
    repositories: &[PathBuf],
    cache: Option<PathBuf>,
    overlay_files: Option<&[String]>,
) -> Options {
    let remote = repositories
        .iter()
        .any(|p| crate::cmdline::is_url(&p.to_string_lossy()));
    Options {
        root: PathBuf::from(SYSROOT),
        repositories: repositories
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
        // apk looks keys up under --root: the initramfs's keys were copied there.
        keys_dir: Some(PathBuf::from(SYSROOT).join(bootspec::initramfs::APK_KEYS)),
        // A remote boot repository (netboot) is downloaded; media repositories never are.
        no_network: !remote,
        // The initramfs's certificate authorities for an https:// boot repository.
        http: if remote {
            super::network::http_options()
        } else {
            Default::default()
        },
        cache_dir: cache,
        clean_protected: !cfg.keep_apk_new,
        // --overlay-from-stdin: files the overlay provided win over package files (only with
        // --clean-protected, as Alpine's init passes them).
        overlay: overlay_files
            .filter(|_| !cfg.keep_apk_new)
            .map(|f| OverlayList::parse(&f.join("\n"))),
        diskless_boot: true,
        initdb: true,
        arch: Some(std::env::consts::ARCH.to_string()),
        // One bad token in an overlay's world must not leave the box empty: the plan already
        // reported it and passes only valid names, but the root's world is read leniently too.
        lenient_world: true,
        // Every online CPU reads, verifies and inflates packages ahead of the writer.
        jobs: online_cpus(),
        ..Default::default()
    }
}

/// The CPUs this process may run on (at least one): the install engine's worker count.
pub fn online_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Boot {
    pub(super) fn install_packages(
        &mut self,
        p: &Prepared,
        root: &RootDir,
    ) -> Result<(), BootError> {
        // apk looks keys up under --root: without these every index is untrusted.
        let apk_keys = Path::new("/").join(bootspec::initramfs::APK_KEYS);
        for name in list_dir(&apk_keys) {
            root.copy_in(
                &apk_keys.join(&name),
                &format!("{}/{name}", bootspec::initramfs::APK_KEYS),
                MAX_KEY_BYTES,
            )?;
        }
        let mut modloop_keys = false;
        for name in list_dir(Path::new(MODLOOP_KEYS))
            .into_iter()
            .filter(|n| plan::is_modloop_key(n))
        {
            root.copy_in(
                &Path::new(MODLOOP_KEYS).join(&name),
                &format!("var/cache/misc/{name}"),
                MAX_KEY_BYTES,
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
            root.read_string("etc/apk/world", MAX_CONFIG_BYTES)?
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
        let options = apk_options(
            &self.cfg,
            &p.repositories,
            // Only the home medium's cache: another stick's is not the box's (plan::home_medium).
            p.media
                .iter()
                .find(|m| Some(&m.name) == p.home.as_ref())
                .and_then(|m| m.cache.clone())
                .filter(|d| d.is_dir()),
            p.overlay.as_ref().map(|a| a.files.as_slice()),
        );
        // Package scripts run chrooted and need /proc, /sys and /dev.
        let mut bound = Vec::new();
        let mut result = Ok(());
        for d in ["sys", "proc", "dev"] {
            match root
                .mount_point(d)
                .and_then(|mp| sys::bind_into(&Path::new("/").join(d), &mp).map(|()| mp))
            {
                Ok(mp) => bound.push(mp.path),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        let install = result
            .map_err(BootError::from)
            .and_then(|()| install(options, &pkgs.packages, self.cfg.quiet));
        for target in bound.iter().rev() {
            if sys::unmount(target).is_err() {
                let _ = sys::unmount_detach(target);
            }
        }
        // Scripts may have left children behind; they are ours now.
        sys::reap_zombies();
        let (packages, bytes) = install?;
        if let Some(applied) = &p.overlay {
            self.apply_deletions(applied)?;
        }
        self.timeline.set_installed(packages, bytes);
        self.timeline.note(format!(
            "{packages} packages, {}, {} CPU(s)",
            timeline::human_bytes(bytes),
            online_cpus()
        ));
        Ok(())
    }

    pub(super) fn default_services(&self, p: &Prepared, root: &RootDir) -> bool {
        plan::default_services_apply(
            p.overlay.is_some(),
            root.exists_nofollow(DEFAULT_SERVICES_MARKER),
        )
    }
}

/// `apk add PACKAGES` with `options`: the number of packages and bytes installed.
fn install(options: Options, packages: &[String], quiet: bool) -> Result<(usize, u64), BootError> {
    let out = Out {
        verbosity: if quiet { 0 } else { 1 },
        width: 80,
        ..Default::default()
    };
    let fail = |source| InstallError::Apk {
        packages: packages.to_vec(),
        source,
    };
    let started = crate::sys::boottime();
    let mut ctx = Context::open(options, Access::Writable, out).map_err(fail)?;
    log::debug!(
        "packages: repositories and database opened ({} ms)",
        crate::sys::boottime().saturating_sub(started).as_millis()
    );
    let report =
        apk::ops::add(&mut ctx, packages, &apk::ops::AddOptions::default()).map_err(fail)?;
    if report.errors > 0 {
        return Err(InstallError::Errors {
            packages: packages.to_vec(),
            count: report.errors,
        }
        .into());
    }
    Ok((report.packages, report.installed_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apk_options_are_alpines_boot_install() {
        let cfg = BootConfig::default();
        let files = vec!["etc/".to_string(), "etc/hostname".to_string()];
        let o = apk_options(
            &cfg,
            &[PathBuf::from("/media/usb/apks")],
            Some(PathBuf::from("/media/usb/cache")),
            Some(&files),
        );
        assert_eq!(o.root, PathBuf::from("/sysroot"));
        assert_eq!(o.repositories, vec!["/media/usb/apks"]);
        assert_eq!(o.keys_dir, Some(PathBuf::from("/sysroot/etc/apk/keys")));
        assert!(o.no_network && o.diskless_boot && o.initdb && o.clean_protected);
        assert!(o.overlay.is_some());
        assert!(o.jobs >= 1 && o.jobs == online_cpus());
        assert_eq!(o.cache_dir, Some(PathBuf::from("/media/usb/cache")));
        // keep_apk_new: no --clean-protected, hence no --overlay-from-stdin either.
        let cfg = BootConfig::from_cmdline("keep_apk_new");
        let o = apk_options(&cfg, &[], None, Some(&files));
        assert!(!o.clean_protected);
        assert!(o.overlay.is_none());
        // Netboot: the remote repository is downloaded.
        let o = apk_options(
            &cfg,
            &[PathBuf::from("http://10.0.2.2:8080/apks")],
            None,
            None,
        );
        assert!(!o.no_network);
        assert_eq!(o.repositories, vec!["http://10.0.2.2:8080/apks"]);
    }
}
