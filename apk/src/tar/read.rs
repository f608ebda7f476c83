//! Reading: apk's lenient header rules, PAX and GNU long names, the end of the archive.

use super::{Entry, Kind, TarError, MAX_NAME};
use std::io::{self, Read};

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
