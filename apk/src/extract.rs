//! Safe extraction of a package's files under the root, in two phases (docs/apk.md, "Installing"):
//! [`Extractor::extract`] writes every entry of the data section under a temporary name in its
//! final directory (paths resolved beneath the root, never following a symlink out of it, owners
//! from the root's own `etc/passwd`, modes, times, xattrs), and [`Extractor::migrate`] renames them
//! into place once the whole package is on disk, applying the protected-paths rules (`.apk-new`)
//! and the overlay's precedence. An extraction that fails part-way removes what it staged.

use crate::archive::ArchiveError;
use crate::db::{join, Acl, DirEntry, FileEntry, InstalledPackage};
use crate::output::Out;
use crate::owners::Owners;
use crate::package::{Checksum, Package};
use crate::protected::{Protect, ProtectedPaths};
use crate::root::{split_parent, Root};
use crate::tar::{self, Kind};
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode as FMode, SFlag};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::os::fd::{AsFd, OwnedFd};

/// Why the extraction of a package stopped (the caller names the package).
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The data section is not a valid tar stream.
    #[error("{0}")]
    Archive(ArchiveError),
    /// A directory or file could not be created under the root.
    #[error("{path}: {source}")]
    Io {
        /// The path in the package.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// Files and directories restored from an overlay before the install (`--overlay-from-stdin`):
/// the overlay's copies win over package files.
#[derive(Clone, Debug, Default)]
pub struct OverlayList {
    /// Files (relative paths).
    pub files: HashSet<String>,
    /// Directories.
    pub dirs: HashSet<String>,
}

impl OverlayList {
    /// Parse `tar -v` style names: one per line, directories end with `/`. Top-level names are
    /// accepted (upstream stops at the first one, leaving later entries unprotected).
    pub fn parse(text: &str) -> Self {
        let mut o = OverlayList::default();
        for l in text.lines() {
            let l = l.trim_start_matches("./").trim_start_matches('/');
            if l.is_empty() {
                continue;
            }
            if let Some(d) = l.strip_suffix('/') {
                o.dirs.insert(d.to_string());
            } else {
                o.files.insert(l.to_string());
            }
        }
        o
    }
}

/// Whether a package may write a path that another installed package owns.
pub(crate) enum Takeover {
    /// Yes (nobody else owns it, or the package replaces the owner).
    Yes,
    /// No, and silently: the owner replaces this package.
    Keep,
    /// No: this `name-version` owns it (`--force-overwrite` writes it anyway).
    Conflict(String),
}

/// Whether extracted entries get the owners and extended attributes the package gives
/// (apk-tools' `--no-chown`, v3's `--usermode`). The database records the package's owners either
/// way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ownership {
    /// Owners and every extended attribute, as the package gives them (the default).
    #[default]
    Package,
    /// `--no-chown` (apk-tools 2.14): files, links and devices keep the owner of the process that
    /// extracts them; directories still get the package's owner.
    NoChown,
    /// `--usermode` (apk-tools v3): nothing is chowned, and only `user.*` extended attributes are
    /// set (the others need privileges).
    User,
}

impl Ownership {
    /// Whether files, links and devices get the package's owner.
    fn chown(self) -> bool {
        self == Ownership::Package
    }

    /// Whether directories get the package's owner.
    pub(crate) fn chown_dirs(self) -> bool {
        self != Ownership::User
    }

    fn xattr_allowed(self, name: &str) -> bool {
        self != Ownership::User || name.starts_with("user.")
    }
}

/// A file extracted under a temporary name, waiting for migration.
pub(crate) struct Staged {
    /// Final path, relative to the root.
    pub path: String,
    /// The name it was created under in the same directory: a temporary name, or its final name
    /// when nothing was there ([`Staged::direct`]).
    pub tmp: String,
    /// Created under its final name: migration has nothing to rename.
    pub direct: bool,
    /// Entry type.
    pub kind: Kind,
    /// Content checksum, as the database records it.
    pub checksum: Option<Checksum>,
}

/// Extraction into one root, for the packages of one commit.
pub(crate) struct Extractor<'a> {
    /// The target root.
    pub root: &'a Root,
    /// Where warnings and per-file errors go.
    pub out: &'a Out,
    /// Owner names of the target root.
    pub owners: &'a mut Owners,
    /// Protected paths of the target root.
    pub rules: &'a ProtectedPaths,
    /// Files restored from an overlay (they win over package files).
    pub overlay: Option<&'a OverlayList>,
    /// `--clean-protected`.
    pub clean_protected: bool,
    /// `--force-overwrite`.
    pub force_overwrite: bool,
    /// What the extraction may change beyond contents and modes (`--no-chown`, `--usermode`).
    pub ownership: Ownership,
    /// Errors reported so far.
    pub errors: usize,
    /// Bytes of file content written so far.
    pub bytes_written: u64,
}

