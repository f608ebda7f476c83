//! Encrypted overlays (overlays/README.md, "Encryption").
//!
//! - Legacy (read for compatibility, write only on explicit request): Alpine's
//!   `openssl enc -<cipher> -salt` files: `Salted__`, 8 salt bytes, then CBC with
//!   PKCS#7 padding under a key and IV from one-iteration `EVP_BytesToKey`, SHA-256 (OpenSSL
//!   1.1.0 and later) with an MD5 fallback (older OpenSSL, LibreSSL). There is no MAC: a wrong password
//!   shows up as bad padding or, rarely, as garbage, so the result must also start like gzip.
//! - `age` (what the project writes): scrypt passphrase or X25519 recipients; authenticated, so
//!   a wrong passphrase and a flipped byte are both clear errors.
//!
//! Everything works on in-memory bytes; no process is spawned (the init links this). Input is
//! bounded by [`MAX_OVERLAY_BYTES`] and the scrypt work factor of a passphrase file by
//! [`MAX_SCRYPT_WORK_FACTOR`], so a hostile file gives an error, not an out-of-memory abort of
//! PID 1. Keys, IVs and passphrase copies made here are zeroed when dropped; the caller keeps its
//! own passphrase in a zeroizing buffer (`zeroize::Zeroizing<String>`).

use crate::kind::OverlayKind;
use crate::{Error, MAX_OVERLAY_BYTES, MAX_SCRYPT_WORK_FACTOR};
use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use age::secrecy::SecretString;
use md5::Md5;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use zeroize::Zeroizing;

/// `openssl enc` ciphers we can read and write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    /// `aes-128-cbc`
    Aes128Cbc,
    /// `aes-192-cbc`
    Aes192Cbc,
    /// `aes-256-cbc` (Alpine's `DEFAULT_CIPHER`)
    Aes256Cbc,
}

impl Cipher {
    /// From the `openssl enc` name (the file suffix).
    pub fn from_name(name: &str) -> Option<Cipher> {
        match name {
            "aes-128-cbc" | "aes128" => Some(Cipher::Aes128Cbc),
            "aes-192-cbc" | "aes192" => Some(Cipher::Aes192Cbc),
            "aes-256-cbc" | "aes256" => Some(Cipher::Aes256Cbc),
            _ => None,
        }
    }

    /// The `openssl enc` name.
    pub fn name(self) -> &'static str {
        match self {
            Cipher::Aes128Cbc => "aes-128-cbc",
            Cipher::Aes192Cbc => "aes-192-cbc",
            Cipher::Aes256Cbc => "aes-256-cbc",
        }
    }

    fn key_len(self) -> usize {
        match self {
            Cipher::Aes128Cbc => 16,
            Cipher::Aes192Cbc => 24,
            Cipher::Aes256Cbc => 32,
        }
    }
}

/// The secret that opens an encrypted overlay. It borrows the caller's buffer (which the caller
/// keeps in a `zeroize::Zeroizing<String>`); every copy made from it here is zeroed on drop.
#[derive(Clone, Copy)]
pub enum Secret<'a> {
    /// A password (legacy files and age scrypt files).
    Passphrase(&'a str),
    /// The text of an age identity file (`AGE-SECRET-KEY-1...` lines).
    AgeIdentity(&'a str),
}

impl std::fmt::Debug for Secret<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret itself (it could end up in a log).
        f.write_str(match self {
            Secret::Passphrase(_) => "Secret::Passphrase(..)",
            Secret::AgeIdentity(_) => "Secret::AgeIdentity(..)",
        })
    }
}

/// How to encrypt with age.
#[derive(Clone)]
pub enum AgeKey<'a> {
    /// scrypt passphrase; `work_factor` is log2(N), at most [`MAX_SCRYPT_WORK_FACTOR`] (the
    /// largest the init accepts); `None` takes that maximum.
    Passphrase {
        /// The passphrase.
        passphrase: &'a str,
        /// log2 of scrypt's N.
        work_factor: Option<u8>,
    },
    /// X25519 recipients (`age1...`): the box needs no secret to commit.
    Recipients(&'a [String]),
}

