//! Where overlays are stored (lbu.md §8.1): `LBU_BACKUPDIR` (a plain directory, never mounted)
//! or `/media/$LBU_MEDIA`, mounted through fstab when needed and remounted read-write for
//! writing; whatever we changed is restored when the [`Target`] is dropped, after an error, or on
//! a signal (through [`crate::cleanup`]). `/proc/mounts` escapes (`\040` for a space) are decoded,
//! which upstream did not do.

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

/// Mount state of `dir` from `/proc/mounts` text: `None` if not mounted, else whether read-only
/// (the last entry for a mount point wins: it is the one on top).
pub fn mount_state(mounts: &str, dir: &Path) -> Option<bool> {
    let want = dir.to_string_lossy();
    let want = want.trim_end_matches('/');
    let mut state = None;
    for line in mounts.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() >= 4 && unescape(f[1]) == want {
            state = Some(f[3].split(',').any(|o| o == "ro"));
        }
    }
    state
}

fn current_state(dir: &Path) -> Option<bool> {
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
        return Err(Error::BadMedia(media.into()));
    }
    let mut unmount = false;
    let ro = match current_state(&dir) {
        Some(ro) => ro,
        None => {
            if !mount(&[], &dir) {
                return Err(Error::Mount(dir));
            }
            unmount = true;
            current_state(&dir).unwrap_or(false)
        }
    };
    // Register before remounting so a signal in between still restores.
    let id = cleanup::register(Action::RestoreMount {
        dir: dir.clone(),
        remount_ro: ro && writable,
        unmount,
    });
    let target = Target {
        dir: dir.clone(),
        restore: Some(id),
    };
    // dirsync: on FAT a rename only updates the directory slot when the renamed inode is written
    // back, while the replaced file's clusters are freed at once; synchronous directory updates
    // keep that order on disk, so a power cut never leaves the overlay's name pointing at freed
    // clusters (found by the qemu power-cut test).
    if ro
        && writable
        && (!mount(&["-o", "remount,rw,dirsync"], &dir) || current_state(&dir) != Some(false))
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
        let m = "/dev/sda1 /media/usb vfat ro,relatime 0 0\n/dev/sdb1 /media/my\\040stick ext4 rw 0 0\n/dev/sda1 /media/usb vfat rw,relatime 0 0\n";
        assert_eq!(mount_state(m, Path::new("/media/usb")), Some(false));
        assert_eq!(mount_state(m, Path::new("/media/my stick")), Some(false));
        assert_eq!(mount_state(m, Path::new("/media/my\\040stick")), None);
        assert_eq!(mount_state(m, Path::new("/media/cdrom")), None);
        assert_eq!(unescape("a\\011b\\134c"), "a\tb\\c");
    }
}
