//! Starting a program chrooted into the target root without copying this process.
//!
//! `fork()` copies the page tables of the whole process and write-protects every private page, so
//! after each script the installer and its workers take a copy-on-write fault (and, being several
//! threads, a TLB shootdown) on every buffer page they touch again: with tens of MiB of packages in
//! flight that cost more than the script itself, in the `apk` CLI and above all in the init under
//! qemu. `posix_spawn()` avoids the copy but cannot chroot. So this module does what glibc's
//! `posix_spawn` does inside, plus the chroot: `clone(CLONE_VM | CLONE_VFORK)` onto a stack of its
//! own, with every signal blocked while the child shares this process's memory. The child only
//! makes system calls on data prepared before the clone (no allocation, no lock, no unwinding),
//! then `execve`s or `_exit`s; the calling thread sleeps until then. (No crate offers a spawn with
//! a chroot: `std::process::Command` with `pre_exec` forks, and `nix::sched::clone` is the
//! primitive used here.)

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// What to start.
pub(crate) struct Spawn<'a> {
    /// Directory that becomes the child's `/` (a path on the host).
    pub root: &'a CStr,
    /// Program to run, as a path inside `root`.
    pub program: &'a CStr,
    /// Arguments, `argv[0]` included.
    pub argv: &'a [CString],
    /// The whole environment (`NAME=value`).
    pub env: &'a [CString],
    /// Descriptors that become the child's 0, 1 and 2.
    pub stdio: [BorrowedFd<'a>; 3],
    /// The child's umask.
    pub umask: libc::mode_t,
}

/// Bytes of stack the child runs on before `execve` (a handful of system-call wrappers).
const CHILD_STACK: usize = 64 * 1024;

/// Start `s`; returns the child's pid once it runs the program. The child starts with default
/// signal dispositions for every signal this process handles (and for `SIGPIPE`, which Rust
/// ignores), an empty signal mask, `s.stdio` as its descriptors 0-2, `s.umask`, and `s.root` as
/// its root and working directory. An error names what failed (`chroot`, `execve`, ...) with the
/// errno the child saw.
pub(crate) fn spawn(s: &Spawn<'_>) -> std::io::Result<nix::unistd::Pid> {
    let (argv, env) = (null_terminated(s.argv), null_terminated(s.env));
    // A source descriptor below 3 that is not already where it goes would be overwritten by
    // another one's dup2 in the child: move it above 2 first.
    let mut moved = Vec::new();
    let mut fds = s.stdio.map(|fd| fd.as_raw_fd());
    for (target, fd) in fds.iter_mut().enumerate() {
        if *fd < 3 && *fd != target as i32 {
            let high =
                nix::fcntl::fcntl(s.stdio[target], nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))?;
            // SAFETY: F_DUPFD_CLOEXEC returned a new descriptor that nothing else owns.
            let high = unsafe { std::os::fd::OwnedFd::from_raw_fd(high) };
            *fd = high.as_raw_fd();
            moved.push(high);
        }
    }
    // Which step failed in the child (0: none) and its errno; the child writes them into this
    // process's memory, which it shares until it execs.
    let failed_step = AtomicI32::new(0);
    let failed_errno = AtomicI32::new(0);
    let mut stack = vec![0u8; CHILD_STACK];
    let (root, program, umask) = (s.root.as_ptr(), s.program.as_ptr(), s.umask);
    let child = Box::new(|| -> isize {
        let (step, errno) = child_exec(root, program, &argv, &env, fds, umask);
        failed_errno.store(errno, Ordering::SeqCst);
        failed_step.store(step, Ordering::SeqCst);
        // SAFETY: `_exit` ends the child without running this process's atexit handlers or
        // touching its stdio buffers (which the child shares).
        unsafe { libc::_exit(127) }
    });
    let mut all = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    let mut old = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: every signal is blocked in this thread across the clone, so no handler of this
    // process runs on the child's stack while it shares our memory; the previous mask is restored
    // right after, in this thread, and the child sets its own before `execve`.
    unsafe {
        libc::sigfillset(all.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_SETMASK, all.as_ptr(), old.as_mut_ptr());
    }
    // SAFETY: CLONE_VFORK suspends this thread until the child has called `execve` or `_exit`, so
    // everything the closure borrows (argv, env, the atomics, the stack) outlives its use. The
    // child only calls async-signal-safe functions on memory prepared above: it allocates
    // nothing and takes no lock another thread may hold. Without CLONE_SIGHAND its signal
    // dispositions are its own copy, which it resets before unblocking signals.
    let pid = unsafe {
        nix::sched::clone(
            child,
            &mut stack,
            nix::sched::CloneFlags::CLONE_VM | nix::sched::CloneFlags::CLONE_VFORK,
            Some(libc::SIGCHLD),
        )
    };
    // SAFETY: `old` was filled by the pthread_sigmask call above.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, old.as_ptr(), std::ptr::null_mut());
    }
    drop(moved);
    let pid = pid.map_err(std::io::Error::from)?;
    match failed_step.load(Ordering::SeqCst) {
        0 => Ok(pid),
        step => {
            // The child has exited: reap it (a signal may interrupt the wait).
            while let Err(nix::errno::Errno::EINTR) = nix::sys::wait::waitpid(pid, None) {}
            let e = std::io::Error::from_raw_os_error(failed_errno.load(Ordering::SeqCst));
            if step == EXECVE {
                // As std's spawn reports it: the caller names the program.
                return Err(e);
            }
            Err(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", STEPS[step as usize - 1]),
            ))
        }
    }
}