const MAGIC: &[u8] = b"Salted__";

/// A key and an IV, zeroed when dropped.
type KeyIv = (Zeroizing<Vec<u8>>, Zeroizing<Vec<u8>>);

/// A key derivation: (password, salt, key length) -> (key, IV).
type KeyDerivation = fn(&[u8], &[u8], usize) -> KeyIv;

/// `EVP_BytesToKey(md, salt, password, count = 1)`, key then IV.
fn bytes_to_key<D: Digest>(password: &[u8], salt: &[u8], key_len: usize) -> KeyIv {
    let mut out = Zeroizing::new(Vec::with_capacity(key_len + 16 + 64));
    let mut prev = Zeroizing::new(Vec::new());
    while out.len() < key_len + 16 {
        let mut h = D::new();
        h.update(prev.as_slice());
        h.update(password);
        h.update(salt);
        *prev = h.finalize().to_vec();
        out.extend_from_slice(&prev);
    }
    let iv = Zeroizing::new(out[key_len..key_len + 16].to_vec());
    out.truncate(key_len);
    (out, iv)
}

fn check_size(data: &[u8]) -> Result<(), Error> {
    if data.len() as u64 > MAX_OVERLAY_BYTES {
        return Err(Error::OverlayTooLarge {
            size: data.len() as u64,
        });
    }
    Ok(())
}

fn cbc_decrypt(cipher: Cipher, key: &[u8], iv: &[u8], ct: &[u8]) -> Option<Vec<u8>> {
    match cipher {
        Cipher::Aes128Cbc => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_vec_mut::<Pkcs7>(ct)
            .ok(),
        Cipher::Aes192Cbc => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_vec_mut::<Pkcs7>(ct)
            .ok(),
        Cipher::Aes256Cbc => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_vec_mut::<Pkcs7>(ct)
            .ok(),
    }
}

fn cbc_encrypt(cipher: Cipher, key: &[u8], iv: &[u8], pt: &[u8]) -> Result<Vec<u8>, Error> {
    let e = |_| Error::Encrypt("bad key length".into());
    Ok(match cipher {
        Cipher::Aes128Cbc => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(e)?
            .encrypt_padded_vec_mut::<Pkcs7>(pt),
        Cipher::Aes192Cbc => cbc::Encryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map_err(e)?
            .encrypt_padded_vec_mut::<Pkcs7>(pt),
        Cipher::Aes256Cbc => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(e)?
            .encrypt_padded_vec_mut::<Pkcs7>(pt),
    })
}

/// Decrypt an `openssl enc` file (SHA-256 key derivation first, then MD5).
pub fn decrypt_legacy(data: &[u8], cipher: Cipher, password: &str) -> Result<Vec<u8>, Error> {
    check_size(data)?;
    if data.len() < 16 || &data[..8] != MAGIC {
        return Err(Error::Decrypt(format!(
            "not an openssl {} file (no Salted__ header)",
            cipher.name()
        )));
    }
    let (salt, ct) = (&data[8..16], &data[16..]);
    if ct.is_empty() || ct.len() % 16 != 0 {
        return Err(Error::Decrypt("truncated ciphertext".into()));
    }
    let attempts: [KeyDerivation; 2] = [bytes_to_key::<Sha256>, bytes_to_key::<Md5>];
    for derive in attempts {
        let (key, iv) = derive(password.as_bytes(), salt, cipher.key_len());
        if let Some(pt) = cbc_decrypt(cipher, &key, &iv, ct) {
            // Without a MAC, 1 in 256 wrong keys still gives valid padding: require gzip.
            if pt.starts_with(&[0x1f, 0x8b]) {
                return Ok(pt);
            }
        }
    }
    Err(Error::Decrypt(
        "bad decrypt (wrong password or corrupted file)".into(),
    ))
}

