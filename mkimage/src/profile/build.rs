//! `mkimage --profile DIR`: from a profile to a medium, every step in this process through the
//! workspace's libraries (nothing of ours is forked; package scripts run chrooted as apk runs
//! them, and the media writers use their host tools):
//!
//! 1. install: the apk core installs the world into a scratch root (`--initdb`), trusting the
//!    `--keys-dir` keys and the medium key, from the profile's repositories or the mirrors;
//! 2. rootfs: the profile's files go over it (modes, `rootfs.owners`, the build time), and
//!    `hostname`;
//! 3. overlay: lbu's selection of what differs from the packages, without lbu's own secrets
//!    (`lbu::build::snapshot`), member times clamped to the build time, signed with a statement
//!    for the host (generation 1) when `signing = "required"`;
//! 4. initramfs: the mkinitfs library, with the index keys, the overlay key and the boot policy
//!    that goes with `signing` (`apkovl_require=signed`);
//! 5. medium: [`crate::build`] (boot repository of the world's closure, kernel, initramfs, the
//!    modloop when asked, the overlay, boot loaders).
//!
//! With the same `build_time` (`SOURCE_DATE_EPOCH`) two builds give the same bytes: every time
//! stamp is the build time, every list is sorted, the signatures (RSA PKCS#1 v1.5, ed25519) are
//! deterministic.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use apk::repo::RepoSpec;
use apk::trust::Keyring;

use crate::error::{Error, IoResultExt};
use crate::options::{Format, Options, SecureBootKey, SignKey};
use crate::{Report, ScratchDir};

use super::format::{Encryption, Modloop, Signing};
use super::keys::{self, Keys};
use super::rootfs::{self, ROOTFS_DIR};
use super::Profile;

/// Where the kernels are: `/boot/vmlinuz-VER` and `/lib/modules/VER`.
const BOOT_DIR: &str = "boot";
const MODULES_DIR: &str = "lib/modules";

/// Everything a profile build needs besides the profile.
pub struct BuildRequest<'a> {
    /// The profile.
    pub profile: &'a Profile,
    /// Where the medium goes.
    pub output: PathBuf,
    /// `--format` (`None`: the profile's first format).
    pub format: Option<Format>,
    /// `--mirror` values: repositories used when the profile names none.
    pub mirrors: Vec<String>,
    /// Public keys trusted for the source indexes (`--keys-dir`), also trusted by the installed
    /// system and its initramfs.
    pub trusted_dirs: Vec<PathBuf>,
    /// The signing keys.
    pub keys: Keys,
    /// `--sb-key`/`--sb-cert`: a signed unified kernel image for Secure Boot.
    pub secure_boot: Option<SecureBootKey>,
    /// Time stamp of everything (`SOURCE_DATE_EPOCH`).
    pub build_time: u64,
    /// Where `/boot/vmlinuz-VER` and `/lib/modules/VER` are (`/`).
    pub kernel_root: PathBuf,
    /// The `init` the initramfs gets (`None`: mkinitfs's rule, beside the running binary).
    pub init: Option<PathBuf>,
    /// mkinitfs feature directories.
    pub feature_dirs: Vec<PathBuf>,
    /// Keep downloads here (`--cache-dir`); else a scratch directory.
    pub cache_dir: Option<PathBuf>,
    /// HTTP settings for remote repositories.
    pub http: apk::http::ClientOptions,
    /// `--netboot-url`: where a netboot tree is served from.
    pub netboot_url: Option<String>,
    /// `--ovl-passphrase-file`: the passphrase of `encryption = "passphrase"` (never written
    /// anywhere: it only encrypts).
    pub ovl_passphrase: Option<zeroize::Zeroizing<String>>,
}

