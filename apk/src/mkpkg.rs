//! Building v2 packages from a directory and metadata, the way abuild does (apk-format.md §1.2):
//! data tar with `APK-TOOLS.checksum.SHA1` PAX records, `datahash` in `.PKGINFO`, control tar cut
//! before its end blocks, each gzip'd (`gzip -n -9` style), then an optional signature member.
//! Reproducible: entries sorted, times clamped to `SOURCE_DATE_EPOCH`, owners root.

use crate::archive;
use crate::tar::{self, Entry, Kind};
use crate::trust::PrivateKey;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Metadata and inputs of a package.
#[derive(Clone, Debug, Default)]
pub struct Recipe {
    /// `.PKGINFO` lines as `(key, value)` in order (`pkgname`, `pkgver`, `depend`, ...). `size`,
    /// `builddate` and `datahash` are computed.
    pub info: Vec<(String, String)>,
    /// Scripts as `(type, body)` (`post-install`, ...).
    pub scripts: Vec<(String, Vec<u8>)>,
    /// Payload directory (may be missing for a meta package).
    pub dir: Option<PathBuf>,
    /// Build time (defaults to `SOURCE_DATE_EPOCH` or now).
    pub epoch: Option<u64>,
}

/// Failures while building.
#[derive(Debug, thiserror::Error)]
pub enum MkpkgError {
    /// Reading the payload.
    #[error("{}: {source}", .path.display())]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Bad metadata.
    #[error("{0}")]
    Meta(String),
    /// Signing.
    #[error("{0}")]
    Key(#[from] crate::trust::KeyError),
}

fn walk(base: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), MkpkgError> {
    let dir = base.join(rel);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|source| MkpkgError::Io {
            path: dir.clone(),
            source,
        })?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for n in names {
        let r = rel.join(&n);
        out.push(r.clone());
        let meta = std::fs::symlink_metadata(base.join(&r)).map_err(|source| MkpkgError::Io {
            path: base.join(&r),
            source,
        })?;
        if meta.is_dir() {
            walk(base, &r, out)?;
        }
    }
    Ok(())
}

/// The data tar for `dir`, and its installed size.
fn data_tar(dir: Option<&Path>, epoch: u64) -> Result<(Vec<u8>, u64), MkpkgError> {
    let mut w = tar::Writer::new(Vec::new(), tar::Magic::Gnu);
    let mut size = 0u64;
    let mut any_file = false;
    if let Some(dir) = dir {
        let mut paths = Vec::new();
        walk(dir, Path::new(""), &mut paths)?;
        let mut inodes: std::collections::HashMap<(u64, u64), String> =
            std::collections::HashMap::new();
        for rel in paths {
            let host = dir.join(&rel);
            let meta = std::fs::symlink_metadata(&host).map_err(|source| MkpkgError::Io {
                path: host.clone(),
                source,
            })?;
            let name = rel.to_string_lossy().into_owned();
            let mode = meta.permissions().mode() & 0o7777;
            let io = |source| MkpkgError::Io {
                path: host.clone(),
                source,
            };
            let mut e = Entry::new(&name, Kind::File, mode);
            e.mtime = (meta.mtime().max(0) as u64).min(epoch);
            let ft = meta.file_type();
            if ft.is_dir() {
                e.kind = Kind::Dir;
                e.name.push('/');
                w.append(&e, b"").map_err(io)?;
            } else if ft.is_symlink() {
                let t = std::fs::read_link(&host).map_err(io)?;
                e.kind = Kind::Symlink;
                e.link = t.to_string_lossy().into_owned();
                e.sha1 = Some(Sha1::digest(e.link.as_bytes()).into());
                w.append(&e, b"").map_err(io)?;
                any_file = true;
            } else if ft.is_file() {
                any_file = true;
                if meta.nlink() > 1 {
                    if let Some(first) = inodes.get(&(meta.dev(), meta.ino())) {
                        e.kind = Kind::HardLink;
                        e.link = first.clone();
                        w.append(&e, b"").map_err(io)?;
                        continue;
                    }
                    inodes.insert((meta.dev(), meta.ino()), name.clone());
                }
                let data = std::fs::read(&host).map_err(io)?;
                e.sha1 = Some(Sha1::digest(&data).into());
                size += data.len().div_ceil(4096) as u64 * 4096;
                w.append(&e, &data).map_err(io)?;
            } else {
                return Err(MkpkgError::Meta(format!(
                    "{}: unsupported file type",
                    host.display()
                )));
            }
        }
    }
    let mut buf = w.finish().map_err(|source| MkpkgError::Io {
        path: PathBuf::from("<data>"),
        source,
    })?;
    // abuild pads the data tar to a 10240-byte record.
    let rec = buf.len().div_ceil(10240) * 10240;
    buf.resize(rec, 0);
    if size == 0 && any_file {
        size = 1; // abuild: files present but zero bytes still count, so I:0 is never written
    }
    Ok((buf, size))
}

