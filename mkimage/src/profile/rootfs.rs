//! `rootfs/` and `rootfs.owners`: the profile's own files, copied over the installed scratch root
//! as they will be in `/` before the overlay is selected. Modes are kept (setuid bits too), every
//! entry belongs to root unless `rootfs.owners` names another owner, and every time stamp is the
//! build time, so the overlay does not depend on when the profile was checked out.
//!
//! `rootfs.owners` (beside `rootfs/`, not inside it: it is not a file of the appliance):
//! `PATH USER[:GROUP]` per line, `#` comments; names are looked up in the installed root's
//! `etc/passwd` and `etc/group` (packages create their users), numbers are taken as they are.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoResultExt};

/// The directory of the profile's files.
pub const ROOTFS_DIR: &str = "rootfs";
/// The owners file beside it.
pub const OWNERS_FILE: &str = "rootfs.owners";

/// The largest `rootfs.owners` read.
const MAX_OWNERS: u64 = 1 << 20;

/// One line of `rootfs.owners`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// Path under `rootfs/`, relative, without a leading `/`.
    pub path: String,
    /// User name or number.
    pub user: String,
    /// Group name or number (`None`: the user's primary group, else root).
    pub group: Option<String>,
    /// Line in `rootfs.owners`, for messages.
    pub line: usize,
}

/// An entry of `rootfs/`, relative to it, with its kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Relative path (`etc/motd`).
    pub path: String,
    /// A directory.
    pub is_dir: bool,
    /// A symlink (else, when not a directory, a regular file).
    pub is_symlink: bool,
}

/// Reads `DIR/rootfs.owners` (absent: no owners) and checks that each path exists in `rootfs/`.
pub fn load_owners(dir: &Path) -> Result<Vec<Owner>, Error> {
    let file = dir.join(OWNERS_FILE);
    let text = match crate::profile::read_bounded(&file, MAX_OWNERS) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).at(&file),
    };
    let at = |line: usize, reason: String| Error::Profile {
        at: format!("{}:{line}", file.display()),
        reason,
    };
    let mut owners = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = l.split_whitespace().collect();
        let [path, owner] = words[..] else {
            return Err(at(line, format!("\"{l}\": expected PATH USER[:GROUP]")));
        };
        let path = path
            .trim_start_matches('/')
            .trim_end_matches('/')
            .to_string();
        if path.is_empty()
            || path
                .split('/')
                .any(|c| c == ".." || c == "." || c.is_empty())
        {
            return Err(at(
                line,
                format!("\"{path}\": a path inside rootfs/ expected"),
            ));
        }
        if fs::symlink_metadata(dir.join(ROOTFS_DIR).join(&path)).is_err() {
            return Err(at(line, format!("{path}: no such file in rootfs/")));
        }
        let (user, group) = match owner.split_once(':') {
            Some((u, g)) => (u.to_string(), Some(g.to_string())),
            None => (owner.to_string(), None),
        };
        let ok = |n: &str| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        if !ok(&user) || group.as_deref().is_some_and(|g| !ok(g)) {
            return Err(at(line, format!("\"{owner}\": expected USER[:GROUP]")));
        }
        if owners.iter().any(|o: &Owner| o.path == path) {
            return Err(at(line, format!("{path} is listed twice")));
        }
        owners.push(Owner {
            path,
            user,
            group,
            line,
        });
    }
    Ok(owners)
}

