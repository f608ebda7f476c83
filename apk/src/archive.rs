//! v2 package and index files: gzip member boundaries, signature/control/data sections, and the
//! three verification modes of apk-tools (apk-format.md §1.3-1.7, §2).
//!
//! Packages are read into memory (they are small next to the RAM they are installed into) so the
//! digests over the raw *compressed* bytes can be checked before a single file is written. The
//! gzip members themselves are found and inflated by [`crate::gzip`].

use crate::gzip::{self, inflate_member, DataStream, GzipError, Member};
use crate::package::{Checksum, Package};
use crate::tar::{self, Entry, Kind};
use crate::trust::{Alg, Keyring, PrivateKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::ops::Range;

/// Why a package or index was rejected (strings are apk-tools v3's, apk-format.md §1.7).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArchiveError {
    /// No `.SIGN` entry names a trusted key.
    #[error("UNTRUSTED signature")]
    Untrusted,
    /// A trusted key's signature did not verify.
    #[error("BAD signature")]
    BadSignature,
    /// Identity (`C:`) or `datahash` mismatch.
    #[error("v2 package integrity error")]
    Integrity,
    /// Structural problem in a package.
    #[error("v2 package format error ({0})")]
    Format(String),
    /// Structural problem in an index.
    #[error("v2 index format error ({0})")]
    IndexFormat(String),
    /// Truncated stream, trailing garbage or a broken gzip member.
    #[error("unexpected end of file")]
    Eof,
}

impl From<GzipError> for ArchiveError {
    fn from(e: GzipError) -> Self {
        match e {
            GzipError::Truncated => ArchiveError::Eof,
            GzipError::TooLarge | GzipError::TrailingMember => ArchiveError::Format(e.to_string()),
        }
    }
}

impl From<tar::TarError> for ArchiveError {
    fn from(e: tar::TarError) -> Self {
        match e {
            tar::TarError::Eof => ArchiveError::Eof,
            tar::TarError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                ArchiveError::Eof
            }
            other => ArchiveError::Format(other.to_string()),
        }
    }
}

/// Leading signature members: each holds only `.SIGN.*` entries.
struct Signatures {
    /// `(algorithm, key name, signature bytes)` in archive order.
    entries: Vec<(Option<Alg>, String, Vec<u8>)>,
    /// Where the signed/hashed region starts.
    end: usize,
    /// The first non-signature member, already inflated.
    next: Option<Member>,
}

const SMALL_MEMBER: usize = 16 << 20;

fn read_signatures(buf: &[u8]) -> Result<Signatures, ArchiveError> {
    let mut entries = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let m = inflate_member(buf, pos, SMALL_MEMBER)?;
        let mut r = tar::Reader::new_section(&m.data[..]);
        let mut sigs = Vec::new();
        let mut all_sign = true;
        let mut any = false;
        while let Some(e) = r.next_entry()? {
            any = true;
            if !e.name.starts_with(".SIGN.") || e.name.contains('/') {
                all_sign = false;
                break;
            }
            // Entries over 64 KiB are ignored (apk-format.md §1.5).
            let body = if e.size <= 65536 {
                r.read_all(65536)?
            } else {
                Vec::new()
            };
            let alg = Alg::parse_entry(&e.name);
            let key = alg.map(|(_, k)| k.to_string()).unwrap_or_default();
            sigs.push((alg.map(|(a, _)| a), key, body));
        }
        if !any || !all_sign {
            return Ok(Signatures {
                entries,
                end: pos,
                next: Some(m),
            });
        }
        entries.extend(sigs);
        pos = m.range.end;
    }
    Ok(Signatures {
        entries,
        end: pos,
        next: None,
    })
}

/// Pick the first signature whose key is trusted and check it over `signed`.
fn check_signature(
    sigs: &[(Option<Alg>, String, Vec<u8>)],
    keys: &Keyring,
    signed: &[u8],
    allow_untrusted: bool,
) -> Result<Option<String>, ArchiveError> {
    for (alg, key, sig) in sigs {
        let (Some(alg), false) = (alg, sig.is_empty()) else {
            continue;
        };
        if let Some(k) = keys.get(key) {
            return if k.verify(*alg, signed, sig) {
                Ok(Some(key.clone()))
            } else {
                Err(ArchiveError::BadSignature)
            };
        }
    }
    if allow_untrusted {
        Ok(None)
    } else {
        Err(ArchiveError::Untrusted)
    }
}

