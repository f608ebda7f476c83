//! `apk audit`: compare a root with its installed database. Backup mode walks the protected
//! (configuration) paths and is what `lbu` uses to pick the files of an apkovl; system mode walks
//! everything else (apk-tools `app_audit.c`; what lbu saves from it: lbu/README.md, "Selection").

use crate::db::{join, Acl, Database, FileEntry};
use crate::package::Checksum;
use crate::protected::{Node, Protect, ProtectedPaths};
use sha1::{Digest, Sha1};
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Which files to audit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditMode {
    /// Protected (configuration) files only: `--backup`.
    Backup,
    /// Everything that is not protected: `--system`.
    System,
    /// Everything: `--full`.
    Full,
}

/// Audit options.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// Mode.
    pub mode: AuditMode,
    /// Descend into directories that no package owns (reporting their content).
    pub recursive: bool,
    /// Report mode and owner changes too.
    pub check_permissions: bool,
    /// Only these paths (relative to the root); empty = the whole root.
    pub paths: Vec<String>,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            mode: AuditMode::Backup,
            recursive: false,
            check_permissions: false,
            paths: Vec::new(),
        }
    }
}

/// One reported path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    /// `A` added, `U` content changed, `M` metadata changed, `x` xattrs changed, `X` deleted,
    /// `D`/`d` directory not owned by a package, `m` owned directory with changed metadata,
    /// `e` unreadable.
    pub status: char,
    /// Path relative to the root; directories end with `/`.
    pub path: String,
}

/// An audit failure.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", .path.display())]
pub struct AuditError {
    /// The path.
    pub path: PathBuf,
    /// Cause.
    pub source: std::io::Error,
}

struct Ctx<'a> {
    root: &'a Path,
    files: HashMap<String, &'a FileEntry>,
    dirs: HashMap<&'a str, &'a Acl>,
    opts: &'a AuditOptions,
    out: Vec<AuditEntry>,
}

/// SHA-1 of a regular file's content or of a symlink's target, as the database stores it.
pub fn file_checksum(path: &Path, meta: &std::fs::Metadata) -> std::io::Result<Checksum> {
    let mut h = Sha1::new();
    if meta.file_type().is_symlink() {
        let t = std::fs::read_link(path)?;
        h.update(std::os::unix::ffi::OsStrExt::as_bytes(t.as_os_str()));
    } else {
        let mut f = std::fs::File::open(path)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(Checksum(h.finalize().to_vec()))
}

/// What is at `rel` in a root, compared with the database by the installer: nothing (`None`),
/// or whether it is a directory and its checksum as the database stores it (regular files and
/// symlinks; `None` for anything else). Everything is resolved beneath the root.
pub fn on_disk(root: &crate::root::Root, rel: &str) -> Option<(bool, Option<Checksum>)> {
    let st = root.lstat_opt(rel).ok().flatten()?;
    let kind = nix::sys::stat::SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT);
    let sum = if kind == nix::sys::stat::SFlag::S_IFLNK {
        root.read_link(rel)
            .ok()
            .map(|t| Checksum(Sha1::digest(&t).to_vec()))
    } else if kind == nix::sys::stat::SFlag::S_IFREG {
        root.open_read_nofollow(rel).ok().and_then(|mut f| {
            let mut h = Sha1::new();
            std::io::copy(&mut f, &mut HashWriter(&mut h)).ok()?;
            Some(Checksum(h.finalize().to_vec()))
        })
    } else {
        None
    };
    Some((kind == nix::sys::stat::SFlag::S_IFDIR, sum))
}

