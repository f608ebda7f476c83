//! `mkinitfs.conf` and the effective build configuration.
//!
//! Alpine's `/etc/mkinitfs/mkinitfs.conf` is a shell file that mkinitfs sources. We keep its keys
//! (`features`, `initfscomp`, `custom_files`, `complevel_*`, `disable_trigger`) but read it
//! declaratively: one `KEY="VALUE"` (or `KEY='VALUE'`, `KEY=VALUE`) per line, `#` comments, nothing
//! is expanded or executed. We add `modules="a b"`, the boot modules written to `/etc/modules` in
//! the image, and the boot policy the image records (`apkovl_require="signed"`,
//! `apkovl_legacy_sig=yes`, the words of `bootspec::BootPolicy`). Unlike Alpine (which sources the config *after* parsing options, so
//! the file overrides `-C`), the command line always wins: [`Config::resolve`] is the one place
//! where precedence lives (command line, then config file, then defaults).

use std::fs;
use std::path::{Path, PathBuf};

use bootspec::{BootPolicy, OverlayRequirement};

use crate::error::{Error, IoResultExt};

/// Features used when neither the command line nor the config file names any.
/// `vfat` is in because boot USB sticks are vfat; `squashfs` for modloops.
pub const DEFAULT_FEATURES: &[&str] = &[
    "base", "virtio", "ata", "scsi", "nvme", "usb", "mmc", "cdrom", "ext4", "vfat", "squashfs",
];

/// The config file read when `-c` is not given, relative to the base directory (`-b`, default `/`).
pub const DEFAULT_CONFIG: &str = "etc/mkinitfs/mkinitfs.conf";

/// The fstab embedded when `-f` is not given: Alpine's shipped `/etc/fstab`.
pub const DEFAULT_FSTAB: &str = "/dev/cdrom\t/media/cdrom\tiso9660\tnoauto,ro 0 0\n\
/dev/fd0\t/media/floppy\tvfat\tnoauto\t0 0\n\
/dev/usbdisk\t/media/usb\tvfat\tnoauto\t0 0\n";

/// How the cpio archive is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip at the given level (1-9).
    Gzip(u32),
    /// zstd at the given level (1-22), deterministic (see `compress`).
    Zstd(i32),
    /// Plain cpio.
    None,
}

/// Default zstd level: 19, Alpine's. Measured on the Debian 6.1 kernel with the default features
/// (a 16 MiB cpio, the init alone 4.4 MB; 2 cores, 4 MiB jobs): level 3 builds in 0.15 s and
/// makes 4819 KiB, level 17 4032 KiB in 3.9 s, level 19 3888 KiB in 5.4 s (multithreaded:
/// faster with more cores). The kernel's unpack does not depend on the level (qemu TCG, medians
/// of 3 boots: 0.433 s at level 3, 0.436 s at 19; `bootbench --levels`), so the level is chosen
/// for the size: the default image stays under 4 MiB. `complevel_zstd` trades size for time.
pub const DEFAULT_ZSTD_LEVEL: i32 = 19;
/// Default gzip level (Alpine uses -9).
pub const DEFAULT_GZIP_LEVEL: u32 = 9;

impl Compression {
    /// Parses an Alpine `initfscomp` / `-C` name with the given per-algorithm levels.
    pub fn from_name(
        name: &str,
        gzip_level: Option<u32>,
        zstd_level: Option<i32>,
    ) -> Result<Self, Error> {
        match name {
            "gzip" => Ok(Compression::Gzip(gzip_level.unwrap_or(DEFAULT_GZIP_LEVEL))),
            "zstd" => Ok(Compression::Zstd(zstd_level.unwrap_or(DEFAULT_ZSTD_LEVEL))),
            "none" => Ok(Compression::None),
            other => Err(Error::Setting {
                key: "initfscomp".into(),
                reason: format!("compression \"{other}\" not supported (gzip, zstd, none)"),
            }),
        }
    }
}

