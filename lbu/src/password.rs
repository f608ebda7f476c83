//! Passwords for encrypted overlays (lbu.md §10.2 #13). Sources, first wins: `-p` (kept for
//! compatibility; visible in `ps`), `PASSWORD` (environment or lbu.conf), `PASSWORD_FILE` (a
//! regular file owned by root and not readable by group or others), then the terminal
//! (`/dev/tty`, echo off; asked twice when encrypting).

use crate::config::Config;
use crate::Error;
use std::io::{BufRead, Write};
use std::os::unix::fs::MetadataExt;

/// Why the password is needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Encrypting a new overlay (confirm on the terminal).
    Encrypt,
    /// Reading an existing one.
    Decrypt,
}

/// Get the password.
pub fn password(cfg: &Config, cli: Option<&str>, purpose: Purpose) -> Result<String, Error> {
    if let Some(p) = cli.filter(|p| !p.is_empty()) {
        return Ok(p.to_string());
    }
    if let Some(p) = &cfg.password {
        return Ok(p.clone());
    }
    if let Some(f) = &cfg.password_file {
        let m = std::fs::metadata(f).map_err(|source| Error::Io {
            path: f.clone(),
            source,
        })?;
        if !m.is_file()
            || m.uid() != 0 && m.uid() != nix::unistd::geteuid().as_raw()
            || m.mode() & 0o077 != 0
        {
            return Err(Error::Password(format!(
                "{}: must be a regular file owned by root with mode 0600 or stricter",
                f.display()
            )));
        }
        let text = std::fs::read_to_string(f).map_err(|source| Error::Io {
            path: f.clone(),
            source,
        })?;
        let p = text.lines().next().unwrap_or("").to_string();
        if p.is_empty() {
            return Err(Error::Password(format!("{}: empty password", f.display())));
        }
        return Ok(p);
    }
    let p = ask("Password: ")?;
    if purpose == Purpose::Encrypt && ask("Verifying - Password: ")? != p {
        return Err(Error::Password("passwords do not match".into()));
    }
    if p.is_empty() {
        return Err(Error::Password("empty password".into()));
    }
    Ok(p)
}

fn ask(prompt: &str) -> Result<String, Error> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|_| {
            Error::Password("no terminal to ask on: set PASSWORD_FILE in lbu.conf".into())
        })?;
    let saved = tcgetattr(&tty).ok();
    let echo = crate::cleanup::register(crate::cleanup::Action::RestoreEcho);
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        let _ = tcsetattr(&tty, SetArg::TCSANOW, &quiet);
    }
    let mut w = &tty;
    let _ = write!(w, "{prompt}");
    let _ = w.flush();
    let mut line = String::new();
    let res = std::io::BufReader::new(&tty).read_line(&mut line);
    if let Some(t) = &saved {
        let _ = tcsetattr(&tty, SetArg::TCSANOW, t);
    }
    let _ = writeln!(w);
    crate::cleanup::forget(echo);
    res.map_err(|e| Error::Password(format!("/dev/tty: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
