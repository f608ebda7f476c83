//! The reader: one newc archive as a stream of headers, each entry's data read on demand or
//! skipped, so memory stays small whatever the archive holds.
//!
//! Every length comes from the archive, so every one is checked before it is used: a name longer
//! than `PATH_MAX`, a header that is not hex, or a stream that ends inside an entry is an error
//! naming the byte offset, never a panic or a huge allocation.

use std::io::{self, Read};

use super::{pad4, HEADER_LEN, MAGIC, MAX_NAME, S_IFMT, S_IFREG, TRAILER};

/// Why an archive could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The underlying reader failed (a file, or a decompressor that found corrupt data).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The stream ended inside an entry.
    #[error("not a newc archive (truncated {what} at byte {offset})")]
    Truncated {
        /// `header`, `name` or `data`.
        what: &'static str,
        /// Offset of the entry's header in the (decompressed) stream.
        offset: u64,
    },
    /// A header that is not a newc header.
    #[error("not a newc archive ({reason} at byte {offset})")]
    BadHeader {
        /// `bad magic`, `bad header` (a field that is not hex) or `bad name size`.
        reason: &'static str,
        /// Offset of the header in the (decompressed) stream.
        offset: u64,
    },
    /// [`super::scan`]: the data after an archive is neither an archive nor a stream compressed in
    /// a way we read.
    #[error("unknown compression (gzip, zstd, xz or none expected)")]
    UnknownCompression,
    /// [`super::scan`]: an xz stream that unpacks to more than [`super::MAX_XZ_UNPACKED`] or is
    /// corrupt.
    #[error("xz: {0}")]
    Xz(String),
}

/// One entry's header (the fields of the newc header and the name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name as stored (usually relative, without a leading `/` or `./`).
    pub name: String,
    /// Inode number (entries with the same number and `nlink` > 1 are hard links).
    pub ino: u32,
    /// Full mode (type and permissions).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Link count.
    pub nlink: u32,
    /// Modification time (seconds since the epoch).
    pub mtime: u32,
    /// Length of the data (file contents or link target).
    pub size: u32,
    /// Major and minor of a device node.
    pub rdev: (u32, u32),
}

impl Header {
    /// Whether the entry is a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    /// The name without a leading `./` or `/` (how the kernel places it below the root).
    pub fn path(&self) -> &str {
        let mut name = self.name.as_str();
        loop {
            match name.strip_prefix("./").or_else(|| name.strip_prefix('/')) {
                Some(rest) => name = rest,
                None => return name,
            }
        }
    }
}

/// A streaming reader of one newc archive.
///
/// ```
/// # fn main() -> Result<(), mkinitfs::cpio::ReadError> {
/// # let bytes = mkinitfs::cpio::write_tree(&mkinitfs::tree::Tree::new(), 0, Vec::new(), std::path::Path::new("x")).unwrap();
/// let mut archive = mkinitfs::cpio::Reader::new(&bytes[..]);
/// while let Some(header) = archive.next_entry()? {
///     if header.path() == "etc/hostname" {
///         let mut text = String::new();
///         std::io::Read::read_to_string(&mut archive.data(), &mut text)?;
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Reader<R> {
    inner: R,
    /// Bytes consumed from `inner`.
    offset: u64,
    /// Data of the current entry not read yet.
    left: u64,
    /// Padding after the current entry's data.
    pad: u64,
    /// Offset of the current entry's header (for errors).
    entry: u64,
    /// The trailer has been read.
    done: bool,
}

impl<R: Read> Reader<R> {
    /// A reader positioned at the start of an archive.
    pub fn new(inner: R) -> Self {
        Reader {
            inner,
            offset: 0,
            left: 0,
            pad: 0,
            entry: 0,
            done: false,
        }
    }

