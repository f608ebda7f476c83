//! Every syscall the init makes, one function per boot step, each with a typed error carrying its path.
//!
//! This module (with its submodules) is the only place that calls `nix` or `libc` and the only one
//! allowed to use `unsafe`; everything above it deals in paths, values and these small functions.
//! Submodules: [`rootdir`] (files inside the new root, resolved beneath it with `openat2`),
//! [`netlink`] (the kernel uevent socket) and [`switch`] (the `switch_root` sequence).
//! Where `nix` has a safe wrapper we use it; the one `unsafe` block (making the console the
//! controlling terminal of the rescue shell) carries its `// SAFETY:` argument.
#![allow(unsafe_code)]

pub mod netlink;
pub mod rootdir;
pub mod switch;

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

pub use netlink::UeventSocket;
pub use rootdir::RootDir;
pub use switch::{switch_root, SwitchRootError};

/// A failed syscall, with the path or subject it was about.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    /// `mount(2)` failed.
    #[error("mount {fstype} {source_dev} on {}: {errno}", target.display())]
    Mount {
        /// Filesystem type.
        fstype: String,
        /// Source device or pseudo name.
        source_dev: String,
        /// Mount point.
        target: PathBuf,
        /// Cause.
        errno: Errno,
    },
    /// `mount(MS_MOVE)` failed.
    #[error("move mount {} to {}: {errno}", from.display(), to.display())]
    MoveMount {
        /// Current mount point.
        from: PathBuf,
        /// New mount point.
        to: PathBuf,
        /// Cause.
        errno: Errno,
    },
    /// `mount(MS_BIND)` failed.
    #[error("bind mount {} on {}: {errno}", from.display(), to.display())]
    BindMount {
        /// Source directory.
        from: PathBuf,
        /// Target directory.
        to: PathBuf,
        /// Cause.
        errno: Errno,
    },
    /// `mount(MS_REMOUNT)` failed.
    #[error("remount {} with {options:?}: {errno}", target.display())]
    Remount {
        /// Mount point.
        target: PathBuf,
        /// New options.
        options: String,
        /// Cause.
        errno: Errno,
    },
    /// `umount2(2)` failed.
    #[error("unmount {}: {errno}", target.display())]
    Unmount {
        /// Mount point.
        target: PathBuf,
        /// Cause.
        errno: Errno,
    },
    /// A file operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// A syscall on a path failed.
    #[error("{}: {errno}", path.display())]
    Errno {
        /// The path.
        path: PathBuf,
        /// Cause.
        errno: Errno,
    },
    /// `finit_module(2)`/`init_module(2)` failed.
    #[error("{}: load module: {errno}", path.display())]
    LoadModule {
        /// The module file.
        path: PathBuf,
        /// Cause.
        errno: Errno,
    },
    /// A path contains a NUL byte and cannot be passed to the kernel.
    #[error("{0:?}: contains a NUL byte")]
    Nul(String),
    /// Spawning or waiting for a child process failed.
    #[error("{}: {source}", program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// Cause.
        source: io::Error,
    },
}

fn errno_at(path: &Path) -> impl FnOnce(Errno) -> SysError + '_ {
    move |errno| SysError::Errno {
        path: path.to_path_buf(),
        errno,
    }
}

/// Time since boot from `CLOCK_BOOTTIME` (counts suspend, starts with the kernel), falling back to
/// `CLOCK_MONOTONIC`. The wall clock is useless this early (often 1970).
pub fn boottime() -> Duration {
    use nix::time::{clock_gettime, ClockId};
    let ts = clock_gettime(ClockId::CLOCK_BOOTTIME)
        .or_else(|_| clock_gettime(ClockId::CLOCK_MONOTONIC))
        .map(|ts| {
            Duration::new(
                ts.tv_sec().max(0) as u64,
                ts.tv_nsec().clamp(0, 999_999_999) as u32,
            )
        });
    ts.unwrap_or_default()
}

