//! Repositories: `etc/apk/repositories` lines and `--repository` options, their indexes (verified
//! with the trusted keys) and where their packages live (apk-format.md §5).
//!
//! Supported locations: a local directory (`DIR/<arch>/APKINDEX.tar.gz`, packages beside it), a
//! `file:` path, a direct path to an index `*.tar.gz` (packages in its directory), `http(s)://`
//! URLs (remote: downloaded through [`crate::fetch`], masked under `--no-network` except for what
//! the cache holds; `ftp://` is recognised as remote but only served from the cache), and
//! `test:/ABS/PATH.tar.gz` (a local index file that counts as remote, as in apk-tools' own tests).

use crate::archive::{self, ArchiveError};
use crate::index;
use crate::package::Package;
use crate::trust::Keyring;
use std::path::{Path, PathBuf};

/// Where a repository is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A local directory with `<arch>/APKINDEX.tar.gz`.
    Dir(PathBuf),
    /// A local index file; packages are in its directory.
    IndexFile(PathBuf),
    /// A remote URL (v2 layout below it, or a URL ending in `.tar.gz` naming the index).
    Remote(String),
    /// `test:/ABS/PATH.tar.gz`: a local index file treated as remote.
    Test(PathBuf),
}

/// One configured repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoSpec {
    /// `@tag` (None for untagged).
    pub tag: Option<String>,
    /// The URL as written.
    pub url: String,
    /// Parsed location.
    pub location: Location,
}

impl RepoSpec {
    /// Parse `[@tag ]URL`. Returns `None` for blank and comment lines.
    pub fn parse(line: &str) -> Option<RepoSpec> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let mut words = line.split_whitespace();
        let mut first = words.next()?;
        let mut tag = None;
        if let Some(t) = first.strip_prefix('@') {
            tag = Some(t.to_string());
            first = words.next()?;
        }
        Some(RepoSpec {
            tag,
            url: first.to_string(),
            location: Self::locate(first),
        })
    }

    fn locate(url: &str) -> Location {
        if url.starts_with("http://") || url.starts_with("https://") || url.starts_with("ftp://") {
            return Location::Remote(url.to_string());
        }
        if let Some(p) = url.strip_prefix("test:") {
            return Location::Test(PathBuf::from(p));
        }
        let path = url
            .strip_prefix("file://")
            .or_else(|| url.strip_prefix("file:"))
            .unwrap_or(url);
        if names_index(path) {
            Location::IndexFile(PathBuf::from(path))
        } else {
            Location::Dir(PathBuf::from(path))
        }
    }

    /// Whether the repository counts as remote (masked by `--no-network`).
    pub fn is_remote(&self) -> bool {
        matches!(self.location, Location::Remote(_) | Location::Test(_))
    }

    /// The full index URL apk hashes for cache names.
    pub fn index_url(&self, arch: &str) -> String {
        if names_index(&self.url) {
            self.url.clone()
        } else {
            format!("{}/{arch}/APKINDEX.tar.gz", self.url.trim_end_matches('/'))
        }
    }
}

/// Whether a repository URL names an index file itself (apk-tools v3 accepts `….tar.gz` and
/// `….adb`; its test harness names a gzipped v2 index `X.adb`, so the content decides the format).
fn names_index(url: &str) -> bool {
    url.ends_with(".tar.gz") || url.ends_with(".adb")
}

/// Parse a repositories file.
pub fn parse_repositories(text: &str) -> Vec<RepoSpec> {
    text.lines().filter_map(RepoSpec::parse).collect()
}

/// A loaded repository.
#[derive(Clone, Debug)]
pub struct Repository {
    /// Its configuration.
    pub spec: RepoSpec,
    /// Packages listed by its index.
    pub packages: Vec<Package>,
    /// `DESCRIPTION` of the index.
    pub description: Option<String>,
    /// Directory holding its packages (`None` for remote repositories: cache only).
    pub pkg_dir: Option<PathBuf>,
    /// Masked (remote under `--no-network`): packages only from the cache.
    pub masked: bool,
    /// The index file that was read.
    pub index: PathBuf,
    /// Index entries that could not be used (each reported once when the repository is opened).
    pub skipped: Vec<index::IndexError>,
    /// Whether the index uses letters this apk does not know.
    pub unknown_letters: bool,
    /// Whether one of those letters was uppercase (its package is not installable).
    pub unknown_uppercase: bool,
}

