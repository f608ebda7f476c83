//! The typed values of the command line's options: devices (`alpine_dev=`, `apkovl=DEV:...`),
//! the overlay location, `apkovl_verify=`, `panic=` and `console=` (docs/boot.md, "Parameters").
use std::path::PathBuf;
use std::time::Duration;

/// A device named on the command line: kernel name, `/dev/NAME`, `LABEL=`, `UUID=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSpec {
    /// Kernel name (`sda1`; `/dev/sda1` is stored without `/dev/`).
    Name(String),
    /// `LABEL=...` (exact match).
    Label(String),
    /// `UUID=...` (case-insensitive).
    Uuid(String),
}

impl DeviceSpec {
    /// Parses `sda1`, `/dev/sda1`, `LABEL=x`, `UUID=x`.
    pub fn parse(text: &str) -> Option<Self> {
        if let Some(l) = text.strip_prefix("LABEL=") {
            return (!l.is_empty()).then(|| Self::Label(l.to_string()));
        }
        if let Some(u) = text.strip_prefix("UUID=") {
            return (!u.is_empty()).then(|| Self::Uuid(u.to_string()));
        }
        let name = text.strip_prefix("/dev/").unwrap_or(text);
        if name.is_empty() || name.contains(char::is_whitespace) || name.contains("..") {
            return None;
        }
        Some(Self::Name(name.to_string()))
    }

    /// Whether a device with kernel `name`, `label` and `uuid` is the one meant.
    pub fn matches(&self, name: &str, label: Option<&str>, uuid: Option<&str>) -> bool {
        match self {
            Self::Name(n) => n == name,
            Self::Label(l) => label == Some(l.as_str()),
            Self::Uuid(u) => uuid.is_some_and(|x| x.eq_ignore_ascii_case(u)),
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Name(n) => write!(f, "/dev/{n}"),
            Self::Label(l) => write!(f, "LABEL={l}"),
            Self::Uuid(u) => write!(f, "UUID={u}"),
        }
    }
}

/// Where `apkovl=` says the overlay is (docs/boot.md, "Overlay: choice").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApkovlSpec {
    /// `http(s)://`, `ftp://`: out of scope (no network at boot), reported as an error.
    Url(String),
    /// `DEV:PATH` or `DEV:FSTYPE:PATH`: PATH on that device (mounted at `/media/<name>`).
    OnDevice {
        /// The device (`/dev/x`, `LABEL=`, `UUID=`).
        dev: DeviceSpec,
        /// Filesystem type to mount it with, when given.
        fstype: Option<String>,
        /// Path on the device (leading `/` optional).
        path: String,
    },
    /// Any other value: a literal path in the initramfs namespace (e.g. `/media/vda1/x.apkovl.tar.gz`).
    Path(PathBuf),
}

impl ApkovlSpec {
    /// Parses an `apkovl=` value.
    pub fn parse(value: &str) -> Self {
        if ["http://", "https://", "ftp://"]
            .iter()
            .any(|p| value.starts_with(p))
        {
            return Self::Url(value.to_string());
        }
        let dev_like =
            value.starts_with("/dev/") || value.starts_with("LABEL=") || value.starts_with("UUID=");
        if dev_like {
            let parts: Vec<&str> = value.splitn(3, ':').collect();
            let (dev, fstype, path) = match parts.as_slice() {
                [dev, path] => (*dev, None, *path),
                [dev, fstype, path] => (*dev, Some(fstype.to_string()), *path),
                _ => ("", None, ""),
            };
            if let (Some(dev), false) = (DeviceSpec::parse(dev), path.is_empty()) {
                return Self::OnDevice {
                    dev,
                    fstype: fstype.filter(|f| !f.is_empty()),
                    path: path.to_string(),
                };
            }
        }
        Self::Path(PathBuf::from(value))
    }
}

/// `modloop=`: where the modloop is (docs/boot.md, "Modloop").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModloopSpec {
    /// `modloop=none`: no modloop.
    None,
    /// A path relative to the top of a boot medium (`/boot/modloop-lts`).
    Path(String),
    /// `http://`, `https://`, `ftp://`: downloaded (netboot).
    Url(String),
}

impl ModloopSpec {
    /// Alpine's reading of the value: `none`, a URL, or a path on a medium.
    pub fn parse(value: &str) -> Self {
        if value == "none" || value == "no" {
            Self::None
        } else if ["http://", "https://", "ftp://"]
            .iter()
            .any(|p| value.starts_with(p))
        {
            Self::Url(value.to_string())
        } else {
            Self::Path(value.to_string())
        }
    }
}

/// `modloop_verify=`: what the command line asks of the modloop's signature (docs/boot.md,
/// "Modloop"). It can only tighten: with keys in the initramfs a modloop that does not verify is
/// never mounted, whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModloopVerify {
    /// `required`: a modloop that is missing or does not verify stops the boot.
    Required,
    /// `yes` (the default): a modloop that does not verify is not mounted; the boot continues.
    Yes,
    /// `no`: only honoured when the initramfs holds no keys at all (then an unsigned modloop is
    /// mounted with a warning); with keys it means [`ModloopVerify::Yes`] and a warning says so.
    No,
}

impl std::fmt::Display for ModloopVerify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Required => "required",
            Self::Yes => "yes",
            Self::No => "no",
        })
    }
}