/// Whether this process is PID 1 (the init refuses to run anywhere else: it deletes `/`).
pub fn is_pid1() -> bool {
    nix::unistd::getpid() == Pid::from_raw(1)
}

/// The running kernel's release (`uname -r`), which names `/lib/modules/<release>`.
pub fn kernel_release() -> Option<String> {
    nix::sys::utsname::uname()
        .ok()
        .map(|u| u.release().to_string_lossy().into_owned())
}

/// Options for the pseudo and media mounts, kept free of `nix` types for the callers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountFlags {
    /// `ro`
    pub read_only: bool,
    /// `nosuid`
    pub nosuid: bool,
    /// `nodev`
    pub nodev: bool,
    /// `noexec`
    pub noexec: bool,
}

impl MountFlags {
    /// `nosuid,nodev,noexec`, what `/proc` and `/sys` get.
    pub const PSEUDO: Self = Self {
        read_only: false,
        nosuid: true,
        nodev: true,
        noexec: true,
    };
    /// `ro,nosuid,nodev`, what boot media get.
    pub const MEDIA: Self = Self {
        read_only: true,
        nosuid: true,
        nodev: true,
        noexec: false,
    };

    fn bits(self) -> MsFlags {
        let mut f = MsFlags::empty();
        f.set(MsFlags::MS_RDONLY, self.read_only);
        f.set(MsFlags::MS_NOSUID, self.nosuid);
        f.set(MsFlags::MS_NODEV, self.nodev);
        f.set(MsFlags::MS_NOEXEC, self.noexec);
        f
    }
}

/// `mount -t FSTYPE -o FLAGS,DATA SOURCE TARGET`.
pub fn mount_fs(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: MountFlags,
    data: Option<&str>,
) -> Result<(), SysError> {
    mount(Some(source), target, Some(fstype), flags.bits(), data).map_err(|errno| SysError::Mount {
        fstype: fstype.to_string(),
        source_dev: source.to_string(),
        target: target.to_path_buf(),
        errno,
    })
}

/// `mount -o remount,OPTIONS TARGET` (the overlay's fstab may resize the tmpfs root).
pub fn remount(target: &Path, options: &str) -> Result<(), SysError> {
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_REMOUNT,
        Some(options),
    )
    .map_err(|errno| SysError::Remount {
        target: target.to_path_buf(),
        options: options.to_string(),
        errno,
    })
}

/// `mount --bind FROM TO` (the new root's `/proc`, `/sys`, `/dev` while package scripts run).
pub fn bind_mount(from: &Path, to: &Path) -> Result<(), SysError> {
    mount(
        Some(from),
        to,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|errno| SysError::BindMount {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        errno,
    })
}

/// `mount --move FROM TO`.
pub fn move_mount(from: &Path, to: &Path) -> Result<(), SysError> {
    mount(Some(from), to, None::<&str>, MsFlags::MS_MOVE, None::<&str>).map_err(|errno| {
        SysError::MoveMount {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            errno,
        }
    })
}

/// `umount TARGET`.
pub fn unmount(target: &Path) -> Result<(), SysError> {
    umount2(target, MntFlags::empty()).map_err(|errno| SysError::Unmount {
        target: target.to_path_buf(),
        errno,
    })
}

/// `umount -l TARGET`: used when retrying a boot, where a busy mount must not block the retry.
pub fn unmount_detach(target: &Path) -> Result<(), SysError> {
    umount2(target, MntFlags::MNT_DETACH).map_err(|errno| SysError::Unmount {
        target: target.to_path_buf(),
        errno,
    })
}

/// Whether `path` is the root of a mount: its device differs from its parent's (the early
/// mounts are all different filesystems from the rootfs, so this suffices and needs no `/proc`).
pub fn is_mount_point(path: &Path) -> bool {
    let Ok(me) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let Some(parent) = path.parent() else {
        return me.is_dir(); // "/" is the root of the rootfs mount
    };
    match std::fs::symlink_metadata(parent) {
        Ok(up) => me.is_dir() && (me.dev() != up.dev() || me.ino() == up.ino()),
        Err(_) => false,
    }
}