/// Encrypt like `openssl enc -<cipher> -salt -md sha256` (for interoperability only).
pub fn encrypt_legacy(data: &[u8], cipher: Cipher, password: &str) -> Result<Vec<u8>, Error> {
    if password.is_empty() {
        return Err(Error::Encrypt("empty passphrase".into()));
    }
    let mut salt = [0u8; 8];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut salt);
    let (key, iv) = bytes_to_key::<Sha256>(password.as_bytes(), &salt, cipher.key_len());
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&salt);
    out.extend(cbc_encrypt(cipher, &key, &iv, data)?);
    Ok(out)
}

fn age_error(e: age::DecryptError) -> Error {
    Error::Decrypt(match e {
        // Raised while unwrapping the file key: the passphrase (or a header stanza) is wrong.
        age::DecryptError::DecryptionFailed | age::DecryptError::KeyDecryptionFailed => {
            "wrong passphrase".to_string()
        }
        age::DecryptError::ExcessiveWork { required, .. } => format!(
            "scrypt work factor 2^{required} is above the limit of 2^{MAX_SCRYPT_WORK_FACTOR}"
        ),
        age::DecryptError::InvalidHeader => "not an age file (invalid header)".into(),
        age::DecryptError::InvalidMac => "age header was modified (bad MAC)".into(),
        age::DecryptError::Io(e) => e.to_string(),
        age::DecryptError::NoMatchingKeys => "no matching key (wrong identity)".into(),
        _ => "age decryption failed".into(),
    })
}

/// Whether an age file is encrypted with a passphrase (scrypt) rather than to recipient keys:
/// which of [`Secret::Passphrase`] and [`Secret::AgeIdentity`] can open it.
pub fn age_is_passphrase(data: &[u8]) -> Result<bool, Error> {
    Ok(age::Decryptor::new_buffered(data)
        .map_err(age_error)?
        .is_scrypt())
}

/// Decrypt an age file (at most [`MAX_OVERLAY_BYTES`]) with a passphrase (scrypt work factor
/// at most [`MAX_SCRYPT_WORK_FACTOR`]) or an identity file's text (`AGE-SECRET-KEY-1...` lines,
/// `#` comments as `age-keygen` writes them).
pub fn decrypt_age(data: &[u8], secret: &Secret<'_>) -> Result<Vec<u8>, Error> {
    check_size(data)?;
    let dec = age::Decryptor::new_buffered(data).map_err(age_error)?;
    let reader = match secret {
        Secret::Passphrase(p) => {
            if !dec.is_scrypt() {
                return Err(Error::Decrypt(
                    "file is encrypted to a key, not a passphrase".into(),
                ));
            }
            let mut id = age::scrypt::Identity::new(SecretString::from(p.to_string()));
            id.set_max_work_factor(MAX_SCRYPT_WORK_FACTOR);
            dec.decrypt(std::iter::once(&id as &dyn age::Identity))
                .map_err(age_error)?
        }
        Secret::AgeIdentity(_) if dec.is_scrypt() => {
            return Err(Error::Decrypt(
                "file is encrypted with a passphrase, not to a key".into(),
            ));
        }
        Secret::AgeIdentity(text) => {
            let ids = age::IdentityFile::from_buffer(text.as_bytes())
                .map_err(|e| Error::Decrypt(format!("bad identity: {e}")))?
                .into_identities()
                .map_err(age_error)?;
            dec.decrypt(ids.iter().map(|i| i.as_ref() as &dyn age::Identity))
                .map_err(age_error)?
        }
    };
    // The plaintext is never longer than the ciphertext.
    let mut out = Vec::with_capacity(data.len());
    reader
        .take(MAX_OVERLAY_BYTES)
        .read_to_end(&mut out)
        .map_err(|_| Error::Decrypt("ciphertext was modified or truncated".into()))?;
    Ok(out)
}