/// Every entry of `rootfs/`, sorted (parents before children); only directories, regular files
/// and symlinks (a device node or FIFO in a profile is refused).
pub fn entries(rootfs: &Path) -> Result<Vec<Entry>, Error> {
    let mut out = Vec::new();
    if !rootfs.exists() {
        return Ok(out);
    }
    let mut stack = vec![(rootfs.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let mut names: Vec<_> = fs::read_dir(&dir)
            .at(&dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .at(&dir)?;
        names.sort();
        let mut subdirs = Vec::new();
        for name in names {
            let path = dir.join(&name);
            let name = name.to_str().ok_or_else(|| Error::Profile {
                at: path.display().to_string(),
                reason: "file names in rootfs/ must be UTF-8".into(),
            })?;
            let r = if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            };
            let t = fs::symlink_metadata(&path).at(&path)?.file_type();
            if t.is_dir() {
                out.push(Entry {
                    path: r.clone(),
                    is_dir: true,
                    is_symlink: false,
                });
                subdirs.push((path, r));
            } else if t.is_file() || t.is_symlink() {
                out.push(Entry {
                    path: r,
                    is_dir: false,
                    is_symlink: t.is_symlink(),
                });
            } else {
                return Err(Error::Profile {
                    at: path.display().to_string(),
                    reason: "not a regular file, directory or symlink".into(),
                });
            }
        }
        // Depth first, in sorted order.
        stack.extend(subdirs.into_iter().rev());
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Copies `rootfs/` over `root`: modes kept, owners root or as `owners` say, mtimes `time`.
/// A directory of the root that exists keeps its mode and owner unless `rootfs.owners` names it.
pub fn copy_into(
    rootfs: &Path,
    root: &Path,
    owners: &[Owner],
    time: u64,
) -> Result<Vec<Entry>, Error> {
    // Files are read beneath this handle, opened before the listing, never through a symlink
    // (see `Beneath`). No `rootfs/`: nothing to copy.
    let base = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::DIRECTORY.bits() as i32)
        .open(rootfs)
    {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).at(rootfs),
    };
    let list = entries(rootfs)?;
    let owners_file = rootfs.parent().unwrap_or(Path::new(".")).join(OWNERS_FILE);
    let ids = Ids::load(root, owners_file);
    let mut chowns: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for o in owners {
        chowns.insert(o.path.clone(), ids.resolve(o)?);
    }
    for e in &list {
        let from = rootfs.join(&e.path);
        let to = root.join(&e.path);
        let Some(base) = &base else {
            return Err(Error::Profile {
                at: rootfs.display().to_string(),
                reason: "appeared while mkimage read the profile".into(),
            });
        };
        let beneath = Beneath {
            base,
            rel: &e.path,
            from: &from,
        };
        let existed = fs::symlink_metadata(&to).ok();
        if e.is_dir {
            match &existed {
                Some(m) if m.is_dir() => {}
                // Writing through a package's symlink could leave the root (an absolute link
                // resolves on the build host): the profile must name the real path.
                Some(m) if m.file_type().is_symlink() => {
                    let target = fs::read_link(&to).at(&to)?;
                    return Err(Error::Profile {
                        at: from.display().to_string(),
                        reason: format!(
                            "a directory, but the installed system has a symlink there (-> {}): put the files under the link's target",
                            target.display()
                        ),
                    });
                }
                Some(_) => {
                    remove_any(&to)?;
                    fs::create_dir(&to).at(&to)?;
                }
                None => fs::create_dir(&to).at(&to)?,
            }
            let fresh = !existed.as_ref().is_some_and(|m| m.is_dir());
            if fresh || chowns.contains_key(&e.path) {
                let mode = beneath.dir_mode()?;
                fs::set_permissions(&to, fs::Permissions::from_mode(mode & 0o7777)).at(&to)?;
                let (u, g) = chowns.get(&e.path).copied().unwrap_or((0, 0));
                std::os::unix::fs::lchown(&to, Some(u), Some(g)).at(&to)?;
            }
        } else {
            if existed.is_some() {
                remove_any(&to)?;
            }
            let (u, g) = chowns.get(&e.path).copied().unwrap_or((0, 0));
            // What is copied is read beneath `base` as the kind the listing saw, and is an
            // error if it is no longer of that kind.
            if e.is_symlink {
                let target = beneath.link_target()?;
                std::os::unix::fs::symlink(&target, &to).at(&to)?;
                std::os::unix::fs::lchown(&to, Some(u), Some(g)).at(&to)?;
            } else {
                // The mode of the file read, not of what the listing saw.
                let mode = beneath.copy_regular(&to)?;
                std::os::unix::fs::lchown(&to, Some(u), Some(g)).at(&to)?;
                // After chown, which clears setuid/setgid bits.
                fs::set_permissions(&to, fs::Permissions::from_mode(mode & 0o7777)).at(&to)?;
            }
        }
    }
    for e in list.iter().rev() {
        set_mtime(&root.join(&e.path), time)?;
    }
    Ok(list)
}

/// An entry `rel` of the profile's `rootfs/` (opened as `base`; `from` is its path, for
/// messages), read beneath `base`: the directory holding it is reached one path component at a
/// time, each opened with `O_NOFOLLOW | O_DIRECTORY`, and the entry itself is opened or read
/// without following a symlink and checked to be of the kind the listing saw. A file or
/// directory swapped for a symlink after the listing is an error, never a file, link text or
/// mode of the build host in the image, and a FIFO is an error, never a build that waits
/// forever. (`openat2`'s `RESOLVE_NO_SYMLINKS` would do it in one call, but container sandboxes
/// refuse that call with `EPERM`.)
struct Beneath<'a> {
    base: &'a fs::File,
    rel: &'a str,
    from: &'a Path,
}

