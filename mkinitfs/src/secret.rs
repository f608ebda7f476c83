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
//! A file is a private key when one of its lines (anywhere in it: a web server's combined PEM puts
//! the certificate chain first and the key last) is a PEM header of any private key
//! (`-----BEGIN PRIVATE KEY-----` as `apk keygen`, `openssl genpkey` and `age-keygen`'s PEM
//! cousins write it, `ENCRYPTED PRIVATE KEY`, `RSA PRIVATE KEY`, `EC PRIVATE KEY`,
//! `OPENSSH PRIVATE KEY`, `PGP PRIVATE KEY BLOCK`, ...) or an age secret key
//! (`AGE-SECRET-KEY-1...`), or when the whole file (at most [`DER_MAX`] bytes) is one DER
//! structure that starts like every private-key syntax does (PKCS#8, PKCS#1, SEC1: a SEQUENCE
//! whose first element is the version INTEGER 0 or 1; public keys and certificates start with a
//! SEQUENCE instead). When a file holds several kinds, the answer is the PEM or DER key before an
//! age identity, so the identity exception never covers anything else.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::Path;

/// The largest file judged as a whole DER private key (an 8192-bit RSA key in PKCS#8 is about
/// 4.8 KiB); larger files are only scanned for PEM and age lines.
pub const DER_MAX: usize = 16 << 10;

/// Lines longer than this are not examined (a key header line is about 40 bytes; the bound keeps
/// the scanner's memory constant on files without newlines).
const LINE_MAX: usize = 1024;

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

/// The private key in `data` (the whole content of a file).
pub fn find(data: &[u8]) -> Option<Secret> {
    let mut scanner = Scanner::default();
    scanner.feed(data);
    scanner.finish()
}

/// The private key in the file at `path` (all of it, read in chunks).
pub fn find_in_file(path: &Path) -> io::Result<Option<Secret>> {
    find_in_reader(&mut fs::File::open(path)?)
}

