//! The main scenario: an Alpine root, edited; `status`, `diff`, `commit` to a directory medium,
//! `list-backup`, `revert`; then a restore onto a fresh root gives back exactly the edited
//! configuration, including a deleted package file.

mod common;
use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

fn describe(root: &std::path::Path, rel: &str) -> String {
    let p = root.join(rel);
    let m = std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let what = if m.file_type().is_symlink() {
        format!("-> {}", std::fs::read_link(&p).unwrap().display())
    } else if m.is_dir() {
        "dir".into()
    } else {
        format!("{:?}", std::fs::read_to_string(&p).unwrap_or_default())
    };
    format!(
        "{rel} {what} {:o} {}:{}",
        m.mode() & 0o7777,
        m.uid(),
        m.gid()
    )
}

#[test]
fn edit_status_commit_revert_restore() {
    let bed = Bed::alpine_base();
    let r = &bed.root;
    // alpine-conf's lbu.conf (DEFAULT_CIPHER=aes-256-cbc) plus a backup limit.
    let conf = std::fs::read_to_string(r.join("etc/lbu/lbu.conf")).unwrap();
    assert!(conf.contains("DEFAULT_CIPHER=aes-256-cbc"));
    bed.conf(&format!("{conf}BACKUP_LIMIT=3\n"));
    // First commit of the pristine system, then a clean status.
    ok(&bed.lbu(&["commit"]));
    assert_eq!(
        bed.files(),
        vec![format!("{}.apkovl.tar.gz", lbu::hostname())]
    );
    assert_eq!(ok(&bed.lbu(&["status"])), "");

    // Edits: content, new file, new directory, deleted package file, chmod, chown, symlink,
    // a file under an included path, an excluded file, a regular file in etc/init.d.
    write(r, "etc/motd", "firewall\n");
    write(r, "etc/added.conf", "x=1\n");
    write(r, "etc/newdir/a.conf", "a\n");
    std::fs::remove_file(r.join("etc/securetty")).unwrap();
    std::fs::set_permissions(r.join("etc/shells"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(r.join("etc/hostname"), Some(65534), Some(65534)).unwrap();
    std::os::unix::fs::symlink("motd", r.join("etc/rel-link")).unwrap();
    write(r, "root/.ssh/authorized_keys", "ssh-ed25519 AAAA\n");
    write(r, "etc/excluded.conf", "no\n");
    write(r, "etc/init.d/myscript", "#!/bin/sh\n");
    bed.conf(&format!(
        "{conf}BACKUP_LIMIT=3\n# edited after the first commit\n"
    ));
    std::fs::set_permissions(
        r.join("etc/apk/world"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    ok(&bed.lbu(&["include", "/root/.ssh"]));
    ok(&bed.lbu(&["exclude", "etc/excluded.conf"]));

    let st = ok(&bed.lbu(&["status"]));
    // Package files edited only now are `A`: the first overlay did not hold them (unchanged
    // package files are not archived).
    assert_eq!(
        st,
        "D etc/securetty\nA etc/added.conf\nA etc/apk/protected_paths.d/lbu.list\nM etc/apk/world\nA etc/hostname\nU etc/lbu/lbu.conf\nA etc/motd\nA etc/newdir/\nA etc/newdir/a.conf\nA etc/rel-link\nA etc/shells\nA root/.ssh/\nA root/.ssh/authorized_keys\n"
    );
    let o = bed.lbu(&["status", "-v"]);
    assert!(
        stderr(&o).contains(
            "note: etc/init.d/myscript is a regular file in etc/init.d and is never saved"
        ),
        "{}",
        stderr(&o)
    );
    let o = bed.lbu(&["diff"]);
    assert_eq!(o.status.code(), Some(1), "diff exits 1 when different");
    let d = stdout(&o);
    assert!(
        d.contains("--- a/etc/motd") && d.contains("+++ b/etc/motd") && d.contains("+firewall"),
        "{d}"
    );
    assert!(
        !d.contains("b/etc/excluded.conf")
            && d.contains("Changed a/etc/rel-link ((absent)) -> b/etc/rel-link (symlink -> motd)"),
        "{d}"
    );

    let old = std::fs::read(bed.overlay()).unwrap();
    ok(&bed.lbu(&["ci", "-v"]));
    assert_eq!(
        ok(&bed.lbu(&["status"])),
        "",
        "committed: nothing left to report"
    );
    assert_eq!(bed.lbu(&["diff"]).status.code(), Some(0));
    let backups = ok(&bed.lbu(&["list-backup"]));
    let lines: Vec<&str> = backups.lines().collect();
    assert_eq!(lines.len(), 1, "{backups}");
    assert_eq!(
        std::fs::read(bed.media.join(lines[0])).unwrap(),
        old,
        "the backup is the previous overlay"
    );
    let list = ok(&bed.lbu(&["list"]));
    assert!(
        list.lines().any(|l| l == "root/.ssh/authorized_keys") && !list.contains("excluded"),
        "{list}"
    );

    // Restore onto a fresh root: the edited configuration comes back, deletion included.
    let fresh = bed.tmp.path().join("fresh");
    alpine_base(&fresh, bed.tmp.path());
    let data = std::fs::read(bed.overlay()).unwrap();
    let rep = overlays::apply(&data, &fresh, &overlays::ApplyPolicy::default()).unwrap();
    assert!(rep.refused.is_empty());
    assert_eq!(rep.deletions, vec!["etc/securetty".to_string()]);
    overlays::apply_deletions(&fresh, &rep.deletions).unwrap();
    for rel in [
        "etc/motd",
        "etc/added.conf",
        "etc/newdir/a.conf",
        "etc/shells",
        "etc/hostname",
        "etc/rel-link",
        "root/.ssh/authorized_keys",
        "etc/apk/protected_paths.d/lbu.list",
        "etc/apk/world",
        "etc/lbu/lbu.conf",
    ] {
        assert_eq!(describe(&fresh, rel), describe(r, rel));
    }
    assert!(!fresh.join("etc/securetty").exists());
    assert!(!fresh.join("etc/excluded.conf").exists());
    assert!(!fresh.join("etc/init.d/myscript").exists());

    // Revert to the pristine overlay: copied into place, kept in the history, and the overlay it
    // replaced is backed up.
    let o = bed.lbu(&["revert", "-v", lines[0]]);
    ok(&o);
    assert!(stderr(&o).contains(&format!("Reverting to {}", lines[0])));
    assert_eq!(std::fs::read(bed.overlay()).unwrap(), old);
    let after = ok(&bed.lbu(&["list-backup"]));
    assert!(after.contains(lines[0]));
    assert_eq!(after.lines().count(), 2, "{after}");
    let o = bed.lbu(&["revert", "../../etc/passwd"]);
    assert_eq!(
        (o.status.code(), stderr(&o)),
        (
            Some(1),
            "ERROR: ../../etc/passwd: not a backup name on the medium\n".into()
        )
    );
    let o = bed.lbu(&["revert", "nope.20200101000000.tar.gz"]);
    assert_eq!(
        stderr(&o),
        format!(
            "ERROR: file not found: {}\n",
            bed.media.join("nope.20200101000000.tar.gz").display()
        )
    );
}

#[test]
fn status_reports_what_upstream_missed() {
    let bed = Bed::new();
    let r = &bed.root;
    write(r, "etc/app.conf", "v1\n");
    std::os::unix::fs::symlink("a", r.join("etc/link")).unwrap();
    ok(&bed.lbu(&["commit"]));
    // Same-size content change with the mtime put back, a symlink retarget, a mode change.
    let mtime = std::fs::metadata(r.join("etc/app.conf")).unwrap().mtime();
    write(r, "etc/app.conf", "v2\n");
    let t = std::fs::FileTimes::new()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime as u64));
    std::fs::File::options()
        .write(true)
        .open(r.join("etc/app.conf"))
        .unwrap()
        .set_times(t)
        .unwrap();
    std::fs::remove_file(r.join("etc/link")).unwrap();
    std::os::unix::fs::symlink("b", r.join("etc/link")).unwrap();
    std::fs::set_permissions(
        r.join("etc/app.conf"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    assert_eq!(ok(&bed.lbu(&["status"])), "U etc/app.conf\nU etc/link\n");
    // Only touched: nothing to report.
    ok(&bed.lbu(&["commit"]));
    std::fs::File::options()
        .write(true)
        .open(r.join("etc/app.conf"))
        .unwrap()
        .set_times(std::fs::FileTimes::new().set_modified(std::time::SystemTime::now()))
        .unwrap();
    assert_eq!(ok(&bed.lbu(&["status"])), "");
    std::os::unix::fs::chown(r.join("etc/app.conf"), Some(1), None).unwrap();
    assert_eq!(ok(&bed.lbu(&["status"])), "M etc/app.conf\n");
}

#[test]
fn package_names_and_stdout() {
    let bed = Bed::new();
    let host = lbu::hostname();
    let out = bed.tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    ok(&bed.lbu(&["package", out.to_str().unwrap()]));
    valid_overlay(&out.join(format!("{host}.apkovl.tar.gz")));
    let o = bed.lbu(&["package", "-"]);
    let gz = o.stdout.clone();
    ok(&o);
    assert_eq!(&gz[..3], &[0x1f, 0x8b, 8]);
    assert!(overlays::read_members(&gz).is_ok());
    // A file name is used verbatim, even when encrypting; `-` is never encrypted.
    let f = bed.tmp.path().join("custom.bin");
    ok(&bed.lbu_env(
        &["package", "-e", "-p", "pw", f.to_str().unwrap()],
        &[("ENCRYPTION", "aes-256-cbc")],
    ));
    let data = std::fs::read(&f).unwrap();
    assert!(data.starts_with(b"Salted__"));
    let o = bed.lbu_env(
        &["package", "-e", "-p", "pw", "-"],
        &[("ENCRYPTION", "aes-256-cbc")],
    );
    assert_eq!(&o.stdout[..2], &[0x1f, 0x8b]);
    // A failing pre-package hook aborts with nothing written.
    write(
        &bed.root,
        "etc/lbu/pre-package.d/10-fail",
        "#!/bin/sh\necho hook-output\nexit 3\n",
    );
    std::fs::set_permissions(
        bed.root.join("etc/lbu/pre-package.d/10-fail"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let f2 = bed.tmp.path().join("never.tar.gz");
    let o = bed.lbu(&["package", f2.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("hook-output"),
        "hook stdout goes to stderr"
    );
    assert!(
        stderr(&o).ends_with("hook failed (exit status: 3)\nProblems creating archive. aborting\n"),
        "{}",
        stderr(&o)
    );
    assert!(!f2.exists());
}

/// The password comes from the terminal (echo off, asked twice when encrypting) when neither
/// `-p`, `PASSWORD` nor `PASSWORD_FILE` gives it.
#[test]
fn password_from_the_terminal() {
    let bed = Bed::new();
    bed.conf("ENCRYPTION=aes-256-cbc\n");
    let cmd = format!(
        "'{}' --root '{}' commit",
        env!("CARGO_BIN_EXE_lbu"),
        bed.root.display()
    );
    // Answers are typed only once the prompt is on the screen (echo is off by then).
    let run = |answers: &[&str]| {
        use std::io::{Read, Write};
        let mut c = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LBU_BACKUPDIR", &bed.media)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        watchdog(c.id());
        let mut input = c.stdin.take().unwrap();
        let mut output = c.stdout.take().unwrap();
        let mut screen = Vec::new();
        let mut buf = [0u8; 256];
        for (i, answer) in answers.iter().enumerate() {
            let prompt = if i == 0 {
                "Password: "
            } else {
                "Verifying - Password: "
            };
            while !String::from_utf8_lossy(&screen).contains(prompt) {
                let n = output.read(&mut buf).unwrap();
                assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&screen));
                screen.extend_from_slice(&buf[..n]);
            }
            input.write_all(format!("{answer}\n").as_bytes()).unwrap();
            input.flush().unwrap();
        }
        let _ = output.read_to_end(&mut screen);
        drop(input);
        (
            c.wait().unwrap(),
            String::from_utf8_lossy(&screen).into_owned(),
        )
    };
    let (st, screen) = run(&["s3cret", "other"]);
    assert!(!st.success());
    assert!(screen.contains("passwords do not match"), "{screen}");
    let (st, screen) = run(&["s3cret", "s3cret"]);
    assert!(st.success(), "{screen}");
    assert!(!screen.contains("s3cret"), "echo is off: {screen}");
    let ov = bed
        .media
        .join(format!("{}.apkovl.tar.gz.aes-256-cbc", lbu::hostname()));
    let data = std::fs::read(&ov).unwrap();
    let kind = overlays::kind_of(&ov.to_string_lossy()).unwrap();
    assert!(overlays::decrypt(&data, &kind, &overlays::Secret::Passphrase("s3cret")).is_ok());
}

#[test]
fn package_writes_a_signature_and_diff_leaves_no_plaintext() {
    let bed = Bed::new();
    let (keyfile, keys) = signing_key(bed.tmp.path(), "k.ed25519");
    bed.conf(&format!("SIGNING_KEY={}\n", keyfile.display()));
    let out = bed.tmp.path().join("out.tar.gz");
    ok(&bed.lbu(&["package", out.to_str().unwrap()]));
    // Not an overlay name: the statement names this machine.
    let s = statement(&out, &keys);
    assert_eq!((s.host, s.generation), (lbu::hostname(), 1));
    // diff writes changed contents into TMPDIR; nothing is left there afterwards.
    let tmpdir = bed.tmp.path().join("tmpdir");
    std::fs::create_dir(&tmpdir).unwrap();
    ok(&bed.lbu(&["commit"]));
    write(&bed.root, "etc/motd", "changed\n");
    let o = bed.lbu_env(&["diff"], &[("TMPDIR", tmpdir.to_str().unwrap())]);
    assert_eq!(o.status.code(), Some(1));
    assert!(std::fs::read_dir(&tmpdir).unwrap().next().is_none());
}

/// `BACKUP_LIMIT` unset keeps no history (Alpine's default): one file after two commits; and
/// `status -a` is the raw non-recursive `apk audit --backup`.
#[test]
fn default_limit_and_raw_audit_status() {
    let bed = Bed::new();
    ok(&bed.lbu(&["commit"]));
    write(&bed.root, "etc/motd", "changed\n");
    ok(&bed.lbu(&["commit"]));
    assert_eq!(
        bed.files(),
        vec![format!("{}.apkovl.tar.gz", lbu::hostname())]
    );
    write(&bed.root, "etc/newdir/x.conf", "x\n");
    let raw = ok(&bed.lbu(&["status", "-a"]));
    assert!(raw.lines().any(|l| l == "U etc/motd"), "{raw}");
    assert!(raw.lines().any(|l| l == "D etc/newdir/"), "{raw}");
    assert!(!raw.contains("etc/newdir/x.conf"), "non-recursive: {raw}");
}

/// SIGTERM, SIGHUP (the ssh session went away) or SIGQUIT (Ctrl-\\) while the password is being
/// typed: lbu exits 1 and the terminal is back as it was.
#[test]
fn signal_at_the_password_prompt_restores_echo() {
    for signal in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGHUP,
        nix::sys::signal::Signal::SIGQUIT,
    ] {
        signal_at_the_password_prompt(signal);
    }
}

fn signal_at_the_password_prompt(signal: nix::sys::signal::Signal) {
    use std::io::{Read, Write};
    let bed = Bed::new();
    bed.conf("ENCRYPTION=aes-256-cbc\n");
    let inner = format!(
        "'{}' --root '{}' commit & echo PID=$!; wait $!; echo STATUS=$?; stty -a",
        env!("CARGO_BIN_EXE_lbu"),
        bed.root.display()
    );
    let mut c = std::process::Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LBU_BACKUPDIR", &bed.media)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    watchdog(c.id());
    let mut input = c.stdin.take().unwrap();
    let mut output = c.stdout.take().unwrap();
    let mut screen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&screen).contains("Password: ") {
        let n = output.read(&mut buf).unwrap();
        assert!(n > 0, "no prompt: {}", String::from_utf8_lossy(&screen));
        screen.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&screen).into_owned();
    let pid: i32 = text
        .split("PID=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).unwrap();
    let _ = output.read_to_end(&mut screen);
    input.flush().unwrap();
    drop(input);
    c.wait().unwrap();
    let text = String::from_utf8_lossy(&screen).into_owned();
    assert!(text.contains("STATUS=1"), "{signal}: {text}");
    let words: Vec<&str> = text.split_whitespace().collect();
    assert!(
        words.contains(&"echo") && !words.contains(&"-echo"),
        "{signal}: {text}"
    );
    // The whole terminal is back, not only echo: canonical input and signals too.
    assert!(
        words.contains(&"icanon") && !words.contains(&"-icanon"),
        "{signal}: {text}"
    );
    assert!(bed.files().is_empty());
}
