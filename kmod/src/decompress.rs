//! Compressed module files. depmod lists them under their compressed names (`.ko.gz`, `.ko.xz`,
//! `.ko.zst`); the kernel's `init_module` takes the plain ELF image, so whoever reads a module
//! (the init to load it, mkinitfs to read its `.modinfo`) unpacks it first. The output is
//! bounded ([`MAX_MODULE`]): a hostile or corrupt file must not exhaust the memory of PID 1.

use std::borrow::Cow;
use std::io::{self, Read};

/// Largest unpacked module accepted: real modules are a few MiB (the largest GPU drivers some
/// tens of MiB).
pub const MAX_MODULE: u64 = 256 << 20;

/// How a module file is compressed, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `.ko`: the ELF image as is.
    None,
    /// `.ko.gz`.
    Gzip,
    /// `.ko.xz` (needs the `xz` feature to unpack).
    Xz,
    /// `.ko.zst`.
    Zstd,
}

impl Compression {
    /// The compression a module path's suffix names (`None` for anything but `.gz`, `.xz`,
    /// `.zst`).
    pub fn of(path: &str) -> Self {
        if path.ends_with(".gz") {
            Compression::Gzip
        } else if path.ends_with(".xz") {
            Compression::Xz
        } else if path.ends_with(".zst") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Why a module could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    /// The compressed data is corrupt or truncated.
    #[error("cannot decompress ({format}): {source}")]
    Corrupt {
        /// `gzip`, `xz` or `zstd`.
        format: &'static str,
        /// The decoder's reason.
        source: io::Error,
    },
    /// The unpacked module would be larger than [`MAX_MODULE`].
    #[error("decompressed module is larger than {} MiB", MAX_MODULE >> 20)]
    TooLarge,
    /// An xz module in a build without the `xz` feature (the init's).
    #[error("xz-compressed modules are not supported by this build (use gzip or zstd)")]
    XzUnsupported,
}

/// The ELF image of a module file's `data` compressed as `compression` (borrowed when plain).
pub fn decompress(data: &[u8], compression: Compression) -> Result<Cow<'_, [u8]>, DecompressError> {
    let corrupt = |format| move |source| DecompressError::Corrupt { format, source };
    match compression {
        Compression::None => Ok(Cow::Borrowed(data)),
        Compression::Gzip => bounded(flate2::read::GzDecoder::new(data)).map_err(corrupt("gzip")),
        Compression::Zstd => zstd::stream::read::Decoder::new(data)
            .and_then(bounded)
            .map_err(corrupt("zstd")),
        Compression::Xz => xz(data),
    }
    .and_then(|out| match out {
        Cow::Owned(v) if v.len() as u64 > MAX_MODULE => Err(DecompressError::TooLarge),
        other => Ok(other),
    })
}

/// Reads at most one byte more than [`MAX_MODULE`], so an oversized module is caught without
/// unpacking all of it.
fn bounded(r: impl Read) -> io::Result<Cow<'static, [u8]>> {
    let mut out = Vec::new();
    r.take(MAX_MODULE + 1).read_to_end(&mut out)?;
    Ok(Cow::Owned(out))
}

#[cfg(feature = "xz")]
fn xz(data: &[u8]) -> Result<Cow<'static, [u8]>, DecompressError> {
    /// A `Vec` writer that refuses to grow past [`MAX_MODULE`] (`lzma-rs` only writes into a
    /// writer) and remembers that it did.
    struct Limited {
        out: Vec<u8>,
        overflow: bool,
    }
    impl io::Write for Limited {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if (self.out.len() + buf.len()) as u64 > MAX_MODULE {
                self.overflow = true;
                return Err(io::Error::other("decompressed module too large"));
            }
            self.out.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut sink = Limited {
        out: Vec::new(),
        overflow: false,
    };
    match lzma_rs::xz_decompress(&mut &data[..], &mut sink) {
        Ok(()) => Ok(Cow::Owned(sink.out)),
        Err(_) if sink.overflow => Err(DecompressError::TooLarge),
        Err(e) => Err(DecompressError::Corrupt {
            format: "xz",
            source: io::Error::other(e.to_string()),
        }),
    }
}

#[cfg(not(feature = "xz"))]
fn xz(_: &[u8]) -> Result<Cow<'static, [u8]>, DecompressError> {
    Err(DecompressError::XzUnsupported)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn body() -> Vec<u8> {
        b"\x7fELF fake module".repeat(100)
    }

    #[test]
    fn compression_follows_the_suffix() {
        assert_eq!(Compression::of("a/b.ko"), Compression::None);
        assert_eq!(Compression::of("a/b.ko.gz"), Compression::Gzip);
        assert_eq!(Compression::of("a/b.ko.xz"), Compression::Xz);
        assert_eq!(Compression::of("a/b.ko.zst"), Compression::Zstd);
    }

    #[test]
    fn gzip_and_zstd_unpack_plain_is_borrowed() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&body()).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(decompress(&gz, Compression::Gzip).unwrap(), body());
        let zst = zstd::stream::encode_all(&body()[..], 3).unwrap();
        assert_eq!(decompress(&zst, Compression::Zstd).unwrap(), body());
        let plain = body();
        assert!(matches!(
            decompress(&plain, Compression::None).unwrap(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn corrupt_and_oversized_modules_are_errors() {
        let err = decompress(b"not gzip", Compression::Gzip).unwrap_err();
        assert!(
            err.to_string().starts_with("cannot decompress (gzip): "),
            "{err}"
        );
        let err = decompress(b"not zstd", Compression::Zstd).unwrap_err();
        assert!(
            err.to_string().starts_with("cannot decompress (zstd): "),
            "{err}"
        );
        // 257 MiB of zeros compress to a few KiB: refused without keeping all of it.
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..257 {
            enc.write_all(&chunk).unwrap();
        }
        let bomb = enc.finish().unwrap();
        assert!(matches!(
            decompress(&bomb, Compression::Zstd),
            Err(DecompressError::TooLarge)
        ));
    }

    #[cfg(feature = "xz")]
    #[test]
    fn xz_unpacks_with_the_feature() {
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &body()[..], &mut xz).unwrap();
        assert_eq!(decompress(&xz, Compression::Xz).unwrap(), body());
        assert!(decompress(b"\xfd7zXZ\0junk", Compression::Xz).is_err());
    }

    #[cfg(not(feature = "xz"))]
    #[test]
    fn xz_is_refused_without_the_feature() {
        assert_eq!(
            decompress(b"\xfd7zXZ", Compression::Xz)
                .unwrap_err()
                .to_string(),
            "xz-compressed modules are not supported by this build (use gzip or zstd)"
        );
    }
}