/// The private key in a stream (an archive entry, a file), read to its end in chunks.
pub fn find_in_reader(data: &mut dyn Read) -> io::Result<Option<Secret>> {
    let mut scanner = Scanner::default();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        match data.read(&mut chunk) {
            Ok(0) => return Ok(scanner.finish()),
            Ok(n) => scanner.feed(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A streaming search: lines are examined as they complete, with the unfinished one carried
/// between chunks; the first [`DER_MAX`] + 1 bytes are kept for the DER judgement.
#[derive(Default)]
struct Scanner {
    /// The current, unfinished line (empty once it grew past [`LINE_MAX`]).
    line: Vec<u8>,
    /// The current line is longer than [`LINE_MAX`]: skip to its end.
    overlong: bool,
    /// The first bytes of the data, up to [`DER_MAX`] + 1.
    head: Vec<u8>,
    pem: Option<String>,
    age: bool,
}

impl Scanner {
    fn feed(&mut self, mut chunk: &[u8]) {
        let room = (DER_MAX + 1).saturating_sub(self.head.len());
        self.head.extend_from_slice(&chunk[..chunk.len().min(room)]);
        while self.pem.is_none() && !chunk.is_empty() {
            let (part, rest, complete) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (&chunk[..i], &chunk[i + 1..], true),
                None => (chunk, &[][..], false),
            };
            if !self.overlong {
                if self.line.len() + part.len() > LINE_MAX {
                    self.overlong = true;
                    self.line.clear();
                } else {
                    self.line.extend_from_slice(part);
                }
            }
            if complete {
                self.end_line();
            }
            chunk = rest;
        }
    }

    fn end_line(&mut self) {
        if !self.overlong {
            let line = self.line.trim_ascii();
            if let Some(label) = line
                .strip_prefix(b"-----BEGIN ")
                .and_then(|l| l.strip_suffix(b"-----"))
            {
                let label = String::from_utf8_lossy(label);
                if label.contains("PRIVATE KEY") {
                    self.pem = Some(label.into_owned());
                }
            } else if line.starts_with(b"AGE-SECRET-KEY-1") {
                self.age = true;
            }
        }
        self.line.clear();
        self.overlong = false;
    }

    fn finish(mut self) -> Option<Secret> {
        if self.pem.is_none() {
            self.end_line();
        }
        if let Some(label) = self.pem {
            return Some(Secret::Pem(label));
        }
        if self.head.len() <= DER_MAX && is_der_private_key(&self.head) {
            return Some(Secret::Der);
        }
        self.age.then_some(Secret::AgeIdentity)
    }
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
            find(pem.as_bytes()),
            Some(Secret::Pem("PRIVATE KEY".into()))
        );
        assert_eq!(find(ed.public().to_pem().as_bytes()), None);
        let rsa = PrivateKey::generate_rsa(1024).unwrap();
        assert!(find(rsa.to_pem().unwrap().as_bytes()).is_some());
        assert_eq!(find(rsa.public().to_pem().as_bytes()), None);
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
                find(text.as_bytes()),
                Some(Secret::Pem(label.into())),
                "{label}"
            );
        }
        let age = "# created: 2024-01-01T00:00:00Z\n# public key: age1xyz\nAGE-SECRET-KEY-1QQQQ\n";
        assert_eq!(find(age.as_bytes()), Some(Secret::AgeIdentity));
        for harmless in [
            "-----BEGIN PUBLIC KEY-----\nMCow\n-----END PUBLIC KEY-----\n",
            "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n",
            "# public key: age1xyz\nage1xyz\n",
            "the text -----BEGIN PRIVATE KEY----- inside a line\n",
        ] {
            assert_eq!(find(harmless.as_bytes()), None, "{harmless}");
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
        assert_eq!(find(&private), Some(Secret::Der));
        // Part of a larger file: not judged as DER.
        let mut longer = private.to_vec();
        longer.extend_from_slice(&[0; DER_MAX]);
        assert_eq!(find(&longer), None);
        let public = [
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00, 1, 2, 3, 4, 5,
            6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
            29, 30, 31, 32,
        ];
        assert_eq!(find(&public), None);
        assert_eq!(find(b"\x7fELF\x02\x01\x01"), None);
    }

    #[test]
    fn files_and_streams_are_scanned_to_their_end() {
        let t = tempfile::tempdir().unwrap();
        let key = t.path().join("k");
        fs::write(&key, PrivateKey::generate_ed25519().to_pem().unwrap()).unwrap();
        assert!(find_in_file(&key).unwrap().is_some());
        // A combined PEM as web servers take it: a long certificate chain, then the key, split
        // across the reader's chunks.
        let mut combined = Vec::new();
        while combined.len() < 200_000 {
            combined.extend_from_slice(b"-----BEGIN CERTIFICATE-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOC\n-----END CERTIFICATE-----\n");
        }
        combined.extend_from_slice(
            b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----",
        );
        fs::write(&key, &combined).unwrap();
        assert_eq!(
            find_in_file(&key).unwrap(),
            Some(Secret::Pem("EC PRIVATE KEY".into()))
        );
        for split in [1, 7, 64 << 10] {
            let mut r = Chunked(&combined, split);
            assert!(find_in_reader(&mut r).unwrap().is_some(), "{split}");
        }
        // A header line that is only reached after a line too long to examine.
        let mut late = vec![b'#'; 3 * LINE_MAX];
        late.extend_from_slice(b"\n-----BEGIN PRIVATE KEY-----\n");
        assert!(find(&late).is_some());
    }

    #[test]
    fn an_age_identity_never_hides_another_key() {
        let both =
            "AGE-SECRET-KEY-1QQQQ\n-----BEGIN PRIVATE KEY-----\nMC4\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            find(both.as_bytes()),
            Some(Secret::Pem("PRIVATE KEY".into()))
        );
        assert_eq!(find(b"AGE-SECRET-KEY-1QQQQ"), Some(Secret::AgeIdentity));
    }

    /// A reader that returns at most `.1` bytes per call.
    struct Chunked<'a>(&'a [u8], usize);

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
}
