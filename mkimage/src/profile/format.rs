//! `profile.toml`: the keys of an appliance profile, parsed with `toml` + `serde` and checked
//! one by one, every error naming the file and line of the value it refuses
//! (`DIR/profile.toml:3: unknown key `wrold`, expected one of ...`). The keys are documented in
//! the skeleton `mkimage --new-profile` writes ([`super::skeleton`]) and in mkimage's README.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use apk::dep::Dependency;
use apk::repo::RepoSpec;
use serde::Deserialize;
use toml::Spanned;

use crate::error::Error;
use crate::netboot::{check_hostname, normalize_mac};
use crate::options::{check_label, Format};

/// The file of a profile directory that holds its settings.
pub const PROFILE_TOML: &str = "profile.toml";

/// What `profile.toml` may hold, as written (values still unchecked).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    world: Spanned<Vec<String>>,
    repositories: Option<Spanned<Vec<String>>>,
    kernel: Option<Spanned<String>>,
    hostname: Option<Spanned<String>>,
    cmdline: Option<Spanned<String>>,
    features: Option<Spanned<Vec<String>>>,
    modules: Option<Spanned<Vec<String>>>,
    modloop: Option<Spanned<RawModloop>>,
    formats: Option<Spanned<Vec<String>>>,
    label: Option<Spanned<String>>,
    size: Option<Spanned<String>>,
    signing: Option<Spanned<String>>,
    encryption: Option<Spanned<String>>,
    hosts: Option<Spanned<BTreeMap<String, String>>>,
}

/// `modloop = true|false` or `modloop = ["exclude glob", ...]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawModloop {
    On(bool),
    Excluding(Vec<String>),
}

/// The overlay's signature policy (`signing`): what the initramfs's boot policy requires too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    /// Signed with `--ovl-key`; the init refuses an unsigned or badly signed overlay
    /// (`apkovl_require=signed` in the initramfs's boot policy). The default.
    Required,
    /// Not signed; the init accepts any overlay (an appliance whose medium is trusted as a whole).
    None,
}

/// The overlay's encryption (`encryption`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encryption {
    /// A plain `HOST.apkovl.tar.gz`. The default.
    None,
    /// `HOST.apkovl.tar.gz.age`, encrypted with age to the passphrase of
    /// `mkimage --ovl-passphrase-file FILE`, which the init asks for on the console at boot (the
    /// passphrase never enters the medium); the initramfs's boot policy then requires an
    /// encrypted overlay.
    Passphrase,
}

/// The modloop of the medium (`modloop`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Modloop {
    /// No modloop: the modules the initramfs carries are all there is (`modloop=none`).
    Off,
    /// A modloop of the kernel's modules and firmware, minus paths matching these globs.
    Excluding(Vec<String>),
}

/// A parsed and checked profile (the directory is [`Profile::dir`]).
#[derive(Clone, Debug)]
pub struct Profile {
    /// The profile directory.
    pub dir: PathBuf,
    /// Packages installed at every boot (their closure goes to the boot repository).
    pub world: Vec<Dependency>,
    /// Where packages come from (`None`: the mirrors given on the command line).
    pub repositories: Option<Vec<RepoSpec>>,
    /// Kernel version (`/boot/vmlinuz-VER`, `/lib/modules/VER`; `None`: the newest installed).
    pub kernel: Option<String>,
    /// The appliance's host name (`/etc/hostname` in the overlay, and the overlay's name).
    pub hostname: Option<String>,
    /// Kernel command line of the boot loader configurations (`None`: mkimage's default).
    pub cmdline: Option<String>,
    /// mkinitfs features (`None`: mkinitfs's defaults).
    pub features: Option<Vec<String>>,
    /// More kernel modules for the initramfs.
    pub modules: Vec<String>,
    /// The modloop.
    pub modloop: Modloop,
    /// The formats this profile is built into; the first is the default of `--format`.
    pub formats: Vec<Format>,
    /// Volume label (`None`: mkimage's default).
    pub label: Option<String>,
    /// Image size of `vfat` (bytes; `None`: content + 25 % + 8 MiB).
    pub size: Option<u64>,
    /// Overlay signature policy.
    pub signing: Signing,
    /// Overlay encryption.
    pub encryption: Encryption,
    /// MAC address (lower-case, colons) -> host name, for netboot trees.
    pub hosts: BTreeMap<String, String>,
}