/// How a package is checked (apk-format.md §1.7).
#[derive(Clone, Debug)]
pub enum Mode<'a> {
    /// `apk verify`: the signature must verify with a trusted key.
    Verify {
        /// Trusted keys.
        keys: &'a Keyring,
        /// Accept a package without a trusted key (never a bad signature).
        allow_untrusted: bool,
    },
    /// Installing a package known from an index or the database: signatures are skipped, the
    /// control member must hash to the expected identity, of whichever kind it is
    /// ([`Checksum::identifies`]); an empty identity identifies nothing.
    Identity(&'a Checksum),
}

/// Control scripts stored by apk.
pub const SCRIPTS: [&str; 7] = [
    "pre-install",
    "post-install",
    "pre-deinstall",
    "post-deinstall",
    "pre-upgrade",
    "post-upgrade",
    "trigger",
];

/// A package whose control section was read and whose digests were checked.
#[derive(Debug)]
pub struct OpenedPackage {
    /// Metadata from `.PKGINFO` (identity and size filled in).
    pub info: Package,
    /// Scripts by name (`post-install`, ...).
    pub scripts: Vec<(String, Vec<u8>)>,
    /// The signing key when a signature was verified.
    pub signed_by: Option<String>,
    /// Compressed data member range.
    pub data: Range<usize>,
    /// Whether the data member is covered by `datahash` (else by the signature/identity).
    pub has_datahash: bool,
}

/// Read and check a package's signature and control sections and its data digest.
pub fn open_package(buf: &[u8], mode: &Mode<'_>) -> Result<OpenedPackage, ArchiveError> {
    let sigs = read_signatures(buf)?;
    let control = sigs
        .next
        .ok_or_else(|| ArchiveError::Format("no control section".into()))?;
    let mut r = tar::Reader::new_section(&control.data[..]);
    let mut pkginfo: Option<String> = None;
    let mut scripts = Vec::new();
    while let Some(e) = r.next_entry()? {
        if !e.name.starts_with('.') || e.name.contains('/') {
            // Legacy layout where control and data share a member: not produced by any current
            // abuild and refused by v3 once a datahash is present. We refuse it outright.
            return Err(ArchiveError::Format(format!(
                "data entry '{}' inside the control section",
                e.name
            )));
        }
        if e.name.starts_with(".SIGN.") {
            return Err(ArchiveError::Format(
                "signature inside the control section".into(),
            ));
        }
        match e.name.as_str() {
            ".PKGINFO" => {
                pkginfo = Some(
                    String::from_utf8(r.read_all(1 << 20)?)
                        .map_err(|_| ArchiveError::Format(".PKGINFO is not UTF-8".into()))?,
                )
            }
            ".INSTALL" => {
                return Err(ArchiveError::Format(
                    ".INSTALL scripts are not supported".into(),
                ))
            }
            n if SCRIPTS.contains(&&n[1..]) => {
                scripts.push((n[1..].to_string(), r.read_all(16 << 20)?))
            }
            _ => {}
        }
    }
    let text = pkginfo.ok_or_else(|| ArchiveError::Format("missing .PKGINFO".into()))?;
    let mut info =
        Package::from_pkginfo(&text).map_err(|e| ArchiveError::Format(format!(".PKGINFO: {e}")))?;
    let has_datahash = info.datahash.is_some();
    let data_start = control.range.end;
    if data_start >= buf.len() {
        return Err(ArchiveError::Format("missing data section".into()));
    }
    // With a datahash the control member is signed and identifies the package; without one
    // (legacy) control and data are covered together.
    let covered = if has_datahash {
        &buf[control.range.clone()]
    } else {
        &buf[control.range.start..]
    };
    let signed_by = match mode {
        Mode::Identity(expected) => {
            if !expected.identifies(covered) {
                return Err(ArchiveError::Integrity);
            }
            None
        }
        Mode::Verify {
            keys,
            allow_untrusted,
        } => check_signature(&sigs.entries, keys, covered, *allow_untrusted)?,
    };
    if let Some(dh) = &info.datahash {
        let got = hex::encode(Sha256::digest(&buf[data_start..]));
        if !got.eq_ignore_ascii_case(dh.trim()) {
            return Err(ArchiveError::Integrity);
        }
    }
    info.identity = Checksum(Sha1::digest(covered).to_vec());
    info.size = buf.len() as u64;
    Ok(OpenedPackage {
        info,
        scripts,
        signed_by,
        data: data_start..buf.len(),
        has_datahash,
    })
}

