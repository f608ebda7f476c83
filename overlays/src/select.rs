//! Which files of a root go into an apkovl (overlays/README.md, "Archive format"): `apk audit --backup --recursive
//! --check-permissions` through the apk core (built-in rules `+etc`, `@etc/init.d`, `!etc/apk`,
//! then every `etc/apk/protected_paths.d/*.list`), plus the root-level includes of `lbu.list`
//! that apk cannot match (alpine-conf 3.22, step 2), duplicates removed keeping the first.
//! Because `!etc/apk` is a built-in rule, `etc/apk/world`, `repositories`, `arch`, `keys/*` and
//! the `protected_paths.d/*.list` files are always selected unless the user excludes them.
//!
//! Nothing under `.modloop/` (the kernel modules the init mounts from the medium) is ever selected.
//!
//! The project adds the package-owned configuration files the user deleted, which Alpine cannot
//! express; they travel in the deletion manifest ([`crate::deleted`]), never as members.

use crate::deleted::MANIFEST;
use crate::Error;
use apk::audit::{AuditMode, AuditOptions};
use apk::db::{Database, OpenOptions};
use std::collections::HashSet;
use std::path::Path;

/// The list file lbu edits (an apk protected-paths file).
pub const LBU_LIST: &str = "etc/apk/protected_paths.d/lbu.list";

/// The files of an overlay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Relative names in archive order; directories end with `/`.
    pub names: Vec<String>,
    /// Package-owned configuration files that no longer exist, sorted.
    pub deletions: Vec<String>,
}

/// Select the overlay's files under `root` (which must hold an installed database).
pub fn selection(root: &Path) -> Result<Selection, Error> {
    let db = Database::open(root, &OpenOptions::default())?;
    // `apk audit --backup --recursive --check-permissions`, as apk::audit::backup_selection, but
    // an unreadable file (`e`) is an error: upstream's tar then silently dropped it.
    let rules = apk::protected::ProtectedPaths::load(root);
    let opts = AuditOptions {
        mode: AuditMode::Backup,
        recursive: true,
        check_permissions: true,
        paths: Vec::new(),
    };
    let entries = apk::audit::audit(&db, &rules, &opts)?;
    if let Some(e) = entries.iter().find(|e| e.status == 'e') {
        return Err(Error::Unreadable(root.join(&e.path)));
    }
    let mut names: Vec<String> = entries.into_iter().map(|e| e.path).collect();
    names.extend(root_level_includes(root));
    let mut seen = HashSet::new();
    // The manifest is regenerated on every commit; a copy left in the root (Alpine's init just
    // extracts it) must not be archived as an ordinary file.
    // The modloop (`/.modloop`, mounted read-only by the init from the signed squashfs on the
    // medium) is never saved, even when `lbu include` names it: it comes back at every boot and
    // is hundreds of megabytes.
    names.retain(|n| n != MANIFEST && !in_modloop(n) && seen.insert(n.clone()));
    let deletions = apk::audit::deleted_config_files(&db);
    Ok(Selection { names, deletions })
}

/// Whether a selected name is the modloop's mount point or beneath it.
fn in_modloop(name: &str) -> bool {
    let top = name.split('/').next().unwrap_or("");
    top == MODLOOP_DIR
}

/// The modloop's mount point in the root (Alpine's `/.modloop`).
pub const MODLOOP_DIR: &str = ".modloop";

/// `+X` entries of `lbu.list` naming a symlink or a non-directory that exists (overlays/README.md, "Archive format").
/// Globs are left to apk's matching: the shell test upstream does not expand them either.
pub fn root_level_includes(root: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read(root.join(LBU_LIST)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.split(|&c| c == b'\n') {
        let Some(rest) = line.strip_prefix(b"+") else {
            continue;
        };
        let Ok(path) = std::str::from_utf8(rest) else {
            continue;
        };
        let path = path.trim_start_matches('/');
        if path.is_empty() || path.contains(['*', '?', '[']) || path.split('/').any(|c| c == "..") {
            continue;
        }
        match std::fs::symlink_metadata(root.join(path)) {
            Ok(m) if !m.is_dir() => out.push(path.to_string()),
            _ => {}
        }
    }
    out
}