/// Build a package. `key`: sign with it under the public key name `keyname`.
pub fn build(r: &Recipe, key: Option<(&PrivateKey, &str)>) -> Result<Vec<u8>, MkpkgError> {
    let epoch = r.epoch.unwrap_or_else(archive::build_time);
    let get = |k: &str| {
        r.info
            .iter()
            .find(|(kk, _)| kk == k)
            .map(|(_, v)| v.clone())
    };
    let name = get("pkgname").ok_or_else(|| MkpkgError::Meta("missing pkgname".into()))?;
    let ver = get("pkgver").ok_or_else(|| MkpkgError::Meta("missing pkgver".into()))?;
    if !crate::dep::is_valid_package_name(&name) {
        return Err(MkpkgError::Meta(format!("invalid pkgname '{name}'")));
    }
    if !crate::version::is_valid(&ver) {
        return Err(MkpkgError::Meta(format!("invalid pkgver '{ver}'")));
    }
    let (data, size) = data_tar(r.dir.as_deref(), epoch)?;
    let mut info = String::from("# Generated by apk mkpkg\n");
    let mut push = |k: &str, v: &str| {
        info.push_str(&format!("{k} = {v}\n"));
    };
    push("pkgname", &name);
    push("pkgver", &ver);
    for k in ["pkgdesc", "url"] {
        push(k, &get(k).unwrap_or_default());
    }
    push("builddate", &epoch.to_string());
    push("size", &size.to_string());
    push(
        "arch",
        &get("arch").unwrap_or_else(|| crate::db::DEFAULT_ARCH.to_string()),
    );
    for k in [
        "origin",
        "commit",
        "maintainer",
        "replaces_priority",
        "provider_priority",
    ] {
        if let Some(v) = get(k) {
            push(k, &v);
        }
    }
    push(
        "license",
        &get("license").unwrap_or_else(|| "unknown".into()),
    );
    for (k, v) in &r.info {
        if matches!(
            k.as_str(),
            "replaces" | "depend" | "provides" | "install_if" | "triggers"
        ) {
            push(k, v);
        }
    }
    let known = [
        "pkgname",
        "pkgver",
        "pkgdesc",
        "url",
        "builddate",
        "size",
        "arch",
        "origin",
        "commit",
        "maintainer",
        "replaces_priority",
        "provider_priority",
        "license",
        "replaces",
        "depend",
        "provides",
        "install_if",
        "triggers",
    ];
    if let Some((k, _)) = r.info.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        return Err(MkpkgError::Meta(format!("unknown .PKGINFO key '{k}'")));
    }
    crate::package::Package::from_pkginfo(&info).map_err(|e| MkpkgError::Meta(e.to_string()))?;
    assemble(&info, &r.scripts, &data, epoch, key)
}

/// Put a package together from `.PKGINFO` text (without `datahash`, which is added), scripts and
/// an uncompressed data tar (which must end with end-of-archive blocks). Exposed so tests can
/// build hostile packages from hand-made tars.
pub fn assemble(
    pkginfo: &str,
    scripts: &[(String, Vec<u8>)],
    data_tar: &[u8],
    epoch: u64,
    key: Option<(&PrivateKey, &str)>,
) -> Result<Vec<u8>, MkpkgError> {
    let data_gz = crate::gzip::compress(data_tar);
    let mut info = pkginfo.to_string();
    info.push_str(&format!(
        "datahash = {}\n",
        hex::encode(Sha256::digest(&data_gz))
    ));
    let mut cw = tar::Writer::new(Vec::new(), tar::Magic::Gnu);
    cw.pax_extras = false;
    let io = |source| MkpkgError::Io {
        path: PathBuf::from("<control>"),
        source,
    };
    let mut e = Entry::new(".PKGINFO", Kind::File, 0o644);
    e.mtime = epoch;
    cw.append(&e, info.as_bytes()).map_err(io)?;
    let mut scripts = scripts.to_vec();
    scripts.sort();
    for (kind, body) in &scripts {
        if !archive::SCRIPTS.contains(&kind.as_str()) {
            return Err(MkpkgError::Meta(format!("unknown script type '{kind}'")));
        }
        let mut e = Entry::new(&format!(".{kind}"), Kind::File, 0o755);
        e.mtime = epoch;
        cw.append(&e, body).map_err(io)?;
    }
    let control_gz = crate::gzip::compress(&cw.into_inner_cut().map_err(io)?);
    let mut out = Vec::new();
    if let Some((k, keyname)) = key {
        out.extend(archive::signature_member(k, keyname, &control_gz, epoch)?);
    }
    out.extend(control_gz);
    out.extend(data_gz);
    Ok(out)
}

