//! ELF dependency closure, resolved statically inside the base directory (no `ldd`).
//!
//! For each ELF file we take its interpreter (`PT_INTERP`) and its `DT_NEEDED` libraries and find
//! each library the way the dynamic loader would, but inside the base directory: `DT_RPATH` of the
//! object and of the executable that pulled it in (only when the object has no `DT_RUNPATH`),
//! then `DT_RUNPATH`, then `etc/ld.so.conf` (with `include` globs), musl's
//! `etc/ld-musl-<arch>.path`, then the default directories (`lib/<multiarch>`,
//! `usr/lib/<multiarch>`, `lib64`, `usr/lib64`, `lib`, `usr/lib`, `usr/local/lib`). `$ORIGIN` is the
//! directory of the object. A candidate must have the same ELF class and machine as the object
//! (a 32-bit library of the same name is skipped). `LD_LIBRARY_PATH` is ignored on purpose: it
//! describes the build host, not the image. glibc-hwcaps subdirectories are not searched; the
//! baseline library they fall back to is always present.

use std::collections::HashSet;
use std::fs;
use std::io::Read;

use goblin::elf::{header, Elf};

use crate::error::{Error, IoResultExt};
use crate::root::{self, Root};

/// ELF files larger than this are not parsed (a hostile or corrupt file must not exhaust memory).
const MAX_ELF: u64 = 512 << 20;

/// Identity a library must share with the object that needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kind {
    is_64: bool,
    machine: u16,
}

/// What one ELF file asks of the loader.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElfDeps {
    /// `PT_INTERP`, e.g. `/lib64/ld-linux-x86-64.so.2`.
    pub interpreter: Option<String>,
    /// `DT_NEEDED` entries.
    pub needed: Vec<String>,
    /// `DT_RPATH` directories (split on `:`).
    pub rpath: Vec<String>,
    /// `DT_RUNPATH` directories (split on `:`).
    pub runpath: Vec<String>,
    kind: Option<Kind>,
}

/// Reads the ELF identity (class, machine) from the first bytes of a file; None if not ELF.
fn read_kind(bytes: &[u8]) -> Option<Kind> {
    if bytes.len() < 20 || &bytes[..4] != b"\x7fELF" {
        return None;
    }
    let is_64 = bytes[header::EI_CLASS] == header::ELFCLASS64;
    let machine = match bytes[header::EI_DATA] {
        header::ELFDATA2MSB => u16::from_be_bytes([bytes[18], bytes[19]]),
        _ => u16::from_le_bytes([bytes[18], bytes[19]]),
    };
    Some(Kind { is_64, machine })
}

/// Parses the dependencies of an ELF image; `Ok(None)` when `bytes` is not ELF at all (scripts,
/// data files listed in features are copied without a walk).
pub fn parse_deps(path: &std::path::Path, bytes: &[u8]) -> Result<Option<ElfDeps>, Error> {
    let Some(kind) = read_kind(bytes) else {
        return Ok(None);
    };
    let elf = Elf::parse(bytes).map_err(|e| Error::Elf {
        path: path.to_path_buf(),
        reason: format!("cannot parse ELF: {e}"),
    })?;
    let split = |list: &[&str]| -> Vec<String> {
        list.iter()
            .flat_map(|s| s.split(':'))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    Ok(Some(ElfDeps {
        interpreter: elf.interpreter.map(str::to_string),
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        rpath: split(&elf.rpaths),
        runpath: split(&elf.runpaths),
        kind: Some(kind),
    }))
}

/// Multiarch directory names Debian uses for an ELF machine and class.
fn multiarch(kind: Kind) -> &'static [&'static str] {
    match (kind.machine, kind.is_64) {
        (header::EM_X86_64, true) => &["x86_64-linux-gnu"],
        (header::EM_X86_64, false) => &["x86_64-linux-gnux32"],
        (header::EM_386, false) => &["i386-linux-gnu"],
        (header::EM_AARCH64, true) => &["aarch64-linux-gnu"],
        (header::EM_ARM, false) => &["arm-linux-gnueabihf", "arm-linux-gnueabi"],
        (header::EM_RISCV, true) => &["riscv64-linux-gnu"],
        (header::EM_PPC64, true) => &["powerpc64le-linux-gnu", "powerpc64-linux-gnu"],
        (header::EM_S390, true) => &["s390x-linux-gnu"],
        _ => &[],
    }
}

