//! An apk session: options resolved against the root, the database opened once, repositories
//! loaded and verified, the package pool built. The CLI applets and the boot init both start here.

use crate::archive;
use crate::db::{Database, OpenOptions};
pub use crate::error::Error;
use crate::extract::OverlayList;
use crate::fetch::{Network, Refresh};
use crate::http::ClientOptions;
use crate::output::Out;
use crate::pool::Pool;
use crate::repo::{self, LoadOptions, RepoSpec, Repository};
use crate::root::Root;
use crate::trust::Keyring;
use std::path::{Path, PathBuf};

/// Global options (apk's, resolved).
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--root`.
    pub root: PathBuf,
    /// `--repository` / `-X`, in order.
    pub repositories: Vec<String>,
    /// `--repositories-file` (instead of `ROOT/etc/apk/repositories`).
    pub repositories_file: Option<PathBuf>,
    /// `--keys-dir` (relative paths are relative to the root).
    pub keys_dir: Option<PathBuf>,
    /// Extra trusted keys (the init passes its initramfs keys this way when not copied).
    pub extra_keys: Option<Keyring>,
    /// `--allow-untrusted`.
    pub allow_untrusted: bool,
    /// `--initdb`.
    pub initdb: bool,
    /// `--no-network`.
    pub no_network: bool,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--cache-dir`.
    pub cache_dir: Option<PathBuf>,
    /// `-U`/`--update-cache` (and `apk update`): refresh every remote index now.
    pub update_cache: bool,
    /// `--cache-max-age`: refresh remote indexes older than this (default 4 hours, as v3).
    pub cache_max_age: Option<std::time::Duration>,
    /// HTTP client settings (proxies, timeouts, resolver, extra CAs). The system CA bundle of the
    /// root (else the host's) is added when the client is first used.
    pub http: ClientOptions,
    /// `--ca FILE` and `SSL_CERT_FILE`: more CA bundles (read when the session opens).
    pub ca_files: Vec<PathBuf>,
    /// `--simulate`.
    pub simulate: bool,
    /// `--no-scripts`.
    pub no_scripts: bool,
    /// `--clean-protected`.
    pub clean_protected: bool,
    /// `--overlay-from-stdin` (already read).
    pub overlay: Option<OverlayList>,
    /// `--force-broken-world`.
    pub force_broken_world: bool,
    /// `--force-overwrite`.
    pub force_overwrite: bool,
    /// `--force-non-repository`.
    pub force_non_repository: bool,
    /// `--root-tmpfs=yes|no` (None: auto).
    pub root_tmpfs: Option<bool>,
    /// `--arch`.
    pub arch: Option<String>,
    /// `--wait N`.
    pub wait: u64,
    /// `--initramfs-diskless-boot`.
    pub diskless_boot: bool,
    /// `--purge`.
    pub purge: bool,
    /// Continue with the valid tokens of a broken world file (PID 1).
    pub lenient_world: bool,
    /// `add --no-chown` / `add --usermode`: what extraction may change beyond contents and modes.
    pub ownership: crate::extract::Ownership,
    /// `fix --directory-permissions`: reset the permissions of every installed directory.
    pub directory_permissions: bool,
    /// Install engine: threads that read, verify and inflate packages ahead of the writer
    /// (0: one per online CPU).
    pub jobs: usize,
    /// Install engine: at most this many bytes of packages (file plus inflated data) read ahead of
    /// the writer (0: [`crate::prefetch::DEFAULT_IN_FLIGHT`]); the next package is always read.
    pub in_flight: u64,
}

/// What an applet needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Nothing from the database.
    None,
    /// Read the database and repositories.
    ReadOnly,
    /// The repositories, and the installed database when the root has one (`apk fetch`,
    /// `search`, `policy`, `update` work on any directory).
    Repositories,
    /// Lock and write.
    Writable,
}

/// An open session.
pub struct Context {
    /// Options.
    pub opts: Options,
    /// The database (None for `Access::None`).
    pub db: Option<Database>,
    /// Loaded repositories (their packages moved into [`Context::pool`]: `packages` is empty).
    pub repos: Vec<Repository>,
    /// The pool.
    pub pool: Pool,
    /// Output.
    pub out: Out,
    /// Trusted keys.
    pub keys: Keyring,
    /// Package cache in use (apk's active cache: `etc/apk/cache` or `--cache-dir`).
    pub cache_dir: Option<PathBuf>,
    /// Warnings counted while opening repositories (they make the exit code non-zero? no: apk only warns).
    pub repo_warnings: usize,
    /// Remote repositories that could not be opened.
    pub repo_unavailable: usize,
    /// Remote repositories whose refresh failed (an older cached index is used).
    pub repo_stale: usize,
    /// Remote repositories whose index was downloaded anew.
    pub repo_updated: usize,
    /// Downloads: the HTTP client, the cache, the refresh policy.
    pub net: Network,
}

fn resolve_under(root: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        root.join(p)
    }
}