    /// The next entry's header, or `None` after the trailer. Data of the previous entry that
    /// was not read is skipped.
    pub fn next_entry(&mut self) -> Result<Option<Header>, ReadError> {
        if self.done {
            return Ok(None);
        }
        self.skip_rest()?;
        let offset = self.offset;
        self.entry = offset;
        let mut raw = [0u8; HEADER_LEN];
        self.fill(&mut raw, "header")?;
        if &raw[..6] != MAGIC.as_bytes() {
            return Err(ReadError::BadHeader {
                reason: "bad magic",
                offset,
            });
        }
        let field = |i: usize| -> Result<u32, ReadError> {
            std::str::from_utf8(&raw[6 + i * 8..14 + i * 8])
                .ok()
                .and_then(|text| u32::from_str_radix(text, 16).ok())
                .ok_or(ReadError::BadHeader {
                    reason: "bad header",
                    offset,
                })
        };
        let name_size = field(11)? as usize;
        if name_size == 0 || name_size > MAX_NAME {
            return Err(ReadError::BadHeader {
                reason: "bad name size",
                offset,
            });
        }
        // The name (with its NUL) is padded so that header + name is a multiple of 4.
        let name_padded = pad4((HEADER_LEN + name_size) as u64) as usize - HEADER_LEN;
        let mut name = vec![0u8; name_padded];
        self.fill(&mut name, "name")?;
        name.truncate(name_size - 1);
        let header = Header {
            name: String::from_utf8_lossy(&name).into_owned(),
            ino: field(0)?,
            mode: field(1)?,
            uid: field(2)?,
            gid: field(3)?,
            nlink: field(4)?,
            mtime: field(5)?,
            size: field(6)?,
            rdev: (field(9)?, field(10)?),
        };
        if header.name == TRAILER {
            self.done = true;
            return Ok(None);
        }
        self.left = u64::from(header.size);
        self.pad = pad4(self.left) - self.left;
        Ok(Some(header))
    }

    /// A reader over the current entry's data (what is left of it). A stream that ends before
    /// the size in the header is an error when read.
    pub fn data(&mut self) -> Data<'_, R> {
        Data { archive: self }
    }

    /// The current entry's data, whole, if it is at most `max` bytes; `None` (data left unread)
    /// if it is larger.
    pub fn read_data(&mut self, max: u64) -> Result<Option<Vec<u8>>, ReadError> {
        if self.left > max {
            return Ok(None);
        }
        let mut out = vec![0u8; self.left as usize];
        self.fill(&mut out, "data")?;
        self.left = 0;
        Ok(Some(out))
    }

    /// The inner reader, positioned after the trailer once [`Reader::next_entry`] returned `None`.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Skips the unread data and the padding of the current entry.
    fn skip_rest(&mut self) -> Result<(), ReadError> {
        let want = self.left + self.pad;
        if want == 0 {
            return Ok(());
        }
        let got = io::copy(&mut (&mut self.inner).take(want), &mut io::sink())?;
        self.offset += got;
        if got != want {
            return Err(ReadError::Truncated {
                what: "data",
                offset: self.entry,
            });
        }
        self.left = 0;
        self.pad = 0;
        Ok(())
    }

    /// Reads exactly `buf.len()` bytes.
    fn fill(&mut self, buf: &mut [u8], what: &'static str) -> Result<(), ReadError> {
        match self.inner.read_exact(buf) {
            Ok(()) => {
                self.offset += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(ReadError::Truncated {
                what,
                offset: self.entry,
            }),
            Err(e) => Err(e.into()),
        }
    }
}

/// The data of the current entry of a [`Reader`] (see [`Reader::data`]).
#[derive(Debug)]
pub struct Data<'a, R> {
    archive: &'a mut Reader<R>,
}

impl<R: Read> Read for Data<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let a = &mut *self.archive;
        if a.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(a.left).unwrap_or(usize::MAX));
        let n = a.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("not a newc archive (truncated data at byte {})", a.entry),
            ));
        }
        a.left -= n as u64;
        a.offset += n as u64;
        Ok(n)
    }
}

/// An entry with its data, as [`parse`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEntry {
    /// Name as stored.
    pub name: String,
    /// Inode number.
    pub ino: u32,
    /// Full mode (type and permissions).
    pub mode: u32,
    /// Link count.
    pub nlink: u32,
    /// Modification time.
    pub mtime: u32,
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Device numbers for device nodes.
    pub rdev: (u32, u32),
    /// Data (file contents or link target).
    pub data: Vec<u8>,
}

