//! The certificate authorities HTTPS servers are checked against: PEM bundles given as bytes or
//! read from files (`ROOT/etc/ssl/certs/ca-certificates.crt`, the host's bundle, `--ca FILE`,
//! `SSL_CERT_FILE`). Transport security is a bonus here, not the trust anchor: indexes and
//! packages are verified by signature and hash whichever way they arrive.

use std::path::{Path, PathBuf};
use ureq::tls::{Certificate, PemItem};

/// Where Alpine and Debian keep the system bundle (relative to a root).
pub const SYSTEM_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";

/// A CA bundle could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The file could not be read.
    #[error("{}: {}", .path.display(), crate::root::io_message(.source))]
    Io {
        /// The bundle file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The bytes hold no PEM certificate, or a malformed one.
    #[error("{what}: {why}")]
    Pem {
        /// The bundle (a file name or `certificates`).
        what: String,
        /// Cause.
        why: String,
    },
}

/// Trusted certificate authorities.
#[derive(Clone, Debug, Default)]
pub struct CaBundle {
    certs: Vec<Certificate<'static>>,
}

impl CaBundle {
    /// No authority: every HTTPS server is refused (plain HTTP still works).
    pub fn empty() -> CaBundle {
        CaBundle::default()
    }

    /// Parse PEM bytes (`-----BEGIN CERTIFICATE-----` blocks; other blocks are skipped).
    pub fn from_pem(what: &str, pem: &[u8]) -> Result<CaBundle, CaError> {
        let mut b = CaBundle::empty();
        b.add_pem(what, pem)?;
        Ok(b)
    }

    /// Add the certificates of PEM bytes; at least one must be there.
    pub fn add_pem(&mut self, what: &str, pem: &[u8]) -> Result<(), CaError> {
        let before = self.certs.len();
        for item in ureq::tls::parse_pem(pem) {
            match item {
                Ok(PemItem::Certificate(c)) => self.certs.push(c),
                Ok(_) => {}
                Err(e) => {
                    return Err(CaError::Pem {
                        what: what.to_string(),
                        why: e.to_string(),
                    })
                }
            }
        }
        if self.certs.len() == before {
            return Err(CaError::Pem {
                what: what.to_string(),
                why: "no PEM certificate in it".into(),
            });
        }
        Ok(())
    }

    /// Add the certificates of a PEM file.
    pub fn add_file(&mut self, path: &Path) -> Result<(), CaError> {
        let pem = std::fs::read(path).map_err(|source| CaError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        self.add_pem(&path.display().to_string(), &pem)
    }

    /// The system bundle: `ROOT/etc/ssl/certs/ca-certificates.crt`, else the host's. Missing or
    /// unreadable bundles give an empty set (HTTPS then fails with an unknown issuer, naming the
    /// URL).
    pub fn system(root: &Path) -> CaBundle {
        let mut b = CaBundle::empty();
        for dir in [root, Path::new("/")] {
            if b.add_file(&dir.join(SYSTEM_BUNDLE)).is_ok() {
                break;
            }
        }
        b
    }

    /// Add every certificate of another bundle.
    pub fn extend(&mut self, other: &CaBundle) {
        self.certs.extend(other.certs.iter().cloned());
    }

    /// Number of certificates.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    pub(crate) fn certs(&self) -> &[Certificate<'static>] {
        &self.certs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_parsing() {
        let ca = rcgen::generate_simple_self_signed(vec!["ca.test".into()]).unwrap();
        let pem = ca.cert.pem();
        let mut b = CaBundle::from_pem("a", pem.as_bytes()).unwrap();
        assert_eq!(b.len(), 1);
        let two = format!("# comment\n{pem}\n{pem}");
        b.add_pem("b", two.as_bytes()).unwrap();
        assert_eq!(b.len(), 3);
        let e = CaBundle::from_pem("x.pem", b"not pem").unwrap_err();
        assert_eq!(e.to_string(), "x.pem: no PEM certificate in it");
        let e = CaBundle::empty()
            .add_file(Path::new("/nonexistent/ca.pem"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "/nonexistent/ca.pem: No such file or directory"
        );
    }
}