impl Context {
    /// Open a session.
    pub fn open(opts: Options, access: Access, out: Out) -> Result<Context, Error> {
        let root = if opts.root.as_os_str().is_empty() {
            PathBuf::from("/")
        } else {
            opts.root.clone()
        };
        let mut opts = opts;
        opts.root = root.clone();
        if opts.diskless_boot {
            opts.initdb = true;
            opts.force_broken_world = true;
            opts.force_overwrite = true;
            opts.force_non_repository = true;
        }
        let db = match access {
            Access::None => None,
            Access::Repositories => {
                let o = OpenOptions {
                    arch: opts.arch.clone(),
                    ..Default::default()
                };
                match Database::open(&root, &o) {
                    Ok(db) => Some(db),
                    Err(crate::db::DbError::Missing(_)) => None,
                    Err(e) => return Err(e.into()),
                }
            }
            _ => {
                if opts.initdb && opts.simulate && !root.join("lib/apk/db/installed").exists() {
                    return Err(Error::SimulateInitdb);
                }
                let o = OpenOptions {
                    writable: access == Access::Writable && !opts.simulate,
                    create: opts.initdb,
                    arch: opts.arch.clone(),
                    lenient_world: opts.lenient_world,
                    lock_wait: opts.wait,
                };
                Some(Database::open(&root, &o)?)
            }
        };
        let arches = match (&db, &opts.arch) {
            (_, Some(a)) => vec![a.clone()],
            (Some(d), None) => d.arches.clone(),
            (None, None) => vec![crate::db::DEFAULT_ARCH.to_string()],
        };
        // The root's keys are read beneath it; only an absolute --keys-dir names a host directory.
        let root_handle = db.as_ref().map(|d| &d.root);
        let opened;
        let beneath = match root_handle {
            Some(r) => Some(r),
            None => {
                opened = Root::open(&root).ok();
                opened.as_ref()
            }
        };
        let mut keys = match (&opts.keys_dir, beneath) {
            (Some(k), _) if k.is_absolute() => Keyring::load(k),
            (Some(k), Some(r)) => Keyring::load_beneath(r, &k.to_string_lossy()),
            (None, Some(r)) => Keyring::load_beneath(r, "etc/apk/keys"),
            (_, None) => Keyring::default(),
        };
        if let Some(extra) = &opts.extra_keys {
            keys = merge(keys, extra);
        }
        let cache = crate::cache::Cache::choose(&root, opts.cache_dir.as_deref(), opts.no_cache);
        let cache_dir = cache.as_ref().filter(|c| c.packages).map(|c| c.dir.clone());
        let mut http = opts.http.clone();
        for f in &opts.ca_files {
            http.ca.add_file(&resolve_under(&root, f))?;
        }
        let refresh = if opts.update_cache {
            Refresh::Always
        } else {
            Refresh::OlderThan(opts.cache_max_age.unwrap_or(crate::fetch::DEFAULT_MAX_AGE))
        };
        let mut net = Network::new(http, cache, refresh);
        net.system_ca_root = Some(root.clone());
        net.offline = opts.no_network;
        net.simulate = opts.simulate;
        let mut ctx = Context {
            opts,
            db,
            repos: Vec::new(),
            pool: Pool::new(arches),
            out,
            keys,
            cache_dir,
            repo_warnings: 0,
            repo_unavailable: 0,
            repo_stale: 0,
            repo_updated: 0,
            net,
        };
        if access != Access::None {
            ctx.load_pool()?;
        }
        Ok(ctx)
    }

    /// Open the session again (database, repositories, pool) after a commit changed the
    /// database under the pool (apk's preupgrade, after which apk-tools re-executes itself).
    pub fn reopen(&mut self) -> Result<(), Error> {
        let opts = self.opts.clone();
        let out = self.out.clone();
        // Release the database lock before taking it again.
        self.db = None;
        *self = Context::open(opts, Access::Writable, out)?;
        Ok(())
    }

    /// Repository specs from the repositories file(s) and `-X` options. The root's
    /// `etc/apk/repositories` and `repositories.d/*.list` are read beneath it; only an absolute
    /// `--repositories-file` names a host file.
    pub fn repo_specs(&self) -> Vec<RepoSpec> {
        let beneath = self.db.as_ref().map(|d| &d.root);
        let read = |rel: &str| -> Option<String> {
            let bytes = beneath?.read_opt(rel).ok()??;
            Some(String::from_utf8_lossy(&bytes).into_owned())
        };
        let mut texts: Vec<String> = Vec::new();
        match &self.opts.repositories_file {
            Some(f) if f.is_absolute() => texts.extend(std::fs::read_to_string(f).ok()),
            Some(f) => texts.extend(read(&f.to_string_lossy())),
            None => {
                texts.extend(read("etc/apk/repositories"));
                let dir = "etc/apk/repositories.d";
                let lists = beneath.and_then(|r| r.list(dir).ok()).unwrap_or_default();
                for name in lists.iter().filter(|n| n.ends_with(".list")) {
                    texts.extend(read(&format!("{dir}/{name}")));
                }
            }
        }
        let mut specs: Vec<RepoSpec> = texts
            .iter()
            .flat_map(|t| repo::parse_repositories(t))
            .collect();
        specs.extend(
            self.opts
                .repositories
                .iter()
                .filter_map(|r| RepoSpec::parse(r)),
        );
        specs
    }