/// What a profile build made.
#[derive(Clone, Debug)]
pub struct BuildSummary {
    /// The medium's report.
    pub report: Report,
    /// Packages installed into the scratch root.
    pub installed_packages: usize,
    /// Their installed size.
    pub installed_bytes: u64,
    /// Size of the output (the image file, or the tree's files).
    pub output_bytes: u64,
    /// Members of the overlay.
    pub overlay_members: usize,
    /// The format built.
    pub format: Format,
    /// Wall time.
    pub seconds: f64,
    /// Problems the user must see (rootfs files the overlay does not carry, mkinitfs's, mkimage's).
    pub warnings: Vec<String>,
}

/// The number of steps printed as `[i/STEPS]`.
const STEPS: usize = 5;

/// Builds the medium of `req.profile`; `progress` gets one line per step (and mkimage's own lines,
/// indented).
pub fn build(req: &BuildRequest, progress: &mut dyn FnMut(&str)) -> Result<BuildSummary, Error> {
    let start = Instant::now();
    let p = req.profile;
    let format = choose_format(p, req.format)?;
    // The output is checked before any work (a directory mkimage did not write is not replaced).
    crate::output::check_target(&req.output, matches!(format, Format::Dir | Format::Netboot))?;
    let medium_key = req
        .keys
        .medium
        .as_deref()
        .ok_or_else(|| keys::missing("--sign-key", "the boot repository's index"))?;
    let overlay_key = match p.signing {
        Signing::Required => Some(req.keys.overlay.as_deref().ok_or_else(|| {
            keys::missing(
                "--ovl-key",
                "the overlay (signing = \"required\" in profile.toml)",
            )
        })?),
        Signing::None => None,
    };
    if format == Format::Netboot && p.encryption == Encryption::Passphrase {
        return Err(Error::Profile {
            at: p.dir.join(super::PROFILE_TOML).display().to_string(),
            reason: "encryption = \"passphrase\": not for netboot trees (an unattended fleet has \
                     nobody to type it at boot; boot.ipxe asks for {MAC}.apkovl.tar.gz)"
                .into(),
        });
    }
    let passphrase = match p.encryption {
        Encryption::Passphrase => Some(req.ovl_passphrase.as_deref().ok_or_else(|| {
            Error::Profile {
                at: p.dir.join(super::PROFILE_TOML).display().to_string(),
                reason: "encryption = \"passphrase\" needs the passphrase the box will ask for at \
                         boot: mkimage --ovl-passphrase-file FILE"
                    .into(),
            }
        })?),
        Encryption::None => None,
    };
    let sign_key = SignKey::load(medium_key)?;
    let ovl_key = overlay_key
        .map(|k| keys::load(k, "--ovl-key").map(|key| (key, keys::public_name(k))))
        .transpose()?;
    if let Some((k, _)) = &ovl_key {
        if !matches!(k.default_alg(), apk::trust::Alg::Ed25519) {
            return Err(Error::Input {
                option: "--ovl-key",
                path: overlay_key.unwrap_or(Path::new("")).to_path_buf(),
                reason: "overlays are signed with ed25519 keys (apk keygen -o KEY)".into(),
            });
        }
    }
    let kver = kernel_version(p, &req.kernel_root)?;
    let sources = sources(p, &req.mirrors)?;
    for dir in &req.trusted_dirs {
        crate::check_keys_dir(dir, "--keys-dir")?;
    }

    let scratch = ScratchDir::new()?;
    let work = scratch.0.clone();
    let cache_dir = match &req.cache_dir {
        Some(d) => d.clone(),
        None => work.join("cache"),
    };
    let remote = sources.iter().any(RepoSpec::is_remote);
    if remote {
        fs::create_dir_all(&cache_dir).at(&cache_dir)?;
    }

    // The public keys: the trusted ones and the medium key's public half (the booted system's
    // apk and the init verify the boot repository with it).
    let index_keys = work.join("index-keys");
    fs::create_dir_all(&index_keys).at(&index_keys)?;
    for dir in &req.trusted_dirs {
        copy_public_keys(dir, &index_keys)?;
    }
    let medium_pub = index_keys.join(&sign_key.name);
    write_new(&medium_pub, sign_key.key.public().to_pem().as_bytes())?;
    let ovl_keys = work.join("ovl-keys");
    fs::create_dir_all(&ovl_keys).at(&ovl_keys)?;
    if let Some((k, name)) = &ovl_key {
        write_new(&ovl_keys.join(name), k.public().to_pem().as_bytes())?;
    }

    // 1. install
    let root = work.join("root");
    let world: Vec<String> = p.world.iter().map(|d| d.to_string()).collect();
    progress(&format!(
        "[1/{STEPS}] Installing {} into a scratch root",
        world.join(" ")
    ));
    let root_keys = root.join("etc/apk/keys");
    fs::create_dir_all(&root_keys).at(&root_keys)?;
    copy_public_keys(&index_keys, &root_keys)?;
    let (installed_packages, installed_bytes) =
        install(&root, &sources, &world, remote, &cache_dir, req)?;

    // 2. rootfs
    let rootfs_dir = p.dir.join(ROOTFS_DIR);
    let entries = rootfs::copy_into(&rootfs_dir, &root, &p.owners, req.build_time)?;
    let host = match &p.hostname {
        Some(h) => {
            set_hostname(&root, h, req.build_time)?;
            h.clone()
        }
        None => fs::read_to_string(root.join("etc/hostname"))
            .ok()
            .and_then(|t| t.split_whitespace().next().map(str::to_string))
            .filter(|h| super::check_hostname(h).is_ok())
            .unwrap_or_else(|| "localhost".into()),
    };
    progress(&format!(
        "[2/{STEPS}] Applied rootfs/ ({} entries), host name {host}",
        entries.len()
    ));

    // 3. overlay
    let overlay = snapshot(&root, req.build_time, p)?;
    let mut warnings = uncarried(&root, &entries, &overlay.members);
    let sign = |bytes: &[u8], host: &str, dest: &Path| -> Result<(), Error> {
        let Some((k, name)) = &ovl_key else {
            return Ok(());
        };
        let sig =
            overlays::sign_statement(bytes, host, req.build_time, 1, k, name).map_err(|e| {
                Error::Input {
                    option: "--ovl-key",
                    path: overlay_key.unwrap_or(Path::new("")).to_path_buf(),
                    reason: e.to_string(),
                }
            })?;
        let sig_path = PathBuf::from(format!(
            "{}{}",
            dest.display(),
            bootspec::medium::SIGNATURE_SUFFIX
        ));
        fs::write(&sig_path, sig).at(&sig_path)
    };
    // The overlay as it goes on the medium: encrypted to the passphrase when asked (the
    // signature then covers the encrypted bytes, checked before the passphrase is asked).
    let seal = |bytes: &[u8]| -> Result<Vec<u8>, Error> {
        match passphrase {
            None => Ok(bytes.to_vec()),
            Some(pass) => overlays::encrypt_age(
                bytes,
                &overlays::AgeKey::Passphrase {
                    passphrase: pass,
                    work_factor: None,
                },
            )
            .map_err(|e| Error::Profile {
                at: "encryption".into(),
                reason: e.to_string(),
            }),
        }
    };
    let suffix = if passphrase.is_some() { ".age" } else { "" };
    let signed = match (ovl_key.is_some(), passphrase.is_some()) {
        (true, true) => "signed, encrypted to the passphrase",
        (true, false) => "signed",
        (false, true) => "unsigned, encrypted to the passphrase",
        (false, false) => "unsigned",
    };
    let mut overlay_paths = Vec::new();
    if format == Format::Netboot && !p.hosts.is_empty() {
        // One overlay per machine: the profile's, with the machine's host name, signed for its
        // MAC (the init's apkovl=URL check binds the statement to the MAC it asks for).
        for (mac, name) in &p.hosts {
            set_hostname(&root, name, req.build_time)?;
            let per_host = snapshot(&root, req.build_time, p)?;
            let path = work.join(format!("{mac}.apkovl.tar.gz{suffix}"));
            let bytes = seal(&per_host.bytes)?;
            fs::write(&path, &bytes).at(&path)?;
            sign(&bytes, mac, &path)?;
            overlay_paths.push(path);
        }
        progress(&format!(
            "[3/{STEPS}] Packaged {} overlays, one per host of [hosts] (the {host} overlay with its own host name): {} files each, {signed}",
            p.hosts.len(),
            overlay.members.len(),
        ));
    } else {
        let ovl_name = format!("{host}.apkovl.tar.gz{suffix}");
        let ovl_path = work.join(&ovl_name);
        let bytes = seal(&overlay.bytes)?;
        fs::write(&ovl_path, &bytes).at(&ovl_path)?;
        sign(&bytes, &host, &ovl_path)?;
        overlay_paths.push(ovl_path);
        progress(&format!(
            "[3/{STEPS}] Packaged the overlay {ovl_name}: {} files, {signed}",
            overlay.members.len(),
        ));
    }

    // 4. initramfs
    let initramfs = work.join("initramfs");
    let image = initramfs_image(p, req, format, &kver, &index_keys, &ovl_keys)?;
    image
        .write_to(&initramfs)
        .map_err(|e| initramfs_error(&kver, e))?;
    warnings.extend(image.warnings().iter().map(|w| format!("initramfs: {w}")));
    progress(&format!(
        "[4/{STEPS}] Built the initramfs for {kver} ({} KiB)",
        fs::metadata(&initramfs)
            .at(&initramfs)?
            .len()
            .div_ceil(1024)
    ));

    // 5. medium
    let mut opts = Options::new(format, req.output.clone());
    opts.build_time = req.build_time;
    opts.repositories = sources;
    opts.keys = Keyring::load(&index_keys);
    opts.world = p.world.clone();
    opts.kernel = Some(
        req.kernel_root
            .join(BOOT_DIR)
            .join(format!("vmlinuz-{kver}")),
    );
    opts.initramfs = Some(initramfs.clone());
    opts.apkovl = overlay_paths;
    opts.netboot_url = req.netboot_url.clone();
    opts.sign_key = Some(sign_key);
    if let Some(l) = &p.label {
        opts.label = l.clone();
    }
    if let Some(c) = &p.cmdline {
        opts.cmdline = c.clone();
    }
    if format == Format::Vfat {
        opts.size = p.size;
    }
    if let Modloop::Excluding(globs) = &p.modloop {
        opts.modloop_kver = Some(kver.clone());
        opts.modloop_basedir = Some(req.kernel_root.clone());
        opts.modloop_excludes = globs.clone();
    }
    if remote {
        opts.cache_dir = Some(cache_dir.clone());
    }
    opts.http = req.http.clone();
    if let Some(sb) = &req.secure_boot {
        opts.uki = true;
        opts.secure_boot = Some(sb.clone());
    }
    progress(&format!(
        "[5/{STEPS}] Writing the {} medium {}",
        format.name(),
        req.output.display()
    ));
    let report = crate::build(&opts, &mut |line| progress(&format!("      {line}")))
        .map_err(|e| size_error(p, e))?;
    warnings.extend(report.warnings.iter().cloned());
    let output_bytes = output_size(&req.output)?;
    drop(scratch);
    Ok(BuildSummary {
        report,
        installed_packages,
        installed_bytes,
        output_bytes,
        overlay_members: overlay.members.len(),
        format,
        seconds: start.elapsed().as_secs_f64(),
        warnings,
    })
}

