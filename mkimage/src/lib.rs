//! mkimage: boot media for diskless systems, the directory tree, FAT32 image or ISO a user
//! writes to a USB stick, in Alpine's layout so Alpine's conventions and our init both find it.
//! The library owns planning and writing; the `mkimage` binary is glue over [`build`]. It uses
//! the `apk` crate for repositories, the solver and signatures, and `mkinitfs` for reading the
//! initramfs it copies (one newc reader for the workspace).
//!
//! ```text
//! /.alpine-release                  release id (name, version, build date)
//! /apks/.boot_repository            marks the boot repository (docs/boot.md, Media)
//! /apks/<arch>/APKINDEX.tar.gz      index of exactly the packages below, signed with --sign-key
//! /apks/<arch>/*.apk                the --world closure, byte-identical to the sources
//! /apks-extra/<arch>/...            optional second repository (no .boot_repository)
//! /boot/vmlinuz, /boot/initramfs    kernel and initramfs (+ /boot/<modloop name>)
//! /boot/syslinux/syslinux.cfg, /boot/extlinux/extlinux.conf, /boot/grub/grub.cfg
//! /cache/                           optional apk cache (--cache)
//! /NAME.apkovl.tar.gz[.sig]         optional overlay (--apkovl), under its own name
//! ```
//!
//! `--format netboot` writes a tree for a web server instead (no boot loaders, `boot.ipxe`, one
//! overlay per MAC): see [`netboot`].
//!
//! Planning and writing are separate: [`Medium::plan`] verifies the source indexes with the
//! trusted keys, lets apk's solver pick the closure, checks every package file against its index
//! entry and builds a sorted [`Layout`]; [`Medium::write`] writes it as a directory, a FAT32 image
//! (in-process, no root) or an ISO (xorriso), always under a temporary name renamed into place.
//! Output is reproducible for `dir` and `vfat`: one time stamp (`SOURCE_DATE_EPOCH`) for every
//! file, sorted order, no random data. The medium key signs only the index; packages keep their
//! Alpine signatures (the README's Trust). The key's public half must be in the
//! initramfs (`mkinitfs --keys-dir`) for the init to trust the boot repository.
//!
//! ```no_run
//! use mkimage::{Format, Options, SignKey};
//! use std::path::Path;
//! let mut opts = Options::new(Format::Vfat, "/tmp/medium.img".into());
//! opts.repositories = vec![mkimage::repository_spec("/srv/alpine/apks")?];
//! opts.keys = apk::trust::Keyring::load(Path::new("/etc/apk/keys"));
//! opts.world = mkimage::parse_world("alpine-base", "--world")?;
//! opts.sign_key = Some(SignKey::load(Path::new("/srv/keys/medium.rsa"))?);
//! opts.kernel = Some("/boot/vmlinuz-lts".into());
//! opts.initramfs = Some("/tmp/initramfs".into());
//! let report = mkimage::build(&opts, &mut |line| println!("{line}"))?;
//! # Ok::<(), mkimage::Error>(())
//! ```

#![deny(missing_docs)]

mod boot;
pub mod bootloader;
mod date;
mod error;
mod fat;
mod initramfs;
mod iso;
mod layout;
pub mod modloop;
pub mod netboot;
mod options;
mod output;
mod partition;
pub mod profile;
mod repository;
mod seal;
mod secrets;
mod size;
mod uki;
mod usb;
mod vfat;

use std::fs;
use std::path::{Path, PathBuf};

use apk::package::Package;
use bootspec::medium::{self, INITRAMFS, KERNEL, SIGNATURE_SUFFIX};

pub use boot::{
    check_cmdline, grub_cfg, release_id, release_version, syslinux_cfg, with_modloop, BootEntry,
    DEFAULT_CMDLINE, EXTLINUX_CONF, GRUB_CFG, RELEASE_NAME, SYSLINUX_CFG,
};
pub use date::Civil;
pub use error::Error;
pub use layout::{Layout, Node, Source};
pub use options::{
    default_arch, parse_world, repository_spec, Format, Options, OverlayKey, SecureBootKey,
    SignKey, DEFAULT_LABEL,
};
pub use repository::{Closure, Selected};
pub use secrets::{check_keys_dir, read_passphrase};
pub use size::{default_size, parse_size, MAX_SIZE, MIN_SIZE};
pub use vfat::default_image_size;

