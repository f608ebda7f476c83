//! Hostile overlays: every bad member is refused with a reason and nothing lands outside the root.

use apk::tar::{Entry, Kind, Magic, Writer};
use overlays::{apply, ApplyPolicy, Error};
use std::os::unix::fs::MetadataExt;

fn overlay(entries: &[(Entry, &[u8])]) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), Magic::Gnu);
    w.pax_extras = false;
    for (e, d) in entries {
        w.append(e, d).unwrap();
    }
    let tarball = w.finish().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tarball).unwrap();
    gz.finish().unwrap()
}

fn file(name: &str, mode: u32) -> Entry {
    Entry::new(name, Kind::File, mode)
}

fn link(name: &str, kind: Kind, target: &str) -> Entry {
    let mut e = Entry::new(name, kind, 0o777);
    e.link = target.into();
    e
}

#[test]
fn refuses_escapes_devices_and_setuid() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let mut dev = Entry::new("etc/sda", Kind::BlockDev, 0o600);
    dev.dev = (8, 0);
    let esc = outside.to_string_lossy().into_owned();
    let bytes = overlay(&[
        (file("../evil", 0o644), b"x"),
        (file("etc/../../evil2", 0o644), b"x"),
        (file("/tmp/abs-evil", 0o644), b"x"),
        (link("etc/up", Kind::Symlink, &esc), b""),
        (file("etc/up/through", 0o644), b"x"),
        (link("etc/dots", Kind::Symlink, "../../.."), b""),
        (file("etc/dots/x", 0o644), b"x"),
        (link("etc/hl", Kind::HardLink, "../../etc/passwd"), b""),
        (dev.clone(), b""),
        (file("etc/suid", 0o4755), b"#!/bin/sh\n"),
        (file("etc/ok.conf", 0o640), b"fine\n"),
    ]);
    let rep = apply(&bytes, &root, &ApplyPolicy::default()).unwrap();
    let refused: Vec<(String, String)> = rep
        .refused
        .iter()
        .map(|r| (r.name.clone(), r.reason.clone()))
        .collect();
    assert_eq!(
        refused,
        vec![
            ("../evil".to_string(), "path contains `..`".to_string()),
            ("etc/../../evil2".into(), "path contains `..`".into()),
            ("/tmp/abs-evil".into(), "absolute path".into()),
            (
                "etc/up/through".into(),
                "path goes through symlink etc/up from this overlay".into()
            ),
            (
                "etc/dots/x".into(),
                "path goes through symlink etc/dots from this overlay".into()
            ),
            (
                "etc/hl".into(),
                "hard link target: path contains `..`".into()
            ),
            (
                "etc/sda".into(),
                "device node (not allowed by policy)".into()
            ),
            (
                "etc/suid".into(),
                "setuid/setgid file (not allowed by policy)".into()
            ),
        ]
    );
    assert_eq!(rep.extracted, vec!["etc/up", "etc/dots", "etc/ok.conf"]);
    assert!(
        std::fs::read_dir(&outside).unwrap().next().is_none(),
        "nothing written outside the root"
    );
    assert!(!t.path().join("evil").exists() && !t.path().join("evil2").exists());
    assert!(!std::path::Path::new("/tmp/abs-evil").exists());
    assert_eq!(
        std::fs::metadata(root.join("etc/ok.conf")).unwrap().mode() & 0o7777,
        0o640
    );

    // Asked for: devices and setuid files are created.
    let root2 = t.path().join("root2");
    std::fs::create_dir(&root2).unwrap();
    let bytes = overlay(&[(dev, b""), (file("etc/suid", 0o4755), b"x")]);
    let rep = apply(
        &bytes,
        &root2,
        &ApplyPolicy {
            allow_devices: true,
            allow_setid: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(rep.refused.is_empty());
    let m = std::fs::symlink_metadata(root2.join("etc/sda")).unwrap();
    assert_eq!(m.rdev(), libc::makedev(8, 0));
    assert_eq!(
        std::fs::metadata(root2.join("etc/suid")).unwrap().mode() & 0o7777,
        0o4755
    );
}

#[test]
fn old_style_directory_members_and_duplicates() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let bytes = overlay(&[
        (file("etc/old-style/", 0o750), b""),
        (file("etc/old-style/a", 0o644), b"1"),
        (file("etc/old-style/a", 0o600), b"2"),
        (file("./", 0o777), b""),
    ]);
    let rep = apply(&bytes, &root, &ApplyPolicy::default()).unwrap();
    assert!(rep.refused.is_empty(), "{:?}", rep.refused);
    assert_eq!(rep.extracted, vec!["etc/old-style/", "etc/old-style/a"]);
    let d = std::fs::metadata(root.join("etc/old-style")).unwrap();
    assert!(d.is_dir());
    assert_eq!(d.mode() & 0o7777, 0o750);
    // The later member wins, as with tar; the root's own mode is never taken from the archive.
    assert_eq!(std::fs::read(root.join("etc/old-style/a")).unwrap(), b"2");
    assert_eq!(
        std::fs::metadata(root.join("etc/old-style/a"))
            .unwrap()
            .mode()
            & 0o7777,
        0o600
    );
    assert_ne!(std::fs::metadata(&root).unwrap().mode() & 0o7777, 0o777);
}

