//! `lib/apk/db/installed`: index letters plus the installed-only ones (`r q s f g` and the file
//! blocks `F M R a Z`), apk-format.md §4.1.

use crate::dep::{self, Dependency};
use crate::package::{Checksum, Package};
use std::fmt::Write;

/// Owner, mode and xattr digest of a file or directory (`a:`/`M:` lines).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acl {
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
    /// SHA-1 over the sorted xattrs, when there are any.
    pub xattr: Option<Checksum>,
}

impl Acl {
    /// `0:0:755`, the default for directories.
    pub const DIR: Acl = Acl {
        uid: 0,
        gid: 0,
        mode: 0o755,
        xattr: None,
    };
    /// `0:0:644`, the default for files.
    pub const FILE: Acl = Acl {
        uid: 0,
        gid: 0,
        mode: 0o644,
        xattr: None,
    };

    fn parse(v: &str) -> Option<Acl> {
        let mut f = v.split(':');
        let uid = f.next()?.parse().ok()?;
        let gid = f.next()?.parse().ok()?;
        let mode = u32::from_str_radix(f.next()?, 8).ok()?;
        let xattr = match f.next() {
            Some(x) => Some(Checksum::parse(x)?),
            None => None,
        };
        Some(Acl {
            uid,
            gid,
            mode,
            xattr,
        })
    }

    fn format(&self) -> String {
        let mut s = format!("{}:{}:{:o}", self.uid, self.gid, self.mode);
        if let Some(x) = &self.xattr {
            let _ = write!(s, ":{x}");
        }
        s
    }
}

/// A file owned by a package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Name within its directory.
    pub name: String,
    /// Owner and mode (`a:`; default `0:0:644`).
    pub acl: Acl,
    /// Content digest (`Z:`), absent for devices and FIFOs.
    pub checksum: Option<Checksum>,
}

/// A directory a package created, with the files it owns there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// Path without leading or trailing `/` (empty for the root).
    pub path: String,
    /// Owner and mode (`M:`; default `0:0:755`).
    pub acl: Acl,
    /// Files, in archive order.
    pub files: Vec<FileEntry>,
}

/// One installed package.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstalledPackage {
    /// Metadata (including `replaces`/`replaces_priority` from `r:`/`q:`).
    pub pkg: Package,
    /// Repository tag it is pinned to (`s:`).
    pub tag: Option<String>,
    /// Broken flags (`f:`): `f` files, `s` script, `x` xattr, `S`.
    pub broken: String,
    /// v3 tags (`g:`).
    pub tags: Vec<String>,
    /// Directories and files.
    pub dirs: Vec<DirEntry>,
}

impl InstalledPackage {
    /// Every owned file as `(dir path, file)`.
    pub fn files(&self) -> impl Iterator<Item = (&DirEntry, &FileEntry)> {
        self.dirs
            .iter()
            .flat_map(|d| d.files.iter().map(move |f| (d, f)))
    }

    /// Forget `path` (another package took it over); its directory stays.
    pub fn disown(&mut self, path: &str) {
        let (dir, name) = crate::root::split_parent(path);
        if let Some(d) = self.dirs.iter_mut().find(|d| d.path == dir) {
            d.files.retain(|f| f.name != name);
        }
    }

    /// Number of files.
    pub fn file_count(&self) -> usize {
        self.dirs.iter().map(|d| d.files.len()).sum()
    }

    /// Mark a broken flag once.
    pub fn set_broken(&mut self, flag: char) {
        if !self.broken.contains(flag) {
            self.broken.push(flag);
        }
    }
}

/// Syntax error in the installed database.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("FDB format error (line {line}, entry '{letter}')")]
pub struct FdbError {
    /// 1-based line.
    pub line: usize,
    /// The offending letter.
    pub letter: char,
}