use error::IoResultExt;
use options::check_label;
use output::TempPath;

/// The second repository (`--world-extra`, `--extra-repository`): packages for `apk add` later,
/// not a boot repository (no marker file), so the init does not install from it.
pub const EXTRA_APKS_DIR: &str = "apks-extra";

/// What a build produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Packages in the boot repository.
    pub packages: usize,
    /// Packages in the extra repository.
    pub extra_packages: usize,
    /// Bytes of file content.
    pub content_bytes: u64,
    /// The vfat image size, for `--format vfat`.
    pub image_size: Option<u64>,
    /// The release id written to `/.alpine-release`.
    pub release: String,
    /// Problems the user must see (e.g. the initramfs lacks the index key).
    pub warnings: Vec<String>,
}

/// A planned medium: the verified, sorted tree and what it holds.
#[derive(Clone, Debug)]
pub struct Medium {
    layout: Layout,
    closure: Closure,
    release: String,
    warnings: Vec<String>,
    /// Downloads from remote sources the layout copies from (kept until the medium is written).
    _scratch: Option<std::sync::Arc<ScratchDir>>,
    /// The modloop built for this medium (kept until the medium is written).
    _modloop: Option<std::sync::Arc<ScratchDir>>,
}

/// A scratch cache for what remote sources send, removed when the last plan using it is gone.
#[derive(Debug)]
struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    /// A new private directory under `TMPDIR`: `mkdir` never reuses or follows what is already
    /// there (another user's directory or symlink of the same name), so the next name is tried.
    fn new() -> Result<ScratchDir, Error> {
        use std::os::unix::fs::DirBuilderExt;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut attempt = 0u32;
        loop {
            let path = std::env::temp_dir().join(format!(
                "mkimage-cache.{}.{:08x}",
                std::process::id(),
                stamp.wrapping_add(attempt)
            ));
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(ScratchDir(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                    attempt += 1;
                }
                Err(e) => return Err(e).at(&path),
            }
        }
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

impl Medium {
    /// Checks the options, loads and verifies the sources, resolves the closures and lays out
    /// every file. Nothing is written.
    pub fn plan(opts: &Options, progress: &mut dyn FnMut(&str)) -> Result<Medium, Error> {
        // Refused before any work, checked again when writing.
        output::check_target(
            &opts.output,
            matches!(opts.format, Format::Dir | Format::Netboot),
        )?;
        check_label(&opts.label, opts.format)?;
        check_cmdline(&opts.cmdline).map_err(|r| Error::setting("--cmdline", r))?;
        if opts.size.is_some() && opts.format != Format::Vfat {
            return Err(Error::setting(
                "--size",
                format!("only for --format vfat (not {})", opts.format.name()),
            ));
        }
        if let Some(s) = opts.size {
            if !(MIN_SIZE..=MAX_SIZE).contains(&s) {
                return Err(Error::setting(
                    "--size",
                    format!(
                        "{} is out of range: from 64M to 2T for FAT32",
                        size::display(s)
                    ),
                ));
            }
        }
        if opts.secure_boot.is_some() && !opts.uki {
            return Err(Error::setting(
                "--sb-key",
                "only with --uki (it signs the unified kernel image)",
            ));
        }
        if opts.uki && (opts.kernel.is_none() || opts.initramfs.is_none()) {
            return Err(Error::setting(
                "--uki",
                "needs --kernel and --initramfs (they go inside the image)",
            ));
        }
        let netboot = opts.format == Format::Netboot;
        check_netboot_options(opts)?;
        let copies_packages = !opts.world.is_empty()
            || !opts.world_extra.is_empty()
            || !opts.extra_repositories.is_empty();
        if copies_packages && opts.sign_key.is_none() {
            return Err(Error::setting(
                "--sign-key",
                "required to sign the index of the packages copied to the medium",
            ));
        }
        if copies_packages && opts.repositories.is_empty() && opts.extra_repositories.is_empty() {
            return Err(Error::setting(
                "--repository",
                "required to take the --world packages from",
            ));
        }

        let mut layout = Layout::default();
        if let Some(k) = &opts.kernel {
            layout.add_host_file(KERNEL, k, "--kernel")?;
        }
        if let Some(i) = &opts.initramfs {
            layout.add_host_file(INITRAMFS, i, "--initramfs")?;
        }
        let (modloop, modloop_scratch) = add_modloop(&mut layout, opts, progress)?;
        let mut warnings = Vec::new();
        let netboot_apkovl = if netboot {
            netboot::add_overlays(&mut layout, opts, &mut warnings)?
        } else {
            for ovl in &opts.apkovl {
                add_apkovl(&mut layout, ovl)?;
            }
            None
        };

        let remote = opts
            .repositories
            .iter()
            .chain(&opts.extra_repositories)
            .any(|s| matches!(s.location, apk::repo::Location::Remote(_)));
        let scratch = match (&opts.cache_dir, remote) {
            (None, true) => Some(ScratchDir::new()?),
            _ => None,
        };
        let net = remote.then(|| {
            let dir = opts
                .cache_dir
                .clone()
                .or_else(|| scratch.as_ref().map(|s: &ScratchDir| s.0.clone()))
                .unwrap_or_default();
            let cache = apk::cache::Cache {
                dir,
                packages: true,
            };
            let mut net = apk::fetch::Network::new(
                opts.http.clone(),
                Some(cache),
                apk::fetch::Refresh::OlderThan(apk::fetch::DEFAULT_MAX_AGE),
            );
            net.system_ca_root = Some(std::path::PathBuf::from("/"));
            net
        });
        let closure = if copies_packages {
            repository::resolve(
                &repository::Request {
                    arch: &opts.arch,
                    repositories: &opts.repositories,
                    extra_repositories: &opts.extra_repositories,
                    keys: &opts.keys,
                    allow_untrusted: opts.allow_untrusted,
                    world: &opts.world,
                    world_extra: &opts.world_extra,
                    net: net.as_ref(),
                },
                progress,
            )?
        } else {
            Closure::default()
        };
        let version = closure
            .boot
            .iter()
            .find(|s| s.pkg.name == "alpine-release")
            .map(|s| s.pkg.version.as_str());
        let release = release_id(&release_version(version), opts.build_time);

        if let Some(key) = &opts.sign_key {
            if !opts.world.is_empty() {
                if !netboot {
                    layout.add_file(medium::BOOT_REPOSITORY, Source::Bytes(Vec::new()), 0)?;
                }
                add_repository(
                    &mut layout,
                    medium::APKS_DIR,
                    &closure.boot,
                    opts,
                    key,
                    &release,
                    progress,
                )?;
            }
            if !opts.world_extra.is_empty() || !opts.extra_repositories.is_empty() {
                let description = format!("{release} extra");
                add_repository(
                    &mut layout,
                    EXTRA_APKS_DIR,
                    &closure.extra,
                    opts,
                    key,
                    &description,
                    progress,
                )?;
            }
        }

        if let Some(cache) = &opts.cache {
            add_cache(&mut layout, cache)?;
        }
        if let Some(i) = &opts.initramfs {
            let index_key = opts.sign_key.as_ref().filter(|_| !opts.world.is_empty());
            warnings.extend(initramfs::check(
                i,
                initramfs::Expect {
                    index_key,
                    overlay_key: opts.ovl_key.as_ref(),
                    netboot,
                },
            )?);
        }
        if netboot {
            warnings.extend(initramfs::check_network(opts.initramfs.as_deref())?);
            let base = opts
                .netboot_url
                .as_deref()
                .map(netboot::check_base_url)
                .transpose()?;
            let script = netboot::ipxe_script(&netboot::Script {
                release: &release,
                base: base.as_deref(),
                modloop: modloop.as_deref(),
                apkovl: netboot_apkovl.as_deref(),
                repository: !opts.world.is_empty(),
                cmdline: &opts.cmdline,
            })
            .into_bytes();
            let len = script.len() as u64;
            layout.add_file(netboot::IPXE_SCRIPT, Source::Bytes(script), len)?;
        } else if opts.kernel.is_some() {
            let cmdline = with_modloop(&opts.cmdline, modloop.as_deref());
            let entry = BootEntry {
                kernel: format!("/{KERNEL}"),
                initramfs: opts.initramfs.as_ref().map(|_| format!("/{INITRAMFS}")),
                cmdline: cmdline.clone(),
            };
            let syslinux = syslinux_cfg(&entry).into_bytes();
            let grub = grub_cfg(&entry).into_bytes();
            for (path, bytes) in [
                (SYSLINUX_CFG, &syslinux),
                (EXTLINUX_CONF, &syslinux),
                (GRUB_CFG, &grub),
            ] {
                layout.add_file(path, Source::Bytes(bytes.clone()), bytes.len() as u64)?;
            }
            let efi = if opts.uki {
                Some(add_uki(&mut layout, opts, &cmdline, &release)?)
            } else {
                None
            };
            if opts.format != Format::Dir {
                bootloader::add_files(&mut layout, &opts.label, efi)?;
            } else if let Some(efi) = efi {
                let len = efi.len() as u64;
                layout.add_file(bootloader::EFI_BOOT, Source::Bytes(efi), len)?;
            }
        }
        let text = format!("{release}\n").into_bytes();
        let len = text.len() as u64;
        layout.add_file(medium::RELEASE_FILE, Source::Bytes(text), len)?;
        // Secrets never travel: no file of the medium, and nothing inside its initramfs, may be
        // a private key (the overlay identity excepted, see `secrets`).
        secrets::check_layout(&layout)?;
        if let Some(sb) = &opts.secure_boot {
            secrets::check_not_carried(&layout, &sb.key, "--sb-key")?;
        }
        Ok(Medium {
            layout,
            closure,
            release,
            warnings,
            _scratch: scratch.map(std::sync::Arc::new),
            _modloop: modloop_scratch.map(std::sync::Arc::new),
        })
    }

    /// The planned tree.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The packages chosen for the boot and extra repositories.
    pub fn closure(&self) -> &Closure {
        &self.closure
    }

    /// The release id.
    pub fn release(&self) -> &str {
        &self.release
    }

    /// Problems found while planning that do not stop the build.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Writes the medium at `opts.output` in `opts.format`, atomically.
    pub fn write(&self, opts: &Options, progress: &mut dyn FnMut(&str)) -> Result<Report, Error> {
        let out = &opts.output;
        output::check_target(out, matches!(opts.format, Format::Dir | Format::Netboot))?;
        let content = self.layout.content_bytes();
        let mut image_size = None;
        match opts.format {
            Format::Dir | Format::Netboot => {
                progress(&format!("Writing directory {}", out.display()));
                let tmp = TempPath::beside(out, ".tmp")?;
                self.layout.write_dir(tmp.path(), opts.build_time)?;
                tmp.commit(out)?;
            }
            Format::Vfat => {
                let len = match opts.size {
                    Some(s) => s,
                    None => default_image_size(&self.layout, out)?,
                };
                progress(&format!(
                    "Writing vfat image {} ({})",
                    out.display(),
                    size::display(len)
                ));
                let tmp = TempPath::beside(out, ".tmp")?;
                let file = fs::File::create_new(tmp.path()).at(tmp.path())?;
                usb::write_image(
                    &self.layout,
                    &file,
                    tmp.path(),
                    len,
                    &opts.label,
                    opts.build_time,
                    opts.kernel.is_some(),
                )?;
                drop(file);
                tmp.commit(out)?;
                image_size = Some(len);
            }
            Format::Iso => {
                progress(&format!("Writing iso image {}", out.display()));
                let stage = TempPath::beside(out, ".stage")?;
                self.layout.stage_dir(stage.path(), opts.build_time)?;
                let bootable = opts.kernel.is_some();
                if bootable {
                    iso::add_boot_images(stage.path(), opts.build_time)?;
                }
                let tmp = TempPath::beside(out, ".tmp")?;
                iso::write_iso(
                    stage.path(),
                    tmp.path(),
                    &opts.label,
                    opts.build_time,
                    bootable,
                )?;
                drop(stage);
                fs::File::open(tmp.path())
                    .and_then(|f| f.sync_all())
                    .at(tmp.path())?;
                tmp.commit(out)?;
            }
        }
        Ok(Report {
            packages: self.closure.boot.len(),
            extra_packages: self.closure.extra.len(),
            content_bytes: content,
            image_size,
            release: self.release.clone(),
            warnings: self.warnings.clone(),
        })
    }
}

/// The options only a netboot tree takes, and what it needs.
fn check_netboot_options(opts: &Options) -> Result<(), Error> {
    if opts.format != Format::Netboot {
        let only = |option: &'static str| {
            Error::setting(
                option,
                format!("only with --format netboot (not {})", opts.format.name()),
            )
        };
        if opts.hosts.is_some() {
            return Err(only("--hosts"));
        }
        if opts.netboot_url.is_some() {
            return Err(only("--netboot-url"));
        }
        if opts.ovl_key.is_some() {
            return Err(only("--ovl-key"));
        }
        if opts.apkovl.len() > 1 {
            return Err(Error::setting(
                "--apkovl",
                format!(
                    "a {} medium carries one overlay (several only with --format netboot)",
                    opts.format.name()
                ),
            ));
        }
        return Ok(());
    }
    if opts.kernel.is_none() || opts.initramfs.is_none() {
        return Err(Error::setting(
            "--format",
            "netboot: needs --kernel and --initramfs (boot.ipxe loads them from the tree)",
        ));
    }
    if opts.world.is_empty() {
        return Err(Error::setting(
            "--format",
            "netboot: needs --world (the box installs its packages from the tree's apks/)",
        ));
    }
    if opts.uki {
        return Err(Error::setting(
            "--uki",
            "not for --format netboot (iPXE loads the kernel and the initramfs)",
        ));
    }
    if opts.cmdline.contains('$') {
        return Err(Error::setting(
            "--cmdline",
            "netboot: no '$' (iPXE would expand it in boot.ipxe)",
        ));
    }
    if let Some(w) = opts.cmdline.split_whitespace().find(|w| w.starts_with('#')) {
        return Err(Error::setting(
            "--cmdline",
            format!("netboot: \"{w}\": iPXE would take a word starting with '#' and the rest of the line as a comment"),
        ));
    }
    Ok(())
}

