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
        None => name.to_string(),
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
    // A reinstall of a package no repository or cache can deliver is skipped (v3 print_change).
    let unavailable = c.kind == ChangeKind::Reinstall
        && c.new.is_some_and(|n| {
            let p = &pool.packages[n];
            p.file.is_none()
                && p.cached.is_none()
                && !p.virtual_pkg
                && !p.repos.iter().any(|&r| !pool.repos[r].masked)
        });
    format!(
        "({i:>w$}/{total}) {}{} {} {}",
        if unavailable {
            "[APK unavailable, skipped] "
        } else {
            ""
        },
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
    /// How progress is shown.
    pub progress: Progress,
}

/// Progress display (`--progress`, `--progress-fd`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Progress {
    /// Nothing (default when stdout is not a terminal).
    #[default]
    None,
    /// apk's bar on stdout, drawn with this character.
    Bar(String),
    /// `<done>/<total> <stage>` lines to this file descriptor.
    Fd(i32),
}

impl Default for Out {
    fn default() -> Self {
        Out {
            verbosity: 1,
            width: 50,
            progress: Progress::None,
        }
    }
}

/// A bar is on screen: the next output first restores the cursor and clears it (apk draws the bar
/// after a message and wipes it before the next one).
static BAR_SHOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn clear_bar(o: &mut impl Write) {
    if BAR_SHOWN.swap(false, std::sync::atomic::Ordering::Relaxed) {
        let _ = o.write_all(b"\x1b8\x1b[0K");
    }
}

/// Write to a descriptor the user named (`--progress-fd`), which this process does not own and
/// must not close; a bad descriptor only makes the write fail, and progress is best effort.
fn write_to_fd(fd: i32, bytes: &[u8]) {
    // SAFETY: the borrowed descriptor lives only for this call and is never closed here; if `fd`
    // is not open, write(2) fails with EBADF and nothing else happens.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let _ = rustix::io::write(fd, bytes);
}

impl Out {
    /// A message (verbosity >= 1) on stdout.
    pub fn msg(&self, line: &str) {
        if self.verbosity >= 1 {
            let mut o = std::io::stdout().lock();
            clear_bar(&mut o);
            let _ = writeln!(o, "{line}");
            let _ = o.flush();
        }
    }

    /// Report progress: `done` of `total` units in `stage`.
    pub fn progress(&self, done: u64, total: u64, stage: &str) {
        match &self.progress {
            Progress::None => {}
            Progress::Fd(fd) => {
                let line = format!("{done}/{total} {stage}\n");
                write_to_fd(*fd, line.as_bytes());
            }
            Progress::Bar(ch) => {
                if self.verbosity < 1 || total == 0 {
                    return;
                }
                let bar_width = self.width.saturating_sub(6);
                let filled = (bar_width as u64 * done.min(total) / total) as usize;
                let pct = 100 * done.min(total) / total;
                let mut o = std::io::stdout().lock();
                clear_bar(&mut o);
                let _ = write!(
                    o,
                    "\x1b7{pct:>3}% {}{}",
                    ch.repeat(filled),
                    " ".repeat(bar_width - filled)
                );
                let _ = o.flush();
                BAR_SHOWN.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Remove a bar left on screen (end of the transaction).
    pub fn progress_done(&self) {
        let mut o = std::io::stdout().lock();
        clear_bar(&mut o);
        let _ = o.flush();
    }

    /// Raw text on stdout at verbosity >= 1 (already newline-terminated).
    pub fn raw(&self, text: &str) {
        if self.verbosity >= 1 && !text.is_empty() {
            let mut o = std::io::stdout().lock();
            clear_bar(&mut o);
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

    /// An unprefixed notice on stderr (verbosity >= 0), as apk-tools v3's `apk_notice`
    /// (`fetch URL`).
    pub fn notice(&self, line: &str) {
        if self.verbosity >= 0 {
            let mut o = std::io::stdout().lock();
            clear_bar(&mut o);
            let _ = o.flush();
            eprintln!("{line}");
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