/// Iterate the data section of an opened package.
pub fn data_reader(buf: &[u8], range: Range<usize>) -> tar::Reader<DataStream<'_>> {
    tar::Reader::new(DataStream::new(&buf[range]))
}

/// A verified `APKINDEX.tar.gz`.
#[derive(Debug)]
pub struct IndexFile {
    /// `DESCRIPTION` (≤ 160 bytes used).
    pub description: Option<String>,
    /// `APKINDEX` text.
    pub text: String,
    /// Signing key name, when signed by a trusted key.
    pub signed_by: Option<String>,
}

/// Read and verify an index file.
pub fn open_index(
    buf: &[u8],
    keys: &Keyring,
    allow_untrusted: bool,
) -> Result<IndexFile, ArchiveError> {
    let fmt = |s: &str| ArchiveError::IndexFormat(s.to_string());
    let sigs = read_signatures(buf).map_err(|e| match e {
        ArchiveError::Format(s) => ArchiveError::IndexFormat(s),
        e => e,
    })?;
    let signed_by = check_signature(&sigs.entries, keys, &buf[sigs.end..], allow_untrusted)?;
    let first = sigs.next.ok_or_else(|| fmt("no index content"))?;
    let mut data = first.data;
    let mut pos = first.range.end;
    while pos < buf.len() {
        let room = crate::limits::INDEX_CONTENT.saturating_sub(data.len());
        let m = inflate_member(buf, pos, room)?;
        data.extend_from_slice(&m.data);
        pos = m.range.end;
    }
    let mut r = tar::Reader::new(&data[..]);
    let (mut description, mut text_at, mut dotfiles) = (None, None, false);
    let tar_error = |e: tar::TarError| match e {
        tar::TarError::Eof => ArchiveError::Eof,
        e => ArchiveError::IndexFormat(e.to_string()),
    };
    while let Some(e) = r.next_entry().map_err(tar_error)? {
        match e.name.as_str() {
            "DESCRIPTION" => {
                let d = r
                    .read_all(4096)
                    .map_err(|e| ArchiveError::IndexFormat(e.to_string()))?;
                if d.len() <= 160 {
                    description = Some(String::from_utf8_lossy(&d).trim_end().to_string());
                }
            }
            "APKINDEX" => {
                // Where the text is in `data`: it is cut out of that buffer below, not copied.
                let t = r.content().map_err(tar_error)?;
                let start = t.as_ptr() as usize - data.as_ptr() as usize;
                text_at = Some(start..start + t.len());
            }
            n if n.starts_with('.') => dotfiles = true,
            _ => {}
        }
    }
    if dotfiles {
        return Err(fmt("index mixed with package files"));
    }
    let at = text_at.ok_or_else(|| fmt("no APKINDEX"))?;
    let len = at.len();
    data.copy_within(at, 0);
    data.truncate(len);
    data.shrink_to_fit();
    // apk-tools reads bytes: a stray non-UTF-8 byte (say, in a description) must not cost the
    // whole index. Replaced bytes make at worst that one entry unusable.
    let text = match String::from_utf8(data) {
        Ok(t) => t,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    Ok(IndexFile {
        description,
        text,
        signed_by,
    })
}

/// A signature member for `signed` bytes: tar with one `.SIGN.<ALG>.<keyname>` entry, cut.
pub fn signature_member(
    key: &PrivateKey,
    keyname: &str,
    signed: &[u8],
    mtime: u64,
) -> Result<Vec<u8>, crate::trust::KeyError> {
    let alg = key.default_alg();
    let sig = key.sign(alg, signed)?;
    let mut e = Entry::new(
        &format!(".SIGN.{}.{}", alg.tag(), keyname),
        Kind::File,
        0o644,
    );
    e.mtime = mtime;
    let mut w = tar::Writer::new(Vec::new(), tar::Magic::Gnu);
    w.pax_extras = false;
    w.append(&e, &sig)
        .map_err(|e| crate::trust::KeyError::Sign(e.to_string()))?;
    Ok(gzip::compress(&w.into_inner_cut().map_err(|e| {
        crate::trust::KeyError::Sign(e.to_string())
    })?))
}

/// The time stamp for generated archives: `SOURCE_DATE_EPOCH`, else now.
pub fn build_time() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        })
}