/// Plans and writes a medium.
pub fn build(opts: &Options, progress: &mut dyn FnMut(&str)) -> Result<Report, Error> {
    Medium::plan(opts, progress)?.write(opts, progress)
}

/// The modloop (`--modloop FILE` or built for `--modloop-kver`) as `boot/modloop-<flavor>` with
/// its signature beside it; returns its medium path and the scratch directory holding a built one.
fn add_modloop(
    layout: &mut Layout,
    opts: &Options,
    progress: &mut dyn FnMut(&str),
) -> Result<(Option<String>, Option<ScratchDir>), Error> {
    if opts.modloop.is_none() && opts.modloop_kver.is_none() {
        return Ok((None, None));
    }
    let Some(key) = &opts.sign_key else {
        return Err(Error::setting(
            "--sign-key",
            "required to sign the modloop (the init mounts only a verified modloop)",
        ));
    };
    let (source, kver, scratch) = match (&opts.modloop, &opts.modloop_kver) {
        (Some(file), given) => {
            let kver = modloop::kernel_version_of(file, given.as_deref())?;
            (file.clone(), kver, None)
        }
        (None, Some(kver)) => {
            let scratch = ScratchDir::new()?;
            let out = scratch.0.join("modloop");
            let build = mkinitfs::modloop::ModloopOptions {
                basedir: opts
                    .modloop_basedir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("/")),
                kernel_version: kver.clone(),
                excludes: opts.modloop_excludes.clone(),
                compression: opts.modloop_compression,
                mtime: opts.build_time,
            };
            progress(&format!(
                "building the modloop for {kver} ({})",
                opts.modloop_compression.name()
            ));
            let built = mkinitfs::modloop::build_modloop(&build, &out)
                .map_err(|e| Error::setting("--modloop-kver", e.to_string()))?;
            if !built.broken_dependencies.is_empty() {
                progress(&broken_dependencies_warning(&built.broken_dependencies));
            }
            (out, kver.clone(), Some(scratch))
        }
        (None, None) => return Ok((None, None)),
    };
    let flavor = modloop::flavor(&kver);
    netboot::check_path_word(flavor).map_err(|r| {
        let reason = format!("the kernel flavor goes on the command line: {r}");
        match &opts.modloop {
            Some(file) => Error::Input {
                option: "--modloop",
                path: file.clone(),
                reason,
            },
            None => Error::setting("--modloop-kver", reason),
        }
    })?;
    let path = medium::modloop(flavor);
    let name = path.rsplit('/').next().unwrap_or(&path).to_string();
    layout.add_host_file(&path, &source, "--modloop")?;
    let sig = modloop::signature(&source, &name, &kver, key)?.into_bytes();
    let len = sig.len() as u64;
    layout.add_file(
        &format!("{path}{SIGNATURE_SUFFIX}"),
        Source::Bytes(sig),
        len,
    )?;
    Ok((Some(path), scratch))
}

