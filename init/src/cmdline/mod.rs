//! `/proc/cmdline` → [`BootConfig`], with Alpine's option rules and the kernel's quoting.
//!
//! Words are split exactly as the kernel's `next_arg()` does ([`words`]), so
//! `ssh_key="ssh-ed25519 AAAA… me@host"` carries a literal key, which upstream's whitespace-only
//! split cannot (docs/boot.md, "Kernel command line"); option values are typed in [`values`].
//! Then Alpine's rules: for a known option `X`, `X=V` sets V (everything after the first `=`),
//! bare `X` sets `yes`, `noX` sets `no`; later words win; unknown words are ignored (they belong to
//! the kernel or to other programs); `s`, `single`, `1` mean single mode; every `console=` is kept
//! in order and the last one is the switch_root console. Options come from `/proc/cmdline` only,
//! never from init's environment (upstream's leak). Parsing never fails: a bad value becomes a
//! warning in [`BootConfig::warnings`] and the documented fallback.
pub mod net;
pub mod values;
pub mod words;

pub use net::{is_url, IpSpec, MacAddr, StaticIp};
pub use values::{
    ApkovlSpec, ConsoleSpec, DeviceSpec, ModloopSpec, ModloopVerify, PanicAction, PanicPolicy,
    VerifyPolicy,
};
pub use words::{split_kernel_words, Param};

use std::collections::BTreeMap;
use std::path::PathBuf;

use bootspec::OverlayRequirement;

/// Default netlink receive buffer (nlplug-findfs's final value after its overflow bugs).
pub const DEFAULT_UEVENT_BUF_SIZE: usize = 4 * 1024 * 1024;

/// The boot options, typed. Built only by [`BootConfig::from_cmdline`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootConfig {
    /// `alpine_dev=`: only this device is used as boot medium (pins discovery, docs/boot.md "Media").
    pub alpine_dev: Option<DeviceSpec>,
    /// `modules=`: extra modules to load early.
    pub modules: Vec<String>,
    /// `apkovl=`.
    pub apkovl: Option<ApkovlSpec>,
    /// `pkgs=`: extra packages (commas and spaces separate).
    pub pkgs: Vec<String>,
    /// `alpine_repo=`: repository paths replacing discovery (`auto` = unset).
    pub alpine_repo: Vec<String>,
    /// `ssh_key=`: a literal public key (or a URL, left to the `firstboot` service).
    pub ssh_key: Option<String>,
    /// `hostname=`: written to `/etc/hostname` unless the overlay has one.
    pub hostname: Option<String>,
    /// `s`, `single`, `1`: rescue shell before switch_root.
    pub single: bool,
    /// `debug_init`: verbose logging.
    pub debug_init: bool,
    /// `quiet`: less console output, `quiet` for the installer.
    pub quiet: bool,
    /// `init=` (default `/sbin/init`).
    pub init: String,
    /// `init_args=`, split on whitespace.
    pub init_args: Vec<String>,
    /// `rootflags=`: extra tmpfs options.
    pub rootflags: Option<String>,
    /// `root_size=` (deprecated): tmpfs `size=`.
    pub root_size: Option<String>,
    /// `keep_apk_new`: install without `clean_protected`.
    pub keep_apk_new: bool,
    /// `usbdelay=N`: seconds added to the media wait (see `media::WaitPolicy`).
    pub usbdelay: Option<u32>,
    /// `blacklist=`: modules never loaded through an alias.
    pub blacklist: Vec<String>,
    /// `panic=`.
    pub panic: PanicPolicy,
    /// Every `console=`, in order; the last one is the switch_root console.
    pub consoles: Vec<ConsoleSpec>,
    /// `apkovl_verify=`; `None` = default (required when overlay keys are embedded, else off).
    /// It can only tighten the image's policy ([`crate::plan::overlay_policy`]).
    pub apkovl_verify: Option<VerifyPolicy>,
    /// `apkovl_require=any|signed|encrypted|signed,encrypted`: added to the image's
    /// requirement (never removes from it).
    pub apkovl_require: Option<OverlayRequirement>,
    /// `modloop=`: `None` = search `/` and `/boot/` of the boot media (Alpine's default).
    pub modloop: Option<ModloopSpec>,
    /// `modloop_verify=`.
    pub modloop_verify: ModloopVerify,
    /// `uevent_buf_size=` in bytes.
    pub uevent_buf_size: usize,
    /// `root=`: root-device mode, which this init does not implement (reported as an error).
    pub root: Option<String>,
    /// `ip=`: `None` when absent (networking then only comes with a URL, as DHCP).
    pub ip: Option<IpSpec>,
    /// `BOOTIF=`: the MAC address of the interface the machine network-booted from.
    pub bootif: Option<MacAddr>,
    /// Problems found while parsing, reported once logging is up.
    pub warnings: Vec<String>,
}