/// The keys of a `mkinitfs.conf`, as written (no defaults applied).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfFile {
    /// `features="..."`, split on whitespace.
    pub features: Option<Vec<String>>,
    /// `initfscomp="zstd"`.
    pub initfscomp: Option<String>,
    /// `custom_files="/etc/foo /etc/bar"`: copied from the base directory, no ELF walk.
    pub custom_files: Vec<String>,
    /// `complevel_gzip="-9"`.
    pub complevel_gzip: Option<u32>,
    /// `complevel_zstd="-19"`.
    pub complevel_zstd: Option<i32>,
    /// `modules="a b"`: boot modules listed in the image's `/etc/modules` (our extension).
    pub modules: Vec<String>,
    /// `disable_trigger=yes`: read by the kernel package trigger, kept for completeness.
    pub disable_trigger: bool,
    /// `apkovl_require="signed,encrypted"`: what every overlay must be (our extension, recorded
    /// in the image's boot policy).
    pub apkovl_require: Option<OverlayRequirement>,
    /// `apkovl_legacy_sig=yes`: also accept round-1 overlay signatures (our extension).
    pub apkovl_legacy_sig: Option<bool>,
    /// `apkovl_host=HOST`: the one host whose signed overlay the image boots (our extension).
    pub apkovl_host: Option<String>,
    /// `apkovl_not_before=SECONDS`: overlays signed before this time are refused (our extension).
    pub apkovl_not_before: Option<u64>,
    /// Keys we do not use (Alpine's `complevel_xz`, `complevel_lz4`, anything else): ignored.
    pub ignored: Vec<String>,
}

impl ConfFile {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = fs::read_to_string(path).at(path)?;
        Self::parse(&text, path)
    }

    /// Parses config text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, Error> {
        let mut conf = ConfFile::default();
        for (idx, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |reason: &str| Error::parse(path, idx + 1, reason);
            let Some((key, value)) = line.split_once('=') else {
                return Err(err(
                    "expected KEY=\"VALUE\" (the config is not executed as shell)",
                ));
            };
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(err(
                    "expected KEY=\"VALUE\" (the config is not executed as shell)",
                ));
            }
            let value = unquote(value).map_err(|r| err(&r))?;
            match key {
                "features" => conf.features = Some(words(&value)),
                "initfscomp" => conf.initfscomp = Some(value),
                "custom_files" => conf.custom_files = words(&value),
                "modules" => conf.modules = words(&value),
                "complevel_gzip" => {
                    let level = parse_level(&value).map_err(|r| err(&r))?;
                    conf.complevel_gzip = Some(level as u32);
                }
                "complevel_zstd" => {
                    conf.complevel_zstd = Some(parse_level(&value).map_err(|r| err(&r))?)
                }
                "disable_trigger" => {
                    conf.disable_trigger = matches!(value.as_str(), "yes" | "1" | "true")
                }
                "apkovl_require" => {
                    conf.apkovl_require = Some(parse_requirement(&value).map_err(|r| err(&r))?)
                }
                "apkovl_legacy_sig" => {
                    conf.apkovl_legacy_sig = Some(match value.as_str() {
                        "yes" => true,
                        "no" => false,
                        _ => return Err(err("apkovl_legacy_sig: expected yes or no")),
                    })
                }
                "apkovl_host" => {
                    if !bootspec::is_host_name(&value) {
                        return Err(err(
                            "apkovl_host: expected a host name (letters, digits, '-', '.')",
                        ));
                    }
                    conf.apkovl_host = Some(value)
                }
                "apkovl_not_before" => {
                    conf.apkovl_not_before = Some(parse_not_before(&value).map_err(|r| err(&r))?)
                }
                other => conf.ignored.push(other.to_string()),
            }
        }
        Ok(conf)
    }
}

/// A signing-time floor for overlays: seconds since 1970, with the message the command line and
/// the config file give for anything else.
pub fn parse_not_before(text: &str) -> Result<u64, String> {
    text.parse::<u64>()
        .ok()
        .filter(|_| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            format!("apkovl_not_before: \"{text}\" is not a number of seconds since 1970")
        })
}

/// An overlay requirement (`any`, `signed`, `encrypted`, `signed,encrypted`), with the message
/// the command line and the config file give for anything else.
pub fn parse_requirement(text: &str) -> Result<OverlayRequirement, String> {
    OverlayRequirement::parse(text)
        .ok_or_else(|| format!("\"{text}\": expected any, signed, encrypted or signed,encrypted"))
}

fn words(value: &str) -> Vec<String> {
    value.split_whitespace().map(str::to_string).collect()
}

