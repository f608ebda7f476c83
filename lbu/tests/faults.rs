//! Fault injection and hostile inputs: a commit killed at each step, a full medium, FAT (no hard
//! links), conflicting overlays, bad passwords and tampered files. After every failure the medium
//! holds one complete, valid overlay under the boot name.

mod common;
use common::*;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

fn sh(cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(st.success(), "{cmd}");
}

/// A mount that is removed even when the test fails.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn commit_killed_at_each_step_leaves_a_valid_overlay() {
    for (point, expect_new) in [
        ("after-temp-write", false),
        ("before-rename", false),
        ("after-rename", true),
    ] {
        let bed = Bed::new();
        ok(&bed.lbu(&["commit"]));
        let old = std::fs::read(bed.overlay()).unwrap();
        write(&bed.root, "etc/changed.conf", "new\n");
        let o = bed.lbu_env(&["commit"], &[("LBU_FAULT", point)]);
        assert!(!o.status.success(), "{point}: the process was aborted");
        let now = std::fs::read(bed.overlay()).unwrap();
        let members = valid_overlay(&bed.overlay());
        assert_eq!(
            members.iter().any(|m| m == "etc/changed.conf"),
            expect_new,
            "{point}"
        );
        if !expect_new {
            assert_eq!(now, old, "{point}: old overlay untouched");
        }
        // Leftovers never look like an overlay to the boot, and the next commit succeeds.
        for f in bed.files() {
            assert!(
                overlays::kind_of(&f).is_none()
                    || f == format!("{}.apkovl.tar.gz", lbu::hostname()),
                "{point}: {f}"
            );
        }
        ok(&bed.lbu(&["commit"]));
        assert!(valid_overlay(&bed.overlay())
            .iter()
            .any(|m| m == "etc/changed.conf"));
    }
}

/// Signed: killed at any step, the overlay on the medium verifies with its `.sig`, and the
/// statement is bound to this host with a generation the medium's record does not refuse.
#[test]
fn signed_commit_killed_at_each_step_still_verifies() {
    let host = lbu::hostname();
    for point in [
        "after-temp-write",
        "after-sig",
        "before-rename",
        "after-rename",
        "after-final-sig",
    ] {
        let bed = Bed::new();
        let (keyfile, keys) = signing_key(bed.tmp.path(), "ovl.key");
        bed.conf(&format!("SIGNING_KEY={}\n", keyfile.display()));
        ok(&bed.lbu(&["commit"]));
        write(&bed.root, "etc/changed.conf", "new\n");
        let o = bed.lbu_env(&["commit"], &[("LBU_FAULT", point)]);
        assert!(!o.status.success(), "{point}");
        let s = statement(&bed.overlay(), &keys);
        let recorded = overlays::generation::read(&bed.media, &host).unwrap();
        let v = overlays::Verification::Verified {
            key: "ovl.key.pub".into(),
            statement: Some(s.clone()),
        };
        assert_eq!(
            overlays::check_binding(&v, &host, recorded, false),
            Ok(()),
            "{point}: generation {} with {recorded:?} recorded",
            s.generation
        );
        ok(&bed.lbu(&["commit"]));
        let sig = std::fs::read_to_string(format!("{}.sig", bed.overlay().display())).unwrap();
        assert_eq!(
            sig.matches("apkovl-signature v2").count(),
            1,
            "the final .sig holds one block"
        );
        let last = statement(&bed.overlay(), &keys).generation;
        assert!(
            last > s.generation,
            "{point}: {last} after {}",
            s.generation
        );
        assert_eq!(
            overlays::generation::read(&bed.media, &host).unwrap(),
            Some(last)
        );
    }
}

