//! Fixture access for the unit tests: the read-only material in `../shared/fixtures`.

use crate::trust::Keyring;
use std::path::PathBuf;

/// Path of a fixture (`SHARED_DIR` or `<workspace>/../shared`).
pub fn fixture_path(rel: &str) -> PathBuf {
    let shared = std::env::var_os("SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    shared.join("fixtures").join(rel)
}

/// Bytes of a fixture.
pub fn fixture(rel: &str) -> Vec<u8> {
    let p = fixture_path(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Extract `members` (paths like `./etc/apk/keys`) of Alpine's minirootfs into a temp dir.
pub fn minirootfs(members: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let st = std::process::Command::new("tar")
        .arg("xzf")
        .arg(fixture_path("alpine-minirootfs-3.20.3-x86_64.tar.gz"))
        .arg("-C")
        .arg(dir.path())
        .args(members)
        .status()
        .expect("tar");
    assert!(st.success(), "extracting {members:?} from the minirootfs");
    dir
}

/// Alpine's public keys.
pub fn alpine_keys() -> Keyring {
    let d = minirootfs(&["./etc/apk/keys"]);
    Keyring::load(&d.path().join("etc/apk/keys"))
}
