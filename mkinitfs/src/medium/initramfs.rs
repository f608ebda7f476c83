//! Does the initramfs trust the medium key? The init verifies the boot repository's index with
//! the keys in its own `etc/apk/keys` (boot-params.md §3.9), so a medium whose index key is not
//! there boots into "UNTRUSTED signature". mkimage looks inside the initramfs it copies (newc,
//! plain or gzip/zstd/xz compressed, as mkinitfs and Alpine write it) and warns before the user
//! finds out at the console.

use std::fs;
use std::io::Read;
use std::path::Path;

use apk::trust::PublicKey;

use super::SignKey;
use crate::cpio;

/// Largest initramfs content we unpack for the check.
const MAX_UNPACKED: u64 = 1 << 30;

/// A warning when `initramfs` does not carry the public half of `key` as
/// `etc/apk/keys/<key name>`; `None` when it does.
pub fn check_index_key(initramfs: &Path, key: &SignKey) -> Option<String> {
    let subject = format!("--initramfs {}", initramfs.display());
    let archive = match unpack(initramfs) {
        Ok(a) => a,
        Err(why) => return Some(format!("{subject}: cannot check for the index key: {why}")),
    };
    let entries = match cpio::parse(&archive) {
        Ok(e) => e,
        Err(why) => {
            return Some(format!(
                "{subject}: cannot check for the index key: not a newc archive ({why})"
            ))
        }
    };
    let wanted = format!("etc/apk/keys/{}", key.name);
    let hint = "the init will not trust the boot repository (mkinitfs --keys-dir DIR, with the .pub file in DIR)";
    let Some(entry) = entries
        .iter()
        .find(|e| e.name.trim_start_matches("./").trim_start_matches('/') == wanted)
    else {
        return Some(format!("{subject}: has no {wanted}: {hint}"));
    };
    let ours = key.key.public().to_pem();
    let theirs = std::str::from_utf8(&entry.data)
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

/// The newc bytes of an initramfs, decompressed by magic number.
fn unpack(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let limited = |r: &mut dyn Read, out: &mut Vec<u8>| -> Result<(), String> {
        r.take(MAX_UNPACKED + 1)
            .read_to_end(out)
            .map_err(|e| e.to_string())?;
        if out.len() as u64 > MAX_UNPACKED {
            return Err("larger than 1 GiB unpacked".into());
        }
        Ok(())
    };
    match bytes.get(..6) {
        Some(b"070701") => return Ok(bytes),
        Some([0x1f, 0x8b, ..]) => {
            limited(&mut flate2::read::MultiGzDecoder::new(&bytes[..]), &mut out)?
        }
        Some([0x28, 0xb5, 0x2f, 0xfd, ..]) => {
            let mut d = zstd::stream::read::Decoder::new(&bytes[..]).map_err(|e| e.to_string())?;
            limited(&mut d, &mut out)?;
        }
        Some([0xfd, b'7', b'z', b'X', b'Z', 0]) => {
            lzma_rs::xz_decompress(&mut &bytes[..], &mut out).map_err(|e| e.to_string())?;
        }
        _ => return Err("unknown compression (gzip, zstd, xz or none expected)".into()),
    }
    Ok(out)
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
    }
}
