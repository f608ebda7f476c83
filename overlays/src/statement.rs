//! Signed statements: what an overlay signature says besides "these bytes" (overlays/README.md,
//! "Signed statements").
//!
//! A round-1 signature covered only the overlay's bytes, so a signed backup (or another host's
//! signed overlay) renamed to `HOST.apkovl.tar.gz` verified too. A [`Statement`] binds the bytes
//! to the host the overlay is for (the file name's stem), a commit time and a generation that
//! grows by one per commit; [`check_binding`] is the boot's judgement of it: the statement must
//! name this host, and its generation must not be older than the one the medium records beside
//! the overlay ([`crate::generation`]).
//!
//! What remains: whoever can write the medium can roll back *both* the overlay (with its `.sig`)
//! and the generation file to an older, validly signed pair; only a counter the attacker cannot
//! write (a TPM NV index, a signed boot configuration that carries the minimum) closes that.

use crate::Error;
use crate::Verification;
use sha2::{Digest, Sha256};

/// Longest host name a statement may carry (a file name's stem).
pub const MAX_HOST_LEN: usize = 255;

/// What a round-2 overlay signature asserts, besides the key that made it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Statement {
    /// SHA-256 of the overlay file's bytes as stored (the encrypted bytes for `.age`).
    pub sha256: [u8; 32],
    /// The host the overlay is for: the stem `HOST` of `HOST.apkovl.tar.gz[...]` (for netboot
    /// trees, the MAC-derived name the file is served under).
    pub host: String,
    /// Commit time (Unix seconds).
    pub time: u64,
    /// Commit generation: one more than the previous commit's.
    pub generation: u64,
}

impl Statement {
    /// The statement for `overlay`'s bytes.
    pub fn new(overlay: &[u8], host: &str, time: u64, generation: u64) -> Result<Self, Error> {
        check_host(host).map_err(|why| Error::Statement(format!("host {host:?}: {why}")))?;
        Ok(Statement {
            sha256: Sha256::digest(overlay).into(),
            host: host.to_string(),
            time,
            generation,
        })
    }

    /// The bytes the signature covers: a domain prefix, then one `name value` line per field in
    /// a fixed order, so two different statements never sign the same message.
    pub(crate) fn message(&self) -> Vec<u8> {
        let mut m = DOMAIN.to_vec();
        m.extend_from_slice(
            format!(
                "sha256 {}\nhost {}\ntime {}\ngeneration {}\n",
                hex::encode(self.sha256),
                self.host,
                self.time,
                self.generation
            )
            .as_bytes(),
        );
        m
    }
}

/// Domain separation of round-2 signatures (never valid as an index or round-1 signature).
const DOMAIN: &[u8] = b"apkovl-statement-v2\0";

/// Whether `host` can be named in a statement: 1 to [`MAX_HOST_LEN`] bytes, no `/`, no
/// whitespace or control characters, not `.` or `..` (it is a file name's stem and one line of
/// the `.sig` text).
pub fn check_host(host: &str) -> Result<(), &'static str> {
    if host.is_empty() || host.len() > MAX_HOST_LEN {
        return Err("must be 1 to 255 bytes");
    }
    if host == "." || host == ".." || host.contains('/') {
        return Err("must be a file name's stem");
    }
    if host.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain whitespace or control characters");
    }
    Ok(())
}

/// Why [`check_binding`] refused an overlay. Each message is one line naming the host and the
/// numbers involved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    /// The statement names another host (a swapped overlay).
    #[error("apkovl for host {host}: signed for host {signed_for} (generation {generation}), refusing a swapped overlay")]
    OtherHost {
        /// The host the file is named for.
        host: String,
        /// The host the signature names.
        signed_for: String,
        /// The statement's generation.
        generation: u64,
    },
    /// The statement's generation is older than the medium's record (a replayed overlay).
    #[error("apkovl for host {host}: generation {generation} is older than generation {minimum} recorded on the medium, refusing a replayed overlay")]
    Replayed {
        /// The host.
        host: String,
        /// The statement's generation.
        generation: u64,
        /// The generation the medium records.
        minimum: u64,
    },
    /// A round-1 signature (bytes only) where statements are required.
    #[error("apkovl for host {host}: round-1 signature binds no host or generation, refusing it (the image does not accept legacy signatures)")]
    Legacy {
        /// The host.
        host: String,
    },
}