impl Beneath<'_> {
    /// The error for an entry that is not what the listing saw.
    fn changed(&self, what: &str) -> Error {
        Error::Profile {
            at: self.from.display().to_string(),
            reason: format!("{what} (it changed while mkimage read the profile)"),
        }
    }

    /// Opens `name` in `dir` without following a symlink.
    fn open(
        &self,
        dir: &std::os::fd::OwnedFd,
        name: &str,
        flags: rustix::fs::OFlags,
    ) -> Result<std::os::fd::OwnedFd, Error> {
        use rustix::fs::{Mode, OFlags};
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(dir, name, flags, Mode::empty()) {
            Ok(fd) => Ok(fd),
            Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
                Err(self.changed("a symlink or a non-directory is on its path"))
            }
            Err(e) => Err(std::io::Error::from(e)).at(self.from),
        }
    }

    /// The directory holding the entry, and the entry's name in it.
    fn parent(&self) -> Result<(std::os::fd::OwnedFd, &str), Error> {
        use rustix::fs::OFlags;
        let mut parts: Vec<&str> = self.rel.split('/').filter(|p| !p.is_empty()).collect();
        let Some(name) = parts.pop() else {
            return Err(self.changed("not an entry of rootfs/"));
        };
        let mut dir = std::os::fd::AsFd::as_fd(self.base)
            .try_clone_to_owned()
            .at(self.from)?;
        for part in parts {
            dir = self.open(&dir, part, OFlags::RDONLY | OFlags::DIRECTORY)?;
        }
        Ok((dir, name))
    }

    /// Copies the regular file to `to`, which it creates (mode 0600 until the caller sets the
    /// file's); returns the file's mode.
    fn copy_regular(&self, to: &Path) -> Result<u32, Error> {
        use rustix::fs::OFlags;
        let (dir, name) = self.parent()?;
        let mut src = fs::File::from(self.open(&dir, name, OFlags::RDONLY | OFlags::NONBLOCK)?);
        let meta = src.metadata().at(self.from)?;
        if !meta.is_file() {
            return Err(self.changed("not a regular file"));
        }
        let mut dst = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(to)
            .at(to)?;
        std::io::copy(&mut src, &mut dst).at(to)?;
        Ok(meta.mode())
    }

    /// The symlink's target.
    fn link_target(&self) -> Result<PathBuf, Error> {
        use std::os::unix::ffi::OsStringExt;
        let (dir, name) = self.parent()?;
        match rustix::fs::readlinkat(&dir, name, Vec::new()) {
            Ok(t) => Ok(PathBuf::from(std::ffi::OsString::from_vec(t.into_bytes()))),
            Err(rustix::io::Errno::INVAL) => Err(self.changed("not a symlink")),
            Err(e) => Err(std::io::Error::from(e)).at(self.from),
        }
    }

    /// The directory's mode.
    fn dir_mode(&self) -> Result<u32, Error> {
        let (dir, name) = self.parent()?;
        let st = rustix::fs::statat(&dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .map_err(std::io::Error::from)
            .at(self.from)?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Directory {
            return Err(self.changed("not a directory"));
        }
        Ok(st.st_mode)
    }
}

