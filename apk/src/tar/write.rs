//! Writing: old-GNU or POSIX headers with correct checksums, PAX records where needed.

use super::{Entry, Kind};
use std::io::{self, Read, Write};

/// Header magic to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Magic {
    /// `ustar  \0` as GNU tar, busybox and apk write.
    Gnu,
    /// `ustar\0` + `00` (POSIX).
    Posix,
}

fn put_octal(h: &mut [u8], off: usize, len: usize, v: u64) {
    let s = format!("{:0width$o}", v, width = len - 1);
    if s.len() < len {
        h[off..off + s.len()].copy_from_slice(s.as_bytes());
        h[off + s.len()] = 0;
    } else {
        // GNU base-256 for values that do not fit (large sizes, uids).
        let f = &mut h[off..off + len];
        f.fill(0);
        f[0] = 0x80;
        let bytes = v.to_be_bytes();
        f[len - 8..].copy_from_slice(&bytes);
    }
}

fn put_str(h: &mut [u8], off: usize, len: usize, s: &str) {
    let b = s.as_bytes();
    let n = b.len().min(len);
    h[off..off + n].copy_from_slice(&b[..n]);
}

fn pax_record(key: &str, val: &[u8]) -> Vec<u8> {
    // The length field counts itself; iterate until stable.
    let body = key.len() + val.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(val);
    r.push(b'\n');
    r
}

/// Tar writer. Every write is checked; `finish` adds the two end blocks.
pub struct Writer<W: Write> {
    inner: W,
    magic: Magic,
    /// Write a PAX header with `APK-TOOLS.checksum.SHA1` and xattrs (abuild-tar --hash style).
    pub pax_extras: bool,
    written: u64,
}

impl<W: Write> Writer<W> {
    /// New writer.
    pub fn new(inner: W, magic: Magic) -> Self {
        Writer {
            inner,
            magic,
            pax_extras: true,
            written: 0,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.inner.write_all(b)?;
        self.written += b.len() as u64;
        Ok(())
    }

    fn header(
        &mut self,
        e: &Entry,
        name: &str,
        link: &str,
        typeflag: u8,
        size: u64,
    ) -> io::Result<()> {
        let mut h = [0u8; 512];
        put_str(&mut h, 0, 100, name);
        put_octal(&mut h, 100, 8, e.mode as u64);
        put_octal(&mut h, 108, 8, e.uid as u64);
        put_octal(&mut h, 116, 8, e.gid as u64);
        put_octal(&mut h, 124, 12, size);
        put_octal(&mut h, 136, 12, e.mtime);
        h[156] = typeflag;
        put_str(&mut h, 157, 100, link);
        match self.magic {
            Magic::Gnu => h[257..265].copy_from_slice(b"ustar  \0"),
            Magic::Posix => h[257..265].copy_from_slice(b"ustar\x0000"),
        }
        put_str(&mut h, 265, 32, &e.uname);
        put_str(&mut h, 297, 32, &e.gname);
        if matches!(e.kind, Kind::CharDev | Kind::BlockDev) || self.magic == Magic::Posix {
            put_octal(&mut h, 329, 8, e.dev.0 as u64);
            put_octal(&mut h, 337, 8, e.dev.1 as u64);
        }
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&c| c as u32).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        self.put(&h)
    }

    fn payload(&mut self, data: &[u8]) -> io::Result<()> {
        self.put(data)?;
        let pad = (512 - data.len() % 512) % 512;
        self.put(&vec![0u8; pad])
    }

    /// Write an entry header (with PAX/long-name records as needed); for files, `content` must
    /// follow via [`Writer::write_data`] with exactly `e.size` bytes.
    pub fn append_header(&mut self, e: &Entry) -> io::Result<()> {
        let typeflag = match e.kind {
            Kind::File => b'0',
            Kind::HardLink => b'1',
            Kind::Symlink => b'2',
            Kind::CharDev => b'3',
            Kind::BlockDev => b'4',
            Kind::Dir => b'5',
            Kind::Fifo => b'6',
        };
        let mut pax = Vec::new();
        if self.pax_extras {
            for (k, v) in &e.xattrs {
                pax.extend(pax_record(&format!("SCHILY.xattr.{k}"), v));
            }
            if let Some(s) = &e.sha1 {
                pax.extend(pax_record(
                    "APK-TOOLS.checksum.SHA1",
                    hex::encode(s).as_bytes(),
                ));
            }
        }
        let long_name = e.name.len() > 100;
        let long_link = e.link.len() > 100;
        if long_name || long_link {
            if self.magic == Magic::Gnu && pax.is_empty() {
                if long_link {
                    let mut l = e.link.as_bytes().to_vec();
                    l.push(0);
                    let le = Entry::new("././@LongLink", Kind::File, 0o644);
                    self.header(&le, "././@LongLink", "", b'K', l.len() as u64)?;
                    self.payload(&l)?;
                }
                if long_name {
                    let mut l = e.name.as_bytes().to_vec();
                    l.push(0);
                    let le = Entry::new("././@LongLink", Kind::File, 0o644);
                    self.header(&le, "././@LongLink", "", b'L', l.len() as u64)?;
                    self.payload(&l)?;
                }
            } else {
                if long_name {
                    pax.extend(pax_record("path", e.name.as_bytes()));
                }
                if long_link {
                    pax.extend(pax_record("linkpath", e.link.as_bytes()));
                }
            }
        }
        if !pax.is_empty() {
            let pname: String = format!("PaxHeaders/{}", e.name.rsplit('/').next().unwrap_or(""));
            let pe = Entry {
                mode: 0o644,
                ..Entry::new(&pname, Kind::File, 0o644)
            };
            self.header(&pe, &truncate(&pname, 100), "", b'x', pax.len() as u64)?;
            self.payload(&pax)?;
        }
        let size = if e.kind == Kind::File { e.size } else { 0 };
        self.header(
            e,
            &truncate(&e.name, 100),
            &truncate(&e.link, 100),
            typeflag,
            size,
        )
    }

    /// Append an entry with in-memory content.
    pub fn append(&mut self, e: &Entry, content: &[u8]) -> io::Result<()> {
        let mut e2 = e.clone();
        if e.kind == Kind::File {
            e2.size = content.len() as u64;
        }
        self.append_header(&e2)?;
        if e2.kind == Kind::File {
            self.payload(content)?;
        }
        Ok(())
    }

    /// Stream exactly `size` bytes of content for the last header, plus padding.
    pub fn write_data(&mut self, r: &mut impl Read, size: u64) -> io::Result<()> {
        let n = io::copy(&mut r.take(size), &mut self.inner)?;
        if n != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while archiving",
            ));
        }
        self.written += n;
        let pad = (512 - size % 512) % 512;
        self.put(&vec![0u8; pad as usize])
    }

    /// Write the two end-of-archive blocks and return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.put(&[0u8; 1024])?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    /// Return the inner writer without end blocks (abuild `--cut` sections).
    pub fn into_inner_cut(mut self) -> io::Result<W> {
        self.inner.flush()?;
        Ok(self.inner)
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}