/// `apkovl_verify=`: what the command line asks of an overlay signature (docs/boot.md, "Overlay:
/// trust"); it can only tighten the image's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyPolicy {
    /// A valid signature by a key in `/etc/apkovl/keys/` is required.
    Required,
    /// Unsigned overlays are accepted with a warning; a bad signature is refused.
    Optional,
    /// No signature is needed; a signature that is present and bad is still refused.
    Off,
}

impl std::fmt::Display for VerifyPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Required => "required",
            Self::Optional => "optional",
            Self::Off => "off",
        })
    }
}

/// `panic=`: what happens when the boot fails and no rescue shell runs.
///
/// Kernel convention: `N > 0` reboots after N seconds, `N < 0` reboots at once, `0` or absent
/// halts (waits forever). Alpine convention: any value except `no` also disables the rescue shell,
/// because it asks for unattended failure handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PanicPolicy {
    /// Whether a rescue shell may be offered.
    pub shell_allowed: bool,
    /// What to do after the failure report (and the shell, if any).
    pub action: PanicAction,
}

/// The machine-level part of [`PanicPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanicAction {
    /// Wait forever (still reaping children).
    Halt,
    /// Reboot after this delay.
    RebootAfter(Duration),
    /// Reboot at once.
    RebootNow,
}

impl Default for PanicPolicy {
    fn default() -> Self {
        Self {
            shell_allowed: true,
            action: PanicAction::Halt,
        }
    }
}

impl PanicPolicy {
    /// Parses a `panic` value (`yes` for a bare `panic`, `no` for `nopanic`); `Err` for garbage.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "no" => Ok(Self::default()),
            "yes" => Ok(Self {
                shell_allowed: false,
                action: PanicAction::Halt,
            }),
            v => match v.parse::<i64>() {
                Ok(0) => Ok(Self {
                    shell_allowed: false,
                    action: PanicAction::Halt,
                }),
                Ok(n) if n < 0 => Ok(Self {
                    shell_allowed: false,
                    action: PanicAction::RebootNow,
                }),
                Ok(n) => Ok(Self {
                    shell_allowed: false,
                    action: PanicAction::RebootAfter(Duration::from_secs(n as u64)),
                }),
                Err(_) => Err(format!(
                    "panic={v}: not a number, treated as bare `panic` (no shell, halt)"
                )),
            },
        }
    }
}

/// One `console=NAME[,OPTIONS]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSpec {
    /// Device name (`ttyS0`, `tty0`, `hvc0`).
    pub name: String,
    /// Text after the first `,` (`115200n8`), if any.
    pub options: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdline::BootConfig;

    #[test]
    fn apkovl_forms() {
        assert_eq!(
            ApkovlSpec::parse("http://x/y.apkovl.tar.gz"),
            ApkovlSpec::Url("http://x/y.apkovl.tar.gz".into())
        );
        assert_eq!(
            ApkovlSpec::parse("/dev/sdb1:host.apkovl.tar.gz"),
            ApkovlSpec::OnDevice {
                dev: DeviceSpec::Name("sdb1".into()),
                fstype: None,
                path: "host.apkovl.tar.gz".into()
            }
        );
        assert_eq!(
            ApkovlSpec::parse("/dev/sdb1:ext4:/cfg/host.apkovl.tar.gz"),
            ApkovlSpec::OnDevice {
                dev: DeviceSpec::Name("sdb1".into()),
                fstype: Some("ext4".into()),
                path: "/cfg/host.apkovl.tar.gz".into()
            }
        );
        assert_eq!(
            ApkovlSpec::parse("LABEL=CFG:a.apkovl.tar.gz"),
            ApkovlSpec::OnDevice {
                dev: DeviceSpec::Label("CFG".into()),
                fstype: None,
                path: "a.apkovl.tar.gz".into()
            }
        );
        assert_eq!(
            ApkovlSpec::parse("/media/vda1/x.apkovl.tar.gz"),
            ApkovlSpec::Path("/media/vda1/x.apkovl.tar.gz".into())
        );
        // A /dev path without a file part is a plain path (and will not be a regular file).
        assert_eq!(
            ApkovlSpec::parse("/dev/sdb1"),
            ApkovlSpec::Path("/dev/sdb1".into())
        );
        assert_eq!(
            ApkovlSpec::parse("/dev/sdb1:"),
            ApkovlSpec::Path("/dev/sdb1:".into())
        );
    }

    #[test]
    fn device_specs() {
        assert_eq!(
            DeviceSpec::parse("/dev/sda1"),
            Some(DeviceSpec::Name("sda1".into()))
        );
        assert_eq!(
            DeviceSpec::parse("sr0"),
            Some(DeviceSpec::Name("sr0".into()))
        );
        assert_eq!(DeviceSpec::parse("LABEL="), None);
        assert_eq!(DeviceSpec::parse("/dev/../x"), None);
        let u = DeviceSpec::parse("UUID=abcd-EF01").unwrap();
        assert!(u.matches("sda1", None, Some("ABCD-ef01")));
        assert!(!u.matches("sda1", None, None));
        let l = DeviceSpec::parse("LABEL=ALPINE").unwrap();
        assert!(l.matches("x", Some("ALPINE"), None));
        assert!(!l.matches("x", Some("alpine"), None));
        let c = BootConfig::from_cmdline("alpine_dev=LABEL=BOOT");
        assert_eq!(c.alpine_dev, Some(DeviceSpec::Label("BOOT".into())));
        assert_eq!(BootConfig::from_cmdline("alpine_dev").alpine_dev, None);
    }
}
