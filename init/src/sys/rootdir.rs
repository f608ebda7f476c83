//! Files inside the new root, resolved beneath a directory handle opened once.
//!
//! The new root holds an overlay that may come from an untrusted medium (`apkovl_verify=off`), so
//! its symlinks must not steer the init's writes (hostname, fstab, runlevel links) outside it:
//! every path is resolved with `openat2(RESOLVE_IN_ROOT)`, which treats absolute symlinks and `..`
//! as if the new root were `/`, exactly as they will resolve after `switch_root`. Writes are atomic
//! (temp file in the same directory, fsync, rename, fsync the directory).
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, renameat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmod, fstat, mkdirat, Mode, SFlag};
use nix::unistd::{fsync, symlinkat, unlinkat, UnlinkatFlags};

use super::SysError;

/// A directory handle that all paths are resolved beneath.
#[derive(Debug)]
pub struct RootDir {
    fd: OwnedFd,
    path: PathBuf,
}

/// What kind of file a path names (after following symlinks inside the root).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Anything else (device, fifo, socket).
    Other,
}

impl RootDir {
    /// Opens `path` as the root for later operations.
    pub fn open(path: &Path) -> Result<Self, SysError> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| SysError::Errno {
            path: path.to_path_buf(),
            errno,
        })?;
        Ok(Self {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The root's path in the initramfs (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `rel` as it appears in messages: `<root>/<rel>`.
    pub fn display(&self, rel: &str) -> PathBuf {
        self.path.join(strip(rel))
    }

    fn err(&self, rel: &str, errno: Errno) -> SysError {
        SysError::Errno {
            path: self.display(rel),
            errno,
        }
    }

    fn resolve(&self, rel: &str, flags: OFlag, mode: u32) -> Result<OwnedFd, Errno> {
        let rel = strip(rel);
        let rel = if rel.is_empty() { "." } else { rel };
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .mode(Mode::from_bits_truncate(mode))
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        loop {
            match openat2(self.fd.as_fd(), rel, how) {
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
                other => return other,
            }
        }
    }

    /// The kind of file at `rel`, or `None` when it does not exist.
    pub fn kind(&self, rel: &str) -> Option<FileKind> {
        let fd = self.resolve(rel, OFlag::O_PATH, 0).ok()?;
        let st = fstat(fd.as_fd()).ok()?;
        let fmt = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        Some(match fmt {
            SFlag::S_IFREG => FileKind::File,
            SFlag::S_IFDIR => FileKind::Dir,
            _ => FileKind::Other,
        })
    }

    /// Whether `rel` exists (after following symlinks inside the root).
    pub fn exists(&self, rel: &str) -> bool {
        self.kind(rel).is_some()
    }

    /// Whether `rel` exists as a name, even as a dangling symlink.
    pub fn exists_nofollow(&self, rel: &str) -> bool {
        self.resolve(rel, OFlag::O_PATH | OFlag::O_NOFOLLOW, 0)
            .is_ok()
    }

    /// Whether `rel` is a regular file with an execute bit (init must be runnable in the new root).
    pub fn is_executable(&self, rel: &str) -> bool {
        let Ok(fd) = self.resolve(rel, OFlag::O_PATH, 0) else {
            return false;
        };
        match fstat(fd.as_fd()) {
            Ok(st) => {
                st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFREG.bits()
                    && st.st_mode & 0o111 != 0
            }
            Err(_) => false,
        }
    }

    /// Reads `rel` (at most `limit` bytes: the new root holds files from an overlay), or `None`
    /// when it does not exist.
    pub fn read(&self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>, SysError> {
        match self.resolve(rel, OFlag::O_RDONLY, 0) {
            Ok(fd) => super::read_bounded(File::from(fd), &self.display(rel), limit).map(Some),
            Err(Errno::ENOENT) => Ok(None),
            Err(errno) => Err(self.err(rel, errno)),
        }
    }

    /// Reads `rel` as text (lossy, at most `limit` bytes), or `None` when it does not exist.
    pub fn read_string(&self, rel: &str, limit: u64) -> Result<Option<String>, SysError> {
        Ok(self
            .read(rel, limit)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// The directory `rel` of the root as a mount point, created (mode 0755) where missing. Every
    /// component is resolved beneath the root without following any symbolic link
    /// (`RESOLVE_NO_SYMLINKS`): a mount through a link the overlay or a package planted
    /// (`proc -> /`, `media -> /`) would land elsewhere, possibly outside the root, so such a
    /// path is an error instead.
    pub fn mount_point(&self, rel: &str) -> Result<super::MountPoint, SysError> {
        let strict = |sub: &str| -> Result<OwnedFd, Errno> {
            let how = OpenHow::new()
                .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
                .resolve(
                    ResolveFlag::RESOLVE_IN_ROOT
                        | ResolveFlag::RESOLVE_NO_SYMLINKS
                        | ResolveFlag::RESOLVE_NO_MAGICLINKS,
                );
            loop {
                match openat2(self.fd.as_fd(), if sub.is_empty() { "." } else { sub }, how) {
                    Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
                    other => return other,
                }
            }
        };
        let refuse = |sub: &str, errno: Errno| match errno {
            Errno::ELOOP => SysError::SymlinkMountPoint {
                path: self.display(sub),
            },
            errno => self.err(sub, errno),
        };
        let mut fd = strict("").map_err(|e| refuse("", e))?;
        let mut so_far = String::new();
        for name in strip(rel).split('/').filter(|c| !c.is_empty() && *c != ".") {
            if name == ".." {
                return Err(self.err(rel, Errno::EINVAL));
            }
            if !so_far.is_empty() {
                so_far.push('/');
            }
            so_far.push_str(name);
            fd = match strict(&so_far) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    match mkdirat(fd.as_fd(), name, Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(errno) => return Err(self.err(&so_far, errno)),
                    }
                    strict(&so_far).map_err(|e| refuse(&so_far, e))?
                }
                Err(errno) => return Err(refuse(&so_far, errno)),
            };
        }
        Ok(super::MountPoint {
            fd,
            path: self.display(rel),
        })
    }

    /// `mkdir -p rel` with `mode` for created directories; returns a handle on the directory.
    pub fn create_dir_all(&self, rel: &str, mode: u32) -> Result<OwnedFd, SysError> {
        let dir_flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
        let mut fd = self
            .resolve("", dir_flags, 0)
            .map_err(|e| self.err("", e))?;
        let mut so_far = PathBuf::new();
        for comp in Path::new(strip(rel)).components() {
            let Component::Normal(name) = comp else {
                continue;
            };
            so_far.push(name);
            let sub = so_far.to_string_lossy().into_owned();
            fd = match self.resolve(&sub, dir_flags, 0) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    match mkdirat(fd.as_fd(), name, Mode::from_bits_truncate(mode)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(errno) => return Err(self.err(&sub, errno)),
                    }
                    self.resolve(&sub, dir_flags, 0)
                        .map_err(|e| self.err(&sub, e))?
                }
                Err(errno) => return Err(self.err(&sub, errno)),
            };
        }
        Ok(fd)
    }

    fn parent_and_name<'a>(&self, rel: &'a str) -> Result<(OwnedFd, &'a str), SysError> {
        let rel = strip(rel);
        let (parent, name) = match rel.rsplit_once('/') {
            Some((p, n)) => (p, n),
            None => ("", rel),
        };
        if name.is_empty() || name == "." || name == ".." {
            return Err(self.err(rel, Errno::EINVAL));
        }
        Ok((self.create_dir_all(parent, 0o755)?, name))
    }

    /// Writes `rel` atomically with `mode` (parents created 0755): temp file in the same
    /// directory, fsync, rename over the target, fsync the directory. A symlink at `rel` is
    /// replaced, not followed.
    pub fn write_atomic(&self, rel: &str, data: &[u8], mode: u32) -> Result<(), SysError> {
        let (dir, name) = self.parent_and_name(rel)?;
        // O_PATH handles cannot be used for openat/fsync: reopen the directory for real.
        let dir = openat(
            dir.as_fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| self.err(rel, e))?;
        let tmp = format!(".{name}.init-tmp");
        let fd = openat(
            dir.as_fd(),
            tmp.as_str(),
            OFlag::O_WRONLY
                | OFlag::O_CREAT
                | OFlag::O_TRUNC
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode),
        )
        .map_err(|e| self.err(rel, e))?;
        let result = (|| {
            let mut file = File::from(fd);
            file.write_all(data).map_err(|source| SysError::Io {
                path: self.display(rel),
                source,
            })?;
            fchmod(file.as_fd(), Mode::from_bits_truncate(mode)).map_err(|e| self.err(rel, e))?;
            fsync(file.as_fd()).map_err(|e| self.err(rel, e))?;
            renameat(dir.as_fd(), tmp.as_str(), dir.as_fd(), name).map_err(|e| self.err(rel, e))?;
            fsync(dir.as_fd()).map_err(|e| self.err(rel, e))
        })();
        if result.is_err() {
            let _ = unlinkat(dir.as_fd(), tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        result
    }

    /// Appends `text` to `rel` (atomically: read, extend, rewrite), keeping the file's mode.
    /// `rel` is read with the bound `limit`.
    pub fn append(&self, rel: &str, text: &str, limit: u64) -> Result<(), SysError> {
        let mut data = self.read(rel, limit)?.unwrap_or_default();
        if !data.is_empty() && !data.ends_with(b"\n") {
            data.push(b'\n');
        }
        data.extend_from_slice(text.as_bytes());
        let mode = self.mode(rel).unwrap_or(0o644);
        self.write_atomic(rel, &data, mode)
    }

    /// Permission bits of `rel`, if it exists.
    pub fn mode(&self, rel: &str) -> Option<u32> {
        let fd = self.resolve(rel, OFlag::O_PATH, 0).ok()?;
        fstat(fd.as_fd()).ok().map(|st| st.st_mode & 0o7777)
    }

    /// `ln -s target rel`; an existing name at `rel` is left alone (`Ok(false)`).
    pub fn symlink(&self, rel: &str, target: &str) -> Result<bool, SysError> {
        let (dir, name) = self.parent_and_name(rel)?;
        match symlinkat(target, dir.as_fd(), name) {
            Ok(()) => Ok(true),
            Err(Errno::EEXIST) => Ok(false),
            Err(errno) => Err(self.err(rel, errno)),
        }
    }

    /// `rm -f rel` (not directories).
    pub fn remove_file(&self, rel: &str) -> Result<(), SysError> {
        let (dir, name) = self.parent_and_name(rel)?;
        match unlinkat(dir.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(errno) => Err(self.err(rel, errno)),
        }
    }

    /// `rmdir rel`: an empty directory (not followed if `rel` is a symlink; missing is fine).
    pub fn remove_empty_dir(&self, rel: &str) -> Result<(), SysError> {
        let (dir, name) = self.parent_and_name(rel)?;
        match unlinkat(dir.as_fd(), name, UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(errno) => Err(self.err(rel, errno)),
        }
    }

    /// `chmod mode rel` for an existing directory (`/root` gets 0700 after the overlay).
    pub fn chmod_dir(&self, rel: &str, mode: u32) -> Result<bool, SysError> {
        match self.resolve(rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0) {
            Ok(fd) => {
                fchmod(fd.as_fd(), Mode::from_bits_truncate(mode)).map_err(|e| self.err(rel, e))?;
                Ok(true)
            }
            Err(Errno::ENOENT) => Ok(false),
            Err(errno) => Err(self.err(rel, errno)),
        }
    }

    /// Copies the host file `src` (in the initramfs, at most `limit` bytes) to `rel`, keeping
    /// its permission bits.
    pub fn copy_in(&self, src: &Path, rel: &str, limit: u64) -> Result<(), SysError> {
        let io_err = |source| SysError::Io {
            path: src.to_path_buf(),
            source,
        };
        let file = File::open(src).map_err(io_err)?;
        let mode = file.metadata().map_err(io_err)?.permissions().mode() & 0o7777;
        let data = super::read_bounded(file, src, limit)?;
        self.write_atomic(rel, &data, mode)
    }

    /// Names in directory `rel` (sorted), or empty when it does not exist.
    pub fn list(&self, rel: &str) -> Vec<String> {
        let Ok(fd) = self.resolve(rel, OFlag::O_RDONLY | OFlag::O_DIRECTORY, 0) else {
            return Vec::new();
        };
        let Ok(mut dir) = nix::dir::Dir::from_fd(fd) else {
            return Vec::new();
        };
        let mut names: Vec<String> = dir
            .iter()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "." && n != "..")
            .collect();
        names.sort();
        names
    }
}