/// Issue 13 item 8: turning signing off renamed the new overlay before the old `.sig` was gone,
/// so a crash in between left an overlay with a bad signature (refused at boot whatever the
/// policy). Now the old signature goes first: the overlay is signed or unsigned, never bad.
#[test]
fn turning_signing_off_never_leaves_a_bad_signature() {
    for point in ["after-sig", "before-rename", "after-rename"] {
        let bed = Bed::new();
        let (keyfile, keys) = signing_key(bed.tmp.path(), "ovl.key");
        bed.conf(&format!("SIGNING_KEY={}\n", keyfile.display()));
        ok(&bed.lbu(&["commit"]));
        bed.conf("# signing turned off\n");
        let o = bed.lbu_env(&["commit"], &[("LBU_FAULT", point)]);
        assert!(!o.status.success(), "{point}");
        let data = std::fs::read(bed.overlay()).unwrap();
        let sig = std::fs::read(format!("{}.sig", bed.overlay().display())).ok();
        let v = overlays::verify(&data, sig.as_deref(), &keys);
        assert!(
            !matches!(v, overlays::Verification::Bad { .. }),
            "{point}: {v:?}"
        );
        ok(&bed.lbu(&["commit"]));
        assert!(!std::path::Path::new(&format!("{}.sig", bed.overlay().display())).exists());
    }
}

/// Issue 13 item 8: with `-d`, a crash between the rename and the removal of the other
/// overlays left two overlays, and the next boot stopped with "ambiguous apkovl". The others
/// now leave the boot's view (moved to backup names) before the new one enters it.
#[test]
fn commit_d_never_leaves_two_overlays() {
    for point in ["after-aside", "before-rename", "after-rename"] {
        let bed = Bed::new();
        ok(&bed.lbu(&["commit"]));
        let ours = bed
            .overlay()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        std::fs::rename(bed.overlay(), bed.media.join("renamed-host.apkovl.tar.gz")).unwrap();
        write(&bed.root, "etc/changed.conf", "new\n");
        let o = bed.lbu_env(&["commit", "-d"], &[("LBU_FAULT", point)]);
        assert!(!o.status.success(), "{point}");
        let visible = boot_overlays(&bed.media);
        assert!(visible.len() <= 1, "{point}: {visible:?}");
        // Nothing is lost: the old overlay is a backup until the new one is in place.
        let old_somewhere = bed.files().iter().any(|f| f.starts_with("renamed-host."));
        assert!(
            old_somewhere || visible == vec![ours.clone()],
            "{point}: {:?}",
            bed.files()
        );
        ok(&bed.lbu(&["commit", "-d"]));
        assert_eq!(boot_overlays(&bed.media), vec![ours.clone()], "{point}");
    }
}

/// Signed `-d` after a host rename (found by the qemu power-cut scenario's `-d` sequence): the
/// new name had no `.sig` yet, so the overlay was unsigned between the rename and the final
/// signature, and a boot that requires signatures refused it. The new name's signature now goes
/// in before the overlay does: whatever the boot sees verifies, for the host in its name.
#[test]
fn signed_commit_d_to_a_new_name_is_never_unsigned() {
    let host = lbu::hostname();
    for point in [
        "after-aside",
        "before-rename",
        "after-rename",
        "after-final-sig",
    ] {
        let bed = Bed::new();
        let (keyfile, keys) = signing_key(bed.tmp.path(), "ovl.key");
        bed.conf(&format!("SIGNING_KEY={}\n", keyfile.display()));
        ok(&bed.lbu(&["commit"]));
        // The box was called `old-name` when it last committed.
        for suffix in ["", ".sig"] {
            std::fs::rename(
                format!("{}{suffix}", bed.overlay().display()),
                bed.media.join(format!("old-name.apkovl.tar.gz{suffix}")),
            )
            .unwrap();
        }
        write(&bed.root, "etc/changed.conf", "new\n");
        let o = bed.lbu_env(&["commit", "-d"], &[("LBU_FAULT", point)]);
        assert!(!o.status.success(), "{point}");
        let visible = boot_overlays(&bed.media);
        assert!(visible.len() <= 1, "{point}: {visible:?}");
        for name in &visible {
            let path = bed.media.join(name);
            let data = std::fs::read(&path).unwrap();
            let sig = std::fs::read(format!("{}.sig", path.display())).ok();
            let v = overlays::verify(&data, sig.as_deref(), &keys);
            let owner = overlays::host_of(name).unwrap();
            let recorded = overlays::generation::read(&bed.media, owner).unwrap();
            assert!(
                matches!(
                    v,
                    overlays::Verification::Verified {
                        statement: Some(_),
                        ..
                    }
                ),
                "{point}: {name}: {v:?}"
            );
            assert_eq!(
                overlays::check_binding(&v, owner, recorded, false),
                Ok(()),
                "{point}: {name}: {v:?}"
            );
        }
        ok(&bed.lbu(&["commit", "-d"]));
        assert_eq!(
            boot_overlays(&bed.media),
            vec![format!("{host}.apkovl.tar.gz")]
        );
        statement(&bed.overlay(), &keys);
    }
}

