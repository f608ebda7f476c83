//! Options for building a medium, resolved from the command line or set by a library caller:
//! output format, sources and trusted keys, world, boot files, the signing key, label, command
//! line, size and build time. Parsing helpers turn the `mkimage` arguments into these values; the
//! checks that only depend on one value (label, world tokens, repository kind) live here too.

use std::path::{Path, PathBuf};

use apk::dep::Dependency;
use apk::repo::RepoSpec;
use apk::trust::{Keyring, PrivateKey};

use crate::boot::DEFAULT_CMDLINE;
use crate::error::Error;
pub use crate::uki::SecureBootKey;

/// The label when none is given (what Alpine's media and our tests use).
pub const DEFAULT_LABEL: &str = "ALPINE";

/// What kind of medium to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A directory tree (to copy onto a formatted stick, or to inspect).
    Dir,
    /// A FAT32 file system image (`dd` it to the stick).
    Vfat,
    /// An ISO 9660 image with Rock Ridge and Joliet.
    Iso,
    /// A netboot tree for a web server: kernel, initramfs, repository, per-host overlays and the
    /// iPXE script `boot.ipxe` (see [`crate::netboot`]).
    Netboot,
}

impl Format {
    /// `dir`, `vfat`, `iso` or `netboot`.
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "dir" => Some(Format::Dir),
            "vfat" => Some(Format::Vfat),
            "iso" => Some(Format::Iso),
            "netboot" => Some(Format::Netboot),
            _ => None,
        }
    }

    /// The name as `--format` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Dir => "dir",
            Format::Vfat => "vfat",
            Format::Iso => "iso",
            Format::Netboot => "netboot",
        }
    }
}

/// The private key that signs the medium's indexes, and the name the signature gives it.
pub struct SignKey {
    /// The key (RSA or ed25519).
    pub key: PrivateKey,
    /// `basename(KEY).pub`: the name its public half must have in `/etc/apk/keys`.
    pub name: String,
    /// The key file, for messages.
    pub path: PathBuf,
}

impl SignKey {
    /// Loads a PEM private key; the signature names it `<file name>.pub`, abuild's convention
    /// (`apk keygen -o KEY` writes `KEY` and `KEY.pub`).
    pub fn load(path: &Path) -> Result<SignKey, Error> {
        let key = PrivateKey::load(path).map_err(|e| Error::Key {
            path: path.to_path_buf(),
            reason: match e {
                apk::trust::KeyError::Io { source, .. } => source.to_string(),
                apk::trust::KeyError::Parse(_) => "not a PEM RSA or ed25519 private key".into(),
                e => e.to_string(),
            },
        })?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| format!("{n}.pub"))
            .ok_or_else(|| Error::Key {
                path: path.to_path_buf(),
                reason: "the file name must be UTF-8 (it names the key in the signature)".into(),
            })?;
        Ok(SignKey {
            key,
            name,
            path: path.to_path_buf(),
        })
    }
}

/// The ed25519 private key that signs overlays with a statement for their host (`--ovl-key`).
pub struct OverlayKey {
    /// The key.
    pub key: PrivateKey,
    /// `basename(KEY).pub`: the name the signature gives it.
    pub name: String,
    /// The key file, for messages.
    pub path: PathBuf,
}

impl OverlayKey {
    /// Loads a PEM ed25519 private key (`apk keygen -o KEY`).
    pub fn load(path: &Path) -> Result<OverlayKey, Error> {
        let bad = |reason: String| Error::Input {
            option: "--ovl-key",
            path: path.to_path_buf(),
            reason,
        };
        let key = PrivateKey::load(path).map_err(|e| {
            bad(match e {
                apk::trust::KeyError::Io { source, .. } => source.to_string(),
                apk::trust::KeyError::Parse(_) => "not a PEM ed25519 private key".into(),
                e => e.to_string(),
            })
        })?;
        if !matches!(key.default_alg(), apk::trust::Alg::Ed25519) {
            return Err(bad(
                "overlays are signed with ed25519 keys (apk keygen -o KEY)".into(),
            ));
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| format!("{n}.pub"))
            .ok_or_else(|| {
                bad("the file name must be UTF-8 (it names the key in the signature)".into())
            })?;
        Ok(OverlayKey {
            key,
            name,
            path: path.to_path_buf(),
        })
    }
}

