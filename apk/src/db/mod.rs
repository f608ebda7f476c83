//! The installed database under a root: `lib/apk/db/{installed,scripts.tar,triggers,lock}`,
//! `etc/apk/world` and `etc/apk/arch` (apk-format.md §4), opened once and written atomically.

pub mod installed;
pub mod scripts;
pub mod triggers;
pub mod world;

use crate::dep::{DepError, Dependency};
use crate::package::Checksum;
use crate::root::Root;
pub use installed::{Acl, DirEntry, FileEntry, InstalledPackage};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

/// Default architecture of this build.
pub const DEFAULT_ARCH: &str = "x86_64";

/// Database errors (`ERROR: Unable to read database: ...` and friends).
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// I/O on a database file.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// Another apk holds the lock.
    #[error("Unable to lock database: {}", .0.display())]
    Lock(PathBuf),
    /// No database at this root (and not creating one).
    #[error("Unable to read database: {}: No such file or directory", .0.display())]
    Missing(PathBuf),
    /// Installed database syntax.
    #[error("Unable to read database: {}: {err}", .path.display())]
    Fdb {
        /// The file.
        path: PathBuf,
        /// Cause.
        err: installed::FdbError,
    },
    /// A world token is invalid.
    #[error("Unable to read database: {}: {err}", .path.display())]
    World {
        /// The world file.
        path: PathBuf,
        /// Cause.
        err: DepError,
    },
    /// The root directory is missing.
    #[error("{}: cannot open root: {source}", .path.display())]
    Root {
        /// The root.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
}

/// How to open the database.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Take the lock and allow writing.
    pub writable: bool,
    /// Create an empty database when missing (`--initdb`).
    pub create: bool,
    /// Architecture to record in a new `etc/apk/arch` (default: this build's).
    pub arch: Option<String>,
    /// Continue with the valid tokens of a world file that has a bad one (PID 1 uses this).
    pub lenient_world: bool,
    /// Wait this many seconds for the lock.
    pub lock_wait: u64,
}

/// An open database.
#[derive(Debug)]
pub struct Database {
    /// The root.
    pub root: Root,
    /// Installed packages, in database order.
    pub installed: Vec<InstalledPackage>,
    /// `etc/apk/world`.
    pub world: Vec<Dependency>,
    /// The bad world token ignored under `lenient_world`.
    pub world_error: Option<DepError>,
    /// Stored scripts.
    pub scripts: scripts::Scripts,
    /// Trigger globs per package.
    pub triggers: Vec<(Checksum, Vec<String>)>,
    /// Order packages were installed in (identities): `scripts.tar` and `triggers` follow it.
    pub install_order: Vec<Checksum>,
    /// `etc/apk/arch` (first = primary).
    pub arches: Vec<String>,
    /// Whether the database was created by this open.
    pub created: bool,
    lock: Option<std::fs::File>,
}

const DB_DIR: &str = "lib/apk/db";

fn io_at(path: PathBuf) -> impl FnOnce(io::Error) -> DbError {
    move |source| DbError::Io { path, source }
}

/// Read a state file (`world`, `installed`). Paths resolve beneath the root; a symlink whose
/// target is not there is followed as apk-tools follows it, from the host (its `openat` is not
/// confined): apk-tools v3's own test harness links `lib/apk/db/installed` to a file outside the
/// root, and only the administrator can place such a link.
fn read_state(root: &Root, rel: &str) -> Result<Option<Vec<u8>>, DbError> {
    let host = root.host_path(rel);
    if let Some(v) = root.read_opt(rel).map_err(io_at(host.clone()))? {
        return Ok(Some(v));
    }
    let is_link = root
        .lstat_opt(rel)
        .map_err(io_at(host.clone()))?
        .is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK);
    if !is_link {
        return Ok(None);
    }
    match crate::limits::read(&host, crate::limits::STATE_FILE) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DbError::Io { path: host, source }),
    }
}

