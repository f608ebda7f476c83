//! How much input the apk core holds in memory, in one place (apk/README.md, "Limits"). The boot
//! init links this crate, and PID 1 must never abort on memory because a medium or a server sent
//! something huge: every file is read against a bound, and a file over its bound is refused with
//! an error naming it and both sizes before it is read.

use std::io::{self, Read};
use std::path::Path;

/// A signed `APKINDEX.tar.gz` (Alpine 3.19's community index is 1.7 MiB).
pub const INDEX_FILE: u64 = 64 << 20;
/// The inflated content of one index, all members together (community 3.19: 7.3 MiB of text).
pub const INDEX_CONTENT: usize = 256 << 20;
/// A package file whose index entry gives no size (`S:`); with a size, that size is the bound.
pub const PACKAGE_WITHOUT_SIZE: u64 = 1 << 30;
/// Files of the root's own state: the installed database, world, repositories, keys, scripts.
pub const STATE_FILE: u64 = 256 << 20;

/// A cache's `installed` file: entries of packages installed from files (not signed, so
/// smaller than the root's own state; a thousand entries take about 1 MiB).
pub const CACHED_INSTALLED: u64 = 16 << 20;

/// A public key file (a 4096-bit RSA key in PEM is under 1 KiB).
pub const KEY_FILE: u64 = 64 << 10;

/// The inflated data section of a package whose index gives `installed_size` (`I:`): the files'
/// bytes, plus tar headers and padding, with room for small files rounding up.
pub fn data_section(installed_size: u64) -> usize {
    let bound = installed_size
        .saturating_add(installed_size / 4)
        .saturating_add(64 << 20);
    usize::try_from(bound).unwrap_or(usize::MAX)
}

/// A file over its bound.
#[derive(Debug, thiserror::Error)]
#[error("{size} bytes, more than the {limit} allowed")]
pub struct TooLarge {
    /// Its size.
    pub size: u64,
    /// The bound.
    pub limit: u64,
}

/// Read all of `f` into `buf` if it is at most `limit` bytes: its size is checked first, and the
/// read stops past the bound anyway (a file that grows meanwhile is refused too).
pub fn read_into(f: &mut std::fs::File, limit: u64, buf: &mut Vec<u8>) -> io::Result<()> {
    let size = f.metadata()?.len();
    if size > limit {
        return Err(io::Error::other(TooLarge { size, limit }));
    }
    buf.clear();
    buf.reserve(size as usize);
    f.take(limit + 1).read_to_end(buf)?;
    if buf.len() as u64 > limit {
        let size = buf.len() as u64;
        return Err(io::Error::other(TooLarge { size, limit }));
    }
    Ok(())
}

/// A path that names something other than a regular file (a FIFO, a device, a directory).
#[derive(Debug, thiserror::Error)]
#[error("not a regular file")]
pub struct NotRegular;

/// Open `path` for reading only if it is a regular file. A medium may hold a FIFO (an open would
/// block PID 1 for ever) or a symlink to `/dev/zero` (a read would never end): the open does not
/// block (`O_NONBLOCK`, which regular files ignore) and anything that is not a regular file is
/// refused before a byte is read.
pub fn open(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::other(NotRegular));
    }
    Ok(f)
}

/// Read file `path` if it is a regular file of at most `limit` bytes.
pub fn read(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let mut f = open(path)?;
    let mut buf = Vec::new();
    read_into(&mut f, limit, &mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_over_the_bound_are_refused_before_reading() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        std::fs::write(&f, vec![1u8; 1000]).unwrap();
        assert_eq!(read(&f, 1000).unwrap().len(), 1000);
        let e = read(&f, 999).unwrap_err();
        assert_eq!(e.to_string(), "1000 bytes, more than the 999 allowed");
    }

    #[test]
    fn fifos_and_devices_are_refused_without_blocking() {
        let t = tempfile::tempdir().unwrap();
        let fifo = t.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Without O_NONBLOCK this open would wait for a writer for ever.
        assert_eq!(
            read(&fifo, 10).unwrap_err().to_string(),
            "not a regular file"
        );
        let zero = t.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert_eq!(
            read(&zero, 10).unwrap_err().to_string(),
            "not a regular file"
        );
        assert_eq!(
            read(t.path(), 10).unwrap_err().to_string(),
            "not a regular file"
        );
    }
}
