//! Putting the medium at `-o` all at once: it is built under a temporary name next to the target
//! (`OUT.tmp`, a file or a directory) and renamed into place only when complete, so an error or a
//! crash never leaves a half-written medium at `-o`. Temporary paths are removed when dropped
//! unless committed.

use std::fs;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoResultExt};

/// A temporary file or directory that is removed on drop unless kept.
#[derive(Debug)]
pub struct TempPath {
    path: PathBuf,
    keep: bool,
}

impl TempPath {
    /// `target` with `suffix` appended to its name; a stale one from an interrupted run is
    /// removed first.
    pub fn beside(target: &Path, suffix: &str) -> Result<Self, Error> {
        let mut name = target.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        let path = target.with_file_name(name);
        remove(&path).at(&path)?;
        Ok(TempPath { path, keep: false })
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames it over `target` and syncs the parent directory so the rename is durable. A
    /// directory target is swapped with it in one step (`renameat2(RENAME_EXCHANGE)`), so `target`
    /// never stops existing (clients of a served tree see the old tree or the new one), and the
    /// old tree, now at the temporary name, is removed afterwards. Where the filesystem cannot
    /// swap (NFS; vfat before Linux 6.0), the old tree is renamed aside first (to
    /// `OUT.mkimage-old.PID`, a name no one else uses: an existing one is an error, never
    /// removed), the new one into place, and the old one removed after the directory sync:
    /// `target` is missing between the two renames. If the second rename fails the old tree is
    /// put back; if that fails too, both trees are kept and the error says where they are.
    pub fn commit(self, target: &Path) -> Result<(), Error> {
        self.commit_with(target, exchange)
    }

    /// [`TempPath::commit`] with the swap given (tests stand in for a filesystem without one).
    fn commit_with(mut self, target: &Path, swap: SwapFn) -> Result<(), Error> {
        let is_dir = fs::symlink_metadata(&self.path).at(&self.path)?.is_dir();
        let swapped = is_dir && fs::symlink_metadata(target).is_ok_and(|m| m.is_dir());
        // The old tree, renamed aside where the filesystem cannot swap: removed on drop, after
        // the directory sync below.
        let mut aside = None;
        if swapped {
            match swap(&self.path, target) {
                Ok(()) => {}
                Err(e) if cannot_swap(&e) => aside = Some(self.replace_without_swap(target)?),
                Err(e) => return Err(e).at(target),
            }
        } else {
            fs::rename(&self.path, target).at(target)?;
            self.keep = true;
        }
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // After a swap, dropping `self` removes the old tree (now at the temporary name).
        if let Err(e) = fs::File::open(parent).and_then(|d| d.sync_all()) {
            // The new tree is in place but not durably: the old one stays where it is.
            self.keep = true;
            let old = match aside.as_mut() {
                Some(a) => {
                    a.keep = true;
                    a.path.clone()
                }
                None => self.path.clone(),
            };
            return Err(Error::Output {
                path: target.to_path_buf(),
                reason: format!(
                    "the new tree is in place, but syncing {} failed ({e}): the old tree is kept at {}",
                    parent.display(),
                    old.display()
                ),
            });
        }
        drop(aside);
        Ok(())
    }

    /// Renames the directory `target` aside and this tree into its place (see
    /// [`TempPath::commit`]); returns the old tree's new name.
    fn replace_without_swap(&mut self, target: &Path) -> Result<TempPath, Error> {
        let mut name = target.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".mkimage-old.{}", std::process::id()));
        let aside = target.with_file_name(name);
        if fs::symlink_metadata(&aside).is_ok() {
            return Err(Error::Output {
                path: target.to_path_buf(),
                reason: format!(
                    "{} exists: the old tree cannot be renamed aside (remove it)",
                    aside.display()
                ),
            });
        }
        fs::rename(target, &aside).at(target)?;
        let mut aside = TempPath {
            path: aside,
            keep: false,
        };
        if let Err(e) = fs::rename(&self.path, target) {
            if let Err(back) = fs::rename(&aside.path, target) {
                aside.keep = true;
                self.keep = true;
                return Err(Error::Output {
                    path: target.to_path_buf(),
                    reason: format!(
                        "the new tree could not be renamed into place ({e}) nor the old one put back ({back}): the old tree is at {}, the new one at {}",
                        aside.path.display(),
                        self.path.display()
                    ),
                });
            }
            aside.keep = true; // it is `target` again
            return Err(e).at(target);
        }
        Ok(aside)
    }
}

