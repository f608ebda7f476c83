//! Applying a [`Solution`] to a root: fetch and verify each package (identity and `datahash`,
//! [`crate::prefetch`]), extract it safely under temporary names and migrate the files into place
//! ([`crate::extract`]), run its scripts chrooted ([`crate::script`]), then fire triggers and write
//! the database (docs/apk.md, "Installing").

use crate::db::{join, Acl, Database, DirEntry, InstalledPackage};
use crate::dep::Dependency;
use crate::extract::{Extractor, Ownership, Takeover};
use crate::fnmatch::fnmatch;
use crate::output::{self, Out};
use crate::owners::Owners;
use crate::package::{Checksum, Package};
use crate::pool::{PkgId, Pool};
use crate::prefetch::{prepare, Buffers, Prefetch, Prepared, Trust};
use crate::protected::ProtectedPaths;
use crate::root::Root;
use crate::script::{self, Script};
use crate::solver::{ChangeKind, Solution};
use crate::text::Text;
use crate::trust::Keyring;
use nix::sys::stat::Mode as FMode;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::extract::OverlayList;

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
    /// Trusted keys: a package whose index entry has no identity must be signed by one of them.
    pub keys: Keyring,
    /// `--allow-untrusted`: install such a package even unsigned.
    pub allow_untrusted: bool,
    /// No `OK:` line (apk's preupgrade transaction prints none).
    pub no_summary: bool,
    /// Owners and extended attributes of extracted entries (`--no-chown`, `--usermode`).
    pub ownership: Ownership,
    /// `apk fix --directory-permissions`: afterwards, give every directory of the installed
    /// packages the owner and mode the database records ([`crate::dirperm`]).
    pub directory_permissions: bool,
    /// Threads that read, verify and inflate packages ahead of the writer (0: online CPUs).
    pub jobs: usize,
    /// Bytes of packages read ahead of the writer at most (0: the default); see
    /// [`crate::prefetch::Prefetch`].
    pub in_flight: u64,
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

struct Installer<'a> {
    db: &'a mut Database,
    pool: &'a Pool,
    opts: &'a CommitOptions,
    out: &'a Out,
    owners: Owners,
    rules: ProtectedPaths,
    /// Path -> owning package name.
    file_owner: HashMap<String, Text>,
    modified_dirs: BTreeSet<String>,
    changed_pkgs: HashSet<Text>,
    errors: usize,
    bytes_written: u64,
    changed: usize,
}

