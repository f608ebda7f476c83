//! Does the initramfs trust the medium key? The init verifies the boot repository's index with
//! the keys in its own `etc/apk/keys` (boot-params.md §3.9), so a medium whose index key is not
//! there boots into "UNTRUSTED signature". mkimage looks inside the initramfs it copies and warns
//! before the user finds out at the console.
//!
//! An initramfs is one or more newc archives, each plain or compressed (gzip, zstd, xz), one
//! after the other: Debian puts an uncompressed microcode archive before the compressed main one.
//! The archives are scanned as streams, skipping file data, so memory stays small whatever the
//! unpacked size.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use apk::trust::PublicKey;

use super::SignKey;

/// A key file larger than this is not a PEM public key.
const MAX_KEY: u64 = 64 << 10;

/// A warning when `initramfs` does not carry the public half of `key` as
/// `etc/apk/keys/<key name>`; `None` when it does.
pub fn check_index_key(initramfs: &Path, key: &SignKey) -> Option<String> {
    let subject = format!("--initramfs {}", initramfs.display());
    let wanted = format!("etc/apk/keys/{}", key.name);
    let found = match find_file(initramfs, &wanted) {
        Ok(f) => f,
        Err(why) => return Some(format!("{subject}: cannot check for the index key: {why}")),
    };
    let hint = "the init will not trust the boot repository (mkinitfs --keys-dir DIR, with the .pub file in DIR)";
    let Some(data) = found else {
        return Some(format!("{subject}: has no {wanted}: {hint}"));
    };
    let ours = key.key.public().to_pem();
    let theirs = std::str::from_utf8(&data)
        .ok()
        .and_then(PublicKey::from_pem)
        .map(|k| k.to_pem());
    if theirs.as_deref() != Some(ours.as_str()) {
        return Some(format!(
            "{subject}: {wanted} is not the public half of --sign-key {}: {hint}",
            key.path.display()
        ));
    }
    None
}

/// The content of the last entry named `wanted` (later archives override earlier ones, as the
/// kernel unpacks them in order).
fn find_file(path: &Path, wanted: &str) -> Result<Option<Vec<u8>>, String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    let mut rest = &bytes[..];
    let mut found = None;
    loop {
        let zeros = rest.iter().take_while(|&&b| b == 0).count();
        rest = &rest[zeros..];
        if rest.is_empty() {
            return Ok(found);
        }
        match rest {
            [b'0', b'7', b'0', b'7', b'0', b'1', ..] => {
                // A plain archive: scan it in place and continue after its trailer.
                let mut reader = rest;
                scan_archive(&mut reader, wanted, &mut found)?;
                rest = reader;
            }
            [0x1f, 0x8b, ..] => {
                return scan_stream(flate2::read::MultiGzDecoder::new(rest), wanted, found)
            }
            [0x28, 0xb5, 0x2f, 0xfd, ..] => {
                let d = zstd::stream::read::Decoder::new(rest).map_err(|e| e.to_string())?;
                return scan_stream(d, wanted, found);
            }
            [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => {
                // lzma-rs decodes into a writer only: unpack into memory, at most 1 GiB.
                let mut out = Bounded(Vec::new());
                lzma_rs::xz_decompress(&mut &rest[..], &mut out).map_err(|e| e.to_string())?;
                return scan_stream(&out.0[..], wanted, found);
            }
            _ => return Err("unknown compression (gzip, zstd, xz or none expected)".into()),
        }
    }
}

/// A `Vec` writer that refuses to grow past 1 GiB (a hostile xz stream cannot exhaust memory).
struct Bounded(Vec<u8>);