fn file_name<'a>(path: &'a Path, option: &'static str) -> Result<&'a str, Error> {
    path.file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Input {
            option,
            path: path.to_path_buf(),
            reason: "needs a UTF-8 file name".into(),
        })
}

/// The unified kernel image for `--uki` (signed with `--sb-key`), and the certificate (DER) on
/// the medium for enrollment; returns the image, which goes to `EFI/BOOT/BOOTX64.EFI`.
fn add_uki(
    layout: &mut Layout,
    opts: &Options,
    cmdline: &str,
    release: &str,
) -> Result<Vec<u8>, Error> {
    let (Some(kernel), Some(initramfs)) = (&opts.kernel, &opts.initramfs) else {
        return Err(Error::setting("--uki", "needs --kernel and --initramfs"));
    };
    if let Some(sb) = &opts.secure_boot {
        secrets::check_signing_key(&sb.key, "--sb-key")?;
        let der = uki::cert_der(&sb.cert)?;
        let len = der.len() as u64;
        layout.add_file(medium::SECURE_BOOT_CERT, Source::Bytes(der), len)?;
    }
    let initrd = seal::sealed_initramfs(initramfs, cmdline, opts.build_time)?;
    let osrel = uki::os_release(release);
    let parts = uki::Parts {
        kernel,
        initrd: &initrd,
        cmdline,
        osrel: &osrel,
    };
    uki::build(&parts, opts.secure_boot.as_ref(), opts.build_time)
}

