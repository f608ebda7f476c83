//! Backups of replaced overlays and the durable file operations behind them (lbu.md §6 step 5,
//! §8.3-8.4, §10.1 #2, #5, #9, #10).
//!
//! A backup is `HOST.<UTC mtime YYYYmmddHHMMSS>.tar.gz[.<cipher>]`, made as a hard link to the
//! current overlay (or a copy where the filesystem has none, e.g. FAT) *before* the new overlay
//! is renamed over the old one. An existing backup is never overwritten: two more digits are
//! appended (`...SS01`), which keeps lexical order chronological. Rotation keeps the newest
//! `BACKUP_LIMIT` backups of this host and runs only after a durable commit. Signatures travel
//! with their overlay (`NAME.sig`).

use crate::cli::RevertArgs;
use crate::config::Config;
use crate::{cleanup, hostname, media, Error, IoResultExt};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `fsync` a directory so renames and new names in it are durable.
pub fn fsync_dir(dir: &Path) -> Result<(), Error> {
    let f = std::fs::File::open(dir).at(dir)?;
    match f.sync_all() {
        // Some filesystems (and FUSE) cannot fsync directories; nothing more can be done there.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        r => r.at(dir),
    }
}

/// Write `data` to a new temporary file in `dir` (a name that never matches the boot's
/// `*.apkovl.tar.gz*` glob), fsynced; removed by [`cleanup`] unless forgotten.
pub fn write_temp(dir: &Path, data: &[u8]) -> Result<(PathBuf, u64), Error> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!(".lbu-{}-{n}.tmp", std::process::id()));
    let id = cleanup::register(cleanup::Action::RemoveFile(path.clone()));
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(data)?;
        f.sync_all()
    })();
    if let Err(e) = res {
        cleanup::run(id);
        return Err(Error::Io { path, source: e });
    }
    Ok((path, id))
}

/// Rename a finished temporary file to `dir/name`, then fsync the renamed file and the
/// directory. The file fsync matters on FAT, where the directory slot of a renamed file is only
/// written with the file's own metadata (fsyncing the directory does not write it).
pub fn install(tmp: &Path, id: u64, dir: &Path, name: &str) -> Result<(), Error> {
    let dst = dir.join(name);
    std::fs::rename(tmp, &dst).at(&dst)?;
    cleanup::forget(id);
    std::fs::File::open(&dst)
        .and_then(|f| f.sync_all())
        .at(&dst)?;
    fsync_dir(dir)
}

/// Copy `src` to `dir/name` durably (temp, fsync, rename, fsync the directory).
pub fn durable_copy(src: &Path, dir: &Path, name: &str) -> Result<(), Error> {
    let data = std::fs::read(src).at(src)?;
    let (tmp, id) = write_temp(dir, &data)?;
    install(&tmp, id, dir, name)
}

/// `YYYYmmddHHMMSS` (UTC) of a Unix time.
pub fn timestamp(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
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

fn names_in(dir: &Path) -> Result<Vec<String>, Error> {
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
    let mtime = std::os::unix::fs::MetadataExt::mtime(&meta);
    let stamp = timestamp(mtime);
    let mut name = format!("{host}.{stamp}.tar.gz{suffix}");
    let mut seq = 1;
    while dir.join(&name).exists() || dir.join(format!("{name}.sig")).exists() {
        name = format!("{host}.{stamp}{seq:02}.tar.gz{suffix}");
        seq += 1;
    }
    link_or_copy(&cur, dir, &name)?;
    let sig = dir.join(format!("{current}.sig"));
    if sig.exists() {
        link_or_copy(&sig, dir, &format!("{name}.sig"))?;
    }
    fsync_dir(dir)?;
    Ok(Some(name))
}

fn link_or_copy(src: &Path, dir: &Path, name: &str) -> Result<(), Error> {
    match std::fs::hard_link(src, dir.join(name)) {
        Ok(()) => Ok(()),
        // FAT and some FUSE filesystems have no hard links.
        Err(_) => durable_copy(src, dir, name),
    }
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
        fsync_dir(dir)?;
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

/// `revert REVISION [MEDIA]`: copy a backup over the current overlay (after backing that up);
/// the backup stays in the history.
pub fn revert(cfg: &Config, a: &RevertArgs) -> Result<(), Error> {
    let rev = &a.revision;
    if rev.is_empty() || rev.contains('/') || rev.starts_with('.') {
        return Err(Error::BadRevision(rev.clone()));
    }
    let m = a.media.clone().or_else(|| cfg.media.clone());
    let target = media::open(cfg.backupdir.as_deref(), m.as_deref(), true)?;
    let dir = &target.dir;
    let src = dir.join(rev);
    if !src.is_file() {
        return Err(Error::NotFound(src));
    }
    let host = hostname();
    let suffix = match rev.find(".tar.gz") {
        Some(p) if is_backup(rev) => rev[p + ".tar.gz".len()..].to_string(),
        _ => return Err(Error::BadRevision(rev.clone())),
    };
    let current = format!("{host}.apkovl.tar.gz{suffix}");
    let data = std::fs::read(&src).at(&src)?;
    if suffix.is_empty() {
        overlays::read_members(&data, 1 << 30).map_err(|e| Error::Verify {
            path: src.clone(),
            reason: e.to_string(),
        })?;
    }
    if let Some(b) = make_backup(dir, &host, &current, &suffix)? {
        if a.verbose {
            eprintln!("Creating backup {}", dir.join(b).display());
        }
    }
    if a.verbose {
        eprintln!("Reverting to {rev}");
    }
    let sig = dir.join(format!("{rev}.sig"));
    durable_copy(&src, dir, &current)?;
    if sig.is_file() {
        durable_copy(&sig, dir, &format!("{current}.sig"))?;
    } else if dir.join(format!("{current}.sig")).exists() {
        let p = dir.join(format!("{current}.sig"));
        std::fs::remove_file(&p).at(&p)?;
        fsync_dir(dir)?;
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
