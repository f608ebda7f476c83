//! The include/exclude list `etc/apk/protected_paths.d/lbu.list` (lbu/README.md, "Selection"),
//! and `lbu list`: `+path` includes,
//! `-path` excludes, paths stored without leading `/` and otherwise verbatim. It is an apk
//! protected-paths file, so apk's rules give it meaning; here we only edit it. Lines are compared
//! as exact bytes (upstream's shell `read` loop mangled backslashes and blanks), and rewrites are
//! atomic.

use crate::{Error, IoResultExt};
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub use overlays::select::LBU_LIST;

/// The list file of a root.
pub fn list_path(root: &Path) -> PathBuf {
    root.join(LBU_LIST)
}

fn read_lines(path: &Path) -> Result<Vec<Vec<u8>>, Error> {
    match std::fs::read(path) {
        Ok(b) => Ok(b
            .split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::Io {
            path: path.into(),
            source: e,
        }),
    }
}

fn write_lines(path: &Path, lines: &[Vec<u8>]) -> Result<(), Error> {
    let mut data = Vec::new();
    for l in lines {
        data.extend_from_slice(l);
        data.push(b'\n');
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).at(dir)?;
    }
    apk::root::atomic_write(path, &data, 0o644).at(path)
}

fn strip(p: &OsString) -> Vec<u8> {
    let b = p.as_bytes();
    let start = b.iter().position(|&c| c != b'/').unwrap_or(b.len());
    b[start..].to_vec()
}

/// `include PATH...` / `exclude PATH...`.
#[derive(Default)]
pub struct EditOptions {
    /// Remove the entries instead of adding them (`-r`).
    pub remove: bool,
    /// Say what changed (`-v`).
    pub verbose: bool,
    /// Files or directories (or globs, stored verbatim).
    pub paths: Vec<OsString>,
}

/// `list`: the files a commit would save (lbu's own secrets left out, and named on stderr).
pub fn list(cfg: &crate::config::Config, out: &mut dyn Write) -> Result<(), Error> {
    let mut sel = overlays::selection(&cfg.root)?;
    for e in crate::secrets::exclude(cfg, &mut sel) {
        eprintln!("excluded: {e}");
    }
    for n in sel.names {
        writeln!(out, "{n}").at("stdout")?;
    }
    Ok(())
}

/// `include`/`exclude`: add `sign`+path for each path (unless `remove`), then drop the opposite
/// entry; with `remove`, only drop `sign`+path. Messages go to `out` when `verbose`.
pub fn edit(root: &Path, sign: u8, o: &EditOptions, out: &mut dyn Write) -> Result<(), Error> {
    let (paths, remove, verbose) = (&o.paths, o.remove, o.verbose);
    let path = list_path(root);
    let shown = path.display().to_string();
    let mut lines = read_lines(&path)?;
    let mut say = |s: String| -> Result<(), Error> {
        if verbose {
            writeln!(out, "{s}").at("stdout")?;
        }
        Ok(())
    };
    let names: Vec<Vec<u8>> = paths.iter().map(strip).collect();
    let delete = |lines: &mut Vec<Vec<u8>>,
                  sign: u8,
                  say: &mut dyn FnMut(String) -> Result<(), Error>|
     -> Result<(), Error> {
        for n in &names {
            let mut entry = vec![sign];
            entry.extend_from_slice(n);
            let shown_n = String::from_utf8_lossy(n);
            if lines.contains(&entry) {
                say(format!("Removing {shown_n} from {shown}."))?;
                lines.retain(|l| l != &entry);
            } else {
                say(format!("{shown_n} is not in {shown}"))?;
            }
        }
        Ok(())
    };
    if remove {
        delete(&mut lines, sign, &mut say)?;
    } else {
        for n in &names {
            let mut entry = vec![sign];
            entry.extend_from_slice(n);
            let shown_n = String::from_utf8_lossy(n);
            if lines.contains(&entry) {
                say(format!("{shown_n} is already in {shown}."))?;
            } else {
                say(format!("Adding {shown_n} to {shown}."))?;
                lines.push(entry);
            }
        }
        let other = if sign == b'+' { b'-' } else { b'+' };
        delete(&mut lines, other, &mut say)?;
    }
    write_lines(&path, &lines)
}

/// `include -l` / `exclude -l`: the entries with this sign, without it.
pub fn show(root: &Path, sign: u8, verbose: bool, out: &mut dyn Write) -> Result<(), Error> {
    let lines = read_lines(&list_path(root))?;
    if verbose {
        writeln!(
            out,
            "{} files:",
            if sign == b'+' { "Include" } else { "Exclude" }
        )
        .at("stdout")?;
    }
    for l in lines.iter().filter(|l| l.first() == Some(&sign)) {
        out.write_all(&l[1..])
            .and_then(|_| out.write_all(b"\n"))
            .at("stdout")?;
    }
    Ok(())
}
