//! The host's boot loader files and tools, and the Debian/Alpine packages that provide them, so
//! that a missing one is named in the error ("install the syslinux-common package").

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::error::Error;

/// A program or file mkimage takes from the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostTool {
    /// Program name (looked up in `PATH`) or absolute file path.
    pub name: &'static str,
    /// What it is needed for, as the user asked for it.
    pub purpose: &'static str,
    /// The Debian package that installs it.
    pub debian: &'static str,
    /// The Alpine package that installs it.
    pub alpine: &'static str,
}

impl HostTool {
    fn missing(&self, what: &str) -> Error {
        let install = if self.debian == self.alpine {
            format!("Debian and Alpine: install the {} package", self.debian)
        } else {
            format!(
                "Debian: install the {} package, Alpine: {}",
                self.debian, self.alpine
            )
        };
        Error::Tool {
            tool: self.name,
            reason: format!("{what} (needed for {}; {install})", self.purpose),
        }
    }

    /// The file, which must exist.
    pub fn file(&self) -> Result<PathBuf, Error> {
        let path = Path::new(self.name);
        if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(self.missing("not found"))
        }
    }

    /// Runs the program with `args` (set on `cmd`, whose program must be `self.name`); a
    /// failure is one line: its exit status and the last line it printed on stderr.
    pub fn run(&self, cmd: &mut Command) -> Result<Output, Error> {
        let output = match cmd.output() {
            Ok(o) => o,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(self.missing("not found in PATH"))
            }
            Err(e) => {
                return Err(Error::Tool {
                    tool: self.name,
                    reason: e.to_string(),
                })
            }
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message");
            return Err(Error::Tool {
                tool: self.name,
                reason: format!("{}: {}", output.status, last.trim()),
            });
        }
        Ok(output)
    }

    /// A command for the program.
    pub fn command(&self) -> Command {
        Command::new(self.name)
    }
}

/// A scratch directory for a tool's input and output files, removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    /// A new, private directory under the system's temporary directory.
    pub fn new(what: &str) -> Result<Scratch, Error> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("mkimage-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        Ok(Scratch(path))
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_names_its_packages() {
        let t = HostTool {
            name: "/nonexistent/ldlinux.c32",
            purpose: "BIOS boot",
            debian: "syslinux-common",
            alpine: "syslinux",
        };
        assert_eq!(
            t.file().unwrap_err().to_string(),
            "/nonexistent/ldlinux.c32: not found (needed for BIOS boot; Debian: install the syslinux-common package, Alpine: syslinux)"
        );
        let t = HostTool {
            name: "mkimage-test-no-such-program",
            purpose: "--format iso",
            debian: "xorriso",
            alpine: "xorriso",
        };
        assert_eq!(
            t.run(&mut t.command()).unwrap_err().to_string(),
            "mkimage-test-no-such-program: not found in PATH (needed for --format iso; Debian and Alpine: install the xorriso package)"
        );
        let t = HostTool { name: "false", ..t };
        assert!(t
            .run(&mut t.command())
            .unwrap_err()
            .to_string()
            .starts_with("false: exit status: 1"));
    }
}
