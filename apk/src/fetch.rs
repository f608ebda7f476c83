//! Remote repositories: refreshing their indexes into the cache, downloading their packages, and
//! holding every byte to the same checks as a local file before it is used or stored
//! (apk-format.md §5; the crate README, "Remote repositories").
//!
//! Indexes: a remote index is refreshed when `apk update` or `-U` asks, when it is missing from
//! the cache, or when the cached copy is older than `--cache-max-age` (apk-tools v3; 4 hours by
//! default), with `If-Modified-Since` unless the refresh is forced. The download must carry a
//! signature from a trusted key (or `--allow-untrusted`) before it replaces the cached copy; a
//! failed refresh keeps the old copy (the repository is *stale*) and warns
//! `WARNING: updating URL: reason`, as v3 does. `--no-cache` reads the index straight from the
//! network (`fetching`), `--no-network` only from the cache.
//!
//! Packages: before a transaction touches the root, every package it needs from a remote
//! repository is downloaded (at most the index's `S:` bytes), checked against its identity and
//! `datahash`, and staged; only when all of them verified are they moved into the cache (when it
//! keeps packages) or installed from the staging directory (removed afterwards). A bad or
//! missing download therefore leaves both the root and the cache as they were.

use crate::archive::{self, ArchiveError, Mode};
use crate::cache::Cache;
use crate::http::{self, Client, ClientOptions, Fetched, Get, HttpError};
use crate::output::Out;
use crate::package::Package;
use crate::pool::{PkgId, Pool};
use crate::repo::{LoadOptions, Location, RepoSpec, Repository};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// Most bytes accepted for an index (Alpine's largest, `community`, is about 2.5 MiB).
pub const INDEX_LIMIT: u64 = 64 << 20;
/// Most bytes accepted for a package whose index entry has no `S:`.
pub const PACKAGE_LIMIT: u64 = 1 << 30;
/// apk-tools v3's default `--cache-max-age`.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(4 * 3600);

/// When cached indexes are refreshed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refresh {
    /// Always, without `If-Modified-Since` (`apk update`, `-U`).
    Always,
    /// When older than this (`--cache-max-age`).
    OlderThan(Duration),
}

/// The network side of a session: the client (made on first use), the cache and the refresh
/// policy.
#[derive(Debug)]
pub struct Network {
    client_opts: ClientOptions,
    client: OnceLock<Client>,
    /// The cache (`None` with `--no-cache`).
    pub cache: Option<Cache>,
    /// When indexes are refreshed.
    pub refresh: Refresh,
    /// `--no-network`: nothing is downloaded.
    pub offline: bool,
    /// `--simulate`: downloads are used but never stored.
    pub simulate: bool,
    /// Add this root's CA bundle (else the host's) when the client is made.
    pub system_ca_root: Option<PathBuf>,
}

