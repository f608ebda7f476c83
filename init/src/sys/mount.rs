//! Mounts: the pseudo filesystems, media, the tmpfs root, and the mounts carried into the new
//! root.
//!
//! Mounts into the new root (the bind mounts package scripts need, the moves at switch_root) go
//! to a directory handle resolved beneath it ([`super::RootDir::mount_point`]), never to a path
//! string: the new root holds an overlay and packages, and a symlink there (`proc -> /`,
//! `media -> /`) must not send a mount over the initramfs or anywhere else outside it. They use
//! the kernel's file-descriptor mount API (`open_tree` + `move_mount`, Linux 5.2), which needs no
//! `/proc` and no path lookup at the target.
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use rustix::mount::{move_mount as fd_move_mount, open_tree, MoveMountFlags, OpenTreeFlags};

use super::SysError;

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

/// `mount --move FROM TO`, both in the initramfs (media relocation under `/media`).
pub fn move_mount(from: &Path, to: &Path) -> Result<(), SysError> {
    mount(Some(from), to, None::<&str>, MsFlags::MS_MOVE, None::<&str>).map_err(|errno| {
        SysError::MoveMount {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            errno,
        }
    })
}

/// `umount TARGET` (a symlink at TARGET is not followed).
pub fn unmount(target: &Path) -> Result<(), SysError> {
    umount2(target, MntFlags::UMOUNT_NOFOLLOW).map_err(|errno| SysError::Unmount {
        target: target.to_path_buf(),
        errno,
    })
}

/// `umount -l TARGET`: used when retrying a boot, where a busy mount must not block the retry.
pub fn unmount_detach(target: &Path) -> Result<(), SysError> {
    umount2(target, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW).map_err(|errno| {
        SysError::Unmount {
            target: target.to_path_buf(),
            errno,
        }
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

/// A directory inside the new root, opened beneath it, that a mount can be attached to.
#[derive(Debug)]
pub struct MountPoint {
    pub(super) fd: OwnedFd,
    /// Its path, for messages (`/sysroot/proc`).
    pub path: PathBuf,
}

/// `mount --rbind FROM TARGET` where TARGET is a directory of the new root (the new root's
/// `/proc`, `/sys`, `/dev` while package scripts run).
pub fn bind_into(from: &Path, target: &MountPoint) -> Result<(), SysError> {
    let err = |e: rustix::io::Errno| SysError::BindMount {
        from: from.to_path_buf(),
        to: target.path.clone(),
        errno: nix::errno::Errno::from_raw(e.raw_os_error()),
    };
    let tree = open_tree(
        rustix::fs::CWD,
        from,
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::AT_RECURSIVE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )
    .map_err(err)?;
    attach(&tree, target).map_err(err)
}

/// `mount --move FROM TARGET` where TARGET is a directory of the new root (the initramfs's
/// mounts at switch_root).
pub fn move_into(from: &Path, target: &MountPoint) -> Result<(), SysError> {
    let err = |e: rustix::io::Errno| SysError::MoveMount {
        from: from.to_path_buf(),
        to: target.path.clone(),
        errno: nix::errno::Errno::from_raw(e.raw_os_error()),
    };
    // Without OPEN_TREE_CLONE the handle is the mount itself: attaching it elsewhere moves it.
    let tree = open_tree(rustix::fs::CWD, from, OpenTreeFlags::OPEN_TREE_CLOEXEC).map_err(err)?;
    attach(&tree, target).map_err(err)
}

fn attach(tree: &OwnedFd, target: &MountPoint) -> rustix::io::Result<()> {
    fd_move_mount(
        tree.as_fd(),
        "",
        target.fd.as_fd(),
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
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
    fn root_of_filesystem_is_a_mount_point() {
        assert!(is_mount_point(Path::new("/")));
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert!(!is_mount_point(&sub));
    }
}