impl io::Write for Bounded {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.0.len() + data.len() > 1 << 30 {
            return Err(io::Error::other("larger than 1 GiB unpacked"));
        }
        self.0.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Every archive in a decompressed stream (archives may follow each other inside it too).
fn scan_stream(
    mut r: impl Read,
    wanted: &str,
    mut found: Option<Vec<u8>>,
) -> Result<Option<Vec<u8>>, String> {
    loop {
        // Skip the zero padding between archives; stop at the end of the stream.
        let mut first = [0u8; 1];
        loop {
            match r.read(&mut first) {
                Ok(0) => return Ok(found),
                Ok(_) if first[0] == 0 => continue,
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        let mut chained = first.chain(&mut r);
        scan_archive(&mut chained, wanted, &mut found)?;
    }
}

/// One newc archive up to its trailer, keeping the data of entries named `wanted`.
fn scan_archive(
    r: &mut impl Read,
    wanted: &str,
    found: &mut Option<Vec<u8>>,
) -> Result<(), String> {
    let bad = |what: &str| format!("not a newc archive ({what})");
    loop {
        let mut header = [0u8; 110];
        r.read_exact(&mut header)
            .map_err(|_| bad("truncated header"))?;
        if &header[..6] != b"070701" {
            return Err(bad("bad magic"));
        }
        let field = |i: usize| -> Result<u64, String> {
            let text = std::str::from_utf8(&header[6 + i * 8..14 + i * 8])
                .map_err(|_| bad("bad header"))?;
            u64::from_str_radix(text, 16).map_err(|_| bad("bad header"))
        };
        let size = field(6)?;
        let name_size = field(11)?;
        if name_size == 0 || name_size > 4096 {
            return Err(bad("bad name size"));
        }
        // The name (with its NUL) is padded so that header + name is a multiple of 4.
        let name_padded = (110 + name_size).div_ceil(4) * 4 - 110;
        let mut name = vec![0u8; name_padded as usize];
        r.read_exact(&mut name).map_err(|_| bad("truncated name"))?;
        name.truncate(name_size as usize - 1);
        let name = String::from_utf8_lossy(&name);
        if name == "TRAILER!!!" {
            return Ok(());
        }
        let padded = size.div_ceil(4) * 4;
        let mut data = r.take(padded);
        if name.trim_start_matches("./").trim_start_matches('/') == wanted && size <= MAX_KEY {
            let mut content = Vec::new();
            data.read_to_end(&mut content)
                .map_err(|_| bad("truncated data"))?;
            if (content.len() as u64) < padded {
                return Err(bad("truncated data"));
            }
            content.truncate(size as usize);
            *found = Some(content);
        } else if io::copy(&mut data, &mut io::sink()).map_err(|e| e.to_string())? != padded {
            return Err(bad("truncated data"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apk::trust::PrivateKey;
    use std::io::Write;

    /// A newc archive with the given files (enough for `cpio::parse`).
    fn newc(files: &[(&str, &[u8])]) -> Vec<u8> {
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
        push("TRAILER!!!", b"", 0);
        out
    }

    fn key(dir: &Path) -> SignKey {
        SignKey {
            key: PrivateKey::generate_ed25519(),
            name: "medium.key.pub".into(),
            path: dir.join("medium.key"),
        }
    }

    #[test]
    fn finds_the_key_in_compressed_and_plain_archives() {
        let t = tempfile::tempdir().unwrap();
        let k = key(t.path());
        let pem = k.key.public().to_pem();
        let archive = newc(&[
            ("init", b"x"),
            ("etc/apk/keys/medium.key.pub", pem.as_bytes()),
        ]);
        let plain = t.path().join("plain");
        fs::write(&plain, &archive).unwrap();
        assert_eq!(check_index_key(&plain, &k), None);
        let gz = t.path().join("gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&archive).unwrap();
        fs::write(&gz, e.finish().unwrap()).unwrap();
        assert_eq!(check_index_key(&gz, &k), None);
        let zst = t.path().join("zst");
        fs::write(&zst, zstd::encode_all(&archive[..], 3).unwrap()).unwrap();
        assert_eq!(check_index_key(&zst, &k), None);
    }

    #[test]
    fn warns_about_a_missing_or_different_key() {
        let t = tempfile::tempdir().unwrap();
        let k = key(t.path());
        let p = t.path().join("initramfs");
        fs::write(&p, newc(&[("init", b"x")])).unwrap();
        let w = check_index_key(&p, &k).unwrap();
        assert!(
            w.contains("has no etc/apk/keys/medium.key.pub: the init will not trust"),
            "{w}"
        );
        let other = PrivateKey::generate_ed25519().public().to_pem();
        fs::write(
            &p,
            newc(&[("etc/apk/keys/medium.key.pub", other.as_bytes())]),
        )
        .unwrap();
        let w = check_index_key(&p, &k).unwrap();
        assert!(w.contains("is not the public half of --sign-key"), "{w}");
        fs::write(&p, b"\x04\x22\x4d\x18lz4").unwrap();
        let w = check_index_key(&p, &k).unwrap();
        assert!(w.ends_with("cannot check for the index key: unknown compression (gzip, zstd, xz or none expected)"), "{w}");
        fs::write(&p, &newc(&[("etc/apk/keys/medium.key.pub", b"x")])[..142]).unwrap();
        let w = check_index_key(&p, &k).unwrap();
        assert!(
            w.ends_with("cannot check for the index key: not a newc archive (truncated data)"),
            "{w}"
        );
    }

    #[test]
    fn finds_the_key_after_a_plain_microcode_archive() {
        // Debian's layout: an uncompressed early archive, padding, then the compressed main one.
        let t = tempfile::tempdir().unwrap();
        let k = key(t.path());
        let pem = k.key.public().to_pem();
        let mut bytes = newc(&[("kernel/x86/microcode/GenuineIntel.bin", &[7u8; 1000])]);
        bytes.resize(bytes.len().div_ceil(512) * 512, 0);
        let main = newc(&[("etc/apk/keys/medium.key.pub", pem.as_bytes())]);
        bytes.extend(zstd::encode_all(&main[..], 3).unwrap());
        let p = t.path().join("initrd");
        fs::write(&p, &bytes).unwrap();
        assert_eq!(check_index_key(&p, &k), None);
        // Two archives inside one compressed stream: the later entry wins.
        let other = PrivateKey::generate_ed25519().public().to_pem();
        let mut inner = newc(&[("etc/apk/keys/medium.key.pub", pem.as_bytes())]);
        inner.extend(newc(&[("etc/apk/keys/medium.key.pub", other.as_bytes())]));
        fs::write(&p, zstd::encode_all(&inner[..], 3).unwrap()).unwrap();
        assert!(check_index_key(&p, &k)
            .unwrap()
            .contains("is not the public half"));
    }
}
