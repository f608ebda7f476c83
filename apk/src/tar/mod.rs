//! A tar reader and writer with apk's rules (apk-tools v3 `src/tar.c`, apk-format.md §1.4).
//!
//! Reading: only `magic[0..5] == "ustar"` is checked (POSIX and old-GNU both pass), numeric fields
//! are octal, PAX `x` headers (`path`, `linkpath`, `SCHILY.xattr.*`, `APK-TOOLS.checksum.SHA1`) and
//! GNU `L` long names apply to the next entry, and the second end-of-archive block ends the stream.
//! Writing produces old-GNU headers with correct checksums, PAX records where needed.

use std::io;

mod read;
mod write;

pub use read::{Data, Reader};
pub use write::{Magic, Writer};

/// Longest name or link target accepted (apk: `PATH_MAX - 10`).
pub const MAX_NAME: usize = 4096 - 10;

/// Kind of a tar entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `0`, `7`, or NUL
    File,
    /// `1`
    HardLink,
    /// `2`
    Symlink,
    /// `3`
    CharDev,
    /// `4`
    BlockDev,
    /// `5`
    Dir,
    /// `6`
    Fifo,
}

/// One tar entry's metadata (its content follows in the stream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path as stored (PAX `path` / GNU long name applied).
    pub name: String,
    /// Entry type.
    pub kind: Kind,
    /// Permission bits (`mode & 07777`).
    pub mode: u32,
    /// Numeric owner from the header.
    pub uid: u32,
    /// Numeric group from the header.
    pub gid: u32,
    /// Owner name from the header.
    pub uname: String,
    /// Group name from the header.
    pub gname: String,
    /// Content size.
    pub size: u64,
    /// Modification time.
    pub mtime: u64,
    /// Link target for hard and symbolic links.
    pub link: String,
    /// Device numbers.
    pub dev: (u32, u32),
    /// `SCHILY.xattr.*` PAX records, in archive order.
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// `APK-TOOLS.checksum.SHA1` (content SHA-1, or SHA-1 of a symlink target).
    pub sha1: Option<[u8; 20]>,
}

