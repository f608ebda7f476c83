//! The apk cache directory (apk-format.md §5; the crate README): where remote indexes are kept, and
//! packages too when the cache is *active*.
//!
//! As apk-tools: the cache is `ROOT/etc/apk/cache` when that exists (on a diskless system it is
//! a symlink into the boot medium, resolved in this process's root), or `--cache-dir DIR`; both
//! keep packages. Otherwise indexes still go to `ROOT/var/cache/apk` and packages are not kept.
//! `--no-cache` uses no cache at all. Local repositories are never cached.
//!
//! Names: a cached index is `APKINDEX.<8 hex>.tar.gz` (apk-tools 2.14 hashes the index URL with
//! SHA-1, v3 with SHA-256: both are written, as two links to one file, and all known spellings
//! are read); a cached package is `<name>-<ver>.<8 hex of its identity>.apk`.
//! Everything is written atomically (temp file, fsync, rename, fsync the directory) and only after
//! it was verified, so a tampered download never appears under its final name.

use crate::package::Package;
use crate::repo::RepoSpec;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::io;
use std::path::{Path, PathBuf};

/// A cache directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cache {
    /// The directory.
    pub dir: PathBuf,
    /// Whether packages are kept (apk's "cache active": `etc/apk/cache` or `--cache-dir`).
    pub packages: bool,
}

/// `etc/apk/cache`: the active cache (often a link to the boot medium).
pub const ACTIVE_DIR: &str = "etc/apk/cache";
/// `var/cache/apk`: indexes only.
pub const STATIC_DIR: &str = "var/cache/apk";

impl Cache {
    /// The cache of `root` as apk-tools picks it. `cache_dir` (`--cache-dir`, relative to the
    /// root) wins; `no_cache` (`--no-cache`) gives none.
    pub fn choose(root: &Path, cache_dir: Option<&Path>, no_cache: bool) -> Option<Cache> {
        if no_cache {
            return None;
        }
        if let Some(c) = cache_dir {
            let dir = if c.is_absolute() {
                c.to_path_buf()
            } else {
                root.join(c)
            };
            return Some(Cache {
                dir,
                packages: true,
            });
        }
        let active = root.join(ACTIVE_DIR);
        if active.is_dir() {
            return Some(Cache {
                dir: active,
                packages: true,
            });
        }
        Some(Cache {
            dir: root.join(STATIC_DIR),
            packages: false,
        })
    }

    /// The cached index of a repository, under any name apk-tools gives it.
    pub fn find_index(&self, spec: &RepoSpec, arch: &str) -> Option<PathBuf> {
        index_names(spec, arch)
            .into_iter()
            .map(|n| self.dir.join(n))
            .find(|p| p.is_file())
    }

    /// Store a verified index under both the v2 and the v3 name; returns the v2 path.
    pub fn store_index(&self, spec: &RepoSpec, arch: &str, data: &[u8]) -> io::Result<PathBuf> {
        let [v2, v3] = index_write_names(spec, arch);
        let path = self.store(&v2, data)?;
        if v3 != v2 {
            // A second name for the same bytes: link beside, then rename over (atomic).
            let tmp = self.dir.join(format!(".{v3}.link"));
            let _ = std::fs::remove_file(&tmp);
            std::fs::hard_link(&path, &tmp).or_else(|_| std::fs::copy(&path, &tmp).map(|_| ()))?;
            std::fs::rename(&tmp, self.dir.join(&v3))?;
        }
        Ok(path)
    }

    /// Where a package is cached.
    pub fn package_path(&self, pkg: &Package) -> PathBuf {
        self.dir.join(package_name(pkg))
    }

    /// Store verified bytes under `name` atomically (creating the directory).
    pub fn store(&self, name: &str, data: &[u8]) -> io::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(name);
        crate::root::atomic_write(&path, data, 0o644)?;
        Ok(path)
    }

    /// The names in the directory (empty when it does not exist).
    pub fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        v.sort();
        v
    }
}

/// Cache file name of a package: `<name>-<ver>.<8 hex of identity>.apk`.
pub fn package_name(p: &Package) -> String {
    format!("{}-{}.{}.apk", p.name, p.version, p.identity.short_hex())
}

