//! Path resolution beneath the base directory (`-b`), as if it were `/`.
//!
//! Absolute symlinks inside the base directory must resolve inside it (a foreign root's
//! `/lib/libc.so -> /usr/lib/libc.so` must not reach the build host's files), and `..` stops at
//! the base. [`Root::walk`] resolves a path component by component, recording every symlink met on
//! the way: Alpine's mkinitfs copies each intermediate link as a link, and so do we. Paths handed
//! around are relative strings (`usr/lib/x`) without a leading `/`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoResultExt};

/// Symlink hops allowed while resolving one path (Linux's limit).
const MAX_HOPS: usize = 40;

/// The base directory files are taken from.
#[derive(Debug, Clone)]
pub struct Root {
    base: PathBuf,
}

/// The outcome of resolving a path inside the root.
#[derive(Debug, Default)]
pub struct Walk {
    /// Every symlink met, in order: (its path, its target as written).
    pub links: Vec<(String, String)>,
    /// The fully resolved path and its metadata; None if it does not exist (or loops).
    pub real: Option<(String, fs::Metadata)>,
}

/// Splits `path` into normal components, dropping empty and `.` components.
pub fn components(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty() && *c != ".")
}

/// Lexically normalizes a relative path: resolves `.` and `..` (not above the root).
pub fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in components(path) {
        if c == ".." {
            out.pop();
        } else {
            out.push(c);
        }
    }
    out.join("/")
}

/// `dir` joined with a relative `name`, normalized.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        normalize(name)
    } else {
        normalize(&format!("{dir}/{name}"))
    }
}

/// The directory part of a relative path (`""` for top-level names).
pub fn parent(path: &str) -> &str {
    path.rfind('/').map(|i| &path[..i]).unwrap_or("")
}

impl Root {
    /// A root at `base` (which must be a directory).
    pub fn new(base: &Path) -> Result<Self, Error> {
        let meta = fs::metadata(base).at(base)?;
        if !meta.is_dir() {
            return Err(Error::BadInput {
                path: base.to_path_buf(),
                reason: "not a directory".into(),
            });
        }
        Ok(Root {
            base: base.to_path_buf(),
        })
    }

    /// The base directory.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The host path of a relative path inside the root (no symlink resolution).
    pub fn host(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.base.clone()
        } else {
            self.base.join(rel)
        }
    }

    /// Resolves `path` (absolute or relative, both meaning "from the root") inside the root.
    pub fn walk(&self, path: &str) -> Result<Walk, Error> {
        let mut walk = Walk::default();
        let mut pending: Vec<String> = components(path).rev().map(str::to_string).collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(comp) = pending.pop() {
            if comp == ".." {
                resolved.pop();
                continue;
            }
            resolved.push(comp);
            let candidate = resolved.join("/");
            let host = self.host(&candidate);
            let meta = match fs::symlink_metadata(&host) {
                Ok(m) => m,
                Err(e) if is_absent(&e) => return Ok(walk),
                Err(e) => {
                    return Err(Error::Io {
                        path: host,
                        source: e,
                    })
                }
            };
            if meta.file_type().is_symlink() {
                hops += 1;
                if hops > MAX_HOPS {
                    return Ok(Walk {
                        links: walk.links,
                        real: None,
                    });
                }
                let target = fs::read_link(&host).at(&host)?;
                let target = target.to_string_lossy().into_owned();
                walk.links.push((candidate, target.clone()));
                resolved.pop();
                if target.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(components(&target).rev().map(str::to_string));
                continue;
            }
            if !pending.is_empty() && !meta.is_dir() {
                return Ok(walk);
            }
            if pending.is_empty() {
                walk.real = Some((candidate, meta));
                return Ok(walk);
            }
        }
        // The path was the root itself.
        let meta = fs::metadata(&self.base).at(&self.base)?;
        walk.real = Some((resolved.join("/"), meta));
        Ok(walk)
    }

    /// Resolves `path` and returns the real relative path and metadata, if it exists.
    pub fn resolve(&self, path: &str) -> Result<Option<(String, fs::Metadata)>, Error> {
        Ok(self.walk(path)?.real)
    }
    /// Expands a shell pattern inside the root (a `.files` line, an `ld.so.conf` include):
    /// glob characters are matched per path component with `apk::fnmatch` (the workspace's one
    /// matcher), a leading dot only literally, as the shell does; results are sorted per
    /// directory. Directories are listed through [`Root::resolve`], so links inside the pattern
    /// resolve inside the base directory too. A path without glob characters is returned as it
    /// is, existing or not.
    pub fn glob(&self, pattern: &str) -> Result<Vec<String>, Error> {
        let rel = pattern.trim_start_matches('/');
        if !rel.contains(['*', '?', '[']) {
            return Ok(vec![rel.to_string()]);
        }
        let mut current: Vec<String> = vec![String::new()];
        for comp in components(rel) {
            let mut next = Vec::new();
            let is_glob = comp.contains(['*', '?', '[']);
            for prefix in &current {
                if !is_glob {
                    next.push(join(prefix, comp));
                    continue;
                }
                let Some((real, meta)) = self.resolve(prefix)? else {
                    continue;
                };
                if !meta.is_dir() {
                    continue;
                }
                let host = self.host(&real);
                let mut names: Vec<String> = fs::read_dir(&host)
                    .at(&host)?
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| {
                        (!n.starts_with('.') || comp.starts_with('.'))
                            && apk::fnmatch::fnmatch(comp, n)
                    })
                    .collect();
                names.sort();
                next.extend(names.into_iter().map(|n| join(prefix, &n)));
            }
            current = next;
        }
        Ok(current)
    }
}

