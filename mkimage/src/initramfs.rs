//! What mkimage checks inside the initramfs it copies, in one pass over its archives:
//!
//! - no private key: only public keys may enter an image, except the age identity at
//!   `etc/apkovl/identity` that `mkinitfs --ovl-identity` embeds on purpose (an error otherwise,
//!   see [`crate::secrets`]);
//! - the medium key: the init verifies the boot repository's index with the keys in its own
//!   `etc/apk/keys` (docs/boot.md), so a medium whose index key is not there boots into
//!   "UNTRUSTED signature"; mkimage warns before the user finds out at the console.
//!
//! An initramfs is one or more newc archives, each plain or compressed, one after the other; the
//! workspace's one reader ([`mkinitfs::cpio::scan`]) walks them as streams, reading the first
//! whole of each file through the scanner, so memory stays small whatever the unpacked size. An
//! initramfs mkimage cannot read to its end (lz4, say, or a truncated archive) is refused: a
//! medium never carries an image nobody checked.

use std::fs;
use std::io;
use std::path::Path;

use apk::trust::{PrivateKey, PublicKey};
use bootspec::initramfs::{APKOVL_IDENTITY, APKOVL_KEYS, APK_KEYS};
use mkinitfs::cpio;
use mkinitfs::secret::{self, Secret};

use crate::error::Error;
use crate::{OverlayKey, SignKey};

/// A key file larger than this is not a PEM public key.
const MAX_KEY: u64 = 64 << 10;

/// What [`check`] compares the initramfs with.
#[derive(Clone, Copy, Default)]
pub struct Expect<'a> {
    /// The key signing the boot repository's index: a warning when its public half is missing.
    pub index_key: Option<&'a SignKey>,
    /// `--ovl-key`: an error when its public half is not `etc/apkovl/keys/<name>` (without any
    /// overlay key the init checks no signature and boots whatever overlay it is served).
    pub overlay_key: Option<&'a OverlayKey>,
    /// A netboot tree: an error for the age identity (the tree is served to whoever asks).
    pub netboot: bool,
}

/// Checks the initramfs: an error for a private key in it, for an initramfs that cannot be read
/// to its end, for a missing or different overlay key and for an identity in a netboot tree;
/// else the warnings (the index key is missing or not the public half of the index key).
pub fn check(initramfs: &Path, expect: Expect) -> Result<Vec<String>, Error> {
    let subject = format!("--initramfs {}", initramfs.display());
    let wanted = expect.index_key.map(|k| format!("{APK_KEYS}/{}", k.name));
    let wanted_ovl = expect
        .overlay_key
        .map(|k| format!("{APKOVL_KEYS}/{}", k.name));
    let found = inspect(initramfs, wanted.as_deref(), wanted_ovl.as_deref()).map_err(|reason| {
        Error::InitramfsUnreadable {
            path: initramfs.to_path_buf(),
            reason,
        }
    })?;
    if let Some((entry, secret)) = found.secret {
        return Err(Error::InitramfsSecret {
            path: initramfs.to_path_buf(),
            entry,
            secret,
        });
    }
    let refuse = |reason: String| Error::Input {
        option: "--initramfs",
        path: initramfs.to_path_buf(),
        reason,
    };
    if expect.netboot && found.identity {
        return Err(refuse(format!(
            "holds the age identity {APKOVL_IDENTITY}: a netboot tree is readable by whoever reaches the server, so the identity would decrypt the overlays for anyone (build the netboot initramfs without --ovl-identity)"
        )));
    }
    if let (Some(key), Some(wanted)) = (expect.overlay_key, &wanted_ovl) {
        let fix = format!("mkinitfs --ovl-keys-dir DIR, with {} in DIR", key.name);
        let reason = match &found.overlay_key {
            None if !found.overlay_keys => Some(format!(
                "has no {wanted}: the init would check no overlay signature and boot any overlay it is served ({fix})"
            )),
            None => Some(format!(
                "has no {wanted}: the init would refuse every overlay signed with --ovl-key {} ({fix})",
                key.path.display()
            )),
            Some(data) if !same_key(Some(data), &key.key) => Some(format!(
                "{wanted} is not the public half of --ovl-key {}: the init would refuse every overlay signed with it ({fix})",
                key.path.display()
            )),
            Some(_) => None,
        };
        if let Some(reason) = reason {
            return Err(refuse(reason));
        }
    }
    let (Some(key), Some(wanted)) = (expect.index_key, wanted) else {
        return Ok(Vec::new());
    };
    let hint = "the init will not trust the boot repository (mkinitfs --keys-dir DIR, with the .pub file in DIR)";
    let Some(data) = found.key else {
        return Ok(vec![format!("{subject}: has no {wanted}: {hint}")]);
    };
    if !same_key(Some(&data), &key.key) {
        return Ok(vec![format!(
            "{subject}: {wanted} is not the public half of --sign-key {}: {hint}",
            key.path.display()
        )]);
    }
    Ok(Vec::new())
}

