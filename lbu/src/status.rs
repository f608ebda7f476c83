//! `status` (lbu/README.md, "status and diff"): compare the committed overlay with what a
//! commit would save now. Unlike upstream (regular files only, strictly newer mtime), every
//! member is compared by type, content digest, link target, mode and owner: `D` gone (listed
//! first, including package files deleted since), `A` new, `U` content, type or link target
//! changed, `M` only mode or owner changed. Mtimes alone mean nothing. Files lbu never saves
//! (its own secrets) are named on stderr with the reason. Neither `status` nor `diff` runs the
//! pre-package hooks: they belong to `commit` and `package`, as in Alpine.

use crate::build::snapshot;
use crate::config::Config;
use crate::password::Password;
use crate::wrap::{self, Wrap};
use crate::{hostname, media, Error, IoResultExt};
use overlays::{CreateOptions, Member, MemberKind};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

/// `status [-a] [-p PASSWORD] [-v] [MEDIA]`.
#[derive(Default)]
pub struct StatusOptions {
    /// Raw `apk audit --backup` output (`-a`).
    pub audit: bool,
    /// Password for an encrypted overlay (`-p`).
    pub password: Option<Password>,
    /// Verbose (`-v`): notes about files that are never saved.
    pub verbose: bool,
    /// Medium name under `/media` (default `LBU_MEDIA`).
    pub media: Option<String>,
}

/// One change line.
pub type Change = (char, String);

/// Compare the committed members and deletions (`old`) with the current ones (`new`).
pub fn changes(
    old: &[Member],
    old_del: &[String],
    new: &[Member],
    new_del: &[String],
) -> Vec<Change> {
    let newmap: HashMap<&str, &Member> = new.iter().map(|m| (m.name.as_str(), m)).collect();
    let oldmap: HashMap<&str, &Member> = old.iter().map(|m| (m.name.as_str(), m)).collect();
    let old_del: HashSet<&str> = old_del.iter().map(String::as_str).collect();
    let new_del_set: HashSet<&str> = new_del.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for m in old {
        if !newmap.contains_key(m.name.as_str()) {
            let slash = if m.kind == MemberKind::Dir { "/" } else { "" };
            out.push(('D', format!("{}{slash}", m.name)));
        }
    }
    for d in new_del {
        if !old_del.contains(d.as_str()) && !oldmap.contains_key(d.as_str()) {
            out.push(('D', d.clone()));
        }
    }
    for m in new {
        let letter = match oldmap.get(m.name.as_str()) {
            None => Some('A'),
            Some(o)
                if o.kind != m.kind
                    || o.link != m.link
                    || (m.kind == MemberKind::File && o.sha256 != m.sha256) =>
            {
                Some('U')
            }
            Some(o) if o.mode != m.mode || o.uid != m.uid || o.gid != m.gid => Some('M'),
            Some(_) => None,
        };
        if let Some(l) = letter {
            // Directories keep their trailing `/`, as in `lbu list`.
            let slash = if m.kind == MemberKind::Dir { "/" } else { "" };
            out.push((l, format!("{}{slash}", m.name)));
        }
    }
    // A package file the last commit deleted is back (it will be kept again).
    for d in old_del
        .iter()
        .filter(|d| !new_del_set.contains(**d) && !newmap.contains_key(**d))
    {
        out.push(('A', d.to_string()));
    }
    out
}

/// The committed overlay's gzip bytes, or `None` when there is none.
pub(crate) fn committed(
    cfg: &Config,
    dir: &Path,
    cli_password: Option<&str>,
) -> Result<Option<Vec<u8>>, Error> {
    let wrap = Wrap::resolve(cfg, false)?;
    let path = dir.join(format!("{}.apkovl.tar.gz{}", hostname(), wrap.suffix()));
    let data = match overlays::read_file(&path) {
        Ok(d) => d,
        Err(overlays::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e.into()),
    };
    let mut pw = None;
    wrap::open_bytes(cfg, &path, &data, &mut pw, cli_password).map(Some)
}

/// The medium to read (`MEDIA`, `LBU_MEDIA` or `LBU_BACKUPDIR`), never remounted.
pub(crate) fn target_media(cfg: &Config, media: Option<&str>) -> Result<media::Target, Error> {
    let m = media.map(str::to_string).or_else(|| cfg.media.clone());
    if cfg.backupdir.is_none() && m.is_none() {
        return Err(media::no_medium());
    }
    media::open(cfg.backupdir.as_deref(), m.as_deref(), false)
}

