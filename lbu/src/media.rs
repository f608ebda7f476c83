//! Where overlays are stored (lbu/README.md, "Media"): `LBU_BACKUPDIR` (a plain directory, never
//! mounted) or `/media/$LBU_MEDIA`, mounted through fstab when needed and remounted read-write
//! for writing; whatever we changed is restored when the [`Target`] is dropped, after an error,
//! or on a signal (through [`crate::cleanup`]). `/proc/mounts` escapes (`\040` for a space) are
//! decoded, which upstream did not do.
//!
//! Writing to a medium always happens with synchronous updates (`sync`), whether lbu remounted
//! it or found it mounted read-write already: on FAT a rename only updates the directory slot
//! when the renamed inode is written back, while the replaced file's clusters are freed at once,
//! so without synchronous directory updates a power cut can leave the overlay's name pointing at
//! freed clusters (found by the qemu power-cut test). The kernel ignores `dirsync` on a remount
//! (it is not among the flags a remount may change), but `sync` implies it and can be changed;
//! the previous setting (`async`) is put back afterwards.

use crate::cleanup::{self, Action};
use crate::Error;
use std::path::{Path, PathBuf};

/// Base directory of media mount points.
pub const MEDIA_BASE: &str = "/media";

/// An opened storage target.
#[derive(Debug)]
pub struct Target {
    /// The directory holding the overlays.
    pub dir: PathBuf,
    restore: Option<u64>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(id) = self.restore.take() {
            cleanup::run(id);
        }
    }
}

/// Decode the octal escapes of a `/proc/mounts` field.
pub fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push(((b[i + 1] - b'0') << 6) | ((b[i + 2] - b'0') << 3) | (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How a mount point is mounted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MountState {
    /// Read-only.
    pub ro: bool,
    /// Synchronous writes (`sync`, which implies synchronous directory updates) or `dirsync`.
    pub sync: bool,
}

/// Mount state of `dir` from `/proc/mounts` text: `None` if not mounted (the last entry for a
/// mount point wins: it is the one on top).
pub fn mount_state(mounts: &str, dir: &Path) -> Option<MountState> {
    let want = dir.to_string_lossy();
    let want = want.trim_end_matches('/');
    let mut state = None;
    for line in mounts.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() >= 4 && unescape(f[1]) == want {
            let has = |o: &str| f[3].split(',').any(|x| x == o);
            state = Some(MountState {
                ro: has("ro"),
                sync: has("sync") || has("dirsync"),
            });
        }
    }
    state
}

/// The error for a commit with nowhere to write, saying so plainly on a netbooted system.
pub fn no_medium() -> Error {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    if netbooted(&cmdline) {
        Error::Netbooted
    } else {
        Error::NoMedia
    }
}

/// Whether a kernel command line says the system came from the network (an overlay or a
/// repository given by URL, or `ip=` networking in the initramfs).
pub fn netbooted(cmdline: &str) -> bool {
    cmdline.split_whitespace().any(|w| {
        w.starts_with("ip=")
            || ["apkovl=", "alpine_repo=", "modloop="].iter().any(|k| {
                w.strip_prefix(k)
                    .is_some_and(|v| v.starts_with("http://") || v.starts_with("https://"))
            })
    })
}

fn current_state(dir: &Path) -> Option<MountState> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mount_state(&mounts, dir)
}

fn mount(args: &[&str], dir: &Path) -> bool {
    std::process::Command::new("mount")
        .args(args)
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Open the target: `backupdir` wins; else `/media/<media>` (must be a directory), mounted if
/// needed and, when `writable`, remounted read-write.
pub fn open(
    backupdir: Option<&Path>,
    media: Option<&str>,
    writable: bool,
) -> Result<Target, Error> {
    if let Some(d) = backupdir {
        if !d.is_dir() {
            return Err(Error::Io {
                path: d.into(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        return Ok(Target {
            dir: d.to_path_buf(),
            restore: None,
        });
    }
    let Some(media) = media else {
        return Err(Error::NoMedia);
    };
    if media.is_empty() || media.contains('/') || media == "." || media == ".." {
        return Err(Error::BadMedia(media.into()));
    }
    let dir = Path::new(MEDIA_BASE).join(media);
    if !dir.is_dir() {
        return Err(
            if netbooted(&std::fs::read_to_string("/proc/cmdline").unwrap_or_default()) {
                Error::Netbooted
            } else {
                Error::BadMedia(media.into())
            },
        );
    }
    let mut unmount = false;
    let before = match current_state(&dir) {
        Some(s) => s,
        None => {
            if !mount(&[], &dir) {
                return Err(Error::Mount(dir));
            }
            unmount = true;
            current_state(&dir).unwrap_or(MountState {
                ro: false,
                sync: false,
            })
        }
    };
    let remount = writable && (before.ro || !before.sync);
    // Register before remounting so a signal in between still restores.
    let id = cleanup::register(Action::RestoreMount {
        dir: dir.clone(),
        options: (remount && !unmount).then(|| {
            format!(
                "remount,{},{}",
                if before.ro { "ro" } else { "rw" },
                if before.sync { "sync" } else { "async" }
            )
        }),
        unmount,
    });
    let target = Target {
        dir: dir.clone(),
        restore: Some(id),
    };
    if remount
        && (!mount(&["-o", "remount,rw,sync"], &dir)
            || current_state(&dir)
                != Some(MountState {
                    ro: false,
                    sync: true,
                }))
    {
        return Err(Error::Mount(dir));
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_mounts_escapes() {
        let m = "/dev/sda1 /media/usb vfat ro,relatime 0 0\n/dev/sdb1 /media/my\\040stick ext4 rw,dirsync 0 0\n/dev/sda1 /media/usb vfat rw,sync,relatime 0 0\n";
        let rw = |sync| Some(MountState { ro: false, sync });
        assert_eq!(mount_state(m, Path::new("/media/usb")), rw(true));
        assert_eq!(mount_state(m, Path::new("/media/my stick")), rw(true));
        assert_eq!(mount_state(m, Path::new("/media/my\\040stick")), None);
        assert_eq!(mount_state(m, Path::new("/media/cdrom")), None);
        assert_eq!(unescape("a\\011b\\134c"), "a\tb\\c");
    }

    #[test]
    fn netboot_is_recognised_from_the_command_line() {
        assert!(netbooted("BOOT_IMAGE=vmlinuz ip=dhcp modloop=none"));
        assert!(netbooted("apkovl=http://10.0.2.2/{MAC}.apkovl.tar.gz"));
        assert!(netbooted("alpine_repo=https://mirror/v3.19/main"));
        assert!(!netbooted(
            "modloop=none alpine_dev=usbdisk apkovl=usb:/fw.apkovl.tar.gz"
        ));
        assert!(!netbooted(""));
    }
}