impl Default for BootConfig {
    fn default() -> Self {
        Self {
            alpine_dev: None,
            modules: Vec::new(),
            apkovl: None,
            pkgs: Vec::new(),
            alpine_repo: Vec::new(),
            ssh_key: None,
            hostname: None,
            single: false,
            debug_init: false,
            quiet: false,
            init: "/sbin/init".to_string(),
            init_args: Vec::new(),
            rootflags: None,
            root_size: None,
            keep_apk_new: false,
            usbdelay: None,
            blacklist: Vec::new(),
            panic: PanicPolicy::default(),
            consoles: Vec::new(),
            apkovl_verify: None,
            apkovl_require: None,
            modloop: None,
            modloop_verify: ModloopVerify::Yes,
            uevent_buf_size: DEFAULT_UEVENT_BUF_SIZE,
            root: None,
            ip: None,
            bootif: None,
            warnings: Vec::new(),
        }
    }
}

/// Option names recognised with the `X=V` / `X` / `noX` rules (Alpine's list plus ours; options
/// Alpine knows but this init does not implement are recognised so they can be reported).
const KNOWN: &[&str] = &[
    "BOOTIF",
    "alpine_dev",
    "alpine_repo",
    "apkovl",
    "apkovl_require",
    "apkovl_verify",
    "blacklist",
    "debug_init",
    "hostname",
    "init",
    "init_args",
    "ip",
    "keep_apk_new",
    "modloop",
    "modloop_verify",
    "modules",
    "panic",
    "pkgs",
    "quiet",
    "root",
    "root_size",
    "rootflags",
    "ssh_key",
    "uevent_buf_size",
    "usbdelay",
    // Known to Alpine, not implemented here (no NBD, WireGuard or LUKS): warned about.
    "nbd",
    "wireguard",
    "cryptroot",
    "overlaytmpfs",
    "chart",
    "ds",
    "tinycloud",
];

const UNSUPPORTED: &[&str] = &[
    "nbd",
    "wireguard",
    "cryptroot",
    "overlaytmpfs",
    "chart",
    "ds",
    "tinycloud",
];