#[test]
fn full_medium_keeps_the_old_overlay() {
    let bed = Bed::new();
    let mnt = bed.tmp.path().join("tiny");
    std::fs::create_dir(&mnt).unwrap();
    sh(&format!(
        "mount -t tmpfs -o size=1m tmpfs '{}'",
        mnt.display()
    ));
    let _m = Mount(mnt.clone());
    let env = [("LBU_BACKUPDIR", mnt.to_str().unwrap())];
    ok(&bed.lbu_env(&["commit"], &env));
    let ov = mnt.join(format!("{}.apkovl.tar.gz", lbu::hostname()));
    let (old, old_mtime) = (
        std::fs::read(&ov).unwrap(),
        std::fs::metadata(&ov).unwrap().mtime(),
    );
    // Incompressible data larger than what is left on the medium.
    let mut noise = vec![0u8; 700 * 1024];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(bed.root.join("etc/big.bin"), &noise).unwrap();
    sh(&format!(
        "dd if=/dev/zero of='{}/fill' bs=1k count=400 2>/dev/null",
        mnt.display()
    ));
    let o = bed.lbu_env(&["commit"], &env);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("No space left on device")
            && err.ends_with("Problems creating archive. aborting\n"),
        "{err}"
    );
    assert_eq!(std::fs::read(&ov).unwrap(), old);
    assert_eq!(std::fs::metadata(&ov).unwrap().mtime(), old_mtime);
    let names: Vec<String> = std::fs::read_dir(&mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "no temporary file left behind: {names:?}");
}

/// FAT has no hard links, so backups must be copies. This machine's kernel has no vfat module, so
/// `link(2)` failing is simulated with an immutable current overlay (ext4 refuses to link it with
/// EPERM, as FAT does); the backup must then be an identical copy.
#[test]
fn backup_is_a_copy_where_hard_links_fail() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let cur = d.join("h.apkovl.tar.gz");
    std::fs::write(&cur, b"previous overlay").unwrap();
    sh(&format!("chattr +i '{}'", cur.display()));
    let res = lbu::backup::make_backup(d, "h", "h.apkovl.tar.gz", "");
    sh(&format!("chattr -i '{}'", cur.display()));
    let name = res.unwrap().unwrap();
    let b = d.join(&name);
    assert_eq!(std::fs::read(&b).unwrap(), b"previous overlay");
    assert_ne!(
        std::fs::metadata(&b).unwrap().ino(),
        std::fs::metadata(&cur).unwrap().ino(),
        "a copy, not a link"
    );
    // Where links work, the backup is a hard link (no extra space on small media).
    let name2 = lbu::backup::make_backup(d, "h", "h.apkovl.tar.gz", "")
        .unwrap()
        .unwrap();
    assert_eq!(
        std::fs::metadata(d.join(&name2)).unwrap().ino(),
        std::fs::metadata(&cur).unwrap().ino()
    );
    assert_ne!(name, name2, "never overwrites an existing backup");
}

