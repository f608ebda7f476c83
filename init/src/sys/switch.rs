//! `switch_root`, step by step, as busybox does it (pivot_root does not work on the initramfs rootfs).
//!
//! The caller has already moved `/proc`, `/sys`, `/dev`, `/run` and the boot media into the new
//! root and checked that init is executable there; after the deletion step there is no way back,
//! so every check that can fail happens first.
use std::convert::Infallible;
use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::unistd::{chdir, chroot, execv};

/// `ramfs` magic (the kernel unpacks the initramfs into ramfs or tmpfs).
const RAMFS_MAGIC: i64 = 0x8584_58f6;
/// `tmpfs` magic.
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// One variant per step, each naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum SwitchRootError {
    /// The new root is not a separate mount: deleting `/` would delete it too.
    #[error("switch_root: {} is not a mount point separate from /", .0.display())]
    NotAMount(PathBuf),
    /// `/` is not the initramfs (ramfs/tmpfs): refuse to delete a real filesystem.
    #[error("switch_root: / is not an initramfs (filesystem magic {0:#x})")]
    NotRootfs(i64),
    /// `chdir(new_root)` failed.
    #[error("switch_root: chdir {}: {errno}", path.display())]
    Chdir {
        /// The new root.
        path: PathBuf,
        /// Cause.
        errno: Errno,
    },
    /// `mount --move . /` failed.
    #[error("switch_root: mount --move {} /: {errno}", path.display())]
    Move {
        /// The new root.
        path: PathBuf,
        /// Cause.
        errno: Errno,
    },
    /// `chroot .` failed.
    #[error("switch_root: chroot {}: {errno}", path.display())]
    Chroot {
        /// The new root.
        path: PathBuf,
        /// Cause.
        errno: Errno,
    },
    /// `chdir /` inside the new root failed.
    #[error("switch_root: chdir / in the new root: {0}")]
    ChdirRoot(Errno),
    /// Reopening the console failed.
    #[error("switch_root: console {}: {reason}", path.display())]
    Console {
        /// The console device.
        path: PathBuf,
        /// Cause.
        reason: String,
    },
    /// An argument contains a NUL byte.
    #[error("switch_root: argument {0:?} contains a NUL byte")]
    Nul(String),
    /// `execv(init)` failed.
    #[error("switch_root: exec {0}: {1}")]
    Exec(String, Errno),
}

/// Switches to `new_root` and executes `init` with `args` (`argv[0]` is `init`). Returns only on
/// failure; after the deletion step the initramfs is gone, so a failure then can only be reported.
pub fn switch_root(
    new_root: &Path,
    init: &str,
    args: &[String],
    console: &Path,
) -> Result<Infallible, SwitchRootError> {
    // Everything after this works on "." so that the new root's path no longer matters.
    chdir(new_root).map_err(|errno| SwitchRootError::Chdir {
        path: new_root.to_path_buf(),
        errno,
    })?;

    // Deleting the initramfs walks "/" without crossing mounts: the new root must be one.
    let root_dev = std::fs::metadata("/").map(|m| m.dev()).unwrap_or(0);
    let new_dev = std::fs::metadata(".").map(|m| m.dev()).unwrap_or(root_dev);
    if root_dev == new_dev {
        return Err(SwitchRootError::NotAMount(new_root.to_path_buf()));
    }

    // Refuse to delete anything that is not the initramfs (a mistaken run on a real system).
    let magic = super::fs_magic(Path::new("/")).unwrap_or(0);
    if magic != RAMFS_MAGIC && magic != TMPFS_MAGIC {
        return Err(SwitchRootError::NotRootfs(magic));
    }

    // Free the initramfs memory: ramfs pages are only released when the files are deleted.
    delete_same_device(Path::new("/"), root_dev);

    // Make the new root "/" of the mount namespace...
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>).map_err(|errno| {
        SwitchRootError::Move {
            path: new_root.to_path_buf(),
            errno,
        }
    })?;
    // ...and of this process.
    chroot(".").map_err(|errno| SwitchRootError::Chroot {
        path: new_root.to_path_buf(),
        errno,
    })?;
    // chroot does not change the working directory; "." is now "/", say so explicitly.
    chdir("/").map_err(SwitchRootError::ChdirRoot)?;

    // fds 0-2 still point at the initramfs's console node, which was just deleted.
    super::reopen_console(console).map_err(|e| SwitchRootError::Console {
        path: console.to_path_buf(),
        reason: e.to_string(),
    })?;

    let c_init = CString::new(init).map_err(|_| SwitchRootError::Nul(init.to_string()))?;
    let mut argv = vec![c_init.clone()];
    for a in args {
        argv.push(CString::new(a.as_str()).map_err(|_| SwitchRootError::Nul(a.clone()))?);
    }
    match execv(&c_init, &argv) {
        Ok(never) => match never {},
        Err(e) => Err(SwitchRootError::Exec(init.to_string(), e)),
    }
}

/// Deletes everything below `dir` that lives on device `dev`, never descending into other
/// mounts (they are the new root and whatever the caller did not move). Errors are skipped, as
/// busybox does: the worst case is memory not freed.
fn delete_same_device(dir: &Path, dev: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.dev() != dev {
            continue;
        }
        if meta.is_dir() {
            delete_same_device(&path, dev);
            let _ = std::fs::remove_dir(&path);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_same_device_removes_tree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b/c")).unwrap();
        std::fs::write(dir.path().join("a/b/c/f"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("a/link")).unwrap();
        let dev = std::fs::metadata(dir.path()).unwrap().dev();
        delete_same_device(dir.path(), dev);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // The symlink's target was not followed.
        assert!(Path::new("/etc/passwd").exists());
    }

    #[test]
    fn delete_skips_other_devices() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        // Pretend the tree is on another device: nothing may be deleted.
        delete_same_device(dir.path(), u64::MAX);
        assert!(dir.path().join("f").exists());
    }

    #[test]
    fn refuses_when_new_root_is_not_a_mount() {
        // A fresh temp dir is on the same device as its parent... but "/" may differ from the
        // temp dir's device; use "/" itself so the device check must fire before anything else.
        let cwd = std::env::current_dir().unwrap();
        let err =
            switch_root(Path::new("/"), "/sbin/init", &[], Path::new("/dev/null")).unwrap_err();
        std::env::set_current_dir(cwd).unwrap();
        assert!(matches!(err, SwitchRootError::NotAMount(_)), "{err}");
    }
}
