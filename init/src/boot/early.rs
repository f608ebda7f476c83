//! Early setup (docs/boot.md, "Boot phases"): the pseudo filesystems, the console on fds 0-2, kmsg, and the
//! command line. Runs once before the first boot attempt; idempotent, so a retry can call it.
use std::path::Path;

use bootspec::initramfs::{absolute, POLICY, SIGNED_CMDLINE, STUB_EXTRA_DIR};

use super::{BootError, MAX_CONFIG_BYTES, PRINTK_DEVKMSG, SYSROOT};
use crate::cmdline::{BootConfig, PanicAction};
use crate::console;
use crate::media;
use crate::plan::sealed::{self, Seal};
use crate::sys::{self, MountFlags, SysError};

const NOSUID: MountFlags = MountFlags {
    read_only: false,
    nosuid: true,
    nodev: false,
    noexec: false,
};
const NOSUID_NOEXEC: MountFlags = MountFlags {
    read_only: false,
    nosuid: true,
    nodev: false,
    noexec: true,
};
const NOSUID_NODEV: MountFlags = MountFlags {
    read_only: false,
    nosuid: true,
    nodev: true,
    noexec: false,
};

/// The early mounts, in order: (source, target, type, flags, data).
const EARLY_MOUNTS: &[(&str, &str, &str, MountFlags, Option<&str>)] = &[
    ("proc", "/proc", "proc", MountFlags::PSEUDO, None),
    ("sysfs", "/sys", "sysfs", MountFlags::PSEUDO, None),
    (
        "devtmpfs",
        "/dev",
        "devtmpfs",
        NOSUID,
        Some("mode=0755,size=2M"),
    ),
    (
        "devpts",
        "/dev/pts",
        "devpts",
        NOSUID_NOEXEC,
        Some("gid=5,mode=0620"),
    ),
    ("shm", "/dev/shm", "tmpfs", MountFlags::PSEUDO, None),
    ("tmpfs", "/run", "tmpfs", NOSUID_NODEV, Some("mode=0755")),
];

/// Device nodes that must exist even on a tmpfs `/dev`: (path, major, minor, mode).
const EARLY_NODES: &[(&str, u64, u64, u32)] = &[
    ("/dev/console", 5, 1, 0o600),
    ("/dev/null", 1, 3, 0o666),
    ("/dev/kmsg", 1, 11, 0o660),
    ("/dev/ptmx", 5, 2, 0o666),
];

/// Early mounts, console, kmsg, then the command line.
pub(super) fn early_setup() -> Result<BootConfig, BootError> {
    mount_early()?;
    Ok(read_config())
}

/// Mounts `/proc`, `/sys`, `/dev` (+ `pts`, `shm`), `/run` where they are not mounted yet, and
/// puts the console on fds 0-2. Idempotent: a retry after a failed switch_root (which had moved
/// these mounts into the new root) mounts them again.
pub(super) fn mount_early() -> Result<(), BootError> {
    for d in [SYSROOT, media::MEDIA_DIR, "/tmp"] {
        sys::make_dirs(Path::new(d))?;
    }
    for &(source, target, fstype, flags, data) in EARLY_MOUNTS {
        sys::make_dirs(Path::new(target))?;
        match mount_once(source, target, fstype, flags, data) {
            Ok(()) => {}
            // Without devtmpfs no block device nodes appear, but a tmpfs /dev still lets the
            // failure report reach the console.
            Err(e) if fstype == "devtmpfs" => {
                mount_once("tmpfs", target, "tmpfs", flags, data)?;
                log::warn!("{e}; using a tmpfs /dev");
            }
            Err(e) => return Err(e.into()),
        }
        if target == "/dev" {
            for &(node, major, minor, mode) in EARLY_NODES {
                sys::ensure_char_device(Path::new(node), major, minor, mode)?;
            }
        }
    }
    // The kernel may have started us without fds 0-2 (no /dev/console in the cpio).
    sys::reopen_console(Path::new("/dev/console"))?;
    console::attach_kmsg(sys::open_kmsg());
    // kmsg rate-limits writers (10 lines per 5 s) and would drop most of the boot report; lift
    // the limit while the init runs (restored before switch_root; fails harmlessly when the
    // command line pinned printk.devkmsg=).
    let _ = std::fs::write(PRINTK_DEVKMSG, "on\n");
    Ok(())
}

/// Reads `/proc/cmdline` (only it, never the environment), applies `quiet`/`debug_init` and
/// reports the parser's warnings.
fn read_config() -> BootConfig {
    let cmdline = match std::fs::read("/proc/cmdline") {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            log::warn!("/proc/cmdline: {e}; using defaults");
            String::new()
        }
    };
    let cfg = BootConfig::from_cmdline(&cmdline);
    console::set_verbosity(cfg.quiet, cfg.debug_init);
    log::info!(
        "Alpine-compatible init {} (diskless)",
        env!("CARGO_PKG_VERSION")
    );
    for w in &cfg.warnings {
        log::warn!("{w}");
    }
    log::debug!("effective boot options:\n{}", cfg.describe());
    cfg
}

/// When the initramfs is sealed (`etc/boot-policy` says `sealed=yes`): checks that the kernel
/// runs with the signed command line and sets the failure policy of a sealed boot (no shell
/// unless that line asks). On a refusal, returns the error and what to do after reporting it
/// (the signed line's `panic=`; never a shell). A policy that cannot be read, or does not
/// parse and may say sealed, is refused without a shell ([`sealed::seal_state`]); an unsealed
/// one changes nothing here (a malformed one stops the boot in the boot options phase).
pub(super) fn apply_seal(cfg: &mut BootConfig) -> Result<(), (BootError, PanicAction)> {
    let read = |rel: &str| {
        sys::read_file(Path::new(&absolute(rel)), MAX_CONFIG_BYTES)
            .map(|b| b.map(|b| String::from_utf8_lossy(&b).into_owned()))
            .map_err(|e| e.to_string())
    };
    match sealed::seal_state(read(POLICY)) {
        Seal::Open => return Ok(()),
        Seal::Unknown(e) => return Err((e.into(), PanicAction::Halt)),
        Seal::Sealed => {}
    }
    let signed = read(SIGNED_CMDLINE).ok().flatten();
    let running = std::fs::read("/proc/cmdline")
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let action = signed.as_deref().map_or(PanicAction::Halt, |s| {
        BootConfig::from_cmdline(s).panic.action
    });
    if let Err(e) = sealed::check_cmdline(signed.as_deref(), &running) {
        return Err((e.into(), action));
    }
    cfg.panic = sealed::panic_policy(cfg, signed.as_deref().unwrap_or_default());
    log::info!(
        "sealed image: boot parameters from the signed command line only; rescue shell {}",
        if cfg.panic.shell_allowed {
            "on (the signed command line asks for it)"
        } else {
            "off"
        }
    );
    let extras = Path::new("/").join(STUB_EXTRA_DIR);
    if let Some(w) = sealed::stub_extras_note(extras.exists()) {
        log::warn!("{w}");
    }
    Ok(())
}

fn mount_once(
    source: &str,
    target: &str,
    fstype: &str,
    flags: MountFlags,
    data: Option<&str>,
) -> Result<(), SysError> {
    let t = Path::new(target);
    if sys::is_mount_point(t) {
        return Ok(());
    }
    sys::mount_fs(source, t, fstype, flags, data)
}