#[test]
fn existing_symlinks_in_the_root_stay_inside_it() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::os::unix::fs::symlink("/usr/bin", root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    // A pre-existing absolute symlink at the final name is replaced, never written through.
    std::os::unix::fs::symlink("/etc/shadow-outside", root.join("etc/target")).unwrap();
    let bytes = overlay(&[
        (file("bin/tool", 0o755), b"t"),
        (file("etc/target", 0o600), b"new"),
    ]);
    let rep = apply(&bytes, &root, &ApplyPolicy::default()).unwrap();
    assert!(rep.refused.is_empty());
    assert_eq!(
        std::fs::read(root.join("usr/bin/tool")).unwrap(),
        b"t",
        "usr-merge link followed inside the root"
    );
    assert!(std::fs::symlink_metadata(root.join("etc/target"))
        .unwrap()
        .is_file());
    assert!(!std::path::Path::new("/etc/shadow-outside").exists());
}

#[test]
fn broken_streams_are_errors_before_anything_is_written() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let bytes = overlay(&[
        (file("etc/a", 0o644), &[7u8; 5000][..]),
        (file("etc/b", 0o644), b"b"),
    ]);
    let truncated = &bytes[..bytes.len() / 2];
    let e = apply(truncated, &root, &ApplyPolicy::default()).unwrap_err();
    assert!(matches!(e, Error::Gzip(_)), "{e}");
    assert!(std::fs::read_dir(&root).unwrap().next().is_none());
    let e = apply(b"not gzip at all", &root, &ApplyPolicy::default()).unwrap_err();
    assert!(matches!(e, Error::Gzip(_)), "{e}");
    let e = apply(
        &bytes,
        &root,
        &ApplyPolicy {
            max_unpacked: 1024,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "overlay: archive larger than the limit of 1024 bytes"
    );
    // A corrupted tar header inside valid gzip.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &[b'x'; 1024]).unwrap();
    let e = apply(&gz.finish().unwrap(), &root, &ApplyPolicy::default()).unwrap_err();
    assert!(matches!(e, Error::Tar(_)), "{e}");
}

