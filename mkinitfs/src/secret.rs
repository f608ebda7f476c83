//! Secrets never travel: the one check that keeps private keys out of initramfs images and boot
//! media.
//!
//! `apk keygen -o DIR/overlay.key` writes both halves of a key pair into one directory, so
//! copying "every file of the keys directory" copies the private half too; whoever reads the
//! medium then holds the key that signs the box's packages or overlays. mkinitfs refuses such a
//! file in any directory it embeds and in any file it adds to an image; mkimage refuses one among
//! the files it copies onto a medium and inside the initramfs it copies. The one private key an
//! image may carry on purpose is the age identity at [`bootspec::initramfs::APKOVL_IDENTITY`]
//! (`mkinitfs --ovl-identity`, see its README: whoever reads the medium reads the overlay).
//!
//! A file is a private key when, within its first [`HEAD`] bytes, a line is a PEM header of any
//! private key (`-----BEGIN PRIVATE KEY-----` as `apk keygen`, `openssl genpkey` and
//! `age-keygen`'s PEM cousins write it, `ENCRYPTED PRIVATE KEY`, `RSA PRIVATE KEY`,
//! `EC PRIVATE KEY`, `OPENSSH PRIVATE KEY`, `PGP PRIVATE KEY BLOCK`, ...) or an age secret key
//! (`AGE-SECRET-KEY-1...`), or when the whole file is one DER structure that starts like every
//! private-key syntax does (PKCS#8, PKCS#1, SEC1: a SEQUENCE whose first element is the version
//! INTEGER 0 or 1; public keys and certificates start with a SEQUENCE instead).

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::Path;

/// How much of a file is examined: key files put their header at the top, and the check must
/// stay cheap for the hundreds of files of an initramfs.
pub const HEAD: usize = 4096;

/// What kind of private key a file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// A PEM block whose label names a private key (the label, e.g. `RSA PRIVATE KEY`).
    Pem(String),
    /// An age identity (`AGE-SECRET-KEY-1...`).
    AgeIdentity,
    /// A DER-encoded private key (PKCS#8, PKCS#1 or SEC1).
    Der,
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Pem(label) => write!(f, "a PEM private key ({label})"),
            Secret::AgeIdentity => f.write_str("an age identity (a private key)"),
            Secret::Der => f.write_str("a DER private key"),
        }
    }
}

/// The private key in `head` (the first bytes of a file; `whole` when they are the whole file).
pub fn find(head: &[u8], whole: bool) -> Option<Secret> {
    for line in head.split(|&b| b == b'\n') {
        let line = line.trim_ascii();
        if let Some(label) = line
            .strip_prefix(b"-----BEGIN ")
            .and_then(|l| l.strip_suffix(b"-----"))
        {
            let label = String::from_utf8_lossy(label);
            if label.contains("PRIVATE KEY") {
                return Some(Secret::Pem(label.into_owned()));
            }
        } else if line.starts_with(b"AGE-SECRET-KEY-1") {
            return Some(Secret::AgeIdentity);
        }
    }
    if whole && is_der_private_key(head) {
        return Some(Secret::Der);
    }
    None
}

/// The private key in the file at `path` (its first [`HEAD`] bytes).
pub fn find_in_file(path: &Path) -> io::Result<Option<Secret>> {
    let mut head = Vec::with_capacity(HEAD);
    let mut file = fs::File::open(path)?;
    (&mut file).take(HEAD as u64 + 1).read_to_end(&mut head)?;
    let whole = head.len() <= HEAD;
    head.truncate(HEAD);
    Ok(find(&head, whole))
}

/// Reads the first [`HEAD`] bytes of `data` and looks for a private key (for data that is a
/// stream, such as an archive entry); `size` is the whole data's length.
pub fn find_in_reader(data: &mut dyn Read, size: u64) -> io::Result<Option<Secret>> {
    let mut head = Vec::with_capacity(HEAD.min(size as usize));
    data.take(HEAD as u64).read_to_end(&mut head)?;
    Ok(find(&head, size <= HEAD as u64))
}

