//! Applying a [`Solution`] to a root: fetch and verify each package (identity and `datahash`),
//! extract it safely under temporary names, migrate the files into place (protected files become
//! `.apk-new` unless `--clean-protected`), run its scripts chrooted, then fire triggers and write
//! the database (apk-format.md §6).
//!
//! Reading, verifying and inflating packages happens on a second thread, ahead of the thread that
//! writes files in transaction order, so both cores work during an install.

use crate::archive::{self, Mode, OpenedPackage};
use crate::db::{join, Acl, Database, DirEntry, FileEntry, InstalledPackage};
use crate::dep::Dependency;
use crate::fnmatch::fnmatch;
use crate::output::{self, Out};
use crate::owners::Owners;
use crate::package::{Checksum, Package};
use crate::pool::{PkgId, Pool};
use crate::protected::{Protect, ProtectedPaths};
use crate::root::{split_parent, Root};
use crate::script::{self, Script};
use crate::solver::{ChangeKind, Solution};
use crate::tar::{self, Kind};
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode as FMode, SFlag};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

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

/// How to commit.
#[derive(Clone, Debug, Default)]
pub struct CommitOptions {
    /// Print what would happen, change nothing.
    pub simulate: bool,
    /// Do not run package scripts.
    pub no_scripts: bool,
    /// Discard new copies of modified protected files instead of writing `.apk-new`.
    pub clean_protected: bool,
    /// Overlay file list (boot).
    pub overlay: Option<OverlayList>,
    /// Overwrite files owned by other packages (with a warning).
    pub force_overwrite: bool,
    /// Also delete modified protected files on removal.
    pub purge: bool,
    /// Cache packages from remote repositories here.
    pub cache_dir: Option<PathBuf>,
    /// Mount `/proc` and `/dev` into the root for scripts when they are missing.
    pub mount_for_scripts: bool,
}

/// What a commit did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitReport {
    /// Errors (package, file, script).
    pub errors: usize,
    /// Packages installed afterwards.
    pub packages: usize,
    /// Sum of their installed sizes.
    pub installed_bytes: u64,
    /// Packages installed, upgraded or replaced by this commit.
    pub changed: usize,
    /// Bytes of file content written.
    pub bytes_written: u64,
    /// Directories the installed packages own (with the root).
    pub dirs: usize,
    /// Files the installed packages own.
    pub files: usize,
}

/// Where a package file is.
pub fn package_path(pool: &Pool, id: PkgId) -> Option<PathBuf> {
    let p = &pool.packages[id];
    if let Some(f) = &p.file {
        return Some(f.clone());
    }
    let fname = format!("{}.apk", p.pkg.name_version());
    for &r in &p.repos {
        let repo = &pool.repos[r];
        if repo.masked {
            continue;
        }
        if let Some(dir) = &repo.pkg_dir {
            // v2 rule: URL/<pkg arch>/<name>-<ver>.apk; our pkg_dir already names the primary arch.
            let mut cand = dir.join(&fname);
            if let (Some(a), Some(parent)) = (p.pkg.arch.as_deref(), dir.parent()) {
                let alt = parent.join(a).join(&fname);
                if !cand.exists() && alt.exists() {
                    cand = alt;
                }
            }
            return Some(cand);
        }
    }
    p.cached.clone()
}

struct Prepared {
    buf: Vec<u8>,
    opened: OpenedPackage,
    tar: Vec<u8>,
}

fn prepare(pool: &Pool, id: PkgId, buffers: &Buffers) -> Result<Prepared, String> {
    let p = &pool.packages[id];
    let path = package_path(pool, id).ok_or_else(|| "package file is not available".to_string())?;
    let mut buf = buffers.take();
    std::fs::File::open(&path)
        .and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut buf))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mode = Mode::Identity(&p.pkg.identity);
    let opened = archive::open_package(&buf, &mode).map_err(|e| e.to_string())?;
    // The compressed bytes were just checked against datahash/identity, so the gzip CRC is
    // redundant; a second data member is refused (apk v3).
    let mut tar = buffers.take();
    crate::gzip::inflate_data_into(&buf, opened.data.clone(), &mut tar)
        .map_err(|e| archive::ArchiveError::from(e).to_string())?;
    Ok(Prepared { buf, opened, tar })
}