/// The array of pointers `execve` takes: one per string, then a null pointer.
fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The steps of [`child_exec`], for errors (1-based).
const STEPS: [&str; 5] = [
    "signal setup",
    "standard descriptors",
    "chroot",
    "chdir",
    "execve",
];
/// The step number of `execve` in [`STEPS`].
const EXECVE: i32 = 5;

/// The child's side: returns only on failure, with the step (1-based, see [`STEPS`]) and errno.
fn child_exec(
    root: *const libc::c_char,
    program: *const libc::c_char,
    argv: &[*const libc::c_char],
    env: &[*const libc::c_char],
    fds: [i32; 3],
    umask: libc::mode_t,
) -> (i32, i32) {
    let errno = || std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    // SAFETY: only system-call wrappers, on pointers into memory the parent keeps alive and does
    // not touch until this child execs or exits.
    unsafe {
        // Handlers of this process must never run in the child (they would run on shared
        // memory): every handled signal goes back to its default, and so does SIGPIPE, which
        // Rust's runtime ignores and programs expect to kill them. glibc's own two signals
        // (32 and 33, thread cancellation and set*id broadcast) are refused by its sigaction and
        // keep their handlers until execve; glibc sends them only to this process's threads, by
        // thread id, never to this child.
        for sig in 1..=libc::SIGRTMAX() {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut cur = std::mem::zeroed::<libc::sigaction>();
            if libc::sigaction(sig, std::ptr::null(), &mut cur) != 0 {
                continue;
            }
            if cur.sa_sigaction != libc::SIG_DFL
                && (cur.sa_sigaction != libc::SIG_IGN || sig == libc::SIGPIPE)
            {
                let mut dfl = std::mem::zeroed::<libc::sigaction>();
                dfl.sa_sigaction = libc::SIG_DFL;
                if libc::sigaction(sig, &dfl, std::ptr::null_mut()) != 0 {
                    return (1, errno());
                }
            }
        }
        let mut empty = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut empty);
        if libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) != 0 {
            return (1, errno());
        }
        // Standard descriptors. dup2 onto itself would keep close-on-exec: clear it instead.
        for (target, fd) in fds.into_iter().enumerate() {
            let target = target as i32;
            let r = if fd == target {
                libc::fcntl(fd, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, target)
            };
            if r < 0 {
                return (2, errno());
            }
        }
        libc::umask(umask);
        if libc::chroot(root) != 0 {
            return (3, errno());
        }
        if libc::chdir(c"/".as_ptr()) != 0 {
            return (4, errno());
        }
        libc::execve(program, argv.as_ptr(), env.as_ptr());
        (EXECVE, errno())
    }
}

