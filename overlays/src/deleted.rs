//! The deletion manifest: package-owned configuration files the user deleted (`rm /etc/motd`),
//! which Alpine's apkovl cannot express (overlays/README.md, "Deletion manifest"). It is an
//! ordinary member, [`MANIFEST`], so Alpine's init just extracts it as a harmless file; the
//! project's init reads it instead of extracting it and deletes the listed files after the
//! package install, with [`apply_deletions`]. Overlays without it apply as before.
//!
//! Format (UTF-8 text, lines end at `\n`): lines starting with `#` are comments, the first being
//! `# apkovl-deleted v1`; every other non-empty line is one path relative to the root, with `\\`
//! for a backslash, `\n` for a newline and `\r` for a carriage return. Paths must be relative,
//! without `.`/`..` components.

use crate::apply::Refused;
use crate::Error;
use std::path::Path;

/// Member name of the manifest inside an overlay.
pub const MANIFEST: &str = "etc/lbu/deleted";

const HEADER: &str = "# apkovl-deleted v1\n# Package-owned configuration files deleted on the saved system; the boot deletes\n# them again after installing packages. Alpine's init ignores this file.\n";

/// The manifest text for these paths.
pub fn format(paths: &[String]) -> String {
    let mut s = String::from(HEADER);
    for p in paths {
        s.push_str(
            &p.replace('\\', "\\\\")
                .replace('\n', "\\n")
                .replace('\r', "\\r"),
        );
        s.push('\n');
    }
    s
}

/// Parse a manifest; any unsafe or malformed path rejects the whole manifest.
pub fn parse(text: &str) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    // Lines end at `\n` only: a carriage return is part of a name (written escaped as `\r`), never
    // silently dropped, or `foo\r` would delete `foo`.
    for line in text.split('\n') {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut p = String::with_capacity(line.len());
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                p.push(c);
                continue;
            }
            match chars.next() {
                Some('\\') => p.push('\\'),
                Some('n') => p.push('\n'),
                Some('r') => p.push('\r'),
                _ => return Err(Error::Manifest(format!("bad escape in line {line:?}"))),
            }
        }
        check_path(&p).map_err(|why| Error::Manifest(format!("{p:?}: {why}")))?;
        out.push(p);
    }
    Ok(out)
}

fn check_path(p: &str) -> Result<(), &'static str> {
    if p.starts_with('/') {
        return Err("absolute path");
    }
    if p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err("path with an empty, `.` or `..` component");
    }
    if p.contains('\0') {
        return Err("path with a NUL byte");
    }
    Ok(())
}

/// What [`apply_deletions`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeletionReport {
    /// Removed files.
    pub deleted: Vec<String>,
    /// Listed but already absent.
    pub missing: Vec<String>,
    /// Not removed, with the reason (directories, unsafe paths, I/O errors).
    pub refused: Vec<Refused>,
}

/// Delete the listed files under `root` (after the package install). Parents are resolved inside
/// the root (`RESOLVE_IN_ROOT`: a symlink can never lead outside it) and the last component is
/// unlinked without following it; directories are never removed.
pub fn apply_deletions(root: &Path, paths: &[String]) -> Result<DeletionReport, Error> {
    let r = apk::root::Root::open(root).map_err(|source| Error::Io {
        path: root.into(),
        source,
    })?;
    let mut rep = DeletionReport::default();
    for p in paths {
        let refuse = |rep: &mut DeletionReport, reason: String| {
            rep.refused.push(Refused {
                name: p.clone(),
                reason,
            })
        };
        if let Err(why) = check_path(p) {
            refuse(&mut rep, why.to_string());
            continue;
        }
        let (parent, name) = apk::root::split_parent(p);
        let dir = match r.dir(parent) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                rep.missing.push(p.clone());
                continue;
            }
            Err(e) => {
                refuse(&mut rep, e.to_string());
                continue;
            }
        };
        match nix::sys::stat::fstatat(&dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(nix::Error::ENOENT) => {
                rep.missing.push(p.clone());
                continue;
            }
            Err(e) => {
                refuse(&mut rep, e.desc().to_string());
                continue;
            }
            Ok(st) if crate::apply::file_type(st.st_mode) == nix::sys::stat::SFlag::S_IFDIR => {
                refuse(&mut rep, "is a directory".into());
                continue;
            }
            Ok(_) => {}
        }
        match nix::unistd::unlinkat(&dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) => rep.deleted.push(p.clone()),
            Err(nix::Error::ENOENT) => rep.missing.push(p.clone()),
            Err(e) => refuse(&mut rep, e.desc().to_string()),
        }
    }
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_with_escapes() {
        let paths = vec![
            "etc/motd".to_string(),
            "etc/we ird\\name".into(),
            "etc/new\nline".into(),
            // Found by the fuzzer: a name ending in a carriage return lost it on the way back.
            "\r".into(),
            "etc/cr\r".into(),
        ];
        let text = format(&paths);
        assert!(text.starts_with("# apkovl-deleted v1\n"));
        assert_eq!(parse(&text).unwrap(), paths);
    }

    #[test]
    fn rejects_unsafe_paths() {
        for bad in [
            "/etc/passwd\n",
            "etc/../../x\n",
            "etc//x\n",
            "./etc/x\n",
            "etc/x\\q\n",
        ] {
            assert!(matches!(parse(bad), Err(Error::Manifest(_))), "{bad:?}");
        }
    }

    #[test]
    fn deletes_inside_root_only() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(root.join("etc/sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("etc/motd"), "x").unwrap();
        std::fs::write(outside.join("victim"), "keep").unwrap();
        // An absolute symlink inside the root must resolve to the root's own directory.
        std::os::unix::fs::symlink(&outside, root.join("etc/escape")).unwrap();
        std::fs::create_dir_all(root.join(outside.strip_prefix("/").unwrap())).unwrap();
        let paths = vec![
            "etc/motd".to_string(),
            "etc/gone".into(),
            "etc/sub".into(),
            "etc/escape/victim".into(),
            "../x".into(),
        ];
        let rep = apply_deletions(&root, &paths).unwrap();
        assert_eq!(rep.deleted, vec!["etc/motd"]);
        assert_eq!(rep.missing, vec!["etc/gone", "etc/escape/victim"]);
        assert_eq!(
            rep.refused
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            vec!["etc/sub", "../x"]
        );
        assert!(outside.join("victim").exists());
        assert!(root.join("etc/sub").is_dir());
    }
}