/// Everything [`crate::Medium::plan`] and [`crate::Medium::write`] need, resolved (keys loaded, sizes
/// parsed). [`Options::new`] gives the defaults the `mkimage` command uses.
pub struct Options {
    /// Output format.
    pub format: Format,
    /// Where the medium goes (`-o`).
    pub output: PathBuf,
    /// Architecture of the repositories (`--arch`).
    pub arch: String,
    /// Boot sources (`--repository`).
    pub repositories: Vec<RepoSpec>,
    /// Extra sources (`--extra-repository`).
    pub extra_repositories: Vec<RepoSpec>,
    /// Keys trusted for the source indexes (`--keys-dir`).
    pub keys: Keyring,
    /// Accept source indexes without a trusted signature.
    pub allow_untrusted: bool,
    /// Packages for the boot repository (`--world`); their closure is copied.
    pub world: Vec<Dependency>,
    /// Packages for `apks-extra/` (`--world-extra`); their closure minus the boot one is copied.
    pub world_extra: Vec<Dependency>,
    /// Kernel, copied to `/boot/vmlinuz`.
    pub kernel: Option<PathBuf>,
    /// Initramfs, copied to `/boot/initramfs`.
    pub initramfs: Option<PathBuf>,
    /// Prebuilt modloop squashfs (`--modloop`), copied to `/boot/modloop-<flavor>` and signed.
    pub modloop: Option<PathBuf>,
    /// `--modloop-kver`: the kernel of the modloop to build (or of a prebuilt one holding several).
    pub modloop_kver: Option<String>,
    /// `--modloop-basedir`: where `lib/modules/<kver>` and `lib/firmware` are (default `/`).
    pub modloop_basedir: Option<PathBuf>,
    /// `--modloop-exclude` globs.
    pub modloop_excludes: Vec<String>,
    /// `--modloop-comp`.
    pub modloop_compression: mkinitfs::modloop::ModloopCompression,
    /// apkovl, copied to the top level under its name (with `NAME.sig` when present beside it).
    /// A medium takes one; a netboot tree any number (see [`crate::netboot`]).
    pub apkovl: Vec<PathBuf>,
    /// Netboot: which MAC boots which host's overlay (`--hosts FILE`).
    pub hosts: Option<crate::netboot::Hosts>,
    /// Netboot: signs each host's overlay for its MAC (`--ovl-key`, ed25519).
    pub ovl_key: Option<OverlayKey>,
    /// Netboot: the URL the tree is served from (`--netboot-url`; `None`: `http://${next-server}`).
    pub netboot_url: Option<String>,
    /// Directory copied to `/cache/`.
    pub cache: Option<PathBuf>,
    /// Signs the medium's indexes; required when packages are copied.
    pub sign_key: Option<SignKey>,
    /// Volume label (vfat: ≤ 11 characters, iso: ≤ 32).
    pub label: String,
    /// Kernel command line for the boot loader configurations.
    pub cmdline: String,
    /// vfat image size (`None`: content + 25 % + 8 MiB, at least [`crate::MIN_SIZE`]).
    pub size: Option<u64>,
    /// Time stamp of every file and of the release id (`SOURCE_DATE_EPOCH`).
    pub build_time: u64,
    /// Where downloads from remote sources are kept (`None`: a scratch directory, removed after
    /// the build).
    pub cache_dir: Option<PathBuf>,
    /// HTTP client settings for remote sources (the host's CA bundle is added).
    pub http: apk::http::ClientOptions,
    /// Boot UEFI through a unified kernel image (`--uki`): kernel, sealed initramfs and command
    /// line in one PE file at `EFI/BOOT/BOOTX64.EFI` instead of GRUB.
    pub uki: bool,
    /// Sign the unified kernel image for Secure Boot (`--sb-key`, `--sb-cert`); the certificate
    /// goes on the medium as DER for enrollment.
    pub secure_boot: Option<SecureBootKey>,
}

impl Options {
    /// Defaults: host architecture, label `ALPINE`, Alpine's command line, build time from
    /// `SOURCE_DATE_EPOCH` (else now), nothing else.
    pub fn new(format: Format, output: PathBuf) -> Options {
        Options {
            format,
            output,
            arch: default_arch().to_string(),
            repositories: Vec::new(),
            extra_repositories: Vec::new(),
            keys: Keyring::default(),
            allow_untrusted: false,
            world: Vec::new(),
            world_extra: Vec::new(),
            kernel: None,
            initramfs: None,
            modloop: None,
            modloop_kver: None,
            modloop_basedir: None,
            modloop_excludes: Vec::new(),
            modloop_compression: mkinitfs::modloop::ModloopCompression::Xz,
            apkovl: Vec::new(),
            hosts: None,
            ovl_key: None,
            netboot_url: None,
            cache: None,
            sign_key: None,
            label: DEFAULT_LABEL.to_string(),
            cmdline: DEFAULT_CMDLINE.to_string(),
            size: None,
            build_time: apk::archive::build_time(),
            cache_dir: None,
            http: apk::http::ClientOptions::default(),
            uki: false,
            secure_boot: None,
        }
    }
}