/// Swaps two paths in one step.
type SwapFn = fn(&Path, &Path) -> io::Result<()>;

/// `renameat2(a, b, RENAME_EXCHANGE)`.
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        a,
        rustix::fs::CWD,
        b,
        rustix::fs::RenameFlags::EXCHANGE,
    )
    .map_err(io::Error::from)
}

/// Whether a swap failed because the filesystem (or kernel) has none: `EINVAL` for a filesystem
/// without `RENAME_EXCHANGE`, `ENOSYS` for a kernel without `renameat2`, `EOPNOTSUPP`.
fn cannot_swap(e: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(
        Errno::from_io_error(e),
        Some(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP)
    )
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.keep {
            let _ = remove(&self.path);
        }
    }
}

fn remove(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Checks that `target` can receive a medium: its directory exists, and it is absent or of the
/// kind we write (a directory for `dir`, a regular file for images; never a device: an image is
/// written to a file and copied to the stick with dd).
pub fn check_target(target: &Path, want_dir: bool) -> Result<(), Error> {
    let bad = |reason: &str| Error::Output {
        path: target.to_path_buf(),
        reason: reason.to_string(),
    };
    if target.file_name().is_none() {
        return Err(bad("not a file or directory name"));
    }
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            return Err(bad("its directory does not exist"));
        }
    }
    match fs::symlink_metadata(target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io {
            path: target.to_path_buf(),
            source: e,
        }),
        Ok(m) if m.file_type().is_block_device() || m.file_type().is_char_device() => Err(bad(
            "is a device; write the image to a file and copy it with dd",
        )),
        Ok(m) if want_dir && !m.is_dir() => Err(bad("exists and is not a directory")),
        Ok(_) if want_dir && !is_replaceable_dir(target).at(target)? => Err(bad(&format!(
            "exists, is not empty and holds no {}: not a tree mkimage wrote, so it is not replaced (remove it or choose a new directory)",
            bootspec::medium::RELEASE_FILE
        ))),
        Ok(m) if !want_dir && m.is_dir() => Err(bad("is a directory")),
        Ok(_) => Ok(()),
    }
}

