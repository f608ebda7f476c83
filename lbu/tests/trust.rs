//! The trust holes of issue 13 on lbu's side, each pinned by a test that failed before the fix:
//! secrets in overlays (2), statements and generations (5), revert (7), readers outside the tree
//! (9), hooks on the host (11), and the netbooted commit (issue 12).

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Item 2: with `SIGNING_KEY=/etc/lbu/overlay.key`, `lbu commit` wrote that private key in
/// clear into the overlay. lbu's own secrets are never selected, whatever `lbu include` says.
#[test]
fn lbu_never_saves_its_own_secrets() {
    let bed = Bed::new();
    let r = &bed.root;
    let key = apk::trust::PrivateKey::generate_ed25519();
    write(r, "etc/lbu/overlay.key", &key.to_pem().unwrap());
    write(r, "etc/lbu/password", "correct horse\n");
    write(r, "etc/lbu/identity", "AGE-SECRET-KEY-1...\n");
    chmod(&r.join("etc/lbu/overlay.key"), 0o644);
    // Another name for the key (a hard link) is the same secret.
    std::fs::create_dir_all(r.join("root")).unwrap();
    std::fs::hard_link(r.join("etc/lbu/overlay.key"), r.join("root/key-copy")).unwrap();
    bed.conf(&format!(
        "SIGNING_KEY={}/etc/lbu/overlay.key\nPASSWORD_FILE=/etc/lbu/password\nAGE_IDENTITY={}/etc/lbu/identity\n",
        r.display(),
        r.display()
    ));
    ok(&bed.lbu(&["include", "/etc/lbu/overlay.key", "/root"]));
    let o = bed.lbu(&["commit"]);
    ok(&o);
    assert!(
        stderr(&o).contains("WARNING: SIGNING_KEY")
            && stderr(&o).contains("readable by other users"),
        "{}",
        stderr(&o)
    );
    let members = valid_overlay(&bed.overlay());
    for secret in [
        "etc/lbu/overlay.key",
        "etc/lbu/password",
        "etc/lbu/identity",
        "root/key-copy",
    ] {
        assert!(
            !members.iter().any(|m| m == secret),
            "{secret} in {members:?}"
        );
    }
    assert!(members.iter().any(|m| m == "etc/lbu/lbu.conf"));
    // `status` and `list` say what is left out and why.
    let o = bed.lbu(&["status"]);
    assert_eq!(ok(&o), "");
    let err = stderr(&o);
    for line in [
        "excluded: etc/lbu/identity is never saved (AGE_IDENTITY is a private key)",
        "excluded: etc/lbu/overlay.key is never saved (SIGNING_KEY is a private key)",
        "excluded: etc/lbu/password is never saved (PASSWORD_FILE is a password)",
        "excluded: root/key-copy is never saved (SIGNING_KEY is a private key)",
    ] {
        assert!(err.lines().any(|l| l == line), "{line}\n{err}");
    }
    let list = ok(&bed.lbu(&["list"]));
    assert!(
        !list.contains("overlay.key") && !list.contains("key-copy"),
        "{list}"
    );
}

