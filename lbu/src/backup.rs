//! Backups of replaced overlays (lbu/README.md, "Backups").
//!
//! A backup is `HOST.<UTC mtime YYYYmmddHHMMSS>.tar.gz[.<cipher>]`, made as a hard link to the
//! current overlay (or a copy where the filesystem has none, e.g. FAT) *before* the new overlay
//! is renamed over the old one. An existing backup is never overwritten: two more digits are
//! appended (`...SS01`), which keeps lexical order chronological. Rotation keeps the newest
//! `BACKUP_LIMIT` backups of this host and runs only after a durable commit. Signatures travel
//! with their overlay (`NAME.sig`).

use crate::config::Config;
use crate::{durable, media, Error, IoResultExt};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The signature file beside `path` (`NAME.sig`).
pub fn sig_of(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

/// `YYYYmmddHHMMSS` (UTC) of a Unix time (times outside the calendar clamp to its ends).
pub fn timestamp(secs: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(if secs < 0 {
        time::OffsetDateTime::UNIX_EPOCH
    } else {
        time::PrimitiveDateTime::MAX.assume_utc()
    });
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Whether `name` is a backup (`*.<digits>.tar.gz*`, not a signature), of any host.
pub fn is_backup(name: &str) -> bool {
    if name.ends_with(".sig") {
        return false;
    }
    let Some(pos) = name.find(".tar.gz") else {
        return false;
    };
    let before = &name[..pos];
    let Some(dot) = before.rfind('.') else {
        return false;
    };
    let digits = &before[dot + 1..];
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && dot > 0
}

/// Whether `name` is a backup of `host`.
pub fn is_backup_of(name: &str, host: &str) -> bool {
    let Some(rest) = name.strip_prefix(host).and_then(|r| r.strip_prefix('.')) else {
        return false;
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    !digits.is_empty() && is_backup(name) && rest[digits.len()..].starts_with(".tar.gz")
}

/// The file names of `dir`, sorted.
pub fn names_in(dir: &Path) -> Result<Vec<String>, Error> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .at(dir)?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    v.sort();
    Ok(v)
}

/// Back up `dir/current` (and its `.sig`) under a fresh backup name; returns the name.
pub fn make_backup(
    dir: &Path,
    host: &str,
    current: &str,
    suffix: &str,
) -> Result<Option<String>, Error> {
    let cur = dir.join(current);
    let meta = match std::fs::metadata(&cur) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Io {
                path: cur,
                source: e,
            })
        }
    };
    let name = fresh_name(
        dir,
        host,
        std::os::unix::fs::MetadataExt::mtime(&meta),
        suffix,
    );
    link_or_copy(&cur, dir, &name)?;
    let sig = dir.join(format!("{current}.sig"));
    if sig.exists() {
        link_or_copy(&sig, dir, &format!("{name}.sig"))?;
    }
    durable::fsync_dir(dir)?;
    Ok(Some(name))
}

fn link_or_copy(src: &Path, dir: &Path, name: &str) -> Result<(), Error> {
    match std::fs::hard_link(src, dir.join(name)) {
        Ok(()) => Ok(()),
        // FAT and some FUSE filesystems have no hard links.
        Err(_) => durable::copy(src, dir, name),
    }
}

/// A fresh backup name for `host` at `mtime` (never one that exists, nor its `.sig`).
pub fn fresh_name(dir: &Path, host: &str, mtime: i64, suffix: &str) -> String {
    let stamp = timestamp(mtime);
    let mut name = format!("{host}.{stamp}.tar.gz{suffix}");
    let mut seq = 1;
    while dir.join(&name).exists() || dir.join(format!("{name}.sig")).exists() {
        name = format!("{host}.{stamp}{seq:02}.tar.gz{suffix}");
        seq += 1;
    }
    name
}

/// Delete all but the newest `limit` backups of `host` (and their signatures).
pub fn rotate(dir: &Path, host: &str, limit: usize) -> Result<Vec<String>, Error> {
    let backups: Vec<String> = names_in(dir)?
        .into_iter()
        .filter(|n| is_backup_of(n, host))
        .collect();
    let excess = backups.len().saturating_sub(limit);
    let mut removed = Vec::new();
    for n in &backups[..excess] {
        let p = dir.join(n);
        std::fs::remove_file(&p).at(&p)?;
        let _ = std::fs::remove_file(dir.join(format!("{n}.sig")));
        removed.push(n.clone());
    }
    if !removed.is_empty() {
        durable::fsync_dir(dir)?;
    }
    Ok(removed)
}

/// `list-backup [MEDIA]`: every host's backups (plain and encrypted), sorted.
pub fn list_backup(cfg: &Config, media: Option<&str>, out: &mut dyn Write) -> Result<(), Error> {
    let m = media.map(str::to_string).or_else(|| cfg.media.clone());
    let target = media::open(cfg.backupdir.as_deref(), m.as_deref(), false)?;
    for n in names_in(&target.dir)?.into_iter().filter(|n| is_backup(n)) {
        writeln!(out, "{n}").at("stdout")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_times() {
        assert_eq!(timestamp(0), "19700101000000");
        assert_eq!(timestamp(1_795_397_201), "20261123012641");
        assert_eq!(timestamp(951_782_400), "20000229000000");
        assert_eq!(timestamp(-1), "19691231235959");
        assert_eq!(timestamp(i64::MIN), "19700101000000");
        assert_eq!(timestamp(i64::MAX), "99991231235959");
        assert!(is_backup("h.20261122012641.tar.gz"));
        assert!(is_backup("h.2026112201264101.tar.gz.age"));
        assert!(!is_backup("h.20261122012641.tar.gz.sig"));
        assert!(!is_backup("h.apkovl.tar.gz"));
        assert!(is_backup_of("fw.lan.20261122012641.tar.gz", "fw.lan"));
        assert!(!is_backup_of("fw.lan.20261122012641.tar.gz", "fw"));
        assert!(!is_backup_of("other.20261122012641.tar.gz", "fw"));
    }

    #[test]
    fn backups_never_overwrite_and_rotate_per_host() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::write(d.join("h.apkovl.tar.gz"), "v1").unwrap();
        std::fs::write(d.join("h.apkovl.tar.gz.sig"), "s1").unwrap();
        std::fs::write(d.join("other.20200101000000.tar.gz"), "o").unwrap();
        let a = make_backup(d, "h", "h.apkovl.tar.gz", "").unwrap().unwrap();
        let b = make_backup(d, "h", "h.apkovl.tar.gz", "").unwrap().unwrap();
        assert_ne!(a, b);
        assert!(b.starts_with(&a[..a.len() - ".tar.gz".len()]), "{a} {b}");
        assert!(a < b, "lexical order stays chronological");
        assert_eq!(std::fs::read(d.join(&a)).unwrap(), b"v1");
        assert_eq!(std::fs::read(d.join(format!("{b}.sig"))).unwrap(), b"s1");
        assert_eq!(rotate(d, "h", 1).unwrap(), vec![a.clone()]);
        assert!(!d.join(format!("{a}.sig")).exists());
        assert!(
            d.join("other.20200101000000.tar.gz").exists(),
            "other hosts' backups are never touched"
        );
        assert_eq!(rotate(d, "h", 0).unwrap(), vec![b]);
    }
}