/// `"-19"`, `-19` or `19` -> 19 (Alpine passes the value to the compressor as an option).
fn parse_level(value: &str) -> Result<i32, String> {
    let digits = value.trim().trim_start_matches('-');
    match digits.parse::<i32>() {
        Ok(level) if (1..=22).contains(&level) => Ok(level),
        _ => Err(format!(
            "compression level \"{value}\" is not a number between 1 and 22"
        )),
    }
}

/// Removes one level of shell quoting: `"a b"`, `'a b'` or a bare word. Inside double quotes,
/// `\"`, `\\`, `\$` and `` \` `` are unescaped; `$` and backquotes are refused because we do not
/// expand them and silently keeping them literal would surprise someone porting an Alpine config.
fn unquote(value: &str) -> Result<String, String> {
    let value = value.trim();
    if let Some(rest) = value.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        loop {
            match chars.next() {
                None => return Err("unterminated double quote".into()),
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some(c @ ('"' | '\\' | '$' | '`')) => out.push(c),
                    Some(c) => {
                        out.push('\\');
                        out.push(c);
                    }
                    None => return Err("unterminated double quote".into()),
                },
                Some('$' | '`') => return Err("shell expansion ($, `) is not supported".into()),
                Some(c) => out.push(c),
            }
        }
        let tail = chars.as_str().trim();
        if !tail.is_empty() && !tail.starts_with('#') {
            return Err(format!("unexpected text after the closing quote: {tail}"));
        }
        Ok(out)
    } else if let Some(rest) = value.strip_prefix('\'') {
        let Some(end) = rest.find('\'') else {
            return Err("unterminated single quote".into());
        };
        let tail = rest[end + 1..].trim();
        if !tail.is_empty() && !tail.starts_with('#') {
            return Err(format!("unexpected text after the closing quote: {tail}"));
        }
        Ok(rest[..end].to_string())
    } else {
        let word = value.split('#').next().unwrap_or("").trim();
        if word.contains(char::is_whitespace) {
            return Err("unquoted value with spaces (use KEY=\"a b\")".into());
        }
        if word.contains(['$', '`', '"', '\'', ';', '(', ')']) {
            return Err("shell syntax in an unquoted value is not supported".into());
        }
        Ok(word.to_string())
    }
}

/// Settings given on the command line (or by a library caller), each overriding the config file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `-b`: base directory (default `/`).
    pub basedir: Option<PathBuf>,
    /// `-F`: feature list.
    pub features: Option<Vec<String>>,
    /// `-C`: compression name.
    pub compression: Option<String>,
    /// `-f`: fstab file.
    pub fstab: Option<PathBuf>,
    /// `-i`: init to install as `/init`.
    pub init: Option<PathBuf>,
    /// `-n`: no modules and no firmware.
    pub no_modules: bool,
    /// `-P`: feature directories searched before the defaults, earlier wins.
    pub feature_dirs: Vec<PathBuf>,
    /// `--keys-dir`: package index keys (default `BASEDIR/etc/apk/keys` when it exists).
    pub keys_dirs: Vec<PathBuf>,
    /// `--ovl-keys-dir`: overlay signature keys.
    pub ovl_keys_dirs: Vec<PathBuf>,
    /// `-K`: also embed the build host's `/etc/apk/keys`.
    pub host_keys: bool,
    /// Kernel version (default: the running kernel).
    pub kernel_version: Option<String>,
    /// `SOURCE_DATE_EPOCH`: mtime of every entry (default 0).
    pub mtime: Option<u32>,
    /// `--ovl-require`: what every overlay must be.
    pub ovl_require: Option<OverlayRequirement>,
    /// `--ovl-legacy-sig` (`Some(true)`); `None` leaves it to the config file.
    pub ovl_legacy_sig: Option<bool>,
    /// `--ovl-host`: the one host whose signed overlay the image boots.
    pub ovl_host: Option<String>,
    /// `--ovl-not-before`: overlays signed before this time (seconds since 1970) are refused.
    pub ovl_not_before: Option<u64>,
    /// `--ovl-identity`: an age identity embedded to decrypt overlays encrypted to its recipient.
    pub ovl_identity: Option<PathBuf>,
    /// `--ca FILE`: certificate authorities added to the image's bundle.
    pub ca_files: Vec<PathBuf>,
}