/// `/etc/hostname` of the scratch root, at the build time.
fn set_hostname(root: &Path, name: &str, time: u64) -> Result<(), Error> {
    let path = root.join("etc/hostname");
    let _ = fs::remove_file(&path);
    fs::write(&path, format!("{name}\n")).at(&path)?;
    rootfs::set_mtime(&path, time)
}

/// lbu's selection of the scratch root (without lbu's own secrets), member times clamped to the
/// build time, within the size the init reads.
fn snapshot(root: &Path, build_time: u64, p: &Profile) -> Result<overlays::Overlay, Error> {
    let lbu_conf = fs::read_to_string(root.join(lbu::config::CONF)).ok();
    let env: HashMap<String, String> = HashMap::new();
    let mut cfg = lbu::config::Config::resolve(root, &env, lbu_conf.as_deref());
    cfg.source_date_epoch = Some(build_time);
    let create = overlays::CreateOptions {
        clamp_mtime: Some(build_time),
        ..Default::default()
    };
    let (overlay, _excluded) = lbu::build::snapshot(&cfg, &create).map_err(|e| Error::Profile {
        at: root.display().to_string(),
        reason: format!("the overlay: {e}"),
    })?;
    if overlay.bytes.len() as u64 > overlays::MAX_OVERLAY_BYTES {
        return Err(Error::Profile {
            at: p.dir.join(ROOTFS_DIR).display().to_string(),
            reason: format!(
                "the overlay is {} MiB, the init reads at most {} MiB: big files belong in packages",
                (overlay.bytes.len() as u64).div_ceil(1 << 20),
                overlays::MAX_OVERLAY_BYTES >> 20
            ),
        });
    }
    Ok(overlay)
}

