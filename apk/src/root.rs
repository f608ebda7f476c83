//! The target root: a directory handle opened once, with every path resolved beneath it
//! (`openat2(RESOLVE_IN_ROOT)`), so absolute symlinks inside the root can never lead outside it.

use nix::fcntl::{openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, FileStat, Mode};
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A root directory.
#[derive(Debug)]
pub struct Root {
    /// Path as given (for messages and for chroot).
    pub path: PathBuf,
    fd: OwnedFd,
}

fn errno(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// An I/O error as apk words it: the system message without Rust's ` (os error N)` suffix.
pub fn io_message(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s,
    }
}

/// Split `a/b/c` into (`a/b`, `c`); a name without `/` has parent "".
pub fn split_parent(rel: &str) -> (&str, &str) {
    match rel.rfind('/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => ("", rel),
    }
}

impl Root {
    /// Open `path` (which must be a directory).
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?;
        Ok(Root {
            path: path.to_path_buf(),
            fd,
        })
    }

    /// The root's own fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Host path of `rel` (for messages and reading with std).
    pub fn host_path(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.path.clone()
        } else {
            self.path.join(rel)
        }
    }

    fn how(flags: OFlag, mode: u32) -> OpenHow {
        OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .mode(Mode::from_bits_truncate(mode))
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
    }

    /// Open directory `rel` (empty: the root) as an `O_PATH` handle for `*at` calls.
    pub fn dir(&self, rel: &str) -> io::Result<OwnedFd> {
        let p = if rel.is_empty() { "." } else { rel };
        openat2(
            self.fd.as_fd(),
            p,
            Self::how(OFlag::O_PATH | OFlag::O_DIRECTORY, 0),
        )
        .map_err(errno)
    }

    /// Open `rel` for reading (symlinks in the last component are followed, within the root).
    pub fn open_read(&self, rel: &str) -> io::Result<std::fs::File> {
        let fd = openat2(self.fd.as_fd(), rel, Self::how(OFlag::O_RDONLY, 0)).map_err(errno)?;
        Ok(std::fs::File::from(fd))
    }

    /// Read a whole file, `None` if it does not exist. Files of the root's state only: more than
    /// [`crate::limits::STATE_FILE`] bytes are refused.
    pub fn read_opt(&self, rel: &str) -> io::Result<Option<Vec<u8>>> {
        match self.open_read(rel) {
            Ok(mut f) => {
                let mut v = Vec::new();
                crate::limits::read_into(&mut f, crate::limits::STATE_FILE, &mut v)?;
                Ok(Some(v))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `lstat` of `rel` (the last component is not followed).
    pub fn lstat(&self, rel: &str) -> io::Result<FileStat> {
        let (parent, name) = split_parent(rel);
        if name.is_empty() {
            return fstatat(self.fd.as_fd(), ".", AtFlags::AT_SYMLINK_NOFOLLOW).map_err(errno);
        }
        let d = self.dir(parent)?;
        fstatat(d.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(errno)
    }

    /// `lstat` returning `None` when the path does not exist.
    pub fn lstat_opt(&self, rel: &str) -> io::Result<Option<FileStat>> {
        match self.lstat(rel) {
            Ok(s) => Ok(Some(s)),
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Create directories along `rel` with mode 0755 where missing.
    pub fn mkdir_p(&self, rel: &str, mode: u32) -> io::Result<()> {
        let mut cur = String::new();
        for comp in rel.split('/').filter(|c| !c.is_empty()) {
            let parent = self.dir(&cur)?;
            match nix::sys::stat::mkdirat(parent.as_fd(), comp, Mode::from_bits_truncate(mode)) {
                Ok(()) | Err(nix::Error::EEXIST) => {}
                Err(e) => return Err(errno(e)),
            }
            if !cur.is_empty() {
                cur.push('/');
            }
            cur.push_str(comp);
        }
        Ok(())
    }

    /// Write `data` to `rel` atomically: `rel.new`, fsync, rename, fsync the directory.
    pub fn write_atomic(&self, rel: &str, data: &[u8], mode: u32) -> io::Result<()> {
        let (parent, name) = split_parent(rel);
        let d = self.dir(parent)?;
        atomic_write_at(d.as_fd(), name, data, mode)
    }

    /// Names in directory `rel` (resolved beneath the root), sorted; a missing directory has none.
    pub fn list(&self, rel: &str) -> io::Result<Vec<String>> {
        let p = if rel.is_empty() { "." } else { rel };
        let fd = match openat2(
            self.fd.as_fd(),
            p,
            Self::how(OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0),
        ) {
            Ok(fd) => fd,
            Err(nix::Error::ENOENT | nix::Error::ENOTDIR) => return Ok(Vec::new()),
            Err(e) => return Err(errno(e)),
        };
        let mut dir = nix::dir::Dir::from_fd(fd).map_err(errno)?;
        let mut names: Vec<String> = dir
            .iter()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "." && n != "..")
            .collect();
        names.sort();
        Ok(names)
    }

    /// Open directory `rel` itself, never a symlink in its place (`O_NOFOLLOW` on the last
    /// component, the rest resolved beneath the root): for mounting onto it through
    /// `/proc/self/fd` and for changing its mode.
    pub fn open_dir_nofollow(&self, rel: &str, flags: OFlag) -> io::Result<OwnedFd> {
        openat2(
            self.fd.as_fd(),
            rel,
            Self::how(flags | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW, 0),
        )
        .map_err(errno)
    }

    /// Set the mode of directory `rel` (not of what a symlink there points to).
    pub fn chmod_dir(&self, rel: &str, mode: u32) -> io::Result<()> {
        let fd = self.open_dir_nofollow(rel, OFlag::O_RDONLY)?;
        nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(mode)).map_err(errno)
    }

    /// The target of symlink `rel` (the last component is not followed).
    pub fn read_link(&self, rel: &str) -> io::Result<Vec<u8>> {
        let (parent, name) = split_parent(rel);
        let d = self.dir(parent)?;
        let t = nix::fcntl::readlinkat(&d, name).map_err(errno)?;
        Ok(t.as_bytes().to_vec())
    }

    /// Open regular file `rel` for reading, never through a symlink in its place.
    pub fn open_read_nofollow(&self, rel: &str) -> io::Result<std::fs::File> {
        let fd = openat2(
            self.fd.as_fd(),
            rel,
            Self::how(OFlag::O_RDONLY | OFlag::O_NOFOLLOW, 0),
        )
        .map_err(errno)?;
        Ok(std::fs::File::from(fd))
    }

    /// Remove a file (not a directory); missing is fine.
    pub fn unlink(&self, rel: &str) -> io::Result<()> {
        let (parent, name) = split_parent(rel);
        let d = match self.dir(parent) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        match nix::unistd::unlinkat(d.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(nix::Error::ENOENT) => Ok(()),
            Err(e) => Err(errno(e)),
        }
    }

    /// Remove an empty directory; a non-empty or missing one is left alone.
    pub fn rmdir(&self, rel: &str) -> io::Result<bool> {
        let (parent, name) = split_parent(rel);
        let Ok(d) = self.dir(parent) else {
            return Ok(false);
        };
        match nix::unistd::unlinkat(d.as_fd(), name, nix::unistd::UnlinkatFlags::RemoveDir) {
            Ok(()) => Ok(true),
            Err(
                nix::Error::ENOTEMPTY
                | nix::Error::EEXIST
                | nix::Error::ENOENT
                | nix::Error::EBUSY
                | nix::Error::ENOTDIR,
            ) => Ok(false),
            Err(e) => Err(errno(e)),
        }
    }
}

/// Write `name` in directory `dir` atomically (temp file, fsync, rename, fsync the directory).
pub fn atomic_write_at(dir: BorrowedFd<'_>, name: &str, data: &[u8], mode: u32) -> io::Result<()> {
    use std::io::Write;
    let tmp = format!("{name}.new");
    let fd = nix::fcntl::openat(
        dir,
        tmp.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode),
    )
    .map_err(errno)?;
    let mut f = std::fs::File::from(fd);
    let res = f.write_all(data).and_then(|_| f.sync_all());
    if let Err(e) = res {
        let _ = nix::unistd::unlinkat(dir, tmp.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
        return Err(e);
    }
    drop(f);
    nix::fcntl::renameat(dir, tmp.as_str(), dir, name).map_err(errno)?;
    // fsync the directory so the rename itself is durable.
    if let Ok(dfd) = nix::fcntl::openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        let _ = nix::unistd::fsync(&dfd);
    }
    Ok(())
}

/// fsync a directory so renames into it are durable (best effort: some file systems refuse).
pub fn fsync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Atomic write of a host path (for files outside any root, e.g. `apk index -o`).
pub fn atomic_write(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let d = nix::fcntl::open(
        parent,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)?;
    atomic_write_at(
        d.as_fd(),
        &OsStr::from_bytes(name.as_bytes()).to_string_lossy(),
        data,
        mode,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_stays_inside_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/", root.join("up")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("etc/dotdot")).unwrap();
        std::fs::write(root.join("etc/x"), "inside").unwrap();
        let r = Root::open(&root).unwrap();
        // "/etc" through the absolute link is the root's etc, not the host's.
        let d = r.dir("up/etc").unwrap();
        let st = fstatat(d.as_fd(), "x", AtFlags::AT_SYMLINK_NOFOLLOW).unwrap();
        assert_eq!(st.st_size, 6);
        assert!(r.dir("etc/dotdot/etc").is_ok());
        assert_eq!(r.read_opt("etc/dotdot/etc/x").unwrap().unwrap(), b"inside");
        r.write_atomic("up/etc/y", b"z", 0o644).unwrap();
        assert!(root.join("etc/y").exists());
        r.mkdir_p("a/b/c", 0o755).unwrap();
        assert!(root.join("a/b/c").is_dir());
        assert!(r.lstat_opt("nope/x").unwrap().is_none());
        assert_eq!(r.list("up/etc").unwrap(), ["dotdot", "x", "y"]);
        assert!(r.list("nope").unwrap().is_empty());
    }

    /// A symlink where a directory is expected is never followed out of the root, nor treated as
    /// the directory.
    #[test]
    fn symlinked_directories_are_refused_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("tmp")).unwrap();
        let r = Root::open(&root).unwrap();
        assert!(r.chmod_dir("tmp", 0o1777).is_err());
        assert!(r.open_dir_nofollow("tmp", OFlag::O_PATH).is_err());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&outside).unwrap().permissions().mode();
        assert_eq!(mode & 0o1000, 0, "the host directory was chmodded");
    }
}