fn errno(e: nix::Error) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

/// Reject names apk calls malicious.
pub fn is_malicious(name: &str) -> bool {
    name.starts_with('/')
        || name.starts_with("./")
        || name.starts_with("../")
        || name == ".."
        || name == "."
        || name.contains("/./")
        || name.contains("/../")
        || name.ends_with("/..")
        || name.ends_with("/.")
        || name.bytes().any(|c| c < 0x20 || c == 0x7f)
}

fn temp_name(pkgname: &str, path: &str) -> String {
    let mut h = Sha256::new();
    h.update(pkgname.as_bytes());
    h.update([0u8]);
    h.update(path.as_bytes());
    format!(".apk.{}", hex::encode(&h.finalize()[..24]))
}

impl Extractor<'_> {
    fn error(&mut self, msg: &str) {
        self.out.error(msg);
        self.errors += 1;
    }

    fn parent_fd<'c>(
        &self,
        cache: &'c mut HashMap<String, OwnedFd>,
        dir: &str,
    ) -> std::io::Result<&'c OwnedFd> {
        if !cache.contains_key(dir) {
            let fd = self.root.dir(dir)?;
            cache.insert(dir.to_string(), fd);
        }
        Ok(&cache[dir])
    }

    /// Extract the tar stream `tar` of `pkg` under temporary names, recording its directories and
    /// files in `ip`. `previous` holds the directory permissions the installed version gave;
    /// `takeover` says whether a path another package owns may be written. Problems
    /// with single entries are reported and counted ([`Extractor::errors`]) and mark the package
    /// broken; an error that stops the extraction removes everything staged so far.
    pub fn extract(
        &mut self,
        pkg: &Package,
        tar: &[u8],
        ip: &mut InstalledPackage,
        previous: &HashMap<String, Acl>,
        takeover: &dyn Fn(&str) -> Takeover,
    ) -> Result<Vec<Staged>, ExtractError> {
        let nv = pkg.name_version();
        let mut r = tar::Reader::new(tar);
        let mut staged: Vec<Staged> = Vec::new();
        let mut dir_index: HashMap<String, usize> = HashMap::new();
        let mut fds: HashMap<String, OwnedFd> = HashMap::new();
        let mut by_path: HashMap<String, usize> = HashMap::new();
        ip.dirs.push(DirEntry {
            path: String::new(),
            acl: Acl::DIR,
            files: Vec::new(),
        });
        dir_index.insert(String::new(), 0);
        loop {
            let e = match r.next_entry() {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(e) => {
                    self.cleanup(&staged);
                    return Err(ExtractError::Archive(e.into()));
                }
            };
            if e.name.starts_with('.') && !e.name.contains('/') {
                continue; // control files never land in the root
            }
            let name = e.name.trim_end_matches('/').to_string();
            if is_malicious(&e.name) || name.is_empty() {
                self.out
                    .warning(&format!("{nv}: ignoring malicious file {}", e.name));
                ip.set_broken('f');
                continue;
            }
            let root = self.root;
            let uid = self.owners.uid(root, &e.uname, e.uid);
            let gid = self.owners.gid(root, &e.gname, e.gid);
            let xdigest = crate::xattr::digest(&e.xattrs);
            let acl = Acl {
                uid,
                gid,
                mode: e.mode,
                xattr: xdigest.clone(),
            };
            if e.kind == Kind::Dir {
                if !dir_index.contains_key(&name) {
                    dir_index.insert(name.clone(), ip.dirs.len());
                    ip.dirs.push(DirEntry {
                        path: name.clone(),
                        acl: acl.clone(),
                        files: Vec::new(),
                    });
                }
                let (parent, _) = split_parent(&name);
                let made = self
                    .parent_fd(&mut fds, parent)
                    .and_then(|pfd| self.make_dir(pfd.as_fd(), &name, &acl, previous.get(&name)));
                if let Err(err) = made {
                    self.cleanup(&staged);
                    return Err(ExtractError::Io {
                        path: name,
                        source: err,
                    });
                }
                continue;
            }
            let (dir, base) = split_parent(&name);
            let Some(&di) = dir_index.get(dir) else {
                self.error(&format!("{nv}: {name}: no dirent in archive"));
                ip.set_broken('f');
                continue;
            };
            match takeover(&name) {
                Takeover::Yes => {}
                // The owner replaces this package: its file stays, and stays its own.
                Takeover::Keep => continue,
                Takeover::Conflict(owner) => {
                    if self.force_overwrite {
                        self.out
                            .warning(&format!("{nv}: overwriting {name} owned by {owner}."));
                    } else {
                        self.error(&format!(
                            "{nv}: trying to overwrite {name} owned by {owner}."
                        ));
                        ip.set_broken('f');
                        continue;
                    }
                }
            }
            let mut checksum = e.sha1.map(|s| Checksum(s.to_vec()));
            if let Err(err) = self.parent_fd(&mut fds, dir).map(|_| ()) {
                self.cleanup(&staged);
                return Err(ExtractError::Io {
                    path: name,
                    source: err,
                });
            }
            if e.kind == Kind::HardLink {
                let (tdir, _) = split_parent(e.link.trim_start_matches("./"));
                let _ = self.parent_fd(&mut fds, tdir);
            }
            let bytes_written = &mut self.bytes_written;
            let ownership = self.ownership;
            // The name the entry is created under: its final name when nothing is there yet (a
            // fresh root: no rename later), else a temporary name that migration renames.
            let mut tmp = base.to_string();
            let mut made = false;
            let res = (|| -> std::io::Result<()> {
                let d = fds[dir].as_fd();
                let mut link_target = None;
                if e.kind == Kind::HardLink {
                    let target = e.link.trim_start_matches("./");
                    let Some(&ti) = by_path.get(target) else {
                        return Err(std::io::Error::other(format!(
                            "no hard link target ({target}) in archive"
                        )));
                    };
                    let t = &staged[ti];
                    let (tdir, _) = split_parent(&t.path);
                    let tfd = fds
                        .get(tdir)
                        .ok_or_else(|| std::io::Error::other("hard link target directory"))?;
                    link_target = Some((tfd.as_fd(), t.tmp.as_str(), t.checksum.clone()));
                }
                // Root-owned files are created with their final mode (umask is 0 during the
                // commit); others are chowned and then chmodded, as chown clears set-id bits.
                let owned = (uid != 0 || gid != 0) && ownership.chown();
                let create = |at: &str| -> nix::Result<Option<OwnedFd>> {
                    match e.kind {
                        Kind::File => nix::fcntl::openat(
                            d,
                            at,
                            OFlag::O_WRONLY
                                | OFlag::O_CREAT
                                | OFlag::O_EXCL
                                | OFlag::O_NOFOLLOW
                                | OFlag::O_CLOEXEC,
                            FMode::from_bits_truncate(if owned { 0o600 } else { e.mode }),
                        )
                        .map(Some),
                        Kind::Symlink => {
                            nix::unistd::symlinkat(e.link.as_str(), d, at).map(|_| None)
                        }
                        Kind::HardLink => {
                            let (tfd, tname, _) = link_target.as_ref().expect("resolved above");
                            nix::unistd::linkat(*tfd, *tname, d, at, AtFlags::empty()).map(|_| None)
                        }
                        Kind::CharDev | Kind::BlockDev | Kind::Fifo => {
                            let kind = match e.kind {
                                Kind::CharDev => SFlag::S_IFCHR,
                                Kind::BlockDev => SFlag::S_IFBLK,
                                _ => SFlag::S_IFIFO,
                            };
                            let dev = nix::sys::stat::makedev(e.dev.0 as u64, e.dev.1 as u64);
                            nix::sys::stat::mknodat(
                                d,
                                at,
                                kind,
                                FMode::from_bits_truncate(e.mode),
                                dev,
                            )
                            .map(|_| None)
                        }
                        Kind::Dir => Ok(None),
                    }
                };
                let created = match create(&tmp) {
                    Err(nix::Error::EEXIST) => {
                        tmp = temp_name(&pkg.name, &name);
                        match create(&tmp) {
                            Err(nix::Error::EEXIST) => {
                                // A temporary name left behind by an interrupted run.
                                let _ = nix::unistd::unlinkat(
                                    d,
                                    tmp.as_str(),
                                    nix::unistd::UnlinkatFlags::NoRemoveDir,
                                );
                                create(&tmp)
                            }
                            r => r,
                        }
                    }
                    r => r,
                }
                .map_err(errno)?;
                made = true;
                match e.kind {
                    Kind::File => {
                        let mut f = std::fs::File::from(created.expect("a file was opened"));
                        let data = r.content().map_err(|_| {
                            std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                "unexpected end of file",
                            )
                        })?;
                        std::io::Write::write_all(&mut f, data)?;
                        *bytes_written += data.len() as u64;
                        if owned {
                            nix::unistd::fchown(&f, Some(uid.into()), Some(gid.into()))
                                .map_err(errno)?;
                            nix::sys::stat::fchmod(&f, FMode::from_bits_truncate(e.mode))
                                .map_err(errno)?;
                        }
                        let ts = nix::sys::time::TimeSpec::new(e.mtime as i64, 0);
                        let _ = nix::sys::stat::futimens(&f, &ts, &ts);
                    }
                    Kind::Symlink => {
                        if owned {
                            nix::unistd::fchownat(
                                d,
                                tmp.as_str(),
                                Some(uid.into()),
                                Some(gid.into()),
                                AtFlags::AT_SYMLINK_NOFOLLOW,
                            )
                            .map_err(errno)?;
                        }
                        if checksum.is_none() {
                            checksum = Some(Checksum(Sha1::digest(e.link.as_bytes()).to_vec()));
                        }
                    }
                    Kind::HardLink => {
                        checksum = link_target.and_then(|(_, _, c)| c);
                    }
                    Kind::CharDev | Kind::BlockDev | Kind::Fifo => {
                        if ownership.chown() {
                            nix::unistd::fchownat(
                                d,
                                tmp.as_str(),
                                Some(uid.into()),
                                Some(gid.into()),
                                AtFlags::AT_SYMLINK_NOFOLLOW,
                            )
                            .map_err(errno)?;
                        }
                        checksum = None;
                    }
                    Kind::Dir => {}
                }
                if !e.xattrs.is_empty() && e.kind != Kind::Symlink {
                    // Through the directory handle opened beneath the root, never a host path.
                    let at = std::path::PathBuf::from(format!(
                        "/proc/self/fd/{}/{tmp}",
                        std::os::fd::AsRawFd::as_raw_fd(&fds[dir])
                    ));
                    for (k, v) in e.xattrs.iter().filter(|(k, _)| ownership.xattr_allowed(k)) {
                        crate::xattr::set(&at, k, v)?;
                    }
                }
                Ok(())
            })();
            if let Err(err) = res {
                if err.kind() == std::io::ErrorKind::Other {
                    self.error(&format!("{nv}: {name}: {err}"));
                    ip.set_broken('f');
                    continue;
                }
                self.cleanup(&staged);
                if made {
                    let _ = self.root.unlink(&join(dir, &tmp));
                }
                return Err(ExtractError::Io {
                    path: name,
                    source: err,
                });
            }
            if e.kind == Kind::File && checksum.is_none() {
                ip.set_broken('f');
            }
            ip.dirs[di].files.push(FileEntry {
                name: base.to_string(),
                acl: if e.kind == Kind::Symlink {
                    Acl { mode: 0o777, ..acl }
                } else {
                    acl
                },
                checksum: checksum.clone(),
            });
            if let Some(&prev) = by_path.get(&name) {
                // A later entry with the same name replaces the earlier one.
                staged[prev].tmp = tmp.clone();
                staged[prev].direct = tmp == base;
            }
            by_path.insert(name.clone(), staged.len());
            let direct = tmp == base;
            staged.push(Staged {
                path: name,
                direct,
                tmp,
                kind: e.kind,
                checksum,
            });
        }
        ip.dirs
            .retain(|d| !d.path.is_empty() || !d.files.is_empty());
        Ok(staged)
    }

    /// Create a directory with the package's permissions. An existing directory is left as it is
    /// (apk v2: permissions of a directory that a script made, e.g. a user's home created by
    /// `adduser` in pre-install, are kept), unless it still has exactly the permissions the previous
    /// version of this package gave it, in which case the new ones apply.
    fn make_dir(
        &self,
        pfd: std::os::fd::BorrowedFd<'_>,
        path: &str,
        acl: &Acl,
        previous: Option<&Acl>,
    ) -> std::io::Result<()> {
        let (_, name) = split_parent(path);
        let created = match nix::sys::stat::mkdirat(pfd, name, FMode::from_bits_truncate(0o700)) {
            Ok(()) => true,
            Err(nix::Error::EEXIST) => false,
            Err(e) => return Err(errno(e)),
        };
        if !created {
            let Some(prev) = previous else { return Ok(()) };
            let st =
                nix::sys::stat::fstatat(pfd, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(errno)?;
            let is_dir =
                SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR;
            let unchanged =
                st.st_mode & 0o7777 == prev.mode && st.st_uid == prev.uid && st.st_gid == prev.gid;
            if !is_dir || !unchanged || prev == acl {
                return Ok(());
            }
        }
        if self.ownership.chown_dirs() {
            nix::unistd::fchownat(
                pfd,
                name,
                Some(acl.uid.into()),
                Some(acl.gid.into()),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(errno)?;
        }
        nix::sys::stat::fchmodat(
            pfd,
            name,
            FMode::from_bits_truncate(acl.mode),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(errno)?;
        Ok(())
    }

    fn cleanup(&self, staged: &[Staged]) {
        for s in staged {
            let (dir, _) = split_parent(&s.path);
            let _ = self.root.unlink(&join(dir, &s.tmp));
        }
    }

    /// Rename the staged files of `pkg` into place. An overlay's file wins over the package's;
    /// a protected file changed on disk (compared with `recorded`, the checksum the database has
    /// for the path) keeps its content and the new one lands beside it as `.apk-new`, unless
    /// `--clean-protected`. Directories that received files are added to `modified_dirs` (they
    /// fire triggers).
    pub fn migrate(
        &mut self,
        pkg: &Package,
        staged: &[Staged],
        recorded: &dyn Fn(&str) -> Option<Checksum>,
        modified_dirs: &mut BTreeSet<String>,
    ) {
        let mut moved: HashSet<&str> = HashSet::new();
        let mut dirfds: HashMap<String, OwnedFd> = HashMap::new();
        for s in staged {
            if moved.contains(s.path.as_str()) {
                continue;
            }
            moved.insert(&s.path);
            let (dir, name) = split_parent(&s.path);
            let tmp_rel = join(dir, &s.tmp);
            modified_dirs.insert(dir.to_string());
            if self.overlay.is_some_and(|o| o.files.contains(&s.path)) {
                let _ = self.root.unlink(&tmp_rel);
                continue;
            }
            if s.direct {
                // Nothing was at the path before: the new entry simply stays (a protected path
                // that did not exist gets the package's file, as a rename would have given it).
                if s.path == "etc/passwd" || s.path == "etc/group" {
                    self.owners.invalidate();
                }
                continue;
            }
            let prot = self.rules.mode_of(&s.path, false);
            let protected = match prot {
                Protect::None | Protect::Ignore => false,
                Protect::SymlinksOnly => s.kind == Kind::Symlink,
                _ => true,
            };
            if protected {
                if let Some((is_dir, disk)) = crate::audit::on_disk(self.root, &s.path) {
                    let db_sum = recorded(&s.path);
                    let modified = db_sum.is_none() || disk != db_sum;
                    if modified && !is_dir {
                        if self.clean_protected || (disk.is_some() && disk == s.checksum) {
                            let _ = self.root.unlink(&tmp_rel);
                        } else {
                            let new_name = format!("{name}.apk-new");
                            if let Ok(d) = self.root.dir(dir) {
                                let _ = nix::fcntl::renameat(
                                    d.as_fd(),
                                    s.tmp.as_str(),
                                    d.as_fd(),
                                    new_name.as_str(),
                                );
                            }
                            self.out
                                .msg(&format!("  Installing file to {}.apk-new", s.path));
                        }
                        continue;
                    }
                }
            }
            if !dirfds.contains_key(dir) {
                match self.root.dir(dir) {
                    Ok(d) => {
                        dirfds.insert(dir.to_string(), d);
                    }
                    Err(e) => {
                        self.error(&format!("{}: {}: {e}", pkg.name_version(), s.path));
                        continue;
                    }
                }
            }
            if let Some(d) = dirfds.get(dir) {
                if let Err(e) = nix::fcntl::renameat(d.as_fd(), s.tmp.as_str(), d.as_fd(), name) {
                    let _ = nix::unistd::unlinkat(
                        d.as_fd(),
                        s.tmp.as_str(),
                        nix::unistd::UnlinkatFlags::NoRemoveDir,
                    );
                    self.error(&format!(
                        "{}: failed to rename {}: {}",
                        pkg.name_version(),
                        s.path,
                        errno(e)
                    ));
                }
            }
            if s.path == "etc/passwd" || s.path == "etc/group" {
                self.owners.invalidate();
            }
        }
    }
}