/// Parse the installed database.
pub fn parse(text: &str) -> Result<Vec<InstalledPackage>, FdbError> {
    let mut out = Vec::new();
    let mut cur: Option<InstalledPackage> = None;
    for (i, line) in text.split('\n').enumerate() {
        let lineno = i + 1;
        if line.len() < 2 {
            if let Some(p) = cur.take() {
                if p.pkg.name.is_empty() {
                    return Err(FdbError {
                        line: lineno,
                        letter: 'P',
                    });
                }
                out.push(p);
            }
            continue;
        }
        let b = line.as_bytes();
        let letter = b[0] as char;
        if b[1] != b':' {
            return Err(FdbError {
                line: lineno,
                letter,
            });
        }
        let v = &line[2..];
        let err = || FdbError {
            line: lineno,
            letter,
        };
        let p = cur.get_or_insert_with(InstalledPackage::default);
        match letter {
            'F' => {
                if p.pkg.name.is_empty() {
                    return Err(err());
                }
                p.dirs.push(DirEntry {
                    path: v.to_string(),
                    acl: Acl::DIR,
                    files: Vec::new(),
                });
            }
            'M' => p.dirs.last_mut().ok_or_else(err)?.acl = Acl::parse(v).ok_or_else(err)?,
            'R' => p.dirs.last_mut().ok_or_else(err)?.files.push(FileEntry {
                name: v.to_string(),
                acl: Acl::FILE,
                checksum: None,
            }),
            'a' => {
                p.dirs
                    .last_mut()
                    .and_then(|d| d.files.last_mut())
                    .ok_or_else(err)?
                    .acl = Acl::parse(v).ok_or_else(err)?
            }
            'Z' => {
                p.dirs
                    .last_mut()
                    .and_then(|d| d.files.last_mut())
                    .ok_or_else(err)?
                    .checksum = Some(Checksum::parse(v).ok_or_else(err)?)
            }
            'r' => p.pkg.replaces = Dependency::parse_list(v, false).map_err(|_| err())?,
            'q' => p.pkg.replaces_priority = Some(v.parse().map_err(|_| err())?),
            's' => p.tag = Some(v.to_string()),
            'f' => {
                if v.chars().any(|c| !"fsxS".contains(c)) {
                    return Err(err());
                }
                p.broken = v.to_string();
            }
            'g' => p.tags = v.split_whitespace().map(str::to_string).collect(),
            _ => {
                // Unknown letters are kept out, as apk does for forward compatibility.
                p.pkg.apply_letter(letter as u8, v).map_err(|_| err())?;
            }
        }
    }
    if let Some(p) = cur.take() {
        if p.pkg.name.is_empty() {
            return Err(FdbError {
                line: text.lines().count(),
                letter: 'P',
            });
        }
        out.push(p);
    }
    Ok(out)
}

/// Write the installed database (packages in the given order).
pub fn write(packages: &[InstalledPackage]) -> String {
    let mut out = String::with_capacity(packages.len() * 2048);
    for ip in packages {
        ip.pkg.write_index_header(&mut out);
        if !ip.tags.is_empty() {
            let _ = writeln!(out, "g:{}", ip.tags.join(" "));
        }
        if !ip.pkg.replaces.is_empty() {
            let _ = writeln!(out, "r:{}", dep::list_to_string(&ip.pkg.replaces));
        }
        if let Some(q) = ip.pkg.replaces_priority {
            let _ = writeln!(out, "q:{q}");
        }
        if let Some(s) = &ip.tag {
            let _ = writeln!(out, "s:{s}");
        }
        if !ip.broken.is_empty() {
            let _ = writeln!(out, "f:{}", ip.broken);
        }
        for d in &ip.dirs {
            let _ = writeln!(out, "F:{}", d.path);
            if d.acl != Acl::DIR {
                let _ = writeln!(out, "M:{}", d.acl.format());
            }
            for f in &d.files {
                let _ = writeln!(out, "R:{}", f.name);
                if f.acl != Acl::FILE {
                    let _ = writeln!(out, "a:{}", f.acl.format());
                }
                if let Some(z) = &f.checksum {
                    let _ = writeln!(out, "Z:{z}");
                }
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrips_real_database() {
        let dir = crate::testutil::minirootfs(&["./lib/apk/db/installed"]);
        let text = std::fs::read_to_string(dir.path().join("lib/apk/db/installed")).unwrap();
        let pkgs = parse(&text).unwrap();
        assert_eq!(pkgs.len(), 14);
        let base = pkgs
            .iter()
            .find(|p| p.pkg.name == "alpine-baselayout")
            .unwrap();
        assert_eq!(base.pkg.replaces_priority, Some(1000));
        let crontabs = base.dirs.iter().find(|d| d.path == "etc/crontabs").unwrap();
        assert_eq!(crontabs.files[0].acl.mode, 0o600);
        assert_eq!(write(&pkgs), text);
    }

    #[test]
    fn format_errors() {
        assert_eq!(
            parse("F:etc\n").unwrap_err(),
            FdbError {
                line: 1,
                letter: 'F'
            }
        );
        assert!(parse("P:a\nV:1\nR:x\n\n").is_err());
        assert!(parse("P:a\nV:1\nF:etc\nZ:Q1x\n\n").is_err());
        assert!(parse("P:a\nV:1\nF:etc\nR:x\na:0:0\n\n").is_err());
        assert!(parse("P:a\nV:1\nf:z\n\n").is_err());
        assert!(parse("P:a\nV:1\nxx\n\n").is_err());
        assert!(parse("P:a\nV:1\nF:etc\nR:x\nZ:Q1jeRAF+EpaHQSmKZxtA9fmuD6Hv8=\n\n").is_ok());
    }
}
