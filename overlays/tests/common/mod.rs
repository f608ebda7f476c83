//! Shared helpers for the overlays integration tests: a real Alpine root (the minirootfs
//! fixture, whose installed database apk wrote) and comparisons of trees.
#![allow(dead_code)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures")
        .join(name)
}

/// Extract the Alpine minirootfs (14 packages installed by apk) into `dir`.
pub fn minirootfs(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let st = Command::new("tar")
        .arg("-xzpf")
        .arg(fixture("alpine-minirootfs-3.20.3-x86_64.tar.gz"))
        .arg("-C")
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success());
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a restore must reproduce for one path: type, mode, owner, mtime, content or target.
pub fn describe(root: &Path, rel: &str) -> String {
    let p = root.join(rel.trim_end_matches('/'));
    let m = std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let what = if m.file_type().is_symlink() {
        format!("link {}", std::fs::read_link(&p).unwrap().display())
    } else if m.is_dir() {
        "dir".to_string()
    } else {
        format!(
            "file {:?}",
            String::from_utf8_lossy(&std::fs::read(&p).unwrap())
        )
    };
    let mtime = if m.file_type().is_symlink() || m.is_dir() {
        0
    } else {
        m.mtime()
    };
    format!(
        "{rel}: {what} mode {:o} {}:{} mtime {mtime}",
        m.mode() & 0o7777,
        m.uid(),
        m.gid()
    )
}

/// Edit a root the way an administrator would (every kind of change lbu must save or not).
pub fn edit(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let w = |rel: &str, s: &str| std::fs::write(root.join(rel), s).unwrap();
    w("etc/motd", "Welcome to the firewall\n");
    w("etc/added.conf", "new=1\n");
    std::fs::remove_file(root.join("etc/securetty")).unwrap();
    std::fs::set_permissions(
        root.join("etc/shells"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::os::unix::fs::chown(root.join("etc/hostname"), Some(65534), Some(65534)).unwrap();
    std::os::unix::fs::symlink("motd", root.join("etc/rel-link")).unwrap();
    std::fs::create_dir_all(root.join("etc/newdir/sub")).unwrap();
    std::fs::set_permissions(
        root.join("etc/newdir"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    w("etc/newdir/sub/a.conf", "a\n");
    w("etc/hard1.conf", "shared inode\n");
    std::fs::hard_link(root.join("etc/hard1.conf"), root.join("etc/hard2.conf")).unwrap();
    w("etc/with space.conf", "s\n");
    w("etc/new\nline.conf", "n\n");
    let long = format!("etc/{}/{}.conf", "d".repeat(60), "f".repeat(70));
    std::fs::create_dir_all(root.join(&long).parent().unwrap()).unwrap();
    w(&long, "long\n");
    std::fs::create_dir_all(root.join("etc/init.d")).unwrap();
    w("etc/init.d/regular-script", "#!/bin/sh\n");
    std::os::unix::fs::symlink("/etc/init.d/networking", root.join("etc/init.d/net.eth1")).unwrap();
    w("etc/excluded.conf", "secret\n");
    // Package-owned directories with a changed mode: archived as bare directory entries.
    std::fs::set_permissions(
        root.join("etc/crontabs"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    std::fs::set_permissions(
        root.join("etc/periodic/daily"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("root/.ssh")).unwrap();
    w("root/.ssh/authorized_keys", "ssh-ed25519 AAAA test\n");
    w("root/other", "not included\n");
    w("foo.txt", "root level\n");
    w(
        "etc/apk/protected_paths.d/lbu.list",
        "+root/.ssh\n+foo.txt\n-etc/excluded.conf\n",
    );
    w(
        "etc/apk/world",
        "alpine-baselayout\nalpine-keys\napk-tools\nbusybox\nlibc-utils\nnftables\n",
    );
}

pub fn long_name() -> String {
    format!("etc/{}/{}.conf", "d".repeat(60), "f".repeat(70))
}