/// Make an index entry for a package file (what `apk index` does for each file).
pub fn index_entry(
    buf: &[u8],
    keys: &crate::trust::Keyring,
    allow_untrusted: bool,
) -> Result<crate::package::Package, archive::ArchiveError> {
    let opened = archive::open_package(
        buf,
        &archive::Mode::Verify {
            keys,
            allow_untrusted,
        },
    )?;
    if opened.info.datahash.is_none() {
        return Err(archive::ArchiveError::Format(
            "package without datahash".into(),
        ));
    }
    let mut p = opened.info;
    // Install-time-only fields never go into an index.
    p.replaces.clear();
    p.replaces_priority = None;
    p.triggers.clear();
    p.datahash = None;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(dir: &Path) -> Recipe {
        Recipe {
            info: vec![
                ("pkgname".into(), "hello".into()),
                ("pkgver".into(), "1.0-r0".into()),
                ("pkgdesc".into(), "test".into()),
                ("depend".into(), "musl".into()),
                ("replaces".into(), "old".into()),
            ],
            scripts: vec![("post-install".into(), b"#!/bin/sh\necho hi\n".to_vec())],
            dir: Some(dir.to_path_buf()),
            epoch: Some(1_700_000_000),
        }
    }

    #[test]
    fn builds_verifiable_reproducible_package() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("root");
        std::fs::create_dir_all(d.join("usr/bin")).unwrap();
        std::fs::write(d.join("usr/bin/hello"), "#!/bin/sh\necho hello\n").unwrap();
        std::fs::set_permissions(
            d.join("usr/bin/hello"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("hello", d.join("usr/bin/hi")).unwrap();
        std::fs::hard_link(d.join("usr/bin/hello"), d.join("usr/bin/hello2")).unwrap();
        let key = PrivateKey::generate_ed25519();
        let a = build(&recipe(&d), Some((&key, "k.pub"))).unwrap();
        let b = build(&recipe(&d), None).unwrap();
        let mut ring = crate::trust::Keyring::default();
        ring.insert("k.pub", key.public());
        let opened = archive::open_package(
            &a,
            &archive::Mode::Verify {
                keys: &ring,
                allow_untrusted: false,
            },
        )
        .unwrap();
        assert_eq!(opened.info.name, "hello");
        assert_eq!(opened.info.replaces[0].name, "old");
        assert_eq!(opened.scripts.len(), 1);
        // Unsigned build has the same identity: the signature is not part of it.
        let opened_b = archive::open_package(
            &b,
            &archive::Mode::Verify {
                keys: &ring,
                allow_untrusted: true,
            },
        )
        .unwrap();
        assert_eq!(opened.info.identity, opened_b.info.identity);
        assert_eq!(build(&recipe(&d), None).unwrap(), b, "reproducible");
        let mut r = archive::data_reader(&a, opened.data.clone());
        let mut kinds = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            kinds.push((e.name.clone(), e.kind, e.sha1.is_some()));
        }
        assert!(
            kinds.contains(&("usr/bin/hello2".into(), Kind::HardLink, false))
                || kinds.contains(&("usr/bin/hello".into(), Kind::HardLink, false))
        );
        assert!(kinds.contains(&("usr/bin/hi".into(), Kind::Symlink, true)));
        let idx = index_entry(&a, &ring, false).unwrap();
        assert!(idx.replaces.is_empty());
        assert_eq!(idx.size, a.len() as u64);
    }

    #[test]
    fn rejects_bad_metadata() {
        let mut r = Recipe {
            info: vec![("pkgname".into(), "x".into())],
            ..Default::default()
        };
        assert!(build(&r, None).is_err());
        r.info.push(("pkgver".into(), "1..0".into()));
        assert!(build(&r, None).is_err());
        r.info[1].1 = "1.0".into();
        r.info.push(("bogus".into(), "v".into()));
        assert!(build(&r, None).is_err());
        r.info.pop();
        assert!(build(&r, None).is_ok());
    }
}
