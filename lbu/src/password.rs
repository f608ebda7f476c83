//! Passwords for encrypted overlays (lbu/README.md, "Encryption"). Sources, first wins: `-p`
//! (kept for compatibility; visible in `ps`), `PASSWORD` (environment or lbu.conf), then
//! `PASSWORD_FILE` (a regular file owned by root and not readable by group or others), then the
//! terminal (`/dev/tty`, echo off; asked twice when encrypting). Every buffer
//! that holds a password is zeroed when dropped.

use crate::config::Config;
use crate::Error;
use zeroize::Zeroizing;

/// A password, zeroed when dropped.
pub type Password = Zeroizing<String>;

/// Why the password is needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Encrypting a new overlay (confirm on the terminal).
    Encrypt,
    /// Reading an existing one.
    Decrypt,
}

/// Get the password.
pub fn password(cfg: &Config, cli: Option<&str>, purpose: Purpose) -> Result<Password, Error> {
    if let Some(p) = cli.filter(|p| !p.is_empty()) {
        return Ok(Zeroizing::new(p.to_string()));
    }
    if let Some(p) = &cfg.password {
        return Ok(p.clone());
    }
    if let Some(f) = &cfg.password_file {
        return from_file(f);
    }
    let p = ask("Password: ")?;
    if purpose == Purpose::Encrypt && *ask("Verifying - Password: ")? != *p {
        return Err(Error::Password("passwords do not match".into()));
    }
    if p.is_empty() {
        return Err(Error::Password("empty password".into()));
    }
    Ok(p)
}

/// The first line of `PASSWORD_FILE`, read as every passphrase file is
/// ([`overlays::passphrase`]: private to root or to the user running lbu, opened once without
/// following a link, bounded, zeroed).
fn from_file(f: &std::path::Path) -> Result<Password, Error> {
    overlays::read_passphrase_file(f).map_err(|e| Error::Password(format!("{}: {e}", f.display())))
}

/// Ask on the terminal: echo off, canonical mode and signals on (the kernel edits the line, and
/// Ctrl-C reaches lbu's signal thread, which puts the terminal back). Echo goes off *before* the
/// prompt appears (an answer typed as soon as the prompt shows is never echoed).
///
/// Hand-written rather than `rpassword`: rpassword switches the terminal to raw mode inside its
/// read, after the prompt is on the screen, so a signal at the prompt could put the terminal back
/// and then see rpassword switch it to raw mode again before lbu exits (CI saw a terminal left
/// raw). Here every mode change happens under [`crate::cleanup::terminal_lock`], which the signal
/// thread holds from its restore until the process exits.
fn ask(prompt: &str) -> Result<Password, Error> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg, SpecialCharacterIndices};
    use std::io::Write;
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| {
            Error::Password("no terminal to ask on: set PASSWORD_FILE in lbu.conf".into())
        })?;
    let (saved, restore) = {
        let _lock = crate::cleanup::terminal_lock();
        let saved = tcgetattr(&tty).ok();
        let restore =
            crate::cleanup::register(crate::cleanup::Action::RestoreTerminal(saved.clone()));
        if let Some(t) = &saved {
            let mut quiet = t.clone();
            quiet.local_flags.remove(LocalFlags::ECHO);
            quiet
                .local_flags
                .insert(LocalFlags::ECHONL | LocalFlags::ICANON | LocalFlags::ISIG);
            // No Ctrl-Z: a stopped lbu would leave the shell a terminal without echo.
            quiet.control_chars[SpecialCharacterIndices::VSUSP as usize] = 0;
            if let Err(e) = tcsetattr(&tty, SetArg::TCSANOW, &quiet) {
                crate::cleanup::forget(restore);
                return Err(Error::Password(format!(
                    "/dev/tty: cannot turn echo off: {}",
                    std::io::Error::from(e)
                )));
            }
        }
        (saved, restore)
    };
    let mut w = &tty;
    let res = write!(w, "{prompt}")
        .and_then(|_| w.flush())
        .and_then(|_| read_line(&tty));
    {
        let _lock = crate::cleanup::terminal_lock();
        if let Some(t) = &saved {
            let _ = tcsetattr(&tty, SetArg::TCSANOW, t);
        }
        crate::cleanup::forget(restore);
    }
    res.map_err(|e| Error::Password(format!("/dev/tty: {e}")))
}

/// The longest answer read (a canonical terminal line holds at most 4096 bytes).
const MAX_ANSWER: usize = 4096;

/// One line from the terminal, without its end of line, in a buffer zeroed when dropped.
fn read_line(tty: &std::fs::File) -> std::io::Result<Password> {
    use std::io::Read;
    let mut line = Zeroizing::new(Vec::with_capacity(MAX_ANSWER)); // never reallocated: no unzeroed copy
    let mut byte = [0u8; 1];
    let mut r = tty;
    loop {
        match r.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) if line.len() >= MAX_ANSWER => {
                return Err(std::io::Error::other("answer too long"))
            }
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    zeroize::Zeroize::zeroize(&mut byte);
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let text =
        std::str::from_utf8(&line).map_err(|_| std::io::Error::other("the answer is not UTF-8"))?;
    Ok(Zeroizing::new(text.to_string()))
}
