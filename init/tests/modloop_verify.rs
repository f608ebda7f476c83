//! The modloop's verification before anything is mounted (`init::boot::verify_and_mount`):
//! every refusal happens before a loop device is attached, so these run unprivileged. The
//! successful mount is exercised by the qemu boots (`qemu-tests/tests/modloop.rs`).
use std::path::Path;

use apk::trust::{Keyring, PrivateKey};
use bootspec::modloop::{Signed, Statement};
use init::boot::{verify_and_mount, ModloopError};
use init::cmdline::ModloopVerify;
use init::plan::modloop::{modloop_policy, signature_path};
use init::sys::RootDir;
use sha2::{Digest, Sha256};

const BYTES: &[u8] = b"hsqs pretend squashfs bytes, long enough to hash in more than one piece";

fn sign(key: &PrivateKey, key_name: &str, file: &str, bytes: &[u8]) -> Signed {
    let statement = Statement {
        file: file.into(),
        kernel: "6.1.0-13-amd64".into(),
        size: bytes.len() as u64,
        sha256: Sha256::digest(bytes).into(),
        key_name: key_name.into(),
        algorithm: key.default_alg().tag().into(),
    };
    let signature = key.sign(key.default_alg(), &statement.message()).unwrap();
    Signed {
        statement,
        signature,
    }
}

struct Case {
    dir: tempfile::TempDir,
    keys: Keyring,
    key: PrivateKey,
}

impl Case {
    fn new() -> Self {
        let key = PrivateKey::generate_ed25519();
        let mut keys = Keyring::default();
        keys.insert("medium.pub", key.public());
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("root")).unwrap();
        Case { dir, keys, key }
    }

    /// Writes the image and (optionally) a signature text; returns the image path.
    fn write(&self, image: &[u8], sig: Option<String>) -> std::path::PathBuf {
        let path = self.dir.path().join("modloop-lts");
        std::fs::write(&path, image).unwrap();
        if let Some(s) = sig {
            std::fs::write(signature_path(&path), s).unwrap();
        }
        path
    }

    fn run(&self, image: &Path, verify: ModloopVerify) -> Result<(), ModloopError> {
        let root = RootDir::open(&self.dir.path().join("root")).unwrap();
        let policy = modloop_policy(verify, !self.keys.is_empty());
        verify_and_mount(image, &signature_path(image), &self.keys, &policy, &root).map(|_| ())
    }
}

fn nothing_mounted(c: &Case) {
    assert!(!c.dir.path().join("root/.modloop").exists());
    assert!(!c.dir.path().join("root/lib").exists());
}

#[test]
fn a_flipped_byte_is_refused() {
    let c = Case::new();
    let mut tampered = BYTES.to_vec();
    tampered[40] ^= 1;
    let sig = sign(&c.key, "medium.pub", "modloop-lts", BYTES).render();
    let image = c.write(&tampered, Some(sig));
    let err = c.run(&image, ModloopVerify::Yes).unwrap_err();
    assert!(matches!(err, ModloopError::Hash { .. }), "{err}");
    assert!(err.to_string().ends_with(
        "modloop-lts: the contents do not match the signed SHA-256 (modified or corrupted)"
    ));
    nothing_mounted(&c);
}

#[test]
fn truncated_and_extended_files_are_refused() {
    let c = Case::new();
    let sig = sign(&c.key, "medium.pub", "modloop-lts", BYTES).render();
    for bytes in [&BYTES[..BYTES.len() - 1], &[BYTES, b"x"].concat()[..]] {
        let image = c.write(bytes, Some(sig.clone()));
        let err = c.run(&image, ModloopVerify::Yes).unwrap_err();
        assert!(matches!(err, ModloopError::Size { .. }), "{err}");
    }
    nothing_mounted(&c);
}

#[test]
fn a_signature_by_another_key_or_for_another_file_is_refused() {
    let c = Case::new();
    let stranger = PrivateKey::generate_ed25519();
    // Unknown key name.
    let image = c.write(
        BYTES,
        Some(sign(&stranger, "stranger.pub", "modloop-lts", BYTES).render()),
    );
    assert!(matches!(
        c.run(&image, ModloopVerify::Yes),
        Err(ModloopError::UntrustedKey { key, .. }) if key == "stranger.pub"
    ));
    // Another key posing under the trusted key's name.
    let image = c.write(
        BYTES,
        Some(sign(&stranger, "medium.pub", "modloop-lts", BYTES).render()),
    );
    assert!(matches!(
        c.run(&image, ModloopVerify::Yes),
        Err(ModloopError::BadSignature { .. })
    ));
    // A valid signature of modloop-virt does not vouch for modloop-lts.
    let image = c.write(
        BYTES,
        Some(sign(&c.key, "medium.pub", "modloop-virt", BYTES).render()),
    );
    let err = c.run(&image, ModloopVerify::Yes).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: the signature is for modloop-virt, not this file",
            image.display()
        )
    );
    // An edited statement (size changed to match a truncated file) breaks the signature.
    let mut s = sign(&c.key, "medium.pub", "modloop-lts", BYTES);
    s.statement.size -= 1;
    let image = c.write(&BYTES[..BYTES.len() - 1], Some(s.render()));
    assert!(matches!(
        c.run(&image, ModloopVerify::Yes),
        Err(ModloopError::BadSignature { .. })
    ));
    nothing_mounted(&c);
}

#[test]
fn unsigned_or_garbled_signatures_are_refused_even_with_modloop_verify_no() {
    let c = Case::new();
    let image = c.write(BYTES, None);
    for v in [
        ModloopVerify::Yes,
        ModloopVerify::No,
        ModloopVerify::Required,
    ] {
        let err = c.run(&image, v).unwrap_err();
        assert!(matches!(err, ModloopError::Unsigned { .. }), "{err}");
        assert!(err.to_string().contains("no signature"));
    }
    let image = c.write(BYTES, Some("modloop-signature v1\nfile: x\n".into()));
    let err = c.run(&image, ModloopVerify::Yes).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}.sig: field kernel is missing", image.display())
    );
    let image = c.write(BYTES, Some("x".repeat(20_000)));
    assert!(c
        .run(&image, ModloopVerify::Yes)
        .unwrap_err()
        .to_string()
        .contains("larger than"));
    nothing_mounted(&c);
}

#[test]
fn a_missing_file_is_one_clear_error() {
    let c = Case::new();
    let image = c.dir.path().join("modloop-lts");
    let err = c.run(&image, ModloopVerify::Yes).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}: ", image.display())),
        "{err}"
    );
}