/// The Alpine architecture name of the build host.
pub fn default_arch() -> &'static str {
    match std::env::consts::ARCH {
        "arm" => "armv7",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// A `--repository` value: a directory with `<arch>/APKINDEX.tar.gz`, an index file, or an
/// `http(s)://` repository URL.
pub fn repository_spec(text: &str) -> Result<RepoSpec, Error> {
    let spec = RepoSpec::parse(text)
        .ok_or_else(|| Error::setting("--repository", format!("\"{text}\" is empty")))?;
    let web = text.starts_with("http://") || text.starts_with("https://");
    if spec.is_remote() && !web {
        return Err(Error::setting(
            "--repository",
            format!("{text}: only local directories and http(s):// URLs can be copied to a medium"),
        ));
    }
    Ok(spec)
}

/// A `--world` value: space-separated apk dependencies (`name`, `name>=1.2`, `name@tag`).
pub fn parse_world(text: &str, option: &'static str) -> Result<Vec<Dependency>, Error> {
    text.split_whitespace()
        .map(|t| Dependency::parse(t, true).map_err(|e| Error::setting(option, e.to_string())))
        .collect()
}

/// Label characters every target reads the same: letters, digits, `_` and `-`, and `.` on ISO
/// (FAT labels cannot hold a dot). No spaces: a label is typed in `LABEL=` on the command line.
pub(crate) fn check_label(label: &str, format: Format) -> Result<(), Error> {
    if format == Format::Netboot {
        // A tree on a web server has no volume label.
        return Ok(());
    }
    let (max, dot) = if format == Format::Vfat {
        (11, false)
    } else {
        (32, true)
    };
    if label.is_empty() {
        return Err(Error::setting("--label", "must not be empty"));
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (dot && b == b'.'))
    {
        let allowed = if dot {
            "'_', '-' and '.'"
        } else {
            "'_' and '-'"
        };
        return Err(Error::setting(
            "--label",
            format!(
                "\"{label}\": use letters, digits, {allowed} only for {}",
                format.name()
            ),
        ));
    }
    if label.len() > max {
        return Err(Error::setting(
            "--label",
            format!(
                "\"{label}\" is {} characters; {} labels hold at most {max}",
                label.len(),
                format.name()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_checked_per_format() {
        assert!(check_label("ALPINE", Format::Vfat).is_ok());
        assert!(check_label("alp-std_3", Format::Vfat).is_ok());
        assert_eq!(
            check_label("TWELVE_CHARS", Format::Vfat)
                .unwrap_err()
                .to_string(),
            "--label: \"TWELVE_CHARS\" is 12 characters; vfat labels hold at most 11"
        );
        assert!(check_label("TWELVE_CHARS", Format::Iso).is_ok());
        assert!(check_label("", Format::Iso).is_err());
        assert!(check_label("a b", Format::Iso)
            .unwrap_err()
            .to_string()
            .contains("letters, digits"));
        assert!(check_label("a/b", Format::Dir).is_err());
        assert!(check_label("alp-3.19", Format::Iso).is_ok());
        assert_eq!(
            check_label("alp-3.19", Format::Vfat)
                .unwrap_err()
                .to_string(),
            "--label: \"alp-3.19\": use letters, digits, '_' and '-' only for vfat"
        );
    }

    #[test]
    fn world_tokens_are_apk_dependencies() {
        let w = parse_world(" alpine-base  dhcpcd>=10 ", "--world").unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!(w[1].to_string(), "dhcpcd>=10");
        assert!(parse_world("bad==", "--world")
            .unwrap_err()
            .to_string()
            .starts_with("--world: "));
    }

    #[test]
    fn local_and_web_repositories() {
        assert!(repository_spec("/srv/apks").is_ok());
        assert!(repository_spec("https://dl-cdn.example/alpine/main").is_ok());
        assert!(repository_spec("ftp://dl-cdn.example/alpine/main")
            .unwrap_err()
            .to_string()
            .contains("only local"));
        assert!(repository_spec("  ").is_err());
    }
}
