//! The modloop contract: what the squashfs holds and the detached signature `mkimage` writes
//! beside it (`boot/modloop-<flavor>.sig`) and the init checks before mounting it.
//!
//! Inside the squashfs (Alpine's layout, what its `update-kernel` makes and its OpenRC `modloop`
//! service expects): `modules/<kver>/...` with the `modules.*` indexes, and the firmware under
//! `modules/firmware/...` (on the booted box `/lib/modules -> /.modloop/modules` and
//! `/lib/firmware -> /lib/modules/firmware`).
//!
//! The signature file is small UTF-8 text, one `key: value` per line after a format line:
//! ```text
//! modloop-signature v1
//! file: modloop-lts
//! kernel: 6.1.0-13-amd64
//! size: 81234944
//! sha256: <hex SHA-256 of the modloop's bytes>
//! key-name: medium.rsa.pub
//! algorithm: RSA256
//! signature: <hex signature>
//! ```
//! The signature covers [`DOMAIN`] followed by the rendered lines from `file:` to `algorithm:`
//! ([`Statement::message`]): the file name (a signed `modloop-virt` cannot pose as `modloop-lts`),
//! the kernel version, the exact size (the reader hashes that many bytes and no more) and the
//! hash. It is made with the medium key, the one that signs the boot repository's index, and
//! verified with the initramfs's `etc/apk/keys` (`key-name` is the key's file name there, as
//! apk's `.SIGN.*.<key-name>` entries). `algorithm` is an apk signature tag (`RSA256`, `RSA512`,
//! `ED25519`); SHA-1 (`RSA`) is refused. Nothing here does cryptography: the builder signs and the
//! init verifies with the `apk` crate's keys.

/// The format line, first line of every modloop signature file.
pub const FORMAT: &str = "modloop-signature v1";

/// Domain separation prefix of the signed message.
pub const DOMAIN: &[u8] = b"alpine-diskless-modloop-v1\0";

/// Largest signature file a reader accepts (an RSA-8192 signature in hex is 2 KiB).
pub const MAX_SIGNATURE_BYTES: u64 = 16 * 1024;

/// The modules directory inside the squashfs (`modules/<kver>`).
pub const MODULES_DIR: &str = "modules";

/// The firmware directory inside the squashfs.
pub const FIRMWARE_DIR: &str = "modules/firmware";

/// Where the modloop is mounted in the new root (Alpine's mount point).
pub const MOUNT_POINT: &str = ".modloop";

/// Signature algorithms a modloop signature may use (apk's tags; SHA-1 is not among them).
pub const ALGORITHMS: &[&str] = &["RSA256", "RSA512", "ED25519"];

/// What a modloop signature asserts about one modloop file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// File name of the modloop (`modloop-lts`), without directory.
    pub file: String,
    /// Kernel version the modules were built for (`uname -r`).
    pub kernel: String,
    /// Exact size in bytes.
    pub size: u64,
    /// SHA-256 of the file's bytes.
    pub sha256: [u8; 32],
    /// File name of the public key (in `etc/apk/keys`).
    pub key_name: String,
    /// apk signature tag (one of [`ALGORITHMS`]).
    pub algorithm: String,
}

/// A statement and the signature over its [`Statement::message`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed {
    /// What is signed.
    pub statement: Statement,
    /// The raw signature bytes.
    pub signature: Vec<u8>,
}

/// Why a signature file was refused before any key was tried.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// The first line is not [`FORMAT`].
    #[error("not a modloop signature (expected first line {FORMAT:?})")]
    Format,
    /// A line is not `key: value`.
    #[error("line {0}: expected 'key: value'")]
    Line(usize),
    /// A field appears twice.
    #[error("field {0} appears twice")]
    Duplicate(String),
    /// A field is not part of the format.
    #[error("unknown field {0}")]
    Unknown(String),
    /// A field is missing.
    #[error("field {0} is missing")]
    Missing(&'static str),
    /// A field's value is malformed.
    #[error("field {field}: {why}")]
    Value {
        /// The field.
        field: &'static str,
        /// What is wrong.
        why: &'static str,
    },
}

fn valid_word(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
}

impl Statement {
    /// The signed lines, in their fixed order.
    fn lines(&self) -> String {
        format!(
            "file: {}\nkernel: {}\nsize: {}\nsha256: {}\nkey-name: {}\nalgorithm: {}\n",
            self.file,
            self.kernel,
            self.size,
            hex::encode(self.sha256),
            self.key_name,
            self.algorithm
        )
    }

    /// The bytes the signature covers: [`DOMAIN`] then the signed lines.
    pub fn message(&self) -> Vec<u8> {
        let mut m = DOMAIN.to_vec();
        m.extend_from_slice(self.lines().as_bytes());
        m
    }
}

impl Signed {
    /// The signature file's text.
    pub fn render(&self) -> String {
        format!(
            "{FORMAT}\n{}signature: {}\n",
            self.statement.lines(),
            hex::encode(&self.signature)
        )
    }