/// `--format`, which must be one the profile lists; else the profile's first.
fn choose_format(p: &Profile, asked: Option<Format>) -> Result<Format, Error> {
    match asked {
        None => Ok(p.formats[0]),
        Some(f) if p.formats.contains(&f) => Ok(f),
        Some(f) => Err(Error::setting(
            "--format",
            format!(
                "{}: the profile is built as {} only (formats in {})",
                f.name(),
                p.formats
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                p.dir.join(super::PROFILE_TOML).display()
            ),
        )),
    }
}

/// The kernel: the profile's version, else the newest with both a kernel and modules.
fn kernel_version(p: &Profile, kroot: &Path) -> Result<String, Error> {
    let has = |v: &str| {
        kroot.join(BOOT_DIR).join(format!("vmlinuz-{v}")).is_file()
            && kroot.join(MODULES_DIR).join(v).is_dir()
    };
    if let Some(v) = &p.kernel {
        if !has(v) {
            return Err(Error::Profile {
                at: p.dir.join(super::PROFILE_TOML).display().to_string(),
                reason: format!(
                    "kernel \"{v}\": needs {} and {}",
                    kroot.join(BOOT_DIR).join(format!("vmlinuz-{v}")).display(),
                    kroot.join(MODULES_DIR).join(v).display()
                ),
            });
        }
        return Ok(v.clone());
    }
    let dir = kroot.join(MODULES_DIR);
    let mut versions: Vec<String> = fs::read_dir(&dir)
        .map(|r| {
            r.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|v| has(v))
                .collect()
        })
        .unwrap_or_default();
    versions.sort_by(|a, b| apk::version::compare(a, b));
    versions.pop().ok_or_else(|| Error::Profile {
        at: p.dir.join(super::PROFILE_TOML).display().to_string(),
        reason: format!(
            "kernel: no {}/vmlinuz-VER with {}/VER on this host (install a kernel or set kernel = \"VER\")",
            kroot.join(BOOT_DIR).display(),
            dir.display()
        ),
    })
}