/// A DER SEQUENCE spanning exactly `data` whose first element is the INTEGER 0 or 1.
fn is_der_private_key(data: &[u8]) -> bool {
    let [0x30, first, rest @ ..] = data else {
        return false;
    };
    let (len, body) = match *first {
        n if n < 0x80 => (n as usize, rest),
        0x81 => match rest {
            [n, body @ ..] => (*n as usize, body),
            _ => return false,
        },
        0x82 => match rest {
            [a, b, body @ ..] => ((*a as usize) << 8 | *b as usize, body),
            _ => return false,
        },
        _ => return false,
    };
    len == body.len() && matches!(body, [0x02, 0x01, 0x00 | 0x01, ..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use apk::trust::PrivateKey;

    #[test]
    fn apk_keygen_output_is_a_private_key_and_its_pub_is_not() {
        // What `apk keygen` writes: PKCS#8 PEM for ed25519 and RSA, SPKI PEM for the .pub.
        let ed = PrivateKey::generate_ed25519();
        let pem = ed.to_pem().unwrap();
        assert_eq!(
            find(pem.as_bytes(), true),
            Some(Secret::Pem("PRIVATE KEY".into()))
        );
        assert_eq!(find(ed.public().to_pem().as_bytes(), true), None);
        let rsa = PrivateKey::generate_rsa(1024).unwrap();
        assert!(find(rsa.to_pem().unwrap().as_bytes(), true).is_some());
        assert_eq!(find(rsa.public().to_pem().as_bytes(), true), None);
    }

    #[test]
    fn every_pem_private_key_label_and_age_identities() {
        for label in [
            "ENCRYPTED PRIVATE KEY",
            "RSA PRIVATE KEY",
            "EC PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "PGP PRIVATE KEY BLOCK",
        ] {
            let text = format!("Bag Attributes\n  friendlyName: x\n-----BEGIN {label}-----\r\nMIIB\n-----END {label}-----\n");
            assert_eq!(
                find(text.as_bytes(), true),
                Some(Secret::Pem(label.into())),
                "{label}"
            );
        }
        let age = "# created: 2024-01-01T00:00:00Z\n# public key: age1xyz\nAGE-SECRET-KEY-1QQQQ\n";
        assert_eq!(find(age.as_bytes(), true), Some(Secret::AgeIdentity));
        for harmless in [
            "-----BEGIN PUBLIC KEY-----\nMCow\n-----END PUBLIC KEY-----\n",
            "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n",
            "# public key: age1xyz\nage1xyz\n",
            "the text -----BEGIN PRIVATE KEY----- inside a line\n",
        ] {
            assert_eq!(find(harmless.as_bytes(), true), None, "{harmless}");
        }
    }

    #[test]
    fn der_private_keys_but_not_public_ones() {
        // PKCS#8 ed25519 private key (48 bytes) and its SPKI public key (44 bytes).
        let private = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
            22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
        ];
        assert_eq!(find(&private, true), Some(Secret::Der));
        // Part of a larger file: not judged as DER.
        assert_eq!(find(&private, false), None);
        let public = [
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00, 1, 2, 3, 4, 5,
            6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
            29, 30, 31, 32,
        ];
        assert_eq!(find(&public, true), None);
        assert_eq!(find(b"\x7fELF\x02\x01\x01", true), None);
    }

    #[test]
    fn files_and_streams_look_at_their_head_only() {
        let t = tempfile::tempdir().unwrap();
        let key = t.path().join("k");
        fs::write(&key, PrivateKey::generate_ed25519().to_pem().unwrap()).unwrap();
        assert!(find_in_file(&key).unwrap().is_some());
        let mut late = vec![b'#'; HEAD];
        late.extend_from_slice(b"\n-----BEGIN PRIVATE KEY-----\n");
        fs::write(&key, &late).unwrap();
        assert_eq!(find_in_file(&key).unwrap(), None);
        let pem = PrivateKey::generate_ed25519().to_pem().unwrap();
        let mut r = pem.as_bytes();
        assert!(find_in_reader(&mut r, pem.len() as u64).unwrap().is_some());
    }
}
