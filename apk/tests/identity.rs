//! The package identity check (issue 9 part 4): a package installed from a signed index must be
//! the one its entry names, for every identity kind apk-tools knows, and an entry without an
//! identity does not let an unsigned package through. apk-tools 2.14.4 installs a package whose
//! entry has a wrong `Q2` identity or none at all (checked in the oracle); these tests pin that we
//! do not.

mod common;

use apk::mkpkg::{self, Recipe};
use apk::trust::PrivateKey;
use base64::Engine;
use common::*;
use sha1::{Digest, Sha1};
use sha2::Sha256;
use std::path::{Path, PathBuf};

struct Case {
    _t: tempfile::TempDir,
    dir: PathBuf,
    keys: PathBuf,
    key: PrivateKey,
    pkg: Vec<u8>,
}

/// An unsigned package `idt-1.0-r0` (as a repository holds it), a trusted key, and the bytes the
/// identity covers (the control member: the package has a datahash).
fn case(signing_key: Option<&PrivateKey>) -> (Case, Vec<u8>) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().to_path_buf();
    let payload = dir.join("payload");
    std::fs::create_dir_all(payload.join("usr/share/idt")).unwrap();
    std::fs::write(payload.join("usr/share/idt/file"), "installed\n").unwrap();
    let recipe = Recipe {
        info: vec![
            ("pkgname".into(), "idt".into()),
            ("pkgver".into(), "1.0-r0".into()),
        ],
        scripts: vec![],
        dir: Some(payload),
        epoch: Some(1_700_000_000),
    };
    let pkg = mkpkg::build(&recipe, signing_key.map(|k| (k, "pkg.pub"))).unwrap();
    // The control member follows the signature member, if any.
    let first = apk::gzip::inflate_member(&pkg, 0, 1 << 20).unwrap();
    let control = if signing_key.is_some() {
        apk::gzip::inflate_member(&pkg, first.range.end, 1 << 20)
            .unwrap()
            .range
    } else {
        first.range
    };
    let covered = pkg[control].to_vec();
    let key = PrivateKey::generate_ed25519();
    let keys = dir.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(keys.join("test.pub"), key.public().to_pem()).unwrap();
    if let Some(k) = signing_key {
        std::fs::write(keys.join("pkg.pub"), k.public().to_pem()).unwrap();
    }
    (
        Case {
            _t: t,
            dir,
            keys,
            key,
            pkg,
        },
        covered,
    )
}