/// Mount points from `/proc/self/mountinfo`, in mount order (field 5, octal escapes decoded).
pub fn mount_points() -> Result<Vec<PathBuf>, SysError> {
    let path = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(path).map_err(|source| SysError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse_mountinfo(&text))
}

/// Parses the mount points out of a mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_octal(field)))
        .collect()
}

/// Decodes the `\040`-style escapes the kernel uses in mountinfo fields.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let oct = &bytes[i + 1..i + 4];
            if oct.iter().all(|b| (b'0'..=b'7').contains(b)) {
                out.push((oct[0] - b'0') * 64 + (oct[1] - b'0') * 8 + (oct[2] - b'0'));
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `mkdir -p PATH` with mode 0755.
pub fn make_dirs(path: &Path) -> Result<(), SysError> {
    std::fs::create_dir_all(path).map_err(|source| SysError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// `mknod PATH c MAJOR MINOR` with `mode`, unless something already exists there.
pub fn ensure_char_device(path: &Path, major: u64, minor: u64, mode: u32) -> Result<(), SysError> {
    if std::fs::symlink_metadata(path).is_ok() {
        return Ok(());
    }
    mknod(
        path,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(mode),
        makedev(major, minor),
    )
    .map_err(errno_at(path))
}

/// Opens the console and puts it on fds 0, 1 and 2 (the kernel may have started us without them,
/// and after `switch_root` they must point at the new root's console).
pub fn reopen_console(console: &Path) -> Result<(), SysError> {
    let fd = open(
        console,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno_at(console))?;
    nix::unistd::dup2_stdin(&fd).map_err(errno_at(console))?;
    nix::unistd::dup2_stdout(&fd).map_err(errno_at(console))?;
    nix::unistd::dup2_stderr(&fd).map_err(errno_at(console))?;
    Ok(())
}

/// Opens `/dev/kmsg` for writing log records (one `write` per record, as kmsg requires).
pub fn open_kmsg() -> Option<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/kmsg")
        .ok()
}

/// Loads an uncompressed module with `finit_module(2)`. `EEXIST` (already loaded) is success.
pub fn load_module_file(path: &Path, params: &str) -> Result<(), SysError> {
    use nix::kmod::{finit_module, ModuleInitFlags};
    let file = File::open(path).map_err(|source| SysError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let params = CString::new(params).map_err(|_| SysError::Nul(params.to_string()))?;
    match finit_module(file.as_fd(), &params, ModuleInitFlags::empty()) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(errno) => Err(SysError::LoadModule {
            path: path.to_path_buf(),
            errno,
        }),
    }
}

/// Loads a module image decompressed in memory with `init_module(2)`. `EEXIST` is success.
pub fn load_module_image(path: &Path, image: &[u8], params: &str) -> Result<(), SysError> {
    let params = CString::new(params).map_err(|_| SysError::Nul(params.to_string()))?;
    match nix::kmod::init_module(image, &params) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(errno) => Err(SysError::LoadModule {
            path: path.to_path_buf(),
            errno,
        }),
    }
}

/// Turns terminal echo off on fd 0 until dropped (passphrase prompts).
pub struct NoEcho {
    saved: Option<nix::sys::termios::Termios>,
}

impl NoEcho {
    /// Switches echo off; on a non-terminal stdin this does nothing.
    pub fn new() -> Self {
        use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
        let stdin = io::stdin();
        let Ok(saved) = tcgetattr(stdin.as_fd()) else {
            return Self { saved: None };
        };
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        quiet.local_flags.insert(LocalFlags::ECHONL);
        if tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &quiet).is_err() {
            return Self { saved: None };
        }
        Self { saved: Some(saved) }
    }

    /// Whether echo was actually switched off.
    pub fn active(&self) -> bool {
        self.saved.is_some()
    }
}