impl Database {
    /// Open the database under `root`.
    pub fn open(root_path: &Path, opts: &OpenOptions) -> Result<Database, DbError> {
        if opts.create {
            std::fs::create_dir_all(root_path).map_err(|source| DbError::Root {
                path: root_path.into(),
                source,
            })?;
        }
        let root = Root::open(root_path).map_err(|source| DbError::Root {
            path: root_path.into(),
            source,
        })?;
        let installed_path = format!("{DB_DIR}/installed");
        let exists = root
            .lstat_opt(&installed_path)
            .map_err(io_at(root.host_path(&installed_path)))?
            .is_some();
        let mut created = false;
        if !exists {
            if !opts.create {
                return Err(DbError::Missing(root.host_path(&installed_path)));
            }
            create_layout(&root)?;
            created = true;
        }
        let lock = if opts.writable {
            Some(take_lock(&root, opts.lock_wait)?)
        } else {
            None
        };
        let arches = read_or_write_arch(&root, opts)?;
        let world_path = "etc/apk/world";
        let world_text = match read_state(&root, world_path)? {
            Some(t) => String::from_utf8_lossy(&t).into_owned(),
            None if created || opts.create => String::new(),
            None => return Err(DbError::Missing(root.host_path(world_path))),
        };
        let (world, world_error) = world::parse(&world_text);
        if let Some(err) = &world_error {
            if !opts.lenient_world {
                return Err(DbError::World {
                    path: root.host_path(world_path),
                    err: err.clone(),
                });
            }
        }
        let text = read_state(&root, &installed_path)?.unwrap_or_default();
        let installed =
            installed::parse(&String::from_utf8_lossy(&text)).map_err(|err| DbError::Fdb {
                path: root.host_path(&installed_path),
                err,
            })?;
        let trig_path = format!("{DB_DIR}/triggers");
        let triggers = root
            .read_opt(&trig_path)
            .map_err(io_at(root.host_path(&trig_path)))?
            .map(|t| triggers::parse(&String::from_utf8_lossy(&t)))
            .unwrap_or_default();
        let scripts = read_scripts(&root)?;
        let mut install_order: Vec<Checksum> = Vec::new();
        let mut by_seq: Vec<(&Checksum, usize)> =
            scripts.iter().map(|((id, _), s)| (id, s.seq)).collect();
        by_seq.sort_by_key(|(_, seq)| *seq);
        for (id, _) in by_seq {
            if !install_order.contains(id) {
                install_order.push(id.clone());
            }
        }
        for (id, _) in &triggers {
            if !install_order.contains(id) {
                install_order.push(id.clone());
            }
        }
        Ok(Database {
            root,
            installed,
            world,
            world_error,
            scripts,
            triggers,
            install_order,
            arches,
            created,
            lock,
        })
    }

    /// Primary architecture.
    pub fn arch(&self) -> &str {
        self.arches
            .first()
            .map(String::as_str)
            .unwrap_or(DEFAULT_ARCH)
    }

    /// Write world, installed, scripts and triggers (each atomically).
    pub fn write(&self) -> Result<(), DbError> {
        let root = &self.root;
        let w = |rel: &str, data: &[u8], mode: u32| {
            root.write_atomic(rel, data, mode)
                .map_err(io_at(root.host_path(rel)))
        };
        root.mkdir_p(DB_DIR, 0o755)
            .map_err(io_at(root.host_path(DB_DIR)))?;
        root.mkdir_p("etc/apk", 0o755)
            .map_err(io_at(root.host_path("etc/apk")))?;
        w("etc/apk/world", world::write(&self.world).as_bytes(), 0o644)?;
        w(
            &format!("{DB_DIR}/installed"),
            installed::write(&self.installed).as_bytes(),
            0o644,
        )?;
        let mut order: Vec<Checksum> = self
            .install_order
            .iter()
            .filter(|id| self.installed.iter().any(|p| &p.pkg.identity == *id))
            .cloned()
            .collect();
        for p in &self.installed {
            if !order.contains(&p.pkg.identity) {
                order.push(p.pkg.identity.clone());
            }
        }
        w(
            &format!("{DB_DIR}/scripts.tar"),
            &scripts::write(&self.scripts, &order),
            0o644,
        )?;
        let trig: Vec<(Checksum, Vec<String>)> = order
            .iter()
            .filter_map(|id| self.triggers.iter().find(|(t, _)| t == id).cloned())
            .collect();
        w(
            &format!("{DB_DIR}/triggers"),
            triggers::write(&trig).as_bytes(),
            0o644,
        )?;
        Ok(())
    }

