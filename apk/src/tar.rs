//! A tar reader and writer with apk's rules (apk-tools v3 `src/tar.c`, apk-format.md §1.4).
//!
//! Reading: only `magic[0..5] == "ustar"` is checked (POSIX and old-GNU both pass), numeric fields
//! are octal, PAX `x` headers (`path`, `linkpath`, `SCHILY.xattr.*`, `APK-TOOLS.checksum.SHA1`) and
//! GNU `L` long names apply to the next entry, and the second end-of-archive block ends the stream.
//! Writing produces old-GNU headers with correct checksums, PAX records where needed.

use std::io::{self, Read, Write};

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

fn field(h: &[u8], off: usize, len: usize) -> &[u8] {
    let f = &h[off..off + len];
    let end = f.iter().position(|&c| c == 0).unwrap_or(len);
    &f[..end]
}

fn octal(h: &[u8], off: usize, len: usize, what: &str) -> Result<u64, TarError> {
    let f = &h[off..off + len];
    let mut v: u64 = 0;
    let mut seen = false;
    for &c in f {
        match c {
            b'0'..=b'7' => {
                v = v
                    .checked_mul(8)
                    .and_then(|v| v.checked_add((c - b'0') as u64))
                    .ok_or_else(|| TarError::Format(format!("tar header: {what} overflows")))?;
                seen = true;
            }
            b' ' if !seen => {}
            0 | b' ' => break,
            _ => return Err(TarError::Format(format!("tar header: bad {what} field"))),
        }
    }
    Ok(v)
}

fn text(b: &[u8], what: &str) -> Result<String, TarError> {
    String::from_utf8(b.to_vec())
        .map_err(|_| TarError::Format(format!("tar header: {what} is not UTF-8")))
}

/// Read exactly `buf.len()` bytes, or report how many were read before EOF.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Streaming tar reader. Call [`Reader::next_entry`], then optionally read the content through
/// [`Reader::data`] before the next call (unread content is skipped).
pub struct Reader<R: Read> {
    inner: R,
    /// Content bytes of the current entry still unread, plus padding.
    remaining: u64,
    padding: u64,
    ends_seen: u32,
    done: bool,
    /// Whether running out of input at a header boundary is a normal end (sections of a package
    /// that carry no end-of-archive blocks).
    eof_ok: bool,
    /// Limit on PAX and long-name payloads.
    meta_limit: u64,
}

impl<R: Read> Reader<R> {
    /// A reader over a complete archive (must end with end-of-archive blocks).
    pub fn new(inner: R) -> Self {
        Reader {
            inner,
            remaining: 0,
            padding: 0,
            ends_seen: 0,
            done: false,
            eof_ok: false,
            meta_limit: 1 << 20,
        }
    }

    /// A reader over a section cut by abuild (no end-of-archive blocks expected; EOF at a header
    /// boundary ends it).
    pub fn new_section(inner: R) -> Self {
        Reader {
            eof_ok: true,
            ..Self::new(inner)
        }
    }