/// Whether an existing directory may be replaced by a tree: empty, or a tree mkimage wrote (it
/// holds the release file at its top).
fn is_replaceable_dir(dir: &Path) -> io::Result<bool> {
    if fs::symlink_metadata(dir.join(bootspec::medium::RELEASE_FILE)).is_ok_and(|m| m.is_file()) {
        return Ok(true);
    }
    Ok(fs::read_dir(dir)?.next().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names in `dir`.
    fn names(dir: &Path) -> Vec<std::ffi::OsString> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect()
    }

    /// Where the filesystem cannot swap, the new tree still replaces the old one, nothing is left
    /// beside it; a swap that fails otherwise is an error naming the target, the old tree kept.
    #[test]
    fn a_tree_replaces_the_old_one_where_the_filesystem_cannot_swap() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("medium");
        let new_tree = || {
            let tmp = TempPath::beside(&target, ".tmp").unwrap();
            fs::create_dir(tmp.path()).unwrap();
            fs::write(tmp.path().join("new"), b"x").unwrap();
            tmp
        };
        fs::create_dir(&target).unwrap();
        fs::write(target.join("old"), b"x").unwrap();
        let no_swap: SwapFn = |_, _| Err(io::Error::from_raw_os_error(22)); // EINVAL
        new_tree().commit_with(&target, no_swap).unwrap();
        assert!(target.join("new").exists() && !target.join("old").exists());
        assert_eq!(names(t.path()), ["medium"]);

        let denied: SwapFn = |_, _| Err(io::Error::from_raw_os_error(13)); // EACCES
        fs::write(target.join("kept"), b"x").unwrap();
        let e = new_tree().commit_with(&target, denied).unwrap_err();
        assert!(e.to_string().contains("medium"), "{e}");
        assert!(target.join("kept").exists());
        assert_eq!(names(t.path()), ["medium"]);

        // A directory at the name the old tree would go to is someone's: an error, kept.
        let theirs = t
            .path()
            .join(format!("medium.mkimage-old.{}", std::process::id()));
        fs::create_dir(&theirs).unwrap();
        fs::write(theirs.join("mine"), b"x").unwrap();
        let e = new_tree().commit_with(&target, no_swap).unwrap_err();
        assert!(e.to_string().contains("exists"), "{e}");
        assert!(theirs.join("mine").exists() && target.join("kept").exists());
        fs::remove_dir_all(&theirs).unwrap();

        // The new tree cannot be renamed into place (here: it vanished): the old one is put back.
        let vanished: SwapFn = |a, _| {
            fs::remove_dir_all(a)?;
            Err(io::Error::from_raw_os_error(22))
        };
        let e = new_tree().commit_with(&target, vanished).unwrap_err();
        assert!(e.to_string().contains("medium"), "{e}");
        assert!(target.join("kept").exists(), "the old tree is back");
        assert_eq!(names(t.path()), ["medium"]);
    }

    #[test]
    fn temp_paths_vanish_unless_committed() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("medium");
        {
            let tmp = TempPath::beside(&target, ".tmp").unwrap();
            fs::create_dir(tmp.path()).unwrap();
            fs::write(tmp.path().join("f"), b"x").unwrap();
        }
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 0);

        let tmp = TempPath::beside(&target, ".tmp").unwrap();
        fs::create_dir(tmp.path()).unwrap();
        fs::write(tmp.path().join("new"), b"x").unwrap();
        fs::create_dir(&target).unwrap();
        fs::write(target.join("old"), b"x").unwrap();
        fs::write(target.join(".alpine-release"), b"r\n").unwrap();
        check_target(&target, true).unwrap();
        tmp.commit(&target).unwrap();
        assert!(target.join("new").exists() && !target.join("old").exists());
        assert_eq!(names(t.path()), ["medium"]);
    }

    #[test]
    fn a_directory_mkimage_did_not_write_is_not_replaced() {
        let t = tempfile::tempdir().unwrap();
        let www = t.path().join("htdocs");
        fs::create_dir(&www).unwrap();
        assert!(
            check_target(&www, true).is_ok(),
            "an empty directory is fine"
        );
        fs::write(www.join("index.html"), b"<html>").unwrap();
        assert_eq!(
            check_target(&www, true).unwrap_err().to_string(),
            format!(
                "-o {}: exists, is not empty and holds no .alpine-release: not a tree mkimage wrote, so it is not replaced (remove it or choose a new directory)",
                www.display()
            )
        );
        assert_eq!(fs::read(www.join("index.html")).unwrap(), b"<html>");
    }

    #[test]
    fn targets_are_checked() {
        let t = tempfile::tempdir().unwrap();
        let file = t.path().join("f");
        fs::write(&file, b"").unwrap();
        assert!(check_target(&file, false).is_ok());
        assert!(check_target(&t.path().join("new"), true).is_ok());
        assert!(check_target(&file, true)
            .unwrap_err()
            .to_string()
            .ends_with("exists and is not a directory"));
        assert!(check_target(t.path(), false)
            .unwrap_err()
            .to_string()
            .ends_with("is a directory"));
        assert!(check_target(&t.path().join("no/x"), false)
            .unwrap_err()
            .to_string()
            .ends_with("its directory does not exist"));
        assert!(check_target(Path::new("/dev/null"), false)
            .unwrap_err()
            .to_string()
            .contains("is a device"));
    }
}