fn remove_any(path: &Path) -> Result<(), Error> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).at(path),
        Ok(_) => fs::remove_file(path).at(path),
        Err(_) => Ok(()),
    }
}

/// Sets the access and modification times of `path` (not following a symlink).
pub(crate) fn set_mtime(path: &Path, time: u64) -> Result<(), Error> {
    let t = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: time as i64,
            tv_nsec: 0,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: time as i64,
            tv_nsec: 0,
        },
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &t,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| std::io::Error::from_raw_os_error(e.raw_os_error()))
    .at(path)
}

/// User and group ids of the installed root (`etc/passwd`, `etc/group`).
struct Ids {
    users: BTreeMap<String, (u32, u32)>,
    groups: BTreeMap<String, u32>,
    file: PathBuf,
}

impl Ids {
    fn load(root: &Path, file: PathBuf) -> Ids {
        let read = |rel: &str| fs::read_to_string(root.join(rel)).unwrap_or_default();
        let mut users = BTreeMap::new();
        for l in read("etc/passwd").lines() {
            let f: Vec<&str> = l.split(':').collect();
            if let (Some(n), Some(Ok(u)), Some(Ok(g))) = (
                f.first(),
                f.get(2).map(|s| s.parse()),
                f.get(3).map(|s| s.parse()),
            ) {
                users.entry(n.to_string()).or_insert((u, g));
            }
        }
        let mut groups = BTreeMap::new();
        for l in read("etc/group").lines() {
            let f: Vec<&str> = l.split(':').collect();
            if let (Some(n), Some(Ok(g))) = (f.first(), f.get(2).map(|s| s.parse())) {
                groups.entry(n.to_string()).or_insert(g);
            }
        }
        Ids {
            users,
            groups,
            file,
        }
    }

