//! The package-install seam: what the boot decided, handed to the embedded apk core.
//!
//! Equivalent of upstream's
//! `apk add --root /sysroot --repository R… --initramfs-diskless-boot --progress --no-network
//! [--quiet] [--clean-protected [--overlay-from-stdin]] <packages>` (boot-params.md §3.10), as
//! data: the init decides the package list (in Alpine's order), the repositories (boot media,
//! already relocated to their final `/media/<name>` paths), the cache directories and the flags;
//! a [`PackageInstaller`] (the `apk` crate, linked by the lead) installs and reports progress
//! lines in apk's style through [`InstallProgress`]. The init bind-mounts `/proc`, `/sys` and
//! `/dev` into the root around the call, for package scripts.
use std::path::PathBuf;

pub use crate::step::StepError;

/// Everything the boot decided about installing packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallRequest {
    /// The new root (`/sysroot`).
    pub root: PathBuf,
    /// Boot repositories, in order (`/media/usb/apks`): each has `<arch>/APKINDEX.tar.gz`.
    pub repositories: Vec<PathBuf>,
    /// Local package caches on the media (`/media/usb/cache`), Alpine's `apk cache`.
    pub cache_dirs: Vec<PathBuf>,
    /// World dependencies in Alpine's order: `pkgs=`, the overlay's world, `openssh` (ssh_key),
    /// `alpine-base`, `openssl` (modloop keys). Already validated; duplicates removed.
    pub packages: Vec<String>,
    /// Index signing keys, already copied into the root (`/sysroot/etc/apk/keys`).
    pub keys_dir: PathBuf,
    /// Architecture (`x86_64`).
    pub arch: String,
    /// `--clean-protected`: no `.apk-new` files (unless `keep_apk_new`).
    pub clean_protected: bool,
    /// `--overlay-from-stdin`: files the overlay provided win over package files (only when an
    /// overlay was unpacked and `clean_protected` is set).
    pub overlay_files: Option<Vec<String>>,
    /// `--no-network`: always true, the init configures no network.
    pub no_network: bool,
    /// `--initramfs-diskless-boot`: create the database, no commit hooks, force overwrite /
    /// old-apk / broken-world / non-repository.
    pub initramfs_diskless_boot: bool,
    /// `--quiet`.
    pub quiet: bool,
}

/// What the install did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallReport {
    /// Packages installed.
    pub packages: usize,
    /// Bytes installed (package data).
    pub bytes: u64,
    /// Non-fatal problems to show on the console (e.g. a package script that failed).
    pub warnings: Vec<String>,
}

/// Where the installer reports progress (the console, apk-style).
pub trait InstallProgress {
    /// One line as apk prints it, e.g. `( 1/25) Installing musl (1.2.5-r0)`.
    fn line(&mut self, text: &str);
    /// Overall progress in bytes (`--progress` bar).
    fn progress(&mut self, done: u64, total: u64);
}

/// Installs packages into the new root (implemented with the `apk` crate).
pub trait PackageInstaller {
    /// Installs `req.packages` into `req.root` from `req.repositories`, reporting progress.
    fn install(
        &mut self,
        req: &InstallRequest,
        progress: &mut dyn InstallProgress,
    ) -> Result<InstallReport, StepError>;
}
