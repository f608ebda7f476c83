//! Create an overlay from an edited Alpine root, restore it onto a fresh root (our apply, GNU
//! tar, busybox tar) and compare.

mod common;
use common::*;
use overlays::{
    apply, apply_deletions, create, read_members, ApplyPolicy, CreateOptions, MANIFEST,
};
use std::os::unix::fs::MetadataExt;
use std::process::Command;

fn edited_root() -> (tempfile::TempDir, std::path::PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("src");
    minirootfs(&root);
    edit(&root);
    (t, root)
}

#[test]
fn selection_follows_lbu_rules() {
    let (_t, root) = edited_root();
    let ov = create(&root, &CreateOptions::default()).unwrap();
    let m = &ov.members;
    for want in [
        "etc/motd",
        "etc/added.conf",
        "etc/shells",
        "etc/hostname",
        "etc/rel-link",
        "etc/newdir/",
        "etc/newdir/sub/",
        "etc/newdir/sub/a.conf",
        "etc/hard1.conf",
        "etc/hard2.conf",
        "etc/with space.conf",
        "etc/new\nline.conf",
        "etc/init.d/net.eth1",
        "root/.ssh/",
        "root/.ssh/authorized_keys",
        "foo.txt",
        "etc/apk/world",
        "etc/apk/repositories",
        "etc/apk/arch",
        "etc/apk/protected_paths.d/lbu.list",
    ] {
        assert!(m.iter().any(|x| x == want), "{want:?} missing from {m:#?}");
    }
    assert!(m.iter().any(|x| x.starts_with("etc/apk/keys/")));
    assert!(
        m.contains(&"etc/crontabs/".to_string()) && m.contains(&"etc/periodic/daily/".to_string())
    );
    assert!(
        !m.contains(&"etc/crontabs/root".to_string()),
        "contents of a changed directory are not implied"
    );
    assert!(m.contains(&long_name()));
    for not in [
        "etc/excluded.conf",
        "etc/init.d/regular-script",
        "root/other",
        "etc/passwd",
        "etc/securetty",
    ] {
        assert!(!m.iter().any(|x| x == not), "{not:?} must not be selected");
    }
    assert_eq!(ov.deletions, vec!["etc/securetty".to_string()]);
    // Deterministic: the same tree gives the same bytes.
    assert_eq!(
        create(&root, &CreateOptions::default()).unwrap().bytes,
        ov.bytes
    );
    // busybox-like gzip header: no name, mtime 0, OS 3.
    assert_eq!(&ov.bytes[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
}

#[test]
fn the_modloop_is_never_saved_even_when_included() {
    let (_t, root) = edited_root();
    std::fs::create_dir_all(root.join(".modloop/modules/6.1.0-13-amd64/kernel")).unwrap();
    std::fs::write(
        root.join(".modloop/modules/6.1.0-13-amd64/kernel/wg.ko"),
        b"ko",
    )
    .unwrap();
    std::fs::write(root.join(".modloop/file"), b"x").unwrap();
    let list = root.join("etc/apk/protected_paths.d/lbu.list");
    let mut text = std::fs::read_to_string(&list).unwrap_or_default();
    text.push_str("+.modloop\n+.modloop/file\n");
    std::fs::write(&list, text).unwrap();
    let ov = create(&root, &CreateOptions::default()).unwrap();
    assert!(
        !ov.members.iter().any(|m| m.starts_with(".modloop")),
        "{:#?}",
        ov.members
    );
    assert!(ov.members.iter().any(|m| m == "etc/motd"));
}

#[test]
fn non_utf8_names_are_a_clear_error() {
    use std::os::unix::ffi::OsStrExt;
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("src");
    minirootfs(&root);
    std::fs::write(
        root.join("etc")
            .join(std::ffi::OsStr::from_bytes(b"bad\xffname")),
        "x",
    )
    .unwrap();
    let e = create(&root, &CreateOptions::default()).unwrap_err();
    assert!(matches!(e, overlays::Error::BadName(_)), "{e}");
    assert!(
        e.to_string().ends_with("file name is not valid UTF-8"),
        "{e}"
    );
}

#[test]
fn restore_onto_fresh_root_gives_back_the_edits() {
    let (t, root) = edited_root();
    let ov = create(&root, &CreateOptions::default()).unwrap();
    let fresh = t.path().join("fresh");
    minirootfs(&fresh);
    let rep = apply(&ov.bytes, &fresh, &ApplyPolicy::default()).unwrap();
    assert!(rep.refused.is_empty(), "{:?}", rep.refused);
    assert_eq!(rep.extracted, ov.members);
    assert_eq!(rep.deletions, vec!["etc/securetty".to_string()]);
    assert!(
        !fresh.join(MANIFEST).exists(),
        "the manifest is data for the init, not a file"
    );
    let del = apply_deletions(&fresh, &rep.deletions).unwrap();
    assert_eq!(del.deleted, vec!["etc/securetty".to_string()]);
    assert!(!fresh.join("etc/securetty").exists());
    for name in &ov.members {
        if name.ends_with('/') {
            continue;
        }
        assert_eq!(describe(&fresh, name), describe(&root, name));
    }
    let dm = |r: &std::path::Path| std::fs::metadata(r.join("etc/newdir")).unwrap().mode() & 0o7777;
    assert_eq!(dm(&fresh), 0o700);
    for (d, mode) in [("etc/crontabs", 0o700), ("etc/periodic/daily", 0o750)] {
        assert_eq!(
            std::fs::metadata(fresh.join(d)).unwrap().mode() & 0o7777,
            mode,
            "{d}"
        );
    }
    let (a, b) = (
        std::fs::metadata(fresh.join("etc/hard1.conf")).unwrap(),
        std::fs::metadata(fresh.join("etc/hard2.conf")).unwrap(),
    );
    assert_eq!(a.ino(), b.ino(), "hard link restored as a link");
    assert_eq!(
        std::fs::metadata(fresh.join("root")).unwrap().mode() & 0o7777,
        0o700
    );
}

#[test]
fn archive_format_is_old_gnu_with_owner_names_and_hardlinks() {
    let (t, root) = edited_root();
    let ov = create(&root, &CreateOptions::default()).unwrap();
    let p = t.path().join("h.apkovl.tar.gz");
    std::fs::write(&p, &ov.bytes).unwrap();
    let mut gz = flate2::read::GzDecoder::new(&ov.bytes[..]);
    let mut tarball = Vec::new();
    std::io::Read::read_to_end(&mut gz, &mut tarball).unwrap();
    assert_eq!(&tarball[257..265], b"ustar  \0");
    assert_eq!(tarball.len() % 512, 0);
    assert!(tarball[tarball.len() - 1024..].iter().all(|&b| b == 0));
    let listing = run(Command::new("tar").arg("-tvzf").arg(&p));
    assert!(listing.contains("nobody/nobody"), "{listing}");
    assert!(
        listing.contains("etc/hard2.conf link to etc/hard1.conf"),
        "{listing}"
    );
    assert!(listing.contains("etc/rel-link -> motd"), "{listing}");
    let bb = run(Command::new("/bin/busybox").arg("tar").arg("-tzf").arg(&p));
    assert!(bb.contains(&long_name()), "{bb}");
    let (members, deletions) = read_members(&ov.bytes).unwrap();
    assert_eq!(members.len(), ov.members.len());
    assert_eq!(deletions, vec!["etc/securetty".to_string()]);
}

fn host_tar_restores(tar: &[&str]) {
    let (t, root) = edited_root();
    let ov = create(&root, &CreateOptions::default()).unwrap();
    let p = t.path().join("h.apkovl.tar.gz");
    std::fs::write(&p, &ov.bytes).unwrap();
    let fresh = t.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    let mut cmd = Command::new(tar[0]);
    cmd.args(&tar[1..])
        .arg("-xzpf")
        .arg(&p)
        .arg("-C")
        .arg(&fresh);
    run(&mut cmd);
    for name in ov.members.iter().filter(|n| !n.ends_with('/')) {
        assert_eq!(describe(&fresh, name), describe(&root, name), "{tar:?}");
    }
    assert!(
        fresh.join(MANIFEST).is_file(),
        "Alpine's init just extracts the manifest"
    );
}

#[test]
fn gnu_tar_restores_our_overlay() {
    host_tar_restores(&["tar", "--numeric-owner"]);
}

#[test]
fn busybox_tar_restores_our_overlay() {
    host_tar_restores(&["/bin/busybox", "tar"]);
}

/// An apkovl as Alpine's lbu makes it: exactly the selected names, no recursion, old-GNU
/// headers, then gzip (overlays/README.md, "Archive format"). Debian's busybox has no `-T`, so names go as arguments.
fn alpine_style_overlay(root: &std::path::Path, names: &[String], tar: &[&str]) -> Vec<u8> {
    use std::io::Write;
    let mut cmd = Command::new(tar[0]);
    cmd.args(&tar[1..])
        .args(["-c", "-f", "-", "-C"])
        .arg(root)
        .args(names.iter().filter(|n| !n.contains('\n')));
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{tar:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&out.stdout).unwrap();
    gz.finish().unwrap()
}

#[test]
fn applies_overlays_made_by_alpine_tools() {
    let (t, root) = edited_root();
    let names = create(&root, &CreateOptions::default()).unwrap().members;
    for tar in [
        &["tar", "--format=oldgnu", "--no-recursion"][..],
        &["/bin/busybox", "tar", "--no-recursion"][..],
    ] {
        let bytes = alpine_style_overlay(&root, &names, tar);
        let fresh = t.path().join(format!("fresh-{}", tar.len()));
        minirootfs(&fresh);
        let rep = apply(&bytes, &fresh, &ApplyPolicy::default()).unwrap();
        assert!(rep.refused.is_empty(), "{tar:?}: {:?}", rep.refused);
        assert!(rep.deletions.is_empty(), "old overlays have no manifest");
        for name in names
            .iter()
            .filter(|n| !n.ends_with('/') && !n.contains('\n'))
        {
            assert_eq!(describe(&fresh, name), describe(&root, name), "{tar:?}");
        }
    }
}

#[test]
fn legacy_openssl_overlays_decrypt_and_apply() {
    let (t, root) = edited_root();
    let ov = create(&root, &CreateOptions::default()).unwrap();
    let plain = t.path().join("h.apkovl.tar.gz");
    std::fs::write(&plain, &ov.bytes).unwrap();
    for md in ["sha256", "md5"] {
        let enc = t.path().join(format!("h-{md}.apkovl.tar.gz.aes-256-cbc"));
        run(Command::new("openssl")
            .args([
                "enc",
                "-aes-256-cbc",
                "-md",
                md,
                "-salt",
                "-pass",
                "pass:PW",
                "-in",
            ])
            .arg(&plain)
            .arg("-out")
            .arg(&enc));
        let data = std::fs::read(&enc).unwrap();
        assert!(data.starts_with(b"Salted__"));
        let kind = overlays::kind_of(&enc.to_string_lossy()).unwrap();
        let gz = overlays::decrypt(&data, &kind, &overlays::Secret::Passphrase("PW")).unwrap();
        assert_eq!(gz, ov.bytes, "{md}");
        let e =
            overlays::decrypt(&data, &kind, &overlays::Secret::Passphrase("wrong")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "overlay: decryption failed: bad decrypt (wrong password or corrupted file)"
        );
        let fresh = t.path().join(format!("fresh-{md}"));
        minirootfs(&fresh);
        apply(&gz, &fresh, &ApplyPolicy::default()).unwrap();
        assert_eq!(describe(&fresh, "etc/motd"), describe(&root, "etc/motd"));
    }
    // Our legacy writer is readable by openssl.
    let ours = overlays::encrypt_legacy(&ov.bytes, overlays::Cipher::Aes256Cbc, "PW").unwrap();
    let p = t.path().join("ours.aes-256-cbc");
    std::fs::write(&p, ours).unwrap();
    let out = Command::new("openssl")
        .args([
            "enc",
            "-d",
            "-aes-256-cbc",
            "-md",
            "sha256",
            "-pass",
            "pass:PW",
            "-in",
        ])
        .arg(&p)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, ov.bytes);
}