fn list(value: &str) -> Vec<String> {
    value
        .split([',', ' ', '\t'])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn yes(value: &str) -> bool {
    // Alpine tests `= yes` for flags; accept the usual spellings of true as well.
    matches!(value, "yes" | "1" | "y" | "true")
}

impl BootConfig {
    /// Parses a whole command line (the contents of `/proc/cmdline`).
    pub fn from_cmdline(line: &str) -> Self {
        let mut cfg = Self::default();
        let mut opts: BTreeMap<&'static str, String> = BTreeMap::new();
        for p in split_kernel_words(line) {
            match (p.name.as_str(), p.value.as_deref()) {
                ("s" | "single" | "1", None) => {
                    cfg.single = true;
                    continue;
                }
                ("console", Some(v)) => {
                    let (name, options) = match v.split_once(',') {
                        Some((n, o)) => (n, Some(o.to_string())),
                        None => (v, None),
                    };
                    let name = name.strip_prefix("/dev/").unwrap_or(name);
                    if !name.is_empty() {
                        cfg.consoles.push(ConsoleSpec {
                            name: name.to_string(),
                            options,
                        });
                    }
                    continue;
                }
                _ => {}
            }
            for &known in KNOWN {
                match &p.value {
                    Some(v) if p.name == known => {
                        opts.insert(known, v.clone());
                    }
                    None if p.name == known => {
                        opts.insert(known, "yes".to_string());
                    }
                    None if p.name.strip_prefix("no") == Some(known) => {
                        opts.insert(known, "no".to_string());
                    }
                    _ => {}
                }
            }
        }
        cfg.apply(opts);
        cfg
    }

    fn apply(&mut self, opts: BTreeMap<&'static str, String>) {
        for (name, value) in opts {
            let v = value.as_str();
            match name {
                "BOOTIF" => match MacAddr::parse_bootif(v) {
                    Some(m) => self.bootif = Some(m),
                    None => self.warn(format!("BOOTIF={v}: expected 01-aa-bb-cc-dd-ee-ff, ignored")),
                },
                "alpine_dev" => match DeviceSpec::parse(v) {
                    Some(d) if v != "yes" && v != "no" => self.alpine_dev = Some(d),
                    _ => self.warn(format!("alpine_dev={v}: not a device (NAME, /dev/NAME, LABEL=, UUID=), ignored")),
                },
                // `auto` (and `no`) leave discovery in charge.
                "alpine_repo" if v != "auto" && v != "no" => self.alpine_repo = list(v),
                "apkovl" if v != "no" => self.apkovl = Some(ApkovlSpec::parse(v)),
                "apkovl_verify" => {
                    self.apkovl_verify = Some(match v {
                        "required" | "yes" => VerifyPolicy::Required,
                        "optional" => VerifyPolicy::Optional,
                        "off" | "no" => VerifyPolicy::Off,
                        other => {
                            // Fail closed: a typo must not switch verification off.
                            self.warn(format!(
                                "apkovl_verify={other}: expected required|optional|off, using required"
                            ));
                            VerifyPolicy::Required
                        }
                    })
                }
                "apkovl_require" => {
                    self.apkovl_require = Some(OverlayRequirement::parse(v).unwrap_or_else(|| {
                        // Fail closed: a typo must not weaken what was asked for.
                        self.warn(format!(
                            "apkovl_require={v}: expected any|signed|encrypted|signed,encrypted, \
                             using signed,encrypted"
                        ));
                        OverlayRequirement::SIGNED.union(OverlayRequirement::ENCRYPTED)
                    }))
                }
                "blacklist" => self.blacklist = list(v),
                "debug_init" => self.debug_init = yes(v),
                "hostname" => {
                    if valid_hostname(v) {
                        self.hostname = Some(v.to_string());
                    } else {
                        self.warn(format!("hostname={v}: not a valid host name, ignored"));
                    }
                }
                "init" => {
                    if v.starts_with('/') {
                        self.init = v.to_string();
                    } else {
                        self.warn(format!("init={v}: not an absolute path, using /sbin/init"));
                    }
                }
                "init_args" => self.init_args = v.split_whitespace().map(str::to_string).collect(),
                "ip" => match IpSpec::parse(v) {
                    Ok(ip) => self.ip = Some(ip),
                    Err(msg) => {
                        // The network was asked for: DHCP is the documented fallback.
                        self.warn(format!("{msg}; using ip=dhcp"));
                        self.ip = Some(IpSpec::dhcp());
                    }
                },
                "keep_apk_new" => self.keep_apk_new = yes(v),
                // A bare `modloop` (or `nomodloop`) means the default search.
                "modloop" => self.modloop = (v != "yes" && v != "no").then(|| ModloopSpec::parse(v)),
                "modloop_verify" => {
                    self.modloop_verify = match v {
                        "required" => ModloopVerify::Required,
                        "yes" => ModloopVerify::Yes,
                        "no" => ModloopVerify::No,
                        other => {
                            // Fail closed: a typo must not switch verification off.
                            self.warn(format!(
                                "modloop_verify={other}: expected required|yes|no, using required"
                            ));
                            ModloopVerify::Required
                        }
                    }
                }
                "modules" => self.modules = list(v),
                "panic" => match PanicPolicy::parse(v) {
                    Ok(p) => self.panic = p,
                    Err(msg) => {
                        self.panic = PanicPolicy { shell_allowed: false, action: PanicAction::Halt };
                        self.warn(msg);
                    }
                },
                "pkgs" => self.pkgs = list(v),
                "quiet" => self.quiet = yes(v),
                "root" => self.root = (v != "no").then(|| v.to_string()),
                "root_size" => {
                    self.warn("the boot option root_size is deprecated. Use rootflags instead".to_string());
                    self.root_size = Some(v.to_string());
                }
                "rootflags" => self.rootflags = Some(v.to_string()),
                "ssh_key" => self.ssh_key = (v != "no" && v != "yes" && !v.is_empty()).then(|| v.to_string()),
                "uevent_buf_size" => match v.parse::<usize>() {
                    Ok(n) if n >= 64 * 1024 => self.uevent_buf_size = n,
                    _ => self.warn(format!(
                        "uevent_buf_size={v}: expected a number of bytes >= 65536, using {DEFAULT_UEVENT_BUF_SIZE}"
                    )),
                },
                "usbdelay" => match v.parse::<u32>() {
                    Ok(n) if n <= 3600 => self.usbdelay = Some(n),
                    _ => self.warn(format!("usbdelay={v}: expected seconds (0-3600), ignored")),
                },
                other if UNSUPPORTED.contains(&other) => {
                    self.warn(format!("{other}={v}: not supported by this init (no NBD, WireGuard, LUKS or cloud provisioning), ignored"))
                }
                _ => {}
            }
        }
    }

    fn warn(&mut self, msg: String) {
        self.warnings.push(msg);
    }

    /// The switch_root console (`/dev/<last console=>`, default `/dev/console`).
    pub fn console_device(&self) -> PathBuf {
        match self.consoles.last() {
            Some(c) => PathBuf::from("/dev").join(&c.name),
            None => PathBuf::from("/dev/console"),
        }
    }

    /// The effective options as `name=value` lines, printed with `debug_init`.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let mut line = |k: &str, v: String| {
            out.push_str(&format!("  {k}={v}\n"));
        };
        line(
            "alpine_dev",
            self.alpine_dev
                .as_ref()
                .map(|d| d.to_string())
                .unwrap_or_default(),
        );
        line("alpine_repo", self.alpine_repo.join(","));
        line(
            "apkovl",
            self.apkovl
                .as_ref()
                .map(|a| format!("{a:?}"))
                .unwrap_or_default(),
        );
        line(
            "apkovl_verify",
            self.apkovl_verify
                .map(|v| v.to_string())
                .unwrap_or_else(|| "default".into()),
        );
        line(
            "apkovl_require",
            self.apkovl_require
                .map(|r| r.to_string())
                .unwrap_or_else(|| "default".into()),
        );
        line(
            "modloop",
            match &self.modloop {
                None => "auto".into(),
                Some(ModloopSpec::None) => "none".into(),
                Some(ModloopSpec::Path(p) | ModloopSpec::Url(p)) => p.clone(),
            },
        );
        line("modloop_verify", self.modloop_verify.to_string());
        line(
            "ip",
            match &self.ip {
                None => String::new(),
                Some(ip) => format!("{ip:?}"),
            },
        );
        line(
            "BOOTIF",
            self.bootif.map(|m| m.to_string()).unwrap_or_default(),
        );
        line("modules", self.modules.join(","));
        line("pkgs", self.pkgs.join(","));
        line("blacklist", self.blacklist.join(","));
        line("init", self.init.clone());
        line("init_args", self.init_args.join(" "));
        line("rootflags", self.rootflags.clone().unwrap_or_default());
        line("keep_apk_new", self.keep_apk_new.to_string());
        line(
            "usbdelay",
            self.usbdelay.map(|u| u.to_string()).unwrap_or_default(),
        );
        line("panic", format!("{:?}", self.panic));
        line("single", self.single.to_string());
        line(
            "console",
            self.consoles
                .iter()
                .map(|c| c.name.clone())
                .collect::<Vec<_>>()
                .join(","),
        );
        out
    }
}