/// Every entry of one archive in memory, up to the trailer (for tests and small archives; use
/// [`Reader`] for anything large).
pub fn parse(bytes: &[u8]) -> Result<Vec<ParsedEntry>, ReadError> {
    let mut archive = Reader::new(bytes);
    let mut out = Vec::new();
    while let Some(h) = archive.next_entry()? {
        // The header's size is the archive's claim: the body cannot be longer than the input.
        let mut data = Vec::with_capacity((h.size as usize).min(bytes.len()));
        archive.data().read_to_end(&mut data)?;
        out.push(ParsedEntry {
            name: h.name,
            ino: h.ino,
            mode: h.mode,
            nlink: h.nlink,
            mtime: h.mtime,
            uid: h.uid,
            gid: h.gid,
            rdev: h.rdev,
            data,
        });
    }
    Ok(out)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A newc archive of regular files (mode 0644), as another tool would write it.
    pub(crate) fn newc(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut push = |name: &str, data: &[u8], mode: u32| {
            let header = format!(
                "070701{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
                1,
                mode,
                0,
                0,
                1,
                0,
                data.len(),
                0,
                0,
                0,
                0,
                name.len() + 1,
                0
            );
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            while out.len() % 4 != 0 {
                out.push(0);
            }
            out.extend_from_slice(data);
            while out.len() % 4 != 0 {
                out.push(0);
            }
        };
        for (name, data) in files {
            push(name, data, 0o100644);
        }
        push(TRAILER, b"", 0);
        out
    }

    #[test]
    fn reads_entries_and_skips_unread_data() {
        let bytes = newc(&[("./a", b"hello"), ("b", b"xyz12"), ("/c", b"")]);
        let mut r = Reader::new(&bytes[..]);
        let a = r.next_entry().unwrap().unwrap();
        assert_eq!((a.path(), a.size, a.is_file()), ("a", 5, true));
        // Part of a's data only: the rest and its padding are skipped.
        let mut two = [0u8; 2];
        r.data().read_exact(&mut two).unwrap();
        assert_eq!(&two, b"he");
        let b = r.next_entry().unwrap().unwrap();
        assert_eq!(b.path(), "b");
        assert_eq!(r.read_data(4).unwrap(), None);
        assert_eq!(r.read_data(5).unwrap().unwrap(), b"xyz12");
        assert_eq!(r.next_entry().unwrap().unwrap().path(), "c");
        assert!(r.next_entry().unwrap().is_none());
        assert!(r.next_entry().unwrap().is_none());
        assert!(r.into_inner().is_empty());
    }

    #[test]
    fn hostile_archives_are_errors_with_offsets() {
        let good = newc(&[("a", b"hello")]);
        for (bytes, want) in [
            (
                &good[..50],
                "not a newc archive (truncated header at byte 0)",
            ),
            (
                &good[..111],
                "not a newc archive (truncated name at byte 0)",
            ),
            (
                &good[..116],
                "not a newc archive (truncated data at byte 0)",
            ),
            (
                &b"070702"[..],
                "not a newc archive (truncated header at byte 0)",
            ),
        ] {
            let err = parse(bytes).unwrap_err().to_string();
            assert_eq!(err, want);
        }
        let mut magic = good.clone();
        magic[5] = b'2';
        assert_eq!(
            parse(&magic).unwrap_err().to_string(),
            "not a newc archive (bad magic at byte 0)"
        );
        let mut field = good.clone();
        field[10] = b'Z';
        assert_eq!(
            parse(&field).unwrap_err().to_string(),
            "not a newc archive (bad header at byte 0)"
        );
        // A name size beyond PATH_MAX, and a zero name size, are refused before any allocation.
        for size in ["00001001", "00000000", "FFFFFFFF"] {
            let mut big = good.clone();
            big[94..102].copy_from_slice(size.as_bytes());
            assert_eq!(
                parse(&big).unwrap_err().to_string(),
                "not a newc archive (bad name size at byte 0)",
                "{size}"
            );
        }
        // A huge declared size with no data: an error, no allocation of the declared size.
        let mut huge = newc(&[("a", b"")]);
        huge[54..62].copy_from_slice(b"FFFFFFFF");
        let mut r = Reader::new(&huge[..]);
        r.next_entry().unwrap().unwrap();
        assert_eq!(r.read_data(1 << 20).unwrap(), None);
        assert!(r.next_entry().is_err());
        // parse() too (cargo fuzz found it reserving the declared 2.4 GB before reading).
        huge[54..62].copy_from_slice(b"90000002");
        assert_eq!(
            parse(&huge).unwrap_err().to_string(),
            "not a newc archive (truncated data at byte 0)"
        );
    }
}