/// The profile's repositories, else the mirrors (each value may hold several, space separated).
fn sources(p: &Profile, mirrors: &[String]) -> Result<Vec<RepoSpec>, Error> {
    if let Some(r) = &p.repositories {
        return Ok(r.clone());
    }
    let specs: Vec<RepoSpec> = mirrors
        .iter()
        .flat_map(|m| m.split_whitespace())
        .map(|m| crate::repository_spec(m).map_err(|e| rename_option(e, "--mirror")))
        .collect::<Result<_, _>>()?;
    if specs.is_empty() {
        return Err(Error::setting(
            "--mirror",
            format!(
                "required: {} names no repositories (e.g. --mirror https://dl-cdn.alpinelinux.org/alpine/v3.19/main)",
                p.dir.join(super::PROFILE_TOML).display()
            ),
        ));
    }
    Ok(specs)
}

fn rename_option(e: Error, option: &'static str) -> Error {
    match e {
        Error::Setting { reason, .. } => Error::Setting { option, reason },
        other => other,
    }
}

/// The apk core's `add --initdb` into `root`: the number of packages and their installed size.
fn install(
    root: &Path,
    sources: &[RepoSpec],
    world: &[String],
    remote: bool,
    cache_dir: &Path,
    req: &BuildRequest,
) -> Result<(usize, u64), Error> {
    use apk::context::{Access, Context, Options};
    let opts = Options {
        root: root.to_path_buf(),
        repositories: sources.iter().map(|s| s.url.clone()).collect(),
        initdb: true,
        no_network: !remote,
        cache_dir: remote.then(|| cache_dir.to_path_buf()),
        http: req.http.clone(),
        ..Default::default()
    };
    let out = apk::output::Out {
        verbosity: 0,
        ..Default::default()
    };
    let fail = |e: apk::context::Error| match e {
        apk::context::Error::Unsatisfiable(report) => Error::Unsatisfiable {
            option: "world",
            report,
        },
        other => Error::Profile {
            at: format!("apk add {}", world.join(" ")),
            reason: other.to_string(),
        },
    };
    let mut ctx = Context::open(opts, Access::Writable, out).map_err(fail)?;
    let report = apk::ops::add(&mut ctx, world, &apk::ops::AddOptions::default()).map_err(fail)?;
    if report.errors > 0 {
        return Err(Error::Profile {
            at: format!("apk add {}", world.join(" ")),
            reason: format!("{} errors while installing (see above)", report.errors),
        });
    }
    Ok((report.packages, report.installed_bytes))
}

