//! The small text files of a medium: boot loader configurations carrying the kernel command line,
//! and the `.alpine-release` release id.
//!
//! Paths match Alpine's media so existing habits and tools keep working:
//! `boot/syslinux/syslinux.cfg` (syslinux, isolinux), `boot/extlinux/extlinux.conf` (extlinux and
//! U-Boot's distro boot, same format) and `boot/grub/grub.cfg`. mkimage writes the configurations;
//! the boot loaders that read them are installed by [`crate::bootloader`].
//!
//! The release file reads like Alpine's (`alpine-standard-3.19.1 231227`): a name, the version of
//! the `alpine-release` package when the boot closure has one (else mkimage's own version), and
//! the build date as `YYMMDD` from `SOURCE_DATE_EPOCH`.

use crate::date::Civil;

/// Alpine's default for its media: the modules needed to find a USB stick, and a quiet boot.
pub const DEFAULT_CMDLINE: &str = "modules=loop,squashfs,sd-mod,usb-storage quiet";

/// The name part of the release id (Alpine writes `alpine-standard`, `alpine-virt`, ...).
pub const RELEASE_NAME: &str = "alpine-diskless";

/// Where each boot loader looks for its configuration.
pub const SYSLINUX_CFG: &str = "boot/syslinux/syslinux.cfg";
/// extlinux (and U-Boot distro boot) configuration.
pub const EXTLINUX_CONF: &str = "boot/extlinux/extlinux.conf";
/// GRUB configuration.
pub const GRUB_CFG: &str = "boot/grub/grub.cfg";

/// x86's `COMMAND_LINE_SIZE`, including the terminating NUL: a longer line is cut by the kernel.
const MAX_CMDLINE: usize = 2047;

/// What a boot entry starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootEntry {
    /// Absolute path of the kernel on the medium (`/boot/vmlinuz`).
    pub kernel: String,
    /// Absolute path of the initramfs, if any.
    pub initramfs: Option<String>,
    /// The kernel command line.
    pub cmdline: String,
}

/// Refuses command lines that would break a configuration file or be cut by the kernel.
pub fn check_cmdline(cmdline: &str) -> Result<(), String> {
    if let Some(c) = cmdline.chars().find(|c| c.is_control()) {
        return Err(format!(
            "contains the control character {c:?} (one line of words expected)"
        ));
    }
    if cmdline.len() > MAX_CMDLINE {
        return Err(format!(
            "is {} bytes long; the kernel keeps at most {MAX_CMDLINE}",
            cmdline.len()
        ));
    }
    Ok(())
}

/// The command line with `modloop=` appended when the line does not choose one itself:
/// `modloop=/boot/NAME` when a modloop is on the medium (the `modloop` service would otherwise
/// search every mount for `modloop-<flavor>`, and our kernel's flavor need not match the file
/// name), else `modloop=none`, so that OpenRC's `modloop` service does nothing instead of failing
/// at every boot on a medium that carries none (the initramfs loaded the boot drivers already).
pub fn with_modloop(cmdline: &str, modloop: Option<&str>) -> String {
    let cmdline = cmdline.trim();
    if cmdline
        .split_whitespace()
        .any(|w| w.starts_with("modloop="))
    {
        return cmdline.to_string();
    }
    let word = match modloop {
        Some(m) => format!("modloop=/{m}"),
        None => "modloop=none".to_string(),
    };
    if cmdline.is_empty() {
        word
    } else {
        format!("{cmdline} {word}")
    }
}

/// The menu every configuration offers, as Alpine's media do: the image's command line (the
/// default, after a one-second timeout), the same with `single` (the rescue shell), and the same
/// with the console on the first serial port for boxes without a screen. `(label, title, words
/// added to the command line)`.
const ENTRIES: [(&str, &str, &str); 3] = [
    ("diskless", "Linux (diskless)", ""),
    ("single", "Linux (diskless), rescue shell", "single"),
    (
        "serial",
        "Linux (diskless), console on ttyS0",
        "console=ttyS0,115200",
    ),
];

fn entry_cmdline(cmdline: &str, extra: &str) -> String {
    match (cmdline.is_empty(), extra.is_empty()) {
        (_, true) => cmdline.to_string(),
        (true, false) => extra.to_string(),
        (false, false) => format!("{cmdline} {extra}"),
    }
}

