//! Durable file operations on a medium (lbu/README.md, "Crash safety"): a new file is written
//! under a temporary name the boot never considers, fsynced, renamed into place, and the renamed
//! file and its directory are fsynced. The file fsync matters on FAT, where the directory slot of
//! a renamed file is only written with the file's own metadata.

use crate::{cleanup, Error, IoResultExt};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `fsync` a directory so renames and new names in it are durable.
pub fn fsync_dir(dir: &Path) -> Result<(), Error> {
    let f = std::fs::File::open(dir).at(dir)?;
    match f.sync_all() {
        // Some filesystems (and FUSE) cannot fsync directories; nothing more can be done there.
        Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EINVAL as i32) => Ok(()),
        r => r.at(dir),
    }
}

/// A temporary file in a medium's directory, removed by [`cleanup`] (also on a signal) unless
/// [`install`]ed.
pub struct Temp {
    /// Its path (`.lbu-PID-N.tmp`: never matches the boot's `*.apkovl.tar.gz*` pattern).
    pub path: PathBuf,
    id: u64,
}

/// Write `data` to a new temporary file in `dir`, fsynced. A name left by a commit that a power
/// cut interrupted is skipped, never reused nor removed here: after a reboot the same PID comes
/// back (a diskless boot is deterministic), and the leftover is not this process's to delete.
pub fn write_temp(dir: &Path, data: &[u8]) -> Result<Temp, Error> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let (path, mut f) = loop {
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!(".lbu-{}-{n}.tmp", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => break (path, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < u32::MAX => {}
            Err(e) => return Err(Error::Io { path, source: e }),
        }
    };
    let id = cleanup::register(cleanup::Action::RemoveFile(path.clone()));
    if let Err(e) = f.write_all(data).and_then(|()| f.sync_all()) {
        drop(f);
        cleanup::run(id);
        return Err(Error::Io { path, source: e });
    }
    Ok(Temp { path, id })
}

/// Rename a finished temporary file to `dir/name`, then fsync the renamed file and the
/// directory.
pub fn install(tmp: Temp, dir: &Path, name: &str) -> Result<(), Error> {
    let dst = dir.join(name);
    std::fs::rename(&tmp.path, &dst).at(&dst)?;
    cleanup::forget(tmp.id);
    std::fs::File::open(&dst)
        .and_then(|f| f.sync_all())
        .at(&dst)?;
    fsync_dir(dir)
}

/// Write `data` to `dir/name` durably (temporary file, fsync, rename, fsync).
pub fn write_file(dir: &Path, name: &str, data: &[u8]) -> Result<(), Error> {
    install(write_temp(dir, data)?, dir, name)
}

/// Copy `src` to `dir/name` durably.
pub fn copy(src: &Path, dir: &Path, name: &str) -> Result<(), Error> {
    let data = std::fs::read(src).at(src)?;
    write_file(dir, name, &data)
}

/// Rename `dir/from` to `dir/to` (same directory) and make it durable.
pub fn rename(dir: &Path, from: &str, to: &str) -> Result<(), Error> {
    let dst = dir.join(to);
    std::fs::rename(dir.join(from), &dst).at(&dst)?;
    std::fs::File::open(&dst)
        .and_then(|f| f.sync_all())
        .at(&dst)?;
    fsync_dir(dir)
}

/// Remove `dir/name` if it exists; `true` when it did.
pub fn remove(dir: &Path, name: &str) -> Result<bool, Error> {
    let p = dir.join(name);
    match std::fs::remove_file(&p) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::Io { path: p, source: e }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The power-cut scenario found it: a temporary file left by an interrupted commit carries
    /// the PID the next boot's lbu gets again, and the commit failed with "File exists".
    #[test]
    fn temporary_names_left_by_a_crash_are_skipped_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let pid = std::process::id();
        for n in 0..256 {
            std::fs::write(dir.path().join(format!(".lbu-{pid}-{n}.tmp")), b"old").unwrap();
        }
        let tmp = write_temp(dir.path(), b"new").unwrap();
        assert_eq!(std::fs::read(&tmp.path).unwrap(), b"new");
        install(tmp, dir.path(), "x.apkovl.tar.gz").unwrap();
        for n in 0..256 {
            let left = dir.path().join(format!(".lbu-{pid}-{n}.tmp"));
            assert_eq!(std::fs::read(left).unwrap(), b"old");
        }
    }
}