    /// The underlying reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn skip(&mut self, mut n: u64) -> Result<(), TarError> {
        let mut buf = [0u8; 8192];
        while n > 0 {
            let k = n.min(buf.len() as u64) as usize;
            if read_full(&mut self.inner, &mut buf[..k])? != k {
                return Err(TarError::Eof);
            }
            n -= k as u64;
        }
        Ok(())
    }

    fn finish_current(&mut self) -> Result<(), TarError> {
        let n = self.remaining + self.padding;
        self.remaining = 0;
        self.padding = 0;
        self.skip(n)
    }

    fn read_payload(&mut self, size: u64) -> Result<Vec<u8>, TarError> {
        if size > self.meta_limit {
            return Err(TarError::Format("tar: oversized extended header".into()));
        }
        let mut v = vec![0u8; size as usize];
        if read_full(&mut self.inner, &mut v)? != v.len() {
            return Err(TarError::Eof);
        }
        self.skip((512 - size % 512) % 512)?;
        Ok(v)
    }

    /// The content of the current entry.
    pub fn data(&mut self) -> Data<'_, R> {
        Data { r: self }
    }

    /// Read the whole content of the current entry, refusing more than `limit` bytes.
    pub fn read_all(&mut self, limit: u64) -> Result<Vec<u8>, TarError> {
        if self.remaining > limit {
            return Err(TarError::Format(format!(
                "tar: entry of {} bytes is too large",
                self.remaining
            )));
        }
        let mut v = Vec::with_capacity(self.remaining as usize);
        self.data().read_to_end(&mut v)?;
        Ok(v)
    }

    /// The next entry, `None` at the end of the archive.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, TarError> {
        self.finish_current()?;
        let mut pax_path: Option<String> = None;
        let mut pax_link: Option<String> = None;
        let mut long_name: Option<String> = None;
        let mut xattrs = Vec::new();
        let mut sha1 = None;
        let mut h = [0u8; 512];
        loop {
            if self.done {
                return Ok(None);
            }
            let n = read_full(&mut self.inner, &mut h)?;
            if n == 0
                && (self.eof_ok || self.ends_seen > 0)
                && pax_path.is_none()
                && long_name.is_none()
            {
                self.done = true;
                return Ok(None);
            }
            if n != 512 {
                return Err(TarError::Eof);
            }
            if h[0] == 0 {
                self.ends_seen += 1;
                if self.ends_seen >= 2 {
                    self.drain_end()?;
                    return Ok(None);
                }
                continue;
            }
            if self.ends_seen > 0 {
                return Err(TarError::Format("tar: entry after end of archive".into()));
            }
            if &h[257..262] != b"ustar" {
                return Err(TarError::Format("tar: bad header magic".into()));
            }
            let size = octal(&h, 124, 12, "size")?;
            let typeflag = h[156];
            match typeflag {
                b'x' => {
                    let payload = self.read_payload(size)?;
                    parse_pax(
                        &payload,
                        &mut pax_path,
                        &mut pax_link,
                        &mut xattrs,
                        &mut sha1,
                    )?;
                    continue;
                }
                b'g' | b'K' => {
                    self.skip(size + (512 - size % 512) % 512)?;
                    continue;
                }
                b'L' => {
                    let payload = self.read_payload(size)?;
                    let end = payload
                        .iter()
                        .position(|&c| c == 0)
                        .unwrap_or(payload.len());
                    long_name = Some(text(&payload[..end], "long name")?);
                    continue;
                }
                _ => {}
            }
            let kind = match typeflag {
                b'0' | b'7' | 0 => Some(Kind::File),
                b'1' => Some(Kind::HardLink),
                b'2' => Some(Kind::Symlink),
                b'3' => Some(Kind::CharDev),
                b'4' => Some(Kind::BlockDev),
                b'5' => Some(Kind::Dir),
                b'6' => Some(Kind::Fifo),
                _ => None,
            };
            let Some(kind) = kind else {
                // Unknown types are skipped, as apk does.
                self.skip(size + (512 - size % 512) % 512)?;
                pax_path = None;
                pax_link = None;
                long_name = None;
                xattrs.clear();
                sha1 = None;
                continue;
            };
            let posix = &h[257..263] == b"ustar\0";
            let name = if let Some(p) = pax_path.take().or(long_name.take()) {
                p
            } else {
                let base = text(field(&h, 0, 100), "name")?;
                let prefix = field(&h, 345, 155);
                if posix && !prefix.is_empty() {
                    format!("{}/{}", text(prefix, "prefix")?, base)
                } else {
                    base
                }
            };
            let link = match pax_link.take() {
                Some(l) => l,
                None => text(field(&h, 157, 100), "link name")?,
            };
            if name.len() >= MAX_NAME || link.len() >= MAX_NAME {
                return Err(TarError::Format("tar: name too long".into()));
            }
            let data_size = match kind {
                Kind::File => size,
                _ => size, // non-files normally carry 0; any content is skipped
            };
            self.remaining = data_size;
            self.padding = (512 - data_size % 512) % 512;
            return Ok(Some(Entry {
                name,
                kind,
                mode: (octal(&h, 100, 8, "mode")? & 0o7777) as u32,
                uid: octal(&h, 108, 8, "uid")? as u32,
                gid: octal(&h, 116, 8, "gid")? as u32,
                uname: text(field(&h, 265, 32), "uname")?,
                gname: text(field(&h, 297, 32), "gname")?,
                size,
                mtime: octal(&h, 136, 12, "mtime")?,
                link,
                dev: (
                    octal(&h, 329, 8, "devmajor")? as u32,
                    octal(&h, 337, 8, "devminor")? as u32,
                ),
                xattrs: std::mem::take(&mut xattrs),
                sha1: sha1.take(),
            }));
        }
    }

    /// After the second end block: consume the remaining zero records (the whole input is
    /// checksummed, so it must be read), refusing anything else.
    fn drain_end(&mut self) -> Result<(), TarError> {
        self.done = true;
        let mut h = [0u8; 512];
        loop {
            let n = read_full(&mut self.inner, &mut h)?;
            if n == 0 {
                return Ok(());
            }
            if n != 512 {
                return Err(TarError::Eof);
            }
            if h[0] != 0 {
                return Err(TarError::Format("tar: data after end of archive".into()));
            }
        }
    }
}