#[test]
fn backup_limit_rotation() {
    let bed = Bed::new();
    bed.conf("BACKUP_LIMIT=2\n");
    for i in 0..4 {
        write(&bed.root, "etc/gen.conf", &format!("{i}\n"));
        ok(&bed.lbu(&["commit"]));
    }
    let host = lbu::hostname();
    let names = bed.files();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.contains(&format!("{host}.apkovl.tar.gz")));
    // Backups of the same second get a sequence suffix instead of overwriting each other.
    let backups: Vec<&String> = names
        .iter()
        .filter(|n| lbu::backup::is_backup_of(n, &host))
        .collect();
    assert_eq!(backups.len(), 2);
    let contents: Vec<String> = backups
        .iter()
        .map(|b| {
            let data = std::fs::read(bed.media.join(b)).unwrap();
            let fresh = bed.tmp.path().join(format!("x-{b}"));
            std::fs::create_dir(&fresh).unwrap();
            overlays::apply(&data, &fresh, &overlays::ApplyPolicy::default()).unwrap();
            std::fs::read_to_string(fresh.join("etc/gen.conf")).unwrap()
        })
        .collect();
    assert_eq!(
        contents,
        vec!["1\n", "2\n"],
        "the two newest previous generations, in order"
    );
}

#[test]
fn foreign_overlays_block_until_d_which_deletes_after_the_commit() {
    let bed = Bed::new();
    std::fs::write(bed.media.join("otherhost.apkovl.tar.gz"), b"foreign").unwrap();
    std::fs::write(
        bed.media.join("otherhost.20200101000000.tar.gz"),
        b"foreign backup",
    )
    .unwrap();
    let o = bed.lbu(&["commit"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "ERROR: The following apkovl file(s) were found:\notherhost.apkovl.tar.gz\n\nPlease use -d to replace (the boot picks only one overlay; -d removes these after the new one is saved).\n"
    );
    assert_eq!(
        bed.files(),
        vec!["otherhost.20200101000000.tar.gz", "otherhost.apkovl.tar.gz"]
    );
    let o = bed.lbu(&["commit", "-d"]);
    assert_eq!(ok(&o), "otherhost.apkovl.tar.gz\n");
    let host = lbu::hostname();
    let mut want = vec![
        format!("{host}.apkovl.tar.gz"),
        "otherhost.20200101000000.tar.gz".to_string(),
    ];
    want.sort();
    assert_eq!(bed.files(), want);
    // Dry run changes nothing.
    std::fs::write(bed.media.join("otherhost.apkovl.tar.gz"), b"foreign").unwrap();
    let before = bed.files();
    let o = bed.lbu(&["commit", "-n", "-d"]);
    ok(&o);
    assert_eq!(bed.files(), before);
}

#[test]
fn empty_selection_is_an_error() {
    let bed = Bed::new();
    write(
        &bed.root,
        "etc/apk/protected_paths.d/lbu.list",
        "-etc/apk\n-etc\n",
    );
    let o = bed.lbu(&["commit"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), format!("ERROR: {}: nothing to archive (empty selection)\nProblems creating archive. aborting\n", bed.root.display()));
    assert!(bed.files().is_empty());
}

#[test]
fn signed_commits_write_a_sig_that_verifies() {
    let bed = Bed::new();
    let (keyfile, keys) = signing_key(bed.tmp.path(), "overlay.key");
    bed.conf(&format!(
        "SIGNING_KEY={}\nBACKUP_LIMIT=1\n",
        keyfile.display()
    ));
    ok(&bed.lbu(&["commit"]));
    let sig_path = format!("{}.sig", bed.overlay().display());
    let data = std::fs::read(bed.overlay()).unwrap();
    let sig = std::fs::read(&sig_path).unwrap();
    assert_eq!(statement(&bed.overlay(), &keys).generation, 1);
    write(&bed.root, "etc/x.conf", "x\n");
    ok(&bed.lbu(&["commit"]));
    let backup = bed
        .files()
        .into_iter()
        .find(|f| lbu::backup::is_backup(f))
        .unwrap();
    assert_eq!(statement(&bed.media.join(&backup), &keys).generation, 1);
    assert_eq!(statement(&bed.overlay(), &keys).generation, 2);
    // Signing turned off: the stale signature goes, it would be a bad signature now.
    bed.conf("BACKUP_LIMIT=1\n");
    write(&bed.root, "etc/x.conf", "y\n");
    ok(&bed.lbu(&["commit"]));
    assert!(!std::path::Path::new(&sig_path).exists());
    // A tampered overlay or signature is reported.
    let mut bad = data.clone();
    bad[20] ^= 1;
    assert!(matches!(
        overlays::verify(&bad, Some(&sig), &keys),
        overlays::Verification::Bad { .. }
    ));
    assert_eq!(
        overlays::verify(&data, None, &keys),
        overlays::Verification::Unsigned
    );
}

#[test]
fn age_commits_status_and_bad_secrets() {
    let bed = Bed::new();
    let pwfile = bed.tmp.path().join("pw");
    std::fs::write(&pwfile, "correct horse\n").unwrap();
    std::fs::set_permissions(&pwfile, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    bed.conf(&format!(
        "ENCRYPTION=age\nPASSWORD_FILE={}\n",
        pwfile.display()
    ));
    let o = bed.lbu(&["commit"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("must be a regular file owned by root with mode 0600"),
        "{}",
        stderr(&o)
    );
    std::fs::set_permissions(&pwfile, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    ok(&bed.lbu(&["commit"]));
    let ov = bed
        .media
        .join(format!("{}.apkovl.tar.gz.age", lbu::hostname()));
    assert!(std::fs::read(&ov)
        .unwrap()
        .starts_with(b"age-encryption.org/v1\n"));
    assert_eq!(ok(&bed.lbu(&["status"])), "");
    let o = bed.lbu(&["status", "-p", "wrong"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "ERROR: Failed to unpack {}: overlay: decryption failed: wrong passphrase\n",
            ov.display()
        )
    );
    let mut data = std::fs::read(&ov).unwrap();
    let n = data.len();
    data[n - 3] ^= 0x10;
    std::fs::write(&ov, &data).unwrap();
    let o = bed.lbu(&["status"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).ends_with("decryption failed: ciphertext was modified or truncated\n"),
        "{}",
        stderr(&o)
    );
}

/// Encrypted to an age recipient: the box commits without any secret; reading it back (status)
/// needs the identity. Issue 13 item 4: what the init gets (`Secret::AgeIdentity` with the text
/// of an `age-keygen` file, as `mkinitfs --ovl-identity` embeds it) opens what lbu wrote, for each
/// of several recipients.
#[test]
fn age_recipients_need_no_secret_on_the_box() {
    let bed = Bed::new();
    let id = age::x25519::Identity::generate();
    let boot_id = age::x25519::Identity::generate();
    let recipients = bed.tmp.path().join("recipients");
    std::fs::write(
        &recipients,
        format!(
            "# admin\n{}\n\n# the box's initramfs\n{}\n",
            id.to_public(),
            boot_id.to_public()
        ),
    )
    .unwrap();
    let identity = bed.tmp.path().join("identity");
    use age::secrecy::ExposeSecret;
    let keygen = |id: &age::x25519::Identity| {
        format!(
            "# created: 2026-01-01T00:00:00Z\n# public key: {}\n{}\n",
            id.to_public(),
            id.to_string().expose_secret()
        )
    };
    std::fs::write(&identity, keygen(&id)).unwrap();
    std::fs::set_permissions(
        &identity,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    bed.conf(&format!(
        "ENCRYPTION=age\nAGE_RECIPIENTS={}\n",
        recipients.display()
    ));
    ok(&bed.lbu(&["commit"]));
    let ov = bed
        .media
        .join(format!("{}.apkovl.tar.gz.age", lbu::hostname()));
    let data = std::fs::read(&ov).unwrap();
    for who in [&id, &boot_id] {
        let gz = overlays::decrypt(
            &data,
            &overlays::OverlayKind::Age,
            &overlays::Secret::AgeIdentity(&keygen(who)),
        )
        .unwrap();
        assert!(overlays::read_members(&gz).is_ok());
    }
    let o = bed.lbu(&["status"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        format!(
            "ERROR: password: {}: encrypted to a key; set AGE_IDENTITY to read it\n",
            ov.display()
        )
    );
    bed.conf(&format!(
        "ENCRYPTION=age\nAGE_RECIPIENTS={}\nAGE_IDENTITY={}\n",
        recipients.display(),
        identity.display()
    ));
    // Readable now; the only change is the lbu.conf edit itself.
    assert_eq!(ok(&bed.lbu(&["status"])), "U etc/lbu/lbu.conf\n");
}

#[test]
fn legacy_cipher_only_when_configured_and_openssl_reads_it() {
    let bed = Bed::new();
    bed.conf("DEFAULT_CIPHER=aes-256-cbc\n");
    ok(&bed.lbu(&["commit", "-e", "-p", "PW"]));
    let ov = bed
        .media
        .join(format!("{}.apkovl.tar.gz.aes-256-cbc", lbu::hostname()));
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
        .arg(&ov)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(overlays::read_members(&out.stdout).is_ok());
    // Status reads it back (ENCRYPTION names the current overlay, as upstream).
    assert_eq!(
        ok(&bed.lbu_env(&["status", "-p", "PW"], &[("ENCRYPTION", "aes-256-cbc")])),
        ""
    );
    let bed2 = Bed::new();
    bed2.conf("DEFAULT_CIPHER=bf-ecb\n");
    let o = bed2.lbu(&["commit", "-e", "-p", "PW"]);
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (
            Some(1),
            "ERROR: Cipher bf-ecb is not supported\n".to_string()
        )
    );
}

#[test]
fn broken_committed_overlay_is_a_clear_error() {
    let bed = Bed::new();
    ok(&bed.lbu(&["commit"]));
    let data = std::fs::read(bed.overlay()).unwrap();
    std::fs::write(bed.overlay(), &data[..data.len() / 2]).unwrap();
    let o = bed.lbu(&["status"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("ERROR: overlay: broken gzip stream:") && err.lines().count() == 1,
        "{err}"
    );
}

/// A medium under /media, mounted read-only before lbu runs: remounted read-write for the commit
/// and read-only again afterwards; a name with a space proves `\040` is decoded.
#[test]
fn media_mounted_read_only_is_restored() {
    let name = format!("lbu test {}", std::process::id());
    let dir = std::path::Path::new("/media").join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    sh(&format!(
        "mount -t tmpfs -o ro,size=4m tmpfs '{}'",
        dir.display()
    ));
    let _m = Mount(dir.clone());
    let bed = Bed::new();
    let mut c = lbu_cmd();
    let o = c
        .arg("--root")
        .arg(&bed.root)
        .args(["commit", &name])
        .output()
        .unwrap();
    ok(&o);
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let esc = dir.display().to_string().replace(' ', "\\040");
    let line = mounts
        .lines()
        .rev()
        .find(|l| l.split(' ').nth(1) == Some(esc.as_str()))
        .expect("still mounted");
    assert!(
        line.split(' ')
            .nth(3)
            .unwrap()
            .split(',')
            .any(|o| o == "ro"),
        "{line}"
    );
    assert!(
        !mount_options(&dir).contains(&"sync".to_string()),
        "sync is put back too"
    );
    valid_overlay(&dir.join(format!("{}.apkovl.tar.gz", lbu::hostname())));
    // A failing commit restores the read-only mount too.
    bed.conf("SIGNING_KEY=/nonexistent/key\n");
    let o = lbu_cmd()
        .arg("--root")
        .arg(&bed.root)
        .args(["commit", &name])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).ends_with("Problems creating archive. aborting\n"),
        "{}",
        stderr(&o)
    );
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let line = mounts
        .lines()
        .rev()
        .find(|l| l.split(' ').nth(1) == Some(esc.as_str()))
        .expect("still mounted");
    assert!(
        line.split(' ')
            .nth(3)
            .unwrap()
            .split(',')
            .any(|o| o == "ro"),
        "{line}"
    );
    drop(_m);
    let _ = std::fs::remove_dir(&dir);

    // Not mounted and not in fstab: the mount fails and nothing happens.
    let name = format!("lbu-nofstab-{}", std::process::id());
    let dir = std::path::Path::new("/media").join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let o = lbu_cmd()
        .arg("--root")
        .arg(&bed.root)
        .args(["commit", &name])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir(&dir);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).ends_with(&format!("ERROR: failed to mount {}\n", dir.display())),
        "{}",
        stderr(&o)
    );
    let o = lbu_cmd()
        .arg("--root")
        .arg(&bed.root)
        .args(["commit", "no-such-medium"])
        .output()
        .unwrap();
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (
            Some(1),
            "ERROR: /media/no-such-medium: not a directory (no such medium)\n".to_string()
        )
    );
    let o = lbu_cmd()
        .arg("--root")
        .arg(&bed.root)
        .args(["commit"])
        .output()
        .unwrap();
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (
            Some(1),
            "ERROR: no medium: give MEDIA, or set LBU_MEDIA or LBU_BACKUPDIR in lbu.conf\n"
                .to_string()
        )
    );
}

