//! Console output: the logger (console + `/dev/kmsg`), step lines, the passphrase prompt and the
//! installer's progress display.
//!
//! Levels: `quiet` shows only warnings and errors on the console; the default adds info lines
//! (` * Mounting boot media`); `debug_init` adds debug lines (every module, every device). kmsg
//! always gets info and above (debug with `debug_init`), one record per `write`, prefixed with
//! `<7>init: ` (see [`format_kmsg`] for why the priority is always 7). Errors are printed `ERROR: <what>: <why>`, warnings
//! `WARNING: ...`, the way Alpine's init and apk print them.
use std::fs::File;
use std::io::{self, BufRead, Write};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

use crate::install::InstallProgress;
use crate::overlay::{PassphrasePrompt, Secret};

/// The process-wide logger (the `log` crate wants a `&'static`).
static LOGGER: ConsoleLogger = ConsoleLogger {
    console_level: AtomicU8::new(3),
    kmsg_level: AtomicU8::new(3),
};
static KMSG: OnceLock<File> = OnceLock::new();

struct ConsoleLogger {
    console_level: AtomicU8,
    kmsg_level: AtomicU8,
}

fn level_num(l: log::Level) -> u8 {
    match l {
        log::Level::Error => 1,
        log::Level::Warn => 2,
        log::Level::Info => 3,
        log::Level::Debug => 4,
        log::Level::Trace => 5,
    }
}

/// The console line for a record (also used by tests).
pub fn format_console(level: log::Level, msg: &str) -> String {
    match level {
        log::Level::Error => format!("ERROR: {msg}\n"),
        log::Level::Warn => format!("WARNING: {msg}\n"),
        log::Level::Info => format!(" * {msg}\n"),
        log::Level::Debug | log::Level::Trace => format!("   {msg}\n"),
    }
}

/// The kmsg record for a message: `<7>init: [WARNING: |ERROR: ]msg`, one record, no newline inside.
///
/// Every record is written at debug priority on purpose: the kernel echoes kmsg records below
/// its console log level on the console, where the init has already printed the line itself, so
/// a higher priority would show every message twice. The level is kept in the text.
pub fn format_kmsg(level: log::Level, msg: &str) -> String {
    let tag = match level {
        log::Level::Error => "ERROR: ",
        log::Level::Warn => "WARNING: ",
        _ => "",
    };
    format!("<7>init: {tag}{}\n", msg.replace('\n', " | "))
}

impl log::Log for ConsoleLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        let n = level_num(m.level());
        n <= self.console_level.load(Ordering::Relaxed)
            || n <= self.kmsg_level.load(Ordering::Relaxed)
    }

    fn log(&self, record: &log::Record<'_>) {
        let n = level_num(record.level());
        let msg = record.args().to_string();
        if n <= self.console_level.load(Ordering::Relaxed) {
            // Errors writing to the console have nowhere to go.
            let _ = io::stderr().write_all(format_console(record.level(), &msg).as_bytes());
        }
        if n <= self.kmsg_level.load(Ordering::Relaxed) {
            if let Some(mut k) = KMSG.get() {
                let _ = k.write_all(format_kmsg(record.level(), &msg).as_bytes());
            }
        }
    }

    fn flush(&self) {}
}

/// Installs the logger (idempotent) with default levels.
pub fn init_logging() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Debug);
}

/// Opens `/dev/kmsg` once it exists (after `/dev` is mounted).
pub fn attach_kmsg(file: Option<File>) {
    if let Some(f) = file {
        let _ = KMSG.set(f);
    }
}

/// Applies `quiet` / `debug_init`.
pub fn set_verbosity(quiet: bool, debug: bool) {
    let console = if debug {
        4
    } else if quiet {
        2
    } else {
        3
    };
    LOGGER.console_level.store(console, Ordering::Relaxed);
    LOGGER
        .kmsg_level
        .store(if debug { 4 } else { 3 }, Ordering::Relaxed);
}

/// Whether info lines reach the console (not `quiet`).
pub fn verbose() -> bool {
    LOGGER.console_level.load(Ordering::Relaxed) >= 3
}

/// Prints text on the console as is (timeline, reports), and a copy to kmsg.
pub fn print(text: &str) {
    let _ = io::stderr().write_all(text.as_bytes());
    if let Some(mut k) = KMSG.get() {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let _ = k.write_all(format_kmsg(log::Level::Info, line).as_bytes());
        }
    }
}

/// Asks for the overlay passphrase on the console, echo off, up to `attempts` times.
pub struct ConsolePassphrase {
    attempts_left: u32,
}

impl ConsolePassphrase {
    /// Up to 3 attempts, as upstream gives `openssl enc`.
    pub fn new() -> Self {
        Self { attempts_left: 3 }
    }
}

