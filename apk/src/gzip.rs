//! gzip framing: member boundaries, bounded inflation, the one-member data section of a package,
//! and `gzip -n -9` output. apk's v2 files are concatenated gzip members (signature, control,
//! data); [`crate::archive`] decides what the members mean, this module only finds and inflates
//! them (docs/apk.md, "Packages").
//!
//! The data section is inflated by libdeflate through its safe wrapper (`libdeflater`): one call
//! into a buffer sized from the member's trailer, about 1.4x faster than the streaming inflater
//! (measured on the 3.19 fixture packages, see the commit that introduced this module).

use flate2::{Decompress, FlushDecompress, Status};
use std::io::{Read, Write};
use std::ops::Range;

/// Why a gzip member could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GzipError {
    /// Truncated member, bad header, broken deflate data or a trailer that does not match.
    #[error("unexpected end of file")]
    Truncated,
    /// The member inflates to more than the caller allows.
    #[error("member too large")]
    TooLarge,
    /// A data section holds a second member (apk v3 refuses more than one data part).
    #[error("more than one data member")]
    TrailingMember,
}

/// One gzip member: its compressed byte range and inflated content.
pub struct Member {
    /// Compressed bytes, header to trailer.
    pub range: Range<usize>,
    /// Inflated content.
    pub data: Vec<u8>,
}

/// Offset of the deflate stream after the gzip header at `start`.
fn header_end(buf: &[u8], start: usize) -> Result<usize, GzipError> {
    let h = buf.get(start..start + 10).ok_or(GzipError::Truncated)?;
    if h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 {
        return Err(GzipError::Truncated);
    }
    let flags = h[3];
    let mut p = start + 10;
    if flags & 4 != 0 {
        let x = buf.get(p..p + 2).ok_or(GzipError::Truncated)?;
        p += 2 + u16::from_le_bytes([x[0], x[1]]) as usize;
    }
    for bit in [8u8, 16] {
        if flags & bit != 0 {
            let z = buf
                .get(p..)
                .ok_or(GzipError::Truncated)?
                .iter()
                .position(|&c| c == 0)
                .ok_or(GzipError::Truncated)?;
            p += z + 1;
        }
    }
    if flags & 2 != 0 {
        p += 2;
    }
    if p > buf.len() {
        return Err(GzipError::Truncated);
    }
    Ok(p)
}

/// The CRC-32 and size (modulo 2^32) of a member's 8-byte trailer.
fn trailer(t: &[u8]) -> (u32, u32) {
    (
        u32::from_le_bytes([t[0], t[1], t[2], t[3]]),
        u32::from_le_bytes([t[4], t[5], t[6], t[7]]),
    )
}

/// Inflate the gzip member starting at `start`, refusing more than `limit` inflated bytes, and
/// check its CRC-32 and size trailer.
pub fn inflate_member(buf: &[u8], start: usize, limit: usize) -> Result<Member, GzipError> {
    let m = inflate_raw(buf, start, limit, 16 * 1024)?;
    let end = m.range.end - 8;
    let (crc, isize) = trailer(&buf[end..end + 8]);
    let mut c = flate2::Crc::new();
    c.update(&m.data);
    if c.sum() != crc || isize != m.data.len() as u32 {
        return Err(GzipError::Truncated);
    }
    Ok(m)
}

/// Inflate one gzip member without checking its CRC: for data whose compressed bytes are already
/// covered by a verified digest (`datahash`, identity), where the CRC would only cost time.
pub fn inflate_raw(
    buf: &[u8],
    start: usize,
    limit: usize,
    capacity: usize,
) -> Result<Member, GzipError> {
    let body = header_end(buf, start)?;
    let mut d = Decompress::new(false);
    // Room for one byte past the limit: a member that reaches it is refused, never grown past it.
    let cap = limit.saturating_add(1);
    let mut out: Vec<u8> = Vec::with_capacity(capacity.clamp(4096, 1 << 30).min(cap));
    loop {
        if out.len() == out.capacity() {
            if out.len() >= cap {
                return Err(GzipError::TooLarge);
            }
            out.reserve(out.len().max(16 * 1024).min(cap - out.len()));
        }
        let inp = &buf[body + d.total_in() as usize..];
        let before_in = d.total_in();
        let before_out = d.total_out();
        let st = d
            .decompress_vec(inp, &mut out, FlushDecompress::None)
            .map_err(|_| GzipError::Truncated)?;
        if out.len() > limit {
            return Err(GzipError::TooLarge);
        }
        if st == Status::StreamEnd {
            break;
        }
        if d.total_in() == before_in && d.total_out() == before_out && out.len() < out.capacity() {
            return Err(GzipError::Truncated);
        }
    }
    let end = body + d.total_in() as usize;
    if buf.len() < end + 8 {
        return Err(GzipError::Truncated);
    }
    Ok(Member {
        range: start..end + 8,
        data: out,
    })
}

/// Inflate a package's data section, which must be exactly one gzip member running to the end
/// of `range` (apk v3 refuses a second data member).
pub fn inflate_data(buf: &[u8], range: Range<usize>, limit: usize) -> Result<Vec<u8>, GzipError> {
    let mut out = Vec::new();
    inflate_data_into(buf, range, &mut out, limit)?;
    Ok(out)
}