    /// Index of the installed package with this name.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.installed.iter().position(|p| p.pkg.name == name)
    }

    /// Map of every owned file path to the index of its package.
    pub fn file_owners(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for (i, p) in self.installed.iter().enumerate() {
            for (d, f) in p.files() {
                m.insert(join(&d.path, &f.name), i);
            }
        }
        m
    }

    /// Directories (with the root, as apk counts it) and files the installed packages own.
    pub fn counts(&self) -> (usize, usize) {
        let mut dirs: std::collections::HashSet<&str> = self
            .installed
            .iter()
            .flat_map(|p| p.dirs.iter().map(|d| d.path.as_str()))
            .collect();
        if !self.installed.is_empty() {
            dirs.insert("");
        }
        (
            dirs.len(),
            self.installed.iter().map(|p| p.file_count()).sum(),
        )
    }

    /// Sum of installed sizes.
    pub fn installed_bytes(&self) -> u64 {
        self.installed.iter().map(|p| p.pkg.installed_size).sum()
    }

    /// Release the lock (also done on drop).
    pub fn close(&mut self) {
        if self.lock.take().is_some() {
            let _ = self.root.unlink(&format!("{DB_DIR}/lock"));
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        self.close();
    }
}

/// `dir/name`, or `name` at the root.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn create_layout(root: &Root) -> Result<(), DbError> {
    for (d, mode) in [
        ("tmp", 0o1777),
        ("dev", 0o755),
        ("etc/apk", 0o755),
        (DB_DIR, 0o755),
        ("var/cache/apk", 0o755),
        ("var/cache/misc", 0o755),
    ] {
        root.mkdir_p(d, 0o755).map_err(io_at(root.host_path(d)))?;
        if mode != 0o755 {
            // Through a handle on the directory itself: a symlink in its place (say, `tmp` ->
            // `/etc`) is left alone, never followed to chmod a host directory.
            match root.chmod_dir(d, mode) {
                Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {}
                r => r.map_err(io_at(root.host_path(d)))?,
            }
        }
    }
    for f in ["etc/apk/world", "lib/apk/db/installed"] {
        if root
            .lstat_opt(f)
            .map_err(io_at(root.host_path(f)))?
            .is_none()
        {
            root.write_atomic(f, b"", 0o644)
                .map_err(io_at(root.host_path(f)))?;
        }
    }
    Ok(())
}

