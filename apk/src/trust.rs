//! Keys and signatures: Alpine's RSA keys (PKCS#1 v1.5 with SHA-1/256/512, the `.SIGN.RSA*`
//! entries) and the project's ed25519 keys (`.SIGN.ED25519.*`).
//!
//! v2 signatures name their key by file name, so a [`Keyring`] maps file names to keys. The
//! ed25519 signature signs `b"apk-ed25519-v1\0" || SHA-512(signed bytes)`, so large inputs never need
//! to be held in memory at once and the signature cannot be replayed as a signature over anything
//! else. apk-tools does not know `ED25519` and treats such signatures as absent (untrusted).

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Signature algorithms of `.SIGN.<ALG>.<key>` entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// RSA PKCS#1 v1.5 over SHA-1 (`RSA`).
    RsaSha1,
    /// RSA over SHA-256 (`RSA256`).
    RsaSha256,
    /// RSA over SHA-512 (`RSA512`).
    RsaSha512,
    /// The project's ed25519 signatures (`ED25519`).
    Ed25519,
}

impl Alg {
    /// Parse `.SIGN.<ALG>.<keyname>`: first prefix match against RSA512, RSA256, RSA, then ED25519
    /// (DSA is recognised by apk but never verifiable: treated as unknown).
    pub fn parse_entry(name: &str) -> Option<(Alg, &str)> {
        let rest = name.strip_prefix(".SIGN.")?;
        for (p, a) in [
            ("RSA512", Alg::RsaSha512),
            ("RSA256", Alg::RsaSha256),
            ("RSA", Alg::RsaSha1),
            ("ED25519", Alg::Ed25519),
        ] {
            if let Some(k) = rest.strip_prefix(p) {
                return k
                    .strip_prefix('.')
                    .filter(|k| !k.is_empty())
                    .map(|k| (a, k));
            }
        }
        None
    }

    /// The entry-name tag.
    pub fn tag(self) -> &'static str {
        match self {
            Alg::RsaSha1 => "RSA",
            Alg::RsaSha256 => "RSA256",
            Alg::RsaSha512 => "RSA512",
            Alg::Ed25519 => "ED25519",
        }
    }

    /// Digest the signed bytes for this algorithm.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Alg::RsaSha1 => Sha1::digest(data).to_vec(),
            Alg::RsaSha256 => Sha256::digest(data).to_vec(),
            Alg::RsaSha512 | Alg::Ed25519 => Sha512::digest(data).to_vec(),
        }
    }
}

const ED_DOMAIN: &[u8] = b"apk-ed25519-v1\0";

/// A trusted public key.
#[derive(Clone, Debug)]
pub enum PublicKey {
    /// RSA (Alpine's keys).
    Rsa(RsaPublicKey),
    /// ed25519 (the project's keys).
    Ed25519(ed25519_dalek::VerifyingKey),
}

/// A private key for `apk sign`, `mkpkg`, `index` and `mkimage`.
pub enum PrivateKey {
    /// RSA.
    Rsa(Box<RsaPrivateKey>),
    /// ed25519.
    Ed25519(Box<ed25519_dalek::SigningKey>),
}

/// Key handling errors.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// File could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Not a PEM key we understand.
    #[error("{}: not a PEM RSA or ed25519 key", .0.display())]
    Parse(PathBuf),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

impl PublicKey {
    /// Parse a PEM public key (SPKI `PUBLIC KEY` for both kinds, or PKCS#1 `RSA PUBLIC KEY`).
    /// RSA keys of up to [`MAX_RSA_BITS`] are taken, as OpenSSL (apk-tools) takes them.
    pub fn from_pem(pem: &str) -> Option<Self> {
        if let Some(k) = rsa_public_from_pem(pem) {
            return Some(PublicKey::Rsa(k));
        }
        ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
            .ok()
            .map(PublicKey::Ed25519)
    }