/// RFC 1123 host name (labels of letters, digits and `-`, dots between, at most 253 bytes).
pub fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn non_utf8_garbage_does_not_panic() {
        let line = String::from_utf8_lossy(b"a=\xff\xfe \"\" \"=\" b=\"\x00\"").into_owned();
        let cfg = BootConfig::from_cmdline(&line);
        assert_eq!(cfg.init, "/sbin/init");
        let _ = split_kernel_words(&line);
        let _ = BootConfig::from_cmdline("\"\"\"\"\" = == \"=\"= noo no nos");
    }

    #[test]
    fn alpine_rules_value_bare_and_no() {
        let c = BootConfig::from_cmdline("quiet debug_init keep_apk_new");
        assert!(c.quiet && c.debug_init && c.keep_apk_new);
        let c = BootConfig::from_cmdline("quiet noquiet debug_init=yes nodebug_init");
        assert!(!c.quiet && !c.debug_init);
        let c = BootConfig::from_cmdline("keep_apk_new=no");
        assert!(!c.keep_apk_new);
    }

    #[test]
    fn modloop_options() {
        let c = BootConfig::from_cmdline("quiet");
        assert_eq!((c.modloop, c.modloop_verify), (None, ModloopVerify::Yes));
        let c = BootConfig::from_cmdline("modloop=/boot/modloop-lts modloop_verify=required");
        assert_eq!(
            c.modloop,
            Some(ModloopSpec::Path("/boot/modloop-lts".into()))
        );
        assert_eq!(c.modloop_verify, ModloopVerify::Required);
        let c = BootConfig::from_cmdline("modloop=none nomodloop_verify");
        assert_eq!(
            (c.modloop, c.modloop_verify),
            (Some(ModloopSpec::None), ModloopVerify::No)
        );
        let c = BootConfig::from_cmdline("modloop=https://10.0.2.2:8080/modloop-lts");
        assert_eq!(
            c.modloop,
            Some(ModloopSpec::Url("https://10.0.2.2:8080/modloop-lts".into()))
        );
        // A typo fails closed.
        let c = BootConfig::from_cmdline("modloop_verify=nope");
        assert_eq!(c.modloop_verify, ModloopVerify::Required);
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn later_words_win() {
        let c = BootConfig::from_cmdline("pkgs=a,b modules=x pkgs=c init=/bin/a init=/bin/b");
        assert_eq!(c.pkgs, vec!["c"]);
        assert_eq!(c.init, "/bin/b");
        assert_eq!(c.modules, vec!["x"]);
    }

    #[test]
    fn unknown_parameters_are_ignored() {
        let c = BootConfig::from_cmdline(
            "BOOT_IMAGE=/boot/vmlinuz foo=bar nofoo ro rw modloop=/x console=tty0",
        );
        assert_eq!(
            c,
            BootConfig {
                consoles: c.consoles.clone(),
                modloop: Some(ModloopSpec::Path("/x".into())),
                ..BootConfig::default()
            }
        );
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn single_mode_words() {
        for w in ["s", "single", "1"] {
            assert!(
                BootConfig::from_cmdline(&format!("quiet {w}")).single,
                "{w}"
            );
        }
        assert!(!BootConfig::from_cmdline("single=1 s=0").single);
    }

    #[test]
    fn consoles_keep_order_and_last_wins() {
        let c = BootConfig::from_cmdline("console=tty0 console=ttyS0,115200n8 console=/dev/hvc0");
        assert_eq!(c.consoles.len(), 3);
        assert_eq!(
            c.consoles[1],
            ConsoleSpec {
                name: "ttyS0".into(),
                options: Some("115200n8".into())
            }
        );
        assert_eq!(c.console_device(), PathBuf::from("/dev/hvc0"));
        assert_eq!(
            BootConfig::default().console_device(),
            PathBuf::from("/dev/console")
        );
    }

    #[test]
    fn lists_split_on_commas_and_spaces() {
        let c = BootConfig::from_cmdline(
            r#"pkgs="vim, htop,,curl" blacklist=pcspkr,floppy modules=sd-mod,usb-storage"#,
        );
        assert_eq!(c.pkgs, vec!["vim", "htop", "curl"]);
        assert_eq!(c.blacklist, vec!["pcspkr", "floppy"]);
        assert_eq!(c.modules, vec!["sd-mod", "usb-storage"]);
    }

    #[test]
    fn ssh_key_literal_needs_quotes() {
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG me@laptop";
        let c = BootConfig::from_cmdline(&format!("ssh_key=\"{key}\" hostname=fw1"));
        assert_eq!(c.ssh_key.as_deref(), Some(key));
        assert_eq!(c.hostname.as_deref(), Some("fw1"));
        // Without quotes only the first word is the value (the rest are unknown words).
        let c = BootConfig::from_cmdline(&format!("ssh_key={key}"));
        assert_eq!(c.ssh_key.as_deref(), Some("ssh-ed25519"));
        assert_eq!(BootConfig::from_cmdline("ssh_key").ssh_key, None);
    }

    #[test]
    fn hostname_validation() {
        assert!(valid_hostname("fw-1.example.org"));
        for bad in ["", "-x", "x-", "a..b", "a b", "x/y", &"a".repeat(64)] {
            assert!(!valid_hostname(bad), "{bad}");
        }
        let c = BootConfig::from_cmdline("hostname=../../etc");
        assert_eq!(c.hostname, None);
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn verify_policy_values() {
        let p = |s: &str| BootConfig::from_cmdline(s).apkovl_verify;
        assert_eq!(p(""), None);
        assert_eq!(p("apkovl_verify=required"), Some(VerifyPolicy::Required));
        assert_eq!(p("apkovl_verify=optional"), Some(VerifyPolicy::Optional));
        assert_eq!(p("apkovl_verify=off"), Some(VerifyPolicy::Off));
        assert_eq!(p("noapkovl_verify"), Some(VerifyPolicy::Off));
        assert_eq!(p("apkovl_verify"), Some(VerifyPolicy::Required));
        let c = BootConfig::from_cmdline("apkovl_verify=of");
        assert_eq!(
            c.apkovl_verify,
            Some(VerifyPolicy::Required),
            "a typo fails closed"
        );
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn require_values() {
        let p = |s: &str| BootConfig::from_cmdline(s).apkovl_require;
        assert_eq!(p(""), None);
        assert_eq!(
            p("apkovl_require=encrypted"),
            Some(OverlayRequirement::ENCRYPTED)
        );
        assert_eq!(
            p("apkovl_require=encrypted,signed"),
            Some(OverlayRequirement {
                signed: true,
                encrypted: true
            })
        );
        assert_eq!(p("apkovl_require=any"), Some(OverlayRequirement::ANY));
        let c = BootConfig::from_cmdline("apkovl_require=encrytped");
        assert_eq!(
            c.apkovl_require,
            Some(OverlayRequirement {
                signed: true,
                encrypted: true
            }),
            "a typo fails closed"
        );
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn panic_values() {
        let p = |s: &str| BootConfig::from_cmdline(s).panic;
        assert_eq!(
            p(""),
            PanicPolicy {
                shell_allowed: true,
                action: PanicAction::Halt
            }
        );
        assert_eq!(
            p("nopanic"),
            PanicPolicy {
                shell_allowed: true,
                action: PanicAction::Halt
            }
        );
        assert_eq!(
            p("panic=no"),
            PanicPolicy {
                shell_allowed: true,
                action: PanicAction::Halt
            }
        );
        assert_eq!(
            p("panic"),
            PanicPolicy {
                shell_allowed: false,
                action: PanicAction::Halt
            }
        );
        assert_eq!(
            p("panic=0"),
            PanicPolicy {
                shell_allowed: false,
                action: PanicAction::Halt
            }
        );
        assert_eq!(
            p("panic=10"),
            PanicPolicy {
                shell_allowed: false,
                action: PanicAction::RebootAfter(Duration::from_secs(10))
            }
        );
        assert_eq!(
            p("panic=-1"),
            PanicPolicy {
                shell_allowed: false,
                action: PanicAction::RebootNow
            }
        );
        let c = BootConfig::from_cmdline("panic=soon");
        assert_eq!(
            c.panic,
            PanicPolicy {
                shell_allowed: false,
                action: PanicAction::Halt
            }
        );
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn numbers_and_deprecations() {
        let c = BootConfig::from_cmdline(
            "usbdelay=3 uevent_buf_size=8388608 root_size=512M rootflags=nr_inodes=1000",
        );
        assert_eq!(c.usbdelay, Some(3));
        assert_eq!(c.uevent_buf_size, 8 << 20);
        assert_eq!(c.root_size.as_deref(), Some("512M"));
        assert_eq!(c.rootflags.as_deref(), Some("nr_inodes=1000"));
        assert!(c
            .warnings
            .iter()
            .any(|w| w.contains("root_size is deprecated")));
        let c = BootConfig::from_cmdline("usbdelay=x uevent_buf_size=12");
        assert_eq!(c.usbdelay, None);
        assert_eq!(c.uevent_buf_size, DEFAULT_UEVENT_BUF_SIZE);
        assert_eq!(c.warnings.len(), 2);
    }

    #[test]
    fn init_and_args() {
        let c = BootConfig::from_cmdline(r#"init=/bin/sh init_args="-c 'echo hi'""#);
        assert_eq!(c.init, "/bin/sh");
        assert_eq!(c.init_args, vec!["-c", "'echo", "hi'"]);
        let c = BootConfig::from_cmdline("init=sbin/init");
        assert_eq!(c.init, "/sbin/init");
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn alpine_repo_auto_and_lists() {
        assert!(BootConfig::from_cmdline("alpine_repo=auto")
            .alpine_repo
            .is_empty());
        assert_eq!(
            BootConfig::from_cmdline("alpine_repo=/media/vda/apks,/media/vdb/apks").alpine_repo,
            vec!["/media/vda/apks", "/media/vdb/apks"]
        );
    }

    #[test]
    fn root_mode_and_unsupported_options_are_recorded() {
        let c = BootConfig::from_cmdline("root=/dev/sda2 nbd=10.0.0.1:9000");
        assert_eq!(c.root.as_deref(), Some("/dev/sda2"));
        assert!(c
            .warnings
            .iter()
            .any(|w| w.starts_with("nbd=10.0.0.1:9000")));
    }

    #[test]
    fn network_options() {
        let c = BootConfig::from_cmdline("ip=dhcp BOOTIF=01-52-54-00-12-34-56");
        assert_eq!(c.ip, Some(IpSpec::dhcp()));
        assert_eq!(
            c.bootif.map(|m| m.to_string()).as_deref(),
            Some("52:54:00:12:34:56")
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(BootConfig::from_cmdline("ip=off").ip, Some(IpSpec::Off));
        assert_eq!(BootConfig::from_cmdline("quiet").ip, None);
        // A broken ip= still asked for the network: DHCP, with a warning naming the value.
        let c = BootConfig::from_cmdline("ip=10.0.0.1::::::off BOOTIF=xx");
        assert_eq!(c.ip, Some(IpSpec::dhcp()));
        assert_eq!(c.bootif, None);
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(c
            .warnings
            .iter()
            .any(|w| w.starts_with("ip=10.0.0.1::::::off: ")));
    }

    #[test]
    fn environment_is_not_consulted() {
        // The kernel passes `name=value` words to init's environment; only the line counts.
        std::env::set_var("pkgs", "evil");
        assert!(BootConfig::from_cmdline("quiet").pkgs.is_empty());
    }
}
