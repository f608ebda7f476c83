//! Encrypted overlays.
//!
//! - Legacy (read for compatibility, write only on explicit request): Alpine's
//!   `openssl enc -<cipher> -salt` files (lbu.md §7): `Salted__`, 8 salt bytes, then CBC with
//!   PKCS#7 padding under a key and IV from one-iteration `EVP_BytesToKey`, SHA-256 (OpenSSL
//!   1.1.0 and later) with an MD5 fallback (older OpenSSL, LibreSSL). There is no MAC: a wrong password
//!   shows up as bad padding or, rarely, as garbage, so the result must also start like gzip.
//! - `age` (what the project writes): scrypt passphrase or X25519 recipients; authenticated, so
//!   a wrong passphrase and a flipped byte are both clear errors.
//!
//! Everything works on in-memory bytes; no process is spawned (the init links this).

use crate::kind::OverlayKind;
use crate::Error;
use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use age::secrecy::SecretString;
use md5::Md5;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};

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

/// The secret that opens an encrypted overlay.
#[derive(Clone, Copy, Debug)]
pub enum Secret<'a> {
    /// A password (legacy files and age scrypt files).
    Passphrase(&'a str),
    /// The text of an age identity file (`AGE-SECRET-KEY-1...` lines).
    AgeIdentity(&'a str),
}

/// How to encrypt with age.
#[derive(Clone, Debug)]
pub enum AgeKey<'a> {
    /// scrypt passphrase; `work_factor` is log2(N) (default: age's ~1 s calibration).
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

/// A key derivation: (password, salt, key length) -> (key, IV).
type KeyDerivation = fn(&[u8], &[u8], usize) -> (Vec<u8>, Vec<u8>);

/// `EVP_BytesToKey(md, salt, password, count = 1)`, key then IV.
fn bytes_to_key<D: Digest>(password: &[u8], salt: &[u8], key_len: usize) -> (Vec<u8>, Vec<u8>) {
    let mut out = Vec::new();
    let mut prev: Vec<u8> = Vec::new();
    while out.len() < key_len + 16 {
        let mut h = D::new();
        h.update(&prev);
        h.update(password);
        h.update(salt);
        prev = h.finalize().to_vec();
        out.extend_from_slice(&prev);
    }
    let iv = out[key_len..key_len + 16].to_vec();
    out.truncate(key_len);
    (out, iv)
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
        age::DecryptError::ExcessiveWork { required, .. } => {
            format!("scrypt work factor 2^{required} is too large")
        }
        age::DecryptError::InvalidHeader => "not an age file (invalid header)".into(),
        age::DecryptError::InvalidMac => "age header was modified (bad MAC)".into(),
        age::DecryptError::Io(e) => e.to_string(),
        age::DecryptError::NoMatchingKeys => "no matching key (wrong identity)".into(),
        _ => "age decryption failed".into(),
    })
}

/// Decrypt an age file with a passphrase or an identity file's text.
pub fn decrypt_age(data: &[u8], secret: &Secret<'_>) -> Result<Vec<u8>, Error> {
    let dec = age::Decryptor::new_buffered(data).map_err(age_error)?;
    let mut reader = match secret {
        Secret::Passphrase(p) => {
            if !dec.is_scrypt() {
                return Err(Error::Decrypt(
                    "file is encrypted to a key, not a passphrase".into(),
                ));
            }
            let id = age::scrypt::Identity::new(SecretString::from(p.to_string()));
            dec.decrypt(std::iter::once(&id as &dyn age::Identity))
                .map_err(age_error)?
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
    let mut out = Vec::new();
    reader
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
            let mut r = age::scrypt::Recipient::new(SecretString::from(passphrase.to_string()));
            if let Some(n) = work_factor.filter(|n| (1..64).contains(n)) {
                r.set_work_factor(n);
            }
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
pub fn decrypt(data: &[u8], kind: &OverlayKind, secret: &Secret<'_>) -> Result<Vec<u8>, Error> {
    match kind {
        OverlayKind::Plain => Ok(data.to_vec()),
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
}