/// Buffers handed back after a package was written, reused for the next ones: fresh large
/// allocations would be page-faulted in (and unmapped) for every package.
#[derive(Default)]
struct Buffers(std::sync::Mutex<Vec<Vec<u8>>>);

impl Buffers {
    fn take(&self) -> Vec<u8> {
        let mut v = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default();
        v.clear();
        v
    }

    fn give(&self, v: Vec<u8>) {
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Keep a handful: enough for the workers and the writer, no more.
        if pool.len() < 8 {
            pool.push(v);
        }
    }
}

/// Results of package preparation delivered in order, computed by several workers at most
/// `WINDOW` packages ahead of the consumer (bounding memory on small machines).
struct Prefetch<T> {
    n: usize,
    next_job: std::sync::atomic::AtomicUsize,
    state: std::sync::Mutex<(HashMap<usize, T>, usize, bool)>,
    cv: std::sync::Condvar,
}

impl<T> Prefetch<T> {
    const WINDOW: usize = 3;

    fn new(n: usize) -> Self {
        Prefetch {
            n,
            next_job: 0.into(),
            state: std::sync::Mutex::new((HashMap::new(), 0, false)),
            cv: std::sync::Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (HashMap<usize, T>, usize, bool)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn work(&self, f: impl Fn(usize) -> T) {
        loop {
            let i = self
                .next_job
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if i >= self.n {
                return;
            }
            {
                let mut st = self.lock();
                while i >= st.1 + Self::WINDOW && !st.2 {
                    st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
                }
                if st.2 {
                    return;
                }
            }
            let r = f(i);
            self.lock().0.insert(i, r);
            self.cv.notify_all();
        }
    }

    fn take(&self, i: usize) -> T {
        let mut st = self.lock();
        loop {
            if let Some(r) = st.0.remove(&i) {
                st.1 = i + 1;
                self.cv.notify_all();
                return r;
            }
            st = self.cv.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn cancel(&self) {
        self.lock().2 = true;
        self.cv.notify_all();
    }
}

/// A file extracted under a temporary name, waiting for migration.
struct Staged {
    path: String,
    tmp: String,
    kind: Kind,
    checksum: Option<Checksum>,
}

struct Installer<'a> {
    db: &'a mut Database,
    pool: &'a Pool,
    opts: &'a CommitOptions,
    out: &'a Out,
    owners: Owners,
    rules: ProtectedPaths,
    /// Path -> owning package name.
    file_owner: HashMap<String, String>,
    modified_dirs: BTreeSet<String>,
    changed_pkgs: HashSet<String>,
    errors: usize,
    bytes_written: u64,
    changed: usize,
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

impl<'a> Installer<'a> {
    fn root(&self) -> &Root {
        &self.db.root
    }

    fn error(&mut self, msg: &str) {
        self.out.error(msg);
        self.errors += 1;
    }

    fn run_script(
        &mut self,
        pkg: &Package,
        kind: &str,
        body: &[u8],
        args: &[String],
        prefix: &str,
    ) -> bool {
        if self.opts.no_scripts || self.opts.simulate {
            return true;
        }
        let nv = pkg.name_version();
        let s = Script {
            name_version: &nv,
            package: &pkg.name,
            kind,
            body,
            args,
        };
        let dev = if self.opts.mount_for_scripts {
            Some(mount_dev_for_script(&self.db.root))
        } else {
            None
        };
        let r = script::run(&self.db.root, &s, self.out, prefix);
        drop(dev);
        // A script may add users: owner names must be looked up again.
        self.owners.invalidate();
        match r {
            Ok(()) => true,
            Err(e) => {
                self.error(&format!("{nv}.{kind}: {e}"));
                false
            }
        }
    }

    fn stored_script(&self, id: &Checksum, kind: &str) -> Option<Vec<u8>> {
        self.db
            .scripts
            .get(&(id.clone(), kind.to_string()))
            .map(|s| s.body.clone())
    }

    /// Remove an installed package (by database index).
    fn purge(&mut self, idx: usize) {
        let ip = self.db.installed[idx].clone();
        let pkg = &ip.pkg;
        if let Some(body) = self.stored_script(&pkg.identity, "pre-deinstall") {
            self.run_script(
                pkg,
                "pre-deinstall",
                &body,
                std::slice::from_ref(&pkg.version),
                "  ",
            );
        }
        self.remove_files(&ip, &HashSet::new());
        if let Some(body) = self.stored_script(&pkg.identity, "post-deinstall") {
            self.run_script(
                pkg,
                "post-deinstall",
                &body,
                std::slice::from_ref(&pkg.version),
                "  ",
            );
        }
        self.db.installed.remove(idx);
        self.db.scripts.retain(|(id, _), _| id != &pkg.identity);
        self.db.triggers.retain(|(id, _)| id != &pkg.identity);
    }

    /// Delete the files of `ip` except those in `keep`, then its now unused directories.
    fn remove_files(&mut self, ip: &InstalledPackage, keep: &HashSet<String>) {
        let name = ip.pkg.name.clone();
        for (d, f) in ip.files() {
            let path = join(&d.path, &f.name);
            if keep.contains(&path) || self.file_owner.get(&path).is_some_and(|o| o != &name) {
                continue;
            }
            let prot = self.rules.mode_of(&path, false);
            if prot.is_protected() && !self.opts.purge {
                if let Some(want) = &f.checksum {
                    let host = self.root().host_path(&path);
                    if let Ok(meta) = std::fs::symlink_metadata(&host) {
                        if crate::audit::file_checksum(&host, &meta).ok().as_ref() != Some(want) {
                            continue; // locally modified configuration is kept
                        }
                    }
                }
            }
            let _ = self.db.root.unlink(&path);
            let _ = self.db.root.unlink(&format!("{path}.apk-new"));
            self.file_owner.remove(&path);
            self.modified_dirs.insert(d.path.clone());
        }
        let still_used: HashSet<&str> = self
            .db
            .installed
            .iter()
            .filter(|p| p.pkg.name != name)
            .flat_map(|p| p.dirs.iter().map(|d| d.path.as_str()))
            .collect();
        let mut dirs: Vec<&DirEntry> = ip
            .dirs
            .iter()
            .filter(|d| !d.path.is_empty() && !still_used.contains(d.path.as_str()))
            .collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.path.len()));
        for d in dirs {
            let _ = self.db.root.rmdir(&d.path);
        }
    }

    fn parent_fd<'c>(
        &self,
        cache: &'c mut HashMap<String, OwnedFd>,
        dir: &str,
    ) -> std::io::Result<&'c OwnedFd> {
        if !cache.contains_key(dir) {
            let fd = self.db.root.dir(dir)?;
            cache.insert(dir.to_string(), fd);
        }
        Ok(&cache[dir])
    }