/// Wait for `pid` to end: its exit code, or the signal that killed it (any signal: nix's
/// `WaitStatus` has no real-time ones, and `waitpid` fails with `EINVAL` after reaping a child
/// one of them killed).
pub(crate) fn wait(pid: nix::unistd::Pid) -> std::io::Result<std::process::ExitStatus> {
    use std::os::unix::process::ExitStatusExt;
    let mut status = 0;
    loop {
        // SAFETY: `status` is a live local the call writes an int into.
        if unsafe { libc::waitpid(pid.as_raw(), &mut status, 0) } >= 0 {
            return Ok(std::process::ExitStatus::from_raw(status));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::AsFd;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    fn c(s: &str) -> CString {
        CString::new(s).unwrap()
    }

    /// Run `argv` chrooted into `root` with `env`; its exit status and standard output.
    fn run(root: &str, argv: &[&str], env: &[&str]) -> std::io::Result<(ExitStatus, String)> {
        let argv: Vec<CString> = argv.iter().map(|a| c(a)).collect();
        let env: Vec<CString> = env.iter().map(|a| c(a)).collect();
        let null = std::fs::File::open("/dev/null").unwrap();
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let pid = spawn(&Spawn {
            root: &c(root),
            program: &argv[0],
            argv: &argv,
            env: &env,
            stdio: [null.as_fd(), w.as_fd(), w.as_fd()],
            umask: 0o027,
        });
        drop(w);
        let pid = pid?;
        let mut out = String::new();
        std::fs::File::from(r).read_to_string(&mut out).unwrap();
        Ok((wait(pid).unwrap(), out))
    }

    /// The child gets exactly the arguments, environment, umask and descriptors given, and its
    /// exit code comes back.
    #[test]
    fn runs_with_the_given_arguments_environment_and_umask() {
        let script = "echo \"$0 $1 [$A] [$HOME]\"; umask; echo err >&2; exit 3";
        let (st, out) = run("/", &["/bin/sh", "-c", script, "x", "y"], &["A=b c"]).unwrap();
        assert_eq!(st.code(), Some(3), "{st:?}");
        assert_eq!(out, "x y [b c] []\n0027\nerr\n");
    }

    /// No handler of this process, and not its ignored SIGPIPE, reaches the child, and its signal
    /// mask is empty, although every signal is blocked around the clone. (Signals this process
    /// inherited as ignored stay ignored, as across any exec.)
    #[test]
    fn the_child_starts_with_default_signals_and_an_empty_mask() {
        let mask = |status: &str, field: &str| {
            let line = status.lines().find(|l| l.starts_with(field)).unwrap();
            u64::from_str_radix(line[field.len()..].trim(), 16).unwrap()
        };
        let ours = std::fs::read_to_string("/proc/self/status").unwrap();
        let sigpipe = 1u64 << (libc::SIGPIPE - 1);
        assert_ne!(mask(&ours, "SigIgn:") & sigpipe, 0, "Rust ignores SIGPIPE");
        let (st, out) = run("/", &["/bin/cat", "/proc/self/status"], &[]).unwrap();
        assert!(st.success(), "{st:?}");
        assert_eq!(mask(&out, "SigBlk:"), 0);
        assert_eq!(mask(&out, "SigCgt:"), 0);
        assert_eq!(mask(&out, "SigIgn:"), mask(&ours, "SigIgn:") & !sigpipe);
    }

    /// A death by any signal is reported as that signal, a real-time one included.
    #[test]
    fn a_death_by_a_real_time_signal_is_reported() {
        let sig = libc::SIGRTMIN() + 1;
        let script = format!("kill -{sig} $$");
        let (st, _) = run("/", &["/bin/sh", "-c", &script], &[]).unwrap();
        assert_eq!(st.signal(), Some(sig), "{st:?}");
    }

    /// The child runs inside the root: `/` is the given directory.
    #[test]
    fn the_child_is_chrooted() {
        let dir = tempfile::tempdir().unwrap();
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        // This test binary is static: it runs in an empty root. It lists `/` there.
        std::fs::copy(&exe, dir.path().join("t")).unwrap();
        std::fs::write(dir.path().join("marker"), b"").unwrap();
        let root = dir.path().to_str().unwrap();
        let (st, out) = run(
            root,
            &[
                "/t",
                "--exact",
                "spawn::tests::list_root_helper",
                "--nocapture",
                "--include-ignored",
            ],
            &["APK_SPAWN_TEST_LIST=1"],
        )
        .unwrap();
        assert!(st.success(), "{st:?}: {out}");
        assert!(out.contains("ROOT: marker t\n"), "{out}");
    }

    /// Not a test on its own: what [`the_child_is_chrooted`] runs inside the root.
    #[test]
    #[ignore]
    fn list_root_helper() {
        if std::env::var_os("APK_SPAWN_TEST_LIST").is_none() {
            return;
        }
        let mut names: Vec<String> = std::fs::read_dir("/")
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        println!("ROOT: {}", names.join(" "));
    }

    /// What cannot start is an error naming the step (`execve`'s is the bare errno, as std
    /// reports it: the caller names the program).
    #[test]
    fn failures_name_the_step() {
        let e = run("/nonexistent-root", &["/bin/true"], &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "chroot: No such file or directory (os error 2)"
        );
        let e = run("/", &["/nonexistent-program"], &[]).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}");
    }
}
