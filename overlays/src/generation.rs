//! The generation file a medium keeps beside the overlay (overlays/README.md, "Generation file").
//!
//! `HOST.apkovl.generation` holds the generation of the newest overlay `lbu` committed for
//! `HOST`, in decimal with a newline. The boot refuses a signed overlay whose statement carries
//! an older generation ([`crate::check_binding`]), so a backup or an older copy renamed over the
//! current overlay does not boot. `lbu` writes it after the overlay and its `.sig`: a crash in
//! between leaves overlay N with file N-1, which still boots. The name never matches the boot's
//! overlay pattern `*.apkovl.tar.gz*` nor a backup name `HOST.<digits>.tar.gz*`.

use crate::Error;
use std::path::Path;

/// Suffix after the host name.
pub const SUFFIX: &str = ".apkovl.generation";

/// Largest file accepted: 20 digits (`u64::MAX`) and a newline, with room for a `\r`.
pub const MAX_BYTES: usize = 22;

/// The generation file's name for `host` (`HOST.apkovl.generation`).
pub fn file_name(host: &str) -> String {
    format!("{host}{SUFFIX}")
}

/// Parse the file's bytes: decimal digits, optionally followed by one newline (`\n` or `\r\n`).
pub fn parse(bytes: &[u8]) -> Result<u64, Error> {
    let bad = |reason: &'static str| Error::Generation {
        subject: "generation file".into(),
        reason,
    };
    if bytes.len() > MAX_BYTES {
        return Err(bad("longer than a number"));
    }
    let digits = bytes
        .strip_suffix(b"\r\n")
        .or_else(|| bytes.strip_suffix(b"\n"))
        .unwrap_or(bytes);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad("not a decimal number"));
    }
    // Only ASCII digits: the conversion cannot fail, and the parse fails only on overflow.
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| bad("number too large"))
}

/// The generation recorded for `host` in `dir` (a medium's top level); `None` when there is no
/// file. A file that does not hold a number is an error naming it (the boot must not guess).
pub fn read(dir: &Path, host: &str) -> Result<Option<u64>, Error> {
    let path = dir.join(file_name(host));
    let bytes = match crate::read_bounded(&path, MAX_BYTES as u64) {
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(Error::FileTooLarge { .. }) => {
            return Err(Error::Generation {
                subject: path.display().to_string(),
                reason: "longer than a number",
            })
        }
        other => other?,
    };
    match parse(&bytes) {
        Err(Error::Generation { reason, .. }) => Err(Error::Generation {
            subject: path.display().to_string(),
            reason,
        }),
        other => other.map(Some),
    }
}

/// The file's bytes for generation `n`.
pub fn render(n: u64) -> Vec<u8> {
    format!("{n}\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_is_outside_the_boot_pattern() {
        assert_eq!(file_name("fw1"), "fw1.apkovl.generation");
        assert_eq!(crate::kind_of(&file_name("fw1")), None);
    }

    #[test]
    fn round_trip_and_refusals() {
        for n in [0, 1, 42, u64::MAX] {
            assert_eq!(parse(&render(n)).unwrap(), n);
        }
        assert_eq!(parse(b"7").unwrap(), 7);
        assert_eq!(parse(b"7\r\n").unwrap(), 7);
        for bad in [
            &b""[..],
            b"\n",
            b"-1\n",
            b"+1\n",
            b" 1\n",
            b"1 \n",
            b"1\n\n",
            b"0x10\n",
            b"18446744073709551616\n",
            b"00000000000000000000001\n",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            parse(b"abc").unwrap_err().to_string(),
            "generation file: not a decimal number"
        );
    }

    #[test]
    fn read_names_the_file() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(read(t.path(), "fw1").unwrap(), None);
        std::fs::write(t.path().join("fw1.apkovl.generation"), render(12)).unwrap();
        assert_eq!(read(t.path(), "fw1").unwrap(), Some(12));
        std::fs::write(t.path().join("fw1.apkovl.generation"), "twelve\n").unwrap();
        assert_eq!(
            read(t.path(), "fw1").unwrap_err().to_string(),
            format!(
                "{}/fw1.apkovl.generation: not a decimal number",
                t.path().display()
            )
        );
        std::fs::write(t.path().join("fw1.apkovl.generation"), vec![b'1'; 4096]).unwrap();
        assert!(read(t.path(), "fw1")
            .unwrap_err()
            .to_string()
            .ends_with("longer than a number"));
    }

    /// Review finding: a FIFO planted as the generation file blocked the boot's open for ever.
    #[test]
    fn a_fifo_or_device_is_refused_without_blocking() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("fw1.apkovl.generation");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = read(t.path(), "fw1").unwrap_err().to_string();
        assert!(e.ends_with("not a regular file"), "{e}");
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        let e = read(t.path(), "fw1").unwrap_err().to_string();
        assert!(e.ends_with("not a regular file"), "{e}");
        let e = crate::read_file(&path).unwrap_err().to_string();
        assert!(e.ends_with("not a regular file"), "{e}");
    }
}
