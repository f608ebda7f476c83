//! Helpers shared by the apk integration tests: fixture paths, Alpine's keys, tree snapshots.

#![allow(dead_code)]

pub mod server;

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn shared() -> PathBuf {
    std::env::var_os("SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
}

pub fn alpine_repo() -> PathBuf {
    shared().join("fixtures/alpine-3.19.1/apks")
}

pub fn abuild_repo() -> PathBuf {
    shared().join("fixtures/abuild-repo")
}

pub fn apk_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_apk"))
}

/// A directory with Alpine's public keys (from the minirootfs), extracted once.
pub fn alpine_keys() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("apk-test-keys-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let st = Command::new("tar")
            .arg("xzf")
            .arg(shared().join("fixtures/alpine-minirootfs-3.20.3-x86_64.tar.gz"))
            .arg("-C")
            .arg(&d)
            .arg("./etc/apk/keys")
            .status()
            .unwrap();
        assert!(st.success(), "extracting keys");
        d.join("etc/apk/keys")
    })
    .clone()
}

/// Copy Alpine's keys into `root/etc/apk/keys`.
pub fn install_keys(root: &Path) {
    let dst = root.join("etc/apk/keys");
    std::fs::create_dir_all(&dst).unwrap();
    // Explicit modes: a commit on another test thread sets the process umask to 0 while it runs,
    // so what create_dir_all made depends on timing.
    for d in ["etc", "etc/apk", "etc/apk/keys"] {
        std::fs::set_permissions(root.join(d), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for e in std::fs::read_dir(alpine_keys()).unwrap().flatten() {
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
}

pub fn run_apk(args: &[&str]) -> Output {
    Command::new(apk_bin())
        .args(args)
        .env_clear()
        .output()
        .unwrap()
}

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// One entry of a tree snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub extra: String,
}

/// Every path under `root` (not descending into proc/sys/dev mounts) with type, mode, owner, link
/// target or content digest.
pub fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<String, Node>) {
        let dir = root.join(rel);
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for n in names {
            let r = rel.join(&n);
            let p = root.join(&r);
            let m = std::fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let (kind, extra) = if ft.is_dir() {
                ("dir", String::new())
            } else if ft.is_symlink() {
                (
                    "symlink",
                    std::fs::read_link(&p)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                )
            } else if ft.is_file() {
                use sha2::Digest;
                (
                    "file",
                    hex::encode(sha2::Sha256::digest(std::fs::read(&p).unwrap())),
                )
            } else if ft.is_char_device() {
                ("chr", format!("{}", m.rdev()))
            } else if ft.is_block_device() {
                ("blk", format!("{}", m.rdev()))
            } else {
                ("other", String::new())
            };
            let key = r.to_string_lossy().into_owned();
            out.insert(
                key.clone(),
                Node {
                    kind,
                    mode: m.mode() & 0o7777,
                    uid: m.uid(),
                    gid: m.gid(),
                    extra,
                },
            );
            // Do not descend into mounts (proc, a bind-mounted dev).
            let same_fs = std::fs::symlink_metadata(root)
                .map(|rm| rm.dev() == m.dev())
                .unwrap_or(false);
            if ft.is_dir() && same_fs {
                walk(root, &r, out);
            }
        }
    }
    walk(root, Path::new(""), &mut out);
    out
}