/// The overlay goes to the top level under its own name, which must match the init's
/// overlay rule (`overlays::kind_of`, the rule the init applies), with its detached signature when
/// present.
fn add_apkovl(layout: &mut Layout, ovl: &Path) -> Result<(), Error> {
    let name = file_name(ovl, "--apkovl")?;
    if overlays::kind_of(name).is_none() {
        return Err(Error::Input {
            option: "--apkovl",
            path: ovl.to_path_buf(),
            reason: "the name must match *.apkovl.tar.gz* (e.g. HOSTNAME.apkovl.tar.gz), or the init will not find it".into(),
        });
    }
    layout.add_host_file(name, ovl, "--apkovl")?;
    let sig_name = format!("{name}{SIGNATURE_SUFFIX}");
    let sig = ovl.with_file_name(&sig_name);
    if sig.exists() {
        layout.add_host_file(&sig_name, &sig, "--apkovl")?;
    }
    Ok(())
}

/// One repository on the medium: the verified package files and their signed index.
fn add_repository(
    layout: &mut Layout,
    dir: &str,
    packages: &[Selected],
    opts: &Options,
    key: &SignKey,
    description: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<(), Error> {
    progress(&format!(
        "Copying {} packages to {dir}/{}",
        packages.len(),
        opts.arch
    ));
    for sel in packages {
        let size = repository::verify_package(sel)?;
        let path = format!(
            "{dir}/{}/{}",
            repository::package_dir(&sel.pkg, &opts.arch),
            repository::package_file_name(&sel.pkg)?
        );
        layout.add_file(&path, Source::Path(sel.file.clone()), size)?;
    }
    let index_path = format!("{dir}/{}/APKINDEX.tar.gz", opts.arch);
    progress(&format!("Signing {index_path} with {}", key.path.display()));
    let entries: Vec<Package> = packages.iter().map(|s| s.pkg.clone()).collect();
    let index = repository::signed_index(&entries, description, key, opts.build_time)?;
    let len = index.len() as u64;
    layout.add_file(&index_path, Source::Bytes(index), len)
}

/// The cache directory, recursively. Symlinks to files are followed (Alpine's cache is often
/// reached through one); symlinks to directories are refused, as they can loop.
fn add_cache(layout: &mut Layout, cache: &Path) -> Result<(), Error> {
    let bad = |path: &Path, reason: String| Error::Input {
        option: "--cache",
        path: path.to_path_buf(),
        reason,
    };
    if !cache.is_dir() {
        return Err(bad(cache, "not a directory".into()));
    }
    layout.add_dir(medium::CACHE_DIR);
    let mut stack = vec![(cache.to_path_buf(), medium::CACHE_DIR.to_string())];
    while let Some((dir, at)) = stack.pop() {
        let mut entries: Vec<_> = fs::read_dir(&dir)
            .at(&dir)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .at(&dir)?;
        entries.sort();
        for path in entries {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| bad(&path, "needs a UTF-8 file name".into()))?;
            let rel = format!("{at}/{name}");
            let meta = fs::metadata(&path).map_err(|e| bad(&path, e.to_string()))?;
            let link = fs::symlink_metadata(&path)
                .at(&path)?
                .file_type()
                .is_symlink();
            if meta.is_dir() && link {
                return Err(bad(&path, "a symlink to a directory (not followed)".into()));
            } else if meta.is_dir() {
                layout.add_dir(&rel);
                stack.push((path.clone(), rel));
            } else if meta.is_file() {
                layout.add_host_file(&rel, &path, "--cache")?;
            } else {
                return Err(bad(&path, "not a regular file or directory".into()));
            }
        }
    }
    Ok(())
}