/// Whether `new` may take over `path`, which an installed package may own (apk-tools'
/// `apk_pkg_replaces_file`, docs/apk.md "Installing"): yes when nobody else owns it, when the owner
/// is an older `new` or shares its origin, or when `new` replaces the owner; the owner keeps it
/// when it replaces `new` with a higher `replaces_priority`; otherwise the two conflict.
fn takeover(
    db: &Database,
    file_owner: &HashMap<String, Text>,
    new: &Package,
    path: &str,
) -> Takeover {
    let Some(owner) = file_owner.get(path) else {
        return Takeover::Yes;
    };
    let Some(i) = db.find(owner).filter(|_| owner != &new.name) else {
        return Takeover::Yes;
    };
    let old = &db.installed[i].pkg;
    if old.origin.is_some() && old.origin == new.origin {
        return Takeover::Yes;
    }
    let replaces = |a: &Package, b: &Package| {
        a.replaces
            .iter()
            .any(|r| !r.conflict && r.name == b.name && r.version_matches(Some(&b.version)))
            .then(|| a.replaces_priority.unwrap_or(0))
    };
    match (replaces(old, new), replaces(new, old)) {
        (Some(o), n) if n.is_none_or(|n| o > n) => Takeover::Keep,
        (_, Some(_)) => Takeover::Yes,
        _ => Takeover::Conflict(old.name_version()),
    }
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
            Some(script::mount_dev_for_script(&self.db.root))
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
                &[pkg.version.to_string()],
                "  ",
            );
        }
        self.remove_files(&ip, &HashSet::new(), &HashSet::new());
        if let Some(body) = self.stored_script(&pkg.identity, "post-deinstall") {
            self.run_script(
                pkg,
                "post-deinstall",
                &body,
                &[pkg.version.to_string()],
                "  ",
            );
        }
        self.db.installed.remove(idx);
        self.db.scripts.retain(|(id, _), _| id != &pkg.identity);
        self.db.triggers.retain(|(id, _)| id != &pkg.identity);
    }

    /// Delete the files of `ip` except those in `keep`, then its directories that no other
    /// package has and that are not in `keep_dirs` (the directories of the version replacing it:
    /// an empty directory both versions own stays, as apk-tools keeps it).
    fn remove_files(
        &mut self,
        ip: &InstalledPackage,
        keep: &HashSet<String>,
        keep_dirs: &HashSet<&str>,
    ) {
        let name = ip.pkg.name.clone();
        for (d, f) in ip.files() {
            let path = join(&d.path, &f.name);
            if keep.contains(&path) || self.file_owner.get(&path).is_some_and(|o| o != &name) {
                continue;
            }
            let prot = self.rules.mode_of(&path, false);
            if prot.is_protected() && !self.opts.purge {
                if let Some(want) = &f.checksum {
                    if let Some((_, disk)) = crate::audit::on_disk(self.root(), &path) {
                        if disk.as_ref() != Some(want) {
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
            .filter(|d| {
                !d.path.is_empty()
                    && !still_used.contains(d.path.as_str())
                    && !keep_dirs.contains(d.path.as_str())
            })
            .collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.path.len()));
        for d in dirs {
            let _ = self.db.root.rmdir(&d.path);
        }
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
        let args_install = vec![pkg.version.to_string()];
        let args_upgrade = vec![
            pkg.version.to_string(),
            old.as_ref()
                .map(|o| o.pkg.version.to_string())
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
        let previous: HashMap<String, Acl> = old
            .iter()
            .flat_map(|o| o.dirs.iter().map(|d| (d.path.clone(), d.acl.clone())))
            .collect();
        let old_sums: HashMap<String, Option<Checksum>> = old
            .iter()
            .flat_map(|o| {
                o.files()
                    .map(|(d, f)| (join(&d.path, &f.name), f.checksum.clone()))
            })
            .collect();
        let (db, file_owner) = (&*self.db, &self.file_owner);
        let mut ex = Extractor {
            root: &db.root,
            out: self.out,
            owners: &mut self.owners,
            rules: &self.rules,
            overlay: self.opts.overlay.as_ref(),
            clean_protected: self.opts.clean_protected,
            force_overwrite: self.opts.force_overwrite,
            ownership: self.opts.ownership,
            errors: 0,
            bytes_written: 0,
        };
        let extracted = ex.extract(&pkg, &prep.tar, &mut ip, &previous, &|path| {
            takeover(db, file_owner, &pkg, path)
        });
        if let Ok(staged) = &extracted {
            // The checksum the database has for a path: the old version's, else its owner's.
            let recorded = |path: &str| {
                old_sums.get(path).cloned().flatten().or_else(|| {
                    let ip = &db.installed[db.find(file_owner.get(path)?)?];
                    ip.files()
                        .find(|(d, f)| join(&d.path, &f.name) == path)
                        .and_then(|(_, f)| f.checksum.clone())
                })
            };
            ex.migrate(&pkg, staged, &recorded, &mut self.modified_dirs);
        }
        self.errors += ex.errors;
        self.bytes_written += ex.bytes_written;
        let staged = match extracted {
            Ok(s) => s,
            Err(e) => {
                self.error(&format!("{nv}: {e}"));
                return;
            }
        };
        if let Some(o) = &old {
            let keep: HashSet<String> = staged.iter().map(|s| s.path.clone()).collect();
            let keep_dirs: HashSet<&str> = ip.dirs.iter().map(|d| d.path.as_str()).collect();
            self.remove_files(o, &keep, &keep_dirs);
            self.db.scripts.retain(|(sid, _), _| sid != &o.pkg.identity);
            self.db.triggers.retain(|(sid, _)| sid != &o.pkg.identity);
        }
        // A file taken over from another package is that package's no more (apk-tools moves it).
        for s in &staged {
            if let Some(prev) = self.file_owner.insert(s.path.clone(), pkg.name.clone()) {
                if prev != pkg.name {
                    if let Some(i) = self.db.find(&prev) {
                        self.db.installed[i].disown(&s.path);
                    }
                }
            }
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
        let mut errors = 0;
        // One write for all the lines (nothing else is printed between them): on a loaded
        // machine every write(2) is a point where the process may wait a whole scheduling round.
        let mut lines = String::new();
        for (i, c) in sol.changes.iter().enumerate() {
            lines.push_str(&output::change_line(i + 1, total, pool, c));
            lines.push('\n');
            // A package that stays marked broken (nothing was really reinstalled) counts as an
            // error, as apk counts it after each change.
            if let Some(db_index) = c.new.and_then(|n| pool.packages[n].installed) {
                let broken = &db.installed[db_index].broken;
                if broken.contains('f') || broken.contains('s') {
                    errors += 1;
                }
            }
            if let Some(o) = c.old {
                bytes -= pool.packages[o].pkg.installed_size as i64;
                count -= 1;
            }
            if let Some(n) = c.new {
                bytes += pool.packages[n].pkg.installed_size as i64;
                count += 1;
            }
        }
        out.raw(&lines);
        // The resulting totals; directories and files are the current ones (apk-format.md §9.3).
        let (dirs, files) = db.counts();
        let report = CommitReport {
            errors,
            packages: count.max(0) as usize,
            installed_bytes: bytes.max(0) as u64,
            dirs,
            files,
            ..Default::default()
        };
        if !opts.no_summary {
            out.msg(&summary_line(&report, out.verbosity >= 2));
        }
        return report;
    }
    let rules = ProtectedPaths::load(&db.root.path);
    let file_owner: HashMap<String, Text> = db
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
        Some(script::mount_proc(&db.root))
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
    // Packages to fetch, in order; prepared by the workers. Exactly those the loop below takes,
    // in its order: a change of pinning (or a purge) reads no package.
    let to_fetch: Vec<PkgId> = sol
        .changes
        .iter()
        .filter(|c| !matches!(c.kind, ChangeKind::Purge | ChangeKind::Pinning))
        .filter_map(|c| c.new)
        .filter(|&n| pool.packages[n].pkg.installed_size > 0)
        .collect();
    // Files are created with their final modes; scripts set their own umask (022).
    let old_umask = nix::sys::stat::umask(FMode::empty());
    // Each package holds its file and its inflated data while it is read ahead.
    let costs = to_fetch
        .iter()
        .map(|&id| {
            let p = &pool.packages[id].pkg;
            p.size.saturating_add(p.installed_size)
        })
        .collect();
    let workers = crate::prefetch::workers(opts.jobs).min(to_fetch.len().max(1));
    let budget = match opts.in_flight {
        0 => crate::prefetch::DEFAULT_IN_FLIGHT,
        n => n,
    };
    let fetch = Prefetch::new(costs, crate::prefetch::AHEAD, budget);
    let buffers = Buffers::default();
    std::thread::scope(|sc| {
        // However this ends (a panic included), the workers stop: the scope waits for them.
        let stop = fetch.cancel_on_drop();
        // Workers read, verify and inflate packages ahead of the writer, in order.
        let trust = Trust {
            keys: &opts.keys,
            allow_untrusted: opts.allow_untrusted,
        };
        for _ in 0..workers {
            let (fetch, to_fetch, buffers) = (&fetch, &to_fetch, &buffers);
            sc.spawn(move || {
                fetch.work(|i| (to_fetch[i], prepare(pool, to_fetch[i], buffers, trust)))
            });
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
        drop(stop);
        out.progress(total_weight, total_weight, "installing");
        out.progress_done();
    });
    nix::sys::stat::umask(old_umask);
    if opts.directory_permissions {
        let failed = crate::dirperm::reset(ins.db, opts.ownership);
        if failed > 0 {
            ins.error(&format!("{failed} errors updating directory permissions"));
        }
    }
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
    if !opts.no_summary {
        out.msg(&summary_line(&report, out.verbosity >= 2));
    }
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
    let _ = crate::root::atomic_write(&dir.join(crate::cache::package_name(&p.pkg)), buf, 0o644);
}
