//! A whole initramfs file, walked the way the kernel unpacks it.
//!
//! An initramfs is one or more newc archives, one after the other, each plain or compressed,
//! with zero padding between them: Debian puts an uncompressed microcode archive before the
//! compressed main one, and several archives may follow each other inside one compressed stream.
//! Later entries override earlier ones, as the kernel unpacks them in order. We read the
//! compressions the image builders of this field write: gzip, zstd and xz (the kernel also knows
//! bzip2, lzma, lzo and lz4, which are refused here as unknown).

use std::io::{self, BufRead, Read};

use super::read::{Header, ReadError, Reader};

/// Largest xz stream [`scan`] unpacks (in memory: the `lzma-rs` decoder writes into a buffer,
/// it has no streaming reader for xz).
pub const MAX_XZ_UNPACKED: usize = 1 << 30;

/// Calls `visit` for every entry of every archive in `input`, with a reader over the entry's
/// data (`visit` may read all of it, part of it or none).
pub fn scan(
    mut input: impl BufRead,
    visit: &mut dyn FnMut(&Header, &mut dyn Read) -> io::Result<()>,
) -> Result<(), ReadError> {
    loop {
        if skip_zeros(&mut input)? {
            return Ok(());
        }
        let head = input.fill_buf()?;
        match head {
            [b'0', b'7', b'0', b'7', b'0', b'1', ..] => {
                // A plain archive: read it in place and continue after its trailer.
                archive(&mut input, visit)?;
            }
            [0x1f, 0x8b, ..] => {
                return archives(
                    io::BufReader::new(flate2::bufread::MultiGzDecoder::new(input)),
                    visit,
                )
            }
            [0x28, 0xb5, 0x2f, 0xfd, ..] => {
                let decoder = zstd::stream::read::Decoder::with_buffer(input)?;
                return archives(io::BufReader::new(decoder), visit);
            }
            [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => {
                let mut out = Bounded(Vec::new());
                lzma_rs::xz_decompress(&mut input, &mut out)
                    .map_err(|e| ReadError::Xz(e.to_string()))?;
                return archives(&out.0[..], visit);
            }
            _ => return Err(ReadError::UnknownCompression),
        }
    }
}

/// Every archive in a decompressed stream, up to its end.
fn archives(
    mut input: impl BufRead,
    visit: &mut dyn FnMut(&Header, &mut dyn Read) -> io::Result<()>,
) -> Result<(), ReadError> {
    while !skip_zeros(&mut input)? {
        archive(&mut input, visit)?;
    }
    Ok(())
}

/// One archive up to its trailer.
fn archive(
    input: &mut impl BufRead,
    visit: &mut dyn FnMut(&Header, &mut dyn Read) -> io::Result<()>,
) -> Result<(), ReadError> {
    let mut reader = Reader::new(input);
    while let Some(header) = reader.next_entry()? {
        visit(&header, &mut reader.data())?;
    }
    Ok(())
}

/// Skips zero bytes (the padding between archives); true at the end of the input.
fn skip_zeros(input: &mut impl BufRead) -> Result<bool, ReadError> {
    loop {
        let buf = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if buf.is_empty() {
            return Ok(true);
        }
        let zeros = buf.iter().take_while(|&&b| b == 0).count();
        let all = zeros == buf.len();
        input.consume(zeros);
        if !all {
            return Ok(false);
        }
    }
}

/// A `Vec` writer that refuses to grow past [`MAX_XZ_UNPACKED`] (a hostile xz stream cannot
/// exhaust memory).
struct Bounded(Vec<u8>);

impl io::Write for Bounded {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.0.len() + data.len() > MAX_XZ_UNPACKED {
            return Err(io::Error::other("larger than 1 GiB unpacked"));
        }
        self.0.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::read::tests::newc;
    use super::*;
    use std::io::Write;

    /// Every (path, data) the scan sees, in order.
    fn entries(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, ReadError> {
        let mut out = Vec::new();
        scan(bytes, &mut |h, data| {
            let mut d = Vec::new();
            data.read_to_end(&mut d)?;
            out.push((h.path().to_string(), d));
            Ok(())
        })?;
        Ok(out)
    }

    fn names(bytes: &[u8]) -> Vec<String> {
        entries(bytes)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }

    #[test]
    fn plain_gzip_zstd_and_xz_archives() {
        let archive = newc(&[("init", b"x"), ("etc/apk/keys/k.pub", b"key")]);
        let want = vec![
            ("init".to_string(), b"x".to_vec()),
            ("etc/apk/keys/k.pub".to_string(), b"key".to_vec()),
        ];
        assert_eq!(entries(&archive).unwrap(), want);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&archive).unwrap();
        assert_eq!(entries(&gz.finish().unwrap()).unwrap(), want);
        assert_eq!(
            entries(&zstd::encode_all(&archive[..], 3).unwrap()).unwrap(),
            want
        );
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &archive[..], &mut xz).unwrap();
        assert_eq!(entries(&xz).unwrap(), want);
    }

    #[test]
    fn a_plain_microcode_archive_then_a_compressed_one() {
        // Debian's layout: an uncompressed early archive, padding, then the compressed main one
        // holding two archives back to back.
        let mut bytes = newc(&[("kernel/x86/microcode/GenuineIntel.bin", &[7u8; 1000])]);
        bytes.resize(bytes.len().div_ceil(512) * 512, 0);
        let mut inner = newc(&[("a", b"1")]);
        inner.extend(newc(&[("a", b"2")]));
        bytes.extend(zstd::encode_all(&inner[..], 3).unwrap());
        assert_eq!(
            names(&bytes),
            ["kernel/x86/microcode/GenuineIntel.bin", "a", "a"]
        );
    }

    #[test]
    fn unknown_compression_and_corrupt_streams_are_errors() {
        assert_eq!(
            entries(b"\x04\x22\x4d\x18lz4").unwrap_err().to_string(),
            "unknown compression (gzip, zstd, xz or none expected)"
        );
        let archive = newc(&[("a", &[1u8; 4000])]);
        let z = zstd::encode_all(&archive[..], 3).unwrap();
        assert!(entries(&z[..z.len() / 2]).is_err());
        assert!(entries(&archive[..archive.len() - 20]).is_err());
        assert!(entries(b"").unwrap().is_empty());
        assert!(entries(&[0u8; 4096]).unwrap().is_empty());
    }
}