impl Default for NoEcho {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        use nix::sys::termios::{tcsetattr, SetArg};
        if let Some(saved) = &self.saved {
            // Best effort: the terminal is left as it was; there is nobody to report a failure to.
            let _ = tcsetattr(io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

/// Whether `path` is an executable regular file (following symlinks).
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Runs `program` on the console as a session leader with the console as its controlling
/// terminal (so job control and Ctrl-C work in the rescue shell), and waits for it. Other
/// children that exit meanwhile are reaped here too: PID 1 reaps in exactly two places, this
/// wait and [`reap_zombies`], never concurrently with a `std::process::Child::wait` elsewhere.
pub fn run_on_console(
    program: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<i32, SysError> {
    let spawn_err = |source| SysError::Spawn {
        program: program.to_path_buf(),
        source,
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    // SAFETY: the closure runs in the forked child before exec and calls only setsid(2) and
    // ioctl(2), both async-signal-safe; it touches no memory shared with the parent. fd 0 is the
    // console (inherited), which TIOCSCTTY makes the new session's controlling terminal.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 1);
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(spawn_err)?;
    let pid = Pid::from_raw(child.id() as i32);
    // `child` is dropped without `wait`: the loop below owns the reaping.
    drop(child);
    loop {
        match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => return Ok(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return Ok(128 + sig as i32),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(errno) => {
                return Err(spawn_err(io::Error::from_raw_os_error(errno as i32)));
            }
        }
    }
}

/// Reaps every exited child without blocking (orphans re-parented to PID 1). Called between boot
/// steps and while waiting, never while a step runs child processes of its own.
pub fn reap_zombies() -> usize {
    let mut n = 0;
    while let Ok(status) = waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
        if status == WaitStatus::StillAlive {
            break;
        }
        n += 1;
    }
    n
}

/// What to do with the machine when the boot cannot continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    /// `reboot(RB_AUTOBOOT)`.
    Reboot,
    /// `reboot(RB_POWER_OFF)`.
    PowerOff,
}

/// Syncs and reboots or powers off. Returns only if the kernel refused.
pub fn power(action: PowerAction) -> Errno {
    use nix::sys::reboot::{reboot, RebootMode};
    nix::unistd::sync();
    let mode = match action {
        PowerAction::Reboot => RebootMode::RB_AUTOBOOT,
        PowerAction::PowerOff => RebootMode::RB_POWER_OFF,
    };
    match reboot(mode) {
        Ok(never) => match never {},
        Err(errno) => errno,
    }
}

/// Filesystem magic of `path` (`statfs(2)`), used to refuse deleting anything but a rootfs.
pub fn fs_magic(path: &Path) -> Result<i64, SysError> {
    nix::sys::statfs::statfs(path)
        // fs_type_t is i64 with glibc on x86_64 but differs elsewhere (musl, 32-bit).
        .map(|s| {
            #[allow(clippy::unnecessary_cast)]
            let magic = s.filesystem_type().0 as i64;
            magic
        })
        .map_err(errno_at(path))
}

/// `sync(2)`.
pub fn sync() {
    nix::unistd::sync();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_points_are_decoded() {
        let text = "22 1 0:21 / /proc rw,nosuid - proc proc rw\n\
                    30 22 8:1 / /media/my\\040stick ro - vfat /dev/sda1 ro\n";
        assert_eq!(
            parse_mountinfo(text),
            vec![PathBuf::from("/proc"), PathBuf::from("/media/my stick")]
        );
    }

    #[test]
    fn unescape_keeps_lone_backslashes() {
        assert_eq!(unescape_octal("a\\b"), "a\\b");
        assert_eq!(unescape_octal("a\\04"), "a\\04");
        assert_eq!(unescape_octal("x\\134y"), "x\\y");
    }

    #[test]
    fn boottime_moves_forward() {
        let a = boottime();
        let b = boottime();
        assert!(b >= a);
        assert!(a > Duration::ZERO);
    }

    #[test]
    fn root_of_filesystem_is_a_mount_point() {
        assert!(is_mount_point(Path::new("/")));
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert!(!is_mount_point(&sub));
    }
}