/// Whether `data` is the PEM public half of `key`.
fn same_key(data: Option<&[u8]>, key: &PrivateKey) -> bool {
    let theirs = data
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(PublicKey::from_pem)
        .map(|k| k.to_pem());
    theirs.as_deref() == Some(key.public().to_pem().as_str())
}

/// A netboot tree's initramfs must bring up a network card: a warning when it holds no network
/// driver module (`[usr/]lib/modules/*/kernel/drivers/net/`; a kernel with the driver built in needs
/// none, hence not an error).
pub fn check_network(initramfs: Option<&Path>) -> Result<Vec<String>, Error> {
    let Some(path) = initramfs else {
        return Ok(Vec::new());
    };
    let file = fs::File::open(path).map_err(|e| Error::InitramfsUnreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut drivers = false;
    cpio::scan(io::BufReader::new(file), &mut |header, _data| {
        let entry = header.path();
        drivers |= header.is_file()
            && (entry.starts_with("lib/modules/") || entry.starts_with("usr/lib/modules/"))
            && entry.contains("/kernel/drivers/net/");
        Ok(())
    })
    .map_err(|e| Error::InitramfsUnreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(if drivers {
        Vec::new()
    } else {
        vec![format!(
            "--initramfs {}: holds no network card driver (lib/modules/*/kernel/drivers/net): a netboot box needs one (mkinitfs -F \"... network\")",
            path.display()
        )]
    })
}

/// What one pass over the archives found.
#[derive(Default)]
struct Found {
    /// The content of the last entry named like the wanted index key.
    key: Option<Vec<u8>>,
    /// The content of the last entry named like the wanted overlay key.
    overlay_key: Option<Vec<u8>>,
    /// Whether any file is in `etc/apkovl/keys/`.
    overlay_keys: bool,
    /// Whether the age identity is there.
    identity: bool,
    /// The first private key (entry path and kind) outside the sanctioned identity.
    secret: Option<(String, Secret)>,
}

fn inspect(path: &Path, wanted: Option<&str>, wanted_ovl: Option<&str>) -> Result<Found, String> {
    let file = fs::File::open(path).map_err(|e| e.to_string())?;
    let mut found = Found::default();
    cpio::scan(io::BufReader::new(file), &mut |header, data| {
        if !header.is_file() {
            return Ok(());
        }
        let entry = header.path();
        let size = u64::from(header.size);
        found.overlay_keys |= entry
            .strip_prefix(APKOVL_KEYS)
            .is_some_and(|r| r.starts_with('/'));
        found.identity |= entry == APKOVL_IDENTITY;
        let is_index = Some(entry) == wanted;
        let is_ovl = Some(entry) == wanted_ovl;
        let kind = if (is_index || is_ovl) && size <= MAX_KEY {
            let mut content = Vec::new();
            data.read_to_end(&mut content)?;
            let kind = secret::find(&content);
            if is_index {
                found.key = Some(content);
            } else {
                found.overlay_key = Some(content);
            }
            kind
        } else {
            secret::find_in_reader(data)?
        };
        match kind {
            Some(Secret::AgeIdentity) if entry == APKOVL_IDENTITY => {}
            Some(s) if found.secret.is_none() => found.secret = Some((entry.to_string(), s)),
            _ => {}
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

    fn idx(k: &SignKey) -> Expect<'_> {
        Expect {
            index_key: Some(k),
            ..Expect::default()
        }
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
        assert!(check(&plain, idx(&k)).unwrap().is_empty());
        let gz = t.path().join("gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&archive).unwrap();
        fs::write(&gz, e.finish().unwrap()).unwrap();
        assert!(check(&gz, idx(&k)).unwrap().is_empty());
        let zst = t.path().join("zst");
        fs::write(&zst, zstd::encode_all(&archive[..], 3).unwrap()).unwrap();
        assert!(check(&zst, idx(&k)).unwrap().is_empty());
    }

    #[test]
    fn warns_about_a_missing_or_different_key() {
        let t = tempfile::tempdir().unwrap();
        let k = key(t.path());
        let p = t.path().join("initramfs");
        fs::write(&p, newc(&[("init", b"x")])).unwrap();
        let w = check(&p, idx(&k)).unwrap().remove(0);
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
        let w = check(&p, idx(&k)).unwrap().remove(0);
        assert!(w.contains("is not the public half of --sign-key"), "{w}");
    }

    #[test]
    fn an_initramfs_that_cannot_be_read_to_its_end_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let k = key(t.path());
        let p = t.path().join("initramfs");
        fs::write(&p, b"\x04\x22\x4d\x18lz4").unwrap();
        let e = check(&p, idx(&k)).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "--initramfs {}: cannot be checked for private keys (unknown compression (gzip, zstd, xz or none expected)): rebuild it with gzip, zstd, xz or no compression",
                p.display()
            )
        );
        // Cut inside the key's data (the trailer is the last 124 bytes).
        let archive = newc(&[("etc/apk/keys/medium.key.pub", b"xy")]);
        fs::write(&p, &archive[..archive.len() - 124 - 3]).unwrap();
        let e = check(&p, Expect::default()).unwrap_err().to_string();
        assert!(
            e.contains(
                "cannot be checked for private keys (not a newc archive (truncated data at byte "
            ),
            "{e}"
        );
    }

    #[test]
    fn a_key_anywhere_in_a_file_and_behind_the_identity_is_found() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("initramfs");
        let mut combined = vec![b'#'; 100_000];
        combined.extend_from_slice(b"\n-----BEGIN RSA PRIVATE KEY-----\nMII\n");
        fs::write(&p, newc(&[("etc/ssl/server.pem", &combined)])).unwrap();
        let e = check(&p, Expect::default()).unwrap_err().to_string();
        assert!(e.ends_with("/etc/ssl/server.pem: a PEM private key (RSA PRIVATE KEY): only public keys may enter an image"), "{e}");
        let identity = b"AGE-SECRET-KEY-1QQQQ\n-----BEGIN PRIVATE KEY-----\nMC4\n";
        fs::write(&p, newc(&[(APKOVL_IDENTITY, &identity[..])])).unwrap();
        let e = check(&p, Expect::default()).unwrap_err().to_string();
        assert!(e.ends_with("/etc/apkovl/identity: a PEM private key (PRIVATE KEY): only public keys may enter an image"), "{e}");
        fs::write(&p, newc(&[(APKOVL_IDENTITY, &identity[..21])])).unwrap();
        assert!(check(&p, Expect::default()).unwrap().is_empty());
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
        assert!(check(&p, idx(&k)).unwrap().is_empty());
        // Two archives inside one compressed stream: the later entry wins.
        let other = PrivateKey::generate_ed25519().public().to_pem();
        let mut inner = newc(&[("etc/apk/keys/medium.key.pub", pem.as_bytes())]);
        inner.extend(newc(&[("etc/apk/keys/medium.key.pub", other.as_bytes())]));
        fs::write(&p, zstd::encode_all(&inner[..], 3).unwrap()).unwrap();
        assert!(check(&p, idx(&k)).unwrap()[0].contains("is not the public half"));
    }

    #[test]
    fn private_keys_inside_are_errors_except_the_overlay_identity() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("initramfs");
        let pem = PrivateKey::generate_ed25519().to_pem().unwrap();
        let age = "# public key: age1x\nAGE-SECRET-KEY-1QQQQQQ\n";
        // Debian's layout: a plain early archive, then the compressed main one holding the key.
        let mut bytes = newc(&[("kernel/x86/microcode/GenuineIntel.bin", &[7u8; 100])]);
        bytes.extend(
            zstd::encode_all(
                &newc(&[("etc/apkovl/keys/overlay.key", pem.as_bytes())])[..],
                3,
            )
            .unwrap(),
        );
        fs::write(&p, &bytes).unwrap();
        let err = check(&p, Expect::default()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "--initramfs {}: /etc/apkovl/keys/overlay.key: a PEM private key (PRIVATE KEY): only public keys may enter an image",
                p.display()
            )
        );
        // The index key's own entry is checked too.
        let k = key(t.path());
        fs::write(&p, newc(&[("etc/apk/keys/medium.key.pub", pem.as_bytes())])).unwrap();
        assert!(check(&p, idx(&k)).is_err());
        // The identity is allowed where mkinitfs --ovl-identity puts it, and nowhere else.
        fs::write(&p, newc(&[("etc/apkovl/identity", age.as_bytes())])).unwrap();
        assert!(check(&p, Expect::default()).unwrap().is_empty());
        fs::write(&p, newc(&[("root/identity", age.as_bytes())])).unwrap();
        assert!(check(&p, Expect::default())
            .unwrap_err()
            .to_string()
            .contains("/root/identity: an age identity (a private key)"));
    }

    #[test]
    fn the_overlay_key_must_be_there_and_netboot_refuses_the_identity() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("initramfs");
        let ovl = OverlayKey {
            key: PrivateKey::generate_ed25519(),
            name: "fleet.key.pub".into(),
            path: t.path().join("fleet.key"),
        };
        let expect = Expect {
            overlay_key: Some(&ovl),
            ..Expect::default()
        };
        let err = |files: &[(&str, &[u8])], expect: Expect| {
            fs::write(&p, newc(files)).unwrap();
            check(&p, expect).unwrap_err().to_string()
        };
        let subject = format!("--initramfs {}", p.display());
        // No overlay key at all: the init would check no signature.
        assert_eq!(
            err(&[("init", b"x")], expect),
            format!("{subject}: has no etc/apkovl/keys/fleet.key.pub: the init would check no overlay signature and boot any overlay it is served (mkinitfs --ovl-keys-dir DIR, with fleet.key.pub in DIR)")
        );
        let other = PrivateKey::generate_ed25519().public().to_pem();
        let e = err(&[("etc/apkovl/keys/old.key.pub", other.as_bytes())], expect);
        assert!(
            e.starts_with(&format!("{subject}: has no etc/apkovl/keys/fleet.key.pub: the init would refuse every overlay signed with --ovl-key ")),
            "{e}"
        );
        let e = err(
            &[("etc/apkovl/keys/fleet.key.pub", other.as_bytes())],
            expect,
        );
        assert!(
            e.contains("etc/apkovl/keys/fleet.key.pub is not the public half of --ovl-key"),
            "{e}"
        );
        let ours = ovl.key.public().to_pem();
        fs::write(
            &p,
            newc(&[("etc/apkovl/keys/fleet.key.pub", ours.as_bytes())]),
        )
        .unwrap();
        assert!(check(&p, expect).unwrap().is_empty());
        // The identity: allowed on a medium, refused in a netboot tree.
        let age = b"AGE-SECRET-KEY-1QQQQQQ\n";
        fs::write(&p, newc(&[(APKOVL_IDENTITY, age)])).unwrap();
        assert!(check(&p, Expect::default()).unwrap().is_empty());
        let netboot = Expect {
            netboot: true,
            ..Expect::default()
        };
        assert_eq!(
            err(&[(APKOVL_IDENTITY, age)], netboot),
            format!("{subject}: holds the age identity etc/apkovl/identity: a netboot tree is readable by whoever reaches the server, so the identity would decrypt the overlays for anyone (build the netboot initramfs without --ovl-identity)")
        );
    }
}