/// Media not mounted: mounted through fstab (read-only there), remounted read-write, written,
/// and unmounted again. Runs in a private mount namespace with its own /etc/fstab.
#[test]
fn media_mounted_through_fstab_and_unmounted_after() {
    let bed = Bed::new();
    let name = format!("lbu-fstab-{}", std::process::id());
    let dir = std::path::Path::new("/media").join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let stick = bed.tmp.path().join("stick");
    std::fs::create_dir(&stick).unwrap();
    let fstab = bed.tmp.path().join("fstab");
    std::fs::write(
        &fstab,
        format!(
            "{} {} none bind,ro,noauto 0 0\n",
            stick.display(),
            dir.display()
        ),
    )
    .unwrap();
    let script = format!(
        "mount --make-rprivate / && mount --bind '{fstab}' /etc/fstab && env -i PATH=\"$PATH\" '{lbu}' --root '{root}' commit -v '{name}' && if grep -q ' {dir} ' /proc/mounts; then echo still-mounted; else echo unmounted; fi",
        fstab = fstab.display(),
        lbu = env!("CARGO_BIN_EXE_lbu"),
        root = bed.root.display(),
        dir = dir.display(),
    );
    let o = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir(&dir);
    assert_eq!(ok(&o), "unmounted\n", "{}", stderr(&o));
    valid_overlay(&stick.join(format!("{}.apkovl.tar.gz", lbu::hostname())));
}