/// Item 5: a signature covered only the bytes, so a signed backup or another host's signed
/// overlay renamed to `HOST.apkovl.tar.gz` booted. Signatures are now statements {hash, host,
/// time, generation}, and the medium records the newest generation beside the overlay.
#[test]
fn statements_bind_host_and_generation() {
    let bed = Bed::new();
    let host = lbu::hostname();
    let (keyfile, keys) = signing_key(bed.tmp.path(), "overlay.key");
    bed.conf(&format!(
        "SIGNING_KEY={}\nBACKUP_LIMIT=5\n",
        keyfile.display()
    ));
    let before = lbu::commit::now();
    for i in 1..=3 {
        write(&bed.root, "etc/gen.conf", &format!("{i}\n"));
        ok(&bed.lbu(&["commit"]));
    }
    let s = statement(&bed.overlay(), &keys);
    assert_eq!((s.host.as_str(), s.generation), (host.as_str(), 3));
    assert!(s.time >= before && s.time <= lbu::commit::now());
    let gen_file = bed.media.join(overlays::generation::file_name(&host));
    assert_eq!(std::fs::read(&gen_file).unwrap(), b"3\n");
    let recorded = overlays::generation::read(&bed.media, &host).unwrap();
    // A backup put back under the boot name is a replay: refused with the numbers.
    let backups: Vec<String> = bed
        .files()
        .into_iter()
        .filter(|f| lbu::backup::is_backup_of(f, &host))
        .collect();
    assert_eq!(backups.len(), 2);
    let old = bed.media.join(&backups[0]);
    let old_data = std::fs::read(&old).unwrap();
    let old_sig = std::fs::read(lbu::backup::sig_of(&old)).unwrap();
    let v = overlays::verify(&old_data, Some(&old_sig), &keys);
    assert_eq!(
        overlays::check_binding(&v, &host, recorded, false)
            .unwrap_err()
            .to_string(),
        format!("apkovl for host {host}: generation 1 is older than generation 3 recorded on the medium, refusing a replayed overlay")
    );
    // Another host's overlay: `package` names the host after the file it writes.
    let out = bed.tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let other = out.join("fw2.apkovl.tar.gz");
    ok(&bed.lbu_env(
        &["package", other.to_str().unwrap()],
        &[("SOURCE_DATE_EPOCH", "1700000000")],
    ));
    let s2 = statement(&other, &keys);
    assert_eq!(
        (s2.host.as_str(), s2.time, s2.generation),
        ("fw2", 1_700_000_000, 1)
    );
    assert_eq!(
        std::fs::read(out.join("fw2.apkovl.generation")).unwrap(),
        b"1\n"
    );
    let v = overlays::verify(
        &std::fs::read(&other).unwrap(),
        Some(&std::fs::read(lbu::backup::sig_of(&other)).unwrap()),
        &keys,
    );
    assert_eq!(
        overlays::check_binding(&v, &host, recorded, false)
            .unwrap_err()
            .to_string(),
        format!("apkovl for host {host}: signed for host fw2 (generation 1), refusing a swapped overlay")
    );
    ok(&bed.lbu(&["package", other.to_str().unwrap()]));
    assert_eq!(statement(&other, &keys).generation, 2);
    // A lost generation file does not restart the count below the backups' statements.
    std::fs::remove_file(&gen_file).unwrap();
    ok(&bed.lbu(&["commit"]));
    assert_eq!(statement(&bed.overlay(), &keys).generation, 4);
    assert_eq!(std::fs::read(&gen_file).unwrap(), b"4\n");
    // Without a signing key there is no statement and the recorded generation stays.
    bed.conf("BACKUP_LIMIT=5\n");
    ok(&bed.lbu(&["commit"]));
    assert!(!lbu::backup::sig_of(&bed.overlay()).exists());
    assert_eq!(std::fs::read(&gen_file).unwrap(), b"4\n");
}