/// Why a repository could not be loaded (reported as `WARNING: opening X: why`).
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The index file could not be read.
    #[error("{}", crate::root::io_message(.0))]
    Io(std::io::Error),
    /// Signature/format problem.
    #[error("{0}")]
    Archive(#[from] ArchiveError),
    /// A remote repository with nothing in the cache.
    #[error("network support is not available in this build (no cached index)")]
    NoNetwork,
}

/// Options for loading repositories.
#[derive(Clone, Debug)]
pub struct LoadOptions<'a> {
    /// Primary architecture.
    pub arch: &'a str,
    /// Trusted keys.
    pub keys: &'a Keyring,
    /// Accept indexes without a trusted signature.
    pub allow_untrusted: bool,
    /// Mask remote repositories.
    pub no_network: bool,
    /// Cache directory, if caching is enabled.
    pub cache_dir: Option<&'a Path>,
}

impl Repository {
    /// Load one repository; the error is for a `WARNING: opening ...` line.
    pub fn load(
        spec: &RepoSpec,
        opts: &LoadOptions<'_>,
    ) -> Result<Repository, (String, RepoError)> {
        let (index_path, pkg_dir, masked) = match &spec.location {
            Location::Dir(d) => (
                d.join(opts.arch).join("APKINDEX.tar.gz"),
                Some(d.join(opts.arch)),
                false,
            ),
            Location::IndexFile(f) => (
                f.clone(),
                Some(f.parent().map(Path::to_path_buf).unwrap_or_default()),
                false,
            ),
            Location::Test(f) => {
                if opts.no_network {
                    let cached = opts
                        .cache_dir
                        .and_then(|c| find_cached_index(spec, opts.arch, c));
                    match cached {
                        Some(p) => (p, None, true),
                        None => (f.clone(), None, true),
                    }
                } else {
                    (f.clone(), f.parent().map(Path::to_path_buf), false)
                }
            }
            Location::Remote(_) => {
                let cached = opts
                    .cache_dir
                    .and_then(|c| find_cached_index(spec, opts.arch, c));
                match cached {
                    Some(p) => (p, None, true),
                    None => return Err((spec.index_url(opts.arch), RepoError::NoNetwork)),
                }
            }
        };
        let shown = index_path.display().to_string();
        let buf = crate::limits::read(&index_path, crate::limits::INDEX_FILE)
            .map_err(|e| (shown.clone(), RepoError::Io(e)))?;
        Self::from_index(spec, &buf, index_path, pkg_dir, masked, opts).map_err(|e| (shown, e))
    }

    /// Verify and parse index bytes (read from `index`, a file, or downloaded from there).
    pub fn from_index(
        spec: &RepoSpec,
        buf: &[u8],
        index: PathBuf,
        pkg_dir: Option<PathBuf>,
        masked: bool,
        opts: &LoadOptions<'_>,
    ) -> Result<Repository, RepoError> {
        let f = archive::open_index(buf, opts.keys, opts.allow_untrusted)?;
        let idx = index::parse(f.text);
        Ok(Repository {
            spec: spec.clone(),
            packages: idx.packages,
            description: f.description,
            pkg_dir,
            masked,
            index,
            skipped: idx.skipped,
            unknown_letters: idx.unknown_letters,
            unknown_uppercase: idx.unknown_uppercase,
        })
    }
}

fn find_cached_index(spec: &RepoSpec, arch: &str, cache: &Path) -> Option<PathBuf> {
    crate::cache::index_names(spec, arch)
        .into_iter()
        .map(|n| cache.join(n))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_lines() {
        let r = parse_repositories("# c\n\n/media/usb/apks\n@testing http://dl/edge/testing\nfile:///srv/repo\n/x/APKINDEX.tar.gz\ntest:/abs/idx.tar.gz\n");
        assert_eq!(r.len(), 5);
        assert_eq!(r[0].location, Location::Dir("/media/usb/apks".into()));
        assert_eq!(r[1].tag.as_deref(), Some("testing"));
        assert!(r[1].is_remote());
        assert_eq!(r[2].location, Location::Dir("/srv/repo".into()));
        assert_eq!(
            r[3].location,
            Location::IndexFile("/x/APKINDEX.tar.gz".into())
        );
        assert!(r[4].is_remote());
        let adb = RepoSpec::parse("/srv/test/basic.repo.adb").unwrap();
        assert_eq!(
            adb.location,
            Location::IndexFile("/srv/test/basic.repo.adb".into())
        );
        assert_eq!(adb.index_url("x86_64"), "/srv/test/basic.repo.adb");
    }
}
