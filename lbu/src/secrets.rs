//! Files lbu never saves: its own private keys and passwords (lbu/README.md, "What is never
//! saved").
//!
//! `SIGNING_KEY`, `PASSWORD_FILE` and `AGE_IDENTITY` name secrets that lbu reads. Whatever
//! `lbu include` says, they are taken out of the selection, because an overlay travels: it sits
//! on the medium, in backups and on servers, and a signing key inside the overlay it signs
//! protects nothing. A selected file is one of them when its name is the configured path seen
//! inside the root, or when it is the same file (device and inode: a hard link or the target of
//! a symlink in the configured path). `lbu status` and `lbu list` say which files were left out
//! and why.

use crate::config::Config;
use overlays::Selection;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A configured secret.
struct Configured<'a> {
    path: &'a Path,
    variable: &'static str,
    what: &'static str,
}

fn configured(cfg: &Config) -> Vec<Configured<'_>> {
    [
        (&cfg.signing_key, "SIGNING_KEY", "a private key"),
        (&cfg.password_file, "PASSWORD_FILE", "a password"),
        (&cfg.age_identity, "AGE_IDENTITY", "a private key"),
    ]
    .into_iter()
    .filter_map(|(p, variable, what)| {
        p.as_deref().map(|path| Configured {
            path,
            variable,
            what,
        })
    })
    .collect()
}

/// A selected file left out of the overlay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Excluded {
    /// Its name in the overlay (relative to the root).
    pub name: String,
    /// The variable that names it.
    pub variable: &'static str,
    /// What it holds.
    pub what: &'static str,
}

impl std::fmt::Display for Excluded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is never saved ({} is {})",
            self.name, self.variable, self.what
        )
    }
}

/// The names under which `path` appears inside `root`: the path with `root` stripped (a path
/// into the root from outside), and the path read as an absolute path of the booted system.
fn names_in_root(root: &Path, path: &Path) -> Vec<String> {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = Vec::new();
    if root != Path::new("/") {
        if let Ok(rel) = abs.strip_prefix(root) {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    if let Ok(rel) = abs.strip_prefix("/") {
        out.push(rel.to_string_lossy().into_owned());
    }
    out
}

/// Remove the configured secrets from `sel`; returns what was removed, in selection order.
pub fn exclude(cfg: &Config, sel: &mut Selection) -> Vec<Excluded> {
    let secrets = configured(cfg);
    if secrets.is_empty() {
        return Vec::new();
    }
    // Every name and every (device, inode) under which a secret may be selected.
    let mut by_name: Vec<(String, usize)> = Vec::new();
    let mut by_inode: Vec<((u64, u64), usize)> = Vec::new();
    let in_root = apk::root::Root::open(&cfg.root).ok();
    for (i, s) in secrets.iter().enumerate() {
        let names = names_in_root(&cfg.root, s.path);
        let mut places: Vec<PathBuf> = vec![s.path.to_path_buf()];
        places.extend(names.iter().map(|n| cfg.root.join(n)));
        for p in places {
            if let Ok(m) = std::fs::metadata(&p) {
                by_inode.push(((m.dev(), m.ino()), i));
            }
        }
        // A name inside the root may be a link that resolves inside the root (`--root DIR`: an
        // absolute link means DIR/target, not the build host's file): that file is the secret.
        if let Some(r) = &in_root {
            for n in &names {
                if let Ok(m) = r.open_read(n).and_then(|f| f.metadata()) {
                    by_inode.push(((m.dev(), m.ino()), i));
                }
            }
        }
        by_name.extend(names.into_iter().map(|n| (n, i)));
    }
    let mut excluded = Vec::new();
    let mut seen = HashSet::new();
    sel.names.retain(|n| {
        if n.ends_with('/') {
            return true;
        }
        let hit = by_name
            .iter()
            .find(|(name, _)| name == n)
            .map(|(_, i)| *i)
            .or_else(|| {
                let m = std::fs::symlink_metadata(cfg.root.join(n)).ok()?;
                if !m.is_file() {
                    return None;
                }
                by_inode
                    .iter()
                    .find(|(id, _)| *id == (m.dev(), m.ino()))
                    .map(|(_, i)| *i)
            });
        match hit {
            Some(i) => {
                if seen.insert(n.clone()) {
                    excluded.push(Excluded {
                        name: n.clone(),
                        variable: secrets[i].variable,
                        what: secrets[i].what,
                    });
                }
                false
            }
            None => true,
        }
    });
    excluded
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn secrets_are_found_by_name_and_by_inode() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc/lbu")).unwrap();
        std::fs::create_dir_all(root.join("root")).unwrap();
        std::fs::write(root.join("etc/lbu/overlay.key"), "k").unwrap();
        std::fs::hard_link(root.join("etc/lbu/overlay.key"), root.join("root/copy.key")).unwrap();
        std::fs::write(root.join("etc/lbu/pw"), "p").unwrap();
        std::fs::write(root.join("etc/other.conf"), "o").unwrap();
        let host_identity = t.path().join("identity");
        std::fs::write(&host_identity, "i").unwrap();
        std::os::unix::fs::symlink(&host_identity, root.join("etc/lbu/identity-link")).unwrap();
        let conf = format!(
            "SIGNING_KEY=/etc/lbu/overlay.key\nPASSWORD_FILE={}/etc/lbu/pw\nAGE_IDENTITY={}\n",
            root.display(),
            host_identity.display()
        );
        let cfg = Config::resolve(&root, &HashMap::new(), Some(&conf));
        let mut sel = Selection {
            names: [
                "etc/",
                "etc/lbu/overlay.key",
                "etc/other.conf",
                "root/copy.key",
                "etc/lbu/pw",
                "etc/lbu/identity-link",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            deletions: vec![],
        };
        let ex = exclude(&cfg, &mut sel);
        assert_eq!(
            sel.names,
            vec!["etc/", "etc/other.conf", "etc/lbu/identity-link"],
            "a symlink to a secret is no secret"
        );
        let shown: Vec<String> = ex.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "etc/lbu/overlay.key is never saved (SIGNING_KEY is a private key)",
                "root/copy.key is never saved (SIGNING_KEY is a private key)",
                "etc/lbu/pw is never saved (PASSWORD_FILE is a password)",
            ]
        );
    }

    /// Review finding: with `--root DIR`, `SIGNING_KEY=/etc/lbu/overlay.key` being an absolute
    /// link to `/etc/ssl/private/ovl.pem` was followed on the build host, so the root's own
    /// `etc/ssl/private/ovl.pem` (the real key) was neither matched by name nor by inode.
    #[test]
    fn a_link_to_the_secret_resolves_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc/lbu")).unwrap();
        std::fs::create_dir_all(root.join("etc/ssl/private")).unwrap();
        std::fs::write(root.join("etc/ssl/private/ovl.pem"), "k").unwrap();
        std::os::unix::fs::symlink("/etc/ssl/private/ovl.pem", root.join("etc/lbu/overlay.key"))
            .unwrap();
        let cfg = Config::resolve(
            &root,
            &HashMap::new(),
            Some("SIGNING_KEY=/etc/lbu/overlay.key\n"),
        );
        let mut sel = Selection {
            names: vec!["etc/ssl/private/ovl.pem".into(), "etc/hostname".into()],
            deletions: vec![],
        };
        let ex = exclude(&cfg, &mut sel);
        assert_eq!(sel.names, vec!["etc/hostname"]);
        assert_eq!(ex.len(), 1);
    }
}