/// `io::Write` into a digest, for `io::copy`.
struct HashWriter<'a>(&'a mut Sha1);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Run an audit.
pub fn audit(
    db: &Database,
    rules: &ProtectedPaths,
    opts: &AuditOptions,
) -> Result<Vec<AuditEntry>, AuditError> {
    let mut ctx = Ctx {
        root: &db.root.path,
        files: HashMap::new(),
        dirs: HashMap::new(),
        opts,
        out: Vec::new(),
    };
    for p in &db.installed {
        for d in &p.dirs {
            ctx.dirs.entry(d.path.as_str()).or_insert(&d.acl);
            for f in &d.files {
                ctx.files.insert(join(&d.path, &f.name), f);
            }
        }
    }
    let starts: Vec<String> = if opts.paths.is_empty() {
        vec![String::new()]
    } else {
        opts.paths
            .iter()
            .map(|p| p.trim_matches('/').to_string())
            .collect()
    };
    for start in &starts {
        let mut node = rules.root();
        let comps: Vec<&str> = start.split('/').filter(|c| !c.is_empty()).collect();
        for c in &comps {
            node = node.child(c);
        }
        let host = ctx.root.join(start);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.is_dir() => walk(&mut ctx, start, &node)?,
            Ok(m) => {
                let (dir, name) = crate::root::split_parent(start);
                let mut pnode = rules.root();
                for c in dir.split('/').filter(|c| !c.is_empty()) {
                    pnode = pnode.child(c);
                }
                audit_file(&mut ctx, dir, name, &m, &pnode);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(AuditError { path: host, source }),
        }
    }
    if opts.mode != AuditMode::Backup {
        report_deleted(&mut ctx, rules, &starts);
    }
    Ok(ctx.out)
}

fn walk(ctx: &mut Ctx<'_>, dir: &str, node: &Node) -> Result<(), AuditError> {
    let host = ctx.root.join(dir);
    let rd = std::fs::read_dir(&host).map_err(|source| AuditError {
        path: host.clone(),
        source,
    })?;
    let mut entries: Vec<(String, std::fs::Metadata)> = Vec::new();
    for e in rd {
        let e = e.map_err(|source| AuditError {
            path: host.clone(),
            source,
        })?;
        let name = e.file_name().to_string_lossy().into_owned();
        match e.path().symlink_metadata() {
            Ok(m) => entries.push((name, m)),
            Err(_) => ctx.out.push(AuditEntry {
                status: 'e',
                path: join(dir, &name),
            }),
        }
    }
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (name, meta) in entries {
        let path = join(dir, &name);
        if meta.is_dir() {
            // /proc, /sys and /dev are never audited: they are not files of the system.
            if dir.is_empty() && matches!(name.as_str(), "proc" | "sys" | "dev") {
                continue;
            }
            let child = node.child(&name);
            let wanted = match ctx.opts.mode {
                AuditMode::Backup => child.has_protected(),
                _ => true,
            };
            // System mode reports no new files or directories (apk-audit(8)): a directory no
            // package owns is not entered.
            if !wanted
                || ctx.opts.mode == AuditMode::System && !ctx.dirs.contains_key(path.as_str())
            {
                continue;
            }
            let audited = match ctx.opts.mode {
                AuditMode::Backup => child.mode.is_protected(),
                AuditMode::System => !child.mode.is_protected(),
                AuditMode::Full => true,
            };
            let mut recurse = true;
            if audited {
                match ctx.dirs.get(path.as_str()) {
                    None => {
                        let letter = if ctx.opts.recursive { 'd' } else { 'D' };
                        ctx.out.push(AuditEntry {
                            status: letter,
                            path: format!("{path}/"),
                        });
                        recurse = ctx.opts.recursive;
                    }
                    Some(acl) => {
                        if ctx.opts.check_permissions
                            && (meta.permissions().mode() & 0o7777 != acl.mode
                                || meta.uid() != acl.uid
                                || meta.gid() != acl.gid)
                        {
                            let letter = if ctx.opts.recursive { 'm' } else { 'M' };
                            ctx.out.push(AuditEntry {
                                status: letter,
                                path: format!("{path}/"),
                            });
                        }
                    }
                }
            }
            if recurse {
                walk(ctx, &path, &child)?;
            }
        } else {
            audit_file(ctx, dir, &name, &meta, node);
        }
    }
    Ok(())
}