/// `syslinux.cfg` / `extlinux.conf` (same format): the menu on the screen and mirrored on the
/// first serial port (`SERIAL 0 115200`), the default booted after one second.
pub fn syslinux_cfg(entry: &BootEntry) -> String {
    let mut out = String::from(
        "# Written by mkimage: boots the diskless system from this medium.\n\
         SERIAL 0 115200\n\
         TIMEOUT 10\n\
         PROMPT 1\n\
         DEFAULT diskless\n\
         SAY Boot entries: diskless (default), single (rescue shell), serial (console on ttyS0)\n",
    );
    for (label, title, extra) in ENTRIES {
        out.push_str(&format!("\nLABEL {label}\n  MENU LABEL {title}\n"));
        out.push_str(&format!("  KERNEL {}\n", entry.kernel));
        if let Some(i) = &entry.initramfs {
            out.push_str(&format!("  INITRD {i}\n"));
        }
        let cmdline = entry_cmdline(&entry.cmdline, extra);
        if !cmdline.is_empty() {
            // syslinux takes the rest of the line literally: no quoting.
            out.push_str(&format!("  APPEND {cmdline}\n"));
        }
    }
    out
}

/// `grub.cfg`: the menu on the firmware's console and the first serial port, the default
/// booted after one second.
pub fn grub_cfg(entry: &BootEntry) -> String {
    let mut out = String::from(
        "# Written by mkimage: boots the diskless system from this medium.\n\
         serial --unit=0 --speed=115200\n\
         terminal_input serial console\n\
         terminal_output serial console\n\
         set default=diskless\n\
         set timeout=1\n",
    );
    for (id, title, extra) in ENTRIES {
        let mut linux = format!("\tlinux {}", entry.kernel);
        for word in entry_cmdline(&entry.cmdline, extra).split_whitespace() {
            linux.push(' ');
            linux.push_str(&grub_quote(word));
        }
        out.push_str(&format!("\nmenuentry \"{title}\" --id {id} {{\n{linux}\n"));
        if let Some(i) = &entry.initramfs {
            out.push_str(&format!("\tinitrd {i}\n"));
        }
        out.push_str("}\n");
    }
    out
}

