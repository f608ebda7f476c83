//! Overlay `.sig` files (both formats, several blocks): verification never panics, whatever the
//! bytes, and a statement it returns is about these overlay bytes. Input: overlay bytes, a NUL,
//! then the signature text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// A keys directory with one trusted ed25519 key, and that key (made once per run).
fn keys() -> &'static (std::path::PathBuf, apk::trust::PublicKey) {
    static KEYS: OnceLock<(std::path::PathBuf, apk::trust::PublicKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("overlay-sig-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let k = apk::trust::PrivateKey::generate_ed25519();
        std::fs::write(dir.join("fuzz.pub"), k.public().to_pem()).unwrap();
        (dir, k.public())
    })
}

fuzz_target!(|data: &[u8]| {
    let (overlay, sig) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    let (dir, key) = keys();
    // Nobody but the key's holder signs: a fuzzed .sig yields no signed statement.
    assert!(overlays::sign::signed_statements(sig, key).is_empty());
    if let overlays::Verification::Verified {
        statement: Some(s), ..
    } = overlays::verify(overlay, Some(sig), dir)
    {
        use sha2::Digest;
        assert_eq!(s.sha256, <[u8; 32]>::from(sha2::Sha256::digest(overlay)));
    }
});
