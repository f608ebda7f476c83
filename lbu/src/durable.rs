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

/// Write `data` to a new temporary file in `dir`, fsynced. The first time in this process, the
/// temporary files that interrupted commits left in `dir` are removed first
/// ([`remove_leftovers`]); a name still taken is skipped, never reused.
pub fn write_temp(dir: &Path, data: &[u8]) -> Result<Temp, Error> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    static SWEPT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    {
        let mut swept = SWEPT.lock().unwrap_or_else(|e| e.into_inner());
        if !swept.iter().any(|d| d == dir) {
            remove_leftovers(dir);
            swept.push(dir.to_path_buf());
        }
    }
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

/// Remove the `.lbu-PID-N.tmp` files in `dir` that no running lbu can still use: those of a PID
/// that no longer runs (a commit a power cut or a kill interrupted), and those with this
/// process's own PID, which after a reboot comes back (a diskless boot is deterministic): called
/// before this process makes any there, so they are an earlier boot's. One of another running
/// process (a concurrent commit) is kept, and all are kept when `/proc` cannot tell. Without this,
/// every interrupted commit left an overlay-sized file on the medium for good. Best effort: a
/// file that cannot be removed stays, its name is skipped.
pub fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let proc_tells = Path::new("/proc/self").exists();
    let own = std::process::id();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(leftover_pid) else {
            continue;
        };
        let gone = pid == own || (proc_tells && !Path::new("/proc").join(pid.to_string()).exists());
        if gone && e.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The PID in a temporary file name `.lbu-PID-N.tmp`.
fn leftover_pid(name: &str) -> Option<u32> {
    let (pid, n) = name
        .strip_prefix(".lbu-")?
        .strip_suffix(".tmp")?
        .split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(pid) && digits(n))
        .then(|| pid.parse().ok())
        .flatten()
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
    /// the PID the next boot's lbu gets again, and the commit failed with "File exists". Now such
    /// leftovers (this PID's from before, a dead PID's) are removed before the first write; a
    /// running process's, and other files, stay.
    #[test]
    fn temporary_files_left_by_a_crash_are_removed_a_running_commits_kept() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let pid = std::process::id();
        // A PID that runs (our parent) and one that does not (beyond the kernel's pid_max).
        let parent = std::os::unix::process::parent_id();
        let dead = 1u32 << 23;
        for n in 0..256 {
            std::fs::write(d.join(format!(".lbu-{pid}-{n}.tmp")), b"old").unwrap();
        }
        let kept = [
            format!(".lbu-{parent}-0.tmp"),
            format!(".lbu-{pid}-x.tmp"),
            format!(".lbu-{pid}-1.tmp.keep"),
            "x.apkovl.tar.gz".to_string(),
        ];
        for k in &kept {
            std::fs::write(d.join(k), b"keep").unwrap();
        }
        std::fs::write(d.join(format!(".lbu-{dead}-3.tmp")), b"old").unwrap();
        let tmp = write_temp(d, b"new").unwrap();
        assert_eq!(std::fs::read(&tmp.path).unwrap(), b"new");
        // A second write in the same process does not remove the first one's file.
        let second = write_temp(d, b"second").unwrap();
        assert!(tmp.path.exists() && second.path.exists());
        install(tmp, d, "y.apkovl.tar.gz").unwrap();
        install(second, d, "z.apkovl.tar.gz").unwrap();
        let mut left: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut want: Vec<String> = kept.to_vec();
        want.extend(["y.apkovl.tar.gz".to_string(), "z.apkovl.tar.gz".to_string()]);
        want.sort();
        assert_eq!(left, want);
        assert_eq!(std::fs::read(d.join("y.apkovl.tar.gz")).unwrap(), b"new");
    }

    #[test]
    fn leftover_names() {
        assert_eq!(leftover_pid(".lbu-12-0.tmp"), Some(12));
        assert_eq!(leftover_pid(".lbu-12-0.tmp.x"), None);
        assert_eq!(leftover_pid(".lbu--0.tmp"), None);
        assert_eq!(leftover_pid(".lbu-12-.tmp"), None);
        assert_eq!(leftover_pid("lbu-12-0.tmp"), None);
        assert_eq!(leftover_pid(".lbu-+12-0.tmp"), None);
    }
}