    fn load_pool(&mut self) -> Result<(), Error> {
        if let Some(db) = &self.db {
            for (i, ip) in db.installed.iter().enumerate() {
                self.pool.add_installed(&ip.pkg, i, ip.tag.clone());
            }
        }
        let arch = self.pool.arches.first().cloned().unwrap_or_default();
        let specs = self.repo_specs();
        let index_cache = self.net.cache.as_ref().map(|c| c.dir.clone());
        for spec in specs {
            let lo = LoadOptions {
                arch: &arch,
                keys: &self.keys,
                allow_untrusted: self.opts.allow_untrusted,
                no_network: self.opts.no_network,
                cache_dir: index_cache.as_deref(),
            };
            let mut loaded =
                if matches!(spec.location, repo::Location::Remote(_)) && !self.opts.no_network {
                    match self.net.open_index(&spec, &lo, &self.out) {
                        Ok((r, status)) => {
                            self.repo_updated += usize::from(status.updated);
                            self.repo_stale += usize::from(status.stale);
                            r
                        }
                        Err(warning) => {
                            self.out.warning(&warning.to_string());
                            self.repo_warnings += 1;
                            self.repo_unavailable += 1;
                            continue;
                        }
                    }
                } else {
                    match Repository::load(&spec, &lo) {
                        Ok(r) => r,
                        Err((what, e)) => {
                            // Remote repositories under --no-network are masked silently.
                            if !(spec.is_remote() && self.opts.no_network) {
                                self.out.warning(&format!("opening {what}: {e}"));
                                self.repo_warnings += 1;
                            }
                            continue;
                        }
                    }
                };
            for e in &loaded.skipped {
                self.out.warning(&format!(
                    "{}: skipped the entry at line {}: {}",
                    loaded.index.display(),
                    e.line,
                    e.msg
                ));
            }
            self.pool.take_repository(&mut loaded);
            self.repos.push(loaded);
        }
        if let Some(c) = self.cache_dir.clone() {
            self.load_cached_installed(&c);
            self.scan_cache(&c);
        }
        if self.repos.iter().any(|r| r.unknown_letters) {
            let what = if self.repos.iter().any(|r| r.unknown_uppercase) {
                "are not installable"
            } else {
                "might not function properly"
            };
            self.out
                .warning(&format!("This apk-tools is OLD! Some packages {what}."));
        }
        Ok(())
    }

    /// `<cache>/installed`: index entries of installed packages that came from files, whose
    /// copies the cache keeps (apk-format.md §4.5); they can be reinstalled from there.
    fn load_cached_installed(&mut self, dir: &Path) {
        let path = dir.join("installed");
        let text = match crate::limits::read(&path, crate::limits::CACHED_INSTALLED) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                self.out
                    .warning(&format!("{}: not read: {e}", path.display()));
                return;
            }
        };
        let idx = crate::index::parse(String::from_utf8_lossy(&text).into_owned());
        for e in &idx.skipped {
            self.out.warning(&format!(
                "{}: skipped the entry at line {}: {}",
                path.display(),
                e.line,
                e.msg
            ));
        }
        for p in idx.packages {
            let file = dir.join(crate::cache::package_name(&p));
            self.pool.add_cached(p, file);
        }
    }

    fn scan_cache(&mut self, dir: &Path) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let names: std::collections::HashSet<String> = rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        for id in 0..self.pool.packages.len() {
            let n = crate::cache::package_name(&self.pool.packages[id].pkg);
            if names.contains(&n) {
                self.pool.set_cached(id, dir.join(n));
            }
        }
    }

    /// The database (applets declared Access::ReadOnly or Writable).
    pub fn db(&self) -> &Database {
        self.db.as_ref().expect("applet declared database access")
    }

    /// Whether the root is a tmpfs (`--root-tmpfs`, auto-detected by default).
    pub fn root_is_tmpfs(&self) -> bool {
        if let Some(v) = self.opts.root_tmpfs {
            return v;
        }
        nix::sys::statfs::statfs(&self.opts.root)
            .map(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC)
            .unwrap_or(false)
    }

    /// Read a package file given on the command line (verified, trusted or `--allow-untrusted`).
    pub fn open_file(&self, path: &Path) -> Result<crate::package::Package, Error> {
        let buf =
            crate::limits::read(path, crate::limits::PACKAGE_WITHOUT_SIZE).map_err(|source| {
                Error::Io {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
        let mode = archive::Mode::Verify {
            keys: &self.keys,
            allow_untrusted: self.opts.allow_untrusted,
        };
        let opened = archive::open_package(&buf, &mode).map_err(|err| Error::Package {
            path: path.to_path_buf(),
            err,
        })?;
        Ok(opened.info)
    }
}

fn merge(mut a: Keyring, b: &Keyring) -> Keyring {
    a.merge(b);
    a
}
