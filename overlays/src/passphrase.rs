//! Passphrase files: the one way lbu (`PASSWORD_FILE`) and mkimage (`--ovl-passphrase-file`)
//! read the passphrase of an encrypted overlay from a file.
//!
//! The file must be private: a regular file owned by root (or by the user reading it), not
//! accessible to group or others. It is opened once, without following a final symbolic link and
//! without blocking (a FIFO is refused, not waited on), and the checks are made on what was
//! opened, so nothing can be swapped between check and read. Its first line is the passphrase
//! (a CR before the newline is dropped); at most [`MAX_PASSPHRASE`] bytes, read into one buffer of
//! fixed size (never grown: no reallocation leaves copies behind) that is zeroed when dropped. A
//! longer first line is an error, never a cut passphrase. Errors never contain the passphrase.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use zeroize::Zeroizing;

/// The longest first line accepted.
pub const MAX_PASSPHRASE: usize = 4096;

/// What the permission errors ask for.
const PRIVATE: &str = "it must be a regular file owned by root with mode 0600 or stricter";

/// Why a passphrase file was refused (the caller names the file).
#[derive(Debug, thiserror::Error)]
pub enum PassphraseFileError {
    /// It could not be opened or read (a symbolic link: "Too many levels of symbolic links").
    #[error("{}", apk::root::io_message(.0))]
    Io(#[from] std::io::Error),
    /// A directory, FIFO, device...
    #[error("not a regular file ({PRIVATE})")]
    NotRegular,
    /// Owned by someone else than root or the reader.
    #[error("owned by uid {0} ({PRIVATE}, or by the user reading it)")]
    Owner(u32),
    /// Group or others may read or write it.
    #[error("mode {0:04o}: group or others may access it ({PRIVATE}: chmod 600)")]
    Mode(u32),
    /// Its first line is over [`MAX_PASSPHRASE`] bytes.
    #[error("its first line is longer than {MAX_PASSPHRASE} bytes")]
    TooLong,
    /// The passphrase is not UTF-8 text.
    #[error("the passphrase is not UTF-8 text")]
    NotUtf8,
    /// The first line is empty.
    #[error("empty: its first line is the passphrase")]
    Empty,
}

/// The passphrase in the first line of `path` (see the module documentation).
pub fn read_passphrase_file(path: &Path) -> Result<Zeroizing<String>, PassphraseFileError> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits())
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(PassphraseFileError::NotRegular);
    }
    if meta.uid() != 0 && meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(PassphraseFileError::Owner(meta.uid()));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(PassphraseFileError::Mode(meta.mode() & 0o7777));
    }
    // One allocation, never grown: the CR and newline ending the longest accepted line fit.
    let mut buf = Zeroizing::new(vec![0u8; MAX_PASSPHRASE + 2]);
    let mut len = 0;
    while len < buf.len() && !buf[..len].contains(&b'\n') {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let data = &buf[..len];
    let line = &data[..data.iter().position(|&b| b == b'\n').unwrap_or(len)];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > MAX_PASSPHRASE {
        return Err(PassphraseFileError::TooLong);
    }
    let text = std::str::from_utf8(line).map_err(|_| PassphraseFileError::NotUtf8)?;
    if text.is_empty() {
        return Err(PassphraseFileError::Empty);
    }
    Ok(Zeroizing::new(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(p: &Path, text: &[u8], mode: u32) {
        std::fs::write(p, text).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn the_first_line_of_a_private_file_is_the_passphrase() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("passphrase");
        write(&p, b"correct horse\r\nsecond\n", 0o600);
        assert_eq!(read_passphrase_file(&p).unwrap().as_str(), "correct horse");
        write(&p, b"no newline", 0o400);
        assert_eq!(read_passphrase_file(&p).unwrap().as_str(), "no newline");
        // The longest line is accepted whole, with or without its line end; one byte more is an
        // error, not a cut passphrase.
        let mut long = vec![b'a'; MAX_PASSPHRASE];
        write(&p, &long, 0o600);
        assert_eq!(read_passphrase_file(&p).unwrap().len(), MAX_PASSPHRASE);
        long.extend_from_slice(b"\r\n");
        write(&p, &long, 0o600);
        assert_eq!(read_passphrase_file(&p).unwrap().len(), MAX_PASSPHRASE);
        long.insert(0, b'a');
        write(&p, &long, 0o600);
        assert_eq!(
            read_passphrase_file(&p).unwrap_err().to_string(),
            "its first line is longer than 4096 bytes"
        );
    }

    #[test]
    fn public_linked_special_empty_and_binary_files_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("passphrase");
        write(&p, b"correct horse\n", 0o640);
        assert_eq!(
            read_passphrase_file(&p).unwrap_err().to_string(),
            "mode 0640: group or others may access it (it must be a regular file owned by root \
             with mode 0600 or stricter: chmod 600)"
        );
        write(&p, b"correct horse\n", 0o604);
        assert!(matches!(
            read_passphrase_file(&p),
            Err(PassphraseFileError::Mode(0o604))
        ));
        write(&p, b"correct horse\n", 0o600);
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert_eq!(
            read_passphrase_file(&link).unwrap_err().to_string(),
            "Too many levels of symbolic links"
        );
        // A FIFO is refused at once (opened without blocking), a directory too.
        let fifo = t.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(
            read_passphrase_file(&fifo),
            Err(PassphraseFileError::NotRegular)
        ));
        assert!(matches!(
            read_passphrase_file(t.path()),
            Err(PassphraseFileError::NotRegular)
        ));
        write(&p, b"\nsecond\n", 0o600);
        assert_eq!(
            read_passphrase_file(&p).unwrap_err().to_string(),
            "empty: its first line is the passphrase"
        );
        write(&p, b"\xff\xfe\n", 0o600);
        assert!(matches!(
            read_passphrase_file(&p),
            Err(PassphraseFileError::NotUtf8)
        ));
        assert!(matches!(
            read_passphrase_file(&t.path().join("absent")),
            Err(PassphraseFileError::Io(_))
        ));
    }
}