/// [`inflate_data`] into a caller's buffer, so an install can reuse its buffers instead of
/// faulting in fresh memory for every package. More than `limit` inflated bytes are refused
/// ([`GzipError::TooLarge`]) before they are allocated.
///
/// libdeflate inflates the member in one call into a buffer sized from the trailer at the end of
/// `range`. It checks the CRC-32 and size of the member it inflated but does not say how much input
/// that member used, so the trailer at the end of `range` must be that member's: same size, same
/// CRC-32. A second member passes only if it repeats the first one's size and CRC-32, and the
/// content extracted is then the first member's, which the caller has already verified against
/// `datahash` or the identity together with everything after it. Sizes over 1 GiB, or members
/// libdeflate rejects, go through the streaming inflater, which finds the member's exact end.
pub fn inflate_data_into(
    buf: &[u8],
    range: Range<usize>,
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), GzipError> {
    let member = &buf[range.clone()];
    let n = member.len();
    if n < 18 {
        return Err(GzipError::Truncated);
    }
    let (crc, isize) = trailer(&member[n - 8..]);
    // ISIZE is read from the file: a hint for a bounded allocation only.
    let isize = isize as usize;
    if isize <= limit.min(1 << 30) {
        zero_fill(out, isize);
        let mut d = libdeflater::Decompressor::new();
        if let Ok(got) = d.gzip_decompress(member, out) {
            if got == isize && libdeflater::crc32(out) == crc {
                return Ok(());
            }
        }
    }
    let m = inflate_raw(buf, range.start, limit, 1 << 20)?;
    if m.range.end != range.end {
        return Err(GzipError::TrailingMember);
    }
    *out = m.data;
    Ok(())
}

/// Makes `out` `len` zero bytes, keeping its allocation (the install reuses its buffers):
/// `Vec::resize` compiles to a byte-by-byte loop in the size-optimised init build, while
/// `extend_from_slice` is a memcpy.
fn zero_fill(out: &mut Vec<u8>, len: usize) {
    static ZEROS: [u8; 4096] = [0; 4096];
    out.clear();
    out.reserve(len);
    while out.len() < len {
        let n = (len - out.len()).min(ZEROS.len());
        out.extend_from_slice(&ZEROS[..n]);
    }
}

/// A package's data member as a stream; refuses a second member (apk v3: more than one data part
/// is an error).
pub struct DataStream<'a> {
    inner: Option<flate2::bufread::GzDecoder<&'a [u8]>>,
    done: bool,
}

impl<'a> DataStream<'a> {
    /// Inflate the member in `member` (header to trailer).
    pub fn new(member: &'a [u8]) -> Self {
        DataStream {
            inner: Some(flate2::bufread::GzDecoder::new(member)),
            done: false,
        }
    }
}

impl Read for DataStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let Some(d) = self.inner.as_mut() else {
            return Ok(0);
        };
        let n = d.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.done = true;
            if let Some(d) = self.inner.take() {
                if !d.into_inner().is_empty() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        GzipError::TrailingMember.to_string(),
                    ));
                }
            }
        }
        Ok(n)
    }
}

/// gzip as `gzip -n -9` writes it (no name, mtime 0, OS 3).
pub fn compress(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::GzBuilder::new()
        .operating_system(3)
        .write(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_fill_reuses_the_buffer_and_clears_what_it_held() {
        let mut v = vec![7u8; 10_000];
        let cap = v.capacity();
        zero_fill(&mut v, 9_000);
        assert_eq!(v.len(), 9_000);
        assert!(v.iter().all(|&b| b == 0));
        assert_eq!(v.capacity(), cap);
        zero_fill(&mut v, 12_345);
        assert_eq!(v.len(), 12_345);
        assert!(v.iter().all(|&b| b == 0));
        zero_fill(&mut v, 0);
        assert!(v.is_empty());
    }

    #[test]
    fn data_section_is_one_member() {
        let one = compress(b"hello, world");
        assert_eq!(
            inflate_data(&one, 0..one.len(), 100).unwrap(),
            b"hello, world"
        );
        assert_eq!(
            inflate_data(&one, 0..one.len(), 5).unwrap_err(),
            GzipError::TooLarge
        );
        // A second member with different content: the trailer at the end is not the first one's.
        let mut two = one.clone();
        two.extend_from_slice(&compress(b"second"));
        assert_eq!(
            inflate_data(&two, 0..two.len(), 100).unwrap_err(),
            GzipError::TrailingMember
        );
        // Same size, different content.
        let mut same_size = one.clone();
        same_size.extend_from_slice(&compress(b"HELLO, WORLD"));
        assert_eq!(
            inflate_data(&same_size, 0..same_size.len(), 100).unwrap_err(),
            GzipError::TrailingMember
        );
    }

    #[test]
    fn truncated_and_oversized_members() {
        let one = compress(&[7u8; 100_000]);
        for cut in [0, 5, 12, one.len() / 2, one.len() - 1] {
            assert!(
                inflate_data(&one[..cut], 0..cut, 1 << 20).is_err(),
                "cut at {cut}"
            );
            assert!(
                inflate_member(&one[..cut], 0, 1 << 20).is_err(),
                "cut at {cut}"
            );
        }
        assert_eq!(
            inflate_member(&one, 0, 50_000).err(),
            Some(GzipError::TooLarge)
        );
        let m = inflate_member(&one, 0, 1 << 20).unwrap();
        assert_eq!(m.range, 0..one.len());
        assert_eq!(m.data.len(), 100_000);
        let mut bad = one.clone();
        let n = bad.len();
        bad[n - 6] ^= 1; // CRC-32
        assert_eq!(
            inflate_member(&bad, 0, 1 << 20).err(),
            Some(GzipError::Truncated)
        );
    }
}