/// The initramfs through the mkinitfs library.
fn initramfs_image(
    p: &Profile,
    req: &BuildRequest,
    format: Format,
    kver: &str,
    index_keys: &Path,
    ovl_keys: &Path,
) -> Result<mkinitfs::Image, Error> {
    let conf = mkinitfs::ConfFile {
        modules: p.modules.clone(),
        ..Default::default()
    };
    let require = match (p.signing, p.encryption) {
        (Signing::Required, Encryption::None) => "signed",
        (Signing::Required, Encryption::Passphrase) => "signed,encrypted",
        (Signing::None, Encryption::None) => "any",
        (Signing::None, Encryption::Passphrase) => "encrypted",
    };
    let overrides = mkinitfs::Overrides {
        basedir: Some(req.kernel_root.clone()),
        features: features(p, format),
        feature_dirs: req.feature_dirs.clone(),
        keys_dirs: vec![index_keys.to_path_buf()],
        ovl_keys_dirs: vec![ovl_keys.to_path_buf()],
        kernel_version: Some(kver.to_string()),
        mtime: Some(u32::try_from(req.build_time).unwrap_or(u32::MAX)),
        ovl_require: bootspec::policy::OverlayRequirement::parse(require),
        init: req.init.clone(),
        ..Default::default()
    };
    let config = mkinitfs::Config::resolve(&conf, &overrides, None, req.feature_dirs.clone())
        .map_err(|e| initramfs_error(kver, e))?;
    mkinitfs::build(&config).map_err(|e| initramfs_error(kver, e))
}