/// Why a remote index or package could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The transfer failed (the message names the URL).
    #[error("{0}")]
    Http(#[from] HttpError),
    /// The bytes arrived but are not what the signed index promises.
    #[error("{}: {err}", http::url::display(.url))]
    Verify {
        /// Where they came from.
        url: String,
        /// What is wrong with them.
        err: ArchiveError,
    },
    /// Reading or storing them failed.
    #[error("{}: {}", .path.display(), crate::root::io_message(.source))]
    Store {
        /// The file being written.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// `--no-network`, or no repository serves it.
    #[error("package file is not available")]
    NotAvailable,
}

impl FetchError {
    /// The reason alone, for messages that already name the URL (`WARNING: updating URL: why`).
    pub fn reason(&self) -> String {
        match self {
            FetchError::Http(e) => e.kind.to_string(),
            FetchError::Verify { err, .. } => err.to_string(),
            other => other.to_string(),
        }
    }
}

/// Why a remote repository could not be opened: apk-tools v3's action (`fetching`, `updating and
/// opening`, `opening from cache`), the index URL and the reason. Prints as the warning text,
/// `updating and opening URL: HTTP 404 Not Found`.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {reason}", http::url::display(.url))]
pub struct IndexFailure {
    /// What was being done.
    pub action: &'static str,
    /// The index URL.
    pub url: String,
    /// Why it failed.
    pub reason: String,
}

/// How opening one remote repository went (for `apk update`'s summary).
#[derive(Debug, Default)]
pub struct IndexStatus {
    /// The index was downloaded anew.
    pub updated: bool,
    /// A refresh failed, the older cached copy is used.
    pub stale: bool,
}

impl Network {
    /// A network side with these client options.
    pub fn new(client_opts: ClientOptions, cache: Option<Cache>, refresh: Refresh) -> Network {
        Network {
            client_opts,
            client: OnceLock::new(),
            cache,
            refresh,
            offline: false,
            simulate: false,
            system_ca_root: None,
        }
    }

    /// The client (made on first use: reading the CA bundle costs time local runs need not pay).
    pub fn client(&self) -> &Client {
        self.client.get_or_init(|| {
            let mut opts = self.client_opts.clone();
            if let Some(root) = &self.system_ca_root {
                let system = crate::http::CaBundle::system(root);
                opts.ca.extend(&system);
            }
            Client::new(opts)
        })
    }

    /// Open a remote repository: refresh its index if due, then read it (verified). A failed
    /// refresh with an older cached index still opens it (warning `updating URL: why`).
    pub fn open_index(
        &self,
        spec: &RepoSpec,
        lo: &LoadOptions<'_>,
        out: &Out,
    ) -> Result<(Repository, IndexStatus), IndexFailure> {
        let url = spec.index_url(lo.arch);
        let shown = http::url::display(&url);
        let fail = |action, reason: String| IndexFailure {
            action,
            url: url.clone(),
            reason,
        };
        let Some(cache) = &self.cache else {
            out.notice(&format!("fetch {shown}"));
            let buf = self
                .download_index(&url, None, lo)
                .map_err(|e| fail("fetching", e.reason()))?
                .ok_or_else(|| fail("fetching", "not modified".into()))?;
            let repo = Repository::from_index(spec, &buf, PathBuf::from(&shown), None, false, lo)
                .map_err(|e| fail("fetching", e.to_string()))?;
            return Ok((
                repo,
                IndexStatus {
                    updated: true,
                    stale: false,
                },
            ));
        };
        let cached = cache.find_index(spec, lo.arch);
        let mut status = IndexStatus::default();
        let mut update_error = None;
        let mut fresh = None;
        if self.due(cached.as_deref()) {
            out.notice(&format!("fetch {shown}"));
            let since = match self.refresh {
                Refresh::Always => None,
                Refresh::OlderThan(_) => cached.as_deref().and_then(mtime),
            };
            match self.download_index(&url, since, lo) {
                Ok(None) => {
                    // 304: the cached copy is current; restart its clock.
                    if let Some(p) = &cached {
                        touch(p);
                    }
                }
                Ok(Some(buf)) if self.simulate => fresh = Some(buf),
                Ok(Some(buf)) => match cache.store_index(spec, lo.arch, &buf) {
                    Ok(_) => status.updated = true,
                    Err(source) => {
                        update_error = Some(FetchError::Store {
                            path: cache.dir.clone(),
                            source,
                        })
                    }
                },
                Err(e) => update_error = Some(e),
            }
        }
        let opened = match fresh {
            Some(buf) => Repository::from_index(spec, &buf, PathBuf::from(&shown), None, false, lo)
                .map_err(|e| e.to_string()),
            None => match cache.find_index(spec, lo.arch) {
                Some(p) => crate::limits::read(&p, crate::limits::INDEX_FILE)
                    .map_err(|e| crate::root::io_message(&e))
                    .and_then(|buf| {
                        Repository::from_index(spec, &buf, PathBuf::from(&shown), None, false, lo)
                            .map_err(|e| e.to_string())
                    }),
                None => Err("No such file or directory".to_string()),
            },
        };
        match (opened, update_error) {
            (Ok(repo), None) => Ok((repo, status)),
            (Ok(repo), Some(e)) => {
                status.stale = true;
                out.warning(&format!("updating {shown}: {}", e.reason()));
                Ok((repo, status))
            }
            (Err(_), Some(e)) => Err(fail("updating and opening", e.reason())),
            (Err(e), None) => Err(fail("opening from cache", e)),
        }
    }

    fn due(&self, cached: Option<&Path>) -> bool {
        if self.offline {
            return false;
        }
        let Some(p) = cached else { return true };
        match self.refresh {
            Refresh::Always => true,
            Refresh::OlderThan(age) => mtime(p)
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_none_or(|elapsed| elapsed > age),
        }
    }

    /// Download an index and check its signature and format; `Ok(None)` for "not modified".
    fn download_index(
        &self,
        url: &str,
        since: Option<SystemTime>,
        lo: &LoadOptions<'_>,
    ) -> Result<Option<Vec<u8>>, FetchError> {
        let mut buf = Vec::new();
        let get = Get {
            limit: INDEX_LIMIT,
            if_modified_since: since,
        };
        if self.client().get(url, &get, &mut buf, &mut |_, _| {})? == Fetched::NotModified {
            return Ok(None);
        }
        archive::open_index(&buf, lo.keys, lo.allow_untrusted).map_err(|err| {
            FetchError::Verify {
                url: url.to_string(),
                err,
            }
        })?;
        Ok(Some(buf))
    }

    /// Download one package from the first remote repository that lists it, at most its `S:`
    /// bytes, and verify it against its identity and `datahash`.
    pub fn download_package(
        &self,
        pool: &Pool,
        id: PkgId,
        progress: http::ProgressFn<'_>,
    ) -> Result<Vec<u8>, FetchError> {
        if self.offline {
            return Err(FetchError::NotAvailable);
        }
        let p = &pool.packages[id];
        let arch = pool.arches.first().map(String::as_str).unwrap_or("");
        let url = p
            .repos
            .iter()
            .filter(|&&r| !pool.repos[r].masked)
            .filter_map(|&r| RepoSpec::parse(&pool.repos[r].url))
            .find(|s| matches!(s.location, Location::Remote(_)))
            .map(|s| package_url(&s, &p.pkg, arch))
            .ok_or(FetchError::NotAvailable)?;
        let limit = if p.pkg.size > 0 {
            p.pkg.size
        } else {
            PACKAGE_LIMIT
        };
        let mut buf = Vec::with_capacity(limit.min(64 << 20) as usize);
        self.client()
            .get(&url, &Get::limited(limit), &mut buf, progress)?;
        archive::open_package(&buf, &Mode::Identity(&p.pkg.identity))
            .map_err(|err| FetchError::Verify { url, err })?;
        Ok(buf)
    }
}

/// Where package `id` comes from and its bytes, verified against its identity and `datahash`:
/// a local repository, a file or the cache when one has it, else a remote repository.
pub fn obtain_package(
    net: &Network,
    pool: &Pool,
    id: PkgId,
    progress: http::ProgressFn<'_>,
) -> Result<(Vec<u8>, Option<PathBuf>), FetchError> {
    let p = &pool.packages[id];
    let local = crate::prefetch::package_path(pool, id).filter(|f| f.is_file());
    let Some(path) = local else {
        return net.download_package(pool, id, progress).map(|b| (b, None));
    };
    let buf = std::fs::read(&path).map_err(|source| FetchError::Store {
        path: path.clone(),
        source,
    })?;
    archive::open_package(&buf, &Mode::Identity(&p.pkg.identity)).map_err(|err| {
        FetchError::Verify {
            url: path.display().to_string(),
            err,
        }
    })?;
    Ok((buf, Some(path)))
}

/// Whether package `id` must come over the network: no local file, no cached copy, and a remote
/// repository lists it.
pub fn needs_download(pool: &Pool, id: PkgId) -> bool {
    let p = &pool.packages[id];
    p.file.is_none()
        && p.cached.is_none()
        && !p.virtual_pkg
        && crate::prefetch::package_path(pool, id).is_none()
        && p.repos.iter().any(|&r| {
            !pool.repos[r].masked
                && RepoSpec::parse(&pool.repos[r].url)
                    .is_some_and(|s| matches!(s.location, Location::Remote(_)))
        })
}

/// The URL of a package in a repository: `URL/<A:>/<name>-<ver>.apk` (v2 rule), or beside the
/// index for a repository named by its index URL.
pub fn package_url(spec: &RepoSpec, pkg: &Package, default_arch: &str) -> String {
    let file = format!("{}.apk", pkg.name_version());
    if spec.url.ends_with(".tar.gz") {
        return http::url::join(&spec.url, &file);
    }
    let arch = pkg.arch.as_deref().unwrap_or(default_arch);
    format!("{}/{arch}/{file}", spec.url.trim_end_matches('/'))
}

/// Packages downloaded for a transaction and where they wait.
#[derive(Debug, Default)]
pub struct Staged {
    /// Package and the file it can be installed from.
    pub files: Vec<(PkgId, PathBuf)>,
    /// A staging directory to remove when the transaction is over.
    pub scratch: Option<PathBuf>,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(d) = &self.scratch {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Download and verify `ids` (those that need it) before a transaction. All verified: they are
/// moved into the cache when it keeps packages, else left in a scratch directory that lives as
/// long as the returned [`Staged`]. Any failure: every error is reported (`ERROR: name-ver:
/// URL: why`), nothing is stored, and the error count is returned.
pub fn stage_packages(
    net: &Network,
    pool: &Pool,
    ids: &[PkgId],
    out: &Out,
) -> Result<Staged, usize> {
    let todo: Vec<PkgId> = ids
        .iter()
        .copied()
        .filter(|&id| needs_download(pool, id))
        .collect();
    let mut staged = Staged::default();
    if todo.is_empty() {
        return Ok(staged);
    }
    let keep = net.cache.as_ref().filter(|c| c.packages && !net.simulate);
    let base = match &net.cache {
        Some(c) => c.dir.clone(),
        None => std::env::temp_dir(),
    };
    // A fresh directory (mkdtemp, mode 0700), never one that exists: in a shared /tmp another
    // user could have made `.apk-download.<pid>` (or a link by that name) beforehand.
    let scratch = match tempfile::Builder::new()
        .prefix(".apk-download.")
        .tempdir_in(&base)
    {
        Ok(d) => d.keep(),
        Err(e) => {
            out.error(&format!(
                "{}: {}",
                base.display(),
                crate::root::io_message(&e)
            ));
            return Err(1);
        }
    };
    staged.scratch = Some(scratch.clone());
    let total: u64 = todo.iter().map(|&id| pool.packages[id].pkg.size).sum();
    let mut done = 0u64;
    let mut errors = 0;
    for &id in &todo {
        let pkg = &pool.packages[id].pkg;
        let mut report = |n: u64, _: Option<u64>| out.progress(done + n, total, "fetching");
        let got = net.download_package(pool, id, &mut report).and_then(|buf| {
            let path = scratch.join(crate::cache::package_name(pkg));
            crate::root::atomic_write(&path, &buf, 0o644)
                .map(|_| path.clone())
                .map_err(|source| FetchError::Store { path, source })
        });
        done += pkg.size;
        match got {
            Ok(path) => staged.files.push((id, path)),
            Err(e) => {
                out.error(&format!("{}: {e}", pkg.name_version()));
                errors += 1;
            }
        }
    }
    out.progress_done();
    if errors > 0 {
        return Err(errors);
    }
    if let Some(cache) = keep {
        for (id, path) in &mut staged.files {
            let dest = cache.package_path(&pool.packages[*id].pkg);
            if let Err(e) = std::fs::rename(&*path, &dest) {
                out.warning(&format!(
                    "{}: {}",
                    dest.display(),
                    crate::root::io_message(&e)
                ));
                continue;
            }
            *path = dest;
        }
        crate::root::fsync_dir(&cache.dir);
    }
    Ok(staged)
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

fn touch(p: &Path) {
    if let Ok(f) = std::fs::File::options().append(true).open(p) {
        let _ = f.set_modified(SystemTime::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_urls() {
        let pkg = Package {
            name: "busybox".into(),
            version: "1.36.1-r15".into(),
            arch: Some("x86_64".into()),
            ..Default::default()
        };
        let s = RepoSpec::parse("http://h/alpine/v3.19/main/").unwrap();
        assert_eq!(
            package_url(&s, &pkg, "aarch64"),
            "http://h/alpine/v3.19/main/x86_64/busybox-1.36.1-r15.apk"
        );
        let s = RepoSpec::parse("https://h/r/x86_64/APKINDEX.tar.gz").unwrap();
        assert_eq!(
            package_url(&s, &pkg, "x86_64"),
            "https://h/r/x86_64/busybox-1.36.1-r15.apk"
        );
        let noarch = Package { arch: None, ..pkg };
        let s = RepoSpec::parse("http://h/main").unwrap();
        assert_eq!(
            package_url(&s, &noarch, "x86_64"),
            "http://h/main/x86_64/busybox-1.36.1-r15.apk"
        );
    }

    /// Review finding: a mirror password reached the terminal through this error.
    #[test]
    fn verify_errors_mask_the_password() {
        let e = FetchError::Verify {
            url: "https://u:secret@h/main/x86_64/a-1-r0.apk".into(),
            err: ArchiveError::Integrity,
        };
        let shown = e.to_string();
        assert!(!shown.contains("secret"), "{shown}");
        assert!(
            shown.starts_with("https://u:*@h/main/x86_64/a-1-r0.apk: "),
            "{shown}"
        );
        let f = IndexFailure {
            action: "fetching",
            url: "https://u:secret@h/main/x86_64/APKINDEX.tar.gz".into(),
            reason: "404".into(),
        };
        assert!(!f.to_string().contains("secret"));
    }
}
