//! Detached ed25519 signatures for overlays: `NAME.sig` next to `NAME` (overlays/README.md,
//! "Signatures").
//!
//! The `.sig` file is small UTF-8 text: one or more blocks, each a format line followed by one
//! `key: value` per line. Round 2 (what `lbu` writes) signs a [`Statement`]:
//! ```text
//! apkovl-signature v2
//! key-name: admin.pub
//! key-id: <hex SHA-256 of the raw 32-byte ed25519 public key>
//! sha256: <hex SHA-256 of the overlay file's bytes>
//! host: fw1
//! time: 1767225600
//! generation: 42
//! signature: <base64 ed25519 signature>
//! ```
//! The signature covers `b"apkovl-statement-v2\0"` followed by the statement's fields
//! (`Statement::message`): the bytes as stored (so an encrypted overlay is verified before it is
//! decrypted), the host, the time and the generation. Every field must appear exactly once.
//!
//! Round 1 (`apkovl-signature v1`, read for compatibility, written only by [`sign`]) has
//! `key-name`, `key-id`, `sha512` and `signature` over `b"apkovl-ed25519-v1\0" || SHA-512(bytes)`;
//! it binds no host and no generation, so the boot accepts it only under the image's
//! `apkovl_legacy_sig` switch ([`crate::check_binding`]).
//!
//! `key-name` is a hint for humans; the key is found by `key-id` among the trusted PEM public
//! keys of a directory (e.g. the initramfs `/etc/apkovl/keys/`) and checked with
//! `verify_strict` (no weak keys, no malleable signatures). A file may hold several blocks; it
//! verifies when one of them verifies for these bytes. `lbu` uses this to keep a valid signature
//! at every instant of a commit: the new block plus the old one go in first, then the new
//! overlay, then the new block alone. When several blocks verify, the statement with the
//! highest generation wins, then any statement, then a round-1 block.

use crate::statement::{check_host, Statement};
use crate::Error;
use apk::trust::{PrivateKey, PublicKey};
use base64::Engine;
use sha2::{Digest, Sha256, Sha512};
use std::path::Path;

const FORMAT_V1: &str = "apkovl-signature v1";
const FORMAT_V2: &str = "apkovl-signature v2";
/// Every block starts with a line beginning with this.
const FORMAT_PREFIX: &str = "apkovl-signature v";
const DOMAIN_V1: &[u8] = b"apkovl-ed25519-v1\0";

/// Largest `.sig` file read (a few blocks are a few hundred bytes each).
pub const MAX_SIGNATURE_BYTES: usize = 64 * 1024;

/// Largest key file considered in a keys directory.
const MAX_KEY_BYTES: u64 = 64 * 1024;

/// Outcome of [`verify`], for the caller's policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// A trusted key (file name in the keys directory) signed exactly these bytes.
    Verified {
        /// File name of the trusted key.
        key: String,
        /// What the signature asserts about the bytes; `None` for a round-1 signature (bytes
        /// only: no host, no generation).
        statement: Option<Statement>,
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

fn ed25519<'k>(
    key: &'k PrivateKey,
    key_name: &str,
) -> Result<&'k ed25519_dalek::SigningKey, Error> {
    match key {
        PrivateKey::Ed25519(k) => Ok(k),
        _ => Err(Error::SignatureFormat(format!(
            "{key_name}: overlay signing keys must be ed25519"
        ))),
    }
}