fn audit_file(ctx: &mut Ctx<'_>, dir: &str, name: &str, meta: &std::fs::Metadata, node: &Node) {
    let path = join(dir, name);
    let mode = node.file_mode(name);
    let dbf = ctx.files.get(path.as_str()).copied();
    let status = match ctx.opts.mode {
        AuditMode::Backup => match mode {
            Protect::None | Protect::Ignore => return,
            Protect::SymlinksOnly if !meta.file_type().is_symlink() => return,
            Protect::All => {
                if name.ends_with(".apk-new") {
                    return;
                }
                Some('A')
            }
            _ => None,
        },
        AuditMode::System if mode.is_protected() || dbf.is_none() => return,
        _ => None,
    };
    let status = status.or_else(|| match dbf {
        None => {
            if name.ends_with(".apk-new") {
                None
            } else {
                Some('A')
            }
        }
        Some(f) => audit_owned(ctx, &path, meta, f),
    });
    if let Some(s) = status {
        ctx.out.push(AuditEntry { status: s, path });
    }
}

fn audit_owned(ctx: &Ctx<'_>, path: &str, meta: &std::fs::Metadata, f: &FileEntry) -> Option<char> {
    let host = ctx.root.join(path);
    let is_link = meta.file_type().is_symlink();
    if let Some(want) = &f.checksum {
        if meta.is_file() || is_link {
            match file_checksum(&host, meta) {
                Ok(got) if want.0.len() == got.0.len() && &got != want => return Some('U'),
                Ok(_) => {}
                Err(_) => return Some('e'),
            }
        }
    } else if is_link {
        return Some('U');
    }
    if !is_link {
        let x = crate::xattr::read(&host)
            .ok()
            .and_then(|a| crate::xattr::digest(&a));
        if x != f.acl.xattr {
            return Some('x');
        }
    }
    if ctx.opts.check_permissions
        && !is_link
        && (meta.permissions().mode() & 0o7777 != f.acl.mode
            || meta.uid() != f.acl.uid
            || meta.gid() != f.acl.gid)
    {
        return Some('M');
    }
    None
}

fn report_deleted(ctx: &mut Ctx<'_>, rules: &ProtectedPaths, starts: &[String]) {
    let mut missing: Vec<String> = Vec::new();
    for path in ctx.files.keys() {
        if !starts
            .iter()
            .any(|s| s.is_empty() || path == s || path.starts_with(&format!("{s}/")))
        {
            continue;
        }
        let prot = rules.mode_of(path, false).is_protected();
        if ctx.opts.mode == AuditMode::System && prot {
            continue;
        }
        if std::fs::symlink_metadata(ctx.root.join(path)).is_err() {
            missing.push(path.clone());
        }
    }
    missing.sort();
    ctx.out.extend(
        missing
            .into_iter()
            .map(|path| AuditEntry { status: 'X', path }),
    );
}

/// The file set `lbu` archives: `apk audit --backup --recursive --check-permissions --quiet`.
pub fn backup_selection(db: &Database) -> Result<Vec<String>, AuditError> {
    let rules = ProtectedPaths::load(&db.root.path);
    let opts = AuditOptions {
        mode: AuditMode::Backup,
        recursive: true,
        check_permissions: true,
        paths: Vec::new(),
    };
    Ok(audit(db, &rules, &opts)?
        .into_iter()
        .filter(|e| e.status != 'e')
        .map(|e| e.path)
        .collect())
}

/// Package-owned files in protected (configuration) locations that no longer exist: what a user
/// deleted and Alpine's apkovl cannot express (the project's overlays record them).
pub fn deleted_config_files(db: &Database) -> Vec<String> {
    let rules = ProtectedPaths::load(&db.root.path);
    let mut out: Vec<String> = db
        .installed
        .iter()
        .flat_map(|p| p.files().map(|(d, f)| join(&d.path, &f.name)))
        .filter(|p| matches!(rules.mode_of(p, false), Protect::Changed | Protect::All))
        .filter(|p| std::fs::symlink_metadata(db.root.path.join(p)).is_err())
        .collect();
    out.sort();
    out.dedup();
    out
}
