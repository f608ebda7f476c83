//! Warnings when the configuration is weaker than the README's advice (lbu/README.md, "Trust"):
//! printed by `commit`, `package` and `revert` before anything is written, never fatal.

use crate::config::{Config, CONF};
use crate::wrap::Wrap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The warnings for committing with `cfg` and `wrap` to `medium` (the directory the overlay goes
/// to, when there is one).
pub fn warnings(cfg: &Config, wrap: &Wrap, medium: Option<&Path>) -> Vec<String> {
    let mut out = Vec::new();
    if let Wrap::Legacy(c) = wrap {
        out.push(format!(
            "ENCRYPTION={}: Alpine's openssl format is not authenticated (whoever can write the medium can alter the overlay unnoticed); use ENCRYPTION=age",
            c.name()
        ));
    }
    for (var, path) in [
        ("SIGNING_KEY", &cfg.signing_key),
        ("AGE_IDENTITY", &cfg.age_identity),
    ] {
        let Some(path) = path else { continue };
        if let Ok(m) = std::fs::metadata(path) {
            if m.mode() & 0o077 != 0 {
                out.push(format!(
                    "{var} {}: readable by other users (chmod 600 it)",
                    path.display()
                ));
            }
        }
        if medium.is_some_and(|d| inside(path, d)) {
            out.push(format!(
                "{var} {}: on the medium the overlay is written to; whoever can write the medium can read it, so it protects nothing",
                path.display()
            ));
        }
    }
    if *wrap == Wrap::Plain && password_in_conf(&cfg.root) {
        out.push(format!(
            "PASSWORD is set in {CONF}, which this unencrypted overlay saves in clear; use PASSWORD_FILE"
        ));
    }
    out
}

/// Whether `path` lies in `dir` (both resolved, so symlinks do not hide it).
fn inside(path: &Path, dir: &Path) -> bool {
    match (std::fs::canonicalize(path), std::fs::canonicalize(dir)) {
        (Ok(p), Ok(d)) => p.starts_with(d),
        _ => false,
    }
}

fn password_in_conf(root: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(root.join(CONF)) else {
        return false;
    };
    let vars = crate::config::parse(&zeroize::Zeroizing::new(text), Default::default());
    vars.get("PASSWORD").is_some_and(|p| !p.is_empty())
}