/// `key_name` without control characters (it becomes one line of the file).
fn clean_key_name(key_name: &str) -> String {
    key_name.chars().filter(|c| !c.is_control()).collect()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The round-1 `.sig` text (bytes only) for `overlay`, signed with an ed25519 `key` whose public
/// half is published as `key_name`. Kept for the compatibility tests of images built with
/// `apkovl_legacy_sig`; `lbu` writes statements ([`sign_statement`]).
pub fn sign(overlay: &[u8], key: &PrivateKey, key_name: &str) -> Result<String, Error> {
    use ed25519_dalek::Signer;
    let k = ed25519(key, key_name)?;
    let digest = Sha512::digest(overlay);
    let mut msg = DOMAIN_V1.to_vec();
    msg.extend_from_slice(&digest);
    Ok(format!(
        "{FORMAT_V1}\nkey-name: {}\nkey-id: {}\nsha512: {}\nsignature: {}\n",
        clean_key_name(key_name),
        key_id(&k.verifying_key()),
        hex::encode(digest),
        b64(&k.sign(&msg).to_bytes())
    ))
}

/// The round-2 `.sig` text for `overlay` (the file's bytes as stored): a signed statement that
/// these bytes are the overlay of `host` committed at `time` (Unix seconds) as `generation`.
pub fn sign_statement(
    overlay: &[u8],
    host: &str,
    time: u64,
    generation: u64,
    key: &PrivateKey,
    key_name: &str,
) -> Result<String, Error> {
    use ed25519_dalek::Signer;
    let k = ed25519(key, key_name)?;
    let s = Statement::new(overlay, host, time, generation)?;
    Ok(format!(
        "{FORMAT_V2}\nkey-name: {}\nkey-id: {}\nsha256: {}\nhost: {}\ntime: {}\ngeneration: {}\nsignature: {}\n",
        clean_key_name(key_name),
        key_id(&k.verifying_key()),
        hex::encode(s.sha256),
        s.host,
        s.time,
        s.generation,
        b64(&k.sign(&s.message()).to_bytes())
    ))
}

/// One parsed block.
enum Block {
    V1 {
        key_name: String,
        key_id: String,
        sha512: String,
        signature: Vec<u8>,
    },
    V2 {
        key_name: String,
        key_id: String,
        statement: Statement,
        signature: Vec<u8>,
    },
}

/// The `key: value` lines of a block after its format line.
fn fields(body: &str) -> Result<Vec<(&str, &str)>, String> {
    let mut out = Vec::new();
    for l in body.lines() {
        if l.is_empty() {
            continue;
        }
        let Some((k, v)) = l.split_once(": ") else {
            return Err(format!("malformed line {l:?}"));
        };
        out.push((k, v));
    }
    Ok(out)
}

fn base64_signature(v: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(v)
        .map_err(|_| "signature is not base64".to_string())
}

fn parse_v1(body: &str) -> Result<Block, String> {
    let (mut key_name, mut kid, mut sha, mut sig) = (String::new(), None, None, None);
    for (k, v) in fields(body)? {
        match k {
            "key-name" => key_name = v.to_string(),
            "key-id" => kid = Some(v.to_ascii_lowercase()),
            "sha512" => sha = Some(v.to_ascii_lowercase()),
            "signature" => sig = Some(base64_signature(v)?),
            _ => {}
        }
    }
    Ok(Block::V1 {
        key_name,
        key_id: kid.ok_or("missing key-id")?,
        sha512: sha.ok_or("missing sha512")?,
        signature: sig.ok_or("missing signature")?,
    })
}

fn parse_v2(body: &str) -> Result<Block, String> {
    const KEYS: [&str; 7] = [
        "key-name",
        "key-id",
        "sha256",
        "host",
        "time",
        "generation",
        "signature",
    ];
    let mut values: [Option<&str>; 7] = [None; 7];
    for (k, v) in fields(body)? {
        let i = KEYS
            .iter()
            .position(|&n| n == k)
            .ok_or_else(|| format!("unknown field {k:?}"))?;
        if values[i].replace(v).is_some() {
            return Err(format!("field {k:?} appears twice"));
        }
    }
    let get = |i: usize| values[i].ok_or_else(|| format!("missing {}", KEYS[i]));
    let number = |i: usize| {
        let v = get(i)?;
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{} is not a decimal number", KEYS[i]));
        }
        v.parse::<u64>()
            .map_err(|_| format!("{} is too large", KEYS[i]))
    };
    let mut sha256 = [0u8; 32];
    hex::decode_to_slice(get(2)?, &mut sha256)
        .map_err(|_| "sha256 is not 64 hex digits".to_string())?;
    let host = get(3)?;
    check_host(host).map_err(|why| format!("host {host:?}: {why}"))?;
    Ok(Block::V2 {
        key_name: get(0)?.to_string(),
        key_id: get(1)?.to_ascii_lowercase(),
        statement: Statement {
            sha256,
            host: host.to_string(),
            time: number(4)?,
            generation: number(5)?,
        },
        signature: base64_signature(get(6)?)?,
    })
}

fn parse(block: &str) -> Result<Block, String> {
    let (first, body) = block.split_once('\n').unwrap_or((block, ""));
    match first {
        FORMAT_V2 => parse_v2(body),
        FORMAT_V1 => parse_v1(body),
        l if l.starts_with(FORMAT_PREFIX) => Err(format!("unsupported signature format `{l}`")),
        _ => Err(format!(
            "not an overlay signature (first line is not `{FORMAT_V2}`)"
        )),
    }
}