/// Strips leading `/` so that absolute paths are read as paths inside the root.
fn strip(rel: &str) -> &str {
    rel.trim_start_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root() -> (tempfile::TempDir, RootDir) {
        let dir = tempfile::tempdir().unwrap();
        let root = RootDir::open(dir.path()).unwrap();
        (dir, root)
    }

    #[test]
    fn write_atomic_creates_parents_and_mode() {
        let (dir, root) = root();
        root.write_atomic("/etc/apk/repositories", b"/media/usb/apks\n", 0o600)
            .unwrap();
        let path = dir.path().join("etc/apk/repositories");
        assert_eq!(std::fs::read(&path).unwrap(), b"/media/usb/apks\n");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!dir.path().join("etc/apk/.repositories.init-tmp").exists());
    }

    #[test]
    fn absolute_symlinks_resolve_inside_the_root() {
        let (dir, root) = root();
        let outside = tempfile::tempdir().unwrap();
        // An overlay could plant etc -> /<somewhere outside>; it must resolve inside the root.
        symlink(outside.path(), dir.path().join("etc")).unwrap();
        let inside_dir = dir.path().join(outside.path().strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside_dir).unwrap();
        root.write_atomic("etc/hostname", b"box\n", 0o644).unwrap();
        assert!(!outside.path().join("hostname").exists());
        let inside = dir
            .path()
            .join(outside.path().strip_prefix("/").unwrap())
            .join("hostname");
        assert_eq!(std::fs::read(inside).unwrap(), b"box\n");
    }

    #[test]
    fn dotdot_cannot_escape() {
        let (dir, root) = root();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        symlink("../../../../../../tmp", dir.path().join("up")).unwrap();
        root.write_atomic("up/x", b"1", 0o644).unwrap();
        assert!(dir.path().join("tmp/x").exists());
    }

    #[test]
    fn symlink_at_target_is_replaced_not_followed() {
        let (dir, root) = root();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        symlink("/victim", dir.path().join("hostname")).unwrap();
        root.write_atomic("hostname", b"new", 0o644).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(std::fs::read(dir.path().join("hostname")).unwrap(), b"new");
    }

    #[test]
    fn read_kind_exec_symlink_remove() {
        let (dir, root) = root();
        assert_eq!(root.read("nope", 10).unwrap(), None);
        assert_eq!(root.kind("nope"), None);
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/busybox"), b"#!").unwrap();
        std::fs::set_permissions(
            dir.path().join("bin/busybox"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("sbin")).unwrap();
        symlink("/bin/busybox", dir.path().join("sbin/init")).unwrap();
        assert!(root.is_executable("/sbin/init"));
        assert_eq!(root.kind("sbin"), Some(FileKind::Dir));
        assert_eq!(root.kind("sbin/init"), Some(FileKind::File));
        assert!(root
            .symlink("etc/runlevels/boot/hostname", "/etc/init.d/hostname")
            .unwrap());
        assert!(!root
            .symlink("etc/runlevels/boot/hostname", "/etc/init.d/hostname")
            .unwrap());
        assert!(root.exists_nofollow("etc/runlevels/boot/hostname"));
        assert!(!root.exists("etc/runlevels/boot/hostname"));
        assert_eq!(
            root.list("etc/runlevels/boot"),
            vec!["hostname".to_string()]
        );
        root.remove_file("etc/runlevels/boot/hostname").unwrap();
        root.remove_file("etc/runlevels/boot/hostname").unwrap();
        assert!(!root.exists_nofollow("etc/runlevels/boot/hostname"));
    }

    #[test]
    fn append_adds_newline_and_keeps_mode() {
        let (dir, root) = root();
        std::fs::write(dir.path().join("fstab"), b"a").unwrap();
        std::fs::set_permissions(
            dir.path().join("fstab"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        root.append("fstab", "b\n", 1 << 20).unwrap();
        assert_eq!(std::fs::read(dir.path().join("fstab")).unwrap(), b"a\nb\n");
        assert_eq!(root.mode("fstab"), Some(0o640));
    }

    #[test]
    fn chmod_dir_and_copy_in() {
        let (dir, root) = root();
        assert!(!root.chmod_dir("root", 0o700).unwrap());
        std::fs::create_dir(dir.path().join("root")).unwrap();
        assert!(root.chmod_dir("root", 0o700).unwrap());
        assert_eq!(root.mode("root"), Some(0o700));
        let src = dir.path().join("src.pub");
        std::fs::write(&src, b"key").unwrap();
        root.copy_in(&src, "etc/apk/keys/src.pub", 1024).unwrap();
        assert_eq!(
            root.read("etc/apk/keys/src.pub", 1024).unwrap().unwrap(),
            b"key"
        );
        assert!(matches!(
            root.copy_in(&src, "etc/apk/keys/big.pub", 2),
            Err(SysError::TooLarge { limit: 2, .. })
        ));
        assert!(root.write_atomic("etc/..", b"x", 0o644).is_err());
    }

    #[test]
    fn reads_are_bounded() {
        let (dir, root) = root();
        std::fs::write(dir.path().join("world"), b"0123456789").unwrap();
        assert_eq!(root.read("world", 10).unwrap().unwrap(), b"0123456789");
        let err = root.read("world", 9).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: larger than 9 bytes, refusing to read it",
                dir.path().join("world").display()
            )
        );
    }

    /// Issue 13 item 10: an overlay that plants `proc -> /` or `media -> /` made the init mount
    /// over the initramfs's own directories (the host path `/sysroot/proc` follows the link).
    #[test]
    fn mount_points_refuse_symlinks_and_stay_beneath() {
        let (dir, root) = root();
        let mp = root.mount_point("/media/usb").unwrap();
        assert!(dir.path().join("media/usb").is_dir());
        assert_eq!(mp.path, dir.path().join("media/usb"));
        assert!(
            root.mount_point("media/usb").is_ok(),
            "existing dirs are fine"
        );
        symlink("/", dir.path().join("proc")).unwrap();
        let err = root.mount_point("proc").unwrap_err();
        assert!(matches!(err, SysError::SymlinkMountPoint { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: a symbolic link in the path; refusing to mount through it",
                dir.path().join("proc").display()
            )
        );
        std::fs::remove_dir_all(dir.path().join("media")).unwrap();
        symlink("/", dir.path().join("media")).unwrap();
        let err = root.mount_point("media/usb").unwrap_err();
        assert!(matches!(err, SysError::SymlinkMountPoint { .. }), "{err}");
        // Nothing was created through the link, neither in the root nor outside it.
        assert!(!dir.path().join("usb").exists());
        // A relative link is refused the same way.
        symlink("media", dir.path().join("run")).unwrap();
        assert!(matches!(
            root.mount_point("run"),
            Err(SysError::SymlinkMountPoint { .. })
        ));
        assert!(root.mount_point("../etc").is_err());
        // A plain file where a directory is expected.
        std::fs::write(dir.path().join("sys"), b"").unwrap();
        assert!(root.mount_point("sys").is_err());
    }
}