fn parse_pax(
    mut p: &[u8],
    path: &mut Option<String>,
    link: &mut Option<String>,
    xattrs: &mut Vec<(String, Vec<u8>)>,
    sha1: &mut Option<[u8; 20]>,
) -> Result<(), TarError> {
    let bad = || TarError::Format("tar: malformed PAX header".into());
    while !p.is_empty() {
        if p.iter().all(|&c| c == 0) {
            break;
        }
        let sp = p.iter().position(|&c| c == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(&p[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        if len <= sp + 1 || len > p.len() || p[len - 1] != b'\n' {
            return Err(bad());
        }
        let rec = &p[sp + 1..len - 1];
        let eq = rec.iter().position(|&c| c == b'=').ok_or_else(bad)?;
        let (key, val) = (&rec[..eq], &rec[eq + 1..]);
        match key {
            b"path" => *path = Some(text(val, "PAX path")?),
            b"linkpath" => *link = Some(text(val, "PAX linkpath")?),
            b"APK-TOOLS.checksum.SHA1" => {
                let mut out = [0u8; 20];
                hex::decode_to_slice(val, &mut out).map_err(|_| bad())?;
                *sha1 = Some(out);
            }
            k if k.starts_with(b"SCHILY.xattr.") => {
                xattrs.push((text(&k[13..], "xattr name")?, val.to_vec()));
            }
            _ => {}
        }
        p = &p[len..];
    }
    Ok(())
}

impl<'a> Reader<&'a [u8]> {
    /// The whole content of the current entry as a slice of the in-memory archive (no copy, so a
    /// file can be written with one system call).
    pub fn content(&mut self) -> Result<&'a [u8], TarError> {
        let n = usize::try_from(self.remaining).map_err(|_| TarError::Eof)?;
        if self.inner.len() < n {
            return Err(TarError::Eof);
        }
        let (data, rest) = self.inner.split_at(n);
        self.inner = rest;
        self.remaining = 0;
        Ok(data)
    }
}

/// Content of the current entry.
pub struct Data<'a, R: Read> {
    r: &'a mut Reader<R>,
}

impl<R: Read> Read for Data<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.r.remaining == 0 {
            return Ok(0);
        }
        let k = (buf.len() as u64).min(self.r.remaining) as usize;
        let n = self.r.inner.read(&mut buf[..k])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "unexpected end of file",
            ));
        }
        self.r.remaining -= n as u64;
        Ok(n)
    }
}

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
