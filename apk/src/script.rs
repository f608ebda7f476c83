//! Package scripts: always run **chrooted into the target root** (never on the host), with apk v3's
//! argv and environment, their output re-emitted line by line as `* line` (apk-format.md §6.2).

use crate::output::Out;
use crate::root::Root;
use crate::spawn::Spawn;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{Mode as FMode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use std::ffi::CString;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

/// Where script bodies are written inside the root (apk v3 uses 0755 for this directory).
pub const EXEC_DIR: &str = "lib/apk/exec";

/// One script to run.
pub struct Script<'a> {
    /// `name-version` of the package.
    pub name_version: &'a str,
    /// Package name (`APK_PACKAGE`).
    pub package: &'a str,
    /// `post-install`, `trigger`, ...
    pub kind: &'a str,
    /// The script body.
    pub body: &'a [u8],
    /// Arguments after the script path.
    pub args: &'a [String],
}

/// Run a script; `Err` carries apk's message (`exited with error N`, `killed by signal N`, or why it
/// could not start). Output lines are printed with `prefix` (`"  "` inside the package loop).
///
/// The body is written into [`EXEC_DIR`] resolved beneath the root (a symlink there never leads to
/// the host: `lib/apk/exec` -> `/tmp` means the root's `/tmp`), under a name created afresh.
pub fn run(root: &Root, s: &Script<'_>, out: &Out, prefix: &str) -> Result<(), String> {
    out.msg(&format!("{prefix}Executing {}.{}", s.name_version, s.kind));
    root.mkdir_p(EXEC_DIR, 0o755)
        .map_err(|e| format!("{EXEC_DIR}: {e}"))?;
    let dir = root
        .dir(EXEC_DIR)
        .map_err(|e| format!("{}: {e}", root.host_path(EXEC_DIR).display()))?;
    let file = format!("{}.{}", s.name_version, s.kind);
    let shown = root.host_path(&format!("{EXEC_DIR}/{file}"));
    let _ = unlinkat(&dir, file.as_str(), UnlinkatFlags::NoRemoveDir);
    {
        let fd = openat(
            &dir,
            file.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            FMode::from_bits_truncate(0o755),
        )
        .map_err(|e| format!("{}: {}", shown.display(), std::io::Error::from(e)))?;
        std::fs::File::from(fd)
            .write_all(s.body)
            .map_err(|e| format!("{}: {e}", shown.display()))?;
    }
    let result = spawn(root, &format!("/{EXEC_DIR}/{file}"), s, out, prefix);
    let _ = unlinkat(&dir, file.as_str(), UnlinkatFlags::NoRemoveDir);
    result
}

fn spawn(root: &Root, path: &str, s: &Script<'_>, out: &Out, prefix: &str) -> Result<(), String> {
    let what = || format!("{}.{}", s.name_version, s.kind);
    let cstr = |v: &[u8]| CString::new(v).map_err(|_| format!("{}: NUL in an argument", what()));
    let croot = cstr(root.path.as_os_str().as_bytes())?;
    let program = cstr(path.as_bytes())?;
    let mut argv = vec![program.clone()];
    for a in s.args {
        argv.push(cstr(a.as_bytes())?);
    }
    let env = [
        cstr(b"PATH=/usr/sbin:/usr/bin:/sbin:/bin")?,
        cstr(format!("APK_SCRIPT={}", s.kind).as_bytes())?,
        cstr(format!("APK_PACKAGE={}", s.package).as_bytes())?,
    ];
    let io = |e: std::io::Error| format!("{}: {e}", what());
    // The script reads nothing: /dev/null, or an empty pipe where apk's own environment has no
    // /dev/null (apk run in a chroot whose /dev is empty, which apk-tools handles too).
    let null: std::os::fd::OwnedFd = match std::fs::File::open("/dev/null") {
        Ok(f) => f.into(),
        Err(_) => {
            nix::unistd::pipe2(OFlag::O_CLOEXEC)
                .map_err(|e| io(e.into()))?
                .0
        }
    };
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| io(e.into()))?;
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| io(e.into()))?;
    let child = spawn_when_not_busy(&Spawn {
        root: &croot,
        program: &program,
        argv: &argv,
        env: &env,
        stdio: [null.as_fd(), out_w.as_fd(), err_w.as_fd()],
        umask: 0o022,
    })
    .map_err(io)?;
    // Only the child holds the write ends now: the reads below end when it does.
    drop((out_w, err_w, null));
    let line_prefix = format!("{prefix}* ");
    std::thread::scope(|sc| {
        let lp = line_prefix.clone();
        sc.spawn(move || {
            for line in BufReader::new(std::fs::File::from(err_r))
                .split(b'\n')
                .map_while(Result::ok)
            {
                let l = String::from_utf8_lossy(&line);
                eprintln!("{lp}{}", l.strip_prefix("* ").unwrap_or(&l));
            }
        });
        for line in BufReader::new(std::fs::File::from(out_r))
            .split(b'\n')
            .map_while(Result::ok)
        {
            let l = String::from_utf8_lossy(&line);
            out.msg(&format!(
                "{line_prefix}{}",
                l.strip_prefix("* ").unwrap_or(&l)
            ));
        }
    });
    let status = crate::spawn::wait(child).map_err(io)?;
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(c), _) => Err(format!("exited with error {c}")),
        (None, Some(sig)) => Err(format!("killed by signal {sig}")),
        _ => Err("failed".into()),
    }
}

