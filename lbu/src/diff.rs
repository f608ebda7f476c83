//! `diff` (lbu/README.md, "status and diff"): a unified diff between the committed overlay and
//! what a commit would save now.
//!
//! No overlay is ever unpacked into a tree here: the contents of the changed files are read
//! from both archives ([`overlays::read_contents`], which refuses member names outside the tree,
//! so a member `../../etc/shadow` makes `diff` fail instead of printing the host's file), each
//! pair is written into a private (0700) temporary directory under numbered names, removed on
//! exit (also on a signal), and `diff -u` prints it labelled `a/NAME` and `b/NAME`. Symlink and
//! metadata changes get one line each.

use crate::config::Config;
use crate::password::Password;
use crate::status::{committed, current, target_media};
use crate::{cleanup, Error, IoResultExt};
use overlays::{Member, MemberKind};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `diff [-p PASSWORD] [MEDIA]`.
#[derive(Default)]
pub struct DiffOptions {
    /// Password for an encrypted overlay (`-p`).
    pub password: Option<Password>,
    /// Medium name under `/media` (default `LBU_MEDIA`).
    pub media: Option<String>,
}

/// `diff`: returns diff's exit status (0 same, 1 different, 2 trouble).
pub fn diff(cfg: &Config, a: &DiffOptions) -> Result<u8, Error> {
    let target = target_media(cfg, a.media.as_deref())?;
    let old = committed(cfg, &target.dir, a.password.as_deref().map(String::as_str))?;
    let now = current(cfg)?;
    let (old_m, _) = match &old {
        Some(gz) => overlays::read_members(gz)?,
        None => (Vec::new(), Vec::new()),
    };
    let (new_m, _) = overlays::read_members(&now.bytes)?;
    let tmp = tempfile::Builder::new()
        .prefix("lbu.")
        .tempdir()
        .at(std::env::temp_dir())?;
    let id = cleanup::register(cleanup::Action::RemoveDir(tmp.path().to_path_buf()));
    let sides = Sides {
        dir: tmp.path(),
        old: old.as_deref(),
        new: &now.bytes,
    };
    let code = diff_members(&sides, &old_m, &new_m);
    cleanup::run(id);
    drop(target);
    code
}

/// The two archives being compared and the private directory their changed files go to.
struct Sides<'a> {
    dir: &'a Path,
    old: Option<&'a [u8]>,
    new: &'a [u8],
}

fn has_content(m: Option<&&Member>) -> bool {
    m.is_some_and(|m| matches!(m.kind, MemberKind::File | MemberKind::HardLink))
}

fn same_content(o: Option<&&Member>, w: Option<&&Member>) -> bool {
    match (o, w) {
        (Some(a), Some(b)) => a.kind == b.kind && a.sha256 == b.sha256 && a.link == b.link,
        _ => false,
    }
}

fn describe(m: Option<&&Member>) -> String {
    match m {
        None => "(absent)".to_string(),
        Some(m) if m.kind == MemberKind::Symlink => format!("symlink -> {}", m.link),
        Some(m) => format!("mode {:o} owner {}:{}", m.mode, m.uid, m.gid),
    }
}

/// Member by member: `diff -u` for file contents (GNU `diff -ruN` fails on a symlink present on
/// one side only), one line for symlink and metadata changes.
fn diff_members(sides: &Sides<'_>, old: &[Member], new: &[Member]) -> Result<u8, Error> {
    let oldmap: HashMap<&str, &Member> = old.iter().map(|m| (m.name.as_str(), m)).collect();
    let newmap: HashMap<&str, &Member> = new.iter().map(|m| (m.name.as_str(), m)).collect();
    let mut names: Vec<&str> = oldmap.keys().chain(newmap.keys()).copied().collect();
    names.sort_unstable();
    names.dedup();
    // The files whose contents differ, read from both archives at once.
    let textual: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| {
            let (o, w) = (oldmap.get(n), newmap.get(n));
            (has_content(o) || has_content(w))
                && !same_content(o, w)
                && o.is_none_or(|m| m.kind != MemberKind::Symlink)
                && w.is_none_or(|m| m.kind != MemberKind::Symlink)
        })
        .collect();
    let old_files = match sides.old {
        Some(gz) => overlays::read_contents(gz, &textual)?,
        None => HashMap::new(),
    };
    let new_files = overlays::read_contents(sides.new, &textual)?;
    let textual: HashSet<&str> = textual.into_iter().collect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut code = 0u8;
    for (i, n) in names.iter().enumerate() {
        let (o, w) = (oldmap.get(n), newmap.get(n));
        if textual.contains(n) {
            let a = side_file(sides.dir, &format!("a{i}"), old_files.get(*n))?;
            let b = side_file(sides.dir, &format!("b{i}"), new_files.get(*n))?;
            out.flush().at("stdout")?;
            let st = std::process::Command::new("diff")
                .arg("-u")
                .arg("--label")
                .arg(format!("a/{n}"))
                .arg("--label")
                .arg(format!("b/{n}"))
                .arg(&a)
                .arg(&b)
                .status()
                .map_err(|e| Error::Diff(e.to_string()))?;
            for p in [a, b] {
                if p.starts_with(sides.dir) {
                    let _ = std::fs::remove_file(p);
                }
            }
            match st.code() {
                Some(0) => {}
                Some(1) => code = code.max(1),
                _ => code = 2,
            }
        } else if !same_content(o, w) || describe(o) != describe(w) {
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

/// One side's content as a file under a numbered name (a member name never becomes a path),
/// or `/dev/null` when that side has none.
fn side_file(dir: &Path, name: &str, content: Option<&Vec<u8>>) -> Result<PathBuf, Error> {
    let Some(c) = content else {
        return Ok("/dev/null".into());
    };
    let p = dir.join(name);
    std::fs::write(&p, c).at(&p)?;
    Ok(p)
}
