//! Detached ed25519 signatures for overlays: `NAME.sig` next to `NAME` (lbu.md §10.2 #11).
//!
//! The `.sig` file is small UTF-8 text, one `key: value` per line after a format line:
//! ```text
//! apkovl-signature v1
//! key-name: admin.pub
//! key-id: <hex SHA-256 of the raw 32-byte ed25519 public key>
//! sha512: <hex SHA-512 of the overlay file's bytes>
//! signature: <base64 ed25519 signature>
//! ```
//! The signature is over `b"apkovl-ed25519-v1\0" || SHA-512(file bytes)`: the file is hashed in
//! one pass and the domain prefix keeps the signature from being valid for anything else (an apk
//! index, another format). It covers the bytes as stored, so an encrypted overlay is verified
//! before it is decrypted. `key-name` is a hint for humans; the key is found by `key-id` among the
//! trusted PEM public keys of a directory (e.g. the initramfs `/etc/apkovl/keys/`) and checked
//! with `verify_strict` (no weak keys, no malleable signatures).
//!
//! A `.sig` file may hold several such documents one after the other; it verifies when one of
//! them verifies. `lbu` uses this to keep a valid signature at every instant of a commit: the
//! new block plus the old one go in first, then the new overlay, then the new block alone.

use crate::Error;
use apk::trust::{PrivateKey, PublicKey};
use base64::Engine;
use sha2::{Digest, Sha256, Sha512};
use std::path::Path;

const FORMAT_LINE: &str = "apkovl-signature v1";
const DOMAIN: &[u8] = b"apkovl-ed25519-v1\0";

/// Outcome of [`verify`], for the caller's policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// A trusted key (file name in the keys directory) signed exactly these bytes.
    Verified {
        /// File name of the trusted key.
        key: String,
    },
    /// There is no signature.
    Unsigned,
    /// There is a signature but it does not prove anything (reason for the console).
    Bad {
        /// Why.
        reason: String,
    },
}

fn key_id(k: &ed25519_dalek::VerifyingKey) -> String {
    hex::encode(Sha256::digest(k.as_bytes()))
}

fn message(overlay: &[u8]) -> (Vec<u8>, String) {
    let digest = Sha512::digest(overlay);
    let mut msg = DOMAIN.to_vec();
    msg.extend_from_slice(&digest);
    (msg, hex::encode(digest))
}

/// The `.sig` text for `overlay`, signed with an ed25519 `key` whose public half is published as
/// `key_name`.
pub fn sign(overlay: &[u8], key: &PrivateKey, key_name: &str) -> Result<String, Error> {
    let PrivateKey::Ed25519(k) = key else {
        return Err(Error::SignatureFormat(format!(
            "{key_name}: overlay signing keys must be ed25519"
        )));
    };
    use ed25519_dalek::Signer;
    let (msg, digest) = message(overlay);
    let sig = k.sign(&msg);
    let name: String = key_name.chars().filter(|c| !c.is_control()).collect();
    Ok(format!(
        "{FORMAT_LINE}\nkey-name: {name}\nkey-id: {}\nsha512: {digest}\nsignature: {}\n",
        key_id(&k.verifying_key()),
        base64::engine::general_purpose::STANDARD.encode(sig.to_bytes())
    ))
}

struct SigFile {
    key_name: String,
    key_id: String,
    sha512: String,
    signature: Vec<u8>,
}

fn parse(text: &[u8]) -> Result<SigFile, String> {
    let text = std::str::from_utf8(text).map_err(|_| "signature file is not text".to_string())?;
    let mut lines = text.lines();
    if lines.next() != Some(FORMAT_LINE) {
        return Err(format!(
            "not an overlay signature (first line is not `{FORMAT_LINE}`)"
        ));
    }
    let (mut key_name, mut kid, mut sha, mut sig) = (String::new(), None, None, None);
    for l in lines {
        let Some((k, v)) = l.split_once(": ") else {
            if l.is_empty() {
                continue;
            }
            return Err(format!("malformed line {l:?}"));
        };
        match k {
            "key-name" => key_name = v.to_string(),
            "key-id" => kid = Some(v.to_ascii_lowercase()),
            "sha512" => sha = Some(v.to_ascii_lowercase()),
            "signature" => {
                sig = Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(v)
                        .map_err(|_| "signature is not base64".to_string())?,
                )
            }
            _ => {}
        }
    }
    Ok(SigFile {
        key_name,
        key_id: kid.ok_or("missing key-id")?,
        sha512: sha.ok_or("missing sha512")?,
        signature: sig.ok_or("missing signature")?,
    })
}

/// Check `sig` (the `.sig` file's bytes, `None` when there is none) over `overlay` against the
/// ed25519 public keys (PEM) in `keys_dir`.
pub fn verify(overlay: &[u8], sig: Option<&[u8]>, keys_dir: &Path) -> Verification {
    let Some(sig) = sig else {
        return Verification::Unsigned;
    };
    let Ok(text) = std::str::from_utf8(sig) else {
        return Verification::Bad {
            reason: "signature file is not text".into(),
        };
    };
    let (msg, digest) = message(overlay);
    let keys = trusted_keys(keys_dir);
    // Several blocks may be concatenated (lbu keeps the previous overlay's block during a
    // commit); one good block for these bytes is enough.
    let mut reason = None;
    for block in blocks(text) {
        match verify_block(block, &msg, &digest, &keys, keys_dir) {
            Ok(key) => return Verification::Verified { key },
            // A block for other bytes explains less than one for these bytes that fails.
            Err((why, for_these_bytes)) => {
                if reason.is_none() || for_these_bytes {
                    reason = Some(why);
                }
            }
        }
    }
    Verification::Bad {
        reason: reason.unwrap_or_else(|| "empty signature file".into()),
    }
}