/// What a commit would save now (without running hooks), naming on stderr the secrets it
/// leaves out.
pub(crate) fn current(cfg: &Config) -> Result<overlays::Overlay, Error> {
    let (ov, excluded) = snapshot(
        cfg,
        &CreateOptions {
            allow_empty: true,
            ..Default::default()
        },
    )?;
    for e in excluded {
        eprintln!("excluded: {e}");
    }
    Ok(ov)
}

/// `status`.
pub fn status(cfg: &Config, a: &StatusOptions, out: &mut dyn Write) -> Result<(), Error> {
    if a.audit {
        let db = apk::db::Database::open(&cfg.root, &apk::db::OpenOptions::default())
            .map_err(overlays::Error::from)?;
        let rules = apk::protected::ProtectedPaths::load(&cfg.root);
        let entries = apk::audit::audit(&db, &rules, &apk::audit::AuditOptions::default())
            .map_err(overlays::Error::from)?;
        for e in entries {
            writeln!(out, "{} {}", e.status, e.path).at("stdout")?;
        }
        return Ok(());
    }
    let target = target_media(cfg, a.media.as_deref())?;
    let (old, old_del) =
        match committed(cfg, &target.dir, a.password.as_deref().map(String::as_str))? {
            Some(gz) => overlays::read_members(&gz)?,
            None => (Vec::new(), Vec::new()),
        };
    let now = current(cfg)?;
    let (new, new_del) = overlays::read_members(&now.bytes)?;
    for (l, p) in changes(&old, &old_del, &new, &new_del) {
        writeln!(out, "{l} {p}").at("stdout")?;
    }
    if a.verbose {
        notes(cfg);
    }
    Ok(())
}

/// Things a user should know that upstream kept silent about.
fn notes(cfg: &Config) {
    if cfg.backup_limit == 0 {
        eprintln!("note: BACKUP_LIMIT is 0: a commit keeps no previous overlay (set BACKUP_LIMIT=3 in lbu.conf)");
    }
    let Ok(db) = apk::db::Database::open(&cfg.root, &apk::db::OpenOptions::default()) else {
        return;
    };
    let owned = db.file_owners();
    let mut names: Vec<String> = std::fs::read_dir(cfg.root.join("etc/init.d"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    for n in names {
        let rel = format!("etc/init.d/{n}");
        let is_file = std::fs::symlink_metadata(cfg.root.join(&rel)).is_ok_and(|m| m.is_file());
        if is_file && !owned.contains_key(&rel) {
            eprintln!(
                "note: {rel} is a regular file in etc/init.d and is never saved (@etc/init.d)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, kind: MemberKind, mode: u32, sha: u8, link: &str) -> Member {
        Member {
            name: name.into(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 1,
            link: link.into(),
            sha256: [sha; 32],
            size: 1,
        }
    }

    #[test]
    fn letters() {
        let old = vec![
            m("etc/a", MemberKind::File, 0o644, 1, ""),
            m("etc/gone", MemberKind::File, 0o644, 1, ""),
            m("etc/mode", MemberKind::File, 0o644, 1, ""),
            m("etc/link", MemberKind::Symlink, 0o777, 0, "x"),
            m("etc/same", MemberKind::File, 0o644, 3, ""),
        ];
        let mut touched = m("etc/same", MemberKind::File, 0o644, 3, "");
        touched.mtime = 99;
        let new = vec![
            m("etc/a", MemberKind::File, 0o644, 2, ""),
            m("etc/mode", MemberKind::File, 0o600, 1, ""),
            m("etc/link", MemberKind::Symlink, 0o777, 0, "y"),
            touched,
            m("etc/new", MemberKind::File, 0o644, 1, ""),
        ];
        let got = changes(
            &old,
            &["etc/was-deleted".into()],
            &new,
            &["etc/motd".into()],
        );
        let want: Vec<Change> = vec![
            ('D', "etc/gone".into()),
            ('D', "etc/motd".into()),
            ('U', "etc/a".into()),
            ('M', "etc/mode".into()),
            ('U', "etc/link".into()),
            ('A', "etc/new".into()),
            ('A', "etc/was-deleted".into()),
        ];
        assert_eq!(got, want);
        assert!(changes(&new, &[], &new, &[]).is_empty());
    }
}