/// Items 5 and 7: `revert` is a new commit of the backup's content, with a new statement one
/// generation up (the old statement would be refused as a replay), through the crash-safe path.
#[test]
fn revert_is_a_new_signed_commit() {
    let bed = Bed::new();
    let host = lbu::hostname();
    let (keyfile, keys) = signing_key(bed.tmp.path(), "overlay.key");
    bed.conf(&format!(
        "SIGNING_KEY={}\nBACKUP_LIMIT=5\n",
        keyfile.display()
    ));
    ok(&bed.lbu(&["commit"]));
    let first = std::fs::read(bed.overlay()).unwrap();
    write(&bed.root, "etc/later.conf", "later\n");
    ok(&bed.lbu(&["commit"]));
    let backup = bed
        .files()
        .into_iter()
        .find(|f| lbu::backup::is_backup_of(f, &host))
        .unwrap();
    let o = bed.lbu(&["revert", "-v", &backup]);
    ok(&o);
    assert!(
        stderr(&o).contains("Signed as generation 3 of"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(bed.overlay()).unwrap(),
        first,
        "the backup's bytes"
    );
    let s = statement(&bed.overlay(), &keys);
    assert_eq!((s.host.as_str(), s.generation), (host.as_str(), 3));
    let recorded = overlays::generation::read(&bed.media, &host).unwrap();
    assert_eq!(recorded, Some(3));
    let v = overlays::Verification::Verified {
        key: "overlay.key.pub".into(),
        statement: Some(s),
    };
    assert_eq!(overlays::check_binding(&v, &host, recorded, false), Ok(()));
    assert!(
        bed.media.join(&backup).exists(),
        "the backup stays in the history"
    );
    assert_eq!(boot_overlays(&bed.media).len(), 1);
}

/// lbu never signs what it did not sign before: a file planted on the medium under a backup
/// name, or a signed backup that was altered, is not "reverted" to.
#[test]
fn revert_refuses_backups_it_did_not_sign() {
    let bed = Bed::new();
    let host = lbu::hostname();
    let (keyfile, _) = signing_key(bed.tmp.path(), "overlay.key");
    bed.conf(&format!(
        "SIGNING_KEY={}\nBACKUP_LIMIT=5\n",
        keyfile.display()
    ));
    ok(&bed.lbu(&["commit"]));
    let current = std::fs::read(bed.overlay()).unwrap();
    // Planted: a valid overlay without a signature.
    let planted = format!("{host}.20200101000000.tar.gz");
    std::fs::write(bed.media.join(&planted), &current).unwrap();
    let o = bed.lbu(&["revert", &planted]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "ERROR: revert: {}: not signed by SIGNING_KEY; refusing to sign content lbu did not sign before\n",
            bed.media.join(&planted).display()
        )
    );
    // Altered after it was signed.
    write(&bed.root, "etc/later.conf", "later\n");
    ok(&bed.lbu(&["commit"]));
    let backup = bed
        .files()
        .into_iter()
        .find(|f| lbu::backup::is_backup_of(f, &host) && f != &planted)
        .unwrap();
    let p = bed.media.join(&backup);
    // Another valid overlay under the backup's name (a new file: the backup may be a hard link).
    let data = std::fs::read(bed.overlay()).unwrap();
    write(&bed.root, "etc/even-later.conf", "x\n");
    ok(&bed.lbu(&["commit"]));
    std::fs::remove_file(&p).unwrap();
    std::fs::write(&p, &data).unwrap();
    let o = bed.lbu(&["revert", &backup]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("signature check failed: overlay does not match its signature"),
        "{}",
        stderr(&o)
    );
    let now = std::fs::read(bed.overlay()).unwrap();
    assert_ne!(now, data, "nothing reverted");
}

/// Item 7: `revert` to a backup of another cipher left two overlays (the next boot stopped with
/// "ambiguous apkovl"), and copied an encrypted backup without checking it.
#[test]
fn revert_checks_encrypted_backups_and_leaves_one_overlay() {
    let bed = Bed::new();
    let host = lbu::hostname();
    let pwfile = bed.tmp.path().join("pw");
    std::fs::write(&pwfile, "correct horse\n").unwrap();
    chmod(&pwfile, 0o600);
    let age_conf = format!(
        "ENCRYPTION=age\nPASSWORD_FILE={}\nBACKUP_LIMIT=5\n",
        pwfile.display()
    );
    bed.conf(&age_conf);
    ok(&bed.lbu(&["commit"]));
    write(&bed.root, "etc/later.conf", "later\n");
    ok(&bed.lbu(&["commit"]));
    let aged = bed
        .files()
        .into_iter()
        .find(|f| lbu::backup::is_backup_of(f, &host) && f.ends_with(".age"))
        .unwrap();
    // Encryption off: the plain overlay replaces the .age one (-d).
    bed.conf(&format!(
        "PASSWORD_FILE={}\nBACKUP_LIMIT=5\n",
        pwfile.display()
    ));
    ok(&bed.lbu(&["commit", "-d"]));
    assert_eq!(
        boot_overlays(&bed.media),
        vec![format!("{host}.apkovl.tar.gz")]
    );
    // A tampered encrypted backup is refused before anything changes.
    let p = bed.media.join(&aged);
    let good = std::fs::read(&p).unwrap();
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 5] ^= 0x40;
    std::fs::remove_file(&p).unwrap();
    std::fs::write(&p, &bad).unwrap();
    let before = bed.files();
    let o = bed.lbu(&["revert", &aged]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "ERROR: {}: verification failed: overlay: decryption failed: ciphertext was modified or truncated\n",
            p.display()
        )
    );
    assert_eq!(bed.files(), before);
    // The intact backup: exactly one current overlay afterwards, the .age one.
    std::fs::write(&p, &good).unwrap();
    ok(&bed.lbu(&["revert", &aged]));
    assert_eq!(
        boot_overlays(&bed.media),
        vec![format!("{host}.apkovl.tar.gz.age")]
    );
    assert_eq!(
        std::fs::read(bed.media.join(format!("{host}.apkovl.tar.gz.age"))).unwrap(),
        good
    );
}