fn short(d: &[u8]) -> String {
    format!("APKINDEX.{}.tar.gz", hex::encode(&d[..4]))
}

/// Names an index may have in a cache, apk-tools 2.14's first: SHA-1 of the index URL (what
/// 2.14.4 writes, checked against the oracle by the `http` tests), SHA-256 of the index URL
/// (v3, apk-format.md §5), then both digests of the repository URL (a cache seen on an older
/// medium, `http://10.0.2.2:33287/apks` -> `APKINDEX.672dffd9.tar.gz`).
pub fn index_names(spec: &RepoSpec, arch: &str) -> Vec<String> {
    let url = spec.index_url(arch);
    let mut v = vec![
        short(&Sha1::digest(url.as_bytes())),
        short(&Sha256::digest(url.as_bytes())),
        short(&Sha1::digest(spec.url.as_bytes())),
        short(&Sha256::digest(spec.url.as_bytes())),
    ];
    v.dedup();
    v
}

/// The names an index is written under: apk-tools 2.14's and v3's.
pub fn index_write_names(spec: &RepoSpec, arch: &str) -> [String; 2] {
    let url = spec.index_url(arch);
    [
        short(&Sha1::digest(url.as_bytes())),
        short(&Sha256::digest(url.as_bytes())),
    ]
}

/// Whether a cache file name is an index (`APKINDEX.<8 hex>.tar.gz`).
pub fn is_index_name(name: &str) -> bool {
    name.strip_prefix("APKINDEX.")
        .and_then(|r| r.strip_suffix(".tar.gz"))
        .is_some_and(|h| h.len() == 8 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choosing_the_cache() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        assert_eq!(Cache::choose(root, None, true), None);
        let c = Cache::choose(root, None, false).unwrap();
        assert_eq!(c.dir, root.join(STATIC_DIR));
        assert!(!c.packages);
        std::fs::create_dir_all(root.join(ACTIVE_DIR)).unwrap();
        let c = Cache::choose(root, None, false).unwrap();
        assert_eq!((c.dir.clone(), c.packages), (root.join(ACTIVE_DIR), true));
        let c = Cache::choose(root, Some(Path::new("srv/c")), false).unwrap();
        assert_eq!(c.dir, root.join("srv/c"));
        let c = Cache::choose(root, Some(Path::new("/abs")), false).unwrap();
        assert_eq!(c.dir, Path::new("/abs"));
    }

    #[test]
    fn index_names_match_apk() {
        let spec = RepoSpec::parse("http://example.invalid/alpine/main").unwrap();
        // apk-format.md §5 worked example (full index URL, v2 and v3).
        assert_eq!(
            index_write_names(&spec, "x86_64"),
            ["APKINDEX.53cade54.tar.gz", "APKINDEX.0efb8972.tar.gz"]
        );
        let real = RepoSpec::parse("http://10.0.2.2:33287/apks").unwrap();
        assert!(index_names(&real, "x86_64").contains(&"APKINDEX.672dffd9.tar.gz".to_string()));
        assert!(is_index_name("APKINDEX.672dffd9.tar.gz"));
        assert!(!is_index_name("APKINDEX.tar.gz"));
        assert!(!is_index_name("APKINDEX.672dffdz.tar.gz"));
    }

    #[test]
    fn stores_both_names_atomically() {
        let t = tempfile::tempdir().unwrap();
        let c = Cache {
            dir: t.path().join("cache"),
            packages: true,
        };
        let spec = RepoSpec::parse("http://h/alpine/main").unwrap();
        let p = c.store_index(&spec, "x86_64", b"index").unwrap();
        let [v2, v3] = index_write_names(&spec, "x86_64");
        assert_eq!(p, c.dir.join(&v2));
        assert_eq!(std::fs::read(c.dir.join(&v3)).unwrap(), b"index");
        assert_eq!(c.find_index(&spec, "x86_64"), Some(c.dir.join(&v2)));
        c.store_index(&spec, "x86_64", b"newer").unwrap();
        assert_eq!(std::fs::read(c.dir.join(&v3)).unwrap(), b"newer");
        let mut want = vec![v2, v3];
        want.sort();
        assert_eq!(c.entries(), want);
    }
}