/// Build an unsigned `APKINDEX.tar.gz` body (the part a signature covers).
pub fn index_body(text: &str, description: Option<&str>, mtime: u64) -> Vec<u8> {
    let mut w = tar::Writer::new(Vec::new(), tar::Magic::Gnu);
    w.pax_extras = false;
    let mut push = |name: &str, body: &[u8]| {
        let mut e = Entry::new(name, Kind::File, 0o644);
        e.mtime = mtime;
        let _ = w.append(&e, body);
    };
    if let Some(d) = description {
        push("DESCRIPTION", d.as_bytes());
    }
    push("APKINDEX", text.as_bytes());
    gzip::compress(&w.finish().unwrap_or_default())
}

/// Re-sign an index or package: drop its signature members and prepend a new one. For packages
/// with a datahash only the control member is signed; indexes and legacy packages are signed over
/// everything after the signature.
pub fn resign(buf: &[u8], key: &PrivateKey, keyname: &str) -> Result<Vec<u8>, ResignError> {
    let sigs = read_signatures(buf).map_err(ResignError::Archive)?;
    let first = sigs.next.ok_or(ResignError::Archive(ArchiveError::Format(
        "nothing to sign".into(),
    )))?;
    let mut r = tar::Reader::new_section(&first.data[..]);
    let mut signed = &buf[sigs.end..];
    if let Ok(Some(e)) = r.next_entry() {
        if e.name == ".PKGINFO" {
            let text = String::from_utf8_lossy(
                &r.read_all(1 << 20)
                    .map_err(|e| ResignError::Archive(e.into()))?,
            )
            .into_owned();
            if text.lines().any(|l| l.starts_with("datahash = ")) {
                signed = &buf[first.range.clone()];
            }
        }
    }
    let mut out = signature_member(key, keyname, signed, build_time()).map_err(ResignError::Key)?;
    out.extend_from_slice(&buf[sigs.end..]);
    Ok(out)
}