    fn may_overwrite(&self, new: &Package, path: &str) -> Result<(), String> {
        let Some(owner) = self.file_owner.get(path) else {
            return Ok(());
        };
        if owner == &new.name {
            return Ok(());
        }
        let Some(oi) = self.db.find(owner) else {
            return Ok(());
        };
        let old = &self.db.installed[oi].pkg;
        if old.origin.is_some() && old.origin == new.origin {
            return Ok(());
        }
        if new
            .replaces
            .iter()
            .any(|r| r.name == old.name && r.version_matches(Some(&old.version)))
        {
            return Ok(());
        }
        Err(format!("{}-{}", old.name, old.version))
    }

    /// Install or upgrade one package from its prepared archive.
    fn install(&mut self, id: PkgId, prep: &Prepared, tag: Option<String>) {
        let pool = self.pool;
        let pp = &pool.packages[id];
        // Index metadata wins; `.PKGINFO` adds what indexes never carry.
        let mut pkg = pp.pkg.clone();
        let info = &prep.opened.info;
        pkg.replaces = info.replaces.clone();
        pkg.replaces_priority = info.replaces_priority;
        pkg.triggers = info.triggers.clone();
        if pp.file.is_some() {
            pkg = info.clone();
        }
        let nv = pkg.name_version();
        let old_idx = self.db.find(&pkg.name);
        let old = old_idx.map(|i| self.db.installed[i].clone());
        let scripts: HashMap<String, Vec<u8>> = prep.opened.scripts.iter().cloned().collect();
        let upgrade = old.is_some();
        let args_install = vec![pkg.version.clone()];
        let args_upgrade = vec![
            pkg.version.clone(),
            old.as_ref()
                .map(|o| o.pkg.version.clone())
                .unwrap_or_default(),
        ];
        let (pre, post, args) = if upgrade {
            ("pre-upgrade", "post-upgrade", &args_upgrade)
        } else {
            ("pre-install", "post-install", &args_install)
        };
        if let Some(body) = scripts.get(pre) {
            if !self.run_script(&pkg, pre, body, args, "  ") {
                // apk v3: a failing pre-install leaves the package uninstalled.
                return;
            }
        }
        let mut ip = InstalledPackage {
            pkg: pkg.clone(),
            tag,
            ..Default::default()
        };
        let staged = match self.extract(&pkg, prep, &mut ip) {
            Ok(s) => s,
            Err(e) => {
                self.error(&format!("{nv}: {e}"));
                return;
            }
        };
        self.migrate(&pkg, &staged, old.as_ref());
        if let Some(o) = &old {
            let keep: HashSet<String> = staged.iter().map(|s| s.path.clone()).collect();
            self.remove_files(o, &keep);
            self.db.scripts.retain(|(sid, _), _| sid != &o.pkg.identity);
            self.db.triggers.retain(|(sid, _)| sid != &o.pkg.identity);
        }
        for s in &staged {
            self.file_owner.insert(s.path.clone(), pkg.name.clone());
        }
        let build_time = pkg.build_time.unwrap_or(0);
        for (seq, (kind, body)) in prep.opened.scripts.iter().enumerate() {
            self.db.scripts.insert(
                (pkg.identity.clone(), kind.clone()),
                crate::db::scripts::Script {
                    name_version: nv.clone(),
                    body: body.clone(),
                    mtime: build_time,
                    seq,
                },
            );
        }
        if scripts.contains_key("trigger") && !pkg.triggers.is_empty() {
            self.db
                .triggers
                .push((pkg.identity.clone(), pkg.triggers.clone()));
        }
        self.db.install_order.retain(|x| x != &pkg.identity);
        self.db.install_order.push(pkg.identity.clone());
        match old_idx {
            Some(i) => self.db.installed[i] = ip,
            None => self.db.installed.push(ip),
        }
        self.changed_pkgs.insert(pkg.name.clone());
        self.changed += 1;
        if let Some(body) = scripts.get(post) {
            if !self.run_script(&pkg, post, body, args, "  ") {
                if let Some(i) = self.db.find(&pkg.name) {
                    self.db.installed[i].set_broken('s');
                }
            }
        }
    }