/// How long [`spawn_when_not_busy`] waits for other processes to drop their copy of the script's
/// write descriptor.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Start `s`, retrying while the kernel answers `ETXTBSY`. The script was just written through a
/// close-on-exec descriptor, but a process forked by another thread meanwhile (a test running
/// beside this one, a library starting a helper) holds a copy of it until it reaches its own
/// `exec`, and executing a file open for writing fails with "Text file busy" for that short while
/// (Go's os/exec retries the same way). Seen in CI: two installs in one test process.
fn spawn_when_not_busy(s: &Spawn<'_>) -> std::io::Result<nix::unistd::Pid> {
    let deadline = std::time::Instant::now() + BUSY_WAIT;
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        match crate::spawn::spawn(s) {
            Err(e)
                if e.raw_os_error() == Some(libc::ETXTBSY)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// Mounts made for scripts, undone on drop. Each is held as a handle on the mounted directory,
/// so unmounting never resolves a path again.
pub(crate) struct ScriptMounts(Vec<OwnedFd>);

/// The path that names `fd` itself (the kernel resolves it to the open directory, wherever it is).
fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

impl Drop for ScriptMounts {
    fn drop(&mut self) {
        for m in self.0.iter().rev() {
            let _ = nix::mount::umount2(fd_path(m).as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Mount a file system on directory `rel` of the root: the directory is opened beneath the root
/// and never through a symlink (`proc` -> `/etc` must not put a proc over the host's `/etc`), and
/// the mount goes onto that handle. Returns a handle on the mounted file system's root.
fn mount_beneath(
    root: &Root,
    rel: &str,
    source: &str,
    fstype: &str,
    flags: nix::mount::MsFlags,
    data: Option<&str>,
) -> Option<OwnedFd> {
    let _ = root.mkdir_p(rel, 0o755);
    let dir = root.open_dir_nofollow(rel, OFlag::O_PATH).ok()?;
    nix::mount::mount(
        Some(source),
        fd_path(&dir).as_str(),
        Some(fstype),
        flags,
        data,
    )
    .ok()?;
    match root.open_dir_nofollow(rel, OFlag::O_PATH) {
        Ok(m) => Some(m),
        Err(_) => {
            let _ = nix::mount::umount2(fd_path(&dir).as_str(), nix::mount::MntFlags::MNT_DETACH);
            None
        }
    }
}

/// `/proc` for the whole commit when the root has none (scripts and triggers read it).
pub(crate) fn mount_proc(root: &Root) -> ScriptMounts {
    if root.path == Path::new("/") || root.lstat_opt("proc/self").ok().flatten().is_some() {
        return ScriptMounts(Vec::new());
    }
    let flags = nix::mount::MsFlags::MS_NOSUID
        | nix::mount::MsFlags::MS_NODEV
        | nix::mount::MsFlags::MS_NOEXEC;
    ScriptMounts(
        mount_beneath(root, "proc", "proc", "proc", flags, None)
            .into_iter()
            .collect(),
    )
}

/// A private `/dev` with the basic nodes, mounted over the root's `dev` only while a script runs
/// when the root has no `dev/null`. (Never bind the host's /dev there: packages extract into `dev/`,
/// and their files must land in the root, not on the host.)
pub(crate) fn mount_dev_for_script(root: &Root) -> ScriptMounts {
    if root.path == Path::new("/") || root.lstat_opt("dev/null").ok().flatten().is_some() {
        return ScriptMounts(Vec::new());
    }
    let flags = nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NOEXEC;
    let Some(dev) = mount_beneath(
        root,
        "dev",
        "apkdev",
        "tmpfs",
        flags,
        Some("mode=0755,size=64k"),
    ) else {
        return ScriptMounts(Vec::new());
    };
    for (name, major, minor, mode) in [
        ("null", 1, 3, 0o666),
        ("zero", 1, 5, 0o666),
        ("full", 1, 7, 0o666),
        ("random", 1, 8, 0o666),
        ("urandom", 1, 9, 0o666),
        ("tty", 5, 0, 0o666),
    ] {
        let _ = nix::sys::stat::mknodat(
            &dev,
            name,
            SFlag::S_IFCHR,
            FMode::from_bits_truncate(mode),
            nix::sys::stat::makedev(major, minor),
        );
        // mknod applies the umask; the nodes are world-writable as in any /dev.
        let _ = nix::sys::stat::fchmodat(
            &dev,
            name,
            FMode::from_bits_truncate(mode),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        );
    }
    let _ = nix::unistd::symlinkat("/proc/self/fd", &dev, "fd");
    ScriptMounts(vec![dev])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;

    /// A script still open for writing elsewhere (as in a process forked by another thread before
    /// its exec) starts once that descriptor is gone, instead of failing with "Text file busy".
    #[test]
    fn a_script_busy_for_a_moment_still_starts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("script");
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .open(&path)
            .unwrap();
        w.write_all(b"#!/bin/sh\nexit 7\n").unwrap();
        let program = CString::new(path.as_os_str().as_bytes()).unwrap();
        let argv = [program.clone()];
        let null = std::fs::File::open("/dev/null").unwrap();
        let s = Spawn {
            root: c"/",
            program: &program,
            argv: &argv,
            env: &[],
            stdio: [null.as_fd(), null.as_fd(), null.as_fd()],
            umask: 0o022,
        };
        let busy = crate::spawn::spawn(&s).unwrap_err();
        assert_eq!(busy.raw_os_error(), Some(libc::ETXTBSY), "{busy}");
        let holder = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            drop(w);
        });
        let pid = spawn_when_not_busy(&s).unwrap();
        holder.join().unwrap();
        assert_eq!(crate::spawn::wait(pid).unwrap().code(), Some(7));
    }
}
