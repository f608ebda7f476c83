//! `pre-package.d` / `post-package.d` hooks (lbu/README.md, "Hooks"), run as `run-parts` would:
//! executables whose names are letters, digits, `_` and `-`, in lexical order, stdout sent to
//! stderr so a hook can never corrupt `lbu package -`. Only `commit` and `package` run them, as
//! Alpine does. A hook belongs to the system being saved: with `--root DIR` it runs chrooted
//! into `DIR` (through `chroot(8)`, so its interpreter and every path it touches are the
//! root's), never on the host.

use crate::Error;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Hook directories under the root.
pub const PRE: &str = "etc/lbu/pre-package.d";
/// See [`PRE`].
pub const POST: &str = "etc/lbu/post-package.d";

/// Run the hooks of `dir` under `root`; the first failure is returned.
pub fn run(root: &Path, dir: &str) -> Result<(), Error> {
    let d = root.join(dir);
    let Ok(rd) = std::fs::read_dir(&d) else {
        return Ok(());
    };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
        .collect();
    names.sort();
    let chrooted = root != Path::new("/");
    for n in names {
        let p = d.join(&n);
        let Ok(m) = std::fs::metadata(&p) else {
            continue;
        };
        if !m.is_file() || m.permissions().mode() & 0o111 == 0 {
            continue;
        }
        let stderr = std::io::stderr().lock();
        let out: std::process::Stdio = match std::os::fd::AsFd::as_fd(&stderr).try_clone_to_owned()
        {
            Ok(fd) => fd.into(),
            Err(_) => std::process::Stdio::null(),
        };
        drop(stderr);
        let mut cmd = if chrooted {
            let mut c = std::process::Command::new("chroot");
            c.arg(root).arg(format!("/{dir}/{n}"));
            c
        } else {
            std::process::Command::new(&p)
        };
        let status = cmd.current_dir("/").stdout(out).status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                return Err(Error::Hook {
                    path: p,
                    reason: s.to_string(),
                })
            }
            Err(e) => {
                return Err(Error::Hook {
                    path: p,
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(())
}