/// One line for the modules a modloop keeps although they need an excluded one (their load will
/// fail): the count and the module names, the first few only.
fn broken_dependencies_warning(paths: &[String]) -> String {
    const SHOWN: usize = 8;
    let names: Vec<&str> = paths
        .iter()
        .map(|p| {
            let file = p.rsplit('/').next().unwrap_or(p);
            file.strip_suffix(".ko").unwrap_or(file)
        })
        .collect();
    let more = names.len().saturating_sub(SHOWN);
    format!(
        "WARNING: modloop: {} kept module{} need{} an excluded one and will not load: {}{}",
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        if names.len() == 1 { "s" } else { "" },
        names[..names.len().min(SHOWN)].join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_left_without_a_dependency_are_one_warning() {
        let one = ["kernel/net/smc/smc.ko".to_string()];
        assert_eq!(
            broken_dependencies_warning(&one),
            "WARNING: modloop: 1 kept module needs an excluded one and will not load: smc"
        );
        let many: Vec<String> = (0..10).map(|i| format!("kernel/drivers/m{i}.ko")).collect();
        assert_eq!(
            broken_dependencies_warning(&many),
            "WARNING: modloop: 10 kept modules need an excluded one and will not load: \
             m0, m1, m2, m3, m4, m5, m6, m7 and 2 more"
        );
    }

    #[test]
    fn overlay_names_must_be_found_by_the_init() {
        let t = tempfile::tempdir().unwrap();
        let ovl = t.path().join("fw1.apkovl.tar.gz");
        fs::write(&ovl, b"o").unwrap();
        fs::write(t.path().join("fw1.apkovl.tar.gz.sig"), b"s").unwrap();
        let mut l = Layout::default();
        add_apkovl(&mut l, &ovl).unwrap();
        assert_eq!(l.list(), ["fw1.apkovl.tar.gz", "fw1.apkovl.tar.gz.sig"]);
        let other = t.path().join("backup.tar.gz");
        fs::write(&other, b"o").unwrap();
        let err = add_apkovl(&mut Layout::default(), &other).unwrap_err();
        assert!(
            err.to_string().contains("must match *.apkovl.tar.gz*"),
            "{err}"
        );
    }

    #[test]
    fn cache_is_copied_recursively_without_directory_links() {
        let t = tempfile::tempdir().unwrap();
        let c = t.path().join("cache");
        fs::create_dir_all(c.join("sub")).unwrap();
        fs::write(c.join("a-1.0-r0.0123abcd.apk"), b"a").unwrap();
        fs::write(c.join("sub/x"), b"x").unwrap();
        std::os::unix::fs::symlink(c.join("sub/x"), c.join("link")).unwrap();
        let mut l = Layout::default();
        add_cache(&mut l, &c).unwrap();
        assert_eq!(
            l.list(),
            [
                "cache/",
                "cache/a-1.0-r0.0123abcd.apk",
                "cache/link",
                "cache/sub/",
                "cache/sub/x"
            ]
        );
        std::os::unix::fs::symlink(c.join("sub"), c.join("dirlink")).unwrap();
        let err = add_cache(&mut Layout::default(), &c).unwrap_err();
        assert!(err.to_string().contains("symlink to a directory"), "{err}");
    }
}