/// Resolves ELF dependencies inside a root; one per build (it caches `ld.so.conf`).
#[derive(Debug)]
pub struct Resolver<'a> {
    root: &'a Root,
    conf_dirs: Vec<String>,
}

impl<'a> Resolver<'a> {
    /// Reads `etc/ld.so.conf` (and includes) and musl's path files from the root.
    pub fn new(root: &'a Root) -> Result<Self, Error> {
        let mut conf_dirs = Vec::new();
        let mut seen = HashSet::new();
        read_ld_so_conf(root, "etc/ld.so.conf", &mut conf_dirs, &mut seen, 0)?;
        // musl: /etc/ld-musl-<arch>.path holds the library path (newline or colon separated).
        let etc = root.host("etc");
        if let Ok(entries) = fs::read_dir(&etc) {
            let mut files: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("ld-musl-") && n.ends_with(".path"))
                .collect();
            files.sort();
            for f in files {
                let p = etc.join(&f);
                let text = fs::read_to_string(&p).at(&p)?;
                conf_dirs.extend(
                    text.split([':', '\n'])
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                );
            }
        }
        Ok(Resolver { root, conf_dirs })
    }

    /// Finds library `name` for an object at real path `object` (relative, in the root) with
    /// dependencies `deps`; `inherited_rpath` is the executable's `DT_RPATH`. Returns the path
    /// to add (as the loader would open it, links included).
    pub fn find_library(
        &self,
        name: &str,
        object: &str,
        deps: &ElfDeps,
        inherited_rpath: &[String],
    ) -> Result<Option<String>, Error> {
        let Some(kind) = deps.kind else {
            return Ok(None);
        };
        if name.contains('/') {
            let path = if name.starts_with('/') {
                name.to_string()
            } else {
                root::join(root::parent(object), name)
            };
            return Ok(self.matches(&path, kind)?.then_some(path));
        }
        let origin = format!("/{}", root::parent(object));
        let expand = |dir: &str| -> String {
            let lib = if kind.is_64 { "lib64" } else { "lib" };
            dir.replace("${ORIGIN}", &origin)
                .replace("$ORIGIN", &origin)
                .replace("${LIB}", lib)
                .replace("$LIB", lib)
        };
        let mut dirs: Vec<String> = Vec::new();
        if deps.runpath.is_empty() {
            dirs.extend(deps.rpath.iter().map(|d| expand(d)));
            dirs.extend(inherited_rpath.iter().map(|d| expand(d)));
        }
        dirs.extend(deps.runpath.iter().map(|d| expand(d)));
        dirs.extend(self.conf_dirs.iter().cloned());
        for m in multiarch(kind) {
            dirs.push(format!("/lib/{m}"));
            dirs.push(format!("/usr/lib/{m}"));
        }
        for d in ["/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib"] {
            dirs.push(d.to_string());
        }
        for dir in dirs {
            let candidate = root::join(&dir, name);
            if self.matches(&candidate, kind)? {
                return Ok(Some(candidate));
            }
        }
        Ok(None)
    }

    /// True when `path` resolves to a regular ELF file of the given kind.
    fn matches(&self, path: &str, kind: Kind) -> Result<bool, Error> {
        let Some((real, meta)) = self.root.resolve(path)? else {
            return Ok(false);
        };
        if !meta.is_file() {
            return Ok(false);
        }
        let host = self.root.host(&real);
        let mut head = [0u8; 20];
        let mut file = fs::File::open(&host).at(&host)?;
        let n = read_full(&mut file, &mut head).at(&host)?;
        Ok(read_kind(&head[..n]) == Some(kind))
    }

    /// Reads the ELF at real path `real` (bounded size) and parses its dependencies.
    pub fn deps_of(&self, real: &str) -> Result<Option<ElfDeps>, Error> {
        let host = self.root.host(real);
        let mut file = fs::File::open(&host).at(&host)?;
        // Look at the magic first: feature files include large data files that need no walk.
        let mut head = [0u8; 20];
        let n = read_full(&mut file, &mut head).at(&host)?;
        if read_kind(&head[..n]).is_none() {
            return Ok(None);
        }
        let mut bytes = head[..n].to_vec();
        file.take(MAX_ELF).read_to_end(&mut bytes).at(&host)?;
        parse_deps(&host, &bytes)
    }
}