/// Errors that mean "this path does not exist here" rather than a failure to look.
fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    ) || e.raw_os_error() == Some(20) // ENOTDIR on toolchains without the stable kind
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn globs_expand_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let b = tmp.path();
        fs::create_dir_all(b.join("usr/share/x")).unwrap();
        fs::write(b.join("usr/share/x/a.conf"), "").unwrap();
        fs::write(b.join("usr/share/x/b.conf"), "").unwrap();
        fs::write(b.join("usr/share/x/.hidden.conf"), "").unwrap();
        fs::write(b.join("usr/share/x/c.txt"), "").unwrap();
        symlink("/usr/share", b.join("share")).unwrap();
        let root = Root::new(b).unwrap();
        assert_eq!(
            root.glob("/share/x/*.conf").unwrap(),
            vec!["share/x/a.conf", "share/x/b.conf"]
        );
        assert_eq!(
            root.glob("/usr/share/*/c.txt").unwrap(),
            vec!["usr/share/x/c.txt"]
        );
        assert_eq!(
            root.glob("/usr/share/x/.h*").unwrap(),
            vec!["usr/share/x/.hidden.conf"]
        );
        assert!(root.glob("/nope/*").unwrap().is_empty());
        assert_eq!(root.glob("/plain/path").unwrap(), vec!["plain/path"]);
    }

    #[test]
    fn absolute_links_stay_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let b = tmp.path();
        fs::create_dir_all(b.join("usr/lib")).unwrap();
        fs::write(b.join("usr/lib/libc.so.6"), b"x").unwrap();
        symlink("usr/lib", b.join("lib")).unwrap();
        symlink("/lib/libc.so.6", b.join("usr/lib/libc.so")).unwrap();
        symlink("../../../../../etc/passwd", b.join("usr/lib/escape")).unwrap();
        let root = Root::new(b).unwrap();
        let w = root.walk("/lib/libc.so").unwrap();
        assert_eq!(
            w.links,
            vec![
                ("lib".to_string(), "usr/lib".to_string()),
                ("usr/lib/libc.so".to_string(), "/lib/libc.so.6".to_string()),
                ("lib".to_string(), "usr/lib".to_string()),
            ]
        );
        assert_eq!(w.real.unwrap().0, "usr/lib/libc.so.6");
        // `..` stops at the root: /etc/passwd of the root, which does not exist here.
        assert!(root.walk("usr/lib/escape").unwrap().real.is_none());
    }

    #[test]
    fn loops_and_missing_paths_resolve_to_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        symlink("b", tmp.path().join("a")).unwrap();
        symlink("a", tmp.path().join("b")).unwrap();
        fs::write(tmp.path().join("file"), b"").unwrap();
        let root = Root::new(tmp.path()).unwrap();
        assert!(root.walk("a").unwrap().real.is_none());
        assert!(root.walk("nope/x").unwrap().real.is_none());
        assert!(root.walk("file/x").unwrap().real.is_none());
        assert_eq!(root.walk("/").unwrap().real.unwrap().0, "");
    }

    #[test]
    fn lexical_helpers() {
        assert_eq!(normalize("./a//b/../c/."), "a/c");
        assert_eq!(normalize("../../a"), "a");
        assert_eq!(join("usr/lib64", "../lib/x"), "usr/lib/x");
        assert_eq!(parent("usr/lib/x"), "usr/lib");
        assert_eq!(parent("x"), "");
    }
}