/// The boot's judgement of a verified signature: the statement must be for `host`, and its
/// generation at least `min_generation` (the number the medium keeps beside the overlay, `None`
/// when there is none); a round-1 signature passes only with `accept_legacy` (and then binds
/// nothing). [`Verification::Unsigned`] and [`Verification::Bad`] pass: they are the signature
/// policy's to judge (a bad signature is never accepted, an unsigned overlay only where the
/// policy allows it), and an unsigned overlay has no statement to bind.
pub fn check_binding(
    v: &Verification,
    host: &str,
    min_generation: Option<u64>,
    accept_legacy: bool,
) -> Result<(), BindingError> {
    let Verification::Verified { statement, .. } = v else {
        return Ok(());
    };
    let Some(s) = statement else {
        return if accept_legacy {
            Ok(())
        } else {
            Err(BindingError::Legacy {
                host: host.to_string(),
            })
        };
    };
    if s.host != host {
        return Err(BindingError::OtherHost {
            host: host.to_string(),
            signed_for: s.host.clone(),
            generation: s.generation,
        });
    }
    match min_generation {
        Some(minimum) if s.generation < minimum => Err(BindingError::Replayed {
            host: host.to_string(),
            generation: s.generation,
            minimum,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(host: &str, generation: u64) -> Verification {
        Verification::Verified {
            key: "k.pub".into(),
            statement: Some(Statement::new(b"x", host, 1, generation).unwrap()),
        }
    }

    #[test]
    fn binding_refuses_other_hosts_older_generations_and_legacy() {
        assert_eq!(
            check_binding(&verified("fw1", 7), "fw1", Some(7), false),
            Ok(())
        );
        assert_eq!(
            check_binding(&verified("fw1", 8), "fw1", None, false),
            Ok(())
        );
        assert_eq!(
            check_binding(&verified("fw2", 7), "fw1", None, true)
                .unwrap_err()
                .to_string(),
            "apkovl for host fw1: signed for host fw2 (generation 7), refusing a swapped overlay"
        );
        assert_eq!(
            check_binding(&verified("fw1", 6), "fw1", Some(7), true)
                .unwrap_err()
                .to_string(),
            "apkovl for host fw1: generation 6 is older than generation 7 recorded on the medium, refusing a replayed overlay"
        );
        let legacy = Verification::Verified {
            key: "k.pub".into(),
            statement: None,
        };
        assert_eq!(
            check_binding(&legacy, "fw1", Some(3), false),
            Err(BindingError::Legacy { host: "fw1".into() })
        );
        assert_eq!(check_binding(&legacy, "fw1", Some(3), true), Ok(()));
        assert_eq!(
            check_binding(&Verification::Unsigned, "fw1", Some(3), false),
            Ok(())
        );
    }

    #[test]
    fn hosts_are_file_stems_on_one_line() {
        for good in [
            "fw1",
            "52-54-00-12-34-56",
            "52:54:00:12:34:56",
            "a.example.org",
        ] {
            assert_eq!(check_host(good), Ok(()), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "a\nb", &"x".repeat(256)] {
            assert!(check_host(bad).is_err(), "{bad:?}");
        }
        assert!(Statement::new(b"x", "a\nb", 0, 0).is_err());
    }

    #[test]
    fn messages_differ_for_every_field() {
        let base = Statement::new(b"x", "h", 1, 2).unwrap();
        let mut variants = vec![base.clone()];
        variants.push(Statement::new(b"y", "h", 1, 2).unwrap());
        variants.push(Statement::new(b"x", "g", 1, 2).unwrap());
        variants.push(Statement::new(b"x", "h", 2, 2).unwrap());
        variants.push(Statement::new(b"x", "h", 1, 3).unwrap());
        let msgs: std::collections::HashSet<Vec<u8>> =
            variants.iter().map(Statement::message).collect();
        assert_eq!(msgs.len(), variants.len());
        assert!(base.message().starts_with(b"apkovl-statement-v2\0sha256 "));
    }
}