fn read_full(file: &mut fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Parses an `ld.so.conf` inside the root: directories separated by whitespace, `:` or `,`,
/// `include GLOB` (relative globs are relative to the including file's directory), `hwcap` lines
/// ignored, `#` comments.
fn read_ld_so_conf(
    root: &Root,
    path: &str,
    out: &mut Vec<String>,
    seen: &mut HashSet<String>,
    depth: usize,
) -> Result<(), Error> {
    if depth > 8 {
        return Ok(());
    }
    let Some((real, meta)) = root.resolve(path)? else {
        return Ok(());
    };
    if !meta.is_file() || !seen.insert(real.clone()) {
        return Ok(());
    }
    let host = root.host(&real);
    let text = fs::read_to_string(&host).at(&host)?;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with("hwcap ") {
            continue;
        }
        if let Some(pattern) = line
            .strip_prefix("include")
            .filter(|r| r.starts_with([' ', '\t']))
        {
            for pat in pattern.split_whitespace() {
                let pat = if pat.starts_with('/') {
                    pat.to_string()
                } else {
                    format!("/{}", root::join(root::parent(&real), pat))
                };
                // Through the root: an included directory that is an absolute link resolves
                // inside the base directory, not on the build host.
                let matches = root.glob(&pat)?;
                for m in matches {
                    read_ld_so_conf(root, &m, out, seen, depth + 1)?;
                }
            }
            continue;
        }
        out.extend(
            line.split([' ', '\t', ':', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    #[test]
    fn resolves_host_ls_in_root_slash() {
        // /usr/bin/ls on the Debian build host: libselinux and libc through ld.so.conf.d.
        if !Path::new("/usr/bin/ls").exists() {
            return;
        }
        let root = Root::new(Path::new("/")).unwrap();
        let r = Resolver::new(&root).unwrap();
        let (real, _) = root.resolve("/usr/bin/ls").unwrap().unwrap();
        let deps = r.deps_of(&real).unwrap().expect("ls is ELF");
        assert!(deps.interpreter.as_deref().unwrap().contains("ld-linux"));
        assert!(deps.needed.iter().any(|n| n == "libc.so.6"));
        let libc = r
            .find_library("libc.so.6", &real, &deps, &[])
            .unwrap()
            .expect("libc found");
        assert!(libc.ends_with("libc.so.6"), "{libc}");
        assert!(root.resolve(&libc).unwrap().unwrap().1.is_file());
        assert_eq!(
            r.find_library("libdoesnotexist.so.9", &real, &deps, &[])
                .unwrap(),
            None
        );
    }

    #[test]
    fn origin_rpath_and_class_mismatch() {
        // A fake tree: a 64-bit x86_64 "binary" needing libfoo.so, found via $ORIGIN/../lib,
        // with a 32-bit libfoo.so earlier in ld.so.conf that must be skipped.
        let tmp = tempfile::tempdir().unwrap();
        let b = tmp.path();
        let host_ls = fs::read("/usr/bin/ls");
        let Ok(elf64) = host_ls else { return };
        fs::create_dir_all(b.join("opt/app/bin")).unwrap();
        fs::create_dir_all(b.join("opt/app/lib")).unwrap();
        fs::create_dir_all(b.join("lib32")).unwrap();
        fs::create_dir_all(b.join("etc/ld.so.conf.d")).unwrap();
        fs::write(b.join("etc/ld.so.conf"), "include ld.so.conf.d/*.conf\n").unwrap();
        fs::write(b.join("etc/ld.so.conf.d/a.conf"), "# x\n/lib32\n").unwrap();
        let mut elf32 = elf64.clone();
        elf32[header::EI_CLASS] = header::ELFCLASS32;
        fs::write(b.join("lib32/libfoo.so"), &elf32).unwrap();
        fs::write(b.join("opt/app/lib/libfoo.so.1"), &elf64).unwrap();
        symlink("libfoo.so.1", b.join("opt/app/lib/libfoo.so")).unwrap();
        let root = Root::new(b).unwrap();
        let r = Resolver::new(&root).unwrap();
        assert_eq!(r.conf_dirs, vec!["/lib32"]);
        let kind = read_kind(&elf64).unwrap();
        let deps = ElfDeps {
            rpath: vec!["$ORIGIN/../lib".into()],
            kind: Some(kind),
            ..Default::default()
        };
        let found = r
            .find_library("libfoo.so", "opt/app/bin/app", &deps, &[])
            .unwrap();
        assert_eq!(found.as_deref(), Some("opt/app/lib/libfoo.so"));
        // Without the rpath, only the 32-bit one exists: not a match.
        let deps = ElfDeps {
            kind: Some(kind),
            ..Default::default()
        };
        assert_eq!(
            r.find_library("libfoo.so", "opt/app/bin/app", &deps, &[])
                .unwrap(),
            None
        );
        // With RUNPATH present, RPATH is ignored.
        let deps = ElfDeps {
            rpath: vec!["$ORIGIN/../lib".into()],
            runpath: vec!["/nowhere".into()],
            kind: Some(kind),
            ..Default::default()
        };
        assert_eq!(
            r.find_library("libfoo.so", "opt/app/bin/app", &deps, &[])
                .unwrap(),
            None
        );
    }

    #[test]
    fn ld_so_conf_includes_resolve_inside_the_root() {
        // etc/ld.so.conf.d is an absolute link to /opt/conf.d *inside* the base directory; the
        // build host has no /opt/conf.d. (The glob crate, used before, resolved it on the host
        // and found nothing.)
        let tmp = tempfile::tempdir().unwrap();
        let b = tmp.path();
        fs::create_dir_all(b.join("opt/conf.d")).unwrap();
        fs::create_dir_all(b.join("etc")).unwrap();
        symlink("/opt/conf.d", b.join("etc/ld.so.conf.d")).unwrap();
        fs::write(
            b.join("etc/ld.so.conf"),
            "include /etc/ld.so.conf.d/*.conf\n/first\n",
        )
        .unwrap();
        fs::write(b.join("opt/conf.d/b.conf"), "/lib/b\n").unwrap();
        fs::write(b.join("opt/conf.d/a.conf"), "/lib/a:/lib/a2\n").unwrap();
        fs::write(b.join("opt/conf.d/.hidden.conf"), "/lib/hidden\n").unwrap();
        let root = Root::new(b).unwrap();
        let r = Resolver::new(&root).unwrap();
        assert_eq!(r.conf_dirs, vec!["/lib/a", "/lib/a2", "/lib/b", "/first"]);
    }

    #[test]
    fn non_elf_and_corrupt_elf() {
        assert_eq!(
            parse_deps(Path::new("s"), b"#!/bin/sh\necho hi\n").unwrap(),
            None
        );
        let Ok(ls) = fs::read("/usr/bin/ls") else {
            return;
        };
        for cut in [64, 200, 1000] {
            // Truncated ELF files: an error or a result, never a panic.
            let _ = parse_deps(Path::new("ls"), &ls[..cut]);
        }
        let mut bad = ls[..64].to_vec();
        bad[32..40].copy_from_slice(&u64::MAX.to_le_bytes()); // e_phoff far away
        assert!(parse_deps(Path::new("bad"), &bad).is_err());
    }
}