/// SIGTERM while the commit runs (inside a pre-package hook): the medium is remounted read-only
/// and lbu exits 1.
#[test]
fn signal_restores_the_medium() {
    let name = format!("lbu-signal-{}", std::process::id());
    let dir = std::path::Path::new("/media").join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    sh(&format!(
        "mount -t tmpfs -o ro,size=4m tmpfs '{}'",
        dir.display()
    ));
    let _m = Mount(dir.clone());
    let bed = Bed::new();
    // The hook runs chrooted into the root: its marker is the root's /hook-running.
    let marker = bed.root.join("hook-running");
    let hook = bed.root.join("etc/lbu/pre-package.d/50-wait");
    write(
        &bed.root,
        "etc/lbu/pre-package.d/50-wait",
        "#!/bin/sh\ntouch /hook-running\nwhile [ -e /hook-running ]; do sleep 0.05; done\n",
    );
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut child = lbu_cmd()
        .arg("--root")
        .arg(&bed.root)
        .args(["commit", &name])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while !marker.exists() {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("lbu ended before the hook ran: {st}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        mounts
            .lines()
            .any(|l| l.split(' ').nth(1) == Some(dir.to_str().unwrap())
                && l.split(' ').nth(3).unwrap().starts_with("rw")),
        "remounted rw for the commit"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let st = child.wait().unwrap();
    std::fs::remove_file(&marker).unwrap();
    assert_eq!(st.code(), Some(1));
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let line = mounts
        .lines()
        .rev()
        .find(|l| l.split(' ').nth(1) == Some(dir.to_str().unwrap()))
        .unwrap();
    assert!(
        line.split(' ')
            .nth(3)
            .unwrap()
            .split(',')
            .any(|o| o == "ro"),
        "{line}"
    );
    assert!(
        std::fs::read_dir(&dir).unwrap().next().is_none(),
        "nothing written"
    );
    drop(_m);
    let _ = std::fs::remove_dir(&dir);
}

/// The options of the top mount on `dir` in /proc/mounts.
fn mount_options(dir: &std::path::Path) -> Vec<String> {
    let esc = dir.display().to_string().replace(' ', "\\040");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let line = mounts
        .lines()
        .rev()
        .find(|l| l.split(' ').nth(1) == Some(esc.as_str()))
        .expect("mounted");
    line.split(' ')
        .nth(3)
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect()
}

/// Issue 13 item 8: synchronous directory updates (which FAT needs for a durable rename) were
/// asked for only when lbu remounted the medium itself, and then as `dirsync`, which the kernel
/// ignores on a remount. A medium found read-write is now remounted `sync` for the commit (seen
/// here by aborting the commit before its clean-up), and put back as it was afterwards.
#[test]
fn medium_found_read_write_is_written_synchronously() {
    let name = format!("lbu-sync-{}", std::process::id());
    let dir = std::path::Path::new("/media").join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    sh(&format!(
        "mount -t tmpfs -o rw,size=4m tmpfs '{}'",
        dir.display()
    ));
    let _m = Mount(dir.clone());
    let bed = Bed::new();
    let commit = |env: &[(&str, &str)]| {
        let mut c = lbu_cmd();
        c.current_dir(bed.tmp.path())
            .arg("--root")
            .arg(&bed.root)
            .args(["commit", &name]);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    assert!(!mount_options(&dir).contains(&"sync".to_string()));
    let o = commit(&[("LBU_FAULT", "before-rename")]);
    assert!(!o.status.success());
    let during = mount_options(&dir);
    assert!(
        during.contains(&"rw".to_string()) && during.contains(&"sync".to_string()),
        "{during:?}"
    );
    sh(&format!("mount -o remount,rw,async '{}'", dir.display()));
    ok(&commit(&[]));
    let after = mount_options(&dir);
    assert!(
        after.contains(&"rw".to_string()) && !after.contains(&"sync".to_string()),
        "put back as it was: {after:?}"
    );
    valid_overlay(&dir.join(format!("{}.apkovl.tar.gz", lbu::hostname())));
    drop(_m);
    let _ = std::fs::remove_dir(&dir);
}

/// Issue 13 item 12: the boot refuses overlays above `overlays::MAX_OVERLAY_BYTES`; lbu refuses
/// to write one, so a commit never leaves a medium that cannot boot its configuration.
#[test]
fn commit_refuses_an_overlay_the_boot_would_refuse() {
    let bed = Bed::new();
    ok(&bed.lbu(&["commit"]));
    let old = std::fs::read(bed.overlay()).unwrap();
    // Incompressible data just over the bound.
    let mut noise = vec![0u8; overlays::MAX_OVERLAY_BYTES as usize + 4096];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for b in noise.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(bed.root.join("etc/huge.bin"), &noise).unwrap();
    let o = bed.lbu(&["commit"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "is larger than the limit of {} bytes",
            overlays::MAX_OVERLAY_BYTES
        )) && err.ends_with("Problems creating archive. aborting\n"),
        "{err}"
    );
    assert_eq!(std::fs::read(bed.overlay()).unwrap(), old);
    assert_eq!(bed.files().len(), 1, "{:?}", bed.files());
}