/// Everything a build needs, with precedence already applied and defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Root the files, modules, firmware and keys are taken from.
    pub basedir: PathBuf,
    /// Kernel release (`lib/modules/<kernel_version>`).
    pub kernel_version: String,
    /// Enabled features, in the order given.
    pub features: Vec<String>,
    /// Features directories, searched in order (first hit wins).
    pub feature_dirs: Vec<PathBuf>,
    /// The program installed as `/init`.
    pub init: PathBuf,
    /// fstab to embed (None: [`DEFAULT_FSTAB`]).
    pub fstab: Option<PathBuf>,
    /// Archive compression.
    pub compression: Compression,
    /// Leave out kernel modules and firmware.
    pub no_modules: bool,
    /// Directories whose files go to `etc/apk/keys/`.
    pub keys_dirs: Vec<PathBuf>,
    /// Directories whose files go to `etc/apkovl/keys/`.
    pub ovl_keys_dirs: Vec<PathBuf>,
    /// Extra files copied from the base directory (absolute paths, no ELF walk).
    pub custom_files: Vec<String>,
    /// Boot modules written to `/etc/modules` (and included with their dependencies).
    pub boot_modules: Vec<String>,
    /// Modification time of every archive entry.
    pub mtime: u32,
    /// The boot policy written to `etc/boot-policy` (`sealed` stays false here: only a signed
    /// unified kernel image seals a boot, and the tool that builds one sets it).
    pub policy: BootPolicy,
    /// An age identity embedded at `etc/apkovl/identity` (mode 0600).
    pub ovl_identity: Option<PathBuf>,
    /// PEM files whose certificates are appended to `etc/ssl/certs/ca-certificates.crt`, the
    /// bundle the init checks HTTPS boot servers against.
    pub ca_files: Vec<PathBuf>,
}

impl Config {
    /// Applies precedence: `cli` (command line), then `file` (mkinitfs.conf), then defaults.
    /// `default_init` is used when neither names an init (the binary passes `<exe dir>/init`),
    /// `default_feature_dirs` are searched after `cli.feature_dirs`.
    pub fn resolve(
        file: &ConfFile,
        cli: &Overrides,
        default_init: Option<PathBuf>,
        default_feature_dirs: Vec<PathBuf>,
    ) -> Result<Config, Error> {
        let basedir = cli.basedir.clone().unwrap_or_else(|| PathBuf::from("/"));
        let kernel_version = match &cli.kernel_version {
            Some(k) => k.clone(),
            None => running_kernel()?,
        };
        let features = cli
            .features
            .clone()
            .or_else(|| file.features.clone())
            .unwrap_or_else(|| DEFAULT_FEATURES.iter().map(|s| s.to_string()).collect());
        let comp_name = cli
            .compression
            .as_deref()
            .or(file.initfscomp.as_deref())
            .unwrap_or("zstd");
        let compression =
            Compression::from_name(comp_name, file.complevel_gzip, file.complevel_zstd)?;
        let init = cli
            .init
            .clone()
            .or(default_init)
            .ok_or_else(|| Error::Setting {
                key: "init".into(),
                reason: "no init given (-i) and none found next to the mkinitfs binary".into(),
            })?;
        let mut feature_dirs = cli.feature_dirs.clone();
        feature_dirs.extend(default_feature_dirs);
        let mut keys_dirs = cli.keys_dirs.clone();
        if keys_dirs.is_empty() {
            let default = basedir.join("etc/apk/keys");
            if default.is_dir() {
                keys_dirs.push(default);
            }
        }
        if cli.host_keys {
            let host = PathBuf::from("/etc/apk/keys");
            if host.is_dir() && !keys_dirs.contains(&host) {
                keys_dirs.push(host);
            }
        }
        Ok(Config {
            basedir,
            kernel_version,
            features,
            feature_dirs,
            init,
            fstab: cli.fstab.clone(),
            compression,
            no_modules: cli.no_modules,
            keys_dirs,
            ovl_keys_dirs: cli.ovl_keys_dirs.clone(),
            custom_files: file.custom_files.clone(),
            boot_modules: file.modules.clone(),
            mtime: cli.mtime.unwrap_or(0),
            policy: BootPolicy {
                apkovl_require: cli.ovl_require.or(file.apkovl_require).unwrap_or_default(),
                apkovl_legacy_sig: cli
                    .ovl_legacy_sig
                    .or(file.apkovl_legacy_sig)
                    .unwrap_or(false),
                sealed: false,
                apkovl_host: cli.ovl_host.clone().or_else(|| file.apkovl_host.clone()),
                apkovl_not_before: cli.ovl_not_before.or(file.apkovl_not_before),
            },
            ovl_identity: cli.ovl_identity.clone(),
            ca_files: cli.ca_files.clone(),
        })
    }

