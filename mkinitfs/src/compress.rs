//! In-process compression of the cpio stream, with output that depends only on the input.
//!
//! zstd: the kernel refuses frames whose window exceeds 2^27 (and allocates the window at boot),
//! so `windowLog` is capped at 27 (levels up to 22 stay under it, the cap is a guard). Speed comes
//! from zstd's multithreaded mode; its output is identical for any worker count >= 1 (but differs
//! from single-threaded mode; README, Reproducibility), so we always use the multithreaded mode with at
//! least one worker: two machines with different core counts produce the same bytes.
//! gzip: flate2 with the workspace's pinned backend, header without mtime or name.

use std::io::{self, Write};

use crate::config::Compression;

/// Largest zstd window the kernel's initramfs decompressor accepts.
pub const MAX_WINDOW_LOG: u32 = 27;

/// zstd job size in multithreaded mode: a default image's ~16 MiB cpio splits into four jobs
/// the workers share (zstd's default, 4x the window, makes it one job). Measured on 2 cores at
/// level 3: 1 MiB jobs 0.12 s, 4 MiB 0.10 s, default 0.18 s, same size within 1%.
const JOB_SIZE: u32 = 4 << 20;

/// A compressing writer; `finish` returns the inner writer after flushing the trailer.
pub enum Encoder<W: Write> {
    /// gzip stream.
    Gzip(flate2::write::GzEncoder<W>),
    /// zstd stream.
    Zstd(zstd::stream::write::Encoder<'static, W>),
    /// No compression.
    Plain(W),
}

/// zstd workers used: all cores (the output does not depend on this number).
fn zstd_workers() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
        .clamp(1, 16)
}

impl<W: Write> Encoder<W> {
    /// Starts a compressed stream into `out`.
    pub fn new(out: W, compression: Compression) -> io::Result<Self> {
        Self::with_workers(out, compression, zstd_workers())
    }

    /// Like [`Encoder::new`] with an explicit zstd worker count (tests prove it does not matter).
    pub fn with_workers(out: W, compression: Compression, workers: u32) -> io::Result<Self> {
        Ok(match compression {
            Compression::Gzip(level) => {
                let level = flate2::Compression::new(level.clamp(1, 9));
                Encoder::Gzip(flate2::GzBuilder::new().write(out, level))
            }
            Compression::Zstd(level) => {
                let mut enc = zstd::stream::write::Encoder::new(out, level.clamp(1, 22))?;
                enc.set_parameter(zstd::zstd_safe::CParameter::NbWorkers(workers.max(1)))?;
                // Fixed job size so a ~16 MiB cpio splits into jobs the workers share (the
                // default, 4x the window, is one job); part of the parameters, so still
                // deterministic.
                enc.set_parameter(zstd::zstd_safe::CParameter::JobSize(JOB_SIZE))?;
                enc.include_checksum(true)?;
                let wlog = enc_window_log(level);
                enc.set_parameter(zstd::zstd_safe::CParameter::WindowLog(wlog))?;
                Encoder::Zstd(enc)
            }
            Compression::None => Encoder::Plain(out),
        })
    }

    /// Writes the end of the stream and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
            Encoder::Plain(w) => Ok(w),
        }
    }
}

/// The window log for a zstd level: zstd's own choice for large inputs (its parameter table),
/// capped at [`MAX_WINDOW_LOG`].
fn enc_window_log(level: i32) -> u32 {
    let default = match level {
        ..=2 => 21,
        3..=4 => 22,
        5..=17 => 23,
        18..=19 => 23,
        20 => 25,
        21 => 26,
        _ => 27,
    };
    default.min(MAX_WINDOW_LOG)
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(data),
            Encoder::Zstd(e) => e.write(data),
            Encoder::Plain(w) => w.write(data),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
            Encoder::Plain(w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Vec<u8> {
        // Several MiB of semi-compressible data so zstd splits work across jobs.
        let mut v = Vec::new();
        let mut x: u32 = 1;
        while v.len() < 12 << 20 {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            v.extend_from_slice(format!("line {} {}\n", x % 1000, x >> 20).as_bytes());
        }
        v
    }

    fn compress(c: Compression, workers: u32, input: &[u8]) -> Vec<u8> {
        let mut e = Encoder::with_workers(Vec::new(), c, workers).unwrap();
        e.write_all(input).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn zstd_output_does_not_depend_on_worker_count() {
        let input = data();
        let one = compress(Compression::Zstd(3), 1, &input);
        let two = compress(Compression::Zstd(3), 2, &input);
        let four = compress(Compression::Zstd(3), 4, &input);
        assert_eq!(one, two);
        assert_eq!(one, four);
        assert_eq!(zstd::decode_all(&one[..]).unwrap(), input);
    }

    #[test]
    fn zstd_window_is_within_the_kernel_limit() {
        // Streaming with no pledged size: zstd cannot shrink the window to the input, so a small
        // input shows the window the level would use on a large one.
        let input = &data()[..1 << 20];
        for level in [1, 9, 19, 22] {
            let out = compress(Compression::Zstd(level), 2, input);
            // Frame header: magic, descriptor; single-segment frames have no window byte.
            assert_eq!(&out[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
            let fhd = out[4];
            let single_segment = fhd & 0x20 != 0;
            if !single_segment {
                let wd = out[5];
                let exp = (wd >> 3) as u32 + 10;
                assert!(exp <= MAX_WINDOW_LOG, "level {level}: window 2^{exp}");
            }
        }
    }

    #[test]
    fn gzip_is_deterministic_and_valid() {
        let input = data();
        let a = compress(Compression::Gzip(6), 1, &input[..1 << 20]);
        let b = compress(Compression::Gzip(6), 1, &input[..1 << 20]);
        assert_eq!(a, b);
        let mut dec = flate2::read::GzDecoder::new(&a[..]);
        let mut out = Vec::new();
        io::Read::read_to_end(&mut dec, &mut out).unwrap();
        assert_eq!(out, &input[..1 << 20]);
        assert_eq!(compress(Compression::None, 1, b"abc"), b"abc");
    }
}