    /// Parse a signature file. Every field exactly once, nothing else; values checked for shape
    /// (names are single words without `/`, the hash is 32 bytes, the algorithm is allowed).
    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        let mut lines = text.lines();
        if lines.next() != Some(FORMAT) {
            return Err(SignatureError::Format);
        }
        const FIELDS: [&str; 7] = [
            "file",
            "kernel",
            "size",
            "sha256",
            "key-name",
            "algorithm",
            "signature",
        ];
        let mut values: [Option<&str>; 7] = [None; 7];
        for (n, line) in lines.enumerate() {
            if line.is_empty() {
                continue;
            }
            let (key, value) = line.split_once(": ").ok_or(SignatureError::Line(n + 2))?;
            let i = FIELDS
                .iter()
                .position(|f| *f == key)
                .ok_or_else(|| SignatureError::Unknown(key.to_string()))?;
            if values[i].replace(value).is_some() {
                return Err(SignatureError::Duplicate(key.to_string()));
            }
        }
        let get = |i: usize| values[i].ok_or(SignatureError::Missing(FIELDS[i]));
        let word = |i: usize| -> Result<String, SignatureError> {
            let v = get(i)?;
            if valid_word(v) {
                Ok(v.to_string())
            } else {
                Err(SignatureError::Value {
                    field: FIELDS[i],
                    why: "not a single word without '/'",
                })
            }
        };
        let file = word(0)?;
        let kernel = word(1)?;
        let size = get(2)?.parse::<u64>().map_err(|_| SignatureError::Value {
            field: "size",
            why: "not a number of bytes",
        })?;
        let sha256: [u8; 32] = hex::decode(get(3)?)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(SignatureError::Value {
                field: "sha256",
                why: "not 64 hex digits",
            })?;
        let key_name = word(4)?;
        let algorithm = get(5)?;
        if !ALGORITHMS.contains(&algorithm) {
            return Err(SignatureError::Value {
                field: "algorithm",
                why: "not one of RSA256, RSA512, ED25519",
            });
        }
        let signature =
            hex::decode(get(6)?)
                .ok()
                .filter(|s| !s.is_empty())
                .ok_or(SignatureError::Value {
                    field: "signature",
                    why: "not hex",
                })?;
        Ok(Signed {
            statement: Statement {
                file,
                kernel,
                size,
                sha256,
                key_name,
                algorithm: algorithm.to_string(),
            },
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Signed {
        Signed {
            statement: Statement {
                file: "modloop-lts".into(),
                kernel: "6.1.0-13-amd64".into(),
                size: 1234,
                sha256: [7; 32],
                key_name: "medium.rsa.pub".into(),
                algorithm: "RSA256".into(),
            },
            signature: vec![1, 2, 3, 255],
        }
    }

    #[test]
    fn renders_and_parses_back() {
        let s = sample();
        let text = s.render();
        assert!(text.starts_with(
            "modloop-signature v1\nfile: modloop-lts\nkernel: 6.1.0-13-amd64\nsize: 1234\n"
        ));
        assert!(text.ends_with("signature: 010203ff\n"));
        assert_eq!(Signed::parse(&text).unwrap(), s);
    }

    #[test]
    fn message_binds_every_statement_field() {
        let base = sample().statement;
        let m = base.message();
        assert!(m.starts_with(DOMAIN));
        let mut variants = Vec::new();
        let mut s = base.clone();
        s.file = "modloop-virt".into();
        variants.push(s);
        let mut s = base.clone();
        s.kernel = "6.1.0-14-amd64".into();
        variants.push(s);
        let mut s = base.clone();
        s.size += 1;
        variants.push(s);
        let mut s = base.clone();
        s.sha256[31] ^= 1;
        variants.push(s);
        let mut s = base.clone();
        s.key_name = "other.pub".into();
        variants.push(s);
        let mut s = base.clone();
        s.algorithm = "ED25519".into();
        variants.push(s);
        for v in variants {
            assert_ne!(v.message(), m, "{v:?}");
        }
    }

    #[test]
    fn refuses_malformed_files() {
        let good = sample().render();
        let cases: Vec<(String, SignatureError)> = vec![
            ("apkovl-signature v2\n".into(), SignatureError::Format),
            (
                good.replace("size: 1234", "size: 12x"),
                SignatureError::Value {
                    field: "size",
                    why: "not a number of bytes",
                },
            ),
            (
                good.replace("algorithm: RSA256", "algorithm: RSA"),
                SignatureError::Value {
                    field: "algorithm",
                    why: "not one of RSA256, RSA512, ED25519",
                },
            ),
            (
                good.replace("file: modloop-lts", "file: ../modloop-lts"),
                SignatureError::Value {
                    field: "file",
                    why: "not a single word without '/'",
                },
            ),
            (
                format!("{good}kernel: 6.2\n"),
                SignatureError::Duplicate("kernel".into()),
            ),
            (
                format!("{good}extra: 1\n"),
                SignatureError::Unknown("extra".into()),
            ),
            (
                good.replace("key-name: medium.rsa.pub\n", ""),
                SignatureError::Missing("key-name"),
            ),
            (
                good.replace("sha256: ", "sha256: 00"),
                SignatureError::Value {
                    field: "sha256",
                    why: "not 64 hex digits",
                },
            ),
            (good.replace("size: 1234", "size"), SignatureError::Line(4)),
        ];
        for (text, want) in cases {
            assert_eq!(Signed::parse(&text), Err(want), "{text}");
        }
    }
}