impl Entry {
    /// A new entry with root ownership and the given kind.
    pub fn new(name: &str, kind: Kind, mode: u32) -> Self {
        Entry {
            name: name.to_string(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            uname: "root".into(),
            gname: "root".into(),
            size: 0,
            mtime: 0,
            link: String::new(),
            dev: (0, 0),
            xattrs: Vec::new(),
            sha1: None,
        }
    }
}

/// Tar format problems.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    /// An I/O error of the underlying reader or writer.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Structurally invalid archive.
    #[error("{0}")]
    Format(String),
    /// The stream ended inside a record or an entry.
    #[error("unexpected end of file")]
    Eof,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(magic: Magic) {
        let mut w = Writer::new(Vec::new(), magic);
        let mut f = Entry::new("etc/motd", Kind::File, 0o644);
        f.sha1 = Some([1u8; 20]);
        f.xattrs = vec![("user.a".into(), b"v".to_vec())];
        f.mtime = 1234;
        w.append(&f, b"hello\n").unwrap();
        let long = format!("usr/{}/file", "d".repeat(150));
        w.append(&Entry::new(&long, Kind::File, 0o600), b"x")
            .unwrap();
        let mut l = Entry::new("bin/sh", Kind::Symlink, 0o777);
        l.link = "/bin/busybox".into();
        w.append(&l, b"").unwrap();
        let mut d = Entry::new("dev/null", Kind::CharDev, 0o666);
        d.dev = (1, 3);
        w.append(&d, b"").unwrap();
        let buf = w.finish().unwrap();
        assert_eq!(buf.len() % 512, 0);
        let mut r = Reader::new(&buf[..]);
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.name, "etc/motd");
        assert_eq!(e.sha1, Some([1u8; 20]));
        assert_eq!(e.xattrs, vec![("user.a".to_string(), b"v".to_vec())]);
        assert_eq!(e.mtime, 1234);
        assert_eq!(r.read_all(100).unwrap(), b"hello\n");
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.name, long);
        assert_eq!(e.mode, 0o600);
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!((e.kind, e.link.as_str()), (Kind::Symlink, "/bin/busybox"));
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!((e.kind, e.dev), (Kind::CharDev, (1, 3)));
        assert!(r.next_entry().unwrap().is_none());
    }

    #[test]
    fn roundtrip_gnu() {
        roundtrip(Magic::Gnu);
    }

    #[test]
    fn roundtrip_posix() {
        roundtrip(Magic::Posix);
    }

    #[test]
    fn host_tar_reads_our_output() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::new(Vec::new(), Magic::Gnu);
        w.pax_extras = false;
        w.append(&Entry::new("a/", Kind::Dir, 0o755), b"").unwrap();
        let long = format!("a/{}", "n".repeat(120));
        w.append(&Entry::new(&long, Kind::File, 0o640), b"content")
            .unwrap();
        let buf = w.finish().unwrap();
        let path = dir.path().join("t.tar");
        std::fs::write(&path, &buf).unwrap();
        let out = std::process::Command::new("tar")
            .arg("-tvf")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(listing.contains(&long), "{listing}");
    }

    #[test]
    fn rejects_garbage() {
        let mut h = [0u8; 512];
        h[0] = b'a';
        let mut r = Reader::new(&h[..]);
        assert!(matches!(r.next_entry(), Err(TarError::Format(_))));
        let mut r = Reader::new(&h[..100]);
        assert!(matches!(r.next_entry(), Err(TarError::Eof)));
        // Truncated content.
        let mut w = Writer::new(Vec::new(), Magic::Gnu);
        w.append(&Entry::new("f", Kind::File, 0o644), &[7u8; 2000])
            .unwrap();
        let buf = w.finish().unwrap();
        let mut r = Reader::new(&buf[..1000]);
        let _ = r.next_entry().unwrap().unwrap();
        assert!(r.read_all(1 << 20).is_err());
    }

    #[test]
    fn data_after_end_is_an_error() {
        let mut w = Writer::new(Vec::new(), Magic::Gnu);
        w.append(&Entry::new("f", Kind::File, 0o644), b"x").unwrap();
        let mut buf = w.finish().unwrap();
        let mut w2 = Writer::new(Vec::new(), Magic::Gnu);
        w2.append(&Entry::new("g", Kind::File, 0o644), b"y")
            .unwrap();
        buf.extend(w2.into_inner_cut().unwrap());
        let mut r = Reader::new(&buf[..]);
        r.next_entry().unwrap().unwrap();
        assert!(r.next_entry().is_err());
    }

    #[test]
    fn content_slices_without_copy() {
        let mut w = Writer::new(Vec::new(), Magic::Gnu);
        w.append(&Entry::new("a", Kind::File, 0o644), &[1u8; 700])
            .unwrap();
        w.append(&Entry::new("b", Kind::File, 0o644), b"xyz")
            .unwrap();
        let buf = w.finish().unwrap();
        let mut r = Reader::new(&buf[..]);
        assert_eq!(r.next_entry().unwrap().unwrap().name, "a");
        assert_eq!(r.content().unwrap(), &[1u8; 700][..]);
        assert_eq!(r.next_entry().unwrap().unwrap().name, "b");
        assert_eq!(r.content().unwrap(), b"xyz");
        assert!(r.next_entry().unwrap().is_none());
        let mut short = Reader::new(&buf[..600]);
        short.next_entry().unwrap().unwrap();
        assert!(short.content().is_err());
    }

    #[test]
    fn section_reader_ends_at_eof() {
        let mut w = Writer::new(Vec::new(), Magic::Gnu);
        w.append(&Entry::new(".PKGINFO", Kind::File, 0o644), b"pkgname = x\n")
            .unwrap();
        let buf = w.into_inner_cut().unwrap();
        let mut r = Reader::new_section(&buf[..]);
        assert_eq!(r.next_entry().unwrap().unwrap().name, ".PKGINFO");
        assert!(r.next_entry().unwrap().is_none());
        let mut strict = Reader::new(&buf[..]);
        strict.next_entry().unwrap().unwrap();
        assert!(matches!(strict.next_entry(), Err(TarError::Eof)));
    }
}