    fn extract(
        &mut self,
        pkg: &Package,
        prep: &Prepared,
        ip: &mut InstalledPackage,
    ) -> Result<Vec<Staged>, String> {
        let nv = pkg.name_version();
        let mut r = tar::Reader::new(&prep.tar[..]);
        let mut staged: Vec<Staged> = Vec::new();
        let mut dir_index: HashMap<String, usize> = HashMap::new();
        let mut fds: HashMap<String, OwnedFd> = HashMap::new();
        let mut by_path: HashMap<String, usize> = HashMap::new();
        let previous: HashMap<String, Acl> = self
            .db
            .find(&pkg.name)
            .map(|i| {
                self.db.installed[i]
                    .dirs
                    .iter()
                    .map(|d| (d.path.clone(), d.acl.clone()))
                    .collect()
            })
            .unwrap_or_default();
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
                    return Err(archive::ArchiveError::from(e).to_string());
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
            let root = &self.db.root;
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
                if let Err(err) = self.make_dir(&name, &acl, previous.get(&name)) {
                    self.cleanup(&staged);
                    return Err(format!("{name}: {err}"));
                }
                continue;
            }
            let (dir, base) = split_parent(&name);
            let Some(&di) = dir_index.get(dir) else {
                self.error(&format!("{nv}: {name}: no dirent in archive"));
                ip.set_broken('f');
                continue;
            };
            if let Err(owner) = self.may_overwrite(pkg, &name) {
                if self.opts.force_overwrite {
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
            let tmp = temp_name(&pkg.name, &name);
            let mut checksum = e.sha1.map(|s| Checksum(s.to_vec()));
            if let Err(err) = self.parent_fd(&mut fds, dir).map(|_| ()) {
                self.cleanup(&staged);
                return Err(format!("{name}: {err}"));
            }
            if e.kind == Kind::HardLink {
                let (tdir, _) = split_parent(e.link.trim_start_matches("./"));
                let _ = self.parent_fd(&mut fds, tdir);
            }
            let bytes_written = &mut self.bytes_written;
            let root_path = self.db.root.path.clone();
            let res = (|| -> std::io::Result<()> {
                let d = fds[dir].as_fd();
                let _ =
                    nix::unistd::unlinkat(d, tmp.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
                match e.kind {
                    Kind::File => {
                        // Root-owned files are created with their final mode (umask is 0 during the
                        // commit); others are chowned and then chmodded, as chown clears set-id bits.
                        let owned = uid != 0 || gid != 0;
                        let create_mode = if owned { 0o600 } else { e.mode };
                        let fd = nix::fcntl::openat(
                            d,
                            tmp.as_str(),
                            OFlag::O_WRONLY
                                | OFlag::O_CREAT
                                | OFlag::O_EXCL
                                | OFlag::O_NOFOLLOW
                                | OFlag::O_CLOEXEC,
                            FMode::from_bits_truncate(create_mode),
                        )
                        .map_err(errno)?;
                        let mut f = std::fs::File::from(fd);
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
                        nix::unistd::symlinkat(e.link.as_str(), d, tmp.as_str()).map_err(errno)?;
                        if uid != 0 || gid != 0 {
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
                        nix::unistd::linkat(
                            tfd.as_fd(),
                            t.tmp.as_str(),
                            d,
                            tmp.as_str(),
                            AtFlags::empty(),
                        )
                        .map_err(errno)?;
                        checksum = t.checksum.clone();
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
                            tmp.as_str(),
                            kind,
                            FMode::from_bits_truncate(e.mode),
                            dev,
                        )
                        .map_err(errno)?;
                        nix::unistd::fchownat(
                            d,
                            tmp.as_str(),
                            Some(uid.into()),
                            Some(gid.into()),
                            AtFlags::AT_SYMLINK_NOFOLLOW,
                        )
                        .map_err(errno)?;
                        checksum = None;
                    }
                    Kind::Dir => {}
                }
                if !e.xattrs.is_empty() && e.kind != Kind::Symlink {
                    let host = root_path.join(join(dir, &tmp));
                    for (k, v) in &e.xattrs {
                        crate::xattr::set(&host, k, v)?;
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
                let _ = self.db.root.unlink(&join(dir, &tmp));
                return Err(format!("{name}: {err}"));
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
            }
            by_path.insert(name.clone(), staged.len());
            staged.push(Staged {
                path: name,
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
    fn make_dir(&self, path: &str, acl: &Acl, previous: Option<&Acl>) -> std::io::Result<()> {
        let root = &self.db.root;
        let (parent, name) = split_parent(path);
        let pfd = root.dir(parent)?;
        let created =
            match nix::sys::stat::mkdirat(pfd.as_fd(), name, FMode::from_bits_truncate(0o700)) {
                Ok(()) => true,
                Err(nix::Error::EEXIST) => false,
                Err(e) => return Err(errno(e)),
            };
        if !created {
            let Some(prev) = previous else { return Ok(()) };
            let st = nix::sys::stat::fstatat(pfd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(errno)?;
            let is_dir =
                SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFDIR;
            let unchanged =
                st.st_mode & 0o7777 == prev.mode && st.st_uid == prev.uid && st.st_gid == prev.gid;
            if !is_dir || !unchanged || prev == acl {
                return Ok(());
            }
        }
        nix::unistd::fchownat(
            pfd.as_fd(),
            name,
            Some(acl.uid.into()),
            Some(acl.gid.into()),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(errno)?;
        nix::sys::stat::fchmodat(
            pfd.as_fd(),
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
            let _ = self.db.root.unlink(&join(dir, &s.tmp));
        }
    }

    fn migrate(&mut self, pkg: &Package, staged: &[Staged], old: Option<&InstalledPackage>) {
        let old_sums: HashMap<String, Option<Checksum>> = old
            .map(|o| {
                o.files()
                    .map(|(d, f)| (join(&d.path, &f.name), f.checksum.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let mut moved: HashSet<&str> = HashSet::new();
        let mut dirfds: HashMap<String, OwnedFd> = HashMap::new();
        for s in staged {
            if moved.contains(s.path.as_str()) {
                continue;
            }
            moved.insert(&s.path);
            let (dir, name) = split_parent(&s.path);
            let tmp_rel = join(dir, &s.tmp);
            self.modified_dirs.insert(dir.to_string());
            if self
                .opts
                .overlay
                .as_ref()
                .is_some_and(|o| o.files.contains(&s.path))
            {
                let _ = self.db.root.unlink(&tmp_rel);
                continue;
            }
            let prot = self.rules.mode_of(&s.path, false);
            let protected = match prot {
                Protect::None | Protect::Ignore => false,
                Protect::SymlinksOnly => s.kind == Kind::Symlink,
                _ => true,
            };
            let host = self.db.root.host_path(&s.path);
            if protected {
                if let Ok(meta) = std::fs::symlink_metadata(&host) {
                    let disk = crate::audit::file_checksum(&host, &meta).ok();
                    let db_sum = old_sums.get(&s.path).cloned().flatten().or_else(|| {
                        self.file_owner
                            .get(&s.path)
                            .and_then(|o| self.db.find(o))
                            .and_then(|i| {
                                self.db.installed[i]
                                    .files()
                                    .find(|(d, f)| join(&d.path, &f.name) == s.path)
                                    .and_then(|(_, f)| f.checksum.clone())
                            })
                    });
                    let modified = db_sum.is_none() || disk != db_sum;
                    if modified && !meta.is_dir() {
                        if self.opts.clean_protected || (disk.is_some() && disk == s.checksum) {
                            let _ = self.db.root.unlink(&tmp_rel);
                        } else {
                            let new_name = format!("{name}.apk-new");
                            if let Ok(d) = self.db.root.dir(dir) {
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
                match self.db.root.dir(dir) {
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

    fn fire_triggers(&mut self) {
        if self.opts.no_scripts || self.opts.simulate {
            return;
        }
        let dirs: BTreeSet<String> = self
            .db
            .installed
            .iter()
            .flat_map(|p| p.dirs.iter().map(|d| d.path.clone()))
            .collect();
        let trig = self.db.triggers.clone();
        for (id, globs) in trig {
            let Some(ip) = self
                .db
                .installed
                .iter()
                .find(|p| p.pkg.identity == id)
                .cloned()
            else {
                continue;
            };
            let run_all = self.changed_pkgs.contains(&ip.pkg.name);
            let mut args: Vec<String> = Vec::new();
            for d in &dirs {
                if !run_all && !self.modified_dirs.contains(d) {
                    continue;
                }
                let rooted = format!("/{d}");
                if globs
                    .iter()
                    .filter(|g| g.starts_with('/'))
                    .any(|g| fnmatch(g, &rooted))
                {
                    args.push(rooted);
                }
            }
            if args.is_empty() {
                continue;
            }
            if let Some(body) = self.stored_script(&id, "trigger") {
                if !self.run_script(&ip.pkg, "trigger", &body, &args, "") {
                    if let Some(i) = self.db.find(&ip.pkg.name) {
                        self.db.installed[i].set_broken('s');
                    }
                }
            }
        }
    }
}

/// Mounts made for scripts, undone on drop.
pub(crate) struct ScriptMounts(Vec<PathBuf>);

impl Drop for ScriptMounts {
    fn drop(&mut self) {
        for m in self.0.iter().rev() {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// `/proc` for the whole commit when the root has none (scripts and triggers read it).
fn mount_proc(root: &Root) -> ScriptMounts {
    let mut m = Vec::new();
    let proc_dir = root.host_path("proc");
    if root.path != Path::new("/") && !proc_dir.join("self").exists() {
        let _ = root.mkdir_p("proc", 0o755);
        if nix::mount::mount(
            Some("proc"),
            &proc_dir,
            Some("proc"),
            nix::mount::MsFlags::MS_NOSUID
                | nix::mount::MsFlags::MS_NODEV
                | nix::mount::MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .is_ok()
        {
            m.push(proc_dir);
        }
    }
    ScriptMounts(m)
}

/// A private `/dev` with the basic nodes, mounted over the root's `dev` only while a script runs
/// when the root has no `dev/null`. (Never bind the host's /dev there: packages extract into `dev/`,
/// and their files must land in the root, not on the host.)
pub(crate) fn mount_dev_for_script(root: &Root) -> ScriptMounts {
    let mut m = Vec::new();
    let dev_dir = root.host_path("dev");
    if root.path == Path::new("/") || dev_dir.join("null").exists() {
        return ScriptMounts(m);
    }
    let _ = root.mkdir_p("dev", 0o755);
    if nix::mount::mount(
        Some("apkdev"),
        &dev_dir,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NOEXEC,
        Some("mode=0755,size=64k"),
    )
    .is_err()
    {
        return ScriptMounts(m);
    }
    for (name, major, minor, mode) in [
        ("null", 1, 3, 0o666),
        ("zero", 1, 5, 0o666),
        ("full", 1, 7, 0o666),
        ("random", 1, 8, 0o666),
        ("urandom", 1, 9, 0o666),
        ("tty", 5, 0, 0o666),
    ] {
        let _ = nix::sys::stat::mknod(
            &dev_dir.join(name),
            SFlag::S_IFCHR,
            FMode::from_bits_truncate(mode),
            nix::sys::stat::makedev(major, minor),
        );
        let _ = std::fs::set_permissions(
            dev_dir.join(name),
            std::os::unix::fs::PermissionsExt::from_mode(mode),
        );
    }
    let _ = std::os::unix::fs::symlink("/proc/self/fd", dev_dir.join("fd"));
    m.push(dev_dir);
    ScriptMounts(m)
}

/// Apply a solution. The world is written as given. Prints apk's lines through `out`.
pub fn commit(
    db: &mut Database,
    pool: &Pool,
    sol: &Solution,
    world: &[Dependency],
    opts: &CommitOptions,
    out: &Out,
) -> CommitReport {
    let total = sol.changes.len();
    if opts.simulate {
        let mut bytes = db.installed_bytes() as i64;
        let mut count = db.installed.len() as i64;
        for (i, c) in sol.changes.iter().enumerate() {
            out.msg(&output::change_line(i + 1, total, pool, c));
            if let Some(o) = c.old {
                bytes -= pool.packages[o].pkg.installed_size as i64;
                count -= 1;
            }
            if let Some(n) = c.new {
                bytes += pool.packages[n].pkg.installed_size as i64;
                count += 1;
            }
        }
        // The resulting totals; directories and files are the current ones (apk-format.md §9.3).
        let (dirs, files) = db.counts();
        let report = CommitReport {
            packages: count.max(0) as usize,
            installed_bytes: bytes.max(0) as u64,
            dirs,
            files,
            ..Default::default()
        };
        out.msg(&summary_line(&report, out.verbosity >= 2));
        return report;
    }
    let rules = ProtectedPaths::load(&db.root.path);
    let file_owner: HashMap<String, String> = db
        .installed
        .iter()
        .flat_map(|p| {
            p.files()
                .map(move |(d, f)| (join(&d.path, &f.name), p.pkg.name.clone()))
        })
        .collect();
    let needs_scripts = !opts.no_scripts
        && sol
            .changes
            .iter()
            .any(|c| c.new.is_some() || c.old.is_some());
    let _mounts = if needs_scripts && opts.mount_for_scripts {
        Some(mount_proc(&db.root))
    } else {
        None
    };
    let mut ins = Installer {
        db,
        pool,
        opts,
        out,
        owners: Owners::default(),
        rules,
        file_owner,
        modified_dirs: BTreeSet::new(),
        changed_pkgs: HashSet::new(),
        errors: 0,
        bytes_written: 0,
        changed: 0,
    };
    // Packages to fetch, in order; prepared on a second thread.
    let to_fetch: Vec<PkgId> = sol
        .changes
        .iter()
        .filter_map(|c| c.new)
        .filter(|&n| pool.packages[n].pkg.installed_size > 0)
        .collect();
    // Files are created with their final modes; scripts set their own umask (022).
    let old_umask = nix::sys::stat::umask(FMode::empty());
    let fetch = Prefetch::new(to_fetch.len());
    let buffers = Buffers::default();
    std::thread::scope(|sc| {
        // Two workers read, verify and inflate packages ahead of the writer, in order.
        for _ in 0..2 {
            let (fetch, to_fetch, buffers) = (&fetch, &to_fetch, &buffers);
            sc.spawn(move || fetch.work(|i| (to_fetch[i], prepare(pool, to_fetch[i], buffers))));
        }
        let mut next = 0usize;
        let weight = |c: &crate::solver::Change| {
            c.new
                .or(c.old)
                .map(|id| pool.packages[id].pkg.installed_size.max(1))
                .unwrap_or(1)
        };
        let total_weight: u64 = sol.changes.iter().map(weight).sum();
        let mut done_weight = 0u64;
        for (i, c) in sol.changes.iter().enumerate() {
            out.msg(&output::change_line(i + 1, total, pool, c));
            out.progress(done_weight, total_weight, "installing");
            done_weight += weight(c);
            match (c.kind, c.new) {
                (ChangeKind::Purge, _) => {
                    if let Some(idx) = c.old.and_then(|o| ins.db.find(&pool.packages[o].pkg.name)) {
                        ins.purge(idx);
                        ins.changed += 1;
                    }
                }
                (ChangeKind::Pinning, Some(n)) => {
                    if let Some(idx) = ins.db.find(&pool.packages[n].pkg.name) {
                        ins.db.installed[idx].tag = c.tag.clone();
                    }
                }
                (_, Some(n)) => {
                    if pool.packages[n].pkg.installed_size == 0 {
                        // I:0 packages are never opened: no files, no scripts.
                        let ip = InstalledPackage {
                            pkg: pool.packages[n].pkg.clone(),
                            tag: c.tag.clone(),
                            ..Default::default()
                        };
                        match ins.db.find(&ip.pkg.name) {
                            Some(idx) => ins.db.installed[idx] = ip,
                            None => ins.db.installed.push(ip),
                        }
                        ins.changed += 1;
                        continue;
                    }
                    let got = if next < to_fetch.len() {
                        Some(fetch.take(next))
                    } else {
                        None
                    };
                    next += 1;
                    match got {
                        Some((gid, Ok(prep))) if gid == n => {
                            if let Some(dir) = &opts.cache_dir {
                                cache_package(pool, n, &prep.buf, dir);
                            }
                            ins.install(n, &prep, c.tag.clone());
                            buffers.give(prep.buf);
                            buffers.give(prep.tar);
                        }
                        Some((_, Err(e))) => {
                            let nv = pool.packages[n].pkg.name_version();
                            ins.error(&format!("{nv}: {e}"));
                        }
                        _ => {
                            let nv = pool.packages[n].pkg.name_version();
                            ins.error(&format!(
                                "{nv}: internal error: package pipeline out of order"
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        fetch.cancel();
        out.progress(total_weight, total_weight, "installing");
        out.progress_done();
    });
    nix::sys::stat::umask(old_umask);
    ins.fire_triggers();
    ins.db.world = world.to_vec();
    ins.db
        .installed
        .sort_by(|a, b| crate::package::index_order(&a.pkg, &b.pkg));
    if let Err(e) = ins.db.write() {
        ins.error(&e.to_string());
    }
    let (dirs, files) = ins.db.counts();
    let report = CommitReport {
        errors: ins.errors,
        packages: ins.db.installed.len(),
        installed_bytes: ins.db.installed_bytes(),
        changed: ins.changed,
        bytes_written: ins.bytes_written,
        dirs,
        files,
    };
    out.msg(&summary_line(&report, out.verbosity >= 2));
    report
}

/// `OK: 10.2 MiB in 25 packages` (or `N errors; ...`); with `-v`
/// `OK: 25 packages, 125 dirs, 353 files, 10.2 MiB`.
pub fn summary_line(r: &CommitReport, verbose: bool) -> String {
    let head = match r.errors {
        0 => "OK:".to_string(),
        1 => "1 error;".to_string(),
        n => format!("{n} errors;"),
    };
    let size = output::human_size(r.installed_bytes);
    if verbose {
        format!(
            "{head} {} packages, {} dirs, {} files, {size}",
            r.packages, r.dirs, r.files
        )
    } else {
        format!("{head} {size} in {} packages", r.packages)
    }
}

fn cache_package(pool: &Pool, id: PkgId, buf: &[u8], dir: &Path) {
    let p = &pool.packages[id];
    let remote = p.repos.iter().all(|&r| {
        pool.repos[r].pkg_dir.is_none()
            || crate::repo::RepoSpec::parse(&pool.repos[r].url).is_some_and(|s| s.is_remote())
    });
    if p.file.is_some() || p.cached.is_some() || !remote {
        return;
    }
    let _ = crate::root::atomic_write(
        &dir.join(crate::repo::cache_package_name(&p.pkg)),
        buf,
        0o644,
    );
}
