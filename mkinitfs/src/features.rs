//! Alpine's `features.d`: named lists of files and kernel modules.
//!
//! A feature `F` is `F.files` and/or `F.modules` in a features directory. Directories are searched
//! in order and, separately for each suffix, the first directory holding the file wins (Alpine:
//! `-P` dirs come first). `.files` lines are absolute paths or shell globs inside the base
//! directory; `.modules` lines are paths or globs relative to `lib/modules/<kver>/`, a directory
//! meaning every module below it. Blank lines and `#` comment lines are ignored. This module only
//! reads the lists; `tree` resolves `.files` and `kmod` matches `.modules`.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoResultExt};

/// One enabled feature, with the lists from the first directory that defines each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Feature {
    /// Feature name (`ext4`).
    pub name: String,
    /// Lines of `NAME.files` (absolute paths/globs inside the base directory).
    pub files: Vec<String>,
    /// Lines of `NAME.modules` (paths/globs relative to `lib/modules/<kver>/`).
    pub modules: Vec<String>,
}

/// Reads a features list file: one entry per line, `#` comments and blank lines skipped.
pub fn read_list(path: &Path) -> Result<Vec<String>, Error> {
    let text = fs::read_to_string(path).at(path)?;
    Ok(parse_list(&text))
}

/// Parses the text of a `.files` / `.modules` list.
pub fn parse_list(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// A feature name must be a plain file-name stem, so `-F ../../etc/x` cannot read other files.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0')
        && !name.starts_with('.')
}

/// First `dir/name.suffix` that exists as a file, in search order.
fn find_first(name: &str, suffix: &str, dirs: &[PathBuf]) -> Result<Option<PathBuf>, Error> {
    for dir in dirs {
        let path = dir.join(format!("{name}.{suffix}"));
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => return Ok(Some(path)),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::Io { path, source: e }),
        }
    }
    Ok(None)
}