/// The signature documents of a `.sig` file, each starting with the format line.
fn blocks(text: &str) -> Vec<&str> {
    let mut starts: Vec<usize> = text
        .match_indices(FORMAT_LINE)
        .map(|(i, _)| i)
        .filter(|&i| i == 0 || text.as_bytes()[i - 1] == b'\n')
        .collect();
    if starts.first() != Some(&0) {
        starts.insert(0, 0);
    }
    starts
        .iter()
        .enumerate()
        .map(|(n, &i)| &text[i..starts.get(n + 1).copied().unwrap_or(text.len())])
        .collect()
}

/// Trusted ed25519 keys of a directory, by file name (sorted).
fn trusted_keys(dir: &Path) -> Vec<(String, ed25519_dalek::VerifyingKey)> {
    let mut out: Vec<(String, ed25519_dalek::VerifyingKey)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pem = std::fs::read_to_string(e.path()).ok()?;
            match PublicKey::from_pem(&pem)? {
                PublicKey::Ed25519(k) => Some((e.file_name().to_string_lossy().into_owned(), k)),
                PublicKey::Rsa(_) => None,
            }
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// One block: the trusted key's file name, or why not (and whether the block was for these bytes).
fn verify_block(
    block: &str,
    msg: &[u8],
    digest: &str,
    keys: &[(String, ed25519_dalek::VerifyingKey)],
    keys_dir: &Path,
) -> Result<String, (String, bool)> {
    let s = parse(block.as_bytes()).map_err(|why| (why, false))?;
    if s.sha512 != digest {
        return Err((
            "overlay does not match its signature (SHA-512 differs)".into(),
            false,
        ));
    }
    let signature = ed25519_dalek::Signature::from_slice(&s.signature)
        .map_err(|_| ("signature has the wrong length".to_string(), true))?;
    for (file, k) in keys {
        if key_id(k) != s.key_id {
            continue;
        }
        return match k.verify_strict(msg, &signature) {
            Ok(()) => Ok(file.clone()),
            Err(_) => Err((
                format!("signature does not verify with trusted key {file}"),
                true,
            )),
        };
    }
    Err((
        format!(
            "signed by an untrusted key ({} key-id {}) not in {}",
            s.key_name,
            s.key_id.chars().take(16).collect::<String>(),
            keys_dir.display()
        ),
        true,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, PrivateKey) {
        let t = tempfile::tempdir().unwrap();
        let k = PrivateKey::generate_ed25519();
        std::fs::create_dir(t.path().join("keys")).unwrap();
        std::fs::write(t.path().join("keys/admin.pub"), k.public().to_pem()).unwrap();
        std::fs::write(t.path().join("keys/README"), "not a key").unwrap();
        (t, k)
    }

    #[test]
    fn sign_and_verify() {
        let (t, k) = setup();
        let data = b"overlay bytes".to_vec();
        let sig = sign(&data, &k, "admin.pub").unwrap();
        assert!(sig.starts_with("apkovl-signature v1\nkey-name: admin.pub\n"));
        let keys = t.path().join("keys");
        assert_eq!(
            verify(&data, Some(sig.as_bytes()), &keys),
            Verification::Verified {
                key: "admin.pub".into()
            }
        );
        assert_eq!(verify(&data, None, &keys), Verification::Unsigned);
        let mut tampered = data.clone();
        tampered[0] ^= 1;
        assert!(
            matches!(verify(&tampered, Some(sig.as_bytes()), &keys), Verification::Bad { reason } if reason.contains("SHA-512"))
        );
    }

    #[test]
    fn rejects_forged_and_foreign() {
        let (t, k) = setup();
        let keys = t.path().join("keys");
        let data = b"x".to_vec();
        let other = PrivateKey::generate_ed25519();
        let foreign = sign(&data, &other, "other.pub").unwrap();
        assert!(
            matches!(verify(&data, Some(foreign.as_bytes()), &keys), Verification::Bad { reason } if reason.contains("untrusted key"))
        );
        // Claim the trusted key's id with another key's signature.
        let good = sign(&data, &k, "admin.pub").unwrap();
        let kid_line = good.lines().find(|l| l.starts_with("key-id")).unwrap();
        let forged: String = foreign.lines().map(|l| if l.starts_with("key-id") { kid_line.to_string() } else { l.to_string() } + "\n").collect();
        assert!(
            matches!(verify(&data, Some(forged.as_bytes()), &keys), Verification::Bad { reason } if reason.contains("does not verify"))
        );
        assert!(matches!(
            verify(&data, Some(b"garbage"), &keys),
            Verification::Bad { .. }
        ));
        // Concatenated blocks: any good one is enough; order does not matter.
        let both = format!("{foreign}{good}");
        assert_eq!(
            verify(&data, Some(both.as_bytes()), &keys),
            Verification::Verified {
                key: "admin.pub".into()
            }
        );
        let other_bytes = sign(b"previous overlay", &k, "admin.pub").unwrap();
        let both = format!("{good}{other_bytes}");
        assert_eq!(
            verify(&data, Some(both.as_bytes()), &keys),
            Verification::Verified {
                key: "admin.pub".into()
            }
        );
        assert_eq!(
            verify(b"previous overlay", Some(both.as_bytes()), &keys),
            Verification::Verified {
                key: "admin.pub".into()
            }
        );
        assert!(
            matches!(verify(b"third", Some(both.as_bytes()), &keys), Verification::Bad { reason } if reason.contains("SHA-512"))
        );
        let rsa = PrivateKey::generate_rsa(1024).unwrap();
        assert!(sign(&data, &rsa, "r.pub").is_err());
    }
}