    /// Alpine's default output name: `<basedir>/boot/initramfs-<flavor>`, the flavor being the
    /// text after the last `-` of the kernel version (`vanilla` if none, `generic` with `-n`).
    pub fn default_output(&self) -> PathBuf {
        let flavor = if self.no_modules {
            "generic"
        } else {
            match self.kernel_version.rsplit_once('-') {
                Some((_, f)) if !f.is_empty() => f,
                _ => "vanilla",
            }
        };
        self.basedir
            .join("boot")
            .join(format!("initramfs-{flavor}"))
    }
}

/// The running kernel's release, the default kernel version.
fn running_kernel() -> Result<String, Error> {
    let path = Path::new("/proc/sys/kernel/osrelease");
    Ok(fs::read_to_string(path).at(path)?.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfFile, Error> {
        ConfFile::parse(text, Path::new("mkinitfs.conf"))
    }

    #[test]
    fn parses_alpine_default_config() {
        let conf = parse(
            "features=\"ata base cdrom ext4 keymap kms mmc nvme raid scsi usb virtio\"\n\
             # comment\n\n disable_trigger=yes\ninitfscomp='gzip'\ncomplevel_zstd=\"-19\"\n\
             complevel_gzip=-6\ncustom_files=\"/etc/a /etc/b\"\nmodules=\"e1000 virtio_net\"\n\
             complevel_xz=\"-9\"\n",
        )
        .unwrap();
        assert_eq!(conf.features.as_ref().unwrap().len(), 12);
        assert_eq!(conf.features.as_ref().unwrap()[0], "ata");
        assert!(conf.disable_trigger);
        assert_eq!(conf.initfscomp.as_deref(), Some("gzip"));
        assert_eq!(conf.complevel_zstd, Some(19));
        assert_eq!(conf.complevel_gzip, Some(6));
        assert_eq!(conf.custom_files, vec!["/etc/a", "/etc/b"]);
        assert_eq!(conf.modules, vec!["e1000", "virtio_net"]);
        assert_eq!(conf.ignored, vec!["complevel_xz"]);
    }

    #[test]
    fn policy_keys_and_their_precedence() {
        let file = parse("apkovl_require=\"encrypted,signed\"\napkovl_legacy_sig=yes\n").unwrap();
        assert_eq!(
            file.apkovl_require,
            Some(OverlayRequirement {
                signed: true,
                encrypted: true
            })
        );
        let cfg = Config::resolve(&file, &cli(), Some("/i".into()), vec![]).unwrap();
        assert_eq!(cfg.policy.apkovl_require.to_string(), "signed,encrypted");
        assert!(cfg.policy.apkovl_legacy_sig && !cfg.policy.sealed);
        let mut over = cli();
        over.ovl_require = Some(OverlayRequirement::SIGNED);
        over.ovl_legacy_sig = Some(false);
        let cfg = Config::resolve(&file, &over, Some("/i".into()), vec![]).unwrap();
        assert_eq!(cfg.policy.apkovl_require, OverlayRequirement::SIGNED);
        assert!(!cfg.policy.apkovl_legacy_sig);
        let cfg = Config::resolve(&ConfFile::default(), &cli(), Some("/i".into()), vec![]).unwrap();
        assert_eq!(cfg.policy, BootPolicy::default());
        for (bad, why) in [
            (
                "apkovl_require=off",
                "line 1: \"off\": expected any, signed, encrypted or signed,encrypted",
            ),
            (
                "apkovl_legacy_sig=1",
                "line 1: apkovl_legacy_sig: expected yes or no",
            ),
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.ends_with(why), "{bad}: {err}");
        }
    }

    #[test]
    fn refuses_shell() {
        for bad in [
            "features=\"$(rm -rf /)\"",
            "features=`id`",
            "if true; then",
            ". /etc/other.conf",
            "features=a b",
            "features=\"abc",
            "features='abc",
            "features=\"a\" extra",
            "complevel_zstd=fast",
            "complevel_gzip=\"-99\"",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(
                matches!(err, Error::Parse { line: 1, .. }),
                "{bad}: unexpected {err:?}"
            );
        }
    }

    #[test]
    fn unescapes_double_quotes() {
        let conf = parse(r#"custom_files="/a\"b /c\\d" # trailing"#).unwrap();
        assert_eq!(conf.custom_files, vec!["/a\"b", "/c\\d"]);
    }

    fn cli() -> Overrides {
        Overrides {
            kernel_version: Some("6.1.0-56-amd64".into()),
            basedir: Some(PathBuf::from("/nonexistent-base")),
            ..Overrides::default()
        }
    }

    #[test]
    fn defaults_apply_without_file_or_cli() {
        let cfg =
            Config::resolve(&ConfFile::default(), &cli(), Some("/x/init".into()), vec![]).unwrap();
        assert_eq!(cfg.features, DEFAULT_FEATURES);
        assert_eq!(cfg.compression, Compression::Zstd(DEFAULT_ZSTD_LEVEL));
        assert_eq!(cfg.init, PathBuf::from("/x/init"));
        assert_eq!(cfg.mtime, 0);
        assert!(cfg.keys_dirs.is_empty());
        assert_eq!(
            cfg.default_output(),
            PathBuf::from("/nonexistent-base/boot/initramfs-amd64")
        );
    }

    #[test]
    fn file_overrides_defaults_and_cli_overrides_file() {
        let file = parse("features=\"base ext4\"\ninitfscomp=gzip\ncomplevel_gzip=-3\n").unwrap();
        let cfg = Config::resolve(&file, &cli(), Some("/x/init".into()), vec![]).unwrap();
        assert_eq!(cfg.features, vec!["base", "ext4"]);
        assert_eq!(cfg.compression, Compression::Gzip(3));

        let mut over = cli();
        over.features = Some(vec!["vfat".into()]);
        over.compression = Some("none".into());
        over.init = Some("/my/init".into());
        over.feature_dirs = vec!["/p1".into()];
        let cfg = Config::resolve(&file, &over, Some("/x/init".into()), vec!["/d".into()]).unwrap();
        assert_eq!(cfg.features, vec!["vfat"]);
        assert_eq!(cfg.compression, Compression::None);
        assert_eq!(cfg.init, PathBuf::from("/my/init"));
        assert_eq!(
            cfg.feature_dirs,
            vec![PathBuf::from("/p1"), PathBuf::from("/d")]
        );
    }

    #[test]
    fn cli_compression_uses_file_level() {
        let file = parse("initfscomp=gzip\ncomplevel_zstd=-3\n").unwrap();
        let mut over = cli();
        over.compression = Some("zstd".into());
        let cfg = Config::resolve(&file, &over, Some("/i".into()), vec![]).unwrap();
        assert_eq!(cfg.compression, Compression::Zstd(3));
    }

    #[test]
    fn unknown_compression_is_an_error() {
        let mut over = cli();
        over.compression = Some("lz4".into());
        let err =
            Config::resolve(&ConfFile::default(), &over, Some("/i".into()), vec![]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "initfscomp: compression \"lz4\" not supported (gzip, zstd, none)"
        );
    }

    #[test]
    fn missing_init_is_an_error() {
        let err = Config::resolve(&ConfFile::default(), &cli(), None, vec![]).unwrap_err();
        assert!(matches!(err, Error::Setting { .. }));
    }

    #[test]
    fn default_output_flavors() {
        let mut cfg =
            Config::resolve(&ConfFile::default(), &cli(), Some("/i".into()), vec![]).unwrap();
        cfg.kernel_version = "6.6.1".into();
        assert!(cfg.default_output().ends_with("boot/initramfs-vanilla"));
        cfg.no_modules = true;
        assert!(cfg.default_output().ends_with("boot/initramfs-generic"));
    }
}
