//! ISO 9660 images through `xorriso` (its `mkisofs` emulation), the tool Alpine's own
//! `mkimage.sh` uses.
//!
//! The tree is staged as a directory first (the same writer as `--format dir`), then packed with
//! Rock Ridge (long names, as Linux reads them) and Joliet (long names for other systems), with
//! `-r` so owners and modes are normalised and do not leak from the build host. The volume id is
//! the label, which is what blkid reports as LABEL. `SOURCE_DATE_EPOCH` is passed on: xorriso then
//! takes its volume times and UUID from it.

use std::io;
use std::path::Path;
use std::process::Command;

use crate::error::Error;

/// Packs the staged tree `stage` into the ISO image `out`.
pub fn write_iso(stage: &Path, out: &Path, label: &str, mtime: u64) -> Result<(), Error> {
    let result = Command::new("xorriso")
        .args([
            "-as",
            "mkisofs",
            "-quiet",
            "-r",
            "-J",
            "-joliet-long",
            "-iso-level",
            "3",
            "-V",
            label,
            "-o",
        ])
        .arg(out)
        .arg(stage)
        .env("SOURCE_DATE_EPOCH", mtime.to_string())
        .output();
    let output = match result {
        Ok(o) => o,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::Tool {
                tool: "xorriso",
                reason: "not found in PATH (needed for --format iso; Debian and Alpine: install the xorriso package)".into(),
            })
        }
        Err(e) => return Err(Error::Tool { tool: "xorriso", reason: e.to_string() }),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no message");
        return Err(Error::Tool {
            tool: "xorriso",
            reason: format!("{}: {}", output.status, last.trim()),
        });
    }
    Ok(())
}