/// Encrypt with age.
pub fn encrypt_age(data: &[u8], key: &AgeKey<'_>) -> Result<Vec<u8>, Error> {
    let enc = match key {
        AgeKey::Passphrase {
            passphrase,
            work_factor,
        } => {
            if passphrase.is_empty() {
                return Err(Error::Encrypt("empty passphrase".into()));
            }
            let n = work_factor.unwrap_or(MAX_SCRYPT_WORK_FACTOR);
            if !(1..=MAX_SCRYPT_WORK_FACTOR).contains(&n) {
                return Err(Error::Encrypt(format!(
                    "scrypt work factor 2^{n} is outside 2^1..2^{MAX_SCRYPT_WORK_FACTOR} (the init refuses more)"
                )));
            }
            let mut r = age::scrypt::Recipient::new(SecretString::from(passphrase.to_string()));
            r.set_work_factor(n);
            age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient))
                .map_err(|e| Error::Encrypt(format!("{e:?}")))?
        }
        AgeKey::Recipients(list) => {
            let mut rs = Vec::new();
            for s in list.iter() {
                let r: age::x25519::Recipient = s
                    .trim()
                    .parse()
                    .map_err(|e| Error::Encrypt(format!("bad recipient {s:?}: {e}")))?;
                rs.push(r);
            }
            if rs.is_empty() {
                return Err(Error::Encrypt("no recipients".into()));
            }
            age::Encryptor::with_recipients(rs.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| Error::Encrypt(format!("{e:?}")))?
        }
    };
    let mut out = Vec::new();
    let mut w = enc
        .wrap_output(&mut out)
        .map_err(|e| Error::Encrypt(e.to_string()))?;
    w.write_all(data)
        .map_err(|e| Error::Encrypt(e.to_string()))?;
    w.finish().map_err(|e| Error::Encrypt(e.to_string()))?;
    Ok(out)
}

