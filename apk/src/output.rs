//! apk-tools v3 output: change lines, sizes, the `OK:` summary and wrapped lists
//! (apk-format.md §9). Every line is flushed as it is printed.

use crate::pool::Pool;
use crate::solver::{Change, ChangeKind};
use std::io::Write;

/// `apk_fmt_human_size`: `B KiB MiB GiB TiB`, integers for B and KiB, one decimal above.
pub fn human_size(v: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut f = v as f64;
    let mut i = 0;
    while f >= 10000.0 && i + 1 < UNITS.len() {
        f /= 1024.0;
        i += 1;
    }
    if i < 2 {
        format!("{} {}", f as u64, UNITS[i])
    } else {
        format!("{f:.1} {}", UNITS[i])
    }
}

/// The verb of a change.
pub fn verb(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Install => "Installing",
        ChangeKind::Purge => "Purging",
        ChangeKind::Upgrade => "Upgrading",
        ChangeKind::Downgrade => "Downgrading",
        ChangeKind::Replace => "Replacing",
        ChangeKind::Reinstall => "Reinstalling",
        ChangeKind::Pinning => "Updating pinning",
    }
}

/// `name@tag` as printed (the tag only when pinned).
pub fn display_name(pool: &Pool, c: &Change) -> String {
    let id = c.new.or(c.old).unwrap_or_default();
    let name = &pool.packages[id].pkg.name;
    match &c.tag {
        Some(t) => format!("{name}@{t}"),
        None => name.clone(),
    }
}

/// `(name) (ver)` or `(old -> new)` part.
pub fn version_part(pool: &Pool, c: &Change) -> String {
    match (c.old, c.new, c.kind) {
        (Some(o), Some(n), ChangeKind::Upgrade | ChangeKind::Downgrade | ChangeKind::Replace) => {
            format!(
                "({} -> {})",
                pool.packages[o].pkg.version, pool.packages[n].pkg.version
            )
        }
        (_, Some(n), _) => format!("({})", pool.packages[n].pkg.version),
        (Some(o), None, _) => format!("({})", pool.packages[o].pkg.version),
        _ => String::new(),
    }
}

/// `( 1/25) Installing name (ver)`: the counter padded to the width of the total.
pub fn change_line(i: usize, total: usize, pool: &Pool, c: &Change) -> String {
    let w = total.to_string().len();
    format!(
        "({i:>w$}/{total}) {} {} {}",
        verb(c.kind),
        display_name(pool, c),
        version_part(pool, c)
    )
}

/// Output sink with apk's verbosity levels; every line is flushed.
#[derive(Clone, Debug)]
pub struct Out {
    /// 1 by default; `-q` lowers, `-v` raises.
    pub verbosity: i32,
    /// Wrap width for indented lists.
    pub width: usize,
}

impl Default for Out {
    fn default() -> Self {
        Out {
            verbosity: 1,
            width: 50,
        }
    }
}

impl Out {
    /// A message (verbosity >= 1) on stdout.
    pub fn msg(&self, line: &str) {
        if self.verbosity >= 1 {
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{line}");
            let _ = o.flush();
        }
    }

    /// Raw text on stdout at verbosity >= 1 (already newline-terminated).
    pub fn raw(&self, text: &str) {
        if self.verbosity >= 1 && !text.is_empty() {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(text.as_bytes());
            let _ = o.flush();
        }
    }

    /// `WARNING: ...` on stderr (verbosity >= 0).
    pub fn warning(&self, line: &str) {
        if self.verbosity >= 0 {
            eprintln!("WARNING: {line}");
        }
    }

    /// `ERROR: ...` on stderr (always).
    pub fn error(&self, line: &str) {
        eprintln!("ERROR: {line}");
    }

    /// Debug output (verbosity >= 2).
    pub fn debug(&self, line: &str) {
        if self.verbosity >= 2 {
            eprintln!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(2), "2 B");
        assert_eq!(human_size(9999), "9999 B");
        assert_eq!(human_size(11 * 1024), "11 KiB");
        assert_eq!(human_size(9999 * 1024), "9999 KiB");
        assert_eq!(human_size(10715136), "10.2 MiB");
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(10000), "9 KiB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5120.0 MiB");
        assert_eq!(human_size(20 * 1024 * 1024 * 1024), "20.0 GiB");
    }
}
