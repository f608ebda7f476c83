//! Every syscall the init makes, one function per boot step, each with a typed error carrying its path.
//!
//! This module (with its submodules) is the only place that calls `nix` or `rustix` and the only
//! one allowed to use `unsafe`; everything above it deals in paths, values and these small
//! functions. Submodules: [`mount`] (mounts, including those into the new root), [`loopdev`]
//! (read-only loop devices for the modloop), [`rootdir`]
//! (files inside the new root, resolved beneath it with `openat2`), [`netlink`] (the kernel uevent
//! socket) and [`switch`] (the `switch_root` sequence). Where `nix` or `rustix` has a safe
//! wrapper we use it (no raw `libc`); the `unsafe` blocks (the rescue shell's `pre_exec`, which
//! makes the console its controlling terminal, and the loop device ioctls) carry their `// SAFETY:`
//! arguments.
#![allow(unsafe_code)]

pub mod loopdev;
pub mod memfd;
pub mod mount;
pub mod net;
pub mod netlink;
pub mod rootdir;
pub mod switch;

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use zeroize::Zeroizing;

pub use mount::{
    bind_into, is_mount_point, mount_fs, mount_points, move_into, move_mount, parse_mountinfo,
    remount, unmount, unmount_detach, MountFlags, MountPoint,
};
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
    /// A file the init reads is a FIFO, a device or a directory (opening a FIFO for reading
    /// would block PID 1 forever).
    #[error("{}: not a regular file, refusing to read it", path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
    },
    /// A file is larger than the init reads (bad input must not exhaust PID 1's memory).
    #[error("{}: larger than {limit} bytes, refusing to read it", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The bound.
        limit: u64,
    },
    /// A mount point in the new root is reached through a symbolic link (planted by the overlay
    /// or a package): the mount would land elsewhere, possibly outside the new root.
    #[error("{}: a symbolic link in the path; refusing to mount through it", path.display())]
    SymlinkMountPoint {
        /// The mount point in the new root.
        path: PathBuf,
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

impl SysError {
    /// A file that should exist does not.
    pub fn missing(path: &Path) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source: io::Error::from(io::ErrorKind::NotFound),
        }
    }
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

/// Reads a whole regular file of at most `limit` bytes; `None` when it does not exist. A larger
/// file is an error before it is read (and if it grows meanwhile, after `limit + 1` bytes). The
/// file is opened without blocking and must be a regular file (links followed): a FIFO or a
/// device planted on a medium is an error, never a PID 1 that waits forever.
pub fn read_file(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, SysError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io_err = |source| SysError::Io {
        path: path.to_path_buf(),
        source,
    };
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(path);
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    if !file.metadata().map_err(io_err)?.is_file() {
        return Err(SysError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    read_bounded(file, path, limit).map(Some)
}

/// Reads an open file of at most `limit` bytes (see [`read_file`]).
pub fn read_bounded(file: File, path: &Path, limit: u64) -> Result<Vec<u8>, SysError> {
    use std::io::Read;
    let too_large = || SysError::TooLarge {
        path: path.to_path_buf(),
        limit,
    };
    let size = file
        .metadata()
        .map_err(|source| SysError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if size > limit {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(size as usize);
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|source| SysError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if buf.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(buf)
}

/// Replaces the initramfs file `path` with `data` (written beside it, then renamed over it).
pub fn write_file(path: &Path, data: &[u8]) -> Result<(), SysError> {
    let io_err = |source| SysError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, data).map_err(io_err)?;
    std::fs::rename(&tmp, path).map_err(io_err)
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

/// Reads one line from the console (fd 0) without buffering it anywhere else (the passphrase
/// prompt): at most `max` bytes, newline removed; `None` at end of input. A longer line is read
/// to its end and refused. The buffers are zeroed when dropped.
pub fn read_console_line(max: usize) -> Result<Option<Zeroizing<Vec<u8>>>, SysError> {
    let console = Path::new("/dev/console");
    // Capacity for the whole bound: the vector never reallocates, so no copy is left behind.
    let mut line = Zeroizing::new(Vec::with_capacity(max));
    let mut chunk = Zeroizing::new([0u8; 256]);
    let mut too_long = false;
    loop {
        let n = match nix::unistd::read(io::stdin().as_fd(), &mut chunk[..]) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno_at(console)(errno)),
        };
        if n == 0 {
            return Ok((!line.is_empty() && !too_long).then_some(line));
        }
        for &b in &chunk[..n] {
            if b == b'\n' {
                if too_long {
                    return Err(SysError::TooLarge {
                        path: console.to_path_buf(),
                        limit: max as u64,
                    });
                }
                return Ok(Some(line));
            }
            if line.len() < max {
                line.push(b);
            } else {
                too_long = true;
            }
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
    // SAFETY: the closure runs in the forked child before exec and makes two raw syscalls,
    // setsid(2) and ioctl(TIOCSCTTY), both async-signal-safe; it allocates nothing and touches no
    // memory shared with the parent. fd 0 is the console (inherited), which TIOCSCTTY makes the
    // new session's controlling terminal. Failures are ignored: the shell still runs, only
    // without job control.
    unsafe {
        cmd.pre_exec(|| {
            let _ = rustix::process::setsid();
            let _ = rustix::process::ioctl_tiocsctty(rustix::stdio::stdin());
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
    fn boottime_moves_forward() {
        let a = boottime();
        let b = boottime();
        assert!(b >= a);
        assert!(a > Duration::ZERO);
    }

    #[test]
    fn read_file_refuses_fifos_and_directories_without_blocking() {
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("modloop-lts.sig");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o644)).unwrap();
        let e = read_file(&fifo, 1024).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}: not a regular file, refusing to read it",
                fifo.display()
            )
        );
        let link = t.path().join("link.sig");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        assert!(matches!(
            read_file(&link, 1024),
            Err(SysError::NotRegular { .. })
        ));
        assert!(matches!(
            read_file(t.path(), 1024),
            Err(SysError::NotRegular { .. })
        ));
        let file = t.path().join("f");
        std::fs::write(&file, b"abc").unwrap();
        assert_eq!(read_file(&file, 3).unwrap().unwrap(), b"abc");
        assert!(matches!(
            read_file(&file, 2),
            Err(SysError::TooLarge { .. })
        ));
        assert_eq!(read_file(&t.path().join("none"), 3).unwrap(), None);
    }
}