fn take_lock(root: &Root, wait: u64) -> Result<std::fs::File, DbError> {
    let rel = format!("{DB_DIR}/lock");
    root.mkdir_p(DB_DIR, 0o755)
        .map_err(io_at(root.host_path(DB_DIR)))?;
    let path = root.host_path(&rel);
    let d = root.dir(DB_DIR).map_err(io_at(path.clone()))?;
    use nix::fcntl::OFlag;
    let fd = nix::fcntl::openat(
        &d,
        "lock",
        OFlag::O_CREAT | OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| DbError::Io {
        path: path.clone(),
        source: io::Error::from_raw_os_error(e as i32),
    })?;
    let f = std::fs::File::from(fd);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait);
    loop {
        if rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok() {
            return Ok(f);
        }
        if std::time::Instant::now() >= deadline {
            return Err(DbError::Lock(path));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn read_or_write_arch(root: &Root, opts: &OpenOptions) -> Result<Vec<String>, DbError> {
    let rel = "etc/apk/arch";
    if let Some(t) = root.read_opt(rel).map_err(io_at(root.host_path(rel)))? {
        let v: Vec<String> = String::from_utf8_lossy(&t)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        if !v.is_empty() {
            return Ok(v);
        }
    }
    let arch = opts
        .arch
        .clone()
        .unwrap_or_else(|| DEFAULT_ARCH.to_string());
    if opts.writable {
        root.mkdir_p("etc/apk", 0o755)
            .map_err(io_at(root.host_path("etc/apk")))?;
        root.write_atomic(rel, format!("{arch}\n").as_bytes(), 0o644)
            .map_err(io_at(root.host_path(rel)))?;
    }
    Ok(vec![arch])
}

fn read_scripts(root: &Root) -> Result<scripts::Scripts, DbError> {
    let tar_rel = format!("{DB_DIR}/scripts.tar");
    if let Some(data) = root
        .read_opt(&tar_rel)
        .map_err(io_at(root.host_path(&tar_rel)))?
    {
        return scripts::parse(&data).map_err(|e| DbError::Io {
            path: root.host_path(&tar_rel),
            source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
        });
    }
    let gz_rel = format!("{DB_DIR}/scripts.tar.gz");
    if let Some(data) = root
        .read_opt(&gz_rel)
        .map_err(io_at(root.host_path(&gz_rel)))?
    {
        let mut out = Vec::new();
        // Bounded like every state file: the overlay may bring this one (a gzip bomb).
        io::Read::read_to_end(
            &mut io::Read::take(
                flate2::read::MultiGzDecoder::new(&data[..]),
                crate::limits::STATE_FILE + 1,
            ),
            &mut out,
        )
        .map_err(io_at(root.host_path(&gz_rel)))?;
        if out.len() as u64 > crate::limits::STATE_FILE {
            return Err(DbError::Io {
                path: root.host_path(&gz_rel),
                source: io::Error::other(crate::limits::TooLarge {
                    size: out.len() as u64,
                    limit: crate::limits::STATE_FILE,
                }),
            });
        }
        return scripts::parse(&out).map_err(|e| DbError::Io {
            path: root.host_path(&gz_rel),
            source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
        });
    }
    Ok(scripts::Scripts::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_open_write() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().join("r");
        assert!(matches!(
            Database::open(&r, &OpenOptions::default()),
            Err(DbError::Root { .. })
        ));
        std::fs::create_dir(&r).unwrap();
        assert!(matches!(
            Database::open(&r, &OpenOptions::default()),
            Err(DbError::Missing(_))
        ));
        let mut db = Database::open(
            &r,
            &OpenOptions {
                writable: true,
                create: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(db.created);
        assert_eq!(db.arches, vec!["x86_64"]);
        assert!(r.join("lib/apk/db/lock").exists());
        db.world.push(Dependency::any("alpine-base"));
        db.write().unwrap();
        db.close();
        assert!(!r.join("lib/apk/db/lock").exists());
        let db = Database::open(&r, &OpenOptions::default()).unwrap();
        assert_eq!(db.world, vec![Dependency::any("alpine-base")]);
        assert_eq!(
            std::fs::read_to_string(r.join("etc/apk/world")).unwrap(),
            "alpine-base\n"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(r.join("tmp"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o1777
        );
    }

    #[test]
    fn lock_is_exclusive() {
        let t = tempfile::tempdir().unwrap();
        let opts = OpenOptions {
            writable: true,
            create: true,
            ..Default::default()
        };
        let _a = Database::open(t.path(), &opts).unwrap();
        assert!(matches!(
            Database::open(t.path(), &opts),
            Err(DbError::Lock(_))
        ));
    }

    #[test]
    fn bad_world_token() {
        let t = tempfile::tempdir().unwrap();
        let opts = OpenOptions {
            writable: false,
            create: true,
            ..Default::default()
        };
        drop(Database::open(t.path(), &opts).unwrap());
        std::fs::write(t.path().join("etc/apk/world"), "a b== c\n").unwrap();
        assert!(matches!(
            Database::open(t.path(), &OpenOptions::default()),
            Err(DbError::World { .. })
        ));
        let db = Database::open(
            t.path(),
            &OpenOptions {
                lenient_world: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(db.world.len(), 1);
        assert!(db.world_error.is_some());
    }
}