impl Default for ConsolePassphrase {
    fn default() -> Self {
        Self::new()
    }
}

impl PassphrasePrompt for ConsolePassphrase {
    fn ask(&mut self, what: &str) -> Option<Secret> {
        if self.attempts_left == 0 {
            return None;
        }
        self.attempts_left -= 1;
        let _echo = crate::sys::NoEcho::new();
        let stdin = io::stdin();
        read_passphrase(&mut stdin.lock(), &mut io::stderr(), what)
    }
}

/// Prompts on `out` and reads one line from `input` (newline stripped); `None` at end of input.
pub fn read_passphrase(input: &mut dyn BufRead, out: &mut dyn Write, what: &str) -> Option<Secret> {
    let _ = write!(out, "\x07Enter passphrase for {what}: ");
    let _ = out.flush();
    let mut line = String::new();
    match input.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => {
            let _ = writeln!(out);
            let trimmed = line.trim_end_matches(['\n', '\r']).to_string();
            line.clear();
            Some(Secret::new(trimmed))
        }
    }
}

/// Shows the installer's apk-style lines and a percentage on the console.
pub struct ConsoleProgress {
    quiet: bool,
    last_percent: Option<u64>,
}

impl ConsoleProgress {
    /// A display honouring `quiet` (lines go to kmsg only).
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            last_percent: None,
        }
    }
}

/// `[####      ]  40%` for the progress line.
pub fn progress_bar(done: u64, total: u64) -> (u64, String) {
    let pct = (done.min(total) * 100).checked_div(total).unwrap_or(100);
    let filled = (pct / 5) as usize;
    (
        pct,
        format!(
            "[{}{}] {pct:>3}%",
            "#".repeat(filled),
            " ".repeat(20 - filled)
        ),
    )
}

impl InstallProgress for ConsoleProgress {
    fn line(&mut self, text: &str) {
        if self.last_percent.take().is_some() {
            let _ = io::stderr().write_all(b"\r\x1b[K");
        }
        if self.quiet {
            if let Some(mut k) = KMSG.get() {
                let _ = k.write_all(format_kmsg(log::Level::Info, text).as_bytes());
            }
        } else {
            print(&format!("{text}\n"));
        }
    }

    fn progress(&mut self, done: u64, total: u64) {
        if self.quiet {
            return;
        }
        let (pct, bar) = progress_bar(done, total);
        if self.last_percent != Some(pct) {
            self.last_percent = Some(pct);
            let _ = io::stderr().write_all(format!("\r{bar}").as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_and_kmsg_formats() {
        assert_eq!(
            format_console(log::Level::Error, "boot media: no boot medium found"),
            "ERROR: boot media: no boot medium found\n"
        );
        assert_eq!(format_console(log::Level::Warn, "x"), "WARNING: x\n");
        assert_eq!(
            format_console(log::Level::Info, "Mounting boot media"),
            " * Mounting boot media\n"
        );
        assert_eq!(format_kmsg(log::Level::Info, "a\nb"), "<7>init: a | b\n");
        assert_eq!(format_kmsg(log::Level::Error, "x"), "<7>init: ERROR: x\n");
        assert_eq!(format_kmsg(log::Level::Warn, "x"), "<7>init: WARNING: x\n");
    }

    #[test]
    fn passphrase_is_read_without_newline() {
        let mut input = io::Cursor::new(b"s3cret pass\r\nnext\n".to_vec());
        let mut out = Vec::new();
        let s = read_passphrase(&mut input, &mut out, "/media/usb/h.apkovl.tar.gz.age").unwrap();
        assert_eq!(s.expose(), "s3cret pass");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\x07Enter passphrase for /media/usb/h.apkovl.tar.gz.age: \n"
        );
        assert_eq!(
            read_passphrase(&mut input, &mut Vec::new(), "x")
                .unwrap()
                .expose(),
            "next"
        );
        assert!(read_passphrase(&mut input, &mut Vec::new(), "x").is_none());
    }

    #[test]
    fn prompt_gives_up_after_three_attempts() {
        let mut p = ConsolePassphrase { attempts_left: 0 };
        assert!(p.ask("x").is_none());
        assert_eq!(ConsolePassphrase::new().attempts_left, 3);
    }

    #[test]
    fn progress_bar_shape() {
        assert_eq!(
            progress_bar(0, 100),
            (0, format!("[{}]   0%", " ".repeat(20)))
        );
        assert_eq!(
            progress_bar(50, 100).1,
            format!("[{}{}]  50%", "#".repeat(10), " ".repeat(10))
        );
        assert_eq!(progress_bar(7, 0).0, 100);
        assert_eq!(progress_bar(200, 100).0, 100);
    }
}