impl Case {
    /// A repository whose signed index lists the package with `identity` (`None`: no `C:`), and
    /// `apk add idt` from it into a fresh root.
    fn install(
        &self,
        name: &str,
        identity: Option<&str>,
        extra: &[&str],
    ) -> (Option<i32>, String, PathBuf) {
        let repo = self.dir.join(format!("repo-{name}"));
        std::fs::create_dir_all(repo.join("x86_64")).unwrap();
        std::fs::write(repo.join("x86_64/idt-1.0-r0.apk"), &self.pkg).unwrap();
        let c = identity.map(|i| format!("C:{i}\n")).unwrap_or_default();
        let index_text = format!(
            "{c}P:idt\nV:1.0-r0\nA:x86_64\nS:{}\nI:10\nT:identity test\nU:\nL:MIT\n\n",
            self.pkg.len()
        );
        let body = apk::archive::index_body(&index_text, None, 0);
        let signed = apk::archive::resign(&body, &self.key, "test.pub").unwrap();
        std::fs::write(repo.join("x86_64/APKINDEX.tar.gz"), signed).unwrap();
        let root = self.dir.join(format!("root-{name}"));
        let mut args = vec![
            "add",
            "--root",
            root.to_str().unwrap(),
            "--initdb",
            "--no-network",
            "--keys-dir",
            self.keys.to_str().unwrap(),
            "--repository",
            repo.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args.push("idt");
        let o = run_apk(&args);
        (o.status.code(), text(&o).1, root)
    }
}

fn installed(root: &Path) -> bool {
    root.join("usr/share/idt/file").exists()
}

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

/// Every identity kind, when right, lets the package install.
#[test]
fn every_identity_kind_apk_tools_knows_is_verified() {
    let (c, covered) = case(None);
    let sha1 = Sha1::digest(&covered);
    let sha256 = Sha256::digest(&covered);
    for (kind, id) in [
        ("q1", format!("Q1{}", b64(&sha1))),
        ("x1", format!("X1{}", hex::encode(sha1))),
        ("q2", format!("Q2{}", b64(&sha256))),
        ("x2", format!("X2{}", hex::encode(sha256))),
        // apk-tools 2.14 compares a legacy 32-hex identity with the SHA-1's first 16 bytes.
        ("legacy", hex::encode(&sha1[..16])),
    ] {
        let (code, err, root) = c.install(kind, Some(&id), &[]);
        assert_eq!((code, err.as_str()), (Some(0), ""), "{kind} {id}");
        assert!(installed(&root), "{kind}");
    }
}

/// Regression: the check ran for 20-byte identities only, so a wrong `Q2`/`X2` or legacy
/// identity installed whatever package file was there.
#[test]
fn wrong_identity_of_any_kind_is_refused() {
    let (c, covered) = case(None);
    let sha1 = Sha1::digest(&covered);
    let mut other = covered.clone();
    other[20] ^= 1;
    for (kind, id) in [
        ("q1", format!("Q1{}", b64(&Sha1::digest(&other)))),
        ("q2", format!("Q2{}", b64(&Sha256::digest(&other)))),
        ("x2", format!("X2{}", hex::encode(Sha256::digest(&other)))),
        // An MD5 of the control member is not what apk-tools compares either.
        ("md5", hex::encode(&Sha256::digest(&covered)[..16])),
        ("legacy", hex::encode(&Sha1::digest(&other)[..16])),
        // A SHA-256 identity must not pass with the SHA-1 in its first bytes.
        (
            "q2sha1",
            format!("Q2{}", b64(&[&sha1[..], &[0u8; 12]].concat())),
        ),
    ] {
        let (code, err, root) = c.install(kind, Some(&id), &[]);
        assert_eq!(code, Some(1), "{kind} {id}: {err}");
        assert_eq!(
            err, "ERROR: idt-1.0-r0: v2 package integrity error\n",
            "{kind}"
        );
        assert!(
            !installed(&root),
            "{kind}: the package must not be installed"
        );
    }
}

/// Regression: an entry without `C:` in a signed index let an unsigned package install. Now it
/// needs a trusted signature of its own, or `--allow-untrusted`.
#[test]
fn entry_without_identity_needs_a_trusted_signature_or_allow_untrusted() {
    let (c, _) = case(None);
    let (code, err, root) = c.install("none", None, &[]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        err,
        "ERROR: idt-1.0-r0: no identity (C:) in the index and no trusted signature (--allow-untrusted installs it anyway)\n"
    );
    assert!(!installed(&root));
    let (code, err, root) = c.install("none-allowed", None, &["--allow-untrusted"]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    assert!(installed(&root));
    // Signed by a trusted key: its own signature vouches for it.
    let signer = PrivateKey::generate_ed25519();
    let (signed, _) = case(Some(&signer));
    let (code, err, root) = signed.install("signed", None, &[]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    assert!(installed(&root));
}

impl Case {
    /// A cache directory whose unsigned `installed` file lists the package with its right
    /// identity, the package file beside it under apk-tools' cache name, and `apk add idt` with
    /// that cache and no repository.
    fn install_from_cache(&self, name: &str, extra: &[&str]) -> (Option<i32>, String, PathBuf) {
        let cache = self.dir.join(format!("cache-{name}"));
        std::fs::create_dir_all(&cache).unwrap();
        let opened = apk::archive::open_package(
            &self.pkg,
            &apk::archive::Mode::Verify {
                keys: &apk::trust::Keyring::default(),
                allow_untrusted: true,
            },
        )
        .unwrap();
        let mut entry = opened.info.clone();
        entry.size = self.pkg.len() as u64;
        std::fs::write(cache.join(apk::cache::package_name(&entry)), &self.pkg).unwrap();
        std::fs::write(
            cache.join("installed"),
            format!(
                "C:Q1{}\nP:idt\nV:1.0-r0\nA:x86_64\nS:{}\nI:10\nT:t\nU:\nL:MIT\n\n",
                b64(&entry.identity.0),
                self.pkg.len()
            ),
        )
        .unwrap();
        let root = self.dir.join(format!("root-{name}"));
        let mut args = vec![
            "add",
            "--root",
            root.to_str().unwrap(),
            "--initdb",
            "--no-network",
            "--keys-dir",
            self.keys.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args.push("idt");
        let o = run_apk(&args);
        (o.status.code(), text(&o).1, root)
    }
}

/// Review finding: `<cache>/installed` is not signed, so whoever writes the cache (a boot
/// medium's `cache/`) could list a package of their own with its right identity and have it
/// installed and its scripts run. A package known only from there needs its own trusted
/// signature, or `--allow-untrusted`.
#[test]
fn a_package_listed_only_in_the_cache_needs_a_trusted_signature() {
    let (c, _) = case(None);
    let (code, err, root) = c.install_from_cache("unsigned", &[]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        err,
        "ERROR: idt-1.0-r0: listed only in the cache's installed file, not in a signed index, and it carries no trusted signature (--allow-untrusted installs it anyway)\n"
    );
    assert!(!installed(&root));
    let (code, err, root) = c.install_from_cache("allowed", &["--allow-untrusted"]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    assert!(installed(&root));
    let signer = PrivateKey::generate_ed25519();
    let (signed, _) = case(Some(&signer));
    let (code, err, root) = signed.install_from_cache("signed", &[]);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    assert!(installed(&root));
}
