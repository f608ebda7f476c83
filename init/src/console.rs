//! Console output and input: the logger (console + `/dev/kmsg`), step lines and the passphrase
//! prompt. The installer prints its own apk-style lines.
//!
//! Levels: `quiet` shows only warnings and errors on the console; the default adds info lines
//! (` * Mounting boot media`); `debug_init` adds debug lines (every module, every device). kmsg
//! always gets info and above (debug with `debug_init`), one record per `write`, prefixed with
//! `<7>init: ` (see [`format_kmsg`] for why the priority is always 7). Errors are printed `ERROR: <what>: <why>`, warnings
//! `WARNING: ...`, the way Alpine's init and apk print them.
use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

use zeroize::Zeroizing;

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

/// Longest passphrase read from the console (bytes); a longer line is refused, not truncated.
pub const MAX_PASSPHRASE: usize = 1024;

/// Asks for a passphrase on the console with echo off: prints `prompt` as given (it already says
/// what for) and reads one line. `None` at end of input, when there is no console to read, or
/// when the line is longer than [`MAX_PASSPHRASE`] (reported). Every buffer that held the
/// passphrase is zeroed when dropped.
pub fn ask_passphrase(prompt: &str) -> Option<Zeroizing<String>> {
    let _echo = crate::sys::NoEcho::new();
    let mut err = io::stderr();
    let _ = write!(err, "\x07{prompt}");
    let _ = err.flush();
    let line = crate::sys::read_console_line(MAX_PASSPHRASE);
    let _ = writeln!(err);
    match line {
        Ok(line) => passphrase_from_line(line?),
        Err(e) => {
            log::error!("{e}");
            None
        }
    }
}

/// The passphrase in a console line (without its `\r`), moved into a zeroizing string; `None`
/// for a line that is not UTF-8 (reported).
pub fn passphrase_from_line(mut line: Zeroizing<Vec<u8>>) -> Option<Zeroizing<String>> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let bytes = std::mem::take(&mut *line);
    match String::from_utf8(bytes) {
        Ok(s) => Some(Zeroizing::new(s)),
        Err(e) => {
            zeroize::Zeroize::zeroize(&mut e.into_bytes());
            log::error!("passphrase: not valid UTF-8");
            None
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
    fn passphrase_line_is_moved_not_copied() {
        let line = Zeroizing::new(b"s3cret pass\r".to_vec());
        let s = passphrase_from_line(line).unwrap();
        assert_eq!(s.as_str(), "s3cret pass");
        assert!(passphrase_from_line(Zeroizing::new(vec![0xff, 0xfe])).is_none());
        assert_eq!(
            passphrase_from_line(Zeroizing::new(Vec::new()))
                .unwrap()
                .as_str(),
            ""
        );
    }
}