    fn resolve(&self, o: &Owner) -> Result<(u32, u32), Error> {
        let unknown = |what: &str, name: &str| Error::Profile {
            at: format!("{}:{}", self.file.display(), o.line),
            reason: format!(
                "{}: no {what} \"{name}\" in the installed system (etc/{})",
                o.path,
                if what == "user" { "passwd" } else { "group" }
            ),
        };
        let (uid, primary) = match o.user.parse::<u32>() {
            Ok(n) => (n, None),
            Err(_) => {
                let (u, g) = self
                    .users
                    .get(&o.user)
                    .copied()
                    .ok_or_else(|| unknown("user", &o.user))?;
                (u, Some(g))
            }
        };
        let gid = match &o.group {
            Some(g) => match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => self
                    .groups
                    .get(g)
                    .copied()
                    .ok_or_else(|| unknown("group", g))?,
            },
            None => primary.unwrap_or(0),
        };
        Ok((uid, gid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A profile without `rootfs/` copies nothing.
    #[test]
    fn a_profile_without_rootfs_copies_nothing() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs::create_dir(&root).unwrap();
        let copied = copy_into(&t.path().join("rootfs"), &root, &[], 0).unwrap();
        assert!(copied.is_empty());
        assert_eq!(fs::read_dir(&root).unwrap().count(), 0);
    }

    /// What `copy_into` copies is read without following a symlink: a file or a directory of
    /// its path swapped for one after the listing is an error, and so is a FIFO (no hang).
    #[test]
    fn profile_files_are_copied_only_as_the_regular_files_listed() {
        let t = tempfile::tempdir().unwrap();
        let rootfs = t.path().join("rootfs");
        fs::create_dir_all(rootfs.join("etc")).unwrap();
        fs::write(rootfs.join("etc/motd"), b"hello\n").unwrap();
        fs::write(t.path().join("secret"), b"host\n").unwrap();
        std::os::unix::fs::symlink(t.path().join("secret"), rootfs.join("etc/link")).unwrap();
        std::os::unix::fs::symlink(t.path(), rootfs.join("dirlink")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            rootfs.join("etc/fifo"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let base = fs::File::open(&rootfs).unwrap();
        let out = t.path().join("out");
        fs::create_dir(&out).unwrap();
        let from = |rel: &str| rootfs.join(rel);
        let copy = |rel: &str| {
            Beneath {
                base: &base,
                rel,
                from: &from(rel),
            }
            .copy_regular(&out.join(rel.replace('/', "_")))
        };
        fs::set_permissions(rootfs.join("etc/motd"), fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(copy("etc/motd").unwrap() & 0o7777, 0o640);
        assert_eq!(fs::read(out.join("etc_motd")).unwrap(), b"hello\n");
        for rel in ["etc/link", "dirlink/secret", "etc/fifo"] {
            let e = copy(rel).unwrap_err().to_string();
            assert!(e.contains(rel), "{e}");
            assert!(e.contains("changed while mkimage read the profile"), "{e}");
        }
        // Link texts and directory modes are read beneath rootfs/ too: a symlink on the path
        // (here to a directory of the host holding a link and a directory) is an error, and so
        // is an entry of another kind than asked.
        std::os::unix::fs::symlink("/host/target", t.path().join("hostlink")).unwrap();
        fs::create_dir(t.path().join("hostdir")).unwrap();
        fs::set_permissions(rootfs.join("etc"), fs::Permissions::from_mode(0o750)).unwrap();
        let link = |rel: &str| {
            let from = from(rel);
            Beneath {
                base: &base,
                rel,
                from: &from,
            }
            .link_target()
        };
        let mode = |rel: &str| {
            let from = from(rel);
            Beneath {
                base: &base,
                rel,
                from: &from,
            }
            .dir_mode()
        };
        assert_eq!(link("etc/link").unwrap(), t.path().join("secret"));
        assert_eq!(mode("etc").unwrap() & 0o7777, 0o750);
        for e in [
            link("dirlink/hostlink").unwrap_err(),
            link("etc/motd").unwrap_err(),
            mode("dirlink/hostdir").unwrap_err(),
            mode("dirlink").unwrap_err(),
            mode("etc/motd").unwrap_err(),
        ] {
            let e = e.to_string();
            assert!(e.contains(&rootfs.display().to_string()), "{e}");
            assert!(e.contains("changed while mkimage read the profile"), "{e}");
        }
        // `rootfs` itself a FIFO: an error, never a wait for a writer.
        let fifo = t.path().join("fifo-profile");
        fs::create_dir(&fifo).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            fifo.join("rootfs"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        assert!(copy_into(&fifo.join("rootfs"), &out, &[], 0).is_err());
    }
    use std::os::unix::fs::symlink;

    fn profile() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().join("rootfs");
        fs::create_dir_all(r.join("etc/ssh")).unwrap();
        fs::write(r.join("etc/motd"), "hi\n").unwrap();
        fs::write(r.join("etc/ssh/key"), "k").unwrap();
        fs::set_permissions(r.join("etc/ssh/key"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(r.join("etc/ssh"), fs::Permissions::from_mode(0o700)).unwrap();
        symlink("/etc/init.d/sshd", r.join("etc/sshd-link")).unwrap();
        t
    }

    #[test]
    fn owners_file_is_checked_line_by_line() {
        let t = profile();
        assert_eq!(load_owners(t.path()).unwrap(), vec![]);
        fs::write(
            t.path().join(OWNERS_FILE),
            "# comment\n\n/etc/ssh/key sshd:nogroup\netc/motd 100\n",
        )
        .unwrap();
        let o = load_owners(t.path()).unwrap();
        assert_eq!(o.len(), 2);
        assert_eq!(
            o[0],
            Owner {
                path: "etc/ssh/key".into(),
                user: "sshd".into(),
                group: Some("nogroup".into()),
                line: 3
            }
        );
        for (text, want) in [
            ("etc/nope root\n", ":1: etc/nope: no such file in rootfs/"),
            ("etc/motd\n", ":1: \"etc/motd\": expected PATH USER[:GROUP]"),
            (
                "../x root\n",
                ":1: \"../x\": a path inside rootfs/ expected",
            ),
            ("etc/motd a;b\n", ":1: \"a;b\": expected USER[:GROUP]"),
            ("etc/motd 1\netc/motd 2\n", ":2: etc/motd is listed twice"),
        ] {
            fs::write(t.path().join(OWNERS_FILE), text).unwrap();
            let err = load_owners(t.path()).unwrap_err().to_string();
            assert!(
                err.contains(&format!("rootfs.owners{want}")),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn copy_keeps_modes_sets_owners_and_time() {
        let t = profile();
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("etc")).unwrap();
        fs::set_permissions(root.path().join("etc"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nsshd:x:22:22::/:/sbin/nologin\n",
        )
        .unwrap();
        fs::write(
            root.path().join("etc/group"),
            "root:x:0:\nsshd:x:22:\nwheel:x:10:\n",
        )
        .unwrap();
        fs::write(root.path().join("etc/motd"), "old\n").unwrap();
        let owners = vec![Owner {
            path: "etc/ssh/key".into(),
            user: "sshd".into(),
            group: Some("wheel".into()),
            line: 1,
        }];
        let list = copy_into(
            &t.path().join("rootfs"),
            root.path(),
            &owners,
            1_700_000_000,
        )
        .unwrap();
        let names: Vec<&str> = list.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            names,
            ["etc", "etc/motd", "etc/ssh", "etc/ssh/key", "etc/sshd-link"]
        );
        let m = |p: &str| fs::symlink_metadata(root.path().join(p)).unwrap();
        assert_eq!(
            fs::read_to_string(root.path().join("etc/motd")).unwrap(),
            "hi\n"
        );
        assert_eq!(m("etc/ssh").mode() & 0o7777, 0o700);
        assert_eq!(m("etc/ssh/key").mode() & 0o7777, 0o600);
        assert_eq!((m("etc/ssh/key").uid(), m("etc/ssh/key").gid()), (22, 10));
        assert_eq!((m("etc/motd").uid(), m("etc/motd").gid()), (0, 0));
        assert_eq!(
            fs::read_link(root.path().join("etc/sshd-link")).unwrap(),
            Path::new("/etc/init.d/sshd")
        );
        for p in ["etc/motd", "etc/ssh", "etc/ssh/key", "etc/sshd-link", "etc"] {
            assert_eq!(m(p).mtime(), 1_700_000_000, "{p}");
        }
        // The root's existing etc/ kept its mode (rootfs/etc is 0755 too here, but not forced).
        assert_eq!(m("etc").mode() & 0o7777, 0o755);
        // A directory where the installed system has a symlink is refused, not written through.
        let other = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(other.path(), root.path().join("var")).unwrap();
        fs::create_dir_all(t.path().join("rootfs/var/lib")).unwrap();
        fs::write(t.path().join("rootfs/var/lib/x"), "x").unwrap();
        let err = copy_into(&t.path().join("rootfs"), root.path(), &[], 0).unwrap_err();
        assert!(err.to_string().ends_with(&format!("rootfs/var: a directory, but the installed system has a symlink there (-> {}): put the files under the link's target", other.path().display())), "{err}");
        assert!(fs::read_dir(other.path()).unwrap().next().is_none());
        fs::remove_dir_all(t.path().join("rootfs/var")).unwrap();
        let unknown = vec![Owner {
            path: "etc/motd".into(),
            user: "nobody2".into(),
            group: None,
            line: 4,
        }];
        let err = copy_into(&t.path().join("rootfs"), root.path(), &unknown, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}:4: etc/motd: no user \"nobody2\" in the installed system (etc/passwd)",
                t.path().join(OWNERS_FILE).display()
            )
        );
    }
}
