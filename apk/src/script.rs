//! Package scripts: always run **chrooted into the target root** (never on the host), with apk v3's
//! argv and environment, their output re-emitted line by line as `* line` (apk-format.md §6.2).

use crate::output::Out;
use crate::root::Root;
use nix::sys::stat::{Mode as FMode, SFlag};
use std::ffi::CString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
pub fn run(root: &Root, s: &Script<'_>, out: &Out, prefix: &str) -> Result<(), String> {
    out.msg(&format!("{prefix}Executing {}.{}", s.name_version, s.kind));
    root.mkdir_p(EXEC_DIR, 0o755)
        .map_err(|e| format!("{EXEC_DIR}: {e}"))?;
    let file = format!("{}.{}", s.name_version, s.kind);
    let rel = format!("{EXEC_DIR}/{file}");
    let host = root.host_path(&rel);
    {
        let _ = std::fs::remove_file(&host);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .open(&host)
            .map_err(|e| format!("{}: {e}", host.display()))?;
        f.write_all(s.body)
            .map_err(|e| format!("{}: {e}", host.display()))?;
    }
    let result = spawn(root, &format!("/{rel}"), s, out, prefix);
    let _ = std::fs::remove_file(&host);
    result
}

fn spawn(root: &Root, path: &str, s: &Script<'_>, out: &Out, prefix: &str) -> Result<(), String> {
    let croot = CString::new(root.path.as_os_str().as_bytes())
        .map_err(|_| "root path contains NUL".to_string())?;
    let mut cmd = Command::new(path);
    cmd.args(s.args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("APK_SCRIPT", s.kind)
        .env("APK_PACKAGE", s.package)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec the closure only calls async-signal-safe functions (umask,
    // chroot, chdir) on a C string prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(0o022);
            if libc::chroot(croot.as_ptr()) != 0 || libc::chdir(c"/".as_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{}.{}: {e}", s.name_version, s.kind))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let line_prefix = format!("{prefix}* ");
    std::thread::scope(|sc| {
        if let Some(e) = stderr {
            let lp = line_prefix.clone();
            sc.spawn(move || {
                for line in BufReader::new(e).split(b'\n').map_while(Result::ok) {
                    let l = String::from_utf8_lossy(&line);
                    eprintln!("{lp}{}", l.strip_prefix("* ").unwrap_or(&l));
                }
            });
        }
        if let Some(o) = stdout {
            for line in BufReader::new(o).split(b'\n').map_while(Result::ok) {
                let l = String::from_utf8_lossy(&line);
                out.msg(&format!(
                    "{line_prefix}{}",
                    l.strip_prefix("* ").unwrap_or(&l)
                ));
            }
        }
    });
    let st = child.wait().map_err(|e| e.to_string())?;
    match (st.code(), st.signal()) {
        (Some(0), _) => Ok(()),
        (Some(c), _) => Err(format!("exited with error {c}")),
        (None, Some(sig)) => Err(format!("killed by signal {sig}")),
        _ => Err("failed".into()),
    }
}

/// Mounts made for scripts, undone on drop.
pub(crate) struct ScriptMounts(Vec<PathBuf>);

impl Drop for ScriptMounts {
    fn drop(&mut self) {
        for m in self.0.iter().rev() {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// `/proc` for the whole commit when the root has none (scripts and triggers read it).
pub(crate) fn mount_proc(root: &Root) -> ScriptMounts {
    let mut m = Vec::new();
    let proc_dir = root.host_path("proc");
    if root.path != Path::new("/") && !proc_dir.join("self").exists() {
        let _ = root.mkdir_p("proc", 0o755);
        if nix::mount::mount(
            Some("proc"),
            &proc_dir,
            Some("proc"),
            nix::mount::MsFlags::MS_NOSUID
                | nix::mount::MsFlags::MS_NODEV
                | nix::mount::MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .is_ok()
        {
            m.push(proc_dir);
        }
    }
    ScriptMounts(m)
}

/// A private `/dev` with the basic nodes, mounted over the root's `dev` only while a script runs
/// when the root has no `dev/null`. (Never bind the host's /dev there: packages extract into `dev/`,
/// and their files must land in the root, not on the host.)
pub(crate) fn mount_dev_for_script(root: &Root) -> ScriptMounts {
    let mut m = Vec::new();
    let dev_dir = root.host_path("dev");
    if root.path == Path::new("/") || dev_dir.join("null").exists() {
        return ScriptMounts(m);
    }
    let _ = root.mkdir_p("dev", 0o755);
    if nix::mount::mount(
        Some("apkdev"),
        &dev_dir,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NOEXEC,
        Some("mode=0755,size=64k"),
    )
    .is_err()
    {
        return ScriptMounts(m);
    }
    for (name, major, minor, mode) in [
        ("null", 1, 3, 0o666),
        ("zero", 1, 5, 0o666),
        ("full", 1, 7, 0o666),
        ("random", 1, 8, 0o666),
        ("urandom", 1, 9, 0o666),
        ("tty", 5, 0, 0o666),
    ] {
        let _ = nix::sys::stat::mknod(
            &dev_dir.join(name),
            SFlag::S_IFCHR,
            FMode::from_bits_truncate(mode),
            nix::sys::stat::makedev(major, minor),
        );
        let _ = std::fs::set_permissions(
            dev_dir.join(name),
            std::os::unix::fs::PermissionsExt::from_mode(mode),
        );
    }
    let _ = std::os::unix::fs::symlink("/proc/self/fd", dev_dir.join("fd"));
    m.push(dev_dir);
    ScriptMounts(m)
}