/// The gzip bytes of an overlay of the given kind (plain overlays are returned as they are).
/// Input is bounded by [`MAX_OVERLAY_BYTES`].
pub fn decrypt(data: &[u8], kind: &OverlayKind, secret: &Secret<'_>) -> Result<Vec<u8>, Error> {
    match kind {
        OverlayKind::Plain => {
            check_size(data)?;
            Ok(data.to_vec())
        }
        OverlayKind::Age => decrypt_age(data, secret),
        OverlayKind::Legacy(c) => match secret {
            Secret::Passphrase(p) => decrypt_legacy(data, *c, p),
            Secret::AgeIdentity(_) => Err(Error::Decrypt(format!(
                "{} files need a password",
                c.name()
            ))),
        },
        OverlayKind::Unsupported(name) => Err(Error::UnsupportedCipher(name.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn legacy_roundtrip_and_wrong_password() {
        let data = gz(b"hello");
        for c in [Cipher::Aes128Cbc, Cipher::Aes192Cbc, Cipher::Aes256Cbc] {
            let enc = encrypt_legacy(&data, c, "pw").unwrap();
            assert!(enc.starts_with(b"Salted__"));
            assert_eq!(decrypt_legacy(&enc, c, "pw").unwrap(), data);
            assert!(matches!(
                decrypt_legacy(&enc, c, "wrong"),
                Err(Error::Decrypt(_))
            ));
            assert!(matches!(
                decrypt_legacy(&enc[..enc.len() - 3], c, "pw"),
                Err(Error::Decrypt(_))
            ));
        }
    }

    #[test]
    fn age_passphrase_and_recipient() {
        let data = gz(b"secret config");
        let enc = encrypt_age(
            &data,
            &AgeKey::Passphrase {
                passphrase: "pw",
                work_factor: Some(10),
            },
        )
        .unwrap();
        assert_eq!(
            decrypt(&enc, &OverlayKind::Age, &Secret::Passphrase("pw")).unwrap(),
            data
        );
        let e = decrypt(&enc, &OverlayKind::Age, &Secret::Passphrase("nope")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "overlay: decryption failed: wrong passphrase"
        );
        let mut bad = enc.clone();
        let n = bad.len();
        bad[n - 5] ^= 0x40;
        let e = decrypt(&bad, &OverlayKind::Age, &Secret::Passphrase("pw")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "overlay: decryption failed: ciphertext was modified or truncated"
        );

        let id = age::x25519::Identity::generate();
        let recipient = id.to_public().to_string();
        let enc = encrypt_age(&data, &AgeKey::Recipients(&[recipient])).unwrap();
        use age::secrecy::ExposeSecret;
        let text = id.to_string().expose_secret().to_string();
        assert_eq!(
            decrypt(&enc, &OverlayKind::Age, &Secret::AgeIdentity(&text)).unwrap(),
            data
        );
        assert!(decrypt(&enc, &OverlayKind::Age, &Secret::Passphrase("pw")).is_err());
        let other = age::x25519::Identity::generate()
            .to_string()
            .expose_secret()
            .to_string();
        assert!(decrypt(&enc, &OverlayKind::Age, &Secret::AgeIdentity(&other)).is_err());
    }

    /// Issue 13 item 12: a passphrase file asking for a huge scrypt work factor is refused
    /// before any scrypt work (PID 1 would otherwise allocate 2^(N+10) bytes).
    #[test]
    fn scrypt_work_factor_is_bounded() {
        let data = gz(b"x");
        // Written with 2^10, then the header edited to ask for 2^22 (4 GiB): running scrypt
        // that large here would prove the point the hard way.
        let small = encrypt_age(
            &data,
            &AgeKey::Passphrase {
                passphrase: "pw",
                work_factor: Some(10),
            },
        )
        .unwrap();
        let text = String::from_utf8_lossy(&small[..small.len().min(120)]).into_owned();
        let line = text.lines().nth(1).unwrap().to_string();
        assert!(
            line.starts_with("-> scrypt ") && line.ends_with(" 10"),
            "{line}"
        );
        let mut enc = line.as_bytes()[..line.len() - 2].to_vec();
        enc.extend_from_slice(b"22");
        let at = small
            .windows(line.len())
            .position(|w| w == line.as_bytes())
            .unwrap();
        let enc = [&small[..at], &enc[..], &small[at + line.len()..]].concat();
        assert!(age_is_passphrase(&enc).unwrap());
        let e = decrypt(&enc, &OverlayKind::Age, &Secret::Passphrase("pw")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "overlay: decryption failed: scrypt work factor 2^22 is above the limit of 2^18"
        );
        // We never write what the init would refuse.
        let e = encrypt_age(
            &data,
            &AgeKey::Passphrase {
                passphrase: "pw",
                work_factor: Some(MAX_SCRYPT_WORK_FACTOR + 1),
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("the init refuses more"), "{e}");
        assert!(matches!(
            decrypt(
                &vec![0; MAX_OVERLAY_BYTES as usize + 1],
                &OverlayKind::Age,
                &Secret::Passphrase("pw")
            ),
            Err(Error::OverlayTooLarge { .. })
        ));
    }

    /// Issue 13 item 4: the identity the init embeds is an `age-keygen` file (comments and all).
    #[test]
    fn identity_files_as_age_keygen_writes_them() {
        use age::secrecy::ExposeSecret;
        let data = gz(b"to a key");
        let id = age::x25519::Identity::generate();
        let enc = encrypt_age(&data, &AgeKey::Recipients(&[id.to_public().to_string()])).unwrap();
        assert!(!age_is_passphrase(&enc).unwrap());
        let file = format!(
            "# created: 2026-01-01T00:00:00Z\n# public key: {}\n{}\n",
            id.to_public(),
            id.to_string().expose_secret()
        );
        assert_eq!(
            decrypt(&enc, &OverlayKind::Age, &Secret::AgeIdentity(&file)).unwrap(),
            data
        );
        let pw = encrypt_age(
            &data,
            &AgeKey::Passphrase {
                passphrase: "pw",
                work_factor: Some(2),
            },
        )
        .unwrap();
        assert_eq!(
            decrypt(&pw, &OverlayKind::Age, &Secret::AgeIdentity(&file))
                .unwrap_err()
                .to_string(),
            "overlay: decryption failed: file is encrypted with a passphrase, not to a key"
        );
        assert_eq!(
            format!("{:?}", Secret::Passphrase("pw")),
            "Secret::Passphrase(..)"
        );
    }
}