    /// Verify `sig` made with `alg` over `data`.
    pub fn verify(&self, alg: Alg, data: &[u8], sig: &[u8]) -> bool {
        match (self, alg) {
            (PublicKey::Rsa(k), Alg::RsaSha1 | Alg::RsaSha256 | Alg::RsaSha512) => {
                verify_rsa(k, alg, data, sig)
            }
            (PublicKey::Ed25519(k), Alg::Ed25519) => {
                let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
                    return false;
                };
                let mut msg = ED_DOMAIN.to_vec();
                msg.extend_from_slice(&alg.digest(data));
                k.verify_strict(&msg, &sig).is_ok()
            }
            _ => false,
        }
    }

    /// PEM text (SPKI).
    pub fn to_pem(&self) -> String {
        match self {
            PublicKey::Rsa(k) => k
                .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
                .unwrap_or_default(),
            PublicKey::Ed25519(k) => k
                .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
                .unwrap_or_default(),
        }
    }
}

impl PrivateKey {
    /// Read a PEM private key (PKCS#8 RSA or ed25519, or PKCS#1 `RSA PRIVATE KEY`).
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let pem = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.into(),
            source,
        })?;
        if let Ok(k) = RsaPrivateKey::from_pkcs8_pem(&pem) {
            return Ok(PrivateKey::Rsa(Box::new(k)));
        }
        if let Ok(k) = RsaPrivateKey::from_pkcs1_pem(&pem) {
            return Ok(PrivateKey::Rsa(Box::new(k)));
        }
        ed25519_dalek::SigningKey::from_pkcs8_pem(&pem)
            .map(|k| PrivateKey::Ed25519(Box::new(k)))
            .map_err(|_| KeyError::Parse(path.into()))
    }

    /// A fresh ed25519 key.
    pub fn generate_ed25519() -> Self {
        PrivateKey::Ed25519(Box::new(ed25519_dalek::SigningKey::generate(
            &mut rand_core::OsRng,
        )))
    }

    /// A fresh RSA key.
    pub fn generate_rsa(bits: usize) -> Result<Self, KeyError> {
        RsaPrivateKey::new(&mut rand_core::OsRng, bits)
            .map(|k| PrivateKey::Rsa(Box::new(k)))
            .map_err(|e| KeyError::Sign(e.to_string()))
    }

    /// The algorithm this key signs with (RSA keys use SHA-256, as abuild does today).
    pub fn default_alg(&self) -> Alg {
        match self {
            PrivateKey::Rsa(_) => Alg::RsaSha256,
            PrivateKey::Ed25519(_) => Alg::Ed25519,
        }
    }

    /// Sign `data` with `alg`.
    pub fn sign(&self, alg: Alg, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        let digest = alg.digest(data);
        match (self, alg) {
            (PrivateKey::Rsa(k), Alg::RsaSha1) => k.sign(Pkcs1v15Sign::new::<Sha1>(), &digest),
            (PrivateKey::Rsa(k), Alg::RsaSha256) => k.sign(Pkcs1v15Sign::new::<Sha256>(), &digest),
            (PrivateKey::Rsa(k), Alg::RsaSha512) => k.sign(Pkcs1v15Sign::new::<Sha512>(), &digest),
            (PrivateKey::Ed25519(k), Alg::Ed25519) => {
                use ed25519_dalek::Signer;
                let mut msg = ED_DOMAIN.to_vec();
                msg.extend_from_slice(&digest);
                return Ok(k.sign(&msg).to_bytes().to_vec());
            }
            _ => {
                return Err(KeyError::Sign(format!(
                    "{} cannot sign with this key",
                    alg.tag()
                )))
            }
        }
        .map_err(|e| KeyError::Sign(e.to_string()))
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        match self {
            PrivateKey::Rsa(k) => PublicKey::Rsa(k.to_public_key()),
            PrivateKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
        }
    }

    /// PEM (PKCS#8) text of the private key.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        let s = match self {
            PrivateKey::Rsa(k) => k
                .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
                .map(|z| z.to_string()),
            PrivateKey::Ed25519(k) => k
                .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
                .map(|z| z.to_string()),
        };
        s.map_err(|e| KeyError::Sign(e.to_string()))
    }
}

/// Trusted keys by file name.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    keys: BTreeMap<String, PublicKey>,
}

impl Keyring {
    /// Load every readable PEM public key in `dir` (missing directory: empty keyring). Files that
    /// are not keys are skipped, as apk does.
    pub fn load(dir: &Path) -> Self {
        let mut ring = Keyring::default();
        ring.add_dir(dir);
        ring
    }