/// Issue 13 item 9: `lbu diff` printed the host's `/etc/shadow` for a member named
/// `../../etc/shadow` or `/etc/shadow`. Every reader of members refuses such names.
#[test]
fn readers_refuse_members_outside_the_tree() {
    type Members<'a> = Vec<(Entry, &'a [u8])>;
    let cases: Vec<(Members, &str)> = vec![
        (
            vec![(file("../../etc/shadow", 0o600), b"x")],
            "overlay: member ../../etc/shadow: path contains `..`",
        ),
        (
            vec![(file("/etc/shadow", 0o600), b"x")],
            "overlay: member /etc/shadow: absolute path",
        ),
        (
            vec![
                (link("etc/up", Kind::Symlink, "/"), b""),
                (file("etc/up/etc/shadow", 0o600), b"x"),
            ],
            "overlay: member etc/up/etc/shadow: path goes through symlink etc/up from this overlay",
        ),
        (
            vec![(link("etc/hl", Kind::HardLink, "/etc/shadow"), b"")],
            "overlay: member etc/hl: hard link target: absolute path",
        ),
    ];
    for (entries, want) in cases {
        let bytes = overlay(&entries);
        let e = overlays::read_members(&bytes).unwrap_err();
        assert!(matches!(e, Error::UnsafeMember { .. }), "{e}");
        assert_eq!(e.to_string(), want);
        let e = overlays::read_contents(&bytes, &["etc/shadow"]).unwrap_err();
        assert_eq!(e.to_string(), want);
    }
    // Names are listed cleaned; contents follow hard links and later members win.
    let bytes = overlay(&[
        (file("./etc//a.conf", 0o644), b"one"),
        (link("etc/b.conf", Kind::HardLink, "./etc/a.conf"), b""),
        (file("etc/a.conf", 0o644), b"two"),
        (link("etc/s", Kind::Symlink, "./a.conf"), b""),
        (file("./", 0o755), b""),
    ]);
    let (members, _) = overlays::read_members(&bytes).unwrap();
    let names: Vec<(&str, &str)> = members
        .iter()
        .map(|m| (m.name.as_str(), m.link.as_str()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("etc/a.conf", ""),
            ("etc/b.conf", "etc/a.conf"),
            ("etc/a.conf", ""),
            ("etc/s", "a.conf")
        ]
    );
    let c = overlays::read_contents(&bytes, &["etc/a.conf", "etc/b.conf", "etc/s"]).unwrap();
    assert_eq!(c.len(), 2);
    assert_eq!(c["etc/a.conf"], b"two");
    assert_eq!(c["etc/b.conf"], b"one");
}

/// Issue 13 item 12: an overlay may not make its reader allocate without bound: the file as
/// stored and the decompressed archive are capped whatever the caller's policy says.
#[test]
fn overlays_are_bounded_whatever_the_policy() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let unlimited = ApplyPolicy {
        max_unpacked: u64::MAX,
        ..Default::default()
    };
    let big = vec![0u8; overlays::MAX_OVERLAY_BYTES as usize + 1];
    let e = apply(&big, &root, &unlimited).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "overlay: file of {} bytes is larger than the limit of {} bytes",
            big.len(),
            overlays::MAX_OVERLAY_BYTES
        )
    );
    assert!(matches!(
        overlays::read_members(&big),
        Err(Error::OverlayTooLarge { .. })
    ));
    // A small gzip bomb: a member of MAX_UNPACKED_BYTES zeros in a valid tar.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut e = file("etc/bomb", 0o644);
    e.size = overlays::MAX_UNPACKED_BYTES;
    let mut w = Writer::new(&mut gz, Magic::Gnu);
    w.append_header(&e).unwrap();
    let mut zeros = std::io::Read::take(std::io::repeat(0), e.size);
    w.write_data(&mut zeros, e.size).unwrap();
    w.finish().unwrap();
    let bomb = gz.finish().unwrap();
    assert!((bomb.len() as u64) < overlays::MAX_OVERLAY_BYTES);
    let want = format!(
        "overlay: archive larger than the limit of {} bytes",
        overlays::MAX_UNPACKED_BYTES
    );
    assert_eq!(
        apply(&bomb, &root, &unlimited).unwrap_err().to_string(),
        want
    );
    assert_eq!(overlays::read_members(&bomb).unwrap_err().to_string(), want);
    assert!(std::fs::read_dir(&root).unwrap().next().is_none());
    // Files are read with the same bound, never further.
    let p = t.path().join("h.apkovl.tar.gz");
    std::fs::File::create(&p)
        .unwrap()
        .set_len(overlays::MAX_OVERLAY_BYTES + 1)
        .unwrap();
    assert_eq!(
        overlays::read_file(&p).unwrap_err().to_string(),
        format!(
            "{}: larger than the limit of {} bytes",
            p.display(),
            overlays::MAX_OVERLAY_BYTES
        )
    );
    assert_eq!(
        overlays::read_signature(&t.path().join("none.sig")).unwrap(),
        None
    );
}