/// Item 9: an overlay member named `../../etc/hostname` or `/etc/hostname` (from an unverified
/// overlay) made `lbu diff` print that host file. Every reader refuses such members.
#[test]
fn diff_and_status_refuse_members_outside_the_tree() {
    let host_file = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    for name in [
        "../../../../../../../../../../etc/hostname",
        "/etc/hostname",
    ] {
        let bed = Bed::new();
        ok(&bed.lbu(&["commit"]));
        let mut w = apk::tar::Writer::new(Vec::new(), apk::tar::Magic::Gnu);
        w.pax_extras = false;
        w.append(
            &apk::tar::Entry::new(name, apk::tar::Kind::File, 0o644),
            b"x\n",
        )
        .unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &w.finish().unwrap()).unwrap();
        std::fs::write(bed.overlay(), gz.finish().unwrap()).unwrap();
        for cmd in ["diff", "status"] {
            let o = bed.lbu(&[cmd]);
            assert_eq!(o.status.code(), Some(1), "{cmd} {name}");
            let reason = if name.starts_with('/') {
                "absolute path"
            } else {
                "path contains `..`"
            };
            assert_eq!(
                stderr(&o),
                format!("ERROR: overlay: member {name}: {reason}\n"),
                "{cmd}"
            );
            assert!(
                host_file.is_empty() || !stdout(&o).contains(host_file.trim()),
                "{cmd} printed the host's file"
            );
        }
    }
}

/// Item 11: hooks ran from `--root DIR` on the host, even for `status` and `diff`. They run
/// chrooted into the root, and only for `commit` and `package`.
#[test]
fn hooks_run_chrooted_and_only_for_commit_and_package() {
    let bed = Bed::new();
    let marker = format!("lbu-hook-ran-{}", std::process::id());
    write(
        &bed.root,
        "etc/lbu/pre-package.d/10-mark",
        &format!("#!/bin/sh\necho pre >> /{marker}\n"),
    );
    chmod(&bed.root.join("etc/lbu/pre-package.d/10-mark"), 0o755);
    let inside = bed.root.join(&marker);
    let outside = Path::new("/").join(&marker);
    for cmd in [&["status"][..], &["diff"], &["list"]] {
        bed.lbu(cmd);
        assert!(
            !inside.exists() && !outside.exists(),
            "{cmd:?} ran the hook"
        );
    }
    ok(&bed.lbu(&["commit"]));
    let _ = std::fs::remove_file(&outside);
    assert_eq!(std::fs::read_to_string(&inside).unwrap(), "pre\n");
    assert!(!outside.exists(), "the hook ran on the host");
    std::fs::remove_file(&inside).unwrap();
    ok(&bed.lbu(&["package", "-"]));
    assert_eq!(std::fs::read_to_string(&inside).unwrap(), "pre\n");
}