    /// Load the keys of directory `rel` of a target root, resolved beneath it: `etc/apk/keys` as a
    /// symlink to `/etc/apk/keys` names the root's own keys, never the host's.
    pub fn load_beneath(root: &crate::root::Root, rel: &str) -> Self {
        let mut ring = Keyring::default();
        for name in root.list(rel).unwrap_or_default() {
            let Ok(Some(pem)) = root.read_opt(&format!("{rel}/{name}")) else {
                continue;
            };
            if let Some(k) = PublicKey::from_pem(&String::from_utf8_lossy(&pem)) {
                ring.keys.insert(name, k);
            }
        }
        ring
    }

    /// Add the keys of another directory.
    pub fn add_dir(&mut self, dir: &Path) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // Bounded and regular files only: an overlay may put a link to /dev/zero here.
            let pem = crate::limits::read(&e.path(), crate::limits::KEY_FILE)
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            if let Some(pem) = pem {
                if let Some(k) = PublicKey::from_pem(&pem) {
                    self.keys.insert(name, k);
                }
            }
        }
    }

    /// Add one key under a name.
    pub fn insert(&mut self, name: &str, key: PublicKey) {
        self.keys.insert(name.to_string(), key);
    }

    /// Add every key of another keyring (theirs win on equal names).
    pub fn merge(&mut self, other: &Keyring) {
        for (k, v) in &other.keys {
            self.keys.insert(k.clone(), v.clone());
        }
    }

    /// Key names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Key by file name.
    pub fn get(&self, name: &str) -> Option<&PublicKey> {
        self.keys.get(name)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The largest RSA modulus taken, in bits: ring verifies up to 8192 (as OpenSSL does by
/// default); the rsa crate's own parsers stop at 4096, so a third-party repository signed with
/// an 8192-bit key (abuild-keygen takes any size) would otherwise be untrusted.
pub const MAX_RSA_BITS: usize = 8192;

/// An RSA public key from SPKI `PUBLIC KEY` or PKCS#1 `RSA PUBLIC KEY` PEM, modulus of at most
/// [`MAX_RSA_BITS`].
fn rsa_public_from_pem(pem: &str) -> Option<RsaPublicKey> {
    use rsa::pkcs8::der::{Decode, Document};
    let (label, doc) = Document::from_pem(pem).ok()?;
    let pkcs1 = match label {
        "PUBLIC KEY" => {
            let spki = rsa::pkcs8::SubjectPublicKeyInfoRef::from_der(doc.as_bytes()).ok()?;
            // rsaEncryption; its parameters (NULL) are not checked, as OpenSSL does not.
            if spki.algorithm.oid != rsa::pkcs1::ALGORITHM_OID {
                return None;
            }
            spki.subject_public_key.as_bytes()?.to_vec()
        }
        "RSA PUBLIC KEY" => doc.as_bytes().to_vec(),
        _ => return None,
    };
    let k = rsa::pkcs1::RsaPublicKey::from_der(&pkcs1).ok()?;
    RsaPublicKey::new_with_max_size(
        rsa::BigUint::from_bytes_be(k.modulus.as_bytes()),
        rsa::BigUint::from_bytes_be(k.public_exponent.as_bytes()),
        MAX_RSA_BITS,
    )
    .ok()
}

/// RSA PKCS#1 v1.5 verification of `sig` over `data` (hashed with `alg`'s digest).
///
/// ring does it for the keys it takes (a modulus of 1024 to 8192 bits, an odd exponent from 3 to
/// 2^33 - 1: every key Alpine and abuild make; none over [`MAX_RSA_BITS`] is loaded): its assembly Montgomery multiplication is far faster than
/// the rsa crate's num-bigint-dig, whose exponentiation was 78% of `apk verify`'s time (the 101
/// packages of the fixture medium: 187 -> 57 ms). Both check the same thing (RFC 8017
/// RSASSA-PKCS1-v1_5: a signature as long as the modulus, the exact padding and DigestInfo), so
/// other keys go to the rsa crate with the same result.
fn verify_rsa(k: &RsaPublicKey, alg: Alg, data: &[u8], sig: &[u8]) -> bool {
    use ring::signature as rs;
    use rsa::traits::PublicKeyParts;
    let (n, e) = (k.n(), k.e());
    let odd = e.to_bytes_be().last().is_some_and(|b| b & 1 == 1);
    let ring_takes =
        (1024..=8192).contains(&n.bits()) && e.bits() <= 33 && odd && *e >= 3u32.into();
    if ring_takes {
        let params = match alg {
            Alg::RsaSha1 => &rs::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
            Alg::RsaSha256 => &rs::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
            Alg::RsaSha512 => &rs::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
            Alg::Ed25519 => return false,
        };
        let components = rs::RsaPublicKeyComponents {
            n: n.to_bytes_be(),
            e: e.to_bytes_be(),
        };
        return components.verify(params, data, sig).is_ok();
    }
    let digest = alg.digest(data);
    let scheme = match alg {
        Alg::RsaSha1 => Pkcs1v15Sign::new::<Sha1>(),
        Alg::RsaSha256 => Pkcs1v15Sign::new::<Sha256>(),
        Alg::RsaSha512 => Pkcs1v15Sign::new::<Sha512>(),
        Alg::Ed25519 => return false,
    };
    k.verify(scheme, &digest, sig).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alg_parsing() {
        assert_eq!(
            Alg::parse_entry(".SIGN.RSA.alpine.rsa.pub"),
            Some((Alg::RsaSha1, "alpine.rsa.pub"))
        );
        assert_eq!(
            Alg::parse_entry(".SIGN.RSA256.k.pub"),
            Some((Alg::RsaSha256, "k.pub"))
        );
        assert_eq!(
            Alg::parse_entry(".SIGN.RSA512.k.pub"),
            Some((Alg::RsaSha512, "k.pub"))
        );
        assert_eq!(
            Alg::parse_entry(".SIGN.ED25519.k.pub"),
            Some((Alg::Ed25519, "k.pub"))
        );
        assert_eq!(Alg::parse_entry(".SIGN.RSAX.k"), None);
        assert_eq!(Alg::parse_entry(".SIGN.DSA.k"), None);
        assert_eq!(Alg::parse_entry(".PKGINFO"), None);
        assert_eq!(Alg::parse_entry(".SIGN.RSA."), None);
    }

    #[test]
    fn ed25519_sign_verify() {
        let k = PrivateKey::generate_ed25519();
        let sig = k.sign(Alg::Ed25519, b"data").unwrap();
        let pubk = PublicKey::from_pem(&k.public().to_pem()).unwrap();
        assert!(pubk.verify(Alg::Ed25519, b"data", &sig));
        assert!(!pubk.verify(Alg::Ed25519, b"datb", &sig));
        assert!(!pubk.verify(Alg::RsaSha256, b"data", &sig));
        let pem = k.to_pem().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k"), pem).unwrap();
        let k2 = PrivateKey::load(&dir.path().join("k")).unwrap();
        assert!(pubk.verify(Alg::Ed25519, b"x", &k2.sign(Alg::Ed25519, b"x").unwrap()));
    }

    #[test]
    fn rsa_sign_verify() {
        // 1024 bits: ring verifies; 768 bits: below ring's range, the rsa crate does.
        for bits in [1024, 768] {
            let k = PrivateKey::generate_rsa(bits).unwrap();
            let pubk = PublicKey::from_pem(&k.public().to_pem()).unwrap();
            for alg in [Alg::RsaSha1, Alg::RsaSha256, Alg::RsaSha512] {
                let sig = k.sign(alg, b"hello").unwrap();
                assert!(pubk.verify(alg, b"hello", &sig), "{bits} {alg:?}");
                assert!(!pubk.verify(alg, b"hellp", &sig), "{bits} {alg:?}");
                // Another digest, a flipped bit, a truncated or padded signature: all refused.
                let other = if alg == Alg::RsaSha1 {
                    Alg::RsaSha256
                } else {
                    Alg::RsaSha1
                };
                assert!(!pubk.verify(other, b"hello", &sig), "{bits} {alg:?}");
                let mut flipped = sig.clone();
                flipped[sig.len() / 2] ^= 1;
                assert!(!pubk.verify(alg, b"hello", &flipped), "{bits} {alg:?}");
                assert!(!pubk.verify(alg, b"hello", &sig[1..]), "{bits} {alg:?}");
                let mut padded = vec![0];
                padded.extend_from_slice(&sig);
                assert!(!pubk.verify(alg, b"hello", &padded), "{bits} {alg:?}");
                assert!(!pubk.verify(Alg::Ed25519, b"hello", &sig), "{bits} {alg:?}");
            }
        }
    }

    /// An 8192-bit key (made with `openssl genrsa 8192`; data signed with `openssl dgst -sha1`
    /// and `-sha256`): taken and verified, as apk-tools does; one over 8192 bits is not.
    #[test]
    fn rsa_keys_up_to_8192_bits_verify() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rsa8192");
        let pem = std::fs::read_to_string(dir.join("key.rsa.pub")).unwrap();
        let key = PublicKey::from_pem(&pem).expect("an 8192-bit key");
        let data = std::fs::read(dir.join("data")).unwrap();
        for (alg, file) in [
            (Alg::RsaSha1, "data.sig.sha1"),
            (Alg::RsaSha256, "data.sig.sha256"),
        ] {
            let sig = std::fs::read(dir.join(file)).unwrap();
            assert!(key.verify(alg, &data, &sig), "{file}");
            assert!(!key.verify(alg, b"other data", &sig), "{file}");
        }
        // The same key as PKCS#1 `RSA PUBLIC KEY`.
        let PublicKey::Rsa(rsa_key) = &key else {
            panic!("not RSA")
        };
        use rsa::pkcs1::EncodeRsaPublicKey;
        let pkcs1 = rsa_key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).unwrap();
        assert!(PublicKey::from_pem(&pkcs1).is_some());
        // 8200 bits: refused (ring stops at 8192), never a key that cannot verify anything.
        let big = rsa::pkcs1::RsaPublicKey {
            modulus: rsa::pkcs1::UintRef::new(&[0xff; 1025]).unwrap(),
            public_exponent: rsa::pkcs1::UintRef::new(&[1, 0, 1]).unwrap(),
        };
        use rsa::pkcs8::der::Encode;
        let der = big.to_der().unwrap();
        let pem =
            rsa::pkcs8::der::pem::encode_string("RSA PUBLIC KEY", rsa::pkcs8::LineEnding::LF, &der)
                .unwrap();
        assert!(PublicKey::from_pem(&pem).is_none());
    }

    /// A public exponent of 1 makes any message's own PKCS#1 encoding its "signature" (s^1 mod n
    /// is s): such a key is refused, not trusted (OpenSSL 3.0's `openssl dgst -verify` accepts that
    /// forgery with it, so apk-tools would).
    #[test]
    fn a_key_with_exponent_one_is_refused() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rsa8192");
        let pem = std::fs::read_to_string(dir.join("key.rsa.pub")).unwrap();
        let PublicKey::Rsa(real) = PublicKey::from_pem(&pem).unwrap() else {
            panic!("not RSA")
        };
        use rsa::traits::PublicKeyParts;
        let modulus = real.n().to_bytes_be();
        let with_exponent = |e: &[u8]| {
            let k = rsa::pkcs1::RsaPublicKey {
                modulus: rsa::pkcs1::UintRef::new(&modulus).unwrap(),
                public_exponent: rsa::pkcs1::UintRef::new(e).unwrap(),
            };
            use rsa::pkcs8::der::Encode;
            let der = k.to_der().unwrap();
            rsa::pkcs8::der::pem::encode_string("RSA PUBLIC KEY", rsa::pkcs8::LineEnding::LF, &der)
                .unwrap()
        };
        assert!(PublicKey::from_pem(&with_exponent(&[1])).is_none());
        // The same modulus with 65537 is the real key again: only the exponent was refused.
        assert!(PublicKey::from_pem(&with_exponent(&[1, 0, 1])).is_some());
    }

    #[test]
    fn loads_alpine_keys() {
        let ring = crate::testutil::alpine_keys();
        assert_eq!(ring.len(), 5);
        assert!(matches!(
            ring.get("alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub"),
            Some(PublicKey::Rsa(_))
        ));
    }
}