/// The profile's mkinitfs features (`None`: mkinitfs's defaults); a netboot tree's initramfs
/// always has `network` (the card drivers the init brings the network up with).
fn features(p: &Profile, format: Format) -> Option<Vec<String>> {
    if format != Format::Netboot {
        return p.features.clone();
    }
    let mut f = p.features.clone().unwrap_or_else(|| {
        mkinitfs::config::DEFAULT_FEATURES
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    if !f.iter().any(|x| x == "network") {
        f.push("network".into());
    }
    Some(f)
}

fn initramfs_error(kver: &str, e: mkinitfs::Error) -> Error {
    Error::Profile {
        at: format!("initramfs for {kver}"),
        reason: e.to_string(),
    }
}

/// A vfat image too small for the world: the profile's `size` is what to change.
fn size_error(p: &Profile, e: Error) -> Error {
    match (e, p.size) {
        (Error::TooSmall { size, needed }, Some(_)) => Error::Profile {
            at: p.dir.join(super::PROFILE_TOML).display().to_string(),
            reason: format!("size \"{size}\": the world and boot files do not fit (they need at least {needed})"),
        },
        (e, _) => e,
    }
}

/// Copies the public keys (`*.pub`, regular files) of `from` into `to`.
fn copy_public_keys(from: &Path, to: &Path) -> Result<(), Error> {
    let mut names: Vec<_> = fs::read_dir(from)
        .at(from)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()))
        .map(|e| e.path())
        .collect();
    names.sort();
    for path in names {
        if !path.is_file() {
            continue;
        }
        let Some(name) = path.file_name() else {
            continue;
        };
        let data = fs::read(&path).at(&path)?;
        let dest = to.join(name);
        if !dest.exists() {
            fs::write(&dest, data).at(&dest)?;
        }
    }
    Ok(())
}

fn write_new(path: &Path, data: &[u8]) -> Result<(), Error> {
    fs::write(path, data).at(path)
}

/// Files of `rootfs/` the overlay does not carry: lbu saves what differs from the packages under
/// `etc/` and what `lbu.list` includes, so anything else never reaches the booted system (and a
/// package's own copy is what boots). One warning each, naming the owner when a package has one.
fn uncarried(root: &Path, entries: &[rootfs::Entry], members: &[String]) -> Vec<String> {
    let carried: BTreeSet<&str> = members.iter().map(|m| m.trim_end_matches('/')).collect();
    let owners = apk::db::Database::open(root, &apk::db::OpenOptions::default())
        .map(|db| {
            let files = db.file_owners();
            files
                .into_iter()
                .map(|(path, i)| {
                    let p = &db.installed[i].pkg;
                    (path, format!("{}-{}", p.name, p.version))
                })
                .collect::<HashMap<String, String>>()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for e in entries.iter().filter(|e| !e.is_dir) {
        if carried.contains(e.path.as_str()) {
            continue;
        }
        let how = format!(
            "add +{} to rootfs/etc/apk/protected_paths.d/lbu.list to carry it",
            e.path
        );
        match owners.get(&e.path) {
            Some(pkg) => out.push(format!(
                "rootfs/{}: owned by {pkg} and not in the overlay: the package's copy is what boots ({how})",
                e.path
            )),
            None => {
                // Unchanged from the package (identical bytes) is carried by nothing and needs
                // nothing; a file of no package outside lbu's paths is lost.
                out.push(format!(
                    "rootfs/{}: not in the overlay (lbu saves etc/ and lbu.list paths): it will not be on the booted system ({how})",
                    e.path
                ));
            }
        }
    }
    out
}

/// Bytes at `path`: a file's length, or the sum of a tree's files.
fn output_size(path: &Path) -> Result<u64, Error> {
    let meta = fs::symlink_metadata(path).at(path)?;
    if !meta.is_dir() {
        return Ok(meta.len());
    }
    let mut total = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).at(&d)? {
            let e = e.at(&d)?;
            let m = e.metadata().at(&e.path())?;
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    Ok(total)
}