/// The blocks of a `.sig` file, each starting with a format line.
fn blocks(text: &str) -> Vec<&str> {
    let mut starts: Vec<usize> = text
        .match_indices(FORMAT_PREFIX)
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
fn trusted_keys(dir: &Path) -> Vec<(String, PublicKey)> {
    let mut out: Vec<(String, PublicKey)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pem = apk::limits::read(&e.path(), MAX_KEY_BYTES).ok()?;
            let pem = String::from_utf8(pem).ok()?;
            let k = PublicKey::from_pem(&pem)?;
            Some((e.file_name().to_string_lossy().into_owned(), k))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The overlay's digests, computed once for all blocks.
struct Digests {
    sha256: [u8; 32],
    sha512: [u8; 64],
    sha512_hex: String,
}

/// Why a block did not verify, and whether it was about these bytes (such a reason explains
/// more than one about other bytes).
type BlockFailure = (String, bool);

/// One block: the trusted key's file name and the statement, or why not.
fn verify_block(
    block: &str,
    d: &Digests,
    keys: &[(&str, &ed25519_dalek::VerifyingKey)],
    source: &str,
) -> Result<(String, Option<Statement>), BlockFailure> {
    let (key_name, kid, msg, signature, statement) =
        match parse(block).map_err(|why| (why, false))? {
            Block::V1 {
                key_name,
                key_id,
                sha512,
                signature,
            } => {
                if sha512 != d.sha512_hex {
                    return Err((
                        "overlay does not match its signature (SHA-512 differs)".into(),
                        false,
                    ));
                }
                let mut msg = DOMAIN_V1.to_vec();
                msg.extend_from_slice(&d.sha512);
                (key_name, key_id, msg, signature, None)
            }
            Block::V2 {
                key_name,
                key_id,
                statement,
                signature,
            } => {
                if statement.sha256 != d.sha256 {
                    return Err((
                        "overlay does not match its signature (SHA-256 differs)".into(),
                        false,
                    ));
                }
                (
                    key_name,
                    key_id,
                    statement.message(),
                    signature,
                    Some(statement),
                )
            }
        };
    let signature = ed25519_dalek::Signature::from_slice(&signature)
        .map_err(|_| ("signature has the wrong length".to_string(), true))?;
    for (file, k) in keys {
        if key_id(k) != kid {
            continue;
        }
        return match k.verify_strict(&msg, &signature) {
            Ok(()) => Ok((file.to_string(), statement)),
            Err(_) => Err((
                format!("signature does not verify with trusted key {file}"),
                true,
            )),
        };
    }
    Err((
        format!(
            "signed by an untrusted key ({key_name} key-id {}) not in {source}",
            kid.chars().take(16).collect::<String>(),
        ),
        true,
    ))
}

/// Check `sig` (the `.sig` file's bytes, `None` when there is none) over `overlay` against the
/// ed25519 public keys (PEM) in `keys_dir`.
pub fn verify(overlay: &[u8], sig: Option<&[u8]>, keys_dir: &Path) -> Verification {
    let keys = trusted_keys(keys_dir);
    verify_with(overlay, sig, &keys, &keys_dir.display().to_string())
}

/// [`verify`] against the given keys (named as the `Verified` result names them; RSA keys are
/// ignored); `source` says where they come from in messages ("not in SOURCE").
pub fn verify_with(
    overlay: &[u8],
    sig: Option<&[u8]>,
    keys: &[(String, PublicKey)],
    source: &str,
) -> Verification {
    let keys: Vec<(&str, &ed25519_dalek::VerifyingKey)> = keys
        .iter()
        .filter_map(|(name, k)| match k {
            PublicKey::Ed25519(k) => Some((name.as_str(), k)),
            PublicKey::Rsa(_) => None,
        })
        .collect();
    let Some(sig) = sig else {
        return Verification::Unsigned;
    };
    if sig.len() > MAX_SIGNATURE_BYTES {
        return Verification::Bad {
            reason: format!("signature file larger than {MAX_SIGNATURE_BYTES} bytes"),
        };
    }
    let Ok(text) = std::str::from_utf8(sig) else {
        return Verification::Bad {
            reason: "signature file is not text".into(),
        };
    };
    let sha512: [u8; 64] = Sha512::digest(overlay).into();
    let digests = Digests {
        sha256: Sha256::digest(overlay).into(),
        sha512,
        sha512_hex: hex::encode(sha512),
    };
    let mut best: Option<(String, Option<Statement>)> = None;
    let mut reason = None;
    for block in blocks(text) {
        match verify_block(block, &digests, &keys, source) {
            Ok(found) => {
                let rank = |s: &Option<Statement>| s.as_ref().map(|s| s.generation);
                if best.as_ref().is_none_or(|b| rank(&found.1) > rank(&b.1)) {
                    best = Some(found);
                }
            }
            Err((why, for_these_bytes)) => {
                if reason.is_none() || for_these_bytes {
                    reason = Some(why);
                }
            }
        }
    }
    match best {
        Some((key, statement)) => Verification::Verified { key, statement },
        None => Verification::Bad {
            reason: reason.unwrap_or_else(|| "empty signature file".into()),
        },
    }
}

/// The statements of a `.sig` file that `key` really signed, whatever overlay they are about (a
/// statement's signature covers the statement alone, which names the overlay's SHA-256): `lbu`
/// picks the next generation above every one on the medium, and a `.sig` anyone could plant
/// there must not choose it (a claimed generation of `u64::MAX` would end every later commit).
pub fn signed_statements(sig: &[u8], key: &PublicKey) -> Vec<Statement> {
    let PublicKey::Ed25519(key) = key else {
        return Vec::new();
    };
    let Ok(text) = std::str::from_utf8(&sig[..sig.len().min(MAX_SIGNATURE_BYTES)]) else {
        return Vec::new();
    };
    blocks(text)
        .into_iter()
        .filter_map(|b| match parse(b) {
            Ok(Block::V2 {
                key_id: kid,
                statement,
                signature,
                ..
            }) if kid == key_id(key) => {
                let signature = ed25519_dalek::Signature::from_slice(&signature).ok()?;
                key.verify_strict(&statement.message(), &signature)
                    .is_ok()
                    .then_some(statement)
            }
            _ => None,
        })
        .collect()
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

    fn legacy(key: &str) -> Verification {
        Verification::Verified {
            key: key.into(),
            statement: None,
        }
    }

    fn stated(key: &str, data: &[u8], host: &str, time: u64, generation: u64) -> Verification {
        Verification::Verified {
            key: key.into(),
            statement: Some(Statement::new(data, host, time, generation).unwrap()),
        }
    }

    #[test]
    fn statements_sign_and_verify() {
        let (t, k) = setup();
        let keys = t.path().join("keys");
        let data = b"overlay bytes".to_vec();
        let sig = sign_statement(&data, "fw1", 1_767_225_600, 42, &k, "admin.pub").unwrap();
        assert!(
            sig.starts_with("apkovl-signature v2\nkey-name: admin.pub\nkey-id: "),
            "{sig}"
        );
        assert!(sig.contains("\nhost: fw1\ntime: 1767225600\ngeneration: 42\nsignature: "));
        assert_eq!(
            verify(&data, Some(sig.as_bytes()), &keys),
            stated("admin.pub", &data, "fw1", 1_767_225_600, 42)
        );
        assert_eq!(verify(&data, None, &keys), Verification::Unsigned);
        let mut tampered = data.clone();
        tampered[0] ^= 1;
        assert!(
            matches!(verify(&tampered, Some(sig.as_bytes()), &keys), Verification::Bad { reason } if reason.contains("SHA-256"))
        );
        // Editing any signed field of the statement breaks the signature.
        for (from, to) in [
            ("host: fw1", "host: fw2"),
            ("generation: 42", "generation: 43"),
            ("time: 1767225600", "time: 1767225601"),
        ] {
            let edited = sig.replace(from, to);
            assert!(
                matches!(verify(&data, Some(edited.as_bytes()), &keys), Verification::Bad { reason } if reason.contains("does not verify")),
                "{to}"
            );
        }
        // Malformed statements are refused with a reason.
        for (edited, why) in [
            (sig.replace("host: fw1\n", ""), "missing host"),
            (
                sig.replace("host: fw1\n", "host: fw1\nhost: fw1\n"),
                "appears twice",
            ),
            (
                sig.replace("generation: 42", "generation: -1"),
                "not a decimal",
            ),
            (sig.replace("host: fw1", "host: a/b"), "file name"),
            (
                sig.replace("host: fw1\n", "host: fw1\nnote: x\n"),
                "unknown field",
            ),
        ] {
            let v = verify(&data, Some(edited.as_bytes()), &keys);
            assert!(
                matches!(&v, Verification::Bad { reason } if reason.contains(why)),
                "{why}: {v:?}"
            );
        }
        assert!(sign_statement(&data, "a b", 0, 1, &k, "admin.pub").is_err());
        let rsa = PrivateKey::generate_rsa(1024).unwrap();
        assert!(sign_statement(&data, "fw1", 0, 1, &rsa, "r.pub").is_err());
    }

    #[test]
    fn round_one_signatures_still_verify_without_a_statement() {
        let (t, k) = setup();
        let keys = t.path().join("keys");
        let data = b"overlay bytes".to_vec();
        let sig = sign(&data, &k, "admin.pub").unwrap();
        assert!(sig.starts_with("apkovl-signature v1\nkey-name: admin.pub\n"));
        assert_eq!(
            verify(&data, Some(sig.as_bytes()), &keys),
            legacy("admin.pub")
        );
        let mut tampered = data.clone();
        tampered[0] ^= 1;
        assert!(
            matches!(verify(&tampered, Some(sig.as_bytes()), &keys), Verification::Bad { reason } if reason.contains("SHA-512"))
        );
        // A round-1 block next to a statement for the same bytes: the statement wins.
        let v2 = sign_statement(&data, "fw1", 5, 3, &k, "admin.pub").unwrap();
        assert_eq!(
            verify(&data, Some(format!("{sig}{v2}").as_bytes()), &keys),
            stated("admin.pub", &data, "fw1", 5, 3)
        );
        assert!(matches!(
            verify(&data, Some(b"apkovl-signature v9\nx: y\n"), &keys),
            Verification::Bad { reason } if reason.contains("unsupported signature format")
        ));
    }

    #[test]
    fn rejects_forged_foreign_and_oversized() {
        let (t, k) = setup();
        let keys = t.path().join("keys");
        let data = b"x".to_vec();
        let other = PrivateKey::generate_ed25519();
        let foreign = sign_statement(&data, "h", 1, 1, &other, "other.pub").unwrap();
        assert!(
            matches!(verify(&data, Some(foreign.as_bytes()), &keys), Verification::Bad { reason } if reason.contains("untrusted key"))
        );
        // Claim the trusted key's id with another key's signature.
        let good = sign_statement(&data, "h", 1, 1, &k, "admin.pub").unwrap();
        let kid_line = good.lines().find(|l| l.starts_with("key-id")).unwrap();
        let forged: String = foreign
            .lines()
            .map(|l| {
                let line = if l.starts_with("key-id") { kid_line } else { l };
                format!("{line}\n")
            })
            .collect();
        assert!(
            matches!(verify(&data, Some(forged.as_bytes()), &keys), Verification::Bad { reason } if reason.contains("does not verify"))
        );
        assert!(matches!(
            verify(&data, Some(b"garbage"), &keys),
            Verification::Bad { .. }
        ));
        let huge = vec![b'a'; MAX_SIGNATURE_BYTES + 1];
        assert!(matches!(
            verify(&data, Some(&huge), &keys),
            Verification::Bad { reason } if reason.contains("larger than")
        ));
        // Concatenated blocks: any good one is enough; order does not matter.
        let both = format!("{foreign}{good}");
        assert_eq!(
            verify(&data, Some(both.as_bytes()), &keys),
            stated("admin.pub", &data, "h", 1, 1)
        );
        let previous = sign_statement(b"previous overlay", "h", 0, 0, &k, "admin.pub").unwrap();
        let both = format!("{good}{previous}");
        assert_eq!(
            verify(&data, Some(both.as_bytes()), &keys),
            stated("admin.pub", &data, "h", 1, 1)
        );
        assert_eq!(
            verify(b"previous overlay", Some(both.as_bytes()), &keys),
            stated("admin.pub", b"previous overlay", "h", 0, 0)
        );
        assert!(
            matches!(verify(b"third", Some(both.as_bytes()), &keys), Verification::Bad { reason } if reason.contains("SHA-256"))
        );
        // Two statements for the same bytes: the newest generation wins.
        let newer = sign_statement(&data, "h", 9, 7, &k, "admin.pub").unwrap();
        assert_eq!(
            verify(&data, Some(format!("{newer}{good}").as_bytes()), &keys),
            stated("admin.pub", &data, "h", 9, 7)
        );
        let signed = signed_statements(format!("{good}{foreign}{newer}").as_bytes(), &k.public());
        assert_eq!(
            signed.iter().map(|s| s.generation).collect::<Vec<_>>(),
            vec![1, 7],
            "the foreign key's statement is not counted"
        );
        // A statement whose numbers were edited after signing is not counted either.
        let forged = newer.replace("generation: 7", "generation: 18446744073709551615");
        assert_ne!(forged, newer);
        assert!(signed_statements(forged.as_bytes(), &k.public()).is_empty());
        // One key given directly (what lbu checks a backup with).
        assert_eq!(
            verify_with(
                &data,
                Some(good.as_bytes()),
                &[("mine".into(), k.public())],
                "SIGNING_KEY"
            ),
            stated("mine", &data, "h", 1, 1)
        );
        assert!(matches!(
            verify_with(&data, Some(foreign.as_bytes()), &[("mine".into(), k.public())], "SIGNING_KEY"),
            Verification::Bad { reason } if reason.ends_with("not in SIGNING_KEY")
        ));
    }
}
