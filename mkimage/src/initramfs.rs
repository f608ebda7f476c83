//! Does the initramfs trust the medium key? The init verifies the boot repository's index with
//! the keys in its own `etc/apk/keys` (boot-params.md §3.9), so a medium whose index key is not
//! there boots into "UNTRUSTED signature". mkimage looks inside the initramfs it copies and warns
//! before the user finds out at the console.
//!
//! An initramfs is one or more newc archives, each plain or compressed, one after the other; the
//! workspace's one reader ([`mkinitfs::cpio::scan`]) walks them as streams, skipping file data,
//! so memory stays small whatever the unpacked size.

use std::fs;
use std::io;
use std::path::Path;

use apk::trust::PublicKey;
use mkinitfs::cpio;

use crate::SignKey;

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
    let file = fs::File::open(path).map_err(|e| e.to_string())?;
    let mut found = None;
    cpio::scan(io::BufReader::new(file), &mut |header, data| {
        if header.path() == wanted && u64::from(header.size) <= MAX_KEY {
            let mut content = Vec::new();
            data.read_to_end(&mut content)?;
            found = Some(content);
        }
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use apk::trust::PrivateKey;
    use std::io::Write;

    /// A newc archive with the given files (as another tool would write it).
    fn newc(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut tree = mkinitfs::tree::Tree::new();
        for (name, data) in files {
            tree.add_bytes(name, data.to_vec(), 0o644).unwrap();
        }
        cpio::write_tree(&tree, 0, Vec::new(), Path::new("test")).unwrap()
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
        // Cut inside the key's data (the trailer is the last 124 bytes).
        let archive = newc(&[("etc/apk/keys/medium.key.pub", b"xy")]);
        fs::write(&p, &archive[..archive.len() - 124 - 3]).unwrap();
        let w = check_index_key(&p, &k).unwrap();
        assert!(
            w.contains(
                "cannot check for the index key: not a newc archive (truncated data at byte "
            ),
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