/// Failure of [`resign`].
#[derive(Debug, thiserror::Error)]
pub enum ResignError {
    /// The input is not a valid package or index.
    #[error("{0}")]
    Archive(ArchiveError),
    /// Signing failed.
    #[error("{0}")]
    Key(crate::trust::KeyError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::PublicKey;

    use crate::testutil::{alpine_keys, fixture};

    #[test]
    fn worked_example_busybox_binsh() {
        let buf = fixture("alpine-3.19.1/apks/x86_64/busybox-binsh-1.36.1-r15.apk");
        let keys = alpine_keys();
        let p = open_package(
            &buf,
            &Mode::Verify {
                keys: &keys,
                allow_untrusted: false,
            },
        )
        .unwrap();
        assert_eq!(
            p.info.identity.to_string(),
            "Q1oLisfZGMCPUKyVfkRHKxsHWJ/Fg="
        );
        assert_eq!(
            p.signed_by.as_deref(),
            Some("alpine-devel@lists.alpinelinux.org-6165ee59.rsa.pub")
        );
        let id = p.info.identity.clone();
        let p2 = open_package(&buf, &Mode::Identity(&id)).unwrap();
        let mut r = data_reader(&buf, p2.data.clone());
        let mut names = Vec::new();
        while let Some(e) = r.next_entry().unwrap() {
            names.push(e.name);
        }
        assert!(names.contains(&"bin/sh".to_string()), "{names:?}");
    }

    #[test]
    fn third_party_package_identity() {
        let buf = fixture("abuild-repo/libglvnd-0-r1.apk");
        let p = open_package(
            &buf,
            &Mode::Verify {
                keys: &Keyring::default(),
                allow_untrusted: true,
            },
        )
        .unwrap();
        assert_eq!(
            p.info.identity.to_string(),
            "Q1jeRAF+EpaHQSmKZxtA9fmuD6Hv8="
        );
        assert!(p.signed_by.is_none());
        assert_eq!(
            open_package(
                &buf,
                &Mode::Verify {
                    keys: &Keyring::default(),
                    allow_untrusted: false
                }
            )
            .unwrap_err(),
            ArchiveError::Untrusted
        );
    }

    #[test]
    fn flipped_bytes_are_caught() {
        let buf = fixture("alpine-3.19.1/apks/x86_64/busybox-binsh-1.36.1-r15.apk");
        let keys = alpine_keys();
        let good = open_package(
            &buf,
            &Mode::Verify {
                keys: &keys,
                allow_untrusted: false,
            },
        )
        .unwrap();
        let id = good.info.identity.clone();
        for pos in [20usize, 300, 700, 1000, 1300, buf.len() - 20, buf.len() - 3] {
            let mut bad = buf.clone();
            bad[pos] ^= 0x40;
            let v = open_package(
                &bad,
                &Mode::Verify {
                    keys: &keys,
                    allow_untrusted: true,
                },
            );
            let i = open_package(&bad, &Mode::Identity(&id));
            assert!(v.is_err() || i.is_err(), "flip at {pos} accepted");
            if pos >= good.data.start {
                assert!(i.is_err(), "identity mode accepted flipped data at {pos}");
            }
        }
        for cut in [0usize, 10, 600, 1100, buf.len() - 1] {
            assert!(
                open_package(&buf[..cut], &Mode::Identity(&id)).is_err(),
                "truncation at {cut} accepted"
            );
        }
    }

    #[test]
    fn fixture_index_verifies() {
        let buf = fixture("alpine-3.19.1/apks/x86_64/APKINDEX.tar.gz");
        let idx = open_index(&buf, &alpine_keys(), false).unwrap();
        assert!(idx.text.starts_with("C:"));
        assert_eq!(
            open_index(&buf, &Keyring::default(), false).unwrap_err(),
            ArchiveError::Untrusted
        );
        let mut bad = buf.clone();
        let n = bad.len();
        bad[n - 100] ^= 1;
        assert!(open_index(&bad, &alpine_keys(), false).is_err());
        assert!(open_index(&bad, &alpine_keys(), true).is_err());
        let abuild = fixture("abuild-repo/APKINDEX.tar.gz");
        let mut ring = Keyring::default();
        ring.insert(
            "antkss.rsa.pub",
            PublicKey::from_pem(&String::from_utf8(fixture("abuild-repo/antkss.rsa.pub")).unwrap())
                .unwrap(),
        );
        assert!(open_index(&abuild, &ring, false).is_ok());
    }

    #[test]
    fn index_write_sign_read() {
        let key = PrivateKey::generate_ed25519();
        let body = index_body(
            "C:Q1jeRAF+EpaHQSmKZxtA9fmuD6Hv8=\nP:x\nV:1\n\n",
            Some("test"),
            0,
        );
        let unsigned = body.clone();
        let mut ring = Keyring::default();
        ring.insert("k.pub", key.public());
        assert_eq!(
            open_index(&unsigned, &ring, false).unwrap_err(),
            ArchiveError::Untrusted
        );
        let idx = open_index(&unsigned, &ring, true).unwrap();
        assert_eq!(idx.description.as_deref(), Some("test"));
        let signed = resign(&unsigned, &key, "k.pub").unwrap();
        let idx = open_index(&signed, &ring, false).unwrap();
        assert_eq!(idx.signed_by.as_deref(), Some("k.pub"));
        let resigned = resign(&signed, &key, "k.pub").unwrap();
        assert!(open_index(&resigned, &ring, false).is_ok());
        let other = PrivateKey::generate_ed25519();
        let forged = resign(&signed, &other, "k.pub").unwrap();
        assert_eq!(
            open_index(&forged, &ring, true).unwrap_err(),
            ArchiveError::BadSignature
        );
    }
}
