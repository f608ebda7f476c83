//! Undo actions that must run however lbu ends: normally (guards' `Drop`), on an error, and on
//! `SIGINT`/`SIGTERM` (as Alpine's lbu: clean up, then exit 1). Registered actions are kept in one
//! process-wide list; a dedicated thread waits for the signals (they are blocked everywhere else)
//! and runs the list before exiting.

use std::path::PathBuf;
use std::sync::Mutex;

/// Something to undo.
#[derive(Clone, Debug)]
pub enum Action {
    /// Remove a temporary file.
    RemoveFile(PathBuf),
    /// Remove a temporary directory tree (plaintext copies for status/diff).
    RemoveDir(PathBuf),
    /// Put the terminal back as it was before a password prompt (a signal while a password is
    /// being typed): these settings, or at least echo, canonical input and signals on.
    RestoreTerminal(Option<nix::sys::termios::Termios>),
    /// Put a medium back as it was: remount with its previous options and/or unmount.
    RestoreMount {
        /// Mount point.
        dir: PathBuf,
        /// `mount -o` options that restore it (`remount,ro,async`, ...), when we remounted it.
        options: Option<String>,
        /// We mounted it.
        unmount: bool,
    },
}

static ACTIONS: Mutex<Vec<(u64, Action)>> = Mutex::new(Vec::new());
static TERMINAL: Mutex<()> = Mutex::new(());

/// Held while the terminal's mode changes (a password prompt) and by the signal thread from its
/// restore until exit: the terminal is never switched again after it was put back.
pub fn terminal_lock() -> std::sync::MutexGuard<'static, ()> {
    TERMINAL.lock().unwrap_or_else(|e| e.into_inner())
}
static NEXT: Mutex<u64> = Mutex::new(0);

/// Register an action; returns its id for [`done`].
pub fn register(a: Action) -> u64 {
    let mut n = NEXT.lock().unwrap_or_else(|e| e.into_inner());
    *n += 1;
    ACTIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((*n, a));
    *n
}

/// Run and forget one action.
pub fn run(id: u64) {
    let a = {
        let mut v = ACTIONS.lock().unwrap_or_else(|e| e.into_inner());
        let pos = v.iter().position(|(i, _)| *i == id);
        pos.map(|p| v.remove(p).1)
    };
    if let Some(a) = a {
        perform(&a);
    }
}

/// Forget an action without running it (the temporary file became the real one).
pub fn forget(id: u64) {
    ACTIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|(i, _)| *i != id);
}

/// Run every pending action, newest first.
pub fn run_all() {
    let all: Vec<(u64, Action)> =
        std::mem::take(&mut *ACTIONS.lock().unwrap_or_else(|e| e.into_inner()));
    for (_, a) in all.iter().rev() {
        perform(a);
    }
}

fn perform(a: &Action) {
    match a {
        Action::RemoveFile(p) => {
            let _ = std::fs::remove_file(p);
        }
        Action::RemoveDir(p) => {
            let _ = std::fs::remove_dir_all(p);
        }
        Action::RestoreTerminal(saved) => {
            use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
            if let Ok(tty) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/tty")
            {
                let t = match saved {
                    Some(t) => Some(t.clone()),
                    None => tcgetattr(&tty).ok().map(|mut t| {
                        t.local_flags
                            .insert(LocalFlags::ECHO | LocalFlags::ICANON | LocalFlags::ISIG);
                        t
                    }),
                };
                if let Some(t) = t {
                    let _ = tcsetattr(&tty, SetArg::TCSANOW, &t);
                }
            }
        }
        Action::RestoreMount {
            dir,
            options,
            unmount,
        } => {
            if *unmount {
                let _ = std::process::Command::new("umount").arg(dir).status();
            } else if let Some(o) = options {
                let _ = std::process::Command::new("mount")
                    .args(["-o", o])
                    .arg(dir)
                    .status();
            }
        }
    }
}

/// Block `SIGINT`, `SIGTERM`, `SIGHUP` (the terminal or ssh session went away) and `SIGQUIT`
/// (Ctrl-\\) in this (main) thread and every thread started later, and start the thread that
/// handles them: pending actions run, then the process exits with status 1.
pub fn install_signal_handler() {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGHUP);
    set.add(Signal::SIGQUIT);
    if set.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || {
        if set.wait().is_ok() {
            let _terminal = terminal_lock();
            run_all();
            eprintln!("lbu: interrupted");
            std::process::exit(1);
        }
    });
}