/// One command-line word as GRUB's script parser must see it to pass it through unchanged:
/// words with characters GRUB interprets (`$` expansion, quotes, braces, `;`, ...) go in single
/// quotes, where nothing is special; a single quote itself becomes `'\''`, as in sh.
fn grub_quote(word: &str) -> String {
    const SPECIAL: &[char] = &[
        '$', '"', '\'', '\\', '{', '}', ';', '|', '&', '<', '>', '#', '*', '?', '[', ']',
    ];
    if !word.contains(SPECIAL) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// The release id: `alpine-diskless-<version> <YYMMDD>`.
pub fn release_id(version: &str, build_time: u64) -> String {
    format!(
        "{RELEASE_NAME}-{version} {}",
        Civil::from_epoch(build_time).yymmdd()
    )
}

/// The version for the release id from the `alpine-release` package's version (`3.19.1-r0` gives
/// `3.19.1`), else mkimage's own version.
pub fn release_version(alpine_release: Option<&str>) -> String {
    match alpine_release {
        Some(v) => match v.rsplit_once("-r") {
            Some((base, rel)) if !rel.is_empty() && rel.bytes().all(|b| b.is_ascii_digit()) => {
                base.to_string()
            }
            _ => v.to_string(),
        },
        None => env!("CARGO_PKG_VERSION").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(cmdline: &str) -> BootEntry {
        BootEntry {
            kernel: "/boot/vmlinuz".into(),
            initramfs: Some("/boot/initramfs".into()),
            cmdline: cmdline.into(),
        }
    }

    #[test]
    fn syslinux_config_carries_the_command_line() {
        assert_eq!(
            syslinux_cfg(&entry("console=ttyS0 quiet")),
            "# Written by mkimage: boots the diskless system from this medium.\n\
             SERIAL 0 115200\n\
             TIMEOUT 10\n\
             PROMPT 1\n\
             DEFAULT diskless\n\
             SAY Boot entries: diskless (default), single (rescue shell), serial (console on ttyS0)\n\
             \n\
             LABEL diskless\n\
             \x20 MENU LABEL Linux (diskless)\n\
             \x20 KERNEL /boot/vmlinuz\n\
             \x20 INITRD /boot/initramfs\n\
             \x20 APPEND console=ttyS0 quiet\n\
             \n\
             LABEL single\n\
             \x20 MENU LABEL Linux (diskless), rescue shell\n\
             \x20 KERNEL /boot/vmlinuz\n\
             \x20 INITRD /boot/initramfs\n\
             \x20 APPEND console=ttyS0 quiet single\n\
             \n\
             LABEL serial\n\
             \x20 MENU LABEL Linux (diskless), console on ttyS0\n\
             \x20 KERNEL /boot/vmlinuz\n\
             \x20 INITRD /boot/initramfs\n\
             \x20 APPEND console=ttyS0 quiet console=ttyS0,115200\n"
        );
    }

    #[test]
    fn syslinux_config_without_initramfs_or_cmdline() {
        let e = BootEntry {
            initramfs: None,
            ..entry("")
        };
        let cfg = syslinux_cfg(&e);
        assert!(
            cfg.contains(
                "LABEL diskless\n  MENU LABEL Linux (diskless)\n  KERNEL /boot/vmlinuz\n\n"
            ),
            "{cfg}"
        );
        assert!(
            cfg.ends_with("  KERNEL /boot/vmlinuz\n  APPEND console=ttyS0,115200\n"),
            "{cfg}"
        );
        assert!(!cfg.contains("INITRD"));
    }

    #[test]
    fn grub_config_carries_the_command_line() {
        assert_eq!(
            grub_cfg(&entry("console=ttyS0 modules=loop,squashfs quiet")),
            "# Written by mkimage: boots the diskless system from this medium.\n\
             serial --unit=0 --speed=115200\n\
             terminal_input serial console\n\
             terminal_output serial console\n\
             set default=diskless\n\
             set timeout=1\n\
             \n\
             menuentry \"Linux (diskless)\" --id diskless {\n\
             \tlinux /boot/vmlinuz console=ttyS0 modules=loop,squashfs quiet\n\
             \tinitrd /boot/initramfs\n\
             }\n\
             \n\
             menuentry \"Linux (diskless), rescue shell\" --id single {\n\
             \tlinux /boot/vmlinuz console=ttyS0 modules=loop,squashfs quiet single\n\
             \tinitrd /boot/initramfs\n\
             }\n\
             \n\
             menuentry \"Linux (diskless), console on ttyS0\" --id serial {\n\
             \tlinux /boot/vmlinuz console=ttyS0 modules=loop,squashfs quiet console=ttyS0,115200\n\
             \tinitrd /boot/initramfs\n\
             }\n"
        );
    }

    #[test]
    fn grub_quotes_words_it_would_interpret() {
        let cfg = grub_cfg(&entry("a=$x b=it's c={d} plain"));
        assert!(
            cfg.contains("\tlinux /boot/vmlinuz 'a=$x' 'b=it'\\''s' 'c={d}' plain\n"),
            "{cfg}"
        );
    }

    #[test]
    fn modloop_is_added_unless_chosen() {
        assert_eq!(
            with_modloop("quiet", Some("boot/modloop-lts")),
            "quiet modloop=/boot/modloop-lts"
        );
        assert_eq!(
            with_modloop("", Some("boot/modloop-lts")),
            "modloop=/boot/modloop-lts"
        );
        assert_eq!(
            with_modloop("modloop=none quiet", Some("boot/modloop-lts")),
            "modloop=none quiet"
        );
        assert_eq!(with_modloop(" quiet ", None), "quiet modloop=none");
        assert_eq!(with_modloop("modloop=/x quiet", None), "modloop=/x quiet");
    }

    #[test]
    fn command_line_checks() {
        assert!(check_cmdline(DEFAULT_CMDLINE).is_ok());
        assert!(check_cmdline("a\nb")
            .unwrap_err()
            .contains("control character"));
        assert!(check_cmdline(&"x".repeat(3000))
            .unwrap_err()
            .contains("at most 2047"));
    }

    #[test]
    fn release_file_has_name_version_and_build_date() {
        // 2023-12-27 12:34:56 UTC.
        assert_eq!(
            release_id("3.19.1", 1_703_680_496),
            "alpine-diskless-3.19.1 231227"
        );
        assert_eq!(release_version(Some("3.19.1-r0")), "3.19.1");
        assert_eq!(release_version(Some("3.19.1")), "3.19.1");
        assert_eq!(release_version(Some("1.0-rc1")), "1.0-rc1");
        assert_eq!(release_version(None), env!("CARGO_PKG_VERSION"));
    }
}