/// Issue 12: on a netbooted box (no boot medium) `lbu commit` says so, and `lbu package -`
/// still writes the overlay to stdout for the admin to upload. The kernel command line is faked
/// in a private mount namespace.
#[test]
fn netbooted_commit_says_so_and_package_to_stdout_works() {
    let bed = Bed::new();
    let cmdline = bed.tmp.path().join("cmdline");
    std::fs::write(
        &cmdline,
        "console=ttyS0 ip=dhcp apkovl=http://10.0.2.2/{MAC}.apkovl.tar.gz\n",
    )
    .unwrap();
    let run = |args: &str| {
        let script = format!(
            "mount --make-rprivate / && mount --bind '{}' /proc/cmdline && exec env -i PATH=\"$PATH\" '{}' --root '{}' {args}",
            cmdline.display(),
            env!("CARGO_BIN_EXE_lbu"),
            bed.root.display(),
        );
        Command::new("unshare")
            .args(["-m", "sh", "-c", &script])
            .output()
            .unwrap()
    };
    let o = run("commit");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "ERROR: no medium: this system booted from the network and has no boot medium to commit to; run `lbu package -` (or `lbu package DIR`) and put the overlay on the boot server, or set LBU_BACKUPDIR\n"
    );
    let o = run("commit no-such-medium-here");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("ERROR: no medium: this system booted from the network"));
    let o = run("package -");
    let (members, _) = overlays::read_members(&o.stdout).unwrap();
    assert!(members.iter().any(|m| m.name == "etc/apk/world"));
}

/// Review finding: the next generation was taken from every `.sig` on the medium, verified or
/// not, so a planted `x.sig` claiming generation 2^64-1 for this host ended every later commit
/// ("generation counter exhausted"). Only statements by the signing key count now.
#[test]
fn a_planted_claim_does_not_choose_the_generation() {
    let bed = Bed::new();
    let host = lbu::hostname();
    let (keyfile, keys) = signing_key(bed.tmp.path(), "overlay.key");
    bed.conf(&format!("SIGNING_KEY={}\n", keyfile.display()));
    ok(&bed.lbu(&["commit"]));
    let evil = apk::trust::PrivateKey::generate_ed25519();
    let claim =
        overlays::sign_statement(b"whatever", &host, 0, u64::MAX, &evil, "evil.key.pub").unwrap();
    std::fs::write(bed.media.join("planted.sig"), claim).unwrap();
    write(&bed.root, "etc/gen.conf", "2\n");
    ok(&bed.lbu(&["commit"]));
    assert_eq!(statement(&bed.overlay(), &keys).generation, 2);
}

/// `PASSWORD_FILE` is read once and bounded: a symbolic link to the file, a file others can read, and
/// a first line longer than 4096 bytes are refused in one line naming the file; nothing is written.
#[test]
fn password_files_that_are_links_public_or_oversized_are_refused() {
    let bed = Bed::new();
    let good = bed.tmp.path().join("pw");
    std::fs::write(&good, "correct horse\n").unwrap();
    chmod(&good, 0o600);
    let link = bed.tmp.path().join("pw-link");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    let public = bed.tmp.path().join("pw-public");
    std::fs::write(&public, "correct horse\n").unwrap();
    chmod(&public, 0o644);
    let long = bed.tmp.path().join("pw-long");
    std::fs::write(&long, "x".repeat(5000)).unwrap();
    chmod(&long, 0o600);
    for (file, reason) in [
        (&link, "Too many levels of symbolic links"),
        (&public, "mode 0600 or stricter"),
        (&long, "longer than 4096 bytes"),
    ] {
        bed.conf(&format!(
            "ENCRYPTION=age\nPASSWORD_FILE={}\n",
            file.display()
        ));
        let o = bed.lbu(&["commit"]);
        let err = stderr(&o);
        assert!(!o.status.success(), "{err}");
        assert!(
            err.contains(&file.display().to_string()) && err.contains(reason),
            "{}: {err}",
            file.display()
        );
        assert!(bed.files().is_empty(), "{:?}", bed.files());
    }
    // The same password through the file itself works, with a CRLF line end too.
    std::fs::write(&good, "correct horse\r\nsecond line\n").unwrap();
    bed.conf(&format!(
        "ENCRYPTION=age\nPASSWORD_FILE={}\n",
        good.display()
    ));
    ok(&bed.lbu(&["commit"]));
    assert_eq!(bed.files().len(), 1);
}
