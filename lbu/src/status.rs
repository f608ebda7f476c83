//! `status` and `diff` (lbu.md §8.2, §10.3): compare the committed overlay with what a commit
//! would save now. Unlike upstream (regular files only, strictly newer mtime), every member is
//! compared by type, content digest, link target, mode and owner:
//! `D` gone (listed first, including package files deleted since), `A` new, `U` content, type or
//! link target changed, `M` only mode or owner changed. Mtimes alone mean nothing.
//! `diff` unpacks both overlays into a private (0700) temporary directory, removed on exit, and
//! prints `diff -u` output per changed file (paths `a/...`, `b/...`) plus one line per symlink or
//! metadata change.

use crate::cli::{DiffArgs, StatusArgs};
use crate::config::Config;
use crate::wrap::{self, Wrap};
use crate::{cleanup, hostname, media, Error, IoResultExt};
use overlays::{CreateOptions, Member, MemberKind};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

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
fn committed(
    cfg: &Config,
    dir: &Path,
    cli_password: Option<&str>,
) -> Result<Option<Vec<u8>>, Error> {
    let wrap = Wrap::resolve(cfg, false)?;
    let path = dir.join(format!("{}.apkovl.tar.gz{}", hostname(), wrap.suffix()));
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Io { path, source: e }),
    };
    let mut pw = None;
    wrap::open_bytes(cfg, &path, &data, &mut pw, cli_password).map(Some)
}

fn target_media(cfg: &Config, media: Option<&str>) -> Result<media::Target, Error> {
    let m = media.map(str::to_string).or_else(|| cfg.media.clone());
    if cfg.backupdir.is_none() && m.is_none() {
        return Err(Error::NoMedia);
    }
    media::open(cfg.backupdir.as_deref(), m.as_deref(), false)
}

fn current(cfg: &Config) -> Result<overlays::Overlay, Error> {
    crate::hooks::run(&cfg.root, crate::hooks::PRE)?;
    Ok(overlays::create(
        &cfg.root,
        &CreateOptions {
            allow_empty: true,
            ..Default::default()
        },
    )?)
}

/// `status [-a] [-v] [MEDIA]`.
pub fn status(cfg: &Config, a: &StatusArgs, out: &mut dyn Write) -> Result<(), Error> {
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
    let (old, old_del) = match committed(cfg, &target.dir, a.password.as_deref())? {
        Some(gz) => overlays::read_members(&gz, 1 << 32)?,
        None => (Vec::new(), Vec::new()),
    };
    let now = current(cfg)?;
    let (new, new_del) = overlays::read_members(&now.bytes, 1 << 32)?;
    for (l, p) in changes(&old, &old_del, &new, &new_del) {
        writeln!(out, "{l} {p}").at("stdout")?;
    }
    if a.verbose {
        notes(cfg);
    }
    Ok(())
}

/// Things a user should know that upstream kept silent about (lbu.md §10.3).
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

/// `diff [MEDIA]`: returns diff's exit status.
pub fn diff(cfg: &Config, a: &DiffArgs) -> Result<u8, Error> {
    let target = target_media(cfg, a.media.as_deref())?;
    let old = committed(cfg, &target.dir, a.password.as_deref())?;
    let now = current(cfg)?;
    let tmp = tempfile::Builder::new()
        .prefix("lbu.")
        .tempdir()
        .at(std::env::temp_dir())?;
    let id = cleanup::register(cleanup::Action::RemoveDir(tmp.path().to_path_buf()));
    let policy = overlays::ApplyPolicy {
        allow_devices: true,
        allow_setid: true,
        ..Default::default()
    };
    for (sub, gz) in [("a", old.as_deref()), ("b", Some(now.bytes.as_slice()))] {
        let d = tmp.path().join(sub);
        std::fs::create_dir(&d).at(&d)?;
        if let Some(gz) = gz {
            overlays::apply(gz, &d, &policy)?;
        }
    }
    let (old_m, _) = match &old {
        Some(gz) => overlays::read_members(gz, 1 << 32)?,
        None => (Vec::new(), Vec::new()),
    };
    let (new_m, _) = overlays::read_members(&now.bytes, 1 << 32)?;
    let code = diff_trees(tmp.path(), &old_m, &new_m)?;
    cleanup::run(id);
    drop(target);
    Ok(code)
}

/// Unified diff of the unpacked trees `dir/a` and `dir/b`, member by member: `diff -u` for file
/// contents (GNU `diff -ruN` fails on a symlink present on one side only), one line for symlink
/// and metadata changes. Returns 0 (same), 1 (different) or 2 (trouble), as diff does.
fn diff_trees(dir: &Path, old: &[Member], new: &[Member]) -> Result<u8, Error> {
    let oldmap: HashMap<&str, &Member> = old.iter().map(|m| (m.name.as_str(), m)).collect();
    let newmap: HashMap<&str, &Member> = new.iter().map(|m| (m.name.as_str(), m)).collect();
    let mut names: Vec<&str> = oldmap.keys().chain(newmap.keys()).copied().collect();
    names.sort_unstable();
    names.dedup();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut code = 0u8;
    let content = |m: Option<&&Member>| {
        m.is_some_and(|m| matches!(m.kind, MemberKind::File | MemberKind::HardLink))
    };
    for n in names {
        let (o, w) = (oldmap.get(n), newmap.get(n));
        let describe = |m: Option<&&Member>| match m {
            None => "(absent)".to_string(),
            Some(m) if m.kind == MemberKind::Symlink => format!("symlink -> {}", m.link),
            Some(m) => format!("mode {:o} owner {}:{}", m.mode, m.uid, m.gid),
        };
        let same_content = match (o, w) {
            (Some(a), Some(b)) => a.kind == b.kind && a.sha256 == b.sha256 && a.link == b.link,
            _ => false,
        };
        if (content(o) || content(w))
            && !same_content
            && o.is_none_or(|m| m.kind != MemberKind::Symlink)
            && w.is_none_or(|m| m.kind != MemberKind::Symlink)
        {
            let path = |side: &str, m: Option<&&Member>| {
                if content(m) {
                    dir.join(side).join(n)
                } else {
                    "/dev/null".into()
                }
            };
            out.flush().at("stdout")?;
            let st = std::process::Command::new("diff")
                .arg("-u")
                .arg("--label")
                .arg(format!("a/{n}"))
                .arg("--label")
                .arg(format!("b/{n}"))
                .arg(path("a", o))
                .arg(path("b", w))
                .status()
                .map_err(|e| Error::Diff(e.to_string()))?;
            match st.code() {
                Some(0) => {}
                Some(1) => code = code.max(1),
                _ => code = 2,
            }
        } else if !same_content || describe(o) != describe(w) {
            if o.is_some_and(|m| m.kind == MemberKind::Dir)
                && w.is_some_and(|m| m.kind == MemberKind::Dir)
                && describe(o) == describe(w)
            {
                continue;
            }
            writeln!(
                out,
                "Changed a/{n} ({}) -> b/{n} ({})",
                describe(o),
                describe(w)
            )
            .at("stdout")?;
            code = code.max(1);
        }
    }
    Ok(code)
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