/// Loads the named features from `dirs`; a name defined in no directory is an error.
pub fn load(names: &[String], dirs: &[PathBuf]) -> Result<Vec<Feature>, Error> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for name in names {
        if !seen.insert(name.as_str()) {
            continue;
        }
        let unknown = || Error::UnknownFeature {
            name: name.clone(),
            dirs: if dirs.is_empty() {
                "no features directory".into()
            } else {
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        };
        if !valid_name(name) {
            return Err(unknown());
        }
        let files = find_first(name, "files", dirs)?;
        let modules = find_first(name, "modules", dirs)?;
        if files.is_none() && modules.is_none() {
            return Err(unknown());
        }
        out.push(Feature {
            name: name.clone(),
            files: files
                .as_deref()
                .map(read_list)
                .transpose()?
                .unwrap_or_default(),
            modules: modules
                .as_deref()
                .map(read_list)
                .transpose()?
                .unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Names of every feature in `dirs` (basenames of `*.files` and `*.modules`), sorted and unique,
/// as `mkinitfs -L` prints them. Missing directories are skipped.
pub fn available(dirs: &[PathBuf]) -> Result<Vec<String>, Error> {
    let mut names = BTreeSet::new();
    for dir in dirs {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(Error::Io {
                    path: dir.clone(),
                    source: e,
                })
            }
        };
        for entry in entries {
            let entry = entry.at(dir)?;
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            let stem = file_name
                .strip_suffix(".files")
                .or_else(|| file_name.strip_suffix(".modules"));
            if let Some(stem) = stem {
                if valid_name(stem) {
                    names.insert(stem.to_string());
                }
            }
        }
    }
    Ok(names.into_iter().collect())
}

/// The default features search path after the `-P` directories, for a binary at `exe` building
/// from `basedir`: `<exe dir>/../share/mkinitfs/features.d` (installed layout, e.g.
/// `out/share/...`), `<exe dir>/../../mkinitfs/features.d` (the repository's copy, from `out/bin`),
/// `<exe dir>/../../../mkinitfs/features.d` (from `target/<triple>/release`), then
/// `<basedir>/etc/mkinitfs/features.d` (`/etc/...` without `-b`; Alpine reads the host's even
/// with `-b`, a quirk we do not copy). Only existing directories are returned.
pub fn default_dirs(exe: Option<&Path>, basedir: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(bin_dir) = exe.and_then(Path::parent) {
        dirs.push(bin_dir.join("../share/mkinitfs/features.d"));
        dirs.push(bin_dir.join("../../mkinitfs/features.d"));
        // cargo's target/<triple>/release/ is one level deeper than out/bin/.
        dirs.push(bin_dir.join("../../../mkinitfs/features.d"));
    }
    dirs.push(basedir.join("etc/mkinitfs/features.d"));
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn parses_lists_skipping_comments() {
        assert_eq!(
            parse_list("# comment\n\nkernel/fs/ext4\n  kernel/lib/crc16.ko*  \n#x\n"),
            vec!["kernel/fs/ext4", "kernel/lib/crc16.ko*"]
        );
    }

    #[test]
    fn first_directory_wins_per_suffix() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        write(a.path(), "net.modules", "kernel/a\n");
        write(b.path(), "net.modules", "kernel/b\n");
        write(b.path(), "net.files", "/bin/b\n");
        let dirs = vec![a.path().to_path_buf(), b.path().to_path_buf()];
        let f = load(&["net".into()], &dirs).unwrap();
        assert_eq!(f[0].modules, vec!["kernel/a"]);
        assert_eq!(f[0].files, vec!["/bin/b"]);
    }

    #[test]
    fn unknown_and_hostile_names_are_errors() {
        let a = tempfile::tempdir().unwrap();
        write(a.path(), "x.files", "/x\n");
        let dirs = vec![a.path().to_path_buf()];
        for name in ["nope", "../x", ".x", ""] {
            let err = load(&[name.into()], &dirs).unwrap_err();
            assert!(matches!(err, Error::UnknownFeature { .. }), "{name}");
        }
        let msg = load(&["nope".into()], &dirs).unwrap_err().to_string();
        assert!(msg.starts_with("nope: unknown feature"), "{msg}");
    }

    #[test]
    fn duplicates_load_once() {
        let a = tempfile::tempdir().unwrap();
        write(a.path(), "x.files", "/x\n");
        let f = load(&["x".into(), "x".into()], &[a.path().to_path_buf()]).unwrap();
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn lists_available_sorted_unique() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        write(a.path(), "zeta.files", "");
        write(a.path(), "alpha.modules", "");
        write(b.path(), "alpha.files", "");
        write(b.path(), "README", "");
        let dirs = vec![
            a.path().to_path_buf(),
            b.path().to_path_buf(),
            "/nonexistent".into(),
        ];
        assert_eq!(available(&dirs).unwrap(), vec!["alpha", "zeta"]);
    }

    #[test]
    fn default_dirs_follow_the_binary_and_the_base() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        for d in [
            "out/bin",
            "out/share/mkinitfs/features.d",
            "mkinitfs/features.d",
            "base/etc/mkinitfs/features.d",
        ] {
            fs::create_dir_all(t.join(d)).unwrap();
        }
        let dirs = default_dirs(Some(&t.join("out/bin/mkinitfs")), &t.join("base"));
        assert_eq!(
            dirs,
            vec![
                t.join("out/bin/../share/mkinitfs/features.d"),
                t.join("out/bin/../../mkinitfs/features.d"),
                t.join("base/etc/mkinitfs/features.d"),
            ]
        );
    }

    #[test]
    fn repository_features_parse() {
        // The shipped features.d must define every default feature.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("features.d");
        let names: Vec<String> = crate::config::DEFAULT_FEATURES
            .iter()
            .map(|s| s.to_string())
            .collect();
        let f = load(&names, std::slice::from_ref(&dir)).unwrap();
        assert_eq!(f.len(), names.len());
        let all = available(&[dir]).unwrap();
        for extra in ["network", "rescue", "kms"] {
            assert!(all.iter().any(|n| n == extra), "{extra} missing");
        }
    }
}