/// Where a value sits in `profile.toml`, for messages: `DIR/profile.toml:LINE`.
pub(crate) struct Source<'a> {
    pub(crate) file: &'a Path,
    pub(crate) text: &'a str,
}

impl Source<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// The error for the value at `span`.
    pub(crate) fn error(&self, span: Option<Range<usize>>, reason: impl Into<String>) -> Error {
        Error::Profile {
            at: match span {
                Some(s) => format!("{}:{}", self.file.display(), self.line_of(s.start)),
                None => self.file.display().to_string(),
            },
            reason: reason.into(),
        }
    }
}

/// Parses and checks the text of `DIR/profile.toml`; `dir` resolves relative repositories.
pub fn parse(text: &str, file: &Path, dir: &Path) -> Result<Profile, Error> {
    let src = Source { file, text };
    let raw: Raw = toml::from_str(text).map_err(|e| {
        // serde says "field"; a TOML file has keys. One line: the location goes in front.
        let reason = e
            .message()
            .trim()
            .replace("unknown field", "unknown key")
            .replace("missing field", "missing key")
            .replace('\n', " ");
        // A missing key has no line of its own (toml points at the whole document).
        let span = e.span().filter(|_| !reason.starts_with("missing key"));
        src.error(span, reason)
    })?;

    let world_text = raw.world.get_ref().join(" ");
    if raw.world.get_ref().is_empty() {
        return Err(src.error(
            Some(raw.world.span()),
            "world: must name at least one package",
        ));
    }
    let world = crate::parse_world(&world_text, "world").map_err(|e| {
        src.error(
            Some(raw.world.span()),
            format!("world: {}", setting_reason(e)),
        )
    })?;

    let repositories = raw
        .repositories
        .as_ref()
        .map(|r| {
            r.get_ref()
                .iter()
                .map(|text| {
                    let resolved = resolve_repository(text, dir);
                    crate::repository_spec(&resolved).map_err(|e| {
                        src.error(
                            Some(r.span()),
                            format!("repositories: {}", setting_reason(e)),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;

    let kernel = match &raw.kernel {
        Some(k) => {
            let v = k.get_ref();
            if v.is_empty()
                || v.contains('/')
                || v.starts_with('.')
                || v.chars().any(char::is_whitespace)
            {
                return Err(src.error(
                    Some(k.span()),
                    format!("kernel \"{v}\": a kernel version such as 6.1.0-28-amd64 (/boot/vmlinuz-VER, /lib/modules/VER)"),
                ));
            }
            Some(v.clone())
        }
        None => None,
    };

    let hostname = match &raw.hostname {
        Some(h) => {
            check_hostname(h.get_ref()).map_err(|r| {
                src.error(Some(h.span()), format!("hostname \"{}\": {r}", h.get_ref()))
            })?;
            Some(h.get_ref().clone())
        }
        None => None,
    };

    let cmdline = match &raw.cmdline {
        Some(c) => {
            crate::check_cmdline(c.get_ref())
                .map_err(|r| src.error(Some(c.span()), format!("cmdline: {r}")))?;
            Some(c.get_ref().clone())
        }
        None => None,
    };

    let features = raw.features.as_ref().map(|f| f.get_ref().clone());
    if let Some(f) = &raw.features {
        if let Some(bad) = f.get_ref().iter().find(|w| !is_word(w)) {
            return Err(src.error(
                Some(f.span()),
                format!("features: \"{bad}\" is not a feature name"),
            ));
        }
    }
    let modules = raw
        .modules
        .as_ref()
        .map(|m| m.get_ref().clone())
        .unwrap_or_default();
    if let Some(m) = &raw.modules {
        if let Some(bad) = m.get_ref().iter().find(|w| !is_word(w)) {
            return Err(src.error(
                Some(m.span()),
                format!("modules: \"{bad}\" is not a module name or path"),
            ));
        }
    }

    let modloop = match raw.modloop.as_ref().map(|m| m.get_ref()) {
        None | Some(RawModloop::On(false)) => Modloop::Off,
        Some(RawModloop::On(true)) => Modloop::Excluding(Vec::new()),
        Some(RawModloop::Excluding(globs)) => Modloop::Excluding(globs.clone()),
    };

    let formats = match &raw.formats {
        Some(f) => {
            if f.get_ref().is_empty() {
                return Err(src.error(
                    Some(f.span()),
                    "formats: name at least one of vfat, iso, dir, netboot",
                ));
            }
            f.get_ref()
                .iter()
                .map(|n| {
                    Format::parse(n).ok_or_else(|| {
                        src.error(
                            Some(f.span()),
                            format!("formats: \"{n}\": expected vfat, iso, dir or netboot"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        None => vec![Format::Vfat],
    };

    let label = match &raw.label {
        Some(l) => {
            // The label must be valid for every format the profile is built into (a FAT label is
            // the strictest: 11 characters, no dot).
            for f in &formats {
                check_label(l.get_ref(), *f).map_err(|e| {
                    src.error(Some(l.span()), format!("label: {}", setting_reason(e)))
                })?;
            }
            Some(l.get_ref().clone())
        }
        None => None,
    };

    let size = match &raw.size {
        Some(s) => {
            let bytes = crate::parse_size(s.get_ref())
                .map_err(|r| src.error(Some(s.span()), format!("size: {r}")))?;
            if !(crate::MIN_SIZE..=crate::MAX_SIZE).contains(&bytes) {
                return Err(src.error(
                    Some(s.span()),
                    format!(
                        "size \"{}\": out of range, from 64M to 2T for FAT32",
                        s.get_ref()
                    ),
                ));
            }
            Some(bytes)
        }
        None => None,
    };

    let signing = match raw.signing.as_ref() {
        None => Signing::Required,
        Some(s) => match s.get_ref().as_str() {
            "required" => Signing::Required,
            "none" => Signing::None,
            other => {
                return Err(src.error(
                    Some(s.span()),
                    format!("signing \"{other}\": expected \"required\" (the default) or \"none\""),
                ))
            }
        },
    };
    let encryption = match raw.encryption.as_ref() {
        None => Encryption::None,
        Some(e) => match e.get_ref().as_str() {
            "none" => Encryption::None,
            "passphrase" => Encryption::Passphrase,
            other => {
                return Err(src.error(
                    Some(e.span()),
                    format!(
                        "encryption \"{other}\": expected \"none\" (the default) or \"passphrase\" \
                         (typed at boot; mkimage --ovl-passphrase-file FILE)"
                    ),
                ))
            }
        },
    };

    let mut hosts = BTreeMap::new();
    if let Some(h) = &raw.hosts {
        for (mac, name) in h.get_ref() {
            let m = normalize_mac(mac).ok_or_else(|| {
                src.error(
                    Some(h.span()),
                    format!("hosts: \"{mac}\" is not a MAC address (aa:bb:cc:dd:ee:ff)"),
                )
            })?;
            check_hostname(name).map_err(|r| {
                src.error(Some(h.span()), format!("hosts: {mac} = \"{name}\": {r}"))
            })?;
            if hosts.insert(m, name.clone()).is_some() {
                return Err(src.error(Some(h.span()), format!("hosts: {mac} is listed twice")));
            }
        }
    }

    if let (Some(h), Signing::None) = (&raw.hosts, signing) {
        if !hosts.is_empty() {
            return Err(src.error(
                Some(h.span()),
                "hosts: needs signing = \"required\": each machine's overlay is signed for its MAC, unsigned ones would boot on any machine".to_string(),
            ));
        }
    }

    Ok(Profile {
        dir: dir.to_path_buf(),
        world,
        repositories,
        kernel,
        hostname,
        cmdline,
        features,
        modules,
        modloop,
        formats,
        label,
        size,
        signing,
        encryption,
        hosts,
    })
}

/// The reason of a refused setting, without the option name mkimage's CLI would put in front.
fn setting_reason(e: Error) -> String {
    match e {
        Error::Setting { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// A repository relative to the profile directory, unless it is a URL or absolute.
fn resolve_repository(text: &str, dir: &Path) -> String {
    if text.contains("://") || Path::new(text).is_absolute() {
        text.to_string()
    } else {
        dir.join(text).display().to_string()
    }
}

fn is_word(w: &str) -> bool {
    !w.is_empty() && !w.chars().any(|c| c.is_whitespace() || c.is_control())
}
